package emul

import (
	"io"
	"sync"
)

// The first serial port of a PC and its interrupt line.
const (
	COM1Base = 0x3F8
	COM1IRQ  = 4

	// UARTRxCapacity bounds the receive queue fed by Feed.
	UARTRxCapacity = 4096
)

// 16550A registers, as offsets from the base port, and their bits.
const (
	uartRBR = 0 // read, DLAB=0: receive buffer
	uartTHR = 0 // write, DLAB=0: transmit holding
	uartDLL = 0 // DLAB=1: divisor latch, low byte
	uartIER = 1 // DLAB=0: interrupt enable
	uartDLM = 1 // DLAB=1: divisor latch, high byte
	uartIIR = 2 // read: interrupt identification
	uartFCR = 2 // write: FIFO control
	uartLCR = 3
	uartMCR = 4
	uartLSR = 5
	uartMSR = 6
	uartSCR = 7

	ierRDA  = 0x01 // received data available (and character timeout)
	ierTHRE = 0x02 // transmit holding register empty
	ierRLS  = 0x04 // receiver line status
	ierMS   = 0x08 // modem status
	ierMask = 0x0F // the bits a 16550A keeps

	iirNone    = 0x01
	iirMS      = 0x00
	iirTHRE    = 0x02
	iirRDA     = 0x04
	iirRLS     = 0x06
	iirTimeout = 0x0C
	iirFIFO    = 0xC0

	fcrEnable  = 0x01
	fcrClearRx = 0x02
	fcrClearTx = 0x04
	fcrTrigger = 0xC0

	lcrDLAB = 0x80

	mcrDTR  = 0x01
	mcrRTS  = 0x02
	mcrOUT1 = 0x04
	mcrOUT2 = 0x08
	mcrLoop = 0x10
	mcrMask = 0x1F

	lsrDR   = 0x01
	lsrOE   = 0x02
	lsrTHRE = 0x20
	lsrTEMT = 0x40

	msrDCTS = 0x01
	msrDDSR = 0x02
	msrTERI = 0x04
	msrDDCD = 0x08
	msrCTS  = 0x10
	msrDSR  = 0x20
	msrRI   = 0x40
	msrDCD  = 0x80
)

// uartTriggerLevels are the receive FIFO trigger levels FCR bits 7-6 pick.
var uartTriggerLevels = [4]int{1, 4, 8, 14}

// UART is a 16550A. Transmission is instant: a byte written to THR goes to
// the output writer at once, so LSR always shows THRE and TEMT. Received
// bytes come from Feed into a queue of UARTRxCapacity bytes that stands for
// the receive FIFO; what does not fit is dropped and reported as an overrun
// (LSR OE).
//
// Modelled: RBR/THR, IER (the four 16550A bits), IIR with its priorities
// (line status, received data, character timeout, THR empty, modem status)
// and the 0xC0 FIFO bits, FCR (enable, clear, trigger level; toggling the
// enable clears the FIFOs), LCR with DLAB and the divisor latch, MCR with
// loopback (THR feeds the receiver; RTS, DTR, OUT1 and OUT2 appear as CTS,
// DSR, RI and DCD in MSR, with delta bits), LSR, MSR (CTS, DSR and DCD
// asserted outside loopback), SCR.
//
// Interrupts, as on a PC: the line to the PIC is the chip's INTR gated by
// MCR OUT2; in loopback mode OUT2 is held inactive, so the line is low.
// The THR-empty interrupt is raised when IER.THRI goes from 0 to 1 (THR is
// always empty) and after every byte written to THR, and cleared by
// writing THR or by reading IIR when it is the interrupt IIR reports; Linux's
// 8250 driver tests exactly that when it opens the port. Received data
// raises "data available" when the queue holds the trigger level (one byte
// without FIFOs) and "character timeout" when it holds less, at once rather
// than four character times later, since nothing more will arrive before
// the guest reads.
//
// Not modelled: baud rate and framing (the divisor and LCR are stored and
// have no effect), parity, framing and break errors, DMA mode, the 16750's
// 64-byte FIFO.
//
// mu protects everything below it; out is written with mu held, so a slow
// writer slows Feed too. Lock order: UART before PIC.
type UART struct {
	mu  sync.Mutex
	out io.Writer
	pic *PIC
	irq int

	rx      []byte // the receive queue, oldest first
	rbr     uint8  // the last byte read from RBR
	ier     uint8
	lcr     uint8
	mcr     uint8
	lsrErr  uint8 // OE, until LSR is read
	msr     uint8 // delta bits; the state bits are computed
	scr     uint8
	dll     uint8
	dlm     uint8
	fifo    bool
	trigger int

	thrPending bool // the THR-empty interrupt condition
	line       bool // the level last driven on the PIC
	overruns   uint64
}

