package emul

import (
	"testing"
)

func outb(d PortDevice, port uint16, v uint8) { d.Out(port, 1, uint32(v)) }
func inb(d PortDevice, port uint16) uint8     { return uint8(d.In(port, 1)) }

// linuxInitPIC programs the pair the way Linux 6.12's init_8259A does with
// auto_eoi false: both masked, ICW1 0x11, vectors 0x30 and 0x38, the slave
// on IR2, ICW4 8086 mode; then the masks Linux keeps (cascade open). The
// probe before it writes 0xFF to the slave mask and 0xFB to the master's
// and expects to read 0xFB back.
func linuxInitPIC(t *testing.T, p *PIC, icw4 uint8) {
	t.Helper()
	outb(p, PICSlaveData, 0xFF)
	outb(p, PICMasterData, 0xFB)
	if got := inb(p, PICMasterData); got != 0xFB {
		t.Fatalf("probe: master IMR = %#x, want 0xfb", got)
	}
	outb(p, PICMasterData, 0xFF)
	outb(p, PICSlaveData, 0xFF)
	outb(p, PICMasterCmd, 0x11)
	outb(p, PICMasterData, 0x30)
	outb(p, PICMasterData, 1<<2)
	outb(p, PICMasterData, icw4)
	outb(p, PICSlaveCmd, 0x11)
	outb(p, PICSlaveData, 0x38)
	outb(p, PICSlaveData, 2)
	outb(p, PICSlaveData, icw4&^0x10)
	outb(p, PICMasterData, 0xFB)
	outb(p, PICSlaveData, 0xFF)
}

// unmask clears the mask bit of irq as Linux's unmask_8259A_irq does.
func unmask(p *PIC, irq int) {
	if irq < 8 {
		outb(p, PICMasterData, inb(p, PICMasterData)&^(1<<irq))
	} else {
		outb(p, PICSlaveData, inb(p, PICSlaveData)&^(1<<(irq-8)))
	}
}

// linuxEOI is the end of mask_and_ack_8259A: a specific EOI to the slave
// and to the master's cascade input, or to the master alone.
func linuxEOI(p *PIC, irq int) {
	if irq >= 8 {
		outb(p, PICSlaveCmd, 0x60+uint8(irq&7))
		outb(p, PICMasterCmd, 0x62)
	} else {
		outb(p, PICMasterCmd, 0x60+uint8(irq))
	}
}

func pulse(p *PIC, irq int) {
	p.SetLine(irq, true)
	p.SetLine(irq, false)
}

func TestPICLinuxInitAndVectors(t *testing.T) {
	for irq := 0; irq < 16; irq++ {
		if irq == 2 {
			continue
		}
		p := NewPIC()
		linuxInitPIC(t, p, 0x01)
		unmask(p, irq)
		if p.Pending() {
			t.Fatalf("irq %d: pending before any request", irq)
		}
		pulse(p, irq)
		if !p.Pending() {
			t.Fatalf("irq %d: not pending after an edge", irq)
		}
		v, ok := p.Ack()
		if want := uint8(0x30 + irq); v != want || !ok {
			t.Errorf("irq %d: Ack = %#x %v, want %#x true", irq, v, ok, want)
		}
		if p.Pending() {
			t.Errorf("irq %d: still pending after Ack", irq)
		}
		// ISR holds the interrupt (and the cascade input for the slave).
		outb(p, PICMasterCmd, 0x0B)
		misr := inb(p, PICMasterCmd)
		outb(p, PICSlaveCmd, 0x0B)
		sisr := inb(p, PICSlaveCmd)
		wantM, wantS := uint8(1)<<irq, uint8(0)
		if irq >= 8 {
			wantM, wantS = 1<<2, 1<<(irq-8)
		}
		if misr != wantM || sisr != wantS {
			t.Errorf("irq %d: ISR master %#x slave %#x, want %#x %#x", irq, misr, sisr, wantM, wantS)
		}
		linuxEOI(p, irq)
		outb(p, PICMasterCmd, 0x0B)
		outb(p, PICSlaveCmd, 0x0B)
		if m, s := inb(p, PICMasterCmd), inb(p, PICSlaveCmd); m != 0 || s != 0 {
			t.Errorf("irq %d: ISR after EOI %#x %#x", irq, m, s)
		}
	}
}

