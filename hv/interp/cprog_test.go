package interp

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/big"
	"math/bits"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/pvisor/pvisor/hv/cpu"
)

// Freestanding C programs (testdata/cprog) compiled by the system gcc at
// test time, loaded into a test machine and run to HLT. Every result is
// checked against the same computation done in Go.

// Guest layout of a C program run (on top of the test machine's):
//
//	0x100000  the ELF image (text, rodata, data, bss), below cpVectors
//	0x1fe000  exception stubs: HLT at cpVectors + 4*vector
//	0x1ff000  main's result (stored by start.S)
//	0x400000  inputs           0x2000000 outputs
//	0x3ff0000 stack top
const (
	cpVectors  = 0x1fe000
	cpResult   = 0x1ff000
	cpIn       = 0x400000
	cpOut      = 0x2000000
	cpStackTop = 0x3ff0000
	cpBudget   = 400 << 20 // instructions per call, far above any program's need
)

// Commands of main (testdata/cprog/prog.h).
const (
	cmdSHA256 = 1 + iota
	cmdSortI64
	cmdHeapU64
	cmdSortStr
	cmdCRC32
	cmdCRC32C
	cmdDivMod
	cmdMemOps
	cmdVM
	cmdRecur
	cmdInt128
	cmdBits
	cmdBench
)

// cprogVariants are the optimization levels every program is built with.
var cprogVariants = []string{"O2", "O0", "Os"}

// cprogFlags are the compiler flags shared by all variants: no libc, no
// libgcc, code and data at fixed addresses, and SSE2 at most (the
// engine's CPUID advertises nothing newer).
var cprogFlags = []string{
	"-ffreestanding", "-fno-pic", "-fno-pie", "-no-pie", "-mno-red-zone",
	"-fno-stack-protector", "-fcf-protection=none", "-nostdlib", "-static",
	"-mcmodel=small", "-msse2", "-mno-sse3", "-Wall", "-Werror",
	"-Wl,--build-id=none", "-Wl,--no-warn-rwx-segments",
}

var (
	cprogOnce   sync.Once
	cprogImages map[string][]byte
	cprogErr    error
)

// cprogImage returns the ELF image of the programs built at -variant. The
// build runs once per test process.
func cprogImage(t testing.TB, variant string) []byte {
	t.Helper()
	cprogOnce.Do(func() { cprogImages, cprogErr = cprogBuild(t.TempDir()) })
	if cprogErr != nil {
		t.Fatal(cprogErr)
	}
	img, ok := cprogImages[variant]
	if !ok {
		t.Fatalf("no C program variant %q", variant)
	}
	return img
}

func cprogBuild(dir string) (map[string][]byte, error) {
	for _, tool := range []string{"gcc", "ld", "objcopy"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%s not found (%v): the C program tests need gcc and binutils; run scripts/install-deps.sh (make deps)", tool, err)
		}
	}
	src, err := filepath.Abs("testdata/cprog")
	if err != nil {
		return nil, err
	}
	cs, err := filepath.Glob(filepath.Join(src, "*.c"))
	if err != nil || len(cs) == 0 {
		return nil, fmt.Errorf("no C sources in %s (%v)", src, err)
	}
	// The variants build concurrently.
	images := make([][]byte, len(cprogVariants))
	errs := make([]error, len(cprogVariants))
	var wg sync.WaitGroup
	for i, v := range cprogVariants {
		wg.Go(func() {
			out := filepath.Join(dir, "prog-"+v+".elf")
			args := append([]string{"-" + v}, cprogFlags...)
			args = append(args, "-T", filepath.Join(src, "link.ld"), "-o", out, filepath.Join(src, "start.S"))
			args = append(args, cs...)
			if msg, err := exec.Command("gcc", args...).CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("gcc -%s: %v\n%s", v, err, msg)
				return
			}
			images[i], errs[i] = os.ReadFile(out)
		})
	}
	wg.Wait()
	m := map[string][]byte{}
	for i, v := range cprogVariants {
		if errs[i] != nil {
			return nil, errs[i]
		}
		m[v] = images[i]
	}
	return m, nil
}

// cprog is a test machine with a C program loaded.
type cprog struct {
	t     testing.TB
	m     *testMachine
	entry uint64
	last  uint64 // instructions retired by the last call
}

// loadCProg builds a test machine and loads the program built at -variant.
func loadCProg(t testing.TB, variant string) *cprog {
	t.Helper()
	m := newTestMachine(t, nil)
	entry, err := loadELF(m.ram, cprogImage(t, variant), tmCode, cpVectors)
	if err != nil {
		t.Fatal(err)
	}
	// Exception stubs: vector v's gate points at HLT; JMP $ after it.
	for v := 0; v < 32; v++ {
		a := uint64(cpVectors + 4*v)
		copy(m.ram[a:], []byte{0xf4, 0xeb, 0xfe})
		m.setIDT(v, a, 0xe, 0, 0)
	}
	return &cprog{t: t, m: m, entry: entry}
}

