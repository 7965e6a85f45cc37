package interp

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pvisor/pvisor/hv/cpu"
)

// Differential tests of the x87 unit and FXSAVE/FXRSTOR against the host
// CPU. Each program is a loop over records (rdi = record, rsi = count)
// that the host runs through testdata/x87gen (built with the system gcc)
// and the engine runs in the test machine: the same instruction bytes on
// the same inputs. Records are then compared bit for bit, except for the
// fields that name code addresses (FIP, FDP, FOP, FCS, FDS).
//
// Record layout (stride 256 unless the program says otherwise):
//
//	0   FCW loaded before the body     8  MXCSR (FXSAVE programs)
//	16  operand A (80-bit)              32 operand B      48 operand C
//	64  memory operand / result (8)     72 second memory result (8)
//	80  RFLAGS & 0x8d5 (stored by the body)
//	88  FSW snapshots (4 x 2 bytes)
//	96  FNSAVE image after the body (108 bytes)
//	208 FNSTENV image (28 bytes, if the body stores one)

const x87Stride = 256

type x87Prog struct {
	name   string
	body   string
	n      int
	stride int
	gen    func(r *rand.Rand, rec []byte)
	check  func(host, eng []byte) string // "" if equal; nil: x87Diff
	steps  int                           // instruction budget per record; 0: 200
}

// x87Oracle builds the host oracle into dir. A missing gcc fails the test.
func x87Oracle(t *testing.T, dir string) string {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Fatalf("gcc is required to build the x87 oracle: %v", err)
	}
	out := filepath.Join(dir, "x87gen")
	cmd := exec.Command(gcc, "-O1", "-o", out, filepath.Join("testdata", "x87gen", "x87gen.c"))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building x87gen: %v\n%s", err, b)
	}
	return out
}

// runX87Progs assembles progs, runs each on the host and in the engine and
// compares the records.
func runX87Progs(t *testing.T, seed int64, progs []x87Prog) {
	t.Helper()
	dir := t.TempDir()
	oracle := x87Oracle(t, dir)
	var src strings.Builder
	for i := range progs {
		p := &progs[i]
		if p.stride == 0 {
			p.stride = x87Stride
		}
		fmt.Fprintf(&src, ".balign 16\np%d:\n1:\n\tfninit\n\tfldcw word ptr [rdi]\n%s\n\tfnsave [rdi+96]\n\tadd rdi, %d\n\tdec rsi\n\tjnz 1b\np%d_end:\n\tret\n",
			i, p.body, p.stride, i)
	}
	prog := assemble(t, tmCode, src.String())
	codeFile := filepath.Join(dir, "code.bin")
	if err := os.WriteFile(codeFile, prog.code, 0o644); err != nil {
		t.Fatal(err)
	}
	ecode := append([]byte(nil), prog.code...)
	for i := range progs {
		end := prog.sym[fmt.Sprintf("p%d_end", i)]
		if ecode[end] != 0xc3 {
			t.Fatalf("program %d does not end in ret", i)
		}
		ecode[end] = 0xf4 // hlt for the engine
	}
	m := newTestMachine(t, ecode)
	r := rand.New(rand.NewSource(seed))
	total := 0
	for i := range progs {
		p := &progs[i]
		data := make([]byte, p.n*p.stride)
		for k := 0; k < p.n; k++ {
			rec := data[k*p.stride : (k+1)*p.stride]
			binary.LittleEndian.PutUint16(rec, 0x37f)
			binary.LittleEndian.PutUint32(rec[8:], mxcsrDefault)
			p.gen(r, rec)
		}
		// Host.
		dataFile := filepath.Join(dir, "data.bin")
		if err := os.WriteFile(dataFile, data, 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(oracle, codeFile, fmt.Sprint(prog.sym[fmt.Sprintf("p%d", i)]), dataFile, fmt.Sprint(p.n))
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: x87gen: %v\n%s", p.name, err, b)
		}
		host, err := os.ReadFile(dataFile)
		if err != nil {
			t.Fatal(err)
		}
		// Engine.
		copy(m.ram[tmData:], data)
		c := m.cpu
		c.r[cpu.RDI], c.r[cpu.RSI], c.r[cpu.RSP] = tmData, uint64(p.n), tmKStack
		c.rip = tmCode + prog.sym[fmt.Sprintf("p%d", i)]
		steps := p.steps
		if steps == 0 {
			steps = 200
		}
		m.runToHLT(uint64(p.n*steps) + 1000)
		if want := tmCode + prog.sym[fmt.Sprintf("p%d_end", i)] + 1; c.rip != want {
			t.Fatalf("%s: stopped at %#x, want %#x", p.name, c.rip, want)
		}
		eng := m.ram[tmData : tmData+uint64(len(data))]
		bad := 0
		for k := 0; k < p.n; k++ {
			in := data[k*p.stride : (k+1)*p.stride]
			h, e := host[k*p.stride:(k+1)*p.stride], eng[k*p.stride:(k+1)*p.stride]
			check := p.check
			if check == nil {
				check = x87Diff
			}
			d := check(h, e)
			for try := 0; d != "" && try < 3; try++ {
				// The host's answer is not always reproducible: the kernel
				// saving and restoring the x87 state when it preempts the
				// oracle between two instructions can lose FIP and FDP. A
				// case counts as differing only when the host, run on it
				// alone again, still disagrees with the engine.
				again, err := hostX87Case(oracle, codeFile, dir, prog.sym[fmt.Sprintf("p%d", i)], data, k, p.stride)
				if err != nil {
					t.Fatalf("%s: x87gen: %v", p.name, err)
				}
				if check(again, e) == "" {
					t.Logf("%s case %d: the host's first answer differed, its re-run agrees with the engine:\n%s", p.name, k, d)
					d = ""
				}
			}
			if d != "" {
				bad++
				if bad <= 8 {
					t.Errorf("%s case %d: fcw %#04x A %s B %s C %s mem %x:\n%s", p.name, k,
						binary.LittleEndian.Uint16(in), hexF80(in[16:]), hexF80(in[32:]), hexF80(in[48:]), in[64:80], d)
				}
			}
		}
		if bad > 8 {
			t.Errorf("%s: %d of %d cases differ", p.name, bad, p.n)
		}
		total += p.n
	}
	t.Logf("%d programs, %d cases compared with the host x87", len(progs), total)
}

