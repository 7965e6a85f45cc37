package loader

import (
	"runtime/metrics"
	"testing"
)

// initrdPool backs the fuzzed initramfs sizes without allocating per run.
var initrdPool = make([]byte, 8<<20)

func heapAllocs() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// FuzzLoadKernel: whatever the image, memory size, initramfs size and
// command line, Load never panics, allocates at most a small multiple of
// the image (never in proportion to the guest's memory), and an accepted
// plan keeps the invariants of doc.go.
func FuzzLoadKernel(f *testing.F) {
	f.Add(testGuest(f), uint64(64<<20), uint32(0), "spin")
	f.Add(vmlinuxELF().bytes(), uint64(64<<20), uint32(5000), "console=hvc0")
	f.Add(bzImage(0x1000, 8<<20), uint64(32<<20), uint32(1<<20), "console=ttyS0 quiet")
	f.Add(freestandingELF().bytes(), uint64(MinMem), uint32(0), "")
	f.Fuzz(func(t *testing.T, kernel []byte, mem uint64, initrdLen uint32, cmdline string) {
		mem %= 2 * MaxMem // mostly valid sizes, some too large
		cfg := Config{Kernel: kernel, Initrd: initrdPool[:initrdLen%uint32(len(initrdPool))], Cmdline: cmdline, MemBytes: mem, VCPUs: 1}
		before := heapAllocs()
		p, err := Load(cfg)
		// The slack covers the loader's own pages and the runtime's
		// span-sized accounting.
		if used, bound := heapAllocs()-before, 4*uint64(len(kernel))+1<<20; used > bound {
			t.Fatalf("Load allocated %d bytes for a %d-byte image: bound %d", used, len(kernel), bound)
		}
		if err != nil {
			return
		}
		checkPlan(t, cfg, p)
	})
}

// checkPlan checks an accepted plan against the invariants of doc.go.
func checkPlan(t *testing.T, cfg Config, p *Plan) {
	t.Helper()
	entry, hcall := false, p.HypercallPage == 0
	for i, s := range p.Segments {
		if s.End() < s.GPA || s.End() > cfg.MemBytes || uint64(len(s.Data)) > s.Size {
			t.Fatalf("%s [%#x, %#x) with %d bytes: outside %#x bytes of RAM", s.What, s.GPA, s.End(), len(s.Data), cfg.MemBytes)
		}
		if i > 0 && p.Segments[i-1].End() > s.GPA {
			t.Fatalf("%s overlaps %s", p.Segments[i-1].What, s.What)
		}
		entry = entry || s.kernel && p.Regs.RIP >= s.GPA && p.Regs.RIP < s.End()
		hcall = hcall || p.HypercallPage >= s.GPA && p.HypercallPage+PageSize <= s.End()
	}
	if !entry || !hcall {
		t.Fatalf("entry %#x in a kernel segment: %v; hypercall page %#x in a segment: %v", p.Regs.RIP, entry, p.HypercallPage, hcall)
	}
	for _, e := range p.Memmap {
		if e.Addr+e.Size < e.Addr || e.Addr+e.Size > cfg.MemBytes {
			t.Fatalf("memory-map entry %+v beyond %#x bytes of RAM", e, cfg.MemBytes)
		}
	}
}
