package interp

import (
	"math/rand"
	"testing"

	"github.com/pvisor/pvisor/hv/cpu"
)

// TestFastMatchesGeneric runs every specialized handler and its generic
// op on the same random state and compares registers, flags and memory.
func TestFastMatchesGeneric(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	edge := []uint64{0, 1, ^uint64(0), 0x7fffffff, 0x80000000, 0xffffffff, 1 << 63, 1<<63 - 1, 0x100000000}
	val := func() uint64 {
		if rng.Intn(2) == 0 {
			return edge[rng.Intn(len(edge))]
		}
		return rng.Uint64()
	}
	checked := 0
	a := newTestMachine(t, nil)
	b := newTestMachine(t, nil)
	for op := uint16(1); op < uint16(nOps); op++ {
		g := fastGeneric[op]
		if g == 0 {
			continue
		}
		for trial := 0; trial < 200; trial++ {
			in := Inst{size: 8, reg: uint8(rng.Intn(16)), rm: uint8(rng.Intn(16)), base: regNone, index: regNone, imm: val()}
			// Find the form: try sizes and kinds until specialize maps to op.
			found := false
			for _, size := range []uint8{8, 4} {
				for _, mem := range []bool{false, true} {
					in.size, in.flags = size, 0
					in.op = g
					if mem {
						in.flags = iMem
						in.base = cpu.RBX
					}
					if specialize(&in) == op {
						found = true
						goto run
					}
				}
			}
		run:
			if !found {
				t.Fatalf("%s: no form maps to it", opNames[op])
			}
			if in.base == cpu.RBX && (in.reg == cpu.RBX || in.rm == cpu.RBX) {
				in.reg = cpu.RCX
			}
			for r := 0; r < 16; r++ {
				v := val()
				a.cpu.r[r], b.cpu.r[r] = v, v
			}
			a.cpu.r[cpu.RBX], b.cpu.r[cpu.RBX] = tmData+8, tmData+8
			a.cpu.r[cpu.RSP], b.cpu.r[cpu.RSP] = tmData+16, tmData+16
			mv := val()
			for _, m := range []*testMachine{a, b} {
				for i := 0; i < 8; i++ {
					m.ram[tmData+8+i] = byte(mv >> (8 * i))
				}
				m.cpu.lf = lazyFlags{op: lfAdd, size: 8, a: 1, b: ^uint64(0), res: 0}
			}
			ia, ib := in, in
			ia.op = g
			ib.op = op
			handlers[g](a.cpu, &ia)
			handlers[op](b.cpu, &ib)
			if a.cpu.r != b.cpu.r {
				t.Fatalf("%s: registers differ\ngeneric %x\nfast    %x", opNames[op], a.cpu.r, b.cpu.r)
			}
			if fa, fb := a.cpu.getFlags(), b.cpu.getFlags(); fa != fb {
				t.Fatalf("%s: flags generic %#x fast %#x", opNames[op], fa, fb)
			}
			if string(a.ram[tmData:tmData+24]) != string(b.ram[tmData:tmData+24]) {
				t.Fatalf("%s: memory differs", opNames[op])
			}
			checked++
		}
	}
	if checked == 0 {
		t.Fatal("no specialized ops")
	}
	t.Logf("%d cases", checked)
}

// TestFastJcc checks every specialized Jcc against cond() for flag states
// produced by each kind of flag-setting operation.
func TestFastJcc(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	edge := []uint64{0, 1, 2, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0x7fffffff, 0x80000000, 0xffffffff, 1<<63 - 1, 1 << 63, ^uint64(0)}
	m := newTestMachine(t, nil)
	c := m.cpu
	n := 0
	for trial := 0; trial < 20000; trial++ {
		size := []uint8{1, 2, 4, 8}[rng.Intn(4)]
		pick := func() uint64 {
			if rng.Intn(2) == 0 {
				return edge[rng.Intn(len(edge))] & sizeMask[size]
			}
			return rng.Uint64() & sizeMask[size]
		}
		a, b := pick(), pick()
		c.setFlagsAll(rng.Uint64() & cpu.FlagsArith)
		switch rng.Intn(6) {
		case 0:
			c.alu(rng.Intn(8), size, a, b)
		case 1:
			c.alu(aluSBB, size, a, b)
		case 2:
			c.shift(rng.Intn(8), size, a, uint(b&31))
		case 3:
			c.lf = lazyFlags{op: lfInc, size: size, a: a, b: 1, res: (a + 1) & sizeMask[size], aux: b & 1}
		case 4:
			c.lf = lazyFlags{op: lfDec, size: size, a: a, b: 1, res: (a - 1) & sizeMask[size], aux: b & 1}
		case 5:
			// flags already materialized
		}
		for cc := uint8(0); cc < 16; cc++ {
			want := c.cond(cc)
			c.rip = 100
			handlers[jccOps[cc]](c, &Inst{imm: 10})
			if got := c.rip == 110; got != want {
				t.Fatalf("cc %d after lf %+v: fast %v, cond %v", cc, c.lf, got, want)
			}
			n++
		}
	}
	t.Logf("%d checks", n)
}
