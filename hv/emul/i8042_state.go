package emul

import "fmt"

// I8042State is the saved state of the keyboard controller's reset lines
// (see I8042.Save).
type I8042State struct {
	// Pending is the command waiting for its data byte at port 0x60: 0
	// or 0xD1 (write output port).
	Pending uint8
}

// Save returns the controller's state.
func (k *I8042) Save() I8042State {
	k.mu.Lock()
	defer k.mu.Unlock()
	return I8042State{Pending: k.pending}
}

// Restore puts back a state from Save, or refuses it (changing nothing)
// for a command the controller does not keep.
func (k *I8042) Restore(st I8042State) error {
	if err := st.check(); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.pending = st.Pending
	return nil
}

func (st *I8042State) check() error {
	if st.Pending != 0 && st.Pending != i8042CmdWriteOut {
		return fmt.Errorf("emul: keyboard controller waits for data of command %#02x", st.Pending)
	}
	return nil
}
