package emul

import (
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
			return "vmcall", Done, fmt.Errorf("emul: vmcall reached the emulator")
		}
	}
	in, err := x86asm.Decode(inst, 64)
	if err != nil || in.Op == 0 {
		return "", Done, fmt.Errorf("emul: cannot decode % x", inst)
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
		a, b, c, d := cpu.CPUID(uint32(regs.GPR[cpu.RAX]), uint32(regs.GPR[cpu.RCX]), 0)
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
	}
	if name, res, handled, err := emulMem(v, m, in, regs); handled {
		return name, res, err
	}
	return name, Done, fmt.Errorf("emul: %s (% x) is not emulated", in, inst[:in.Len])
}

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
		if val&(cpu.CR0PG|cpu.CR0PE) != cpu.CR0PG|cpu.CR0PE || val>>32 != 0 {
			v.InjectException(cpu.ExcGP, 0, true)
			return "mov-to-cr0", Fault, nil
		}
	case x86asm.CR4:
		if val&cpu.CR4PAE == 0 {
			v.InjectException(cpu.ExcGP, 0, true)
			return "mov-to-cr4", Fault, nil
		}
	case x86asm.CR3:
		val &^= 1 << 63
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

// readMSR and writeMSR cover the MSRs every engine keeps per vCPU.
func readMSR(v cpu.VCPU, idx uint32) (uint64, bool) {
	m := v.MSRs()
	s := v.SRegs()
	switch idx {
	case cpu.MSREFER:
		return s.EFER, true
	case cpu.MSRSTAR:
		return m.STAR, true
	case cpu.MSRLSTAR:
		return m.LSTAR, true
	case cpu.MSRCSTAR:
		return m.CSTAR, true
	case cpu.MSRSFMASK:
		return m.SFMASK, true
	case cpu.MSRFSBase:
		return s.FS.Base, true
	case cpu.MSRGSBase:
		return s.GS.Base, true
	case cpu.MSRKernelGSBase:
		return m.KernelGSBase, true
	case cpu.MSRPAT:
		return m.PAT, true
	case cpu.MSRTSCAux:
		return m.TSCAux, true
	case cpu.MSRTSC:
		return v.TSC(), true
	case cpu.MSRSysenterCS:
		return m.SysenterCS, true
	case cpu.MSRSysenterESP:
		return m.SysenterESP, true
	case cpu.MSRSysenterEIP:
		return m.SysenterEIP, true
	}
	return 0, false
}

func canonical(a uint64) bool { return uint64(int64(a<<16)>>16) == a }

func writeMSR(v cpu.VCPU, idx uint32, val uint64) bool {
	m := v.MSRs()
	s := v.SRegs()
	switch idx {
	case cpu.MSREFER:
		// Only SCE and NXE may change; long mode stays on.
		if val&^(cpu.EFERSCE|cpu.EFERLME|cpu.EFERLMA|cpu.EFERNXE) != 0 || val&cpu.EFERLME == 0 {
			return false
		}
		s.EFER = val | cpu.EFERLMA
		return v.SetSRegs(s) == nil
	case cpu.MSRFSBase, cpu.MSRGSBase:
		if !canonical(val) {
			return false
		}
		if idx == cpu.MSRFSBase {
			s.FS.Base = val
		} else {
			s.GS.Base = val
		}
		return v.SetSRegs(s) == nil
	case cpu.MSRSTAR:
		m.STAR = val
	case cpu.MSRLSTAR, cpu.MSRCSTAR, cpu.MSRKernelGSBase, cpu.MSRSysenterESP, cpu.MSRSysenterEIP:
		if !canonical(val) {
			return false
		}
		switch idx {
		case cpu.MSRLSTAR:
			m.LSTAR = val
		case cpu.MSRCSTAR:
			m.CSTAR = val
		case cpu.MSRKernelGSBase:
			m.KernelGSBase = val
		case cpu.MSRSysenterESP:
			m.SysenterESP = val
		default:
			m.SysenterEIP = val
		}
	case cpu.MSRSFMASK:
		m.SFMASK = val & 0xffffffff
	case cpu.MSRPAT:
		for i := 0; i < 8; i++ {
			switch (val >> (8 * i)) & 0xff {
			case 0, 1, 4, 5, 6, 7:
			default:
				return false
			}
		}
		m.PAT = val
	case cpu.MSRTSCAux:
		m.TSCAux = val & 0xffffffff
	case cpu.MSRSysenterCS:
		m.SysenterCS = val
	default:
		return false
	}
	v.SetMSRs(m)
	return true
}

// ReadMSR and WriteMSR expose the MSR model to the msr hypercalls, so the
// allowed set is one list.
func ReadMSR(v cpu.VCPU, idx uint32) (uint64, bool)    { return readMSR(v, idx) }
func WriteMSR(v cpu.VCPU, idx uint32, val uint64) bool { return writeMSR(v, idx, val) }
