package emul

import "sync"

// The 8259A pair of a PC/AT: the master at 0x20-0x21 drives the CPU's INTR
// pin; the slave at 0xA0-0xA1 drives the master's IR2. The PIIX-style edge
// and level control registers (ELCR) sit at 0x4D0 (master) and 0x4D1 (slave).
const (
	PICMasterCmd  = 0x20
	PICMasterData = 0x21
	PICSlaveCmd   = 0xA0
	PICSlaveData  = 0xA1
	PICELCRMaster = 0x4D0
	PICELCRSlave  = 0x4D1

	// picCascadeIR is the master input the slave's INT output is wired to.
	picCascadeIR = 2
	// elcrMask* are the ELCR bits that may be set: IRQ 0, 1, 2, 8 and 13
	// are edge-triggered on every PC chipset.
	elcrMaskMaster = 0xF8
	elcrMaskSlave  = 0xDE
)

// Command-word bits (Intel 8259A datasheet, "Programming the 8259A").
const (
	icw1IC4   = 0x01 // ICW4 follows
	icw1SNGL  = 0x02 // single chip, no ICW3
	icw1LTIM  = 0x08 // level-triggered inputs
	icw1Init  = 0x10 // this write on A0=0 is ICW1
	icw4AEOI  = 0x02 // automatic end of interrupt
	icw4SFNM  = 0x10 // special fully nested mode
	ocw3Flag  = 0x08 // this write on A0=0 is OCW3 (bit 4 clear)
	ocw3RR    = 0x02 // bit 0 selects the register to read
	ocw3RIS   = 0x01 // 1: ISR, 0: IRR
	ocw3Poll  = 0x04 // poll command
	ocw3ESMM  = 0x40 // bit 5 sets or clears special mask mode
	ocw3SMM   = 0x20
	ocw2EOI   = 0x20
	ocw2SL    = 0x40
	ocw2R     = 0x80
	ocw2Level = 0x07
)

// PIC is the cascaded 8259A pair of a PC. Devices raise their lines with
// SetLine; the CPU side asks Pending and runs the INTA cycle with Ack.
//
// Modelled: the ICW1-ICW4 initialization sequence (ICW1 clears IMR, ISR,
// IRR, special mask mode and the rotation, and restores IR7 as the lowest
// priority), OCW1 (IMR), every OCW2 command (non-specific and specific EOI,
// rotate on EOI, rotate in AEOI mode, set priority), OCW3 (IRR/ISR read
// select, poll, special mask mode), automatic EOI, special fully nested
// mode, edge and level triggering (ICW1 LTIM or the ELCR), and spurious
// IRQ 7 and 15. The 8080/8085 call format and buffered mode are not: an x86
// PC runs the chips in 8086 mode, and ICW4's uPM and BUF bits are accepted
// and ignored.
//
// The slave's INT output is treated as a level on the master's IR2: the
// master sees a request there whenever the slave has one to present. On
// hardware the master's IR2 is edge-sensed like any other input; with one
// slave the two agree except in slave AEOI corner cases, where the level
// view is the one that loses no interrupt.
//
// mu protects chips and out. OnChange is called after mu is released.
type PIC struct {
	mu    sync.Mutex
	chips [2]i8259 // master, slave
	out   bool     // the master's INT output as last reported

	// OnChange, when not nil, is called after the master's INT output
	// (what Pending reports) changes level. The VM uses it to wake a vCPU
	// blocked in HLT. It runs on the goroutine that caused the change,
	// without the PIC's lock but possibly with another device's lock held:
	// it must only signal (wake a goroutine, send on a buffered channel),
	// never do port I/O. Set it before the PIC is shared.
	OnChange func()

	// OnLine, when not nil, is called on every SetLine with its arguments
	// (before IRQ 2 is turned into 9), after the PIC's lock is released:
	// the I/O APIC of a VM with several vCPUs sees the same ISA lines. It
	// runs with the caller's device lock held, if any. Set it before the
	// PIC is shared.
	OnLine func(irq int, level bool)
}

