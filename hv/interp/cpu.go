package interp

import (
	"bufio"
	"errors"
	"sync/atomic"

	"github.com/pvisor/pvisor/hv/cpu"
)

const (
	pageShift = 12
	pageSize  = 1 << pageShift
	pageMask  = pageSize - 1

	tlbBits = 10
	tlbSize = 1 << tlbBits
	tlbMask = tlbSize - 1

	blkBits = 16
	blkSize = 1 << blkBits

	instCap     = 1 << 18 // decoded instructions held before a full flush
	maxBlockLen = 64
)

// Config describes one vCPU.
type Config struct {
	Mem  *Memory
	Mode cpu.Mode
	ID   uint32
	// TSCScale: by default the TSC advances with retired instructions, one
	// tick per instruction times TSCScale (default 1): deterministic.
	TSCScale uint64
	// TSCClock, if set, makes the TSC follow it at exactly 1 GHz (one
	// tick per nanosecond of its Now), for guests that measure time with
	// it (pvclock). hv passes the VM's clock, so the TSC stops while the
	// VM is paused.
	TSCClock cpu.Clock
	// CPUID is the VM's part of the CPUID table (cpu.CPUIDConfig).
	CPUID cpu.CPUIDConfig
	// JIT turns the binary translator on (jit.go), where the host can
	// run it (hv/jit.Available); elsewhere it is ignored.
	JIT bool
}

// segment indexes of CPU.seg.
const (
	segES = iota
	segCS
	segSS
	segDS
	segFS
	segGS
	segTR
	segLDT
)

// CPU is one vCPU of the interpreter. It implements cpu.VCPU.
type CPU struct {
	// Hot state first.
	r       [256]uint64 // r[16] is always zero; 256 entries so uint8 indexes need no bounds check
	rip     uint64
	flags   uint64 // RFLAGS; arithmetic bits valid only when lf.op == lfNone
	lf      lazyFlags
	segBase [3]uint64 // 0: none, 1: FS base, 2: GS base

	ram    []byte
	tlb    [tlbSize]tlbEntry
	tlbKey uint64 // generation XORed into every tag (tlb.go)
	gtlb   [gtlbSize]tlbEntry
	rdMask uint8
	wrMask uint8
	xMask  uint8

	pc        int // index of the next Inst in insts
	blockEnd  int
	blkStart  int
	instStart uint64 // RIP of the executing instruction
	insts     []Inst
	nInsts    int
	blocks    []blockRef
	curPage   uint64 // physical page of the running block
	blkSlot   int32  // c.blocks index of the running block, -1 if not cached
	jit       *jitState
	jitRAMTop uint64 // the highest page base of RAM, for translated code
	jitChain  jitChain
	jitLinks  uint64 // chained block entries, counted by translated code

	budget  uint64
	retired uint64
	events  uint32        // non-zero: look at slow conditions before the next block
	kick    atomic.Uint32 // kickExit, kickSMP (smp.go)
	lk      lockTx        // the locked instruction's transaction (lock.go)

	mem   *Memory
	mode  cpu.Mode
	id    uint32
	cpuid cpu.CPUIDConfig

	// Shadow-MMU model (shadow.go): on in trap mode. After an
	// ExitShadowFault the instruction at shadowRIP with retire count
	// shadowSeq may write page-table pages when it runs again.
	shadowPT  bool
	shadowOK  bool
	shadowRIP uint64
	shadowSeq uint64

	cpl      uint8
	sreg     [8]cpu.Segment
	gdt      cpu.DTable
	idt      cpu.DTable
	cr0      uint64
	cr2      uint64
	cr3      uint64
	cr4      uint64
	cr8      uint64
	efer     uint64
	msr      cpu.MSRs
	tsc      uint64 // TSC value at retired == 0
	tscScale uint64
	tscClock cpu.Clock // nil: the TSC counts retired instructions

	fpu fpuState
	dr  [8]uint64

	// Interrupt and exception state.
	shadow     bool // interrupt shadow for the next instruction (STI, MOV SS)
	stepOne    bool // run exactly one instruction next block
	irqVector  int  // injected external interrupt, -1 none
	wantWindow bool
	pendExc    excInfo // exception raised by the current instruction
	injExc     excInfo // exception injected by the hypervisor
	excQueue   excInfo // exception raised by an instruction, to deliver
	delivering int     // vector+1 while delivering (for #DF, triple fault)
	deliverExc bool    // the event being delivered is an exception (not INT n or an interrupt)
	deliverCPL uint8
	deliverRIP uint64
	deliverEv  excInfo // the event being delivered, to queue again (undeliver)
	halted     bool

	// Exit state.
	exit        cpu.Exit
	exitPending bool
	complete    completion
	mmio        mmioLog
	insReady    bool // insData holds the port data for the INS at insRIP
	insRIP      uint64
	insPort     uint16
	insData     uint32

	stats cpu.Stats
	trace *bufio.Writer // non-nil: single-step and log state (trace.go)

	// Multiprocessor state (smp.go), written by other vCPUs: each on a
	// cache line of its own.
	_         [64]byte
	active    atomic.Uint32 // 1 while the vCPU may touch guest memory without looking at requests
	_         [60]byte
	req       atomic.Uint32 // request bits posted by others
	reqGen    atomic.Uint64 // generation of the last request posted
	_         [52]byte
	ackGen    atomic.Uint64 // generation of the last request taken
	fenceWord atomic.Uint32 // target of MFENCE's host fence
}

