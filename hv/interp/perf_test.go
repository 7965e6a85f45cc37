package interp

import (
	"testing"

	"github.com/pvisor/pvisor/hv/cpu"
)

// loopCode is a load/add/store/lea/xor/inc/cmp/jne loop over 4096 qwords,
// repeated R10 times; 8 instructions per iteration.
var loopCode = []byte{
	0x48, 0xc7, 0xc7, 0x00, 0x00, 0x20, 0x00, 0x48, 0xc7, 0xc6, 0x00, 0x00,
	0x30, 0x00, 0x31, 0xc9, 0xba, 0x00, 0x10, 0x00, 0x00, 0x31, 0xdb, 0x48,
	0x8b, 0x04, 0xcf, 0x48, 0x01, 0xc3, 0x48, 0x89, 0x1c, 0xce, 0x4c, 0x8d,
	0x04, 0x43, 0x4d, 0x31, 0xc1, 0x48, 0xff, 0xc1, 0x48, 0x39, 0xd1, 0x75,
	0xe6, 0x49, 0xff, 0xca, 0x75, 0xca, 0xf4,
}

// BenchmarkLoop measures the dispatch loop on a tight ALU/memory loop.
func BenchmarkLoop(b *testing.B) { benchLoop(b, false) }

// benchLoop is BenchmarkLoop, with the translator on when jitOn.
func benchLoop(b *testing.B, jitOn bool) {
	m := newTestMachine(b, loopCode)
	if jitOn {
		m.cpu.enableJIT()
	}
	b.ReportAllocs()
	b.ResetTimer()
	var insts uint64
	for i := 0; i < b.N; i++ {
		m.cpu.rip = tmCode
		m.cpu.r[cpu.R10] = 10
		before := m.cpu.Stats().Instructions
		m.runToHLT(1 << 40)
		insts += m.cpu.Stats().Instructions - before
	}
	b.ReportMetric(float64(insts)/b.Elapsed().Seconds()/1e6, "MIPS")
}

// pageWalkCode reads one qword per 4 KiB page over R8 pages from 16 MiB,
// R10 times; 4 instructions per page.
var pageWalkCode = []byte{
	0x48, 0xc7, 0xc7, 0x00, 0x00, 0x00, 0x01, // mov rdi, 0x1000000
	0x48, 0x89, 0xfe, // outer: mov rsi, rdi
	0x4c, 0x89, 0xc1, // mov rcx, r8
	0x48, 0x8b, 0x06, // inner: mov rax, [rsi]
	0x48, 0x81, 0xc6, 0x00, 0x10, 0x00, 0x00, // add rsi, 0x1000
	0x48, 0xff, 0xc9, // dec rcx
	0x75, 0xf1, // jne inner
	0x49, 0xff, 0xca, // dec r10
	0x75, 0xe6, // jne outer
	0xf4, // hlt
}

// BenchmarkSoftTLB measures a guest load through the soft TLB when it hits
// (256 pages, well inside the 1,024 entries) and when every access misses
// and refills it (4,096 pages cycled through 1,024 entries: each access
// evicts the entry the next round needs): the refill path walks the guest
// page tables (2 MiB pages here) and re-validates the entry.
func BenchmarkSoftTLB(b *testing.B) {
	for _, tc := range []struct {
		name  string
		pages uint64
	}{{"hit", 256}, {"refill", 4096}} {
		b.Run(tc.name, func(b *testing.B) {
			m := newTestMachine(b, pageWalkCode)
			run := func(rounds uint64) uint64 {
				m.cpu.rip = tmCode
				m.cpu.r[cpu.R8] = tc.pages
				m.cpu.r[cpu.R10] = rounds
				before := m.cpu.Stats().Instructions
				m.runToHLT(1 << 40)
				return m.cpu.Stats().Instructions - before
			}
			run(1) // warm: decode, first fills
			b.ReportAllocs()
			b.ResetTimer()
			var insts uint64
			for b.Loop() {
				insts += run(16)
			}
			accesses := float64(b.N) * 16 * float64(tc.pages)
			b.ReportMetric(b.Elapsed().Seconds()*1e9/accesses, "ns/access")
			b.ReportMetric(float64(insts)/b.Elapsed().Seconds()/1e6, "MIPS")
		})
	}
}