// i8259 is one chip.
type i8259 struct {
	irr, isr, imr uint8
	line          uint8 // the input levels as last set, for edge detection
	elcr          uint8 // per-input level triggering (ELCR)
	elcrMask      uint8

	base     uint8 // ICW2: vector of IR0 (low 3 bits clear)
	icw3     uint8 // master: inputs with a slave; slave: its identity
	initStep int   // 0: operating; 2, 3, 4: the ICW expected next
	needICW4 bool
	single   bool
	ltim     bool

	aeoi, rotateAEOI, sfnm bool
	readISR, poll, smm     bool
	lowest                 uint8 // the input with the lowest priority
}

// NewPIC returns a PIC pair initialised as a PC BIOS leaves it (vectors
// 0x08 and 0x70, slave on IR2, edge-triggered, normal EOI, IR7 lowest) but
// with every input masked, so nothing reaches the CPU before the guest
// programs the pair with ICW1-ICW4 and unmasks what it handles.
func NewPIC() *PIC {
	p := &PIC{}
	for i := range p.chips {
		p.chips[i].lowest = 7
		p.chips[i].imr = 0xFF
	}
	m, s := &p.chips[0], &p.chips[1]
	m.base, m.icw3, m.elcrMask = 0x08, 1<<picCascadeIR, elcrMaskMaster
	s.base, s.icw3, s.elcrMask = 0x70, picCascadeIR, elcrMaskSlave
	return p
}

// SetLine sets the level of ISA interrupt line irq (0-15). An edge-
// triggered input latches a request in IRR on a rising edge; a level-
// triggered one (ICW1 LTIM or the ELCR) requests while the line is high.
// Line 2 is the cascade on the master; as on the AT bus, a device driving
// IRQ 2 reaches the slave's IR1 (IRQ 9). Out-of-range lines are ignored.
func (p *PIC) SetLine(irq int, level bool) {
	if p.OnLine != nil {
		defer p.OnLine(irq, level)
	}
	if irq == picCascadeIR {
		irq = 9
	}
	if irq < 0 || irq > 15 {
		return
	}
	p.mu.Lock()
	c := &p.chips[irq>>3]
	bit := uint8(1) << (irq & 7)
	if level {
		if c.line&bit == 0 || c.levelTriggered(bit) {
			c.irr |= bit
		}
		c.line |= bit
	} else {
		c.line &^= bit
		if c.levelTriggered(bit) {
			c.irr &^= bit
		}
	}
	p.unlockAndNotify()
}

// Pending reports whether the master's INT output is asserted: an unmasked
// request with a priority above every in-service interrupt that blocks it.
func (p *PIC) Pending() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.masterIRQ() >= 0
}

// Ack is the CPU's interrupt-acknowledge cycle. It moves the highest
// priority request from IRR to ISR (only clearing IRR in automatic-EOI
// mode), on the slave as well when the master's winner is the cascade
// input, and returns the vector the chips put on the bus: the serving
// chip's ICW2 base plus the input number.
//
// ok is false when no request was left to acknowledge, which happens when a
// request vanished (a level-triggered line fell, a mask changed) between
// Pending and Ack. The vector is then the spurious one real hardware
// delivers: IRQ 7's when the master has nothing, IRQ 15's when the master
// chose the cascade input and the slave has nothing (the master's IR2 is
// then in service, as on hardware). Delivering it or dropping it are both
// correct for Linux, which recognises spurious IRQ 7 and 15 by reading ISR.
func (p *PIC) Ack() (vector uint8, ok bool) {
	p.mu.Lock()
	m, s := &p.chips[0], &p.chips[1]
	irq := p.masterIRQ()
	switch {
	case irq < 0:
		vector, ok = m.base+7, false
	case irq == picCascadeIR && !m.single && m.icw3&(1<<picCascadeIR) != 0:
		if sirq := s.highestRequest(0, false); sirq >= 0 {
			s.acknowledge(sirq)
			vector, ok = s.base+uint8(sirq), true
		} else {
			vector, ok = s.base+7, false
		}
		m.acknowledge(irq)
	default:
		m.acknowledge(irq)
		vector, ok = m.base+uint8(irq), true
	}
	p.unlockAndNotify()
	return vector, ok
}

