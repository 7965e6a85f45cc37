package hypercall

import (
	"reflect"
	"testing"
)

// Golden sizes and offsets: changing any of these breaks the ABI.
func TestSharedLayout(t *testing.T) {
	for _, tc := range []struct {
		v       any
		size    uintptr
		offsets map[string]uintptr
	}{
		{PvclockTimeInfo{}, 32, map[string]uintptr{"Version": 0, "TSCTimestamp": 8, "SystemTime": 16, "TSCToSystemMul": 24, "TSCShift": 28, "Flags": 29}},
		{VCPUInfo{}, 64, map[string]uintptr{"UpcallPending": 0, "UpcallMask": 1, "PendingSel": 8, "Time": 16, "StealNs": 48}},
		{SharedInfo{}, 4096, map[string]uintptr{"VCPU": 0, "EvtchnPending": 2048, "EvtchnMask": 2112, "WallclockSec": 2176, "WallclockNsec": 2184, "WallclockVersion": 2188}},
		{StartInfo{}, 104, map[string]uintptr{"Magic": 0, "MemSize": 16, "MemmapGPA": 24, "MemmapEntries": 32, "CmdlineLen": 36, "CmdlineGPA": 40, "InitrdGPA": 48, "HypercallPageGPA": 64, "SharedInfoGPA": 72, "PageTableGPA": 80, "FreeGPA": 96}},
		{MemmapEntry{}, 24, map[string]uintptr{"Addr": 0, "Size": 8, "Type": 16}},
		{MMUOp{}, 24, map[string]uintptr{"Kind": 0, "Result": 4, "A": 8, "B": 16}},
		{MeasuredBoot{}, 104, map[string]uintptr{"Version": 0, "Algo": 4, "Kernel": 8, "Initrd": 40, "Cmdline": 72}},
		{VirtioInfo{}, 48, map[string]uintptr{"DeviceID": 0, "VendorID": 4, "DeviceFeatures": 8, "NumQueues": 16, "QueueNumMax": 20, "ConfigLen": 24, "ConfigGeneration": 28, "Status": 32, "Generation": 36, "Flags": 40}},
		{Lineage{}, 24, map[string]uintptr{"PatchLevel": 0, "Highest": 8, "Flags": 16}},
		{IntrospectTarget{}, 88, map[string]uintptr{"Handle": 0, "VCPUs": 4, "MemSize": 8, "Mode": 16, "Name": 24}},
		{IntrospectVCPU{}, 224, map[string]uintptr{"GPR": 0, "RIP": 128, "RFLAGS": 136, "CR0": 144, "CR2": 152, "CR3": 160, "CR4": 168, "EFER": 176, "FSBase": 184, "GSBase": 192, "Seq": 200, "CS": 208, "SS": 212, "CPL": 216, "Flags": 220}},
		{VCPUContext{}, 48, map[string]uintptr{"RIP": 0, "RSP": 8, "RDI": 16, "CR3": 24, "GSBase": 32, "Flags": 40}},
	} {
		typ := reflect.TypeOf(tc.v)
		if typ.Size() != tc.size {
			t.Errorf("%s: size %d, want %d", typ.Name(), typ.Size(), tc.size)
		}
		for name, off := range tc.offsets {
			f, ok := typ.FieldByName(name)
			if !ok {
				t.Errorf("%s: no field %s", typ.Name(), name)
				continue
			}
			if f.Offset != off {
				t.Errorf("%s.%s: offset %d, want %d", typ.Name(), name, f.Offset, off)
			}
		}
		// Explicit padding: the sum of field sizes equals the struct size.
		var sum uintptr
		for i := 0; i < typ.NumField(); i++ {
			sum += typ.Field(i).Type.Size()
		}
		if sum != typ.Size() {
			t.Errorf("%s: fields cover %d of %d bytes: pad explicitly", typ.Name(), sum, typ.Size())
		}
	}
}