// hostX87Case runs the host oracle again on records 0..k of data (so
// that record k sits at the same address as in the first run) and
// returns the host's output record k.
func hostX87Case(oracle, codeFile, dir string, entry uint64, data []byte, k, stride int) ([]byte, error) {
	f := filepath.Join(dir, "rerun.bin")
	if err := os.WriteFile(f, data[:(k+1)*stride], 0o644); err != nil {
		return nil, err
	}
	if b, err := exec.Command(oracle, codeFile, fmt.Sprint(entry), f, fmt.Sprint(k+1)).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%v\n%s", err, b)
	}
	b, err := os.ReadFile(f)
	if err != nil || len(b) < (k+1)*stride {
		return nil, fmt.Errorf("re-run output: %v (%d bytes)", err, len(b))
	}
	return b[k*stride : (k+1)*stride], nil
}

func hexF80(b []byte) string {
	return fmt.Sprintf("%04x:%016x", binary.LittleEndian.Uint16(b[8:]), binary.LittleEndian.Uint64(b))
}

// x87Diff compares two records of the standard layout.
func x87Diff(h, e []byte) string {
	var sb strings.Builder
	if !bytes.Equal(h[:96], e[:96]) {
		fmt.Fprintf(&sb, "  out[64:96] host %x\n            eng  %x\n", h[64:96], e[64:96])
	}
	sb.WriteString(saveDiff(h[96:], e[96:], "fnsave"))
	// FNSTENV at 208: control, status, tag dwords and the FDS dword's
	// upper half; FIP, FOP/FCS, FDP and FDS name code and data addresses.
	if !bytes.Equal(h[208:220], e[208:220]) || !bytes.Equal(h[234:236], e[234:236]) {
		fmt.Fprintf(&sb, "  fnstenv host %x\n          eng  %x\n", h[208:236], e[208:236])
	}
	return sb.String()
}

// saveDiff compares FNSAVE images: environment words and the valid
// registers.
func saveDiff(h, e []byte, what string) string {
	var sb strings.Builder
	if !bytes.Equal(h[:12], e[:12]) || !bytes.Equal(h[26:28], e[26:28]) {
		fmt.Fprintf(&sb, "  %s env: host fcw %04x fsw %04x ftw %04x (%x)\n            eng  fcw %04x fsw %04x ftw %04x (%x)\n", what,
			le16(h), le16(h[4:]), le16(h[8:]), h[:28], le16(e), le16(e[4:]), le16(e[8:]), e[:28])
	}
	top := (le16(h[4:]) >> 11) & 7
	tag := le16(h[8:])
	for i := 0; i < 8; i++ {
		p := (int(top) + i) & 7
		if tag>>(2*p)&3 == 3 {
			continue
		}
		o := 28 + i*10
		if !bytes.Equal(h[o:o+10], e[o:o+10]) {
			fmt.Fprintf(&sb, "  %s ST(%d): host %s eng %s\n", what, i, hexF80(h[o:]), hexF80(e[o:]))
		}
	}
	return sb.String()
}

func le16(b []byte) uint16 { return binary.LittleEndian.Uint16(b) }

func putF80(b []byte, v f80) {
	binary.LittleEndian.PutUint64(b, v.mant)
	binary.LittleEndian.PutUint16(b[8:], v.se)
}

// randF80 returns an operand from a mix of classes: mostly normal numbers
// with random significands, plus zeros, denormals, pseudo-denormals,
// infinities, NaNs, unsupported encodings and extreme exponents.
func randF80(r *rand.Rand) f80 {
	s := uint16(r.Intn(2)) << 15
	m := r.Uint64()
	switch k := r.Intn(40); {
	case k == 0:
		return f80{se: s}
	case k == 1:
		return f80{mant: m >> uint(r.Intn(64)) &^ f80Int, se: s}
	case k == 2:
		return f80{mant: m | f80Int, se: s} // pseudo-denormal
	case k == 3:
		return f80{mant: f80Int, se: s | 0x7fff}
	case k == 4:
		return f80{mant: m | f80Int | f80QBit, se: s | 0x7fff}
	case k == 5:
		m = m&^f80QBit | f80Int
		if m<<1 == 0 {
			m |= 1
		}
		return f80{mant: m, se: s | 0x7fff}
	case k == 6:
		return f80{mant: m &^ f80Int, se: s | uint16(1+r.Intn(0x7ffe))} // unnormal
	case k == 7:
		return f80{mant: m | f80Int, se: s | uint16(0x7ffe-r.Intn(70))}
	case k == 8:
		return f80{mant: m | f80Int, se: s | uint16(1+r.Intn(70))}
	case k < 12:
		// Few significand bits set (exact and halfway cases).
		m = f80Int | uint64(r.Intn(16))<<uint(r.Intn(61))
		if r.Intn(2) == 0 {
			m |= ^uint64(0) >> uint(1+r.Intn(63))
		}
		return f80{mant: m, se: s | uint16(f80Bias-40+r.Intn(80))}
	}
	return f80{mant: m | f80Int, se: s | uint16(f80Bias-200+r.Intn(400))}
}

