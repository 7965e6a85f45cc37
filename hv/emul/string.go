package emul

import (
	"encoding/binary"

	"golang.org/x/arch/x86/x86asm"

	"github.com/pvisor/pvisor/hv/cpu"
)

// emulStringIO carries out one element of INS or OUTS. With a REP prefix
// RIP stays on the instruction until the count runs out, so each element
// is one exit, as an interrupted REP string instruction resumes on
// hardware; no emulation runs unbounded. The engine has checked IOPL.
// A data access made at CPL 3 is a user access.
func emulStringIO(v cpu.VCPU, m Mem, in x86asm.Inst, regs cpu.Regs, io IO) (string, Result, error) {
	name := in.Op.String()
	size := 1
	switch in.Op {
	case x86asm.INSW, x86asm.OUTSW:
		size = 2
	case x86asm.INSD, x86asm.OUTSD:
		size = 4
	}
	s := v.SRegs()
	user := s.CS.Selector&3 == 3
	addrMask := ^uint64(0)
	if in.AddrSize == 32 {
		addrMask = 0xffffffff
	}
	rep, seg := false, x86asm.Reg(0)
	for _, p := range in.Prefix {
		switch p &^ (x86asm.PrefixImplicit | x86asm.PrefixIgnored | x86asm.PrefixInvalid) {
		case x86asm.PrefixREP, x86asm.PrefixREPN:
			rep = true
		case x86asm.PrefixFS:
			seg = x86asm.FS
		case x86asm.PrefixGS:
			seg = x86asm.GS
		}
	}
	done := func() (string, Result, error) {
		if !rep || regs.GPR[cpu.RCX]&addrMask == 0 {
			regs.RIP += uint64(in.Len)
		}
		v.SetRegs(regs)
		return name, Done, nil
	}
	if rep && regs.GPR[cpu.RCX]&addrMask == 0 {
		return done()
	}
	step := uint64(size)
	if regs.RFLAGS&cpu.FlagDF != 0 {
		step = -step
	}
	advance := func(r int) {
		regs.GPR[r] = (regs.GPR[r] + step) & addrMask
		if rep {
			regs.GPR[cpu.RCX] = (regs.GPR[cpu.RCX] - 1) & addrMask
		}
	}
	port := uint16(regs.GPR[cpu.RDX])
	var buf [4]byte
	if in.Op == x86asm.INSB || in.Op == x86asm.INSW || in.Op == x86asm.INSD {
		// ES:RDI, no override. The destination is checked before the
		// port is read: a faulting INS reads nothing.
		dst := regs.GPR[cpu.RDI] & addrMask
		if f := probe(v, m, dst, size, user); f != nil {
			f.inject(v)
			return name, Fault, nil
		}
		binary.LittleEndian.PutUint32(buf[:], io.In(port, size))
		if f := virtAs(v, m, dst, buf[:size], true, user); f != nil {
			f.inject(v)
			return name, Fault, nil
		}
		advance(cpu.RDI)
		return done()
	}
	src := regs.GPR[cpu.RSI] & addrMask
	switch seg {
	case x86asm.FS:
		src += s.FS.Base
	case x86asm.GS:
		src += s.GS.Base
	}
	if f := virtAs(v, m, src, buf[:size], false, user); f != nil {
		f.inject(v)
		return name, Fault, nil
	}
	io.Out(port, size, binary.LittleEndian.Uint32(buf[:]))
	advance(cpu.RSI)
	return done()
}

// probe checks that [va, va+n) is writable at the given privilege and RAM,
// without writing it.
func probe(v cpu.VCPU, m Mem, va uint64, n int, user bool) *fault {
	for _, a := range []uint64{va, va + uint64(n) - 1} {
		gpa, vec, code, ok := v.Translate(a, true, user)
		if !ok {
			return &fault{vector: vec, err: code, cr2: a}
		}
		if _, ok := m.Slice(gpa, 1); !ok {
			return &fault{vector: cpu.ExcGP}
		}
	}
	return nil
}
