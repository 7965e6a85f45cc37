package lapic

import (
	"fmt"
	"sync"
)

// The I/O APIC of a trap- or hwassist-mode VM with several vCPUs: an
// 82093AA-style I/O APIC (version 0x11) with IOAPICPins inputs, whose
// register window sits at IOAPICBase. Its inputs are the ISA interrupt
// lines the 8259 pair sees too (pin n is ISA IRQ n: the ACPI tables name
// no source override), and it sends what they raise to the LAPICs as
// interrupt messages on an InterruptBus (Group.Interrupt).
//
//	register          index       access
//	ID                0x00        bits 27:24
//	version           0x01        read-only: 0x00170011 (24 pins, version 0x11)
//	arbitration       0x02        read-only: the ID's bits
//	redirection n     0x10+2n     low word: vector (7:0), delivery mode
//	                  0x11+2n     (10:8), destination mode (11), delivery
//	                              status (12, reads 0), polarity (13),
//	                              remote IRR (14, read-only), trigger mode
//	                              (15), mask (16); high word: destination
//	                              (31:24)
//
// The window is two 32-bit registers: IOREGSEL at offset 0 (the index, bits
// 7:0) and IOWIN at offset 0x10. Any other access (another size, another
// offset) reads 0 and is ignored; an index with no register reads 0 and
// ignores writes. Every entry starts masked, edge-triggered, vector 0.
//
// An edge-triggered pin sends its message on each rising edge of its line
// while unmasked; an edge while masked is lost, as on hardware. A level-
// triggered pin sends while its line is high, unmasked and remote IRR is
// clear, and sets remote IRR; an EOI of its vector (EOI, the LAPICs' EOI
// broadcast) clears remote IRR and sends again if the line is still high.
// Unmasking a level-triggered pin whose line is high sends. Writing edge
// mode clears remote IRR, which is how Linux clears a stuck one on an I/O
// APIC without an EOI register. Lines are logical: SetLine's level is
// "asserted", and polarity is only stored (every pvisor device drives its
// line high to assert it).
//
// A message carries the entry's vector, delivery mode, destination mode
// and destination; Group.Interrupt delivers fixed and lowest-priority
// messages and drops the others (NMI, SMI, INIT, ExtINT).
//
// Everything the guest writes is hostile: no value panics, allocates, or
// makes the host do more than IOAPICPins deliveries per access.
//
// An IOAPIC is safe for concurrent use: mu guards its registers and is held
// while it sends (the bus takes LAPIC locks, which never call back into the
// I/O APIC while held: a LAPIC calls OnLevelEOI after releasing its lock).
// Lock order: a device's own lock, then the IOAPIC's, then Group's and a
// LAPIC's.
type IOAPIC struct {
	bus InterruptBus

	mu    sync.Mutex
	id    uint32 // bits 27:24 of the ID register
	sel   uint32
	redir [IOAPICPins]uint64
	line  uint32 // the level of each pin's line, bit n for pin n
}

// InterruptBus carries an I/O APIC's interrupt messages to the LAPICs.
type InterruptBus interface {
	Interrupt(msg IPI, level bool)
}

// I/O APIC constants.
const (
	// IOAPICBase is the guest-physical address of the register window.
	IOAPICBase = 0xFEC00000
	// IOAPICPins is the number of inputs (redirection entries).
	IOAPICPins = 24
	// IOAPICVersion is the version register: the highest entry's index
	// (23) in bits 23:16 and version 0x11.
	IOAPICVersion = (IOAPICPins-1)<<16 | 0x11

	ioRegSel = 0x00
	ioWin    = 0x10

	ioIndexID      = 0x00
	ioIndexVersion = 0x01
	ioIndexArb     = 0x02
	ioIndexRedir   = 0x10

	redirVector   = 0xFF
	redirMode     = 7 << 8
	redirLogical  = 1 << 11
	redirPolarity = 1 << 13
	redirRemote   = 1 << 14
	redirLevel    = 1 << 15
	redirMasked   = 1 << 16
	redirDest     = 0xFF << 56
	// redirWritable is what a guest may set: everything but delivery
	// status and remote IRR.
	redirWritable = redirVector | redirMode | redirLogical | redirPolarity | redirLevel | redirMasked | redirDest
	ioIDBits      = 0xF << 24
)