// near returns an operand close in magnitude to a (for cancellation and
// long remainder reductions) most of the time.
func near(r *rand.Rand, a f80, spread int) f80 {
	b := randF80(r)
	if r.Intn(4) != 0 && a.class() == clsNormal && b.class() == clsNormal {
		e := int(a.bexp()) + r.Intn(2*spread+1) - spread
		if e < 1 {
			e = 1
		}
		if e > 0x7ffe {
			e = 0x7ffe
		}
		b.se = b.se&0x8000 | uint16(e)
		if r.Intn(4) == 0 {
			b.mant = a.mant ^ uint64(r.Intn(256))
		}
	}
	return b
}

// randFCW returns a control word with all exceptions masked and random
// precision (single, double, extended) and rounding controls.
func randFCW(r *rand.Rand) uint16 {
	pc := [3]uint16{0, 2, 3}[r.Intn(3)]
	return 0x7f | pc<<8 | uint16(r.Intn(4))<<10
}

func genAB(spread int) func(r *rand.Rand, rec []byte) {
	return func(r *rand.Rand, rec []byte) {
		binary.LittleEndian.PutUint16(rec, randFCW(r))
		a := randF80(r)
		putF80(rec[16:], a)
		putF80(rec[32:], near(r, a, spread))
	}
}

// randFloatBits returns single (w=24) or double bit patterns of all classes.
func randFloatBits(r *rand.Rand, w uint) uint64 {
	ebits := uint(8)
	if w == 53 {
		ebits = 11
	}
	fb := w - 1
	emax := uint64(1)<<ebits - 1
	s := uint64(r.Intn(2)) << (fb + ebits)
	frac := r.Uint64() & (uint64(1)<<fb - 1)
	var e uint64
	switch r.Intn(8) {
	case 0:
		e = 0
		if r.Intn(3) == 0 {
			frac = 0
		}
	case 1:
		e = emax
		if r.Intn(3) == 0 {
			frac = 0
		}
	default:
		e = uint64(r.Int63n(int64(emax-1))) + 1
	}
	return s | e<<fb | frac
}

const pushFlags = "\n\tpushfq\n\tpop rax\n\tand eax, 0x8d5\n\tmov [rdi+80], rax\n"

func TestX87Arith(t *testing.T) {
	var progs []x87Prog
	ops := []string{"fadd", "fsub", "fsubr", "fmul", "fdiv", "fdivr"}
	for _, op := range ops {
		progs = append(progs, x87Prog{name: op + " st,st(1)", n: 1500, gen: genAB(70),
			body: "\tfld tbyte ptr [rdi+32]\n\tfld tbyte ptr [rdi+16]\n\t" + op + " st(0), st(1)\n\tfnstenv [rdi+208]"})
		progs = append(progs, x87Prog{name: op + " st(1),st", n: 200, gen: genAB(70),
			body: "\tfld tbyte ptr [rdi+32]\n\tfld tbyte ptr [rdi+16]\n\t" + op + " st(1), st(0)"})
		progs = append(progs, x87Prog{name: op + "p", n: 200, gen: genAB(70),
			body: "\tfld tbyte ptr [rdi+32]\n\tfld tbyte ptr [rdi+16]\n\t" + op + "p st(1), st(0)"})
		for _, w := range []uint{24, 53} {
			w := w
			size := "dword"
			if w == 53 {
				size = "qword"
			}
			progs = append(progs, x87Prog{name: op + " " + size, n: 300,
				gen: func(r *rand.Rand, rec []byte) {
					genAB(0)(r, rec)
					binary.LittleEndian.PutUint64(rec[64:], randFloatBits(r, w))
				},
				body: "\tfld tbyte ptr [rdi+16]\n\t" + op + " " + size + " ptr [rdi+64]"})
		}
		progs = append(progs, x87Prog{name: "fi" + op[1:] + " m16/m32", n: 200,
			gen: func(r *rand.Rand, rec []byte) {
				genAB(0)(r, rec)
				binary.LittleEndian.PutUint64(rec[64:], r.Uint64()>>uint(r.Intn(64)))
			},
			body: "\tfld tbyte ptr [rdi+16]\n\tfi" + op[1:] + " word ptr [rdi+64]\n\tfi" + op[1:] + " dword ptr [rdi+68]"})
	}
	runX87Progs(t, 1, progs)
}

