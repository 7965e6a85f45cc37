package emul

import (
	"errors"
	"fmt"

	"golang.org/x/arch/x86/x86asm"

	"github.com/pvisor/pvisor/hv/cpu"
)

// IO is the port-I/O bus instructions reach.
type IO interface {
	In(port uint16, size int) uint32
	Out(port uint16, size int, v uint32)
}

// Result says what the caller must do after Emulate.
type Result int

const (
	Done  Result = iota // state updated, RIP advanced
	Halt                // HLT: RIP advanced; block until an event
	Fault               // an exception was injected into the guest
)

// Emulate carries out the privileged instruction inst at the vCPU's RIP.
// It returns the mnemonic (for accounting) and what to do next; an error
// means the instruction is outside what the emulator supports, and the VM
// should stop with it.
func Emulate(v cpu.VCPU, inst []byte, io IO, m Mem) (string, Result, error) {
	if len(inst) >= 3 && inst[0] == 0x0f && inst[1] == 0x01 {
		switch inst[2] {
		case 0xc1, 0xd9:
			return "vmcall", Done, fmt.Errorf("%w: vmcall outside the hypercall path", ErrNotEmulated)
		}
	}
	in, err := x86asm.Decode(inst, 64)
	if err != nil || in.Op == 0 {
		return "", Done, fmt.Errorf("%w: cannot decode % x", ErrNotEmulated, inst)
	}
	name := in.Op.String()
	regs := v.Regs()
	next := func() { regs.RIP += uint64(in.Len); v.SetRegs(regs) }
	gp := func() (string, Result, error) { v.InjectException(cpu.ExcGP, 0, true); return name, Fault, nil }
	switch in.Op {
	case x86asm.HLT:
		next()
		return name, Halt, nil
	case x86asm.CPUID:
		a, b, c, d := v.CPUID(uint32(regs.GPR[cpu.RAX]), uint32(regs.GPR[cpu.RCX]))
		regs.GPR[cpu.RAX], regs.GPR[cpu.RBX], regs.GPR[cpu.RCX], regs.GPR[cpu.RDX] = uint64(a), uint64(b), uint64(c), uint64(d)
		next()
		return name, Done, nil
	case x86asm.RDTSC:
		t := v.TSC()
		regs.GPR[cpu.RAX], regs.GPR[cpu.RDX] = t&0xffffffff, t>>32
		next()
		return name, Done, nil
	case x86asm.WBINVD, x86asm.INVD:
		next()
		return name, Done, nil
	case x86asm.CLTS:
		s := v.SRegs()
		s.CR0 &^= cpu.CR0TS
		if err := v.SetSRegs(s); err != nil {
			return name, Done, err
		}
		next()
		return name, Done, nil
	case x86asm.MOV:
		return emulMovCR(v, in, regs)
	case x86asm.RDMSR:
		val, ok := readMSR(v, uint32(regs.GPR[cpu.RCX]))
		if !ok {
			return gp()
		}
		regs.GPR[cpu.RAX], regs.GPR[cpu.RDX] = val&0xffffffff, val>>32
		next()
		return name, Done, nil
	case x86asm.WRMSR:
		val := regs.GPR[cpu.RDX]<<32 | regs.GPR[cpu.RAX]&0xffffffff
		if !writeMSR(v, uint32(regs.GPR[cpu.RCX]), val) {
			return gp()
		}
		next()
		return name, Done, nil
	case x86asm.IN, x86asm.OUT:
		return emulIO(v, in, regs, io)
	case x86asm.INSB, x86asm.INSW, x86asm.INSD, x86asm.OUTSB, x86asm.OUTSW, x86asm.OUTSD:
		return emulStringIO(v, m, in, regs, io)
	case x86asm.RDPMC:
		// No performance counters are advertised (CPUID leaf 0xA is
		// empty): every counter index is invalid, and at CPL 3 CR4.PCE
		// is clear. Either way #GP(0).
		return gp()
	case x86asm.LMSW:
		// LMSW loads CR0.PE, MP, EM and TS; it can set PE, never clear it.
		s := v.SRegs()
		w, f := operand16(v, m, in, regs, s)
		if f != nil {
			f.inject(v)
			return name, Fault, nil
		}
		cr0, ok := cpu.CR0Write(s.CR0&^0xe | uint64(w)&0xf | s.CR0&cpu.CR0PE)
		if !ok {
			return gp()
		}
		s.CR0 = cr0
		if err := v.SetSRegs(s); err != nil {
			return name, Done, err
		}
		next()
		return name, Done, nil
	}
	if name, res, handled, err := emulMem(v, m, in, regs); handled {
		return name, res, err
	}
	return name, Done, fmt.Errorf("%w: %s (% x)", ErrNotEmulated, in, inst[:in.Len])
}

