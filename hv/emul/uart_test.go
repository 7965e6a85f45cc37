package emul

import (
	"bytes"
	"sync"
	"testing"
)

const (
	com1THR = COM1Base + uartTHR
	com1IER = COM1Base + uartIER
	com1IIR = COM1Base + uartIIR
	com1FCR = COM1Base + uartFCR
	com1LCR = COM1Base + uartLCR
	com1MCR = COM1Base + uartMCR
	com1LSR = COM1Base + uartLSR
	com1MSR = COM1Base + uartMSR
	com1SCR = COM1Base + uartSCR
)

type uartRig struct {
	out bytes.Buffer
	pic *PIC
	u   *UART
}

// newUARTRig is a UART on a PIC programmed as Linux does, IRQ 4 unmasked.
func newUARTRig(t *testing.T) *uartRig {
	t.Helper()
	r := &uartRig{pic: NewPIC()}
	r.u = NewUART(&r.out, r.pic, COM1IRQ)
	linuxInitPIC(t, r.pic, 0x01)
	unmask(r.pic, COM1IRQ)
	return r
}

// irq4 reports whether IRQ 4 is pending and, if so, takes and ends it.
func (r *uartRig) irq4(t *testing.T) bool {
	t.Helper()
	if !r.pic.Pending() {
		return false
	}
	if v, ok := r.pic.Ack(); v != 0x34 || !ok {
		t.Fatalf("Ack = %#x %v, want IRQ 4's 0x34", v, ok)
	}
	linuxEOI(r.pic, COM1IRQ)
	return true
}

func TestUARTTransmit(t *testing.T) {
	r := newUARTRig(t)
	outb(r.u, com1LCR, 0x03) // 8N1
	for _, c := range []byte("hello\n") {
		if lsr := inb(r.u, com1LSR); lsr&0x60 != 0x60 {
			t.Fatalf("LSR = %#x without THRE|TEMT", lsr)
		}
		outb(r.u, com1THR, c)
	}
	if got := r.out.String(); got != "hello\n" {
		t.Errorf("output %q", got)
	}
	// A word write is two byte writes: THR then IER.
	r.u.Out(com1THR, 2, 'x')
	if got := r.out.String(); got != "hello\nx" {
		t.Errorf("output after word write %q", got)
	}
}

func TestUARTDivisorLatch(t *testing.T) {
	r := newUARTRig(t)
	outb(r.u, com1IER, 0x05)
	outb(r.u, com1LCR, 0x83)
	outb(r.u, COM1Base+uartDLL, 0x01) // 115200 baud
	outb(r.u, COM1Base+uartDLM, 0x00)
	if dll, dlm := inb(r.u, COM1Base+uartDLL), inb(r.u, COM1Base+uartDLM); dll != 1 || dlm != 0 {
		t.Errorf("divisor = %#x %#x", dll, dlm)
	}
	if r.out.Len() != 0 {
		t.Error("divisor write went to the output")
	}
	outb(r.u, com1LCR, 0x03)
	if got := inb(r.u, com1IER); got != 0x05 {
		t.Errorf("IER after DLAB = %#x, want 0x05", got)
	}
	if got := inb(r.u, com1LCR); got != 0x03 {
		t.Errorf("LCR = %#x", got)
	}
	outb(r.u, com1THR, 'a')
	if r.out.String() != "a" {
		t.Errorf("output %q", r.out.String())
	}
}

