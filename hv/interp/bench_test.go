package interp

import "testing"

// BenchmarkMIPS runs a compiled C workload (testdata/cprog/bench.c at -O2:
// SHA-256, quicksort, REP MOVSB and C block copies) and reports guest
// instructions retired per second of host time.
func BenchmarkMIPS(b *testing.B) { benchMIPS(b, false) }

// benchMIPS is BenchmarkMIPS, with the translator on when jitOn.
func benchMIPS(b *testing.B, jitOn bool) {
	p := loadCProg(b, "O2")
	if jitOn {
		p.m.cpu.enableJIT()
	}
	buf := benchSetup(p)
	benchCheck(b, p, buf, benchRun(p)) // warm-up, and the result is right
	b.ReportAllocs()
	b.ResetTimer()
	before := p.m.cpu.Stats().Instructions
	for b.Loop() {
		benchRun(p)
	}
	insts := p.m.cpu.Stats().Instructions - before
	b.ReportMetric(float64(insts)/b.Elapsed().Seconds()/1e6, "MIPS")
	b.ReportMetric(float64(insts)/float64(b.N), "insts/op")
	if js := p.m.cpu.jit; js != nil {
		b.ReportMetric(float64(js.Insts)/float64(max(js.Blocks, 1)), "insts/block")
	}
}