// NewIOAPIC returns an I/O APIC with I/O APIC ID id (0-15) sending on bus,
// every entry masked.
func NewIOAPIC(id uint32, bus InterruptBus) (*IOAPIC, error) {
	if id > 15 || bus == nil {
		return nil, fmt.Errorf("%w: I/O APIC ID %d (want 0-15) and a bus", ErrConfig, id)
	}
	a := &IOAPIC{bus: bus, id: id << 24}
	a.reset()
	return a, nil
}

func (a *IOAPIC) reset() {
	a.sel = 0
	for i := range a.redir {
		a.redir[i] = redirMasked
	}
}

// Read is a guest read of size bytes at offset off of the register window.
func (a *IOAPIC) Read(off uint64, size int) uint32 {
	if size != 4 {
		return 0
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	switch off {
	case ioRegSel:
		return a.sel
	case ioWin:
		return a.readReg(a.sel)
	}
	return 0
}

// Write is a guest write of size bytes at offset off of the register
// window.
func (a *IOAPIC) Write(off uint64, size int, v uint32) {
	if size != 4 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	switch off {
	case ioRegSel:
		a.sel = v & 0xFF
	case ioWin:
		a.writeReg(a.sel, v)
	}
}

// Precondition: mu held.
func (a *IOAPIC) readReg(index uint32) uint32 {
	switch {
	case index == ioIndexID:
		return a.id
	case index == ioIndexVersion:
		return IOAPICVersion
	case index == ioIndexArb:
		return a.id
	case index >= ioIndexRedir && index < ioIndexRedir+2*IOAPICPins:
		e := a.redir[(index-ioIndexRedir)/2]
		if index&1 == 0 {
			return uint32(e)
		}
		return uint32(e >> 32)
	}
	return 0
}

// Precondition: mu held.
func (a *IOAPIC) writeReg(index, v uint32) {
	switch {
	case index == ioIndexID:
		a.id = v & ioIDBits
	case index >= ioIndexRedir && index < ioIndexRedir+2*IOAPICPins:
		pin := (index - ioIndexRedir) / 2
		old := a.redir[pin]
		e := old
		if index&1 == 0 {
			e = e&^0xFFFFFFFF | uint64(v)
		} else {
			e = e&0xFFFFFFFF | uint64(v)<<32
		}
		e = e&redirWritable | old&redirRemote
		if e&redirLevel == 0 {
			e &^= redirRemote
		}
		a.redir[pin] = e
		if old&redirMasked != 0 && e&redirMasked == 0 {
			a.sendLevel(int(pin))
		}
	}
}

// SetLine sets the level of input pin (0-IOAPICPins-1; others are
// ignored): true is asserted.
func (a *IOAPIC) SetLine(pin int, level bool) {
	if pin < 0 || pin >= IOAPICPins {
		return
	}
	bit := uint32(1) << pin
	a.mu.Lock()
	defer a.mu.Unlock()
	was := a.line&bit != 0
	if !level {
		a.line &^= bit
		return
	}
	a.line |= bit
	e := a.redir[pin]
	switch {
	case e&redirMasked != 0:
	case e&redirLevel == 0:
		if !was {
			a.send(e, false)
		}
	default:
		a.sendLevel(pin)
	}
}

// EOI is the EOI broadcast of a level-triggered vector (a LAPIC's
// OnLevelEOI): every level-triggered entry with that vector and remote
// IRR set has remote IRR cleared, and sends again if its line is still
// high.
func (a *IOAPIC) EOI(vector uint8) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for pin := range a.redir {
		e := a.redir[pin]
		if e&redirLevel != 0 && e&redirRemote != 0 && uint8(e) == vector {
			a.redir[pin] = e &^ redirRemote
			a.sendLevel(pin)
		}
	}
}

// sendLevel sends pin's message if it is level-triggered, unmasked, its
// line is high and remote IRR is clear, and sets remote IRR.
// Precondition: mu held.
func (a *IOAPIC) sendLevel(pin int) {
	e := a.redir[pin]
	if e&redirLevel == 0 || e&redirMasked != 0 || e&redirRemote != 0 || a.line&(1<<pin) == 0 {
		return
	}
	a.redir[pin] = e | redirRemote
	a.send(e, true)
}

// send puts entry e's message on the bus.
// Precondition: mu held.
func (a *IOAPIC) send(e uint64, level bool) {
	a.bus.Interrupt(IPI{
		Vector:  uint8(e),
		Mode:    DeliveryMode(e >> 8 & 7),
		Logical: e&redirLogical != 0,
		Dest:    uint8(e >> 56),
	}, level)
}
