//go:build linux && amd64

package interp

// Differential test of the engine against the host CPU: generated integer,
// MMX, SSE and x87 instructions (diffforms*_test.go, diffvec_test.go,
// diffx87_test.go) run natively (diffnative_amd64_test.go) and in the
// engine from the same registers, flags, x87/MMX/SSE state (an FXRSTOR64
// image) and memory; GPRs, the path taken, the scratch memory, the RFLAGS
// bits the SDM defines and the FXSAVE64 image after the case (dFXDiff, or
// the form's fxCmp) must agree.
//
//	go test ./hv/interp -run Differential -v [-diff.cases N] [-diff.seed S]
//	PVISOR_DIFF_CASES=5000000 go test ./hv/interp -run Differential

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/arch/x86/x86asm"

	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hv/interp/internal/native"
)

var (
	diffCasesFlag = flag.Int("diff.cases", 0, "differential test cases (default 200000; env PVISOR_DIFF_CASES)")
	diffSeedFlag  = flag.Uint64("diff.seed", 0, "differential test seed (default fixed; env PVISOR_DIFF_SEED)")
)

func diffParam(flagV uint64, env string, def uint64) uint64 {
	if flagV != 0 {
		return flagV
	}
	if s := os.Getenv(env); s != "" {
		if v, err := strconv.ParseUint(s, 0, 64); err == nil {
			return v
		}
	}
	return def
}

// dEngine runs cases in a test machine.
type dEngine struct {
	t testing.TB
	m *testMachine
}

func (e *dEngine) reset() { e.m = newTestMachine(e.t, nil) }

// load writes the batch's test bytes, each between an FXRSTOR64 and an
// FXSAVE64 of the case's image and followed by HLT, and drops the decoded
// blocks of the previous batch.
func (e *dEngine) load(cases []*dcase) {
	ram := e.m.ram
	for _, c := range cases {
		copy(ram[c.addr-8:], dFXInsn(1, c.addr-8, c.fxa))
		copy(ram[c.addr:], c.code[:c.n])
		end := c.addr + uint64(c.n)
		copy(ram[end:], dFXInsn(0, end, c.fxa))
		ram[end+8] = 0xf4
	}
	e.m.mem.Invalidate(dCodeBase, uint64(len(cases))*dSlot)
}

// dFXInsn encodes FXSAVE64 (reg 0) or FXRSTOR64 (reg 1) [rip+disp32] at
// address at, addressing target.
func dFXInsn(reg byte, at, target uint64) []byte {
	d := target - (at + 8)
	return []byte{0x48, 0x0f, 0xae, reg<<3 | 5, byte(d), byte(d >> 8), byte(d >> 16), byte(d >> 24)}
}

// run runs one case and returns the registers, flags, window, FXSAVE
// image and a description of a wrong exit ("" when it stopped at the HLT).
func (e *dEngine) run(c *dcase) (regs [16]uint64, flags uint64, mem, fx []byte, bad string) {
	ram := e.m.ram
	copy(ram[c.win:c.win+dWin], c.mem)
	copy(ram[c.fxa:c.fxa+dFXSlot], c.fx)
	var r cpu.Regs
	r.GPR = c.in
	r.RIP = c.addr - 8
	r.RFLAGS = c.flags | 0x202
	e.m.cpu.SetRegs(r)
	x, err := e.m.cpu.Run(10000)
	out := e.m.cpu.Regs()
	mem = ram[c.win : c.win+dWin]
	fx = ram[c.fxa : c.fxa+dFXSlot]
	switch end := c.addr + uint64(c.n) + 8; {
	case err != nil:
		bad = err.Error()
	case x.Reason != cpu.ExitHLT:
		bad = fmt.Sprintf("exit %v at %#x: %s", x.Reason, x.RIP, x.Message)
	case x.RIP != end:
		bad = fmt.Sprintf("HLT reached at %#x, want %#x", x.RIP, end)
	}
	return out.GPR, out.RFLAGS, mem, fx, bad
}

func (g *dgen) newCase(f *dform, i int, mem, fx []byte) *dcase {
	c := &dcase{f: f, addr: dCodeBase + uint64(i)*dSlot + dPrologueLen, win: dDataBase + uint64(i)*dWin, mem: mem,
		fxa: dFXBase + uint64(i)*dFXSlot, fx: fx}
	g.fxImage(fx)
	for k := 0; k < len(mem); k += 8 {
		v := g.val(8)
		for j := 0; j < 8; j++ {
			mem[k+j] = byte(v >> (8 * j))
		}
	}
	for r := range c.in {
		c.in[r] = g.val(8)
	}
	c.in[4] = c.win + dStackOff
	c.flags = g.flagsVal()
	c.reg, c.rm, c.immAt = -1, -1, -1
	f.gen(g, c)
	return c
}

