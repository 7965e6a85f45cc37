package emul

import (
	"errors"
	"fmt"
)

// PCState is the saved state of the whole legacy PC (see PC.Save): one
// field per device. The wiring between them (which PIC line each drives,
// port 0x61 bit 0 gating PIT counter 2) is fixed by NewPC and not saved;
// PC.Restore checks that the devices' states agree on it.
type PCState struct {
	PIC  PICState
	PIT  PITState
	UART UARTState
	RTC  RTCState
	Sys  SysCtlState
	KBD  I8042State
}

// Save returns the state of every device of the PC. Precondition: no vCPU
// runs (the VM is paused), so no port access falls between the devices'
// saves; console input fed meanwhile lands on one side of the save.
func (pc *PC) Save() PCState {
	return PCState{
		PIC:  pc.PIC.Save(),
		PIT:  pc.PIT.Save(),
		UART: pc.UART.Save(),
		RTC:  pc.RTC.Save(),
		Sys:  pc.Sys.Save(),
		KBD:  pc.KBD.Save(),
	}
}

// Restore puts back a state from Save into this PC, or refuses it
// (changing no device) when any device refuses its part or the parts
// disagree. The PC's Clock must read at least what it read at the save:
// restore the VM clock first. Afterwards the PIT's OnReprogram is called,
// so that the VM re-arms its timer from PIT.NextDeadline, and the PIC's
// OnChange if its output level changed. Precondition: no vCPU runs.
func (pc *PC) Restore(st PCState) error {
	if err := pc.check(&st); err != nil {
		return err
	}
	pc.RTC.mu.Lock()
	off, err := st.RTC.check(pc.RTC.clockNow(), pc.RTC.wall())
	if err != nil {
		pc.RTC.mu.Unlock()
		return err
	}
	pc.PIT.mu.Lock()
	if err := st.PIT.check(pc.PIT.clk.Now()); err != nil {
		pc.PIT.mu.Unlock()
		pc.RTC.mu.Unlock()
		return err
	}
	// Nothing can fail from here on.
	pc.PIT.apply(st.PIT)
	pc.PIT.mu.Unlock()
	pc.RTC.apply(st.RTC, off)
	pc.RTC.mu.Unlock()

	pc.UART.mu.Lock()
	pc.UART.apply(st.UART)
	pc.UART.mu.Unlock()
	pc.Sys.mu.Lock()
	pc.Sys.portB, pc.Sys.refresh, pc.Sys.post, pc.Sys.portA = st.Sys.PortB, st.Sys.Refresh, st.Sys.POST, st.Sys.PortA
	pc.Sys.mu.Unlock()
	pc.KBD.mu.Lock()
	pc.KBD.pending = st.KBD.Pending
	pc.KBD.mu.Unlock()
	pc.PIC.mu.Lock()
	pc.PIC.apply(st.PIC)
	pc.PIC.unlockAndNotify()

	if pc.PIT.OnReprogram != nil {
		pc.PIT.OnReprogram()
	}
	return nil
}

// check validates the parts that need no device and the wiring between
// them.
func (pc *PC) check(st *PCState) error {
	for _, err := range []error{st.PIC.check(), st.UART.check(), st.Sys.check(), st.KBD.check()} {
		if err != nil {
			return err
		}
	}
	pit := &st.PIT.Counters
	master := st.PIC.Chips[0].Line
	var uart UART
	uart.apply(st.UART)
	switch {
	case !pit[0].Gate || !pit[1].Gate:
		return errors.New("emul: PC: PIT counters 0 and 1 have their gates tied high")
	case pit[2].Gate != (st.Sys.PortB&portBGate2 != 0):
		return fmt.Errorf("emul: PC: PIT counter 2 gate %v but port 0x61 is %#02x", pit[2].Gate, st.Sys.PortB)
	case st.PIT.IRQLevel != (master&(1<<0) != 0):
		return fmt.Errorf("emul: PC: PIT drives IRQ 0 %v but the PIC's line is %v", st.PIT.IRQLevel, !st.PIT.IRQLevel)
	case uart.level() != (master&(1<<COM1IRQ) != 0):
		return fmt.Errorf("emul: PC: COM1 drives IRQ %d %v but the PIC's line is %v", COM1IRQ, uart.level(), !uart.level())
	}
	return nil
}