// In implements PortDevice for 0x20-0x21, 0xA0-0xA1 and 0x4D0-0x4D1.
func (p *PIC) In(port uint16, size int) uint32 {
	p.mu.Lock()
	v := inBytes(port, size, p.readByte)
	p.unlockAndNotify()
	return v
}

// Out implements PortDevice for 0x20-0x21, 0xA0-0xA1 and 0x4D0-0x4D1.
func (p *PIC) Out(port uint16, size int, v uint32) {
	p.mu.Lock()
	outBytes(port, size, v, p.writeByte)
	p.unlockAndNotify()
}

// unlockAndNotify recomputes the master's output, releases mu and calls
// OnChange if the output changed.
// Precondition: mu held.
func (p *PIC) unlockAndNotify() {
	out := p.masterIRQ() >= 0
	changed := out != p.out
	p.out = out
	p.mu.Unlock()
	if changed && p.OnChange != nil {
		p.OnChange()
	}
}

// slaveOut is the slave's INT output as an input bit for the master.
// Precondition: mu held.
func (p *PIC) slaveOut() uint8 {
	if p.chips[1].highestRequest(0, false) >= 0 {
		return 1 << picCascadeIR
	}
	return 0
}

// masterIRQ is the master input the next INTA would serve, or -1.
// Precondition: mu held.
func (p *PIC) masterIRQ() int {
	return p.chips[0].highestRequest(p.slaveOut(), true)
}

// chip returns the chip a command or data port belongs to.
func (p *PIC) chip(port uint16) (*i8259, int) {
	switch port {
	case PICMasterCmd, PICMasterData, PICELCRMaster:
		return &p.chips[0], 0
	case PICSlaveCmd, PICSlaveData, PICELCRSlave:
		return &p.chips[1], 1
	}
	return nil, -1
}

// Precondition: mu held.
func (p *PIC) readByte(port uint16) uint8 {
	c, idx := p.chip(port)
	if c == nil {
		return 0xFF
	}
	switch port {
	case PICELCRMaster, PICELCRSlave:
		return c.elcr
	case PICMasterData, PICSlaveData:
		return c.imr
	}
	var cascade uint8
	if idx == 0 {
		cascade = p.slaveOut()
	}
	if c.poll {
		// A poll read is an INTA for this chip alone: the answer is
		// 0x80 | level when a request is served, 0 when none is.
		c.poll = false
		irq := c.highestRequest(cascade, idx == 0)
		if irq < 0 {
			return 0
		}
		c.acknowledge(irq)
		return 0x80 | uint8(irq)
	}
	if c.readISR {
		return c.isr
	}
	return c.irr | cascade
}

// Precondition: mu held.
func (p *PIC) writeByte(port uint16, v uint8) {
	c, _ := p.chip(port)
	if c == nil {
		return
	}
	switch port {
	case PICELCRMaster, PICELCRSlave:
		c.elcr = v & c.elcrMask
		// A line that becomes level-triggered requests while high; one
		// that becomes edge-triggered keeps what it latched.
		c.irr |= c.line & c.elcr
		return
	case PICMasterCmd, PICSlaveCmd:
		switch {
		case v&icw1Init != 0:
			c.icw1(v)
		case v&ocw3Flag != 0:
			c.ocw3(v)
		default:
			c.ocw2(v)
		}
		return
	}
	// The data port: an ICW while initializing, else OCW1.
	switch c.initStep {
	case 2:
		c.base = v &^ 7
		switch {
		case !c.single:
			c.initStep = 3
		case c.needICW4:
			c.initStep = 4
		default:
			c.initStep = 0
		}
	case 3:
		c.icw3 = v
		if c.needICW4 {
			c.initStep = 4
		} else {
			c.initStep = 0
		}
	case 4:
		c.aeoi = v&icw4AEOI != 0
		c.sfnm = v&icw4SFNM != 0
		c.initStep = 0
	default:
		c.imr = v
	}
}