var dRegNames = [16]string{"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"}

func dDisasm(c *dcase) string {
	var parts []string
	code := c.code[:c.n]
	pc := c.addr
	for len(code) > 0 {
		var buf [15]byte
		copy(buf[:], code)
		in, err := x86asm.Decode(buf[:], 64)
		if err != nil || in.Op == 0 || in.Len == 0 || in.Len > len(code) {
			parts = append(parts, fmt.Sprintf("(bad % x)", code))
			break
		}
		parts = append(parts, x86asm.IntelSyntax(in, pc, nil))
		code = code[in.Len:]
		pc += uint64(in.Len)
	}
	return strings.Join(parts, "; ")
}

func TestDifferential(t *testing.T) {
	n := int(diffParam(uint64(*diffCasesFlag), "PVISOR_DIFF_CASES", 200000))
	seed := diffParam(*diffSeedFlag, "PVISOR_DIFF_SEED", 1)
	reg, err := native.Map(dRegion, dRegionSz)
	if err != nil {
		t.Fatalf("differential: cannot map the native region at its fixed address: %v", err)
	}
	defer reg.Unmap()
	nat := &dNative{reg: reg}
	nat.stubs()
	eng := &dEngine{t: t}
	eng.reset()

	var trace *os.File
	if p := os.Getenv("PVISOR_DIFF_TRACE"); p != "" {
		if trace, err = os.Create(p); err != nil {
			t.Fatal(err)
		}
		defer trace.Close()
	}
	forms := dForms()
	g := &dgen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	seen := map[string]bool{}
	perForm := map[string]int{}
	var report []string
	mismatches, tolerated := 0, 0
	memBuf := make([]byte, dBatch*dWin)
	fxBuf := make([]byte, dBatch*dFXSlot)
	out := make([][17]uint64, dBatch)
	cases := make([]*dcase, 0, dBatch)
	for done := 0; done < n; {
		b := min(dBatch, n-done)
		cases = cases[:0]
		for i := 0; i < b; i++ {
			f := forms[g.r.IntN(len(forms))]
			cases = append(cases, g.newCase(f, i, memBuf[i*dWin:(i+1)*dWin], fxBuf[i*dFXSlot:(i+1)*dFXSlot]))
		}
		// The native run overwrites nothing the generator keeps: inputs
		// live in cases and memBuf.
		if trace != nil {
			// A case that faults natively kills the process: the faulting
			// PC's slot (pc-0x100000)/512 names it in this file.
			trace.Truncate(0)
			trace.Seek(0, 0)
			for i, c := range cases {
				fmt.Fprintf(trace, "slot %d: %s", i, dDescribe(c))
			}
		}
		nat.run(cases, out[:b])
		eng.load(cases)
		for i, c := range cases {
			seen[c.f.key] = true
			nmem := reg.Mem[c.win-dRegion : c.win-dRegion+dWin]
			nfx := reg.Mem[c.fxa-dRegion : c.fxa-dRegion+dFXSlot]
			eregs, eflags, emem, efx, bad := eng.run(c)
			msg := dCompare(c, out[i], nmem, eregs, eflags, emem, bad)
			if c.f.fxCmp != nil {
				d, tol := c.f.fxCmp(c, nfx, efx)
				msg += d
				if tol {
					tolerated++
				}
			} else {
				msg += dFXDiff(nfx, efx)
			}
			if bad != "" {
				eng.reset()
				eng.load(cases)
			}
			if msg == "" {
				continue
			}
			mismatches++
			perForm[c.f.key]++
			if len(report) < 40 && perForm[c.f.key] <= 2 {
				report = append(report, dDescribe(c)+msg)
			}
		}
		done += b
	}
	for _, r := range report {
		t.Log(r)
	}
	if mismatches > 0 {
		keys := make([]string, 0, len(perForm))
		for k := range perForm {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return perForm[keys[i]] > perForm[keys[j]] })
		var sb strings.Builder
		for i, k := range keys {
			if i == 40 {
				fmt.Fprintf(&sb, "  ... %d more forms\n", len(keys)-40)
				break
			}
			fmt.Fprintf(&sb, "  %6d  %s\n", perForm[k], k)
		}
		t.Logf("mismatches by form:\n%s", sb.String())
	}
	fmt.Printf("differential: %d cases, %d forms, %d mismatches\n", n, len(seen), mismatches)
	t.Logf("%d transcendental results within the host's rounding tolerance (transTol)", tolerated)
	if len(seen) < 1500 && n >= 200000 {
		t.Errorf("only %d distinct forms generated", len(seen))
	}
	if mismatches > 0 {
		t.Fatalf("%d mismatches (seed %d)", mismatches, seed)
	}
}