// loadELF copies the PT_LOAD segments of an x86-64 executable into ram,
// zero-filling up to each segment's memory size; every segment must lie in
// [lo, hi). It returns the entry point.
func loadELF(ram []byte, image []byte, lo, hi uint64) (uint64, error) {
	f, err := elf.NewFile(bytes.NewReader(image))
	if err != nil {
		return 0, err
	}
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_X86_64 || f.Type != elf.ET_EXEC {
		return 0, fmt.Errorf("not an x86-64 executable: %v %v %v", f.Class, f.Machine, f.Type)
	}
	n := 0
	for _, p := range f.Progs {
		if p.Type != elf.PT_LOAD {
			continue
		}
		if p.Vaddr < lo || p.Memsz > hi-p.Vaddr || p.Filesz > p.Memsz {
			return 0, fmt.Errorf("segment [%#x, +%#x) outside [%#x, %#x)", p.Vaddr, p.Memsz, lo, hi)
		}
		seg := ram[p.Vaddr : p.Vaddr+p.Memsz]
		if _, err := p.ReadAt(seg[:p.Filesz], 0); err != nil {
			return 0, err
		}
		clear(seg[p.Filesz:])
		n++
	}
	if n == 0 {
		return 0, fmt.Errorf("no PT_LOAD segment")
	}
	if f.Entry < lo || f.Entry >= hi {
		return 0, fmt.Errorf("entry %#x outside the image", f.Entry)
	}
	return f.Entry, nil
}

// call runs main(cmd, args...) to its HLT and returns its result. It does
// not allocate once the program's blocks are decoded.
func (p *cprog) call(cmd uint64, args ...uint64) uint64 {
	var r cpu.Regs
	r.RIP = p.entry
	r.RFLAGS = cpu.FlagsFixed
	r.GPR[cpu.RSP] = cpStackTop
	r.GPR[cpu.RDI] = cmd
	argRegs := [...]int{cpu.RSI, cpu.RDX, cpu.RCX, cpu.R8, cpu.R9}
	for i, a := range args {
		r.GPR[argRegs[i]] = a
	}
	c := p.m.cpu
	c.SetRegs(r)
	before := c.Stats().Instructions
	for {
		e, err := c.Run(cpBudget)
		if err != nil {
			p.t.Fatal(err)
		}
		if e.Reason == cpu.ExitHLT {
			break
		}
		if e.Reason == cpu.ExitCPUID || e.Reason == cpu.ExitMSR || e.Reason == cpu.ExitCR {
			continue
		}
		p.t.Fatalf("command %d: unexpected exit %v at rip %#x: %s", cmd, e.Reason, e.RIP, e.Message)
	}
	p.last = c.Stats().Instructions - before
	if rip := c.rip - 1; rip >= cpVectors && rip < cpVectors+32*4 {
		p.fault(cmd, int(rip-cpVectors)/4)
	}
	if p.m.ram[c.rip-1] != 0xf4 {
		p.t.Fatalf("command %d: halted at unexpected rip %#x", cmd, c.rip)
	}
	res := binary.LittleEndian.Uint64(p.m.ram[cpResult:])
	if res != c.r[cpu.RAX] {
		p.t.Fatalf("command %d: stored result %#x != rax %#x", cmd, res, c.r[cpu.RAX])
	}
	return res
}

// fault reports a guest exception taken by the program.
func (p *cprog) fault(cmd uint64, vec int) {
	p.t.Helper()
	c := p.m.cpu
	sp := c.r[cpu.RSP]
	errCode := "none"
	switch vec {
	case 8, 10, 11, 12, 13, 14, 17:
		errCode = fmt.Sprintf("%#x", p.q(sp))
		sp += 8
	}
	rip := p.q(sp)
	var code []byte
	if rip < uint64(len(p.m.ram))-16 {
		code = p.m.ram[rip : rip+16]
	}
	p.t.Fatalf("command %d: guest exception %d (error %s) at rip %#x, code % x, cr2 %#x",
		cmd, vec, errCode, rip, code, c.cr2)
}

func (p *cprog) q(a uint64) uint64 { return binary.LittleEndian.Uint64(p.m.ram[a:]) }

func (p *cprog) putWords(a uint64, w []uint64) {
	for i, v := range w {
		binary.LittleEndian.PutUint64(p.m.ram[a+uint64(8*i):], v)
	}
}

func (p *cprog) words(a uint64, n int) []uint64 {
	w := make([]uint64, n)
	for i := range w {
		w[i] = p.q(a + uint64(8*i))
	}
	return w
}

// forVariants runs f as a subtest for each build variant.
func forVariants(t *testing.T, f func(t *testing.T, p *cprog)) {
	for _, v := range cprogVariants {
		t.Run(v, func(t *testing.T) { f(t, loadCProg(t, v)) })
	}
}

func cprogRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)) }

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestCProgSHA256(t *testing.T) {
	forVariants(t, func(t *testing.T, p *cprog) {
		r := cprogRand(1)
		for _, n := range []int{0, 1, 3, 55, 56, 63, 64, 65, 119, 120, 1000, 100000} {
			buf := randBytes(r, n)
			copy(p.m.ram[cpIn:], buf)
			p.call(cmdSHA256, cpIn, uint64(n), cpOut)
			want := sha256.Sum256(buf)
			if got := p.m.ram[cpOut : cpOut+32]; !bytes.Equal(got, want[:]) {
				t.Errorf("sha256 of %d bytes = %x, want %x", n, got, want)
			}
		}
	})
}