func TestUARTRegisters(t *testing.T) {
	tests := []struct {
		name   string
		writes [][2]uint16 // port, value
		port   uint16
		want   uint8
	}{
		{"IER keeps four bits", [][2]uint16{{com1IER, 0xFF}}, com1IER, 0x0F},
		{"IIR idle without FIFO", nil, com1IIR, 0x01},
		{"IIR FIFO bits", [][2]uint16{{com1FCR, 0x01}}, com1IIR, 0xC1},
		{"IIR FIFO off again", [][2]uint16{{com1FCR, 0x01}, {com1FCR, 0x00}}, com1IIR, 0x01},
		{"LSR idle", nil, com1LSR, 0x60},
		{"LSR write ignored", [][2]uint16{{com1LSR, 0x1F}}, com1LSR, 0x60},
		{"MSR outside loopback", nil, com1MSR, 0xB0},
		{"MCR keeps five bits", [][2]uint16{{com1MCR, 0xFF}}, com1MCR, 0x1F},
		{"SCR", [][2]uint16{{com1SCR, 0x5A}}, com1SCR, 0x5A},
		{"RBR empty", nil, com1THR, 0},
		{"loopback MSR (Linux's autoconfig check)", [][2]uint16{{com1MCR, 0x1A}}, com1MSR, 0x90 | msrDDSR}, // DSR fell entering loopback
		{"loopback all outputs", [][2]uint16{{com1MCR, 0x1F}}, com1MSR, 0xF0},                              // RI rose: no TERI
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newUARTRig(t)
			for _, w := range tt.writes {
				outb(r.u, w[0], uint8(w[1]))
			}
			if got := inb(r.u, tt.port); got != tt.want {
				t.Errorf("%#x = %#x, want %#x", tt.port, got, tt.want)
			}
		})
	}
}

// TestUARTLinuxAutoconfig follows the probes of Linux's 8250 autoconfig
// and expects it to find a 16550A.
func TestUARTLinuxAutoconfig(t *testing.T) {
	r := newUARTRig(t)
	// IER scratch test.
	outb(r.u, com1IER, 0)
	s2 := inb(r.u, com1IER) & 0x0F
	outb(r.u, com1IER, 0x0F)
	s3 := inb(r.u, com1IER) & 0x0F
	outb(r.u, com1IER, 0)
	if s2 != 0 || s3 != 0x0F {
		t.Fatalf("IER test %#x %#x", s2, s3)
	}
	// Loopback test: MSR status bits must read DCD|CTS.
	outb(r.u, com1MCR, 0x10|0x0A)
	if st := inb(r.u, com1MSR) & 0xF0; st != 0x90 {
		t.Fatalf("loopback MSR status %#x", st)
	}
	outb(r.u, com1MCR, 0)
	// FIFO probe: IIR bits 7-6 = 3 means 16550A.
	outb(r.u, com1FCR, 0x01)
	if kind := inb(r.u, com1IIR) >> 6; kind != 3 {
		t.Fatalf("FIFO kind %d, want 3", kind)
	}
	// No EFR: with LCR 0xBF, register 2 reads IIR, which is not zero.
	outb(r.u, com1LCR, 0xBF)
	if efr := inb(r.u, com1IIR); efr == 0 {
		t.Fatal("register 2 reads 0 under LCR 0xBF: looks like an EFR")
	}
	// Not a 16750: IIR bit 5 stays clear whatever FCR bit 5 says.
	outb(r.u, com1LCR, 0)
	outb(r.u, com1FCR, 0x21)
	if b := inb(r.u, com1IIR) & 0xE0; b != 0xC0 {
		t.Fatalf("IIR FIFO bits %#x, want 0xc0", b)
	}
	outb(r.u, com1FCR, 0)
	// Not an XScale: IER bit 6 does not stick.
	outb(r.u, com1IER, 0x40)
	if inb(r.u, com1IER)&0x40 != 0 {
		t.Fatal("IER UUE bit stuck")
	}
}