func dDescribe(c *dcase) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s: % x  [%s]\n  in: flags=%#x", c.f.key, c.code[:c.n], dDisasm(c), c.flags)
	for r := 0; r < 16; r++ {
		if r%4 == 0 {
			sb.WriteString("\n     ")
		}
		fmt.Fprintf(&sb, " %s=%#x", dRegNames[r], c.in[r])
	}
	sb.WriteString("\n")
	if c.f.vec {
		le := binary.LittleEndian
		top := int(le.Uint16(c.fx[2:]) >> 11 & 7)
		fmt.Fprintf(&sb, "  fcw=%#x fsw=%#x ftw=%#x mxcsr=%#x\n  mm/st (physical 0-7):", le.Uint16(c.fx), le.Uint16(c.fx[2:]), c.fx[4], le.Uint32(c.fx[24:]))
		for r := 0; r < 8; r++ {
			o := 32 + 16*((r-top)&7)
			fmt.Fprintf(&sb, " %04x:%016x", le.Uint16(c.fx[o+8:]), le.Uint64(c.fx[o:]))
		}
		sb.WriteString("\n  xmm:")
		for r := 0; r < 16; r++ {
			fmt.Fprintf(&sb, " %x", c.fx[160+16*r:176+16*r])
		}
		sb.WriteString("\n")
	}
	return sb.String()
}

// dFXDiff compares FXSAVE64 images: FCW, FSW, abridged FTW, MXCSR, the ten
// bytes of each x87/MMX register and the XMM registers. FOP, FIP and FDP
// (which name code and data addresses, and which AMD processors save only
// with an exception pending), MXCSR_MASK and the reserved bytes are left
// out.
func dFXDiff(n, e []byte) string {
	var sb strings.Builder
	le := binary.LittleEndian
	if !bytes.Equal(n[:6], e[:6]) || !bytes.Equal(n[24:28], e[24:28]) {
		fmt.Fprintf(&sb, "  fxsave: native fcw %#x fsw %#x ftw %#x mxcsr %#x\n          engine fcw %#x fsw %#x ftw %#x mxcsr %#x\n",
			le.Uint16(n), le.Uint16(n[2:]), n[4], le.Uint32(n[24:]), le.Uint16(e), le.Uint16(e[2:]), e[4], le.Uint32(e[24:]))
	}
	for i := 0; i < 8; i++ {
		o := 32 + 16*i
		if !bytes.Equal(n[o:o+10], e[o:o+10]) {
			fmt.Fprintf(&sb, "  ST(%d): native %04x:%016x engine %04x:%016x\n", i, le.Uint16(n[o+8:]), le.Uint64(n[o:]), le.Uint16(e[o+8:]), le.Uint64(e[o:]))
		}
	}
	for i := 0; i < 16; i++ {
		o := 160 + 16*i
		if !bytes.Equal(n[o:o+16], e[o:o+16]) {
			fmt.Fprintf(&sb, "  xmm%d: native %016x:%016x engine %016x:%016x\n", i, le.Uint64(n[o+8:]), le.Uint64(n[o:]), le.Uint64(e[o+8:]), le.Uint64(e[o:]))
		}
	}
	return sb.String()
}

