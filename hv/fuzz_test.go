package hv

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hypercall"
	"github.com/pvisor/pvisor/mm"
)

// callGuest returns guest code that declares ABI version 1 (if declare),
// loads RAX and the six argument registers, calls the hypercall page,
// writes RAX and the argument registers to the console (56 bytes), and
// powers off with code 0.
func callGuest(nr uint64, args [6]uint64, declare bool) []byte {
	var b bytes.Buffer
	imm := func(prefix []byte, v uint64) {
		b.Write(prefix)
		binary.Write(&b, binary.LittleEndian, v)
	}
	if declare {
		b.Write(declarePrefix())
	}
	imm([]byte{0x48, 0xb8}, nr)       // mov rax, imm64
	imm([]byte{0x48, 0xbf}, args[0])  // mov rdi
	imm([]byte{0x48, 0xbe}, args[1])  // mov rsi
	imm([]byte{0x48, 0xba}, args[2])  // mov rdx
	imm([]byte{0x49, 0xba}, args[3])  // mov r10
	imm([]byte{0x49, 0xb8}, args[4])  // mov r8
	imm([]byte{0x49, 0xb9}, args[5])  // mov r9
	imm([]byte{0x49, 0xbb}, 0xa000)   // mov r11, hypercall page
	b.Write([]byte{0x41, 0xff, 0xd3}) // call r11
	// Store rax, rdi, rsi, rdx, r10, r8, r9 to consecutive slots at
	// 0x300000 (mov [disp32], reg with a SIB byte and no base).
	for i, st := range [][]byte{
		{0x48, 0x89, 0x04, 0x25}, {0x48, 0x89, 0x3c, 0x25}, {0x48, 0x89, 0x34, 0x25},
		{0x48, 0x89, 0x14, 0x25}, {0x4c, 0x89, 0x14, 0x25}, {0x4c, 0x89, 0x04, 0x25},
		{0x4c, 0x89, 0x0c, 0x25},
	} {
		b.Write(st)
		binary.Write(&b, binary.LittleEndian, uint32(0x300000+8*i))
	}
	imm([]byte{0x48, 0xbf}, 0x300000)                 // mov rdi, 0x300000
	imm([]byte{0x48, 0xbe}, 56)                       // mov rsi, 56
	imm([]byte{0x48, 0xb8}, hypercall.NrConsoleWrite) // mov rax, console_write
	b.Write([]byte{0x41, 0xff, 0xd3})
	imm([]byte{0x48, 0xb8}, hypercall.NrShutdown)
	b.Write([]byte{0x31, 0xff, 0x31, 0xf6}) // xor edi, edi; xor esi, esi
	b.Write([]byte{0x41, 0xff, 0xd3, 0xf4})
	return b.Bytes()
}

// declarePrefix is guest code that calls declare_version(Version), to put
// before a test guest's own code.
func declarePrefix() []byte {
	var b bytes.Buffer
	b.Write([]byte{0x48, 0xb8}) // mov rax, declare_version
	binary.Write(&b, binary.LittleEndian, uint64(hypercall.NrDeclareVersion))
	b.Write([]byte{0x48, 0xbf}) // mov rdi, version
	binary.Write(&b, binary.LittleEndian, uint64(hypercall.Version))
	b.Write([]byte{0x49, 0xbb}) // mov r11, hypercall page
	binary.Write(&b, binary.LittleEndian, uint64(0xa000))
	b.Write([]byte{0x41, 0xff, 0xd3}) // call r11
	return b.Bytes()
}

func runCall(t testing.TB, mode cpu.Mode, nr uint64, args [6]uint64) (ret uint64, out [6]uint64, st ExitStatus, ok bool) {
	return runCallDeclared(t, mode, nr, args, true)
}

