package emul

import (
	"encoding/binary"

	"golang.org/x/arch/x86/x86asm"

	"github.com/pvisor/pvisor/hv/cpu"
)

// Mem is guest-physical memory as the hypervisor reaches it (bounded to
// the VM's RAM).
type Mem interface {
	// Slice returns [gpa, gpa+n) or false if it is not all RAM.
	Slice(gpa, n uint64) ([]byte, bool)
	// Invalidate tells the engine that [gpa, gpa+n) was written.
	Invalidate(gpa, n uint64)
}

// fault is a guest exception found while reaching memory.
type fault struct {
	vector uint8
	err    uint32
	cr2    uint64
}

func (f *fault) inject(v cpu.VCPU) {
	if f.vector == cpu.ExcPF {
		s := v.SRegs()
		s.CR2 = f.cr2
		_ = v.SetSRegs(s)
	}
	v.InjectException(f.vector, f.err, cpu.HasErrorCode(f.vector))
}

// virt copies between buf and guest-virtual va, page by page, as a
// supervisor access; nothing is written unless every page translates.
func virt(v cpu.VCPU, m Mem, va uint64, buf []byte, write bool) *fault {
	return virtAs(v, m, va, buf, write, false)
}

// virtAs is virt with the access's privilege: user for a data access made
// at CPL 3.
func virtAs(v cpu.VCPU, m Mem, va uint64, buf []byte, write, user bool) *fault {
	type span struct {
		gpa uint64
		n   int
	}
	var spans [2]span
	ns := 0
	for off := 0; off < len(buf); {
		a := va + uint64(off)
		n := min(len(buf)-off, int(4096-a&4095))
		gpa, vec, code, ok := v.Translate(a, write, user)
		if !ok {
			f := &fault{vector: vec, err: code, cr2: a}
			if vec == cpu.ExcPF {
				f.err = code
			}
			return f
		}
		if ns == len(spans) {
			return &fault{vector: cpu.ExcGP, err: 0}
		}
		spans[ns] = span{gpa, n}
		ns++
		off += n
	}
	off := 0
	for _, s := range spans[:ns] {
		b, ok := m.Slice(s.gpa, uint64(s.n))
		if !ok {
			// Outside RAM (MMIO) for a descriptor-table access: #GP.
			return &fault{vector: cpu.ExcGP, err: 0}
		}
		if write {
			copy(b, buf[off:off+s.n])
			m.Invalidate(s.gpa, uint64(s.n))
		} else {
			copy(buf[off:off+s.n], b)
		}
		off += s.n
	}
	return nil
}

// effAddr computes a memory operand's linear address.
func effAddr(in x86asm.Inst, m x86asm.Mem, regs cpu.Regs, sregs cpu.SRegs) uint64 {
	reg := func(r x86asm.Reg) uint64 {
		switch {
		case r == 0:
			return 0
		case r == x86asm.RIP:
			return regs.RIP + uint64(in.Len)
		case r >= x86asm.RAX && r <= x86asm.R15:
			return regs.GPR[r-x86asm.RAX]
		case r >= x86asm.EAX && r <= x86asm.R15L:
			return regs.GPR[r-x86asm.EAX] & 0xffffffff
		}
		return 0
	}
	// x86asm leaves a 32-bit displacement zero-extended in Mem.Disp
	// (0xffdb52ac for -0x24ad54); displacements are signed 32-bit in
	// 64-bit mode, so sign-extend.
	disp := uint64(int64(int32(uint32(m.Disp))))
	a := reg(m.Base) + reg(m.Index)*uint64(m.Scale) + disp
	if in.AddrSize == 32 {
		a &= 0xffffffff
	}
	switch m.Segment {
	case x86asm.FS:
		a += sregs.FS.Base
	case x86asm.GS:
		a += sregs.GS.Base
	}
	return a
}