func TestX87Unary(t *testing.T) {
	one := func(r *rand.Rand, rec []byte) {
		binary.LittleEndian.PutUint16(rec, randFCW(r))
		a := randF80(r)
		if r.Intn(3) == 0 && a.class() == clsNormal {
			a.se = a.se&0x8000 | uint16(f80Bias+r.Intn(66)-1) // around integers
		}
		putF80(rec[16:], a)
	}
	progs := []x87Prog{
		{name: "fsqrt", n: 2000, gen: one, body: "\tfld tbyte ptr [rdi+16]\n\tfsqrt"},
		{name: "frndint", n: 800, gen: one, body: "\tfld tbyte ptr [rdi+16]\n\tfrndint"},
		{name: "fxtract", n: 300, gen: one, body: "\tfld tbyte ptr [rdi+16]\n\tfxtract"},
		{name: "fchs/fabs", n: 100, gen: one, body: "\tfld tbyte ptr [rdi+16]\n\tfld st(0)\n\tfchs\n\tfld st(1)\n\tfabs"},
		{name: "ftst", n: 200, gen: one, body: "\tfld tbyte ptr [rdi+16]\n\tftst"},
		{name: "fxam", n: 400, gen: one, body: "\tfld tbyte ptr [rdi+16]\n\tfxam\n\tfnstsw word ptr [rdi+88]\n\tfstp st(0)\n\tfxam"},
		{name: "fscale", n: 600, gen: func(r *rand.Rand, rec []byte) {
			one(r, rec)
			b := randF80(r)
			if r.Intn(3) != 0 {
				b = intToF80(int64(r.Intn(40000) - 20000))
				if r.Intn(2) == 0 {
					b.se = b.se&0x8000 | uint16(f80Bias+r.Intn(20)-4)
				}
			}
			putF80(rec[32:], b)
		}, body: "\tfld tbyte ptr [rdi+32]\n\tfld tbyte ptr [rdi+16]\n\tfscale"},
	}
	for _, op := range []string{"fprem", "fprem1"} {
		progs = append(progs, x87Prog{name: op, n: 1000, gen: func(r *rand.Rand, rec []byte) {
			binary.LittleEndian.PutUint16(rec, randFCW(r))
			a := randF80(r)
			putF80(rec[16:], a)
			putF80(rec[32:], near(r, a, 100))
		}, body: "\tfld tbyte ptr [rdi+32]\n\tfld tbyte ptr [rdi+16]\n\t" + op})
	}
	runX87Progs(t, 2, progs)
}

func TestX87Compare(t *testing.T) {
	gen := genAB(2)
	progs := []x87Prog{
		{name: "fcom", n: 400, gen: gen, body: "\tfld tbyte ptr [rdi+32]\n\tfld tbyte ptr [rdi+16]\n\tfcom st(1)"},
		{name: "fucom", n: 400, gen: gen, body: "\tfld tbyte ptr [rdi+32]\n\tfld tbyte ptr [rdi+16]\n\tfucom st(1)"},
		{name: "fcomp", n: 100, gen: gen, body: "\tfld tbyte ptr [rdi+32]\n\tfld tbyte ptr [rdi+16]\n\tfcomp st(1)"},
		{name: "fucomp", n: 100, gen: gen, body: "\tfld tbyte ptr [rdi+32]\n\tfld tbyte ptr [rdi+16]\n\tfucomp st(1)"},
		{name: "fcompp", n: 100, gen: gen, body: "\tfld tbyte ptr [rdi+32]\n\tfld tbyte ptr [rdi+16]\n\tfcompp"},
		{name: "fucompp", n: 100, gen: gen, body: "\tfld tbyte ptr [rdi+32]\n\tfld tbyte ptr [rdi+16]\n\tfucompp"},
		{name: "fcomi", n: 400, gen: gen, body: "\tfld tbyte ptr [rdi+32]\n\tfld tbyte ptr [rdi+16]\n\tfcomi st(0), st(1)" + pushFlags},
		{name: "fucomi", n: 400, gen: gen, body: "\tfld tbyte ptr [rdi+32]\n\tfld tbyte ptr [rdi+16]\n\tfucomi st(0), st(1)" + pushFlags},
		{name: "fcomip", n: 100, gen: gen, body: "\tfld tbyte ptr [rdi+32]\n\tfld tbyte ptr [rdi+16]\n\tfcomip st(0), st(1)" + pushFlags},
		{name: "fucomip", n: 100, gen: gen, body: "\tfld tbyte ptr [rdi+32]\n\tfld tbyte ptr [rdi+16]\n\tfucomip st(0), st(1)" + pushFlags},
		{name: "fcom m32/m64", n: 300, gen: func(r *rand.Rand, rec []byte) {
			gen(r, rec)
			binary.LittleEndian.PutUint32(rec[64:], uint32(randFloatBits(r, 24)))
			binary.LittleEndian.PutUint64(rec[72:], randFloatBits(r, 53))
		}, body: "\tfld tbyte ptr [rdi+16]\n\tfcom dword ptr [rdi+64]\n\tfnstsw word ptr [rdi+88]\n\tfcomp qword ptr [rdi+72]"},
	}
	ccs := []string{"b", "e", "be", "u", "nb", "ne", "nbe", "nu"}
	for _, cc := range ccs {
		progs = append(progs, x87Prog{name: "fcmov" + cc, n: 60, gen: gen,
			body: "\tfld tbyte ptr [rdi+32]\n\tfld tbyte ptr [rdi+16]\n\tfucomi st(0), st(1)\n\tfcmov" + cc + " st(0), st(1)"})
	}
	runX87Progs(t, 3, progs)
}

