package lapic

import (
	"fmt"
	"sync"
)

// Interprocessor interrupts: the ICR's fields, the Bus that carries them,
// and Group, the Bus of one VM's LAPICs.

// DeliveryMode is the ICR's delivery mode (bits 10:8).
type DeliveryMode uint8

const (
	Fixed          DeliveryMode = 0
	LowestPriority DeliveryMode = 1
	SMI            DeliveryMode = 2
	modeReserved   DeliveryMode = 3 // the P6's remote read
	NMI            DeliveryMode = 4
	INIT           DeliveryMode = 5
	StartUp        DeliveryMode = 6 // SIPI
	ExtINT         DeliveryMode = 7
)

var modeNames = [8]string{"fixed", "lowest-priority", "SMI", "reserved", "NMI", "INIT", "start-up", "ExtINT"}

func (m DeliveryMode) String() string {
	if int(m) < len(modeNames) {
		return modeNames[m]
	}
	return fmt.Sprintf("DeliveryMode(%d)", uint8(m))
}

// Shorthand is the ICR's destination shorthand (bits 19:18).
type Shorthand uint8

const (
	NoShorthand      Shorthand = 0 // the destination field names the targets
	Self             Shorthand = 1
	AllIncludingSelf Shorthand = 2
	AllExcludingSelf Shorthand = 3
)

var shorthandNames = [4]string{"none", "self", "all", "all-but-self"}

func (s Shorthand) String() string {
	if int(s) < len(shorthandNames) {
		return shorthandNames[s]
	}
	return fmt.Sprintf("Shorthand(%d)", uint8(s))
}

// IPI is an interprocessor interrupt as the sender's ICR describes it.
type IPI struct {
	// Vector is the interrupt vector (fixed, lowest priority) or the
	// start-up page number (SIPI: the AP starts at Vector·4096).
	Vector uint8
	Mode   DeliveryMode
	// Logical is the destination mode: Dest is a logical destination
	// matched against each LAPIC's LDR under its DFR (flat or cluster
	// model), rather than an APIC ID.
	Logical bool
	// Assert is the level bit (14): clear only in an INIT level de-assert.
	Assert bool
	// LevelTriggered is the trigger-mode bit (15). Only INIT level
	// de-assert uses it; every IPI is delivered edge-triggered.
	LevelTriggered bool
	Shorthand      Shorthand
	// Dest is the destination field (ICR bits 63:56): an APIC ID, 0xFF
	// for all in physical mode, or a logical destination.
	Dest uint8
}

// ICR bit positions.
const (
	icrLogical  = 1 << 11
	icrAssert   = 1 << 14
	icrLevel    = 1 << 15
	icrShShift  = 18
	icrDestBits = 24
)

// DecodeICR returns the IPI an ICR holds (low and high words).
func DecodeICR(low, high uint32) IPI {
	return IPI{
		Vector:         uint8(low),
		Mode:           DeliveryMode(low >> 8 & 7),
		Logical:        low&icrLogical != 0,
		Assert:         low&icrAssert != 0,
		LevelTriggered: low&icrLevel != 0,
		Shorthand:      Shorthand(low >> icrShShift & 3),
		Dest:           uint8(high >> icrDestBits),
	}
}

// ICR returns the ICR words that send p.
func (p IPI) ICR() (low, high uint32) {
	low = uint32(p.Vector) | uint32(p.Mode&7)<<8 | uint32(p.Shorthand&3)<<icrShShift
	if p.Logical {
		low |= icrLogical
	}
	if p.Assert {
		low |= icrAssert
	}
	if p.LevelTriggered {
		low |= icrLevel
	}
	return low, uint32(p.Dest) << icrDestBits
}

// Bus carries the IPIs of a VM's LAPICs. SendIPI is called on the sending
// vCPU's goroutine, without the sender's lock held, so it may deliver back
// to the sender.
type Bus interface {
	SendIPI(src uint32, ipi IPI)
}

// matchLogical reports whether logical destination dest names this LAPIC:
// in the flat model (DFR bits 31:28 = 1111) when dest and LDR bits 31:24
// share a bit; in the cluster model (0000) when dest's cluster (bits 7:4)
// is LDR's or 0xF (all clusters) and their member bits (3:0) share one. A
// DFR of any other model matches nothing.
func (l *LAPIC) matchLogical(dest uint8) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.r.enabled {
		return false
	}
	ldr := uint8(l.r.ldr >> 24)
	switch l.r.dfr >> 28 {
	case 0xF:
		return dest&ldr != 0
	case 0x0:
		c := dest >> 4
		return (c == 0xF || c == ldr>>4) && dest&ldr&0xF != 0
	}
	return false
}