type excInfo struct {
	valid  bool
	vector uint8
	hasErr bool
	err    uint32
	cr2    uint64
	soft   bool // INT n / INT3 / INTO: privilege check on the gate, RIP after
	irq    bool // an external interrupt
	inj    bool // injected by the hypervisor (InjectException)
}

// completion is what Run must do with the hypervisor's answer first.
type completion uint8

const (
	compNone completion = iota
	compIn
	compMMIORead
	compCPUID
	compRDMSR
	compHypercall
	compINS
)

// Event bits of CPU.events.
const (
	evIRQ    = 1 << 0
	evShadow = 1 << 1
	evInject = 1 << 2
	evWindow = 1 << 3
	evHalt   = 1 << 4
	evCompat = 1 << 5 // CS is a compatibility-mode segment (far.go)
)

var errNoMem = errors.New("interp: Config.Mem is nil")

// New returns a vCPU in 64-bit mode with paging on, CPL 0, all registers
// zero. The caller sets CR3, segments and RIP before the first Run.
func New(cfg Config) (*CPU, error) {
	if cfg.Mem == nil {
		return nil, errNoMem
	}
	if cfg.Mode >= cpu.NumModes {
		return nil, errors.New("interp: unknown mode")
	}
	c := &CPU{
		mem:       cfg.Mem,
		ram:       cfg.Mem.ram,
		mode:      cfg.Mode,
		shadowPT:  cpu.ShadowPageTables[cfg.Mode],
		id:        cfg.ID,
		cpuid:     cfg.CPUID,
		insts:     make([]Inst, instCap+maxBlockLen+1),
		blocks:    make([]blockRef, blkSize),
		irqVector: -1,
		tscScale:  cfg.TSCScale,
		tscClock:  cfg.TSCClock,
	}
	if c.tscScale == 0 {
		c.tscScale = 1
	}
	if cfg.JIT {
		c.enableJIT()
	}
	c.flags = cpu.FlagsFixed
	c.cr0 = cpu.CR0PE | cpu.CR0PG | cpu.CR0ET | cpu.CR0NE | cpu.CR0WP
	c.cr4 = cpu.CR4PAE | cpu.CR4OSFXSR | cpu.CR4OSXMMEXCPT
	c.efer = cpu.EFERLME | cpu.EFERLMA | cpu.EFERSCE | cpu.EFERNXE
	c.sreg[segCS] = cpu.Segment{Selector: 0x10, Limit: 0xffffffff, Attr: 0xb | cpu.SegAttrS | cpu.SegAttrP | cpu.SegAttrL | cpu.SegAttrG}
	data := cpu.Segment{Selector: 0x18, Limit: 0xffffffff, Attr: 0x3 | cpu.SegAttrS | cpu.SegAttrP | cpu.SegAttrDB | cpu.SegAttrG}
	c.sreg[segDS], c.sreg[segES], c.sreg[segSS] = data, data, data
	c.sreg[segTR] = cpu.Segment{Limit: 0x67, Attr: 0xb | cpu.SegAttrP}
	c.msr.PAT = 0x0007040600070406
	c.fpu.reset()
	c.flushCaches()
	c.setCPL(0)
	if err := cfg.Mem.attach(c); err != nil {
		return nil, err
	}
	return c, nil
}

// flushCaches drops every decoded block and TLB entry.
func (c *CPU) flushCaches() {
	for i := range c.blocks {
		c.blocks[i] = blockRef{phys: noPhys}
	}
	c.nInsts = 0
	c.flushTLB(true)
}

// setCPL changes the current privilege level and the TLB permission masks.
func (c *CPU) setCPL(cpl uint8) {
	c.cpl = cpl
	if cpl == 3 {
		c.rdMask, c.wrMask, c.xMask = permRU, permWU, permXU
	} else {
		c.rdMask, c.wrMask, c.xMask = permRS, permWS, permXS
	}
}

// Regs implements cpu.VCPU.
func (c *CPU) Regs() cpu.Regs {
	var r cpu.Regs
	copy(r.GPR[:], c.r[:16])
	r.RIP = c.rip
	r.RFLAGS = c.getFlags()
	return r
}

// SetRegs implements cpu.VCPU.
func (c *CPU) SetRegs(r cpu.Regs) {
	copy(c.r[:16], r.GPR[:])
	c.rip = r.RIP
	c.setFlagsAll(r.RFLAGS)
	c.updateEvents()
}