// icw1 starts the initialization sequence. The datasheet's list: the edge
// sense circuit is reset (a line already high must fall and rise again to
// request), IMR is cleared, IR7 gets the lowest priority, special mask mode
// is cleared and the read register is IRR; without IC4 every ICW4 function
// is zero. ISR and IRR are cleared as well, as every PC chipset does.
func (c *i8259) icw1(v uint8) {
	c.initStep = 2
	c.needICW4 = v&icw1IC4 != 0
	c.single = v&icw1SNGL != 0
	c.ltim = v&icw1LTIM != 0
	c.imr, c.isr, c.irr = 0, 0, 0
	c.lowest = 7
	c.smm, c.readISR, c.poll = false, false, false
	c.aeoi, c.sfnm, c.rotateAEOI = false, false, false
	c.icw3 = 0
	if c.ltim {
		c.irr = c.line
	}
}

func (c *i8259) ocw2(v uint8) {
	level := v & ocw2Level
	switch v & (ocw2R | ocw2SL | ocw2EOI) {
	case ocw2EOI: // non-specific EOI
		if irq := c.highestInService(); irq >= 0 {
			c.isr &^= 1 << irq
		}
	case ocw2SL | ocw2EOI: // specific EOI
		c.isr &^= 1 << level
	case ocw2R | ocw2EOI: // rotate on non-specific EOI
		if irq := c.highestInService(); irq >= 0 {
			c.isr &^= 1 << irq
			c.lowest = uint8(irq)
		}
	case ocw2R: // rotate in automatic EOI mode: set
		c.rotateAEOI = true
	case 0: // rotate in automatic EOI mode: clear
		c.rotateAEOI = false
	case ocw2R | ocw2SL | ocw2EOI: // rotate on specific EOI
		c.isr &^= 1 << level
		c.lowest = level
	case ocw2R | ocw2SL: // set priority
		c.lowest = level
	case ocw2SL: // no operation
	}
}

func (c *i8259) ocw3(v uint8) {
	if v&ocw3ESMM != 0 {
		c.smm = v&ocw3SMM != 0
	}
	c.poll = v&ocw3Poll != 0
	if v&ocw3RR != 0 {
		c.readISR = v&ocw3RIS != 0
	}
}

// levelTriggered reports whether the input bit requests by level.
func (c *i8259) levelTriggered(bit uint8) bool { return c.ltim || c.elcr&bit != 0 }

// rank is the priority of input irq under the current rotation: 0 is the
// highest, 7 the lowest.
func (c *i8259) rank(irq int) int { return (irq - int(c.lowest) - 1) & 7 }

// highest returns the input of set with the highest priority, or -1.
func (c *i8259) highest(set uint8) int {
	for k := 1; k <= 8; k++ {
		irq := (int(c.lowest) + k) & 7
		if set&(1<<irq) != 0 {
			return irq
		}
	}
	return -1
}

func (c *i8259) highestInService() int { return c.highest(c.isr) }

// highestRequest is the input the chip would present to the CPU (or to
// the master): the unmasked request of highest priority, if it outranks
// the highest in-service interrupt that is not masked off by special mask
// mode. extra are request bits from outside IRR (the cascade). In special
// fully nested mode a master lets a slave's request through while that
// slave's input is in service, so that the slave's own priorities nest.
func (c *i8259) highestRequest(extra uint8, master bool) int {
	if c.initStep != 0 {
		return -1
	}
	req := (c.irr | extra) &^ c.imr
	irq := c.highest(req)
	if irq < 0 {
		return -1
	}
	inService := c.isr
	if c.smm {
		inService &^= c.imr
	}
	top := c.highest(inService)
	switch {
	case top < 0, c.rank(irq) < c.rank(top):
		return irq
	case master && c.sfnm && irq == top && c.icw3&(1<<irq) != 0:
		return irq
	}
	return -1
}

// acknowledge is the chip's half of an INTA (or poll) for input irq.
func (c *i8259) acknowledge(irq int) {
	bit := uint8(1) << irq
	if !c.levelTriggered(bit) {
		c.irr &^= bit
	}
	if c.aeoi {
		if c.rotateAEOI {
			c.lowest = uint8(irq)
		}
		return
	}
	c.isr |= bit
}