// ErrNotEmulated is the error Emulate returns for an instruction outside
// what it emulates. The caller raises #UD in the guest, as a CPU without
// the instruction would: no instruction a guest executes stops its VM.
var ErrNotEmulated = errors.New("emul: not emulated")

func gprIndex(r x86asm.Reg) (int, bool) {
	if r >= x86asm.RAX && r <= x86asm.R15 {
		return int(r - x86asm.RAX), true
	}
	return 0, false
}

func emulMovCR(v cpu.VCPU, in x86asm.Inst, regs cpu.Regs) (string, Result, error) {
	dst, _ := in.Args[0].(x86asm.Reg)
	src, _ := in.Args[1].(x86asm.Reg)
	s := v.SRegs()
	crOf := func(r x86asm.Reg) (*uint64, bool) {
		switch r {
		case x86asm.CR0:
			return &s.CR0, true
		case x86asm.CR2:
			return &s.CR2, true
		case x86asm.CR3:
			return &s.CR3, true
		case x86asm.CR4:
			return &s.CR4, true
		case x86asm.CR8:
			return &s.CR8, true
		}
		return nil, false
	}
	// mov reg, crN / drN: the value goes to a general register.
	toGPR := func(val uint64, name string) (string, Result, error) {
		g, ok := gprIndex(dst)
		if !ok {
			return name, Done, fmt.Errorf("emul: %s", in)
		}
		regs.GPR[g] = val
		regs.RIP += uint64(in.Len)
		v.SetRegs(regs)
		return name, Done, nil
	}
	if p, ok := crOf(src); ok {
		return toGPR(*p, "mov-from-cr")
	}
	if n, ok := drIndex(src); ok {
		return toGPR(s.DR[n], "mov-from-dr")
	}
	if n, ok := drIndex(dst); ok { // mov drN, reg
		g, ok := gprIndex(src)
		if !ok {
			return "mov-dr", Done, fmt.Errorf("emul: %s", in)
		}
		s.DR[n] = regs.GPR[g]
		if err := v.SetSRegs(s); err != nil {
			return "mov-to-dr", Done, err
		}
		regs.RIP += uint64(in.Len)
		v.SetRegs(regs)
		return "mov-to-dr", Done, nil
	}
	p, ok := crOf(dst)
	g, ok2 := gprIndex(src)
	if !ok || !ok2 {
		return "mov", Done, fmt.Errorf("emul: %s is not a control-register move", in)
	}
	val := regs.GPR[g]
	switch dst {
	case x86asm.CR0:
		val, ok = cpu.CR0Write(val)
	case x86asm.CR3:
		val, ok = cpu.CR3Write(val)
	case x86asm.CR4:
		val, ok = cpu.CR4Write(val)
	case x86asm.CR8:
		val, ok = cpu.CR8Write(val)
	default: // CR2
		ok = true
	}
	if !ok {
		v.InjectException(cpu.ExcGP, 0, true)
		return "mov-to-" + dst.String(), Fault, nil
	}
	*p = val
	if err := v.SetSRegs(s); err != nil {
		return "mov-to-cr", Done, err
	}
	regs.RIP += uint64(in.Len)
	v.SetRegs(regs)
	return "mov-to-" + dst.String(), Done, nil
}