// step is one action in a PIC scenario.
type picStep struct {
	op   string // "raise", "lower", "pulse", "ack", "eoi", "out", "pending"
	irq  int
	port uint16
	val  uint8
	want int // ack: the expected vector, or -1 for "not pending"
}

func TestPICScenarios(t *testing.T) {
	tests := []struct {
		name  string
		icw4  uint8
		open  []int
		steps []picStep
	}{
		{
			name: "priority order and nesting",
			open: []int{0, 1, 4, 9, 14},
			steps: []picStep{
				{op: "pulse", irq: 4},
				{op: "pulse", irq: 14},
				{op: "pulse", irq: 1},
				{op: "ack", want: 0x31},
				{op: "pending", want: 0}, // 1 in service blocks 2 (14) and 4
				{op: "pulse", irq: 0},
				{op: "ack", want: 0x30}, // 0 outranks 1 in service
				{op: "eoi", irq: 0},
				{op: "eoi", irq: 1},
				{op: "ack", want: 0x3E}, // the slave via IR2 before IR4
				{op: "pulse", irq: 9},
				{op: "pending", want: 0}, // the master's IR2 is in service
				{op: "eoi", irq: 14},
				{op: "ack", want: 0x39},
				{op: "eoi", irq: 9},
				{op: "ack", want: 0x34},
				{op: "eoi", irq: 4},
				{op: "pending", want: 0},
			},
		},
		{
			name: "masked request waits in IRR",
			open: []int{3},
			steps: []picStep{
				{op: "pulse", irq: 5},
				{op: "pending", want: 0},
				{op: "out", port: PICMasterData, val: 0xDB}, // open 5 too
				{op: "ack", want: 0x35},
				{op: "eoi", irq: 5},
				{op: "pending", want: 0},
			},
		},
		{
			name: "edge: a held line requests once",
			open: []int{3},
			steps: []picStep{
				{op: "raise", irq: 3},
				{op: "raise", irq: 3},
				{op: "ack", want: 0x33},
				{op: "eoi", irq: 3},
				{op: "pending", want: 0},
				{op: "lower", irq: 3},
				{op: "raise", irq: 3},
				{op: "ack", want: 0x33},
			},
		},
		{
			name: "edge: the request survives the line falling",
			open: []int{6},
			steps: []picStep{
				{op: "raise", irq: 6},
				{op: "lower", irq: 6},
				{op: "ack", want: 0x36},
			},
		},
		{
			name: "level via ELCR",
			open: []int{10},
			steps: []picStep{
				{op: "out", port: PICELCRSlave, val: 1 << 2},
				{op: "raise", irq: 10},
				{op: "ack", want: 0x3A},
				{op: "eoi", irq: 10},
				{op: "ack", want: 0x3A}, // still high: requests again
				{op: "lower", irq: 10},
				{op: "eoi", irq: 10},
				{op: "pending", want: 0},
			},
		},
		{
			name: "non-specific EOI clears the highest in service",
			open: []int{3, 5},
			steps: []picStep{
				{op: "pulse", irq: 5},
				{op: "ack", want: 0x35},
				{op: "pulse", irq: 3},
				{op: "ack", want: 0x33},
				{op: "out", port: PICMasterCmd, val: 0x20},
				{op: "pulse", irq: 5},
				{op: "pending", want: 0}, // 5 is still in service
				{op: "out", port: PICMasterCmd, val: 0x20},
				{op: "ack", want: 0x35},
			},
		},
		{
			name: "automatic EOI",
			icw4: 0x03,
			open: []int{3, 5},
			steps: []picStep{
				{op: "pulse", irq: 3},
				{op: "pulse", irq: 5},
				{op: "ack", want: 0x33},
				{op: "ack", want: 0x35}, // nothing left in service
				{op: "pending", want: 0},
			},
		},
		{
			name: "set priority makes IR4 the lowest",
			open: []int{1, 5},
			steps: []picStep{
				{op: "out", port: PICMasterCmd, val: 0xC4},
				{op: "pulse", irq: 1},
				{op: "pulse", irq: 5},
				{op: "ack", want: 0x35},
				{op: "eoi", irq: 5},
				{op: "ack", want: 0x31},
			},
		},
		{
			name: "rotate on non-specific EOI",
			open: []int{0, 3},
			steps: []picStep{
				{op: "pulse", irq: 0},
				{op: "ack", want: 0x30},
				{op: "out", port: PICMasterCmd, val: 0xA0}, // IR0 becomes lowest
				{op: "pulse", irq: 0},
				{op: "pulse", irq: 3},
				{op: "ack", want: 0x33},
			},
		},
		{
			name: "rotate on specific EOI",
			open: []int{1, 6},
			steps: []picStep{
				{op: "pulse", irq: 1},
				{op: "ack", want: 0x31},
				{op: "out", port: PICMasterCmd, val: 0xE1}, // EOI 1, IR1 lowest
				{op: "pulse", irq: 1},
				{op: "pulse", irq: 6},
				{op: "ack", want: 0x36},
				{op: "out", port: PICMasterCmd, val: 0x40}, // no operation
				{op: "out", port: PICMasterCmd, val: 0x66},
				{op: "ack", want: 0x31},
			},
		},
		{
			name: "rotate in automatic EOI mode",
			icw4: 0x03,
			open: []int{3, 5},
			steps: []picStep{
				{op: "out", port: PICMasterCmd, val: 0x80}, // set
				{op: "pulse", irq: 3},
				{op: "ack", want: 0x33}, // IR3 becomes lowest
				{op: "pulse", irq: 3},
				{op: "pulse", irq: 5},
				{op: "ack", want: 0x35},
				{op: "out", port: PICMasterCmd, val: 0x00}, // clear
				{op: "pulse", irq: 5},
				{op: "ack", want: 0x33}, // IR5 was made lowest; no more rotation
				{op: "ack", want: 0x35},
			},
		},
		{
			name: "special mask mode lets lower levels in",
			open: []int{3, 5},
			steps: []picStep{
				{op: "pulse", irq: 3},
				{op: "ack", want: 0x33},
				{op: "pulse", irq: 5},
				{op: "pending", want: 0},
				{op: "out", port: PICMasterCmd, val: 0x68},  // set SMM
				{op: "out", port: PICMasterData, val: 0xDB}, // mask 3 (in service), open 5
				{op: "ack", want: 0x35},
				{op: "out", port: PICMasterCmd, val: 0x48}, // clear SMM
			},
		},
		{
			name: "special fully nested mode",
			icw4: 0x11,
			open: []int{9, 12},
			steps: []picStep{
				{op: "pulse", irq: 12},
				{op: "ack", want: 0x3C},
				{op: "pulse", irq: 9}, // higher on the slave, same master input
				{op: "ack", want: 0x39},
			},
		},
		{
			name: "without special fully nested mode the slave waits",
			open: []int{9, 12},
			steps: []picStep{
				{op: "pulse", irq: 12},
				{op: "ack", want: 0x3C},
				{op: "pulse", irq: 9},
				{op: "pending", want: 0},
				{op: "eoi", irq: 12},
				{op: "ack", want: 0x39},
			},
		},
		{
			name: "line 2 reaches IRQ 9",
			open: []int{9},
			steps: []picStep{
				{op: "pulse", irq: 2},
				{op: "ack", want: 0x39},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewPIC()
			icw4 := tt.icw4
			if icw4 == 0 {
				icw4 = 0x01
			}
			linuxInitPIC(t, p, icw4)
			for _, irq := range tt.open {
				unmask(p, irq)
			}
			for i, s := range tt.steps {
				switch s.op {
				case "raise":
					p.SetLine(s.irq, true)
				case "lower":
					p.SetLine(s.irq, false)
				case "pulse":
					pulse(p, s.irq)
				case "eoi":
					linuxEOI(p, s.irq)
				case "out":
					outb(p, s.port, s.val)
				case "pending":
					if got := p.Pending(); got != (s.want != 0) {
						t.Fatalf("step %d: Pending = %v", i, got)
					}
				case "ack":
					if !p.Pending() {
						t.Fatalf("step %d: nothing pending, want vector %#x", i, s.want)
					}
					v, ok := p.Ack()
					if int(v) != s.want || !ok {
						t.Fatalf("step %d: Ack = %#x %v, want %#x", i, v, ok, s.want)
					}
				}
			}
		})
	}
}