// TestUARTTHREInterrupt checks the THR-empty interrupt the way Linux's
// serial8250_startup tests it, then its behaviour around transmission.
func TestUARTTHREInterrupt(t *testing.T) {
	r := newUARTRig(t)
	outb(r.u, com1MCR, mcrOUT2|mcrDTR|mcrRTS)
	// Linux's THRE test: IER=THRI, read IIR, IER=0, IER=THRI, read IIR.
	outb(r.u, com1IER, ierTHRE)
	iir1 := inb(r.u, com1IIR)
	outb(r.u, com1IER, 0)
	outb(r.u, com1IER, ierTHRE)
	iir := inb(r.u, com1IIR)
	outb(r.u, com1IER, 0)
	if iir1 != 0x02 || iir != 0x02 {
		t.Fatalf("THRE test: IIR %#x then %#x, want 0x02 both times", iir1, iir)
	}
	r.irq4(t) // the edge from the test, as Linux would see it

	// Enabling THRI raises the line; reading IIR clears the condition.
	outb(r.u, com1IER, ierTHRE)
	if !r.irq4(t) {
		t.Fatal("no IRQ 4 when THRI was enabled")
	}
	if got := inb(r.u, com1IIR); got != 0x02 {
		t.Fatalf("IIR = %#x, want THRE", got)
	}
	if got := inb(r.u, com1IIR); got != 0x01 {
		t.Fatalf("IIR after reading THRE = %#x, want none", got)
	}
	if r.pic.Pending() {
		t.Fatal("IRQ 4 still pending after the THRE condition cleared")
	}
	// Each byte written sends at once and raises THRE again: a new edge.
	for i := 0; i < 3; i++ {
		outb(r.u, com1THR, 'a'+uint8(i))
		if !r.irq4(t) {
			t.Fatalf("byte %d: no IRQ 4 after transmit", i)
		}
		if got := inb(r.u, com1IIR); got != 0x02 {
			t.Fatalf("byte %d: IIR = %#x", i, got)
		}
	}
	// Disabling THRI drops the request.
	outb(r.u, com1THR, 'z')
	outb(r.u, com1IER, 0)
	if got := inb(r.u, com1IIR); got != 0x01 {
		t.Errorf("IIR with THRI off = %#x", got)
	}
	if r.out.String() != "abcz" {
		t.Errorf("output %q", r.out.String())
	}
}

func TestUARTReceive(t *testing.T) {
	tests := []struct {
		name    string
		fcr     uint8
		feed    string
		wantIIR uint8
	}{
		{"no FIFO, one byte", 0x00, "a", 0x04},
		{"FIFO trigger 1", 0x01, "a", 0xC4},
		{"FIFO trigger 8, below", 0x81, "abc", 0xCC},
		{"FIFO trigger 8, reached", 0x81, "abcdefgh", 0xC4},
		{"FIFO trigger 14, below", 0xC1, "abcdefghijklm", 0xCC},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newUARTRig(t)
			outb(r.u, com1FCR, tt.fcr)
			outb(r.u, com1MCR, mcrOUT2)
			outb(r.u, com1IER, ierRDA|ierRLS)
			if r.pic.Pending() {
				t.Fatal("IRQ 4 before input")
			}
			r.u.Feed([]byte(tt.feed))
			if !r.irq4(t) {
				t.Fatal("no IRQ 4 on input")
			}
			if got := inb(r.u, com1IIR); got != tt.wantIIR {
				t.Errorf("IIR = %#x, want %#x", got, tt.wantIIR)
			}
			var got []byte
			for inb(r.u, com1LSR)&lsrDR != 0 {
				got = append(got, inb(r.u, com1THR))
			}
			if string(got) != tt.feed {
				t.Errorf("received %q", got)
			}
			if iir := inb(r.u, com1IIR); iir&0x0F != 0x01 {
				t.Errorf("IIR after draining = %#x", iir)
			}
			if lsr := inb(r.u, com1LSR); lsr != 0x60 {
				t.Errorf("LSR after draining = %#x", lsr)
			}
			// The line fell, so new input makes a new edge.
			r.u.Feed([]byte("!"))
			if !r.irq4(t) {
				t.Error("no IRQ 4 for the next input")
			}
		})
	}
}

func TestUARTOut2GatesIRQ(t *testing.T) {
	r := newUARTRig(t)
	outb(r.u, com1IER, ierRDA)
	r.u.Feed([]byte("x"))
	if r.pic.Pending() {
		t.Fatal("IRQ 4 with OUT2 off")
	}
	if got := inb(r.u, com1IIR); got != 0x04 {
		t.Fatalf("IIR = %#x: the chip's interrupt should still be pending", got)
	}
	outb(r.u, com1MCR, mcrOUT2)
	if !r.irq4(t) {
		t.Fatal("no IRQ 4 once OUT2 is set")
	}
	// Loopback holds OUT2 inactive.
	outb(r.u, com1MCR, mcrOUT2|mcrLoop)
	outb(r.u, com1MCR, mcrOUT2)
	if !r.irq4(t) {
		t.Error("no new edge after leaving loopback")
	}
}

