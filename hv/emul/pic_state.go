package emul

import (
	"errors"
	"fmt"
)

// PICState is the saved state of the 8259A pair (see PIC.Save).
type PICState struct {
	// Chips are the master (0) and the slave (1).
	Chips [2]I8259State
}

// I8259State is one 8259A. The edge/level mask of the ELCR (which inputs
// may be level-triggered) is a property of the chipset, not state.
type I8259State struct {
	// IRR, ISR and IMR are the interrupt request, in-service and mask
	// registers.
	IRR, ISR, IMR uint8
	// Line holds the input levels as last set by the devices, from which
	// edges are detected.
	Line uint8
	// ELCR holds the inputs made level-triggered through port 0x4D0 or
	// 0x4D1; only bits the chipset allows (0xF8 master, 0xDE slave).
	ELCR uint8
	// Base is ICW2: the vector of IR0, a multiple of 8.
	Base uint8
	// ICW3 is the master's mask of inputs with a slave, or the slave's
	// identity.
	ICW3 uint8
	// InitStep is 0 when the chip is operating, else the ICW (2, 3 or 4)
	// it expects next on its data port.
	InitStep uint8
	// NeedICW4, Single and LTIM are ICW1's IC4, SNGL and LTIM bits.
	NeedICW4, Single, LTIM bool
	// AEOI and SFNM are ICW4's automatic-EOI and special-fully-nested
	// bits; RotateAEOI is OCW2's rotate-in-automatic-EOI mode.
	AEOI, RotateAEOI, SFNM bool
	// ReadISR is OCW3's register select (ISR rather than IRR on the
	// command port), Poll a poll command waiting for its read, SMM the
	// special mask mode.
	ReadISR, Poll, SMM bool
	// Lowest is the input with the lowest priority (0-7), which rotation
	// moves.
	Lowest uint8
}

// Save returns the pair's state.
func (p *PIC) Save() PICState {
	p.mu.Lock()
	defer p.mu.Unlock()
	var st PICState
	for i := range p.chips {
		c := &p.chips[i]
		st.Chips[i] = I8259State{
			IRR: c.irr, ISR: c.isr, IMR: c.imr, Line: c.line, ELCR: c.elcr,
			Base: c.base, ICW3: c.icw3, InitStep: uint8(c.initStep),
			NeedICW4: c.needICW4, Single: c.single, LTIM: c.ltim,
			AEOI: c.aeoi, RotateAEOI: c.rotateAEOI, SFNM: c.sfnm,
			ReadISR: c.readISR, Poll: c.poll, SMM: c.smm, Lowest: c.lowest,
		}
	}
	return st
}

// Restore puts back a state from Save, or refuses it (changing nothing)
// when a field holds what the pair cannot reach. The master's output is
// recomputed; OnChange is called if it differs from the one before.
func (p *PIC) Restore(st PICState) error {
	if err := st.check(); err != nil {
		return err
	}
	p.mu.Lock()
	p.apply(st)
	p.unlockAndNotify()
	return nil
}

// check validates st without touching a PIC.
func (st *PICState) check() error {
	for i, c := range st.Chips {
		name := [2]string{"master", "slave"}[i]
		if err := c.check([2]uint8{elcrMaskMaster, elcrMaskSlave}[i]); err != nil {
			return fmt.Errorf("emul: PIC %s: %w", name, err)
		}
	}
	return nil
}

func (c *I8259State) check(elcrMask uint8) error {
	switch {
	case c.ELCR&^elcrMask != 0:
		return fmt.Errorf("ELCR %#02x sets bits outside %#02x", c.ELCR, elcrMask)
	case c.Base&7 != 0:
		return fmt.Errorf("ICW2 base %#02x is not a multiple of 8", c.Base)
	case c.Lowest > 7:
		return fmt.Errorf("lowest-priority input %d out of range", c.Lowest)
	}
	switch c.InitStep {
	case 0, 2:
	case 3:
		if c.Single {
			return errors.New("waits for ICW3 in single mode")
		}
	case 4:
		if !c.NeedICW4 {
			return errors.New("waits for ICW4 that ICW1 did not ask for")
		}
	default:
		return fmt.Errorf("initialization step %d out of range", c.InitStep)
	}
	// ICW1 clears ISR and every ICW4 function; ICW4 comes only when ICW1
	// asked for it; nothing is acknowledged while initializing or, into
	// ISR, in automatic-EOI mode.
	switch {
	case !c.NeedICW4 && (c.AEOI || c.SFNM):
		return errors.New("ICW4 modes set without ICW4")
	case c.InitStep != 0 && c.ISR != 0:
		return fmt.Errorf("ISR %#02x while initializing", c.ISR)
	case c.AEOI && c.ISR != 0:
		return fmt.Errorf("ISR %#02x in automatic-EOI mode", c.ISR)
	}
	return nil
}

// apply installs a checked state.
// Precondition: mu held.
func (p *PIC) apply(st PICState) {
	for i := range p.chips {
		c, s := &p.chips[i], &st.Chips[i]
		c.irr, c.isr, c.imr, c.line, c.elcr = s.IRR, s.ISR, s.IMR, s.Line, s.ELCR
		c.base, c.icw3, c.initStep = s.Base, s.ICW3, int(s.InitStep)
		c.needICW4, c.single, c.ltim = s.NeedICW4, s.Single, s.LTIM
		c.aeoi, c.rotateAEOI, c.sfnm = s.AEOI, s.RotateAEOI, s.SFNM
		c.readISR, c.poll, c.smm = s.ReadISR, s.Poll, s.SMM
		c.lowest = s.Lowest
	}
}