func TestCProgSortInts(t *testing.T) {
	forVariants(t, func(t *testing.T, p *cprog) {
		r := cprogRand(2)
		inputs := map[string][]uint64{}
		rnd := make([]uint64, 10000)
		for i := range rnd {
			rnd[i] = r.Uint64()
		}
		inputs["random"] = rnd
		dup := make([]uint64, 10000)
		for i := range dup {
			dup[i] = uint64(r.IntN(20)) - 10
		}
		inputs["duplicates"] = dup
		asc := make([]uint64, 5000)
		for i := range asc {
			asc[i] = uint64(i*3) - 7000
		}
		inputs["ascending"] = asc
		desc := make([]uint64, 5000)
		for i := range desc {
			desc[i] = uint64(-i * 5)
		}
		inputs["descending"] = desc
		inputs["short"] = []uint64{5, ^uint64(0), 1 << 63, 3}
		for name, in := range inputs {
			// Quicksort, signed.
			p.putWords(cpIn, in)
			p.call(cmdSortI64, cpIn, uint64(len(in)))
			got := p.words(cpIn, len(in))
			want := append([]uint64(nil), in...)
			sort.Slice(want, func(i, j int) bool { return int64(want[i]) < int64(want[j]) })
			if i := firstDiff(got, want); i >= 0 {
				t.Errorf("quicksort %s: element %d = %d, want %d", name, i, int64(got[i]), int64(want[i]))
			}
			// Heapsort, unsigned.
			p.putWords(cpIn, in)
			p.call(cmdHeapU64, cpIn, uint64(len(in)))
			got = p.words(cpIn, len(in))
			sort.Slice(want, func(i, j int) bool { return want[i] < want[j] })
			if i := firstDiff(got, want); i >= 0 {
				t.Errorf("heapsort %s: element %d = %#x, want %#x", name, i, got[i], want[i])
			}
		}
	})
}

func firstDiff(a, b []uint64) int {
	for i := range a {
		if i >= len(b) || a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return len(a)
	}
	return -1
}

func TestCProgSortStrings(t *testing.T) {
	forVariants(t, func(t *testing.T, p *cprog) {
		r := cprogRand(3)
		prefixes := []string{"", "a", "ab", "abc", "zz\xff", "\x80"}
		strs := make([]string, 3000)
		for i := range strs {
			var sb strings.Builder
			sb.WriteString(prefixes[r.IntN(len(prefixes))])
			for k := r.IntN(12); k > 0; k-- {
				if r.IntN(2) == 0 {
					sb.WriteByte(byte('a' + r.IntN(4)))
				} else {
					sb.WriteByte(byte(1 + r.IntN(255)))
				}
			}
			strs[i] = sb.String()
		}
		// Strings at cpIn+64K, pointers at cpIn.
		ptrs := make([]uint64, len(strs))
		a := uint64(cpIn + 64<<10)
		for i, s := range strs {
			ptrs[i] = a
			copy(p.m.ram[a:], s)
			p.m.ram[a+uint64(len(s))] = 0
			a += uint64(len(s)) + 1
		}
		p.putWords(cpIn, ptrs)
		p.call(cmdSortStr, cpIn, uint64(len(strs)))
		got := make([]string, len(strs))
		for i, ptr := range p.words(cpIn, len(strs)) {
			if ptr < cpIn || ptr >= a {
				t.Fatalf("pointer %d = %#x, not one of the strings", i, ptr)
			}
			end := bytes.IndexByte(p.m.ram[ptr:], 0)
			got[i] = string(p.m.ram[ptr : ptr+uint64(end)])
		}
		want := append([]string(nil), strs...)
		sort.Slice(want, func(i, j int) bool { return want[i] < want[j] })
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("sorted string %d = %q, want %q", i, got[i], want[i])
			}
		}
	})
}

func TestCProgCRC32(t *testing.T) {
	castagnoli := crc32.MakeTable(crc32.Castagnoli)
	forVariants(t, func(t *testing.T, p *cprog) {
		r := cprogRand(4)
		for _, n := range []int{0, 1, 7, 64, 1000, 65537} {
			buf := randBytes(r, n)
			copy(p.m.ram[cpIn:], buf)
			if got, want := uint32(p.call(cmdCRC32, cpIn, uint64(n))), crc32.ChecksumIEEE(buf); got != want {
				t.Errorf("crc32 of %d bytes = %#08x, want %#08x", n, got, want)
			}
			if got, want := uint32(p.call(cmdCRC32C, cpIn, uint64(n))), crc32.Checksum(buf, castagnoli); got != want {
				t.Errorf("crc32c of %d bytes = %#08x, want %#08x", n, got, want)
			}
		}
	})
}

// divModRef is divmod.c's computation for one pair, with C's integer
// promotions spelled out.
func divModRef(a, b uint64) [24]uint64 {
	var o [24]uint64
	o[0], o[1] = a/b, a%b
	o[2], o[3] = uint64(int64(a)/int64(b)), uint64(int64(a)%int64(b))
	o[4], o[5] = uint64(uint32(a)/uint32(b)), uint64(uint32(a)%uint32(b))
	o[6], o[7] = uint64(int64(int32(a)/int32(b))), uint64(int64(int32(a)%int32(b)))
	o[8] = uint64(uint16(a) / uint16(b))
	o[9] = uint64(int64(int32(int16(a)) % int32(int16(b))))
	o[10] = uint64(uint8(a) / uint8(b))
	o[11] = uint64(int64(int32(int8(a)) / int32(int8(b))))
	o[12], o[13] = a/10, a%10
	o[14], o[15] = uint64(int64(a)/7), uint64(int64(a)%7)
	o[16] = uint64(uint32(a) / 3)
	o[17] = uint64(int64(int32(a) / -5))
	o[18] = a / 1000000007
	o[19] = uint64(int64(a) % 1000000007)
	o[20], o[21] = uint64(int64(a)/16), uint64(int64(a)%16)
	o[22] = uint64(int64(int32(a) / 1024))
	o[23] = a / 0x8000000000000001
	return o
}