func TestUARTLoopback(t *testing.T) {
	r := newUARTRig(t)
	outb(r.u, com1MCR, mcrLoop)
	outb(r.u, com1THR, 'q')
	if r.out.Len() != 0 {
		t.Error("loopback byte reached the output")
	}
	if lsr := inb(r.u, com1LSR); lsr&lsrDR == 0 {
		t.Fatalf("LSR = %#x without DR", lsr)
	}
	if got := inb(r.u, com1THR); got != 'q' {
		t.Errorf("RBR = %q", got)
	}
	// Delta bits: set by changes, cleared by reading MSR.
	inb(r.u, com1MSR)
	outb(r.u, com1MCR, mcrLoop|mcrOUT1)
	if got := inb(r.u, com1MSR); got != msrRI {
		t.Errorf("MSR with OUT1 = %#x", got)
	}
	outb(r.u, com1MCR, mcrLoop)
	if got := inb(r.u, com1MSR); got != msrTERI {
		t.Errorf("MSR after RI fell = %#x", got)
	}
	if got := inb(r.u, com1MSR); got != 0 {
		t.Errorf("MSR deltas not cleared: %#x", got)
	}
	// A modem-status interrupt, reported by IIR.
	outb(r.u, com1IER, ierMS)
	outb(r.u, com1MCR, mcrLoop|mcrRTS)
	if got := inb(r.u, com1IIR); got != 0x00 {
		t.Errorf("IIR = %#x, want modem status 0x00", got)
	}
	inb(r.u, com1MSR)
	if got := inb(r.u, com1IIR); got != 0x01 {
		t.Errorf("IIR after MSR read = %#x", got)
	}
}

func TestUARTOverrun(t *testing.T) {
	r := newUARTRig(t)
	outb(r.u, com1FCR, 0x01)
	outb(r.u, com1MCR, mcrOUT2)
	outb(r.u, com1IER, ierRDA|ierRLS)
	r.u.Feed(bytes.Repeat([]byte{'a'}, UARTRxCapacity+100))
	if got := r.u.Overruns(); got != 100 {
		t.Errorf("overruns = %d", got)
	}
	if got := inb(r.u, com1IIR); got != 0xC6 {
		t.Errorf("IIR = %#x, want line status 0xc6", got)
	}
	if lsr := inb(r.u, com1LSR); lsr != 0x63 {
		t.Errorf("LSR = %#x, want DR|OE|THRE|TEMT", lsr)
	}
	if lsr := inb(r.u, com1LSR); lsr != 0x61 {
		t.Errorf("LSR after read = %#x: OE not cleared", lsr)
	}
	n := 0
	for inb(r.u, com1LSR)&lsrDR != 0 {
		inb(r.u, com1THR)
		n++
	}
	if n != UARTRxCapacity {
		t.Errorf("kept %d bytes", n)
	}
}

func TestUARTFIFOClear(t *testing.T) {
	r := newUARTRig(t)
	outb(r.u, com1FCR, 0x01)
	r.u.Feed([]byte("abc"))
	outb(r.u, com1FCR, 0x03)
	if inb(r.u, com1LSR)&lsrDR != 0 {
		t.Error("RX FIFO not cleared")
	}
	r.u.Feed([]byte("abc"))
	outb(r.u, com1FCR, 0x00) // toggling enable clears too
	if inb(r.u, com1LSR)&lsrDR != 0 {
		t.Error("RX FIFO survived disabling FIFOs")
	}
}

func TestUARTConcurrentFeed(t *testing.T) {
	r := newUARTRig(t)
	outb(r.u, com1MCR, mcrOUT2)
	outb(r.u, com1IER, ierRDA)
	const n = 2000
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < n; i++ {
			r.u.Feed([]byte{byte(i)})
		}
	}()
	got := 0
	for got < n {
		if inb(r.u, com1LSR)&lsrDR != 0 {
			if b := inb(r.u, com1THR); b != byte(got) {
				t.Fatalf("byte %d = %d", got, b)
			}
			got++
		}
		r.pic.Pending()
	}
	wg.Wait()
}
