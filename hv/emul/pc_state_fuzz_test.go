package emul

import (
	"encoding/binary"
	"reflect"
	"testing"
	"time"
)

// leaves lists the settable scalar fields of v (a pointer to a struct),
// array and slice elements included.
func leaves(v reflect.Value) []reflect.Value {
	var out []reflect.Value
	var walk func(reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Struct:
			for i := range v.NumField() {
				walk(v.Field(i))
			}
		case reflect.Array, reflect.Slice:
			for i := range v.Len() {
				walk(v.Index(i))
			}
		default:
			out = append(out, v)
		}
	}
	walk(v.Elem())
	return out
}

// FuzzPCRestore sets fields of a busy PC's state to arbitrary values, a
// few at a time: Restore either refuses the state or accepts one the PC
// then runs on without a panic.
func FuzzPCRestore(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 1, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 41, 0, 2, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		good := busyPC(t).pc.Save()
		st, _ := gobRoundTrip(t, good)
		fields := leaves(reflect.ValueOf(&st))
		for len(data) >= 10 {
			fv := fields[int(binary.LittleEndian.Uint16(data))%len(fields)]
			x := binary.LittleEndian.Uint64(data[2:])
			data = data[10:]
			switch fv.Kind() {
			case reflect.Bool:
				fv.SetBool(x&1 != 0)
			case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
				fv.SetUint(x)
			case reflect.Int64:
				fv.SetInt(int64(x))
			default:
				t.Fatalf("field kind %v", fv.Kind())
			}
		}
		r := newPCRig(hostA, time.Duration(good.PIT.Clock))
		if err := r.pc.Restore(st); err != nil {
			return
		}
		script(r)
	})
}