// emulMem handles the privileged instructions with a memory or selector
// operand. handled is false for instructions it does not know.
func emulMem(v cpu.VCPU, m Mem, in x86asm.Inst, regs cpu.Regs) (name string, res Result, handled bool, err error) {
	s := v.SRegs()
	name = in.Op.String()
	next := func() {
		regs.RIP += uint64(in.Len)
		v.SetRegs(regs)
	}
	memArg := func() (uint64, bool) {
		mm, ok := in.Args[0].(x86asm.Mem)
		if !ok {
			return 0, false
		}
		return effAddr(in, mm, regs, s), true
	}
	fail := func(f *fault) (string, Result, bool, error) {
		f.inject(v)
		return name, Fault, true, nil
	}
	switch in.Op {
	case x86asm.SGDT, x86asm.SIDT:
		a, ok := memArg()
		if !ok {
			return name, Done, true, errUD(v)
		}
		t := s.GDT
		if in.Op == x86asm.SIDT {
			t = s.IDT
		}
		var b [10]byte
		binary.LittleEndian.PutUint16(b[:], t.Limit)
		binary.LittleEndian.PutUint64(b[2:], t.Base)
		if f := virt(v, m, a, b[:], true); f != nil {
			return fail(f)
		}
		next()
		return name, Done, true, nil
	case x86asm.LGDT, x86asm.LIDT:
		a, ok := memArg()
		if !ok {
			return name, Done, true, errUD(v)
		}
		var b [10]byte
		if f := virt(v, m, a, b[:], false); f != nil {
			return fail(f)
		}
		t := cpu.DTable{Limit: binary.LittleEndian.Uint16(b[:]), Base: binary.LittleEndian.Uint64(b[2:])}
		if !cpu.Canonical(t.Base) {
			return fail(&fault{vector: cpu.ExcGP})
		}
		if in.Op == x86asm.LGDT {
			s.GDT = t
		} else {
			s.IDT = t
		}
		if err := v.SetSRegs(s); err != nil {
			return name, Done, true, err
		}
		next()
		return name, Done, true, nil
	case x86asm.INVLPG:
		a, ok := memArg()
		if !ok {
			return name, Done, true, errUD(v)
		}
		v.FlushTLBPage(a)
		next()
		return name, Done, true, nil
	case x86asm.SLDT, x86asm.STR, x86asm.SMSW:
		var val uint64
		switch in.Op {
		case x86asm.SLDT:
			val = uint64(s.LDT.Selector)
		case x86asm.STR:
			val = uint64(s.TR.Selector)
		default:
			val = s.CR0 & 0xffff
			if _, ok := in.Args[0].(x86asm.Reg); ok && in.DataSize > 16 {
				val = s.CR0 // SMSW to a 32/64-bit register stores CR0 whole
			}
		}
		if r, ok := in.Args[0].(x86asm.Reg); ok {
			g, ok := gprAny(r)
			if !ok {
				return name, Done, true, errUD(v)
			}
			regs.GPR[g] = val
			next()
			return name, Done, true, nil
		}
		a, _ := memArg()
		var b [2]byte
		binary.LittleEndian.PutUint16(b[:], uint16(val))
		if f := virt(v, m, a, b[:], true); f != nil {
			return fail(f)
		}
		next()
		return name, Done, true, nil
	case x86asm.LMSW:
		val, f := operand16(v, m, in, regs, s)
		if f != nil {
			return fail(f)
		}
		s.CR0 = s.CR0&^0xe | uint64(val)&0xf | s.CR0&cpu.CR0PE
		if err := v.SetSRegs(s); err != nil {
			return name, Done, true, err
		}
		next()
		return name, Done, true, nil
	case x86asm.LTR, x86asm.LLDT:
		sel, f := operand16(v, m, in, regs, s)
		if f != nil {
			return fail(f)
		}
		if f := loadSystemSegment(v, m, &s, sel, in.Op == x86asm.LTR); f != nil {
			return fail(f)
		}
		if err := v.SetSRegs(s); err != nil {
			return name, Done, true, err
		}
		next()
		return name, Done, true, nil
	}
	return name, Done, false, nil
}

func errUD(v cpu.VCPU) error {
	v.InjectException(cpu.ExcUD, 0, false)
	return nil
}

func gprAny(r x86asm.Reg) (int, bool) {
	switch {
	case r >= x86asm.RAX && r <= x86asm.R15:
		return int(r - x86asm.RAX), true
	case r >= x86asm.EAX && r <= x86asm.R15L:
		return int(r - x86asm.EAX), true
	case r >= x86asm.AX && r <= x86asm.R15W:
		return int(r - x86asm.AX), true
	}
	return 0, false
}

// operand16 reads a 16-bit register or memory operand (LTR, LLDT, LMSW).
func operand16(v cpu.VCPU, m Mem, in x86asm.Inst, regs cpu.Regs, s cpu.SRegs) (uint16, *fault) {
	switch a := in.Args[0].(type) {
	case x86asm.Reg:
		g, ok := gprAny(a)
		if !ok {
			return 0, &fault{vector: cpu.ExcUD}
		}
		return uint16(regs.GPR[g]), nil
	case x86asm.Mem:
		var b [2]byte
		if f := virt(v, m, effAddr(in, a, regs, s), b[:], false); f != nil {
			return 0, f
		}
		return binary.LittleEndian.Uint16(b[:]), nil
	}
	return 0, &fault{vector: cpu.ExcUD}
}

// loadSystemSegment loads TR (tss) or LDTR from a 16-byte GDT descriptor,
// marking a TSS busy.
func loadSystemSegment(v cpu.VCPU, m Mem, s *cpu.SRegs, sel uint16, tss bool) *fault {
	gp := &fault{vector: cpu.ExcGP, err: uint32(sel &^ 3)}
	if sel&^3 == 0 {
		if tss {
			return &fault{vector: cpu.ExcGP}
		}
		s.LDT = cpu.Segment{}
		return nil
	}
	if sel&4 != 0 || uint64(sel&^7)+15 > uint64(s.GDT.Limit) {
		return gp
	}
	addr := s.GDT.Base + uint64(sel&^7)
	var d [16]byte
	if f := virt(v, m, addr, d[:], false); f != nil {
		return f
	}
	lo, hi := binary.LittleEndian.Uint64(d[:]), binary.LittleEndian.Uint64(d[8:])
	typ := (lo >> 40) & 0x1f // S bit and type
	want := uint64(2)        // LDT
	if tss {
		want = 9 // available 64-bit TSS
	}
	if typ != want {
		return gp
	}
	if lo>>47&1 == 0 {
		return &fault{vector: cpu.ExcNP, err: uint32(sel &^ 3)}
	}
	seg := cpu.Segment{
		Selector: sel,
		Base:     (lo>>16)&0xffffff | (lo>>56&0xff)<<24 | (hi&0xffffffff)<<32,
		Limit:    uint32(lo&0xffff | (lo>>48&0xf)<<16),
		Attr:     uint16(lo>>40&0xff) | uint16(lo>>52&0xf)<<12,
	}
	if !cpu.Canonical(seg.Base) {
		return gp // the base of a 64-bit system segment must be canonical
	}
	if tss {
		seg.Attr |= 2 // busy
		binary.LittleEndian.PutUint64(d[:], lo|1<<41)
		if f := virt(v, m, addr, d[:8], true); f != nil {
			return f
		}
		s.TR = seg
	} else {
		s.LDT = seg
	}
	return nil
}
