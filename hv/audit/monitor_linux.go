//go:build linux

package audit

import (
	"errors"
	"fmt"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Monitor is the loaded program, its maps and its link to sys_enter.
type Monitor struct {
	procs  *ebpf.Map // tgid (u32) -> slot (u32)
	counts *ebpf.Map // slot (u32) -> Counts
	prog   *ebpf.Program
	link   link.Link

	mu    sync.Mutex
	slots map[int]uint32 // tgid -> slot; mu protects it
	free  []uint32
}

// ErrRefused is what Open returns when the kernel will not load or
// attach the program (no BPF, no privilege): the caller says so.
var ErrRefused = errors.New("the kernel refused the BPF monitor")

// Open loads the program and attaches it to the raw sys_enter
// tracepoint.
func Open() (*Monitor, error) {
	// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK. (Not
	// cilium/ebpf's rlimit package: its init probes the kernel with a
	// BPF map in every pvisor process, VMMs included.)
	unix.Setrlimit(unix.RLIMIT_MEMLOCK, &unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY})
	m := &Monitor{slots: map[int]uint32{}}
	var err error
	m.procs, err = ebpf.NewMap(&ebpf.MapSpec{Name: "pvisor_procs", Type: ebpf.Hash, KeySize: 4, ValueSize: 4, MaxEntries: MaxProcs})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRefused, err)
	}
	m.counts, err = ebpf.NewMap(&ebpf.MapSpec{Name: "pvisor_counts", Type: ebpf.Array, KeySize: 4, ValueSize: 8 * Counters, MaxEntries: MaxProcs})
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("%w: %v", ErrRefused, err)
	}
	m.prog, err = ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "pvisor_sysenter",
		Type:         ebpf.RawTracepoint,
		Instructions: program(m.procs.FD(), m.counts.FD()),
		License:      "GPL",
	})
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("%w: loading the program: %v", ErrRefused, err)
	}
	m.link, err = link.AttachRawTracepoint(link.RawTracepointOptions{Name: "sys_enter", Program: m.prog})
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("%w: attaching to sys_enter: %v", ErrRefused, err)
	}
	for s := MaxProcs - 1; s >= 0; s-- {
		m.free = append(m.free, uint32(s))
	}
	return m, nil
}

// program is the sys_enter program over the two maps (see doc.go).
func program(procs, counts int) asm.Instructions {
	return asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1), // ctx: struct bpf_raw_tracepoint_args
		asm.FnGetCurrentPidTgid.Call(),
		asm.RSh.Imm(asm.R0, 32),
		asm.StoreMem(asm.RFP, -4, asm.R0, asm.Word),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.LoadMapPtr(asm.R1, procs),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.LoadMem(asm.R7, asm.R0, 0, asm.Word),  // slot
		asm.LoadMem(asm.R8, asm.R6, 8, asm.DWord), // args[1]: the syscall number
		asm.JLE.Imm(asm.R8, Overflow, "counted"),
		asm.Mov.Imm(asm.R8, Overflow),
		asm.StoreMem(asm.RFP, -8, asm.R7, asm.Word).WithSymbol("counted"),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -8),
		asm.LoadMapPtr(asm.R1, counts),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.LSh.Imm(asm.R8, 3),
		asm.Add.Reg(asm.R0, asm.R8),
		asm.Mov.Imm(asm.R1, 1),
		asm.StoreXAdd(asm.R0, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("out"),
		asm.Return(),
	}
}

// Watch starts counting the calls of thread group tgid from zero.
func (m *Monitor) Watch(tgid int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.slots[tgid]; ok {
		return nil
	}
	if len(m.free) == 0 {
		return fmt.Errorf("audit: already watching %d processes", MaxProcs)
	}
	s := m.free[len(m.free)-1]
	var zero Counts
	if err := m.counts.Put(s, &zero); err != nil {
		return fmt.Errorf("audit: %v", err)
	}
	if err := m.procs.Put(uint32(tgid), s); err != nil {
		return fmt.Errorf("audit: %v", err)
	}
	m.free = m.free[:len(m.free)-1]
	m.slots[tgid] = s
	return nil
}

// Unwatch stops counting tgid's calls; its counts are gone.
func (m *Monitor) Unwatch(tgid int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.slots[tgid]
	if !ok {
		return
	}
	m.procs.Delete(uint32(tgid))
	delete(m.slots, tgid)
	m.free = append(m.free, s)
}

// Counts reads tgid's counts.
func (m *Monitor) Counts(tgid int) (Counts, error) {
	m.mu.Lock()
	s, ok := m.slots[tgid]
	m.mu.Unlock()
	var c Counts
	if !ok {
		return c, fmt.Errorf("audit: process %d is not watched", tgid)
	}
	if err := m.counts.Lookup(s, &c); err != nil {
		return c, fmt.Errorf("audit: %v", err)
	}
	return c, nil
}

// Close detaches the program and frees the maps.
func (m *Monitor) Close() error {
	if m.link != nil {
		m.link.Close()
	}
	if m.prog != nil {
		m.prog.Close()
	}
	if m.counts != nil {
		m.counts.Close()
	}
	if m.procs != nil {
		m.procs.Close()
	}
	return nil
}