func TestX87Convert(t *testing.T) {
	intish := func(r *rand.Rand, rec []byte) {
		binary.LittleEndian.PutUint16(rec, randFCW(r))
		a := randF80(r)
		if r.Intn(4) != 0 && a.class() == clsNormal {
			a.se = a.se&0x8000 | uint16(f80Bias+r.Intn(68)-3)
		}
		putF80(rec[16:], a)
	}
	storeF := func(r *rand.Rand, rec []byte) {
		binary.LittleEndian.PutUint16(rec, randFCW(r))
		a := randF80(r)
		switch r.Intn(4) {
		case 0: // around the double/single exponent limits
			lim := []int{126, 1022, 127, 1023, 149, 1074}[r.Intn(6)]
			e := f80Bias + lim + r.Intn(8) - 4
			if r.Intn(2) == 0 {
				e = f80Bias - lim + r.Intn(8) - 4
			}
			if a.class() == clsNormal {
				a.se = a.se&0x8000 | uint16(e)
			}
		}
		putF80(rec[16:], a)
	}
	progs := []x87Prog{
		{name: "fst m32/m64", n: 2000, gen: storeF, body: "\tfld tbyte ptr [rdi+16]\n\tfst dword ptr [rdi+64]\n\tfnstsw word ptr [rdi+88]\n\tfnclex\n\tfstp qword ptr [rdi+72]"},
		{name: "fstp m80", n: 50, gen: storeF, body: "\tfld tbyte ptr [rdi+16]\n\tfld st(0)\n\tfstp tbyte ptr [rdi+48]"},
		{name: "fist m16/m32/m64", n: 2000, gen: intish, body: "\tfld tbyte ptr [rdi+16]\n\tfist word ptr [rdi+64]\n\tfnstsw word ptr [rdi+88]\n\tfnclex\n" +
			"\tfist dword ptr [rdi+68]\n\tfnstsw word ptr [rdi+90]\n\tfnclex\n\tfld st(0)\n\tfistp qword ptr [rdi+72]\n\tfnstsw word ptr [rdi+92]\n\tfnclex\n\tfistp word ptr [rdi+80]\n\tfnstsw word ptr [rdi+94]"},
		{name: "fld m32/m64", n: 1000, gen: func(r *rand.Rand, rec []byte) {
			binary.LittleEndian.PutUint16(rec, randFCW(r))
			binary.LittleEndian.PutUint32(rec[64:], uint32(randFloatBits(r, 24)))
			binary.LittleEndian.PutUint64(rec[72:], randFloatBits(r, 53))
		}, body: "\tfld dword ptr [rdi+64]\n\tfnstsw word ptr [rdi+88]\n\tfld qword ptr [rdi+72]"},
		{name: "fild", n: 300, gen: func(r *rand.Rand, rec []byte) {
			binary.LittleEndian.PutUint64(rec[64:], r.Uint64()>>uint(r.Intn(64)))
			binary.LittleEndian.PutUint64(rec[72:], r.Uint64()>>uint(r.Intn(64)))
		}, body: "\tfild word ptr [rdi+64]\n\tfild dword ptr [rdi+66]\n\tfild qword ptr [rdi+72]\n\tfild dword ptr [rdi+76]"},
		{name: "constants", n: 24, gen: func(r *rand.Rand, rec []byte) {
			binary.LittleEndian.PutUint16(rec, randFCW(r))
		}, body: "\tfldpi\n\tfldl2t\n\tfldl2e\n\tfldlg2\n\tfldln2\n\tfld1\n\tfldz"},
	}
	runX87Progs(t, 4, progs)
}

// TestX87Stack covers stack overflow and underflow (masked: QNaN
// indefinite), register moves, FFREE, FINCSTP/FDECSTP, environment and
// state save/restore.
func TestX87Stack(t *testing.T) {
	gen := genAB(5)
	fld9 := strings.Repeat("\tfld tbyte ptr [rdi+16]\n", 9)
	progs := []x87Prog{
		{name: "overflow", n: 4, gen: gen, body: fld9},
		{name: "underflow fadd", n: 4, gen: gen, body: "\tfld tbyte ptr [rdi+16]\n\tfadd st(0), st(2)\n\tfnstsw word ptr [rdi+88]\n\tfadd st(3), st(0)"},
		{name: "underflow misc", n: 4, gen: gen, body: "\tfstp st(0)\n\tfnstsw word ptr [rdi+88]\n\tfnclex\n\tfst dword ptr [rdi+64]\n" +
			"\tfnstsw word ptr [rdi+90]\n\tfnclex\n\tfistp dword ptr [rdi+68]\n\tfnstsw word ptr [rdi+92]\n\tfnclex\n\tfxch st(2)\n\tfnstsw word ptr [rdi+94]\n\tfucomi st(0), st(1)" + pushFlags},
		{name: "moves", n: 50, gen: gen, body: "\tfld tbyte ptr [rdi+32]\n\tfld tbyte ptr [rdi+16]\n\tfxch st(1)\n\tfld st(1)\n\tfst st(3)\n\tfstp st(1)\n\tfld st(0)\n\tffree st(1)\n\tfincstp\n\tfdecstp\n\tfdecstp"},
		{name: "fnstenv/fldenv", n: 50, gen: gen, body: "\tfld tbyte ptr [rdi+32]\n\tfld tbyte ptr [rdi+16]\n\tfdiv st(0), st(1)\n\tfnstenv [rdi+208]\n\tfnstcw word ptr [rdi+88]\n" +
			"\tfninit\n\tfldenv [rdi+208]\n\tfxam\n\tfnstsw ax\n\tmov [rdi+90], ax"},
		{name: "fnsave/frstor", n: 50, gen: gen, body: "\tfld tbyte ptr [rdi+32]\n\tfld tbyte ptr [rdi+16]\n\tfsub st(0), st(1)\n\tfld1\n\tfnsave [rdi+96]\n\tfld1\n\tfrstor [rdi+96]\n\tfaddp st(1), st(0)"},
		{name: "fnclex/fldcw", n: 50, gen: gen, body: "\tfld tbyte ptr [rdi+32]\n\tfld tbyte ptr [rdi+16]\n\tfdiv st(0), st(1)\n\tfnstsw word ptr [rdi+88]\n\tfnclex\n\tfnstsw word ptr [rdi+90]\n\tfwait"},
	}
	runX87Progs(t, 5, progs)
}