func runCallDeclared(t testing.TB, mode cpu.Mode, nr uint64, args [6]uint64, declare bool) (ret uint64, out [6]uint64, st ExitStatus, ok bool) {
	var console bytes.Buffer
	vm, err := New(Config{Kernel: elfImage(callGuest(nr, args, declare)), MemBytes: 8 << 20, Mode: mode,
		Budget: mm.NewBudget(1 << 30), Console: &console, DeterministicTSC: true})
	if err != nil {
		t.Fatal(err)
	}
	st = vm.Run()
	b := console.Bytes()
	if len(b) < 56 {
		return 0, out, st, false
	}
	b = b[len(b)-56:]
	ret = binary.LittleEndian.Uint64(b)
	for i := range out {
		out[i] = binary.LittleEndian.Uint64(b[8+8*i:])
	}
	return ret, out, st, true
}

func TestHypercallErrorsFromGuest(t *testing.T) {
	const mem = 8 << 20
	for _, tc := range []struct {
		name string
		nr   uint64
		args [6]uint64
		want uint64
	}{
		{"version", hypercall.NrVersion, [6]uint64{}, hypercall.Version},
		{"unknown", 9999, [6]uint64{}, hypercall.ENOSYS.Ret()},
		{"huge", ^uint64(0), [6]uint64{}, hypercall.ENOSYS.Ret()},
		{"console bad pointer", hypercall.NrConsoleWrite, [6]uint64{mem - 2, 4}, hypercall.EFAULT.Ret()},
		{"console wrap", hypercall.NrConsoleWrite, [6]uint64{^uint64(0) - 1, 4}, hypercall.EFAULT.Ret()},
		{"console too long", hypercall.NrConsoleWrite, [6]uint64{0x200000, hypercall.ConsoleMax + 1}, hypercall.EINVAL.Ret()},
		{"u32 overflow", hypercall.NrFeatures, [6]uint64{1 << 32}, hypercall.EINVAL.Ret()},
		{"port range", hypercall.NrEvtchnSend, [6]uint64{hypercall.MaxPorts}, hypercall.EINVAL.Ret()},
		{"port unbound", hypercall.NrEvtchnSend, [6]uint64{5}, hypercall.ENOENT.Ret()},
		{"shared unaligned", hypercall.NrSharedInfoRegister, [6]uint64{0x200010, 40}, hypercall.EINVAL.Ret()},
		{"shared outside", hypercall.NrSharedInfoRegister, [6]uint64{mem, 40}, hypercall.EFAULT.Ret()},
		{"declare future", hypercall.NrDeclareVersion, [6]uint64{99}, hypercall.EPROTO.Ret()},
		{"msr not allowed", hypercall.NrMSRRead, [6]uint64{0x1b}, hypercall.EPERM.Ret()},
		{"batch too big", hypercall.NrMMUBatch, [6]uint64{0x200000, hypercall.MMUBatchMax + 1}, hypercall.EINVAL.Ret()},
		{"shutdown reason", hypercall.NrShutdown, [6]uint64{77, 0}, hypercall.EINVAL.Ret()},
		{"invlpg noncanonical", hypercall.NrMMUInvlpg, [6]uint64{1 << 60}, hypercall.EINVAL.Ret()},
		{"measured small", hypercall.NrMeasuredBoot, [6]uint64{0x200000, 10}, hypercall.EINVAL.Ret()},
	} {
		ret, _, st, ok := runCall(t, cpu.ModePV, tc.nr, tc.args)
		if !ok || ret != tc.want || st.Code != 0 {
			t.Errorf("%s: ret %#x (want %#x), ok %v, status %+v", tc.name, ret, tc.want, ok, st)
		}
	}
}

// TestHypercallBeforeDeclare: until declare_version has succeeded every
// call but the early ones answers -EPROTO and does nothing; the early ones
// work.
func TestHypercallBeforeDeclare(t *testing.T) {
	for _, c := range hypercall.Table {
		if c.Nr == hypercall.NrShutdown {
			continue // it ends the run; its early use is TestHypercallErrorsFromGuest's
		}
		// Arguments that would succeed once declared: page-aligned RAM.
		args := [6]uint64{0x200000, 1, 0, 0, 0}
		if c.Nr == hypercall.NrDeclareVersion {
			args[0] = hypercall.Version
		}
		ret, _, st, ok := runCallDeclared(t, cpu.ModePV, uint64(c.Nr), args, false)
		if !ok {
			t.Errorf("%s before declare_version: the guest did not report; status %+v", c.Name, st)
			continue
		}
		if eproto := ret == hypercall.EPROTO.Ret(); eproto == c.Early {
			t.Errorf("%s before declare_version: ret %d (early %v)", c.Name, int64(ret), c.Early)
		}
	}
}