func TestCProgDivMod(t *testing.T) {
	forVariants(t, func(t *testing.T, p *cprog) {
		r := cprogRand(5)
		edge := []uint64{0, 1, 2, 3, 7, 10, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000,
			0xffffffff, 1 << 32, 1<<63 - 1, 1 << 63, 1<<63 + 1, ^uint64(0), ^uint64(1), 1000000007}
		randSized := func() uint64 { return r.Uint64() >> r.IntN(64) }
		var in []uint64
		for len(in) < 2*3000 {
			var a, b uint64
			switch r.IntN(4) {
			case 0:
				a, b = edge[r.IntN(len(edge))], edge[r.IntN(len(edge))]
			case 1:
				a, b = r.Uint64(), edge[r.IntN(len(edge))]
			case 2:
				a, b = randSized(), randSized()
			default:
				a, b = r.Uint64(), randSized()
			}
			if r.IntN(4) == 0 {
				b = -b // negative divisors
			}
			if uint8(b) == 0 { // no zero divisor at any width
				b |= 1
			}
			// x86 faults on MIN / -1, which C leaves undefined.
			if int64(a) == -1<<63 && int64(b) == -1 || int32(a) == -1<<31 && int32(b) == -1 {
				continue
			}
			in = append(in, a, b)
		}
		n := len(in) / 2
		p.putWords(cpIn, in)
		p.call(cmdDivMod, cpIn, uint64(n), cpOut)
		got := p.words(cpOut, 24*n)
		bad := 0
		for i := 0; i < n && bad < 10; i++ {
			want := divModRef(in[2*i], in[2*i+1])
			for k, w := range want {
				if g := got[24*i+k]; g != w {
					t.Errorf("a=%#x b=%#x: result %d = %#x, want %#x", in[2*i], in[2*i+1], k, g, w)
					bad++
				}
			}
		}
	})
}

// Memory operations of memops (mem.c).
const (
	memCopy = iota
	memMove
	memSet
	memCmp
	memStrlen
	memStrcmp
	memCopyBlob
	memClearBlob
	memFillSmall
	memCopySmall
	memRepMovsb
	memRepStosq
	numMemOps
)

const (
	memBufSize = 64 << 10
	memArea    = memBufSize - 4096 // the last page stays zero: strings end
	memBlob    = 768
)

func sign(x int) uint64 {
	switch {
	case x < 0:
		return ^uint64(0)
	case x > 0:
		return 1
	}
	return 0
}

// memOpsRef runs memops' operations on buf in Go.
func memOpsRef(buf []byte, ops []uint64) []uint64 {
	var out []uint64
	cstr := func(a uint64) []byte { return buf[a : a+uint64(bytes.IndexByte(buf[a:], 0))] }
	for i := 0; i < len(ops); i += 4 {
		x, y, z := ops[i+1], ops[i+2], ops[i+3]
		switch ops[i] {
		case memCopy, memMove:
			copy(buf[x:x+z], buf[y:y+z])
		case memSet:
			for k := range z {
				buf[x+k] = byte(y)
			}
		case memCmp:
			out = append(out, sign(bytes.Compare(buf[x:x+z], buf[y:y+z])))
		case memStrlen:
			out = append(out, uint64(len(cstr(x))))
		case memStrcmp:
			out = append(out, sign(bytes.Compare(cstr(x), cstr(y))))
		case memCopyBlob:
			copy(buf[x:x+memBlob], buf[y:y+memBlob])
		case memClearBlob:
			clear(buf[x : x+memBlob])
		case memFillSmall:
			for k := range uint64(40) {
				buf[x+k] = byte(y)
			}
		case memCopySmall:
			copy(buf[x:x+48], buf[y:y+48])
		case memRepMovsb:
			for k := range z { // forward, byte by byte, even if overlapping
				buf[x+k] = buf[y+k]
			}
		case memRepStosq:
			for k := range z {
				binary.LittleEndian.PutUint64(buf[x+8*k:], y)
			}
		}
	}
	return out
}

// memOpsGen makes n random operations for a memBufSize buffer.
func memOpsGen(r *rand.Rand, n int) []uint64 {
	var ops []uint64
	// disjoint picks two non-overlapping ranges of z bytes, aligned to al.
	disjoint := func(z, al uint64) (uint64, uint64) {
		for {
			x := uint64(r.IntN(int(memArea-z))) &^ (al - 1)
			y := uint64(r.IntN(int(memArea-z))) &^ (al - 1)
			if x+z <= y || y+z <= x {
				return x, y
			}
		}
	}
	for len(ops) < 4*n {
		op := uint64(r.IntN(numMemOps))
		var x, y, z uint64
		switch op {
		case memCopy, memCmp:
			z = uint64(r.IntN(3000))
			if r.IntN(3) == 0 {
				z = uint64(r.IntN(20))
			}
			x, y = disjoint(z, 1)
			if op == memCmp && r.IntN(2) == 0 {
				ops = append(ops, memCopy, x, y, z) // equal, or nearly so
				if z > 0 && r.IntN(2) == 0 {
					ops = append(ops, memSet, x+uint64(r.IntN(int(z))), uint64(r.IntN(256)), 1)
				}
			}
		case memMove, memRepMovsb:
			z = uint64(r.IntN(2000))
			x = uint64(r.IntN(int(memArea - z)))
			y = min(memArea-z, max(0, x+uint64(r.IntN(200))-100))
		case memSet:
			z = uint64(r.IntN(2000))
			x, y = uint64(r.IntN(int(memArea-z))), uint64(r.IntN(256))
			if r.IntN(4) == 0 {
				y = 0 // string ends
			}
		case memStrlen, memStrcmp:
			x, y = uint64(r.IntN(memArea)), uint64(r.IntN(memArea))
			if op == memStrcmp && r.IntN(2) == 0 {
				z = uint64(r.IntN(40))
				x, y = disjoint(z+1, 1)
				ops = append(ops, memCopy, x, y, z)
				z = 0
			}
		case memCopyBlob:
			x, y = disjoint(memBlob, 8)
		case memClearBlob:
			x = uint64(r.IntN(memArea-memBlob)) &^ 7
		case memFillSmall:
			x, y = uint64(r.IntN(memArea-40)), uint64(r.IntN(256))
		case memCopySmall:
			x, y = disjoint(48, 1)
		case memRepStosq:
			z = uint64(r.IntN(300))
			x, y = uint64(r.IntN(int(memArea-8*z))), r.Uint64()
		}
		ops = append(ops, op, x, y, z)
	}
	return ops
}