// dCompare returns "" when the native and engine results agree.
func dCompare(c *dcase, nat [17]uint64, nmem []byte, eregs [16]uint64, eflags uint64, emem []byte, bad string) string {
	if bad != "" {
		return "  engine: " + bad + "\n"
	}
	var sb strings.Builder
	zext := hostCPU().repA32ZeroCountZext()
	for r := 0; r < 16; r++ {
		switch {
		case c.undefR&(1<<r) != 0:
		case zext && c.zextR&(1<<r) != 0:
			// A 32-bit-address REP string instruction with ECX = 0 on an
			// Intel host: the host may clear bits 63:32 of the count and
			// pointer registers without an iteration; the engine keeps
			// them (hostVariant.repA32ZeroCountZext, docs/engine.md).
			if in := c.in[r]; eregs[r] != in || nat[r] != in && nat[r] != uint64(uint32(in)) {
				fmt.Fprintf(&sb, "  %s: input %#x native %#x engine %#x (a32 REP, ECX = 0: engine keeps, host keeps or zero-extends)\n", dRegNames[r], in, nat[r], eregs[r])
			}
		case nat[r] != eregs[r]:
			fmt.Fprintf(&sb, "  %s: native %#x engine %#x\n", dRegNames[r], nat[r], eregs[r])
		}
	}
	mask := uint64(dCmpMask) &^ (c.f.undef | c.undef)
	if nat[16]&mask != eflags&mask {
		fmt.Fprintf(&sb, "  flags (mask %#x): native %#x engine %#x (diff %s)\n", mask, nat[16]&mask, eflags&mask, dFlagNames((nat[16]^eflags)&mask))
	}
	if c.skipN > 0 {
		// Compare copies with the skipped bytes equal.
		at := c.skipAt - c.win
		nmem, emem = bytes.Clone(nmem), bytes.Clone(emem)
		copy(emem[at:at+uint64(c.skipN)], nmem[at:])
	}
	if !c.undefM && !bytes.Equal(nmem, emem) {
		for i := range nmem {
			if nmem[i] != emem[i] {
				lo := i &^ 7
				fmt.Fprintf(&sb, "  memory at %#x: native % x engine % x\n", c.win+uint64(lo), nmem[lo:lo+8], emem[lo:lo+8])
				break
			}
		}
	}
	return sb.String()
}

func dFlagNames(v uint64) string {
	var s []string
	for _, f := range []struct {
		b uint64
		n string
	}{{dCF, "CF"}, {dPF, "PF"}, {dAF, "AF"}, {dZF, "ZF"}, {dSF, "SF"}, {dDF, "DF"}, {dOF, "OF"}} {
		if v&f.b != 0 {
			s = append(s, f.n)
		}
	}
	return strings.Join(s, ",")
}

// TestDifferentialNative checks the native trampoline on its own against
// results computed here: registers and flags make the round trip.
func TestDifferentialNative(t *testing.T) {
	reg, err := native.Map(dRegion, dRegionSz)
	if err != nil {
		t.Fatalf("differential: cannot map the native region at its fixed address: %v", err)
	}
	defer reg.Unmap()
	nat := &dNative{reg: reg}
	nat.stubs()
	mem := make([]byte, 2*dWin)
	fx := make([]byte, 2*dFXSlot)
	g := &dgen{r: rand.New(rand.NewPCG(1, 2))}
	mk := func(i int, code ...byte) *dcase {
		c := &dcase{addr: dCodeBase + uint64(i)*dSlot + dPrologueLen, win: dDataBase + uint64(i)*dWin, mem: mem[i*dWin : (i+1)*dWin],
			fxa: dFXBase + uint64(i)*dFXSlot, fx: fx[i*dFXSlot : (i+1)*dFXSlot]}
		g.fxImage(c.fx)
		for r := range c.in {
			c.in[r] = uint64(r) * 0x1111111111111111
		}
		c.in[4] = c.win + dStackOff
		c.n = copy(c.code[:], code)
		return c
	}
	add := mk(0, 0x48, 0x01, 0xd8) // add rax, rbx
	add.in[0], add.in[3] = ^uint64(0), 2
	push := mk(1, 0x41, 0x57, 0xf9) // push r15; stc
	out := make([][17]uint64, 2)
	nat.run([]*dcase{add, push}, out)
	if out[0][0] != 1 || out[0][16]&(dCF|dZF|dSF|dOF) != dCF {
		t.Errorf("add: rax %#x flags %#x, want 1 and CF only", out[0][0], out[0][16])
	}
	for r := 1; r < 16; r++ {
		if out[0][r] != add.in[r] {
			t.Errorf("add: %s changed: %#x -> %#x", dRegNames[r], add.in[r], out[0][r])
		}
	}
	// The x87/SSE state makes the round trip through FXRSTOR64 and FXSAVE64.
	for i, c := range []*dcase{add, push} {
		if d := dFXDiff(c.fx, reg.Mem[c.fxa-dRegion:c.fxa-dRegion+dFXSlot]); d != "" {
			t.Errorf("case %d: FXSAVE image differs from the FXRSTOR image (native = loaded, engine = stored):\n%s", i, d)
		}
	}
	sp := push.win + dStackOff - 8
	got := binary.LittleEndian.Uint64(reg.Mem[sp-dRegion:])
	if out[1][4] != sp || got != push.in[15] || out[1][16]&dCF == 0 {
		t.Errorf("push/stc: rsp %#x (want %#x), [rsp] %#x (want %#x), flags %#x", out[1][4], sp, got, push.in[15], out[1][16])
	}
}