// drIndex maps DR0-DR7 to 0-7; DR4 and DR5 alias DR6 and DR7 (CR4.DE off).
func drIndex(r x86asm.Reg) (int, bool) {
	if r >= x86asm.DR0 && r <= x86asm.DR7 {
		n := int(r - x86asm.DR0)
		if n == 4 || n == 5 {
			n += 2
		}
		return n, true
	}
	return 0, false
}

func emulIO(v cpu.VCPU, in x86asm.Inst, regs cpu.Regs, io IO) (string, Result, error) {
	size := 1
	var portArg x86asm.Arg
	var reg x86asm.Reg
	if in.Op == x86asm.IN {
		reg, _ = in.Args[0].(x86asm.Reg)
		portArg = in.Args[1]
	} else {
		portArg = in.Args[0]
		reg, _ = in.Args[1].(x86asm.Reg)
	}
	switch reg {
	case x86asm.AL:
	case x86asm.AX:
		size = 2
	case x86asm.EAX:
		size = 4
	default:
		return in.Op.String(), Done, fmt.Errorf("emul: %s", in)
	}
	var port uint16
	switch p := portArg.(type) {
	case x86asm.Imm:
		port = uint16(p)
	case x86asm.Reg:
		port = uint16(regs.GPR[cpu.RDX])
	default:
		return in.Op.String(), Done, fmt.Errorf("emul: %s", in)
	}
	if in.Op == x86asm.IN {
		val := uint64(io.In(port, size))
		switch size {
		case 1:
			regs.GPR[cpu.RAX] = regs.GPR[cpu.RAX]&^0xff | val&0xff
		case 2:
			regs.GPR[cpu.RAX] = regs.GPR[cpu.RAX]&^0xffff | val&0xffff
		default:
			regs.GPR[cpu.RAX] = val & 0xffffffff
		}
	} else {
		io.Out(port, size, uint32(regs.GPR[cpu.RAX]))
	}
	regs.RIP += uint64(in.Len)
	v.SetRegs(regs)
	return in.Op.String(), Done, nil
}

// msrState gathers what the MSR model (cpu.ReadMSR, cpu.WriteMSR) covers
// from the vCPU.
func msrState(v cpu.VCPU) cpu.MSRState {
	s := v.SRegs()
	return cpu.MSRState{EFER: s.EFER, FSBase: s.FS.Base, GSBase: s.GS.Base, TSC: v.TSC(), MSRs: v.MSRs()}
}

func readMSR(v cpu.VCPU, idx uint32) (uint64, bool) {
	st := msrState(v)
	return cpu.ReadMSR(&st, idx)
}

// writeMSR applies a write through the MSR model; false means #GP(0)
// (an unknown MSR or a refused value).
func writeMSR(v cpu.VCPU, idx uint32, val uint64) bool {
	st := msrState(v)
	if cpu.WriteMSR(&st, idx, val) != cpu.MSRWritten {
		return false
	}
	if s := v.SRegs(); s.EFER != st.EFER || s.FS.Base != st.FSBase || s.GS.Base != st.GSBase {
		s.EFER, s.FS.Base, s.GS.Base = st.EFER, st.FSBase, st.GSBase
		if v.SetSRegs(s) != nil {
			return false
		}
	}
	if idx == cpu.MSRTSC {
		v.SetTSC(st.TSC)
	}
	v.SetMSRs(st.MSRs)
	return true
}

// ReadMSR and WriteMSR expose the MSR model to the msr hypercalls, so the
// allowed set is one list.
func ReadMSR(v cpu.VCPU, idx uint32) (uint64, bool)    { return readMSR(v, idx) }
func WriteMSR(v cpu.VCPU, idx uint32, val uint64) bool { return writeMSR(v, idx, val) }