// NewUART returns a 16550A writing to out (nil discards) and driving PIC
// line irq (pic may be nil). It is in its reset state: interrupts off,
// FIFOs off, 8N1 at divisor 0, no modem control outputs. Any base port
// aligned to 8 works: the register is the port's low three bits.
func NewUART(out io.Writer, pic *PIC, irq int) *UART {
	if out == nil {
		out = io.Discard
	}
	return &UART{out: out, pic: pic, irq: irq, trigger: 1}
}

// Feed queues input for the receiver. It may be called from any goroutine.
// Bytes beyond UARTRxCapacity are dropped and set LSR's overrun bit.
func (u *UART) Feed(p []byte) {
	if len(p) == 0 {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.receive(p)
	u.update()
}

// Overruns returns how many input bytes have been dropped because the
// receive queue was full.
func (u *UART) Overruns() uint64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.overruns
}

// Precondition: mu held.
func (u *UART) receive(p []byte) {
	room := UARTRxCapacity - len(u.rx)
	if len(p) > room {
		u.overruns += uint64(len(p) - room)
		u.lsrErr |= lsrOE
		p = p[:room]
	}
	u.rx = append(u.rx, p...)
}

// In implements PortDevice for the eight registers.
func (u *UART) In(port uint16, size int) uint32 {
	u.mu.Lock()
	defer u.mu.Unlock()
	base := port &^ 7
	v := inBytes(port, size, func(p uint16) uint8 {
		if p&^7 != base {
			return 0xFF
		}
		return u.readByte(p)
	})
	u.update()
	return v
}

// Out implements PortDevice for the eight registers.
func (u *UART) Out(port uint16, size int, v uint32) {
	u.mu.Lock()
	defer u.mu.Unlock()
	base := port &^ 7
	outBytes(port, size, v, func(p uint16, b uint8) {
		if p&^7 == base {
			u.writeByte(p, b)
		}
	})
	u.update()
}

// Precondition: mu held.
func (u *UART) readByte(port uint16) uint8 {
	dlab := u.lcr&lcrDLAB != 0
	switch port & 7 {
	case uartRBR:
		if dlab {
			return u.dll
		}
		if len(u.rx) > 0 {
			u.rbr = u.rx[0]
			u.rx = u.rx[1:]
			if len(u.rx) == 0 {
				u.rx = u.rx[:0:0] // let the backing array go
			}
		}
		return u.rbr
	case uartIER:
		if dlab {
			return u.dlm
		}
		return u.ier
	case uartIIR:
		id := u.iir()
		if id == iirTHRE {
			u.thrPending = false
		}
		if u.fifo {
			id |= iirFIFO
		}
		return id
	case uartLCR:
		return u.lcr
	case uartMCR:
		return u.mcr
	case uartLSR:
		v := u.lsr()
		u.lsrErr = 0
		return v
	case uartMSR:
		v := u.msr | u.modemState()
		u.msr = 0
		return v
	default:
		return u.scr
	}
}