func TestPICSpurious(t *testing.T) {
	p := NewPIC()
	linuxInitPIC(t, p, 0x01)
	if v, ok := p.Ack(); v != 0x37 || ok {
		t.Errorf("Ack with nothing pending = %#x %v, want 0x37 false", v, ok)
	}
	// A level-triggered request that vanishes between Pending and Ack.
	outb(p, PICELCRSlave, 1<<3)
	unmask(p, 11)
	p.SetLine(11, true)
	if !p.Pending() {
		t.Fatal("level request not pending")
	}
	p.SetLine(11, false)
	if v, ok := p.Ack(); v != 0x37 || ok {
		t.Errorf("Ack after the line fell = %#x %v, want 0x37 false", v, ok)
	}
	// The spurious cycle put nothing in service.
	outb(p, PICMasterCmd, 0x0B)
	if isr := inb(p, PICMasterCmd); isr != 0 {
		t.Errorf("ISR after spurious = %#x", isr)
	}
}

func TestPICReadRegisters(t *testing.T) {
	p := NewPIC()
	linuxInitPIC(t, p, 0x01)
	pulse(p, 1)
	pulse(p, 5)
	pulse(p, 13)
	tests := []struct {
		name string
		ocw3 uint8
		port uint16
		want uint8
	}{
		{"master IRR after init", 0x0A, PICMasterCmd, 1<<1 | 1<<5},
		{"slave IRR", 0x0A, PICSlaveCmd, 1 << 5},
		{"master ISR", 0x0B, PICMasterCmd, 0},
		{"read select sticks", 0x08, PICMasterCmd, 0},
	}
	for _, tt := range tests {
		outb(p, tt.port, tt.ocw3)
		if got := inb(p, tt.port); got != tt.want {
			t.Errorf("%s: %#x, want %#x", tt.name, got, tt.want)
		}
	}
	// Unmasking the slave input makes the cascade visible in master IRR.
	unmask(p, 13)
	outb(p, PICMasterCmd, 0x0A)
	if got := inb(p, PICMasterCmd); got != 1<<1|1<<2|1<<5 {
		t.Errorf("master IRR with slave request = %#x", got)
	}
	// A word read returns command then data port.
	if got := p.In(PICMasterCmd, 2); got != uint32(0xFB)<<8|(1<<1|1<<2|1<<5) {
		t.Errorf("word read = %#x", got)
	}
}

