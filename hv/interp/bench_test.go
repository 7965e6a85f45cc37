package interp

import "testing"

// BenchmarkMIPS runs a compiled C workload (testdata/cprog/bench.c at -O2:
// SHA-256, quicksort, REP MOVSB and C block copies) and reports guest
// instructions retired per second of host time.
func BenchmarkMIPS(b *testing.B) {
	p := loadCProg(b, "O2")
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
}