// Precondition: mu held.
func (u *UART) writeByte(port uint16, v uint8) {
	dlab := u.lcr&lcrDLAB != 0
	switch port & 7 {
	case uartTHR:
		if dlab {
			u.dll = v
			return
		}
		u.thrPending = false
		u.update() // a THRE interrupt falls here and rises again below
		if u.mcr&mcrLoop != 0 {
			u.receive([]byte{v})
		} else {
			_, _ = u.out.Write([]byte{v})
		}
		u.thrPending = true
	case uartIER:
		if dlab {
			u.dlm = v
			return
		}
		old := u.ier
		u.ier = v & ierMask
		if u.ier&ierTHRE != 0 && old&ierTHRE == 0 {
			u.thrPending = true // THR is always empty
		}
	case uartFCR:
		u.writeFCR(v)
	case uartLCR:
		u.lcr = v
	case uartMCR:
		old := u.modemState()
		u.mcr = v & mcrMask
		u.noteModemChange(old)
	case uartLSR, uartMSR:
		// Read-only (factory test on some parts).
	default:
		u.scr = v
	}
}

// writeFCR: on a 16550A the other bits only take effect with the enable
// bit set, and changing the enable bit clears both FIFOs.
// Precondition: mu held.
func (u *UART) writeFCR(v uint8) {
	enable := v&fcrEnable != 0
	if enable != u.fifo {
		u.rx = u.rx[:0]
	}
	u.fifo = enable
	if !enable {
		u.trigger = 1
		return
	}
	if v&fcrClearRx != 0 {
		u.rx = u.rx[:0]
	}
	u.trigger = uartTriggerLevels[v&fcrTrigger>>6]
}

// lsr is the line status: THRE and TEMT always, DR with data queued.
// Precondition: mu held.
func (u *UART) lsr() uint8 {
	v := uint8(lsrTHRE|lsrTEMT) | u.lsrErr
	if len(u.rx) > 0 {
		v |= lsrDR
	}
	return v
}

// modemState is MSR's upper nibble: the modem inputs, or in loopback the
// modem control outputs wired back.
// Precondition: mu held.
func (u *UART) modemState() uint8 {
	if u.mcr&mcrLoop == 0 {
		return msrCTS | msrDSR | msrDCD
	}
	var v uint8
	if u.mcr&mcrRTS != 0 {
		v |= msrCTS
	}
	if u.mcr&mcrDTR != 0 {
		v |= msrDSR
	}
	if u.mcr&mcrOUT1 != 0 {
		v |= msrRI
	}
	if u.mcr&mcrOUT2 != 0 {
		v |= msrDCD
	}
	return v
}

// noteModemChange sets MSR's delta bits for the inputs that changed from
// old. RI's delta (TERI) is set on its trailing edge only.
// Precondition: mu held.
func (u *UART) noteModemChange(old uint8) {
	now := u.modemState()
	d := old ^ now
	if d&msrCTS != 0 {
		u.msr |= msrDCTS
	}
	if d&msrDSR != 0 {
		u.msr |= msrDDSR
	}
	if d&msrRI != 0 && now&msrRI == 0 {
		u.msr |= msrTERI
	}
	if d&msrDCD != 0 {
		u.msr |= msrDDCD
	}
}

// iir is the identification of the highest priority pending interrupt,
// without the FIFO bits.
// Precondition: mu held.
func (u *UART) iir() uint8 {
	switch {
	case u.ier&ierRLS != 0 && u.lsrErr != 0:
		return iirRLS
	case u.ier&ierRDA != 0 && len(u.rx) >= u.trigger:
		return iirRDA
	case u.ier&ierRDA != 0 && len(u.rx) > 0:
		return iirTimeout
	case u.ier&ierTHRE != 0 && u.thrPending:
		return iirTHRE
	case u.ier&ierMS != 0 && u.msr&0x0F != 0:
		return iirMS
	}
	return iirNone
}

// update drives the interrupt line: INTR gated by OUT2, which loopback
// forces inactive.
// Precondition: mu held.
func (u *UART) update() {
	level := u.level()
	if level == u.line {
		return
	}
	u.line = level
	if u.pic != nil {
		u.pic.SetLine(u.irq, level)
	}
}

// level is the interrupt line's level as the registers make it.
// Precondition: mu held.
func (u *UART) level() bool {
	return u.iir() != iirNone && u.mcr&mcrOUT2 != 0 && u.mcr&mcrLoop == 0
}