func TestPICPoll(t *testing.T) {
	p := NewPIC()
	linuxInitPIC(t, p, 0x01)
	outb(p, PICMasterCmd, 0x0C)
	if got := inb(p, PICMasterCmd); got != 0 {
		t.Errorf("poll with nothing = %#x", got)
	}
	unmask(p, 6)
	pulse(p, 6)
	outb(p, PICMasterCmd, 0x0C)
	if got := inb(p, PICMasterCmd); got != 0x86 {
		t.Errorf("poll = %#x, want 0x86", got)
	}
	if p.Pending() {
		t.Error("polled request still pending")
	}
	outb(p, PICMasterCmd, 0x0B)
	if got := inb(p, PICMasterCmd); got != 1<<6 {
		t.Errorf("ISR after poll = %#x", got)
	}
}

func TestPICInitResets(t *testing.T) {
	p := NewPIC()
	// Power-on: everything masked, nothing reaches the CPU.
	p.SetLine(4, true)
	if p.Pending() {
		t.Error("request pending before the guest programmed the PIC")
	}
	linuxInitPIC(t, p, 0x01)
	unmask(p, 4)
	// The line was high through ICW1: the edge sense was reset, so it
	// must fall and rise again.
	if p.Pending() {
		t.Error("request survived ICW1")
	}
	p.SetLine(4, false)
	p.SetLine(4, true)
	if v, ok := p.Ack(); v != 0x34 || !ok {
		t.Errorf("Ack = %#x %v", v, ok)
	}
	// ICW1 clears IMR and ISR; no vector comes out mid-sequence.
	outb(p, PICMasterCmd, 0x11)
	pulse(p, 3)
	if p.Pending() {
		t.Error("pending during initialization")
	}
	outb(p, PICMasterData, 0x40)
	outb(p, PICMasterData, 0x04)
	outb(p, PICMasterData, 0x01)
	if got := inb(p, PICMasterData); got != 0 {
		t.Errorf("IMR after ICW1 = %#x", got)
	}
	pulse(p, 3)
	if v, _ := p.Ack(); v != 0x43 {
		t.Errorf("new base: vector %#x, want 0x43", v)
	}
}