// fxMask compares FXSAVE images: everything but FOP (6..7), FIP/FCS
// (8..15), FDP/FDS (16..23), MXCSR_MASK (28..31, the engine reports
// 0x0000ffff) and the reserved area (288..511); registers only where
// valid.
func fxDiff(h, e []byte, what string) string {
	var sb strings.Builder
	if !bytes.Equal(h[:6], e[:6]) || !bytes.Equal(h[24:28], e[24:28]) {
		fmt.Fprintf(&sb, "  %s: host %x mxcsr %x\n          eng  %x mxcsr %x\n", what, h[:6], h[24:28], e[:6], e[24:28])
	}
	top := (le16(h[2:]) >> 11) & 7
	for i := 0; i < 8; i++ {
		if h[4]>>((int(top)+i)&7)&1 == 0 {
			continue
		}
		o := 32 + 16*i
		if !bytes.Equal(h[o:o+10], e[o:o+10]) {
			fmt.Fprintf(&sb, "  %s ST(%d): host %s eng %s\n", what, i, hexF80(h[o:]), hexF80(e[o:]))
		}
	}
	if !bytes.Equal(h[160:288], e[160:288]) {
		fmt.Fprintf(&sb, "  %s XMM: host %x\n          eng  %x\n", what, h[160:288], e[160:288])
	}
	return sb.String()
}

func TestFXSAVE(t *testing.T) {
	const stride = 1536
	loadXMM := ""
	for i := 0; i < 16; i++ {
		loadXMM += fmt.Sprintf("\tmovdqu xmm%d, [rdi+%d]\n", i, 256+16*i)
	}
	restoreMX := "\tmov dword ptr [rdi+12], 0x1f80\n\tldmxcsr dword ptr [rdi+12]\n"
	gen := func(r *rand.Rand, rec []byte) {
		genAB(10)(r, rec)
		binary.LittleEndian.PutUint32(rec[8:], uint32(r.Intn(0x10000))&^0x3f|0x1f80&uint32(r.Intn(2)<<7))
		for i := 256; i < 512; i++ {
			rec[i] = byte(r.Intn(256))
		}
	}
	check := func(h, e []byte) string {
		return x87Diff(h, e) + fxDiff(h[512:1024], e[512:1024], "fxsave") + fxDiff(h[1024:], e[1024:], "fxsave64")
	}
	// FXRSTOR input images: random control/status/tag, registers, MXCSR.
	genImg := func(r *rand.Rand, rec []byte) {
		gen(r, rec)
		img := rec[512:1024]
		binary.LittleEndian.PutUint16(img, randFCW(r)&^uint16(r.Intn(64)))
		binary.LittleEndian.PutUint16(img[2:], uint16(r.Intn(0x10000))&^0x80) // ES is derived
		img[4] = byte(r.Intn(256))
		binary.LittleEndian.PutUint32(img[24:], uint32(r.Intn(0x10000)))
		for i := 0; i < 8; i++ {
			putF80(img[32+16*i:], randF80(r))
		}
		for i := 160; i < 288; i++ {
			img[i] = byte(r.Intn(256))
		}
	}
	progs := []x87Prog{
		{name: "fxsave", n: 200, stride: stride, gen: gen, check: check,
			body: loadXMM + "\tfld tbyte ptr [rdi+32]\n\tfld tbyte ptr [rdi+16]\n\tfdiv st(0), st(1)\n\tfld st(1)\n\tldmxcsr dword ptr [rdi+8]\n" +
				"\tfxsave [rdi+512]\n\tfxsave64 [rdi+1024]\n" + restoreMX},
		{name: "fxrstor", n: 200, stride: stride, gen: genImg, check: func(h, e []byte) string {
			return x87Diff(h, e) + fxDiff(h[1024:], e[1024:], "fxsave after fxrstor")
		}, body: "\tfxrstor [rdi+512]\n\tfxsave [rdi+1024]\n\tfnstenv [rdi+208]\n" + restoreMX},
		{name: "fxrstor64", n: 50, stride: stride, gen: genImg, check: func(h, e []byte) string {
			return x87Diff(h, e) + fxDiff(h[1024:], e[1024:], "fxsave64 after fxrstor64")
		}, body: "\tfxrstor64 [rdi+512]\n\tfxsave64 [rdi+1024]\n" + restoreMX},
	}
	runX87Progs(t, 6, progs)
}

