package hv

import (
	"bytes"
	"encoding/binary"
	"io"
	"strings"
	"testing"

	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/mm"
	"github.com/pvisor/pvisor/sched"
)

// elfImage wraps code in a minimal ELF64 executable with one PT_LOAD
// segment at 1 MiB, entry at its start.
func elfImage(code []byte) []byte {
	const base = 0x100000
	var b bytes.Buffer
	le := binary.LittleEndian
	hdr := make([]byte, 64)
	copy(hdr, []byte{0x7f, 'E', 'L', 'F', 2, 1, 1})
	le.PutUint16(hdr[16:], 2)    // ET_EXEC
	le.PutUint16(hdr[18:], 0x3e) // EM_X86_64
	le.PutUint32(hdr[20:], 1)
	le.PutUint64(hdr[24:], base+0x1000) // entry
	le.PutUint64(hdr[32:], 64)          // phoff
	le.PutUint16(hdr[52:], 64)          // ehsize
	le.PutUint16(hdr[54:], 56)          // phentsize
	le.PutUint16(hdr[56:], 1)           // phnum
	le.PutUint16(hdr[58:], 64)          // shentsize
	b.Write(hdr)
	ph := make([]byte, 56)
	le.PutUint32(ph[0:], 1) // PT_LOAD
	le.PutUint32(ph[4:], 5) // R+X
	le.PutUint64(ph[8:], 0x1000)
	le.PutUint64(ph[16:], base+0x1000)
	le.PutUint64(ph[24:], base+0x1000)
	le.PutUint64(ph[32:], uint64(len(code)))
	le.PutUint64(ph[40:], uint64(len(code))+0x100)
	le.PutUint64(ph[48:], 0x1000)
	b.Write(ph)
	b.Write(make([]byte, 0x1000-b.Len()))
	b.Write(code)
	return b.Bytes()
}

// helloGuest: console_write("hello\n"), version, shutdown(poweroff, 42).
var helloGuest = []byte{
	0x49, 0xc7, 0xc3, 0x00, 0xa0, 0x00, 0x00, 0x48, 0x8d, 0x3d, 0x2e, 0x00,
	0x00, 0x00, 0xbe, 0x06, 0x00, 0x00, 0x00, 0xb8, 0x03, 0x00, 0x00, 0x00,
	0x41, 0xff, 0xd3, 0x49, 0x89, 0xc4, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x41,
	0xff, 0xd3, 0x49, 0x89, 0xc5, 0xb8, 0x0f, 0x00, 0x00, 0x00, 0xbf, 0x00,
	0x00, 0x00, 0x00, 0xbe, 0x2a, 0x00, 0x00, 0x00, 0x41, 0xff, 0xd3, 0xf4,
	0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x0a,
}

func TestHelloGuest(t *testing.T) {
	for _, mode := range []cpu.Mode{cpu.ModePV, cpu.ModeTrap, cpu.ModeHWAssist} {
		var out bytes.Buffer
		budget := mm.NewBudget(1 << 30)
		vm, err := New(Config{Kernel: elfImage(helloGuest), MemBytes: 16 << 20, Mode: mode, Budget: budget, Console: &out, DeterministicTSC: true})
		if err != nil {
			t.Fatal(err)
		}
		st := vm.Run()
		if st.Code != 42 || out.String() != "hello\n" {
			t.Errorf("%v: status %+v, console %q", mode, st, out.String())
		}
		if budget.Reserved() != 0 {
			t.Errorf("%v: memory not released: %d", mode, budget.Reserved())
		}
		hc, _, _, _ := vm.StatsSnapshot()
		if hc[3] != 1 || hc[0] != 1 || hc[15] != 1 {
			t.Errorf("%v: hypercall counts %v", mode, hc[:16])
		}
	}
}

func TestLoaderRefusesBadImages(t *testing.T) {
	budget := mm.NewBudget(1 << 30)
	good := elfImage(helloGuest)
	for name, tc := range map[string]struct {
		img  []byte
		mem  uint64
		want string
	}{
		"not elf":   {[]byte("MZ this is not an ELF"), 16 << 20, "neither an ELF file nor a bzImage"},
		"truncated": {good[:100], 16 << 20, "it is truncated"},
		"too small": {good, 1 << 20, "too little"},
		"low segment": {func() []byte {
			b := append([]byte(nil), good...)
			binary.LittleEndian.PutUint64(b[64+24:], 0x1000) // p_paddr below 1 MiB
			return b
		}(), 16 << 20, "below 1 MiB"},
	} {
		_, err := New(Config{Kernel: tc.img, MemBytes: tc.mem, Budget: budget})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", name, err, tc.want)
		}
	}
	if budget.Reserved() != 0 {
		t.Errorf("refused VMs leaked %d bytes of budget", budget.Reserved())
	}
}

type panicWriter struct{}

func (panicWriter) Write([]byte) (int, error) { panic("console backend failed") }

// TestInternalErrorStopsOneVM: a panic in the hypervisor while serving one
// VM (here its console backend, under a guest that writes until stopped)
// stops that VM with an internal-error status; another VM on the same
// scheduler runs to its end.
func TestInternalErrorStopsOneVM(t *testing.T) {
	budget := mm.NewBudget(1 << 30)
	s := sched.New(sched.Config{Workers: 1})
	var out bytes.Buffer
	var vms []*VM
	for i, con := range []io.Writer{panicWriter{}, &out} {
		guest := [][]byte{floodGuest, helloGuest}[i]
		vm, err := New(Config{Kernel: elfImage(guest), MemBytes: 16 << 20, Mode: cpu.ModePV, Budget: budget,
			Console: con, Sched: s})
		if err != nil {
			t.Fatal(err)
		}
		vms = append(vms, vm)
	}
	s.Start()
	defer s.Stop()
	st := RunAll(vms)
	if st[0].Code != ExitEngineStop || !strings.Contains(st[0].Reason, "internal error: console backend failed") {
		t.Errorf("faulty VM: %+v", st[0])
	}
	if st[1].Code != 42 || out.String() != "hello\n" {
		t.Errorf("other VM: %+v, console %q", st[1], out.String())
	}
	if r := budget.Reserved(); r != 0 {
		t.Errorf("%d bytes still reserved after both VMs stopped", r)
	}
}