// SRegs implements cpu.VCPU.
func (c *CPU) SRegs() cpu.SRegs {
	s := cpu.SRegs{
		ES: c.sreg[segES], CS: c.sreg[segCS], SS: c.sreg[segSS], DS: c.sreg[segDS],
		FS: c.sreg[segFS], GS: c.sreg[segGS], TR: c.sreg[segTR], LDT: c.sreg[segLDT],
		GDT: c.gdt, IDT: c.idt, CR0: c.cr0, CR2: c.cr2, CR3: c.cr3, CR4: c.cr4, CR8: c.cr8, EFER: c.efer,
		DR: c.dr,
	}
	s.FS.Base, s.GS.Base = c.segBase[1], c.segBase[2]
	return s
}

// SetSRegs implements cpu.VCPU. Only long mode with paging is accepted; a
// compatibility-mode CS (L=0) is, as after a far transfer to one, and the
// next instruction raises #UD (far.go).
func (c *CPU) SetSRegs(s cpu.SRegs) error {
	if s.EFER&cpu.EFERLMA == 0 || s.CR0&cpu.CR0PG == 0 || s.CR4&cpu.CR4PAE == 0 {
		return errors.New("interp: only long mode (EFER.LMA, CR0.PG, CR4.PAE) is supported")
	}
	c.sreg = [8]cpu.Segment{segES: s.ES, segCS: s.CS, segSS: s.SS, segDS: s.DS, segFS: s.FS, segGS: s.GS, segTR: s.TR, segLDT: s.LDT}
	c.segBase[1], c.segBase[2] = s.FS.Base, s.GS.Base
	c.gdt, c.idt = s.GDT, s.IDT
	c.cr0, c.cr2, c.cr3, c.cr4, c.cr8, c.efer = s.CR0, s.CR2, s.CR3, s.CR4, s.CR8, s.EFER
	c.dr = s.DR
	c.setCPL(uint8(s.CS.Selector & 3))
	c.flushTLB(true)
	c.updateEvents()
	return nil
}

// MSRs implements cpu.VCPU.
func (c *CPU) MSRs() cpu.MSRs { return c.msr }

// SetMSRs implements cpu.VCPU.
func (c *CPU) SetMSRs(m cpu.MSRs) { c.msr = m }

// FPU implements cpu.VCPU.
func (c *CPU) FPU() cpu.FPU { return c.fpu.export() }

// SetFPU implements cpu.VCPU.
func (c *CPU) SetFPU(f cpu.FPU) { c.fpu.load(f) }

// Stats implements cpu.VCPU.
func (c *CPU) Stats() cpu.Stats {
	s := c.stats
	s.Instructions = c.retired
	if j := c.jit; j != nil {
		s.TranslatedBlocks, s.TranslatedInsts, s.TranslatedRuns = j.Blocks, j.Insts, j.Runs+c.jitLinks
	}
	return s
}

// Kick implements cpu.VCPU.
func (c *CPU) Kick() { c.kick.Or(kickExit) }

// RemoteFlushTLB implements cpu.VCPU.
func (c *CPU) RemoteFlushTLB(global bool) { c.remoteFlush(nil, global) }

// InjectException implements cpu.VCPU.
func (c *CPU) InjectException(vector uint8, errorCode uint32, hasError bool) {
	if c.complete != compNone {
		c.complete = compNone
		c.rip = c.exit.RIP
	}
	c.injExc = excInfo{valid: true, vector: vector, err: errorCode, hasErr: hasError}
	c.updateEvents()
}

// SetIRQ implements cpu.VCPU: vector >= 0 asks for delivery of an external
// interrupt as soon as RFLAGS.IF and the interrupt shadow allow.
func (c *CPU) SetIRQ(vector int) {
	c.irqVector = vector
	c.updateEvents()
}

// RequestIRQWindow implements cpu.VCPU.
// CPUID implements cpu.VCPU.
func (c *CPU) CPUID(leaf, sub uint32) (eax, ebx, ecx, edx uint32) {
	return cpu.CPUIDWith(leaf, sub, c.id, c.cpuid)
}

func (c *CPU) RequestIRQWindow(on bool) {
	c.wantWindow = on
	c.updateEvents()
}

// IRQPending reports whether a vector given to SetIRQ is still undelivered.
func (c *CPU) IRQPending() bool { return c.irqVector >= 0 }

// FlushTLB implements cpu.VCPU.
func (c *CPU) FlushTLB(global bool) { c.flushTLB(global) }

// FlushTLBPage implements cpu.VCPU.
func (c *CPU) FlushTLBPage(va uint64) { c.flushTLBPage(va) }

// Memory returns the vCPU's memory.
func (c *CPU) Memory() *Memory { return c.mem }

func (c *CPU) updateEvents() {
	var e uint32
	if c.irqVector >= 0 {
		e |= evIRQ
	}
	if c.shadow {
		e |= evShadow
	}
	if c.injExc.valid || c.excQueue.valid {
		e |= evInject
	}
	if c.wantWindow {
		e |= evWindow
	}
	if c.halted {
		e |= evHalt
	}
	if c.sreg[segCS].Attr&cpu.SegAttrL == 0 {
		e |= evCompat
	}
	c.events = e
}

var _ cpu.VCPU = (*CPU)(nil)