func TestPICOnChange(t *testing.T) {
	p := NewPIC()
	var calls int
	p.OnChange = func() {
		calls++
		_ = p.Pending() // the lock is not held
	}
	linuxInitPIC(t, p, 0x01)
	unmask(p, 1)
	pulse(p, 1)
	if calls != 1 {
		t.Fatalf("after raise: %d calls", calls)
	}
	pulse(p, 1) // already pending: output unchanged
	if calls != 1 {
		t.Fatalf("after second raise: %d calls", calls)
	}
	p.Ack()
	if calls != 2 {
		t.Fatalf("after Ack: %d calls", calls)
	}
	pulse(p, 1) // latched, but blocked by itself in service
	if calls != 2 {
		t.Fatalf("after raise in service: %d calls", calls)
	}
	linuxEOI(p, 1)
	if calls != 3 || !p.Pending() {
		t.Fatalf("after EOI: %d calls, pending %v", calls, p.Pending())
	}
}

func TestPICELCRMask(t *testing.T) {
	p := NewPIC()
	outb(p, PICELCRMaster, 0xFF)
	outb(p, PICELCRSlave, 0xFF)
	if m, s := inb(p, PICELCRMaster), inb(p, PICELCRSlave); m != 0xF8 || s != 0xDE {
		t.Errorf("ELCR = %#x %#x, want 0xf8 0xde", m, s)
	}
}

// TestPICOnLine: every SetLine reaches OnLine with its own arguments (IRQ
// 2 as 2, not the 9 the 8259 makes of it), masked or not, after the PIC's
// lock is released.
func TestPICOnLine(t *testing.T) {
	p := NewPIC()
	type call struct {
		irq   int
		level bool
	}
	var got []call
	p.OnLine = func(irq int, level bool) {
		p.Pending() // takes the lock: deadlocks if it were still held
		got = append(got, call{irq, level})
	}
	p.SetLine(4, true)
	p.SetLine(2, true)
	p.SetLine(4, false)
	p.SetLine(16, true)
	want := []call{{4, true}, {2, true}, {4, false}, {16, true}}
	if len(got) != len(want) {
		t.Fatalf("OnLine calls %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("call %d: %v, want %v", i, got[i], want[i])
		}
	}
}