func TestCProgMemOps(t *testing.T) {
	forVariants(t, func(t *testing.T, p *cprog) {
		r := cprogRand(6)
		for round := 0; round < 4; round++ {
			buf := randBytes(r, memBufSize)
			for i := range buf { // sparse NULs so that strings end
				if r.IntN(40) == 0 || i >= memArea {
					buf[i] = 0
				}
			}
			ops := memOpsGen(r, 400)
			bufAddr := uint64(cpIn + 8*r.IntN(64) + 1) // not 16-aligned
			copy(p.m.ram[bufAddr:], buf)
			opsAddr := uint64(cpOut + memBufSize)
			p.putWords(opsAddr, ops)
			outAddr := uint64(cpOut + 2*memBufSize + 8*len(ops))
			p.call(cmdMemOps, bufAddr, opsAddr, uint64(len(ops)/4), outAddr)
			want := memOpsRef(buf, ops)
			got := p.words(outAddr, len(want))
			if i := firstDiff(got, want); i >= 0 {
				t.Errorf("round %d: result %d = %d, want %d", round, i, int64(got[i]), int64(want[i]))
			}
			if gotBuf := p.m.ram[bufAddr : bufAddr+memBufSize]; !bytes.Equal(gotBuf, buf) {
				i := 0
				for gotBuf[i] == buf[i] {
					i++
				}
				t.Errorf("round %d: buffer differs first at offset %#x: % x, want % x", round, i, gotBuf[i:min(i+16, memBufSize)], buf[i:min(i+16, memBufSize)])
			}
		}
	})
}

func TestCProgRecursion(t *testing.T) {
	var fib func(n uint64) uint64
	fib = func(n uint64) uint64 {
		if n < 2 {
			return n
		}
		return fib(n-1) + fib(n-2)
	}
	var ack func(m, n uint64) uint64
	ack = func(m, n uint64) uint64 {
		switch {
		case m == 0:
			return n + 1
		case n == 0:
			return ack(m-1, 1)
		}
		return ack(m-1, ack(m, n-1))
	}
	var hofF, hofM func(n uint64) uint64
	hofF = func(n uint64) uint64 {
		if n == 0 {
			return 1
		}
		return n - hofM(hofF(n-1))
	}
	hofM = func(n uint64) uint64 {
		if n == 0 {
			return 0
		}
		return n - hofF(hofM(n-1))
	}
	forVariants(t, func(t *testing.T, p *cprog) {
		for _, args := range [][4]uint64{{0, 0, 0, 0}, {1, 1, 1, 1}, {20, 2, 40, 15}, {24, 3, 5, 22}} {
			p.putWords(cpIn, args[:])
			p.call(cmdRecur, cpIn, cpOut)
			got := p.words(cpOut, 4)
			want := []uint64{fib(args[0]), ack(args[1], args[2]), hofF(args[3]), hofM(args[3])}
			if i := firstDiff(got, want); i >= 0 {
				t.Errorf("args %v: result %d = %d, want %d", args, i, got[i], want[i])
			}
		}
	})
}

// int128Ref is int128.c's computation for one quadruple.
func int128Ref(p [4]uint64) [14]uint64 {
	two128 := new(big.Int).Lsh(big.NewInt(1), 128)
	mask := new(big.Int).Sub(two128, big.NewInt(1))
	u := func(lo, hi uint64) *big.Int {
		v := new(big.Int).SetUint64(hi)
		return v.Lsh(v, 64).Or(v, new(big.Int).SetUint64(lo))
	}
	s := func(v *big.Int) *big.Int { // as signed 128-bit
		if v.Bit(127) == 1 {
			return new(big.Int).Sub(v, two128)
		}
		return v
	}
	words := func(v *big.Int) (uint64, uint64) {
		v = new(big.Int).And(v, mask) // two's complement
		lo := new(big.Int).And(v, new(big.Int).SetUint64(^uint64(0))).Uint64()
		return lo, new(big.Int).Rsh(v, 64).Uint64()
	}
	var o [14]uint64
	x, y := u(p[0], p[1]), u(p[2], p[3])
	o[1], o[0] = bits.Mul64(p[0], p[2])
	o[2], o[3] = words(new(big.Int).Mul(big.NewInt(int64(p[0])), big.NewInt(int64(p[2]))))
	o[4], o[5] = words(new(big.Int).Mul(x, y))
	d := new(big.Int).Rsh(y, uint(p[3]&127))
	if d.Sign() == 0 {
		o[6], o[7] = ^uint64(0), ^uint64(0)
		o[8], o[9] = p[0], p[1]
	} else {
		q, r := new(big.Int).QuoRem(x, d, new(big.Int))
		o[6], o[7] = words(q)
		o[8], o[9] = words(r)
	}
	o[10], o[11] = words(new(big.Int).Xor(new(big.Int).Lsh(x, uint(p[2]&127)), new(big.Int).Rsh(x, uint(p[1]&127))))
	var hi uint64
	o[12], hi = words(new(big.Int).Rsh(s(x), uint(p[0]&127)))
	if s(x).Cmp(s(y)) < 0 {
		hi++
	}
	if x.Cmp(y) < 0 {
		hi += 2
	}
	o[13] = hi
	return o
}

