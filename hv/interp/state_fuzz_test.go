package interp

import (
	"encoding/binary"
	"reflect"
	"testing"

	"github.com/pvisor/pvisor/hv/cpu"
)

// stateLeaves returns every integer and bool field of s (arrays walked,
// the MMIO answers slice too), settable.
func stateLeaves(v reflect.Value, out []reflect.Value) []reflect.Value {
	switch v.Kind() {
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			out = stateLeaves(v.Field(i), out)
		}
	case reflect.Array, reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			out = stateLeaves(v.Index(i), out)
		}
	case reflect.Bool, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Int,
		reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		out = append(out, v)
	}
	return out
}

// FuzzRestoreState mutates fields of a saved state (up to eight of them,
// each chosen and set from the input) and restores it: RestoreState never
// panics, and a state it accepts runs without an engine failure
// (ExitInternal) or a panic.
func FuzzRestoreState(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{3, 0, 0, 0, 0, 0, 0, 0x80, 0, 0})
	f.Add([]byte{200, 1, 0, 0, 0, 0, 0, 0, 0, 0, 17, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		src, _ := newStateMachine(t, cpu.ModeHWAssist)
		var d stateDriver
		d.run(t, src, 25)
		s := src.saveState()
		if len(in) > 0 && in[0]&1 != 0 {
			s.Internal.MMIOReads = make([]cpu.MMIORead, int(in[0]>>1)%4)
		}
		leaves := stateLeaves(reflect.ValueOf(&s).Elem(), nil)
		for k := 0; k+10 <= len(in) && k < 80; k += 10 {
			idx := int(binary.LittleEndian.Uint16(in[k:])) % len(leaves)
			v := binary.LittleEndian.Uint64(in[k+2:])
			switch l := leaves[idx]; l.Kind() {
			case reflect.Bool:
				l.SetBool(v&1 != 0)
			case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Int:
				l.SetInt(int64(v))
			default:
				l.SetUint(v)
			}
		}
		if err := src.cpu.RestoreState(s); err != nil {
			return
		}
		for i := 0; i < 20; i++ {
			e, err := src.cpu.Run(200)
			if err != nil {
				t.Fatal(err)
			}
			switch e.Reason {
			case cpu.ExitInternal:
				t.Fatalf("accepted state ends in an engine failure: %s", e.Message)
			case cpu.ExitTripleFault:
				return
			case cpu.ExitMMIO:
				e.MMIO.Data = 0
			}
		}
	})
}