// TestX87Faults checks the engine's #NM, #UD, #GP and #MF conditions.
func TestX87Faults(t *testing.T) {
	src := `
fadd_:	fadd st(0), st(0)
	hlt
fxsave_:	fxsave [rip+buf]
	hlt
fxsave_mis:	fxsave [rip+buf+8]
	hlt
fxrstor_:	fxrstor [rip+buf]
	hlt
mf:	fld1
	fldz
	fdiv st(1), st(0)
	fld1
	hlt
fwait_:	fwait
	hlt
.balign 16
buf:	.space 512
`
	type tc struct {
		name  string
		label string
		cr0   uint64
		setup func(m *testMachine, p asmProg)
		want  int
	}
	tcs := []tc{
		{"fadd TS", "fadd_", cpu.CR0TS, nil, cpu.ExcNM},
		{"fadd EM", "fadd_", cpu.CR0EM, nil, cpu.ExcNM},
		{"fxsave TS", "fxsave_", cpu.CR0TS, nil, cpu.ExcNM},
		{"fxsave EM", "fxsave_", cpu.CR0EM, nil, cpu.ExcUD},
		{"fxsave misaligned", "fxsave_mis", 0, nil, cpu.ExcGP},
		{"fxrstor reserved mxcsr", "fxrstor_", 0, func(m *testMachine, p asmProg) {
			binary.LittleEndian.PutUint32(m.ram[p.addr(t, "buf")+24:], 0x10000)
		}, cpu.ExcGP},
		{"unmasked zero divide then #MF", "mf", 0, func(m *testMachine, p asmProg) {
			m.cpu.fpu.fcw = 0x37f &^ fswZE
		}, cpu.ExcMF},
		{"fwait TS+MP", "fwait_", cpu.CR0TS | cpu.CR0MP, nil, cpu.ExcNM},
		{"fwait TS", "fwait_", cpu.CR0TS, nil, -1},
	}
	for _, c := range tcs {
		t.Run(c.name, func(t *testing.T) {
			m, p := newAsmMachine(t, cpu.ModeHWAssist, src)
			m.cpu.cr0 |= c.cr0
			if c.setup != nil {
				c.setup(m, p)
			}
			m.cpu.rip = p.addr(t, c.label)
			if got := m.runToVector(100); got != c.want {
				t.Errorf("vector %d, want %d", got, c.want)
			}
		})
	}
	// After the #MF case: the faulting FLD is the one after FDIV, and FSW
	// shows ZE|ES|B.
	m, p := newAsmMachine(t, cpu.ModeHWAssist, src)
	m.cpu.fpu.fcw = 0x37f &^ fswZE
	m.cpu.rip = p.addr(t, "mf")
	m.runToVector(100)
	if f := m.cpu.fpu.fsw; f&(fswZE|fswES|fswB) != fswZE|fswES|fswB {
		t.Errorf("fsw %#x after unmasked zero divide", f)
	}
	if rip := m.frame(1)[0]; rip != p.addr(t, "mf")+2+2+2 {
		t.Errorf("#MF at %#x, want the fld1 after fdiv", rip)
	}
	if v := m.cpu.fpu.get(1); v != f80One {
		t.Errorf("unmasked #Z changed the destination: %+v", v)
	}
}

// TestX87FIP checks FIP, FDP and FOP as FNSTENV and FXSAVE64 store them.
func TestX87FIP(t *testing.T) {
	src := `
	fninit
	fld1
at:	fadd qword ptr [rip+val]
	fnstenv [rip+env]
	fxsave64 [rip+fx]
	hlt
.balign 16
fx:	.space 512
env:	.space 28
val:	.double 2.0
`
	m, p := newAsmMachine(t, cpu.ModeHWAssist, src)
	m.runToHLT(100)
	env := m.ram[p.addr(t, "env"):]
	fx := m.ram[p.addr(t, "fx"):]
	at, val := p.addr(t, "at"), p.addr(t, "val")
	if got := binary.LittleEndian.Uint32(env[12:]); uint64(got) != at {
		t.Errorf("env FIP %#x, want %#x", got, at)
	}
	if got := binary.LittleEndian.Uint32(env[20:]); uint64(got) != val {
		t.Errorf("env FDP %#x, want %#x", got, val)
	}
	// fadd m64 = DC /0 with RIP-relative ModRM 05: FOP = 4<<8 | 0x05.
	if got := binary.LittleEndian.Uint16(env[18:]) & 0x7ff; got != 0x405 {
		t.Errorf("env FOP %#x, want 0x405", got)
	}
	if got := binary.LittleEndian.Uint64(fx[8:]); got != at {
		t.Errorf("fxsave64 FIP %#x, want %#x", got, at)
	}
	if got := binary.LittleEndian.Uint64(fx[16:]); got != val {
		t.Errorf("fxsave64 FDP %#x, want %#x", got, val)
	}
	if got := m.cpu.fpu.get(0); got != (f80{mant: 0xc000000000000000, se: f80Bias + 1}) {
		t.Errorf("1+2 = %+v", got)
	}
}