// Group is the Bus of one VM: it holds the VM's LAPICs by APIC ID and
// routes each IPI to its targets:
//
//	mode                    to each target
//	fixed, lowest priority  Deliver(vector, edge); lowest priority is not
//	                        arbitrated: every target gets it, as fixed
//	NMI                     Signal
//	INIT, level bit set     the target's InitReset, then Signal
//	INIT, level bit clear   dropped: the level de-assert, a synchronization
//	                        message without effect since the Pentium 4
//	start-up (SIPI)         Signal, with the start-up page in Vector
//	SMI, reserved, ExtINT   dropped (no SMM; the others are not IPIs on
//	                        an xAPIC)
//
// Targets: the Self shorthand names the sender and carries fixed and
// lowest-priority IPIs only (the others are invalid with it and dropped);
// AllIncludingSelf and AllExcludingSelf name every LAPIC of the group with
// and without the sender; with no shorthand, a physical Dest is one APIC
// ID, or every LAPIC for 0xFF, and a logical Dest is matched against each
// LAPIC's LDR and DFR (flat and cluster models). An ID with no LAPIC, and a
// LAPIC that is globally disabled, receive nothing.
//
// mu protects byID. It is held, for reading, only while SendIPI picks the
// targets; Deliver, InitReset and Signal are called without it.
type Group struct {
	// Signal, when not nil, is called for each target of an NMI, INIT or
	// SIPI on the sender's goroutine: the hypervisor injects the NMI,
	// resets the target vCPU into wait-for-SIPI, or starts a waiting one
	// at Vector·4096 (a SIPI to a vCPU not waiting for one does
	// nothing). Nil drops them. Set it before the Group is shared.
	Signal func(dst uint32, ipi IPI)

	mu   sync.RWMutex
	byID [MaxID + 1]*LAPIC
}

// NewGroup returns an empty Group with the given Signal.
func NewGroup(signal func(dst uint32, ipi IPI)) *Group {
	return &Group{Signal: signal}
}

// Add puts l in the group. An ID already in it is refused.
func (g *Group) Add(l *LAPIC) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.byID[l.id] != nil {
		return fmt.Errorf("lapic: APIC ID %d is already in the group", l.id)
	}
	g.byID[l.id] = l
	return nil
}

// LAPIC returns the LAPIC with APIC ID id, or nil.
func (g *Group) LAPIC(id uint32) *LAPIC {
	if id > MaxID {
		return nil
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.byID[id]
}

// SendIPI implements Bus.SendIPI. It does work bounded by the group's
// size and allocates nothing.
func (g *Group) SendIPI(src uint32, ipi IPI) {
	var targets [MaxID + 1]*LAPIC
	n := g.targets(src, ipi, &targets)
	for _, t := range targets[:n] {
		switch ipi.Mode {
		case Fixed, LowestPriority:
			t.Deliver(ipi.Vector, false)
		case NMI, StartUp:
			g.signal(t, ipi)
		case INIT:
			if ipi.Assert && t.Enabled() {
				t.InitReset()
				g.signal(t, ipi)
			}
		}
	}
}

// Interrupt implements InterruptBus: an I/O APIC's interrupt message,
// with the trigger mode of its redirection entry (level sets the
// targets' TMR bits, and their EOIs reach OnLevelEOI). msg.Shorthand is
// ignored: a message names its targets by destination. Fixed delivers to
// every target; lowest priority to one, the lowest APIC ID among them
// (the arbitration's tie-break; pvisor keeps every TPR's class out of
// it). NMI, SMI, INIT, start-up and ExtINT messages are dropped: the
// engine has no NMI or SMI, and an AP starts only once.
func (g *Group) Interrupt(msg IPI, level bool) {
	if msg.Mode != Fixed && msg.Mode != LowestPriority {
		return
	}
	msg.Shorthand = NoShorthand
	var targets [MaxID + 1]*LAPIC
	n := g.targets(0, msg, &targets)
	if msg.Mode == LowestPriority && n > 1 {
		n = 1
	}
	for _, t := range targets[:n] {
		t.Deliver(msg.Vector, level)
	}
}

// targets fills targets with the LAPICs ipi names, in APIC ID order, and
// returns how many.
func (g *Group) targets(src uint32, ipi IPI, targets *[MaxID + 1]*LAPIC) int {
	n := 0
	add := func(l *LAPIC) {
		if l != nil {
			targets[n] = l
			n++
		}
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	switch ipi.Shorthand {
	case Self:
		if src <= MaxID && (ipi.Mode == Fixed || ipi.Mode == LowestPriority) {
			add(g.byID[src])
		}
	case AllIncludingSelf, AllExcludingSelf:
		for id, l := range g.byID {
			if ipi.Shorthand == AllIncludingSelf || uint32(id) != src {
				add(l)
			}
		}
	default:
		switch {
		case ipi.Logical:
			for _, l := range g.byID {
				if l != nil && l.matchLogical(ipi.Dest) {
					add(l)
				}
			}
		case ipi.Dest == 0xFF:
			for _, l := range g.byID {
				add(l)
			}
		default:
			add(g.byID[ipi.Dest])
		}
	}
	return n
}

// signal passes an NMI, INIT or SIPI to Signal, unless its target is
// globally disabled (a CPU whose APIC is off receives no IPI).
func (g *Group) signal(t *LAPIC, ipi IPI) {
	if g.Signal != nil && t.Enabled() {
		g.Signal(t.id, ipi)
	}
}