// TestHypercallPreservesRegisters: an out-argument comes back in its
// register, and in-argument registers are unchanged.
func TestHypercallPreservesRegisters(t *testing.T) {
	args := [6]uint64{cpu.MSRLSTAR, 0x1111, 0x2222, 0x3333, 0x4444, 0x5555}
	ret, out, _, ok := runCall(t, cpu.ModePV, hypercall.NrMSRRead, args)
	if !ok || ret != 0 {
		t.Fatalf("msr_read: ret %#x ok %v", ret, ok)
	}
	if out[0] != cpu.MSRLSTAR || out[1] != 0 || out[2] != 0x2222 || out[3] != 0x3333 || out[4] != 0x4444 || out[5] != 0x5555 {
		t.Errorf("registers after msr_read: %#x", out)
	}
	_, out, _, _ = runCall(t, cpu.ModePV, hypercall.NrVersion, args)
	if out != args {
		t.Errorf("registers after version: %#x, want %#x", out, args)
	}
}

// callErrs holds, per call number, the errors the table lists for it (its
// own and the dispatcher's); numbers beyond the table answer -ENOSYS.
var callErrs = func() []map[uint64]bool {
	out := make([]map[uint64]bool, len(hypercall.Table))
	for i := range hypercall.Table {
		c := &hypercall.Table[i]
		m := map[uint64]bool{}
		if c.Status == hypercall.Reserved {
			m[hypercall.ENOSYS.Ret()] = true
		}
		for _, e := range append(c.DispatcherErrors(), c.Errors...) {
			m[e.Errno.Ret()] = true
		}
		out[i] = m
	}
	return out
}()

func allowedErr(nr, ret uint64) bool {
	if nr >= uint64(len(callErrs)) {
		return ret == hypercall.ENOSYS.Ret()
	}
	return callErrs[nr][ret]
}

// FuzzHypercall drives random numbers and arguments from a guest: the
// hypervisor never panics, the VM ends in an orderly way, and a failing
// call returns one of the errors the table lists for that call.
func FuzzHypercall(f *testing.F) {
	f.Add(uint64(0), uint64(0), uint64(0), uint64(0))
	f.Add(uint64(hypercall.NrConsoleWrite), uint64(0x7ff000), uint64(0x2000), uint64(0))
	f.Add(uint64(hypercall.NrMMUBatch), uint64(0x200000), uint64(3), uint64(0))
	f.Add(uint64(hypercall.NrMemoryMap), uint64(1<<40), uint64(1<<60), uint64(0))
	f.Add(uint64(hypercall.NrEvtchnBindVIRQ), uint64(0), uint64(0), uint64(0))
	f.Fuzz(func(t *testing.T, nr, a0, a1, a2 uint64) {
		nr %= 48 // mostly real calls, some unknown ones
		if nr == hypercall.NrVCPUBlock || nr == hypercall.NrShutdown {
			return // they end the run by design; covered by their own tests
		}
		ret, _, st, ok := runCall(t, cpu.ModePV, nr, [6]uint64{a0, a1, a2, a0 ^ a1, a2 + 1, a0 + a2})
		if strings.Contains(st.Reason, "engine panic") {
			t.Fatalf("nr %d: %s", nr, st.Reason)
		}
		if !ok {
			// Some calls can wreck the calling guest on purpose (an empty
			// CR3, a shared page over its own code): the VM must then have
			// stopped with a status, as it did to get here.
			if st.Code == 0 {
				t.Fatalf("nr %d: guest did not report yet the VM exited 0", nr)
			}
			return
		}
		if int64(ret) < 0 && int64(ret) > -4096 && !allowedErr(nr, ret) {
			t.Fatalf("nr %d: error %d is not one the table lists for this call", nr, int64(ret))
		}
	})
}