func TestCProgInt128(t *testing.T) {
	forVariants(t, func(t *testing.T, p *cprog) {
		r := cprogRand(7)
		edge := []uint64{0, 1, 2, 1 << 63, 1<<63 - 1, ^uint64(0), 0xffffffff}
		var in [][4]uint64
		for len(in) < 400 {
			var q [4]uint64
			for k := range q {
				switch r.IntN(3) {
				case 0:
					q[k] = edge[r.IntN(len(edge))]
				case 1:
					q[k] = r.Uint64() >> r.IntN(64)
				default:
					q[k] = r.Uint64()
				}
			}
			in = append(in, q)
		}
		flat := make([]uint64, 0, 4*len(in))
		for _, q := range in {
			flat = append(flat, q[:]...)
		}
		p.putWords(cpIn, flat)
		p.call(cmdInt128, cpIn, uint64(len(in)), cpOut)
		got := p.words(cpOut, 14*len(in))
		bad := 0
		for i, q := range in {
			want := int128Ref(q)
			for k, w := range want {
				if g := got[14*i+k]; g != w && bad < 10 {
					t.Errorf("in %#x: result %d = %#x, want %#x", q, k, g, w)
					bad++
				}
			}
		}
	})
}

// bitsRef is bits.c's computation for element i.
func bitsRef(x uint64, i uint64) [16]uint64 {
	w := uint32(x)
	var o [16]uint64
	o[0] = uint64(bits.LeadingZeros64(x))
	o[1] = uint64(bits.TrailingZeros64(x))
	o[2] = uint64(bits.OnesCount64(x))
	o[3] = uint64(bits.LeadingZeros32(w))
	o[4] = uint64(bits.TrailingZeros32(w))
	o[5] = uint64(bits.OnesCount32(w))
	o[6] = bits.ReverseBytes64(x)
	o[7] = uint64(bits.ReverseBytes32(w))
	o[8] = uint64(bits.OnesCount64(x) & 1)
	o[9] = bits.RotateLeft64(x, int(i&63))
	o[10] = uint64(bits.RotateLeft32(w, -int(i&31)))
	if x != 0 {
		o[11] = uint64(bits.TrailingZeros64(x) + 1)
	}
	if int64(x) < 0 {
		o[12] = uint64(bits.LeadingZeros64(^x) - 1)
	} else {
		o[12] = uint64(bits.LeadingZeros64(x) - 1)
	}
	o[13] = x & -x
	o[14] = uint64(int64(x) >> (x & 63))
	o[15] = uint64(bits.RotateLeft16(uint16(x), 3)) ^ uint64(bits.ReverseBytes16(uint16(x>>16)))
	return o
}

func TestCProgBits(t *testing.T) {
	forVariants(t, func(t *testing.T, p *cprog) {
		r := cprogRand(8)
		in := []uint64{0, 1, 2, 3, 1 << 31, 1 << 32, 1 << 63, ^uint64(0), 0xffffffff, 0x8000000080000000, 0x00ff00ff00ff00ff}
		for len(in) < 2000 {
			v := r.Uint64()
			switch r.IntN(3) {
			case 0:
				v >>= r.IntN(64)
			case 1:
				v <<= r.IntN(64)
			}
			in = append(in, v)
		}
		p.putWords(cpIn, in)
		p.call(cmdBits, cpIn, uint64(len(in)), cpOut)
		got := p.words(cpOut, 16*len(in))
		bad := 0
		for i, x := range in {
			want := bitsRef(x, uint64(i))
			for k, w := range want {
				if g := got[16*i+k]; g != w && bad < 10 {
					t.Errorf("x=%#x (i=%d): result %d = %#x, want %#x", x, i, k, g, w)
					bad++
				}
			}
		}
	})
}

// Opcodes of the bytecode machine in vm.c.
const (
	vmHalt = iota
	vmPush
	vmAdd
	vmSub
	vmMul
	vmXor
	vmAnd
	vmOr
	vmShl
	vmShr
	vmSar
	vmDup
	vmSwap
	vmDrop
	vmOver
	vmJmp
	vmJz
	vmJnz
	vmLoad
	vmStore
	vmLt
	vmLtu
	vmEq
	vmNeg
	vmDivu
	vmRems
	vmInc
	vmDec
	vmRot
	vmMin
	vmNot
	vmCallh
	vmNumOps
)

const vmLocals = 16

// vmAsm assembles bytecode with forward and backward labels.
type vmAsm struct {
	code   []byte
	labels map[string]int
	fixups map[int]string // operand offset -> label
}

func newVMAsm() *vmAsm { return &vmAsm{labels: map[string]int{}, fixups: map[int]string{}} }

func (a *vmAsm) op(ops ...byte) *vmAsm { a.code = append(a.code, ops...); return a }
func (a *vmAsm) push(v int32) *vmAsm {
	a.code = append(a.code, vmPush)
	a.code = binary.LittleEndian.AppendUint32(a.code, uint32(v))
	return a
}
func (a *vmAsm) label(l string) *vmAsm { a.labels[l] = len(a.code); return a }
func (a *vmAsm) jump(op byte, l string) *vmAsm {
	a.code = append(a.code, op)
	a.fixups[len(a.code)] = l
	a.code = append(a.code, 0, 0)
	return a
}
func (a *vmAsm) load(i byte) *vmAsm  { return a.op(vmLoad, i) }
func (a *vmAsm) store(i byte) *vmAsm { return a.op(vmStore, i) }