// TestX87Env16 checks the 16-bit (operand-size prefixed) layouts of
// FNSTENV/FLDENV (14 bytes) and FNSAVE/FRSTOR (94 bytes): contents as the
// host's, and nothing written past the end of the area. Record layout
// (stride 512) beyond the standard one: 256 a 14-byte environment, 288 a
// 94-byte save area; every other byte from 256 on holds a fixed pattern
// that must survive. FCS and FDS are not compared; FIP and FDP only in
// their low 12 bits where they name addresses (host and engine run the
// same code and records at different page-aligned addresses). The stored
// FDP is the host's only where the host records it: an Intel host with
// CPUID.(EAX=7):EBX[6] (hostVariant.fdpOnlyOnException) keeps FNINIT's 0,
// as nothing here raises an unmasked exception; there the engine's FDP must
// be the offset of the program's last memory operand, [rdi+16] (the body
// stores rdi at 240).
func TestX87Env16(t *testing.T) {
	const stride = 512
	pattern := func(o int) byte { return byte(o*7 + 0x5a) }
	fill := func(rec []byte) {
		for o := 256; o < stride; o++ {
			rec[o] = pattern(o)
		}
	}
	untouched := func(b []byte, what string, ranges ...[2]int) string {
		for _, rg := range ranges {
			for o := rg[0]; o < rg[1]; o++ {
				if b[o] != pattern(o) {
					return fmt.Sprintf("  %s wrote byte %d (%#02x)\n", what, o, b[o])
				}
			}
		}
		return ""
	}
	// env16 compares a 14-byte environment at off; addrs: FIP and FDP hold
	// addresses.
	env16 := func(h, e []byte, off int, addrs bool) string {
		m := uint16(0xffff)
		if addrs {
			m = 0xfff
		}
		fdpOK := le16(h[off+10:])&m == le16(e[off+10:])&m
		if addrs && hostCPU().fdpOnlyOnException() {
			fdpOK = le16(h[off+10:]) == 0 && le16(e[off+10:]) == uint16(binary.LittleEndian.Uint64(e[240:])+16)
		}
		if !bytes.Equal(h[off:off+6], e[off:off+6]) || le16(h[off+6:])&m != le16(e[off+6:])&m || !fdpOK {
			return fmt.Sprintf("  env16 host %x\n        eng  %x\n", h[off:off+14], e[off:off+14])
		}
		return ""
	}
	// pointers compares FIP, FOP and FDP of the closing 32-bit FNSAVE
	// when they come from a loaded image, not from addresses.
	pointers := func(h, e []byte) string {
		if !bytes.Equal(h[96+12:96+16], e[96+12:96+16]) || le16(h[96+18:])&0x7ff != le16(e[96+18:])&0x7ff || !bytes.Equal(h[96+20:96+24], e[96+20:96+24]) {
			return fmt.Sprintf("  fnsave FIP/FOP/FDP host %x\n                    eng  %x\n", h[96+12:96+24], e[96+12:96+24])
		}
		return ""
	}
	both := func(h, e []byte, f func(b []byte, who string) string) string {
		return f(h, "host") + f(e, "engine")
	}
	genImage := func(r *rand.Rand, b []byte, regs bool) {
		r.Read(b[:14])
		binary.LittleEndian.PutUint16(b, randFCW(r)&^uint16(r.Intn(64)))
		binary.LittleEndian.PutUint16(b[2:], uint16(r.Intn(0x10000))&^0x80)
		if regs {
			for i := 0; i < 8; i++ {
				putF80(b[14+10*i:], randF80(r))
			}
		}
	}
	// A loaded tag word may mark registers valid that the program never
	// wrote: give all eight a known value first.
	fill8 := strings.Repeat("\tfld tbyte ptr [rdi+32]\n", 8) + "\tfninit\n"
	progs := []x87Prog{
		{name: "fnstenv16/fnsave16", n: 300, stride: stride,
			gen: func(r *rand.Rand, rec []byte) { genAB(10)(r, rec); fill(rec) },
			check: func(h, e []byte) string {
				d := x87Diff(h, e) + env16(h, e, 256, true) + env16(h, e, 288, true)
				top, tag := (le16(h[290:])>>11)&7, le16(h[292:])
				for i := 0; i < 8; i++ {
					if o := 302 + 10*i; tag>>(2*((int(top)+i)&7))&3 != 3 && !bytes.Equal(h[o:o+10], e[o:o+10]) {
						d += fmt.Sprintf("  fnsave16 ST(%d): host %s eng %s\n", i, hexF80(h[o:]), hexF80(e[o:]))
					}
				}
				return d + both(h, e, func(b []byte, who string) string {
					return untouched(b, who, [2]int{270, 288}, [2]int{382, stride})
				})
			},
			body: "\tmov qword ptr [rdi+240], rdi\n\tfld tbyte ptr [rdi+32]\n\tfld tbyte ptr [rdi+16]\n\tfdiv st(0), st(1)\n\tfld st(1)\n\tdata16 fnstenv [rdi+256]\n\tdata16 fnsave [rdi+288]"},
		{name: "fldenv16", n: 300, stride: stride,
			gen: func(r *rand.Rand, rec []byte) { genAB(10)(r, rec); fill(rec); genImage(r, rec[256:], false) },
			check: func(h, e []byte) string {
				return x87Diff(h, e) + pointers(h, e) + both(h, e, func(b []byte, who string) string {
					return untouched(b, who, [2]int{270, stride})
				})
			},
			body: fill8 + "\tfld tbyte ptr [rdi+32]\n\tfld tbyte ptr [rdi+16]\n\tdata16 fldenv [rdi+256]"},
		{name: "frstor16", n: 300, stride: stride,
			gen: func(r *rand.Rand, rec []byte) { genAB(10)(r, rec); fill(rec); genImage(r, rec[288:], true) },
			check: func(h, e []byte) string {
				return x87Diff(h, e) + pointers(h, e) + both(h, e, func(b []byte, who string) string {
					return untouched(b, who, [2]int{256, 288}, [2]int{382, stride})
				})
			},
			body: "\tfld tbyte ptr [rdi+16]\n\tdata16 frstor [rdi+288]"},
		{name: "fldenv then fnstenv16", n: 300, stride: stride,
			gen: func(r *rand.Rand, rec []byte) {
				genAB(10)(r, rec)
				fill(rec)
				r.Read(rec[208:236])
				binary.LittleEndian.PutUint16(rec[208:], randFCW(r)&^uint16(r.Intn(64)))
				binary.LittleEndian.PutUint16(rec[212:], uint16(r.Intn(0x10000))&^0x80)
			},
			check: func(h, e []byte) string {
				return x87Diff(h, e) + env16(h, e, 256, false) + both(h, e, func(b []byte, who string) string {
					return untouched(b, who, [2]int{270, stride})
				})
			},
			body: fill8 + "\tfld tbyte ptr [rdi+32]\n\tfld tbyte ptr [rdi+16]\n\tfldenv [rdi+208]\n\tdata16 fnstenv [rdi+256]"},
	}
	runX87Progs(t, 9, progs)
}