func (a *vmAsm) done(t *testing.T) []byte {
	for off, l := range a.fixups {
		target, ok := a.labels[l]
		if !ok {
			t.Fatalf("undefined label %q", l)
		}
		binary.LittleEndian.PutUint16(a.code[off:], uint16(int16(target-(off+2))))
	}
	return a.code
}

func vmHash(x int64) int64 {
	v := uint64(x)
	v ^= v >> 33
	v *= 0xff51afd7ed558ccd
	v ^= v >> 33
	return int64(v)
}

// vmRef runs code like vm_run and returns the result; steps bounds it.
func vmRef(code []byte, locals *[vmLocals]int64) (int64, bool) {
	var st [256]int64
	sp, pc := 0, 0
	rel := func() int { return int(int16(binary.LittleEndian.Uint16(code[pc:]))) }
	for steps := 0; steps < 50_000_000; steps++ {
		op := code[pc]
		pc++
		switch op {
		case vmHalt:
			if sp == 0 {
				return 0, true
			}
			return st[sp-1], true
		case vmPush:
			st[sp] = int64(int32(binary.LittleEndian.Uint32(code[pc:])))
			pc += 4
			sp++
		case vmAdd, vmSub, vmMul, vmXor, vmAnd, vmOr, vmShl, vmShr, vmSar, vmLt, vmLtu, vmEq, vmDivu, vmRems, vmMin:
			sp--
			a, b := st[sp-1], st[sp]
			var v int64
			switch op {
			case vmAdd:
				v = a + b
			case vmSub:
				v = a - b
			case vmMul:
				v = a * b
			case vmXor:
				v = a ^ b
			case vmAnd:
				v = a & b
			case vmOr:
				v = a | b
			case vmShl:
				v = a << (b & 63)
			case vmShr:
				v = int64(uint64(a) >> (b & 63))
			case vmSar:
				v = a >> (b & 63)
			case vmLt:
				v = b2i(a < b)
			case vmLtu:
				v = b2i(uint64(a) < uint64(b))
			case vmEq:
				v = b2i(a == b)
			case vmDivu:
				if b != 0 {
					v = int64(uint64(a) / uint64(b))
				}
			case vmRems:
				if b != 0 && b != -1 {
					v = a % b
				}
			case vmMin:
				v = min(a, b)
			}
			st[sp-1] = v
		case vmDup:
			st[sp] = st[sp-1]
			sp++
		case vmSwap:
			st[sp-1], st[sp-2] = st[sp-2], st[sp-1]
		case vmDrop:
			sp--
		case vmOver:
			st[sp] = st[sp-2]
			sp++
		case vmJmp:
			pc += rel() + 2
		case vmJz, vmJnz:
			sp--
			if (st[sp] == 0) == (op == vmJz) {
				pc += rel()
			}
			pc += 2
		case vmLoad:
			st[sp] = locals[code[pc]]
			pc++
			sp++
		case vmStore:
			sp--
			locals[code[pc]] = st[sp]
			pc++
		case vmNeg:
			st[sp-1] = -st[sp-1]
		case vmInc:
			st[sp-1]++
		case vmDec:
			st[sp-1]--
		case vmRot:
			st[sp-3], st[sp-2], st[sp-1] = st[sp-2], st[sp-1], st[sp-3]
		case vmNot:
			st[sp-1] = ^st[sp-1]
		case vmCallh:
			st[sp-1] = vmHash(st[sp-1])
		default:
			return -1, true
		}
	}
	return 0, false
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// vmRandomBody emits straight-line code of n random operations that keeps
// the stack between 2 and 200 deep, starting and ending at depth 2.
func vmRandomBody(a *vmAsm, r *rand.Rand, n int) {
	depth := 2
	for i := 0; i < n; i++ {
		switch op := byte(r.IntN(vmNumOps)); {
		case op == vmPush || op == vmDup || op == vmOver || op == vmLoad:
			if depth >= 200 {
				continue
			}
			switch op {
			case vmPush:
				a.push(int32(r.Uint32()) >> r.IntN(32))
			case vmLoad:
				a.load(byte(r.IntN(vmLocals)))
			default:
				a.op(op)
			}
			depth++
		case op >= vmAdd && op <= vmSar || op >= vmLt && op <= vmEq || op == vmDivu || op == vmRems || op == vmMin ||
			op == vmDrop || op == vmStore:
			if depth <= 2 {
				continue
			}
			if op == vmStore {
				a.store(byte(r.IntN(vmLocals - 1))) // local 15 counts the loop
			} else {
				a.op(op)
			}
			depth--
		case op == vmRot:
			if depth >= 3 {
				a.op(op)
			}
		case op == vmSwap || op == vmNeg || op == vmInc || op == vmDec || op == vmNot || op == vmCallh:
			a.op(op)
		}
	}
	for ; depth > 2; depth-- {
		a.op(vmXor)
	}
}

func TestCProgVM(t *testing.T) {
	type prog struct {
		name string
		code []byte
	}
	var progs []prog
	// Sum over i of i*i ^ i<<7, for i from 20000 down to 1.
	a := newVMAsm()
	a.push(0).store(1).push(20000).store(0)
	a.label("loop").load(0).op(vmDup, vmMul).load(0).push(7).op(vmShl, vmXor).load(1).op(vmAdd).store(1)
	a.load(0).op(vmDec, vmDup).store(0).jump(vmJnz, "loop")
	a.load(1).op(vmHalt)
	progs = append(progs, prog{"sum", a.done(t)})
	// Total Collatz steps of 1..500.
	a = newVMAsm()
	a.push(0).store(2).push(500).store(0)
	a.label("outer").load(0).store(1)
	a.label("inner").load(1).push(1).op(vmEq).jump(vmJnz, "next")
	a.load(2).op(vmInc).store(2)
	a.load(1).push(1).op(vmAnd).jump(vmJz, "even")
	a.load(1).push(3).op(vmMul, vmInc).store(1).jump(vmJmp, "inner")
	a.label("even").load(1).push(2).op(vmDivu).store(1).jump(vmJmp, "inner")
	a.label("next").load(0).op(vmDec, vmDup).store(0).jump(vmJnz, "outer")
	a.load(2).op(vmHalt)
	progs = append(progs, prog{"collatz", a.done(t)})
	// Random straight-line bodies inside a counted loop.
	r := cprogRand(9)
	for k := 0; k < 6; k++ {
		a = newVMAsm()
		a.push(int32(r.Uint32())).push(int32(r.Uint32())).push(200).store(15)
		a.label("loop")
		vmRandomBody(a, r, 300)
		a.load(15).op(vmDec, vmDup).store(15).jump(vmJnz, "loop")
		a.op(vmXor, vmHalt)
		progs = append(progs, prog{fmt.Sprintf("random%d", k), a.done(t)})
	}
	forVariants(t, func(t *testing.T, p *cprog) {
		r := cprogRand(10)
		for _, pr := range progs {
			var locals [vmLocals]int64
			for i := range locals {
				locals[i] = int64(r.Uint64())
			}
			copy(p.m.ram[cpIn:], pr.code)
			for i, v := range locals {
				binary.LittleEndian.PutUint64(p.m.ram[cpOut+8*i:], uint64(v))
			}
			want, ok := vmRef(pr.code, &locals)
			if !ok {
				t.Fatalf("%s: reference did not halt", pr.name)
			}
			got := int64(p.call(cmdVM, cpIn, cpOut))
			if got != want {
				t.Errorf("%s: result %d, want %d", pr.name, got, want)
			}
			for i, v := range locals {
				if g := int64(p.q(cpOut + 8*uint64(i))); g != v {
					t.Errorf("%s: local %d = %d, want %d", pr.name, i, g, v)
				}
			}
		}
	})
}

// The benchmark workload (bench.c): its input is benchLen random bytes at
// cpIn, its scratch area at cpOut+4096, its digest at cpOut.
const (
	benchLen     = 160 << 10
	benchScratch = cpOut + 4096
)

// benchSetup writes the benchmark's input into p's memory and returns it.
func benchSetup(p *cprog) []byte {
	buf := randBytes(cprogRand(11), benchLen)
	copy(p.m.ram[cpIn:], buf)
	return buf
}

// benchRun runs the benchmark workload once and returns its result.
func benchRun(p *cprog) uint64 {
	return p.call(cmdBench, cpIn, benchLen, benchScratch, cpOut)
}

// benchCheck compares a run of the workload with the same computation in Go.
func benchCheck(t testing.TB, p *cprog, buf []byte, got uint64) {
	t.Helper()
	digest := sha256.Sum256(buf)
	if d := p.m.ram[cpOut : cpOut+32]; !bytes.Equal(d, digest[:]) {
		t.Errorf("bench digest %x, want %x", d, digest)
	}
	n := len(buf) / 8
	sorted := make([]int64, n)
	for i := range sorted {
		sorted[i] = int64(binary.LittleEndian.Uint64(buf[8*i:]))
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	sb := make([]byte, 8*n)
	for i, v := range sorted {
		binary.LittleEndian.PutUint64(sb[8*i:], uint64(v))
	}
	if !bytes.Equal(p.m.ram[benchScratch:benchScratch+uint64(8*n)], sb) {
		t.Errorf("bench: sorted copy differs")
	}
	var sum uint64
	for k := uint64(0); k < 64; k++ {
		off := (k*4096 + k*24) % uint64(8*n-4096)
		for i := uint64(0); i < 512; i++ {
			sum += binary.LittleEndian.Uint64(sb[off+8*i:]) ^ sum>>7
		}
	}
	if got != sum {
		t.Errorf("bench checksum %#x, want %#x", got, sum)
	}
}

func TestCProgBench(t *testing.T) {
	forVariants(t, func(t *testing.T, p *cprog) {
		buf := benchSetup(p)
		benchCheck(t, p, buf, benchRun(p))
		first := p.last
		benchCheck(t, p, buf, benchRun(p)) // again, with blocks cached
		if p.last != first {
			t.Errorf("second run retired %d instructions, first %d", p.last, first)
		}
		t.Logf("%d instructions per run", first)
	})
}

// TestCProgNoAllocs checks that running a C program, once its code is
// decoded, allocates nothing on the host.
func TestCProgNoAllocs(t *testing.T) {
	p := loadCProg(t, "O2")
	buf := benchSetup(p)
	benchCheck(t, p, buf, benchRun(p)) // warm-up: decode, TLB fill
	if a := testing.AllocsPerRun(3, func() { benchRun(p) }); a != 0 {
		t.Errorf("a run of the benchmark program allocates %v times", a)
	}
	// A different instruction mix: sorting, division, the bytecode machine.
	in := make([]uint64, 4096)
	r := cprogRand(12)
	for i := range in {
		in[i] = r.Uint64() | 1
	}
	work := func() {
		p.putWords(cpIn, in)
		p.call(cmdSortI64, cpIn, uint64(len(in)))
		p.call(cmdDivMod, cpIn, uint64(len(in)/2), cpOut)
		p.call(cmdCRC32, cpIn, 8*uint64(len(in)))
	}
	work()
	if a := testing.AllocsPerRun(3, work); a != 0 {
		t.Errorf("sort/divmod/crc32 runs allocate %v times", a)
	}
}
