package hypercall

import (
	"bytes"
	"encoding/binary"
)

// Structures shared with the guest. Each mirrors the C struct of the same
// name in guestkit/include/pvisor/hypercall.h (generated from these by
// reflection): little-endian, naturally aligned, padded explicitly.

// Limits and constants of the ABI (the virtio ones since ABI 2, the
// introspect ones since ABI 5).
const (
	MaxVCPUs    = 32   // vCPUs described by the shared-info page
	MaxPorts    = 512  // event-channel ports per VM
	ConsoleMax  = 4096 // bytes per console_write / console_read
	MMUBatchMax = 512  // ops per mmu_batch
	BalloonMax  = 4096 // frames per balloon_out / balloon_in
	PageSize    = 4096

	StartInfoMagic = 0x49535650 // "PVSI"

	FeatureConsole  = 1 << 0
	FeatureTimer    = 1 << 1
	FeatureEvtchn   = 1 << 2
	FeatureMMUBatch = 1 << 3
	FeaturePvclock  = 1 << 4
	FeatureMeasured = 1 << 5
	FeatureBalloon  = 1 << 6
	FeatureVirtio   = 1 << 7
	FeatureVMGen    = 1 << 8
	FeatureLineage  = 1 << 9
	// FeatureIntrospect: the introspect_* calls (since ABI 5).
	FeatureIntrospect = 1 << 10
	// FeatureSMP: vcpu_up, vcpu_count, evtchn_bind_ipi and mmu_flush_tlb_mask (since
	// ABI 6).
	FeatureSMP = 1 << 11

	IntrospectReadMax   = 64 << 10 // bytes per introspect_read
	IntrospectMaxGrants = 16       // grants one VM holds at a time
	IntrospectNameMax   = 64       // bytes of pvisor_introspect_target.name

	IntrospectModePV       = 0 // pvisor_introspect_target.mode: pv
	IntrospectModeTrap     = 1 // trap (trap-and-emulate)
	IntrospectModeHWAssist = 2 // hwassist

	IntrospectVCPUBlocked = 1 << 0 // pvisor_introspect_vcpu.flags: the vCPU was halted or blocked when it published

	PatchReleaseMax = 64 // bytes of the release string patch_level takes
	PatchDeclareMax = 16 // patch_level calls per boot or restore

	LineageRolledBack = 1 << 0 // pvisor_lineage flags: restored below the lineage's patch level (--allow-rollback)
	LineageRestored   = 1 << 1 // pvisor_lineage flags: this VM was restored from a snapshot

	VirtioSlots = 16 // slots of the hypercall virtio transport

	VirtioBindQueues = 0 // virtio_bind: the used-buffer interrupt of every queue
	VirtioBindConfig = 1 // virtio_bind: the config-change interrupt

	VirtioEjectRequested = 1 << 0 // pvisor_virtio_info.flags: the operator wants the device out

	VirqTimer      = 0
	VirqConsole    = 1
	VirqBalloon    = 2
	VirqVirtio     = 3
	VirqGeneration = 4
	NumVirqs       = 5

	ShutdownPoweroff = 0
	ShutdownReboot   = 1
	ShutdownCrash    = 2

	FlushGlobal = 1
	FlushPage   = 2 // mmu_flush_tlb_mask (since ABI 6)

	MMUOpWritePTE = 1
	MMUOpInvlpg   = 2
	MMUOpFlushTLB = 3
	MMUOpSetCR3   = 4

	MemmapRAM      = 1
	MemmapReserved = 2

	DigestSHA256 = 1

	PvclockTSCStable = 1 << 0 // pvclock flags: the TSC is stable across vCPUs

	// MSRHypercallPage: a guest that was not loaded with a start-info page
	// (a Linux kernel) writes the guest-physical address of a 4 KiB-aligned
	// page of its own to this MSR; the hypervisor fills it with the call
	// instruction sequence, as the loader does for freestanding guests.
	MSRHypercallPage = 0x40000000
)

// Features is word 0 of the features call in this build.
const Features = FeatureConsole | FeatureTimer | FeatureEvtchn | FeatureMMUBatch | FeaturePvclock | FeatureMeasured | FeatureBalloon | FeatureVirtio | FeatureVMGen | FeatureLineage | FeatureIntrospect | FeatureSMP

// Const is a named constant exported to the C header and the docs.
type Const struct {
	Name  string // C name without the PVISOR_ prefix
	Value uint64
	Doc   string
}

// Consts lists every constant of the ABI other than hypercall numbers and
// errnos, for the generator.
var Consts = []Const{
	{"ABI_VERSION", Version, "ABI version of this header"},
	{"MAX_VCPUS", MaxVCPUs, "vCPUs described by the shared-info page"},
	{"MAX_PORTS", MaxPorts, "event-channel ports per VM"},
	{"CONSOLE_MAX", ConsoleMax, "bytes per console_write / console_read"},
	{"MMU_BATCH_MAX", MMUBatchMax, "ops per mmu_batch"},
	{"BALLOON_MAX", BalloonMax, "frames per balloon_out / balloon_in"},
	{"START_INFO_MAGIC", StartInfoMagic, `struct pvisor_start_info magic ("PVSI")`},
	{"FEATURE_CONSOLE", FeatureConsole, "console_write/console_read"},
	{"FEATURE_TIMER", FeatureTimer, "timer_set"},
	{"FEATURE_EVTCHN", FeatureEvtchn, "event channels and the upcall"},
	{"FEATURE_MMU_BATCH", FeatureMMUBatch, "mmu_batch"},
	{"FEATURE_PVCLOCK", FeaturePvclock, "pvclock time in the shared-info page"},
	{"FEATURE_MEASURED_BOOT", FeatureMeasured, "measured_boot"},
	{"FEATURE_BALLOON", FeatureBalloon, "balloon_out, balloon_in, balloon_target and VIRQ_BALLOON"},
	{"FEATURE_VIRTIO", FeatureVirtio, "the hypercall virtio transport: the virtio_* calls and VIRQ_VIRTIO (since ABI 2)"},
	{"FEATURE_VM_GENERATION", FeatureVMGen, "vm_generation: the VM generation ID, new at every restore (since ABI 3)"},
	{"FEATURE_LINEAGE", FeatureLineage, "patch_level, vm_lineage and VIRQ_GENERATION (since ABI 4)"},
	{"FEATURE_INTROSPECT", FeatureIntrospect, "introspect_targets, introspect_memmap, introspect_read and introspect_vcpu: read-only introspection of another VM under the operator's grant (since ABI 5)"},
	{"FEATURE_SMP", FeatureSMP, "vcpu_up, vcpu_count, evtchn_bind_ipi and mmu_flush_tlb_mask: secondary vCPUs, IPIs and TLB flushes by vCPU mask (since ABI 6)"},
	{"INTROSPECT_READ_MAX", IntrospectReadMax, "bytes per introspect_read"},
	{"INTROSPECT_MAX_GRANTS", IntrospectMaxGrants, "introspection grants one VM holds at a time"},
	{"INTROSPECT_NAME_MAX", IntrospectNameMax, "bytes of pvisor_introspect_target.name (NUL-padded; a longer name is cut)"},
	{"INTROSPECT_MODE_PV", IntrospectModePV, "pvisor_introspect_target.mode: the target runs in pv mode"},
	{"INTROSPECT_MODE_TRAP", IntrospectModeTrap, "pvisor_introspect_target.mode: trap mode"},
	{"INTROSPECT_MODE_HWASSIST", IntrospectModeHWAssist, "pvisor_introspect_target.mode: hwassist mode"},
	{"INTROSPECT_VCPU_BLOCKED", IntrospectVCPUBlocked, "pvisor_introspect_vcpu.flags: the vCPU was halted or blocked (waiting for an event) when it published its registers"},
	{"PATCH_RELEASE_MAX", PatchReleaseMax, "bytes of the release string patch_level takes"},
	{"PATCH_DECLARE_MAX", PatchDeclareMax, "patch_level calls a VM may make per boot or restore (each may write the host's lineage record)"},
	{"LINEAGE_ROLLED_BACK", LineageRolledBack, "pvisor_lineage flags: the VM was restored from a snapshot below its lineage's patch level, by the operator's --allow-rollback"},
	{"LINEAGE_RESTORED", LineageRestored, "pvisor_lineage flags: the VM was restored from a snapshot"},
	{"VIRTIO_SLOTS", VirtioSlots, "slots of the hypercall virtio transport"},
	{"VIRTIO_BIND_QUEUES", VirtioBindQueues, "virtio_bind: the used-buffer interrupt of every queue"},
	{"VIRTIO_BIND_CONFIG", VirtioBindConfig, "virtio_bind: the config-change interrupt"},
	{"VIRTIO_EJECT_REQUESTED", VirtioEjectRequested, "pvisor_virtio_info flags: the operator asked for the device's ejection; unregister it and call virtio_release"},
	{"VIRQ_TIMER", VirqTimer, "the vCPU's one-shot timer expired"},
	{"VIRQ_CONSOLE", VirqConsole, "console input is pending"},
	{"VIRQ_BALLOON", VirqBalloon, "the operator changed the balloon target (vCPU 0)"},
	{"VIRQ_VIRTIO", VirqVirtio, "a virtio slot was filled or emptied, or a device's ejection was requested: rescan the slots (vCPU 0)"},
	{"VIRQ_GENERATION", VirqGeneration, "the VM generation ID changed (the VM was restored from a snapshot): read it with vm_generation and reseed (vCPU 0; since ABI 4)"},
	{"SHUTDOWN_POWEROFF", ShutdownPoweroff, "power off"},
	{"SHUTDOWN_REBOOT", ShutdownReboot, "reboot"},
	{"SHUTDOWN_CRASH", ShutdownCrash, "the guest crashed (panic)"},
	{"FLUSH_GLOBAL", FlushGlobal, "mmu_flush_tlb, mmu_flush_tlb_mask: include global pages"},
	{"FLUSH_PAGE", FlushPage, "mmu_flush_tlb_mask: only the page at va (since ABI 6)"},
	{"MMU_OP_WRITE_PTE", MMUOpWritePTE, "mmu_batch: write b to the page-table entry at guest-physical a"},
	{"MMU_OP_INVLPG", MMUOpInvlpg, "mmu_batch: flush the TLB entry of virtual address a"},
	{"MMU_OP_FLUSH_TLB", MMUOpFlushTLB, "mmu_batch: flush the TLB (a = FLUSH_GLOBAL or 0)"},
	{"MMU_OP_SET_CR3", MMUOpSetCR3, "mmu_batch: switch page tables to the PML4 at guest-physical a"},
	{"MEMMAP_RAM", MemmapRAM, "usable RAM"},
	{"MEMMAP_RESERVED", MemmapReserved, "reserved (start info, hypercall page, page tables the loader built)"},
	{"DIGEST_SHA256", DigestSHA256, "measured_boot digest algorithm"},
	{"PVCLOCK_TSC_STABLE", PvclockTSCStable, "pvclock flags: the TSC is stable"},
	{"MSR_HYPERCALL_PAGE", MSRHypercallPage, "WRMSR the guest-physical address of a page to have the hypercall sequence written into it"},
}

// PvclockTimeInfo mirrors Linux's struct pvclock_vcpu_time_info
// (arch/x86/include/asm/pvclock-abi.h): system time in ns is
// SystemTime + ((TSC - TSCTimestamp) << TSCShift) * TSCToSystemMul >> 32
// (a right shift when TSCShift is negative). An odd Version means an update
// is in progress.
type PvclockTimeInfo struct {
	Version        uint32
	_              uint32
	TSCTimestamp   uint64
	SystemTime     uint64
	TSCToSystemMul uint32
	TSCShift       int8
	Flags          uint8
	_              [2]uint8
}

// VCPUInfo is one vCPU's slot of the shared-info page.
type VCPUInfo struct {
	UpcallPending uint8 // set by the hypervisor when an unmasked port is pending
	UpcallMask    uint8 // set by the guest to hold off upcalls
	_             [6]uint8
	PendingSel    uint64 // bit i: evtchn_pending word i may have bits for this vCPU
	Time          PvclockTimeInfo
	StealNs       uint64 // time this vCPU was runnable but not running
	_             [8]uint8
}

// SharedInfo is the page registered with shared_info_register.
type SharedInfo struct {
	VCPU             [MaxVCPUs]VCPUInfo
	EvtchnPending    [MaxPorts / 64]uint64
	EvtchnMask       [MaxPorts / 64]uint64
	WallclockSec     uint64 // Unix time at pvclock system time 0
	WallclockNsec    uint32
	WallclockVersion uint32 // odd while the wall clock is being updated
	_                [PageSize - 2192]uint8
}

// StartInfo is placed by the loader in guest memory; a freestanding guest
// finds its address in RDI at entry.
type StartInfo struct {
	Magic            uint32
	ABIVersion       uint32
	NrVCPUs          uint32
	Flags            uint32
	MemSize          uint64 // bytes of guest RAM
	MemmapGPA        uint64
	MemmapEntries    uint32
	CmdlineLen       uint32
	CmdlineGPA       uint64
	InitrdGPA        uint64
	InitrdSize       uint64
	HypercallPageGPA uint64 // the page holding the hypercall instruction
	SharedInfoGPA    uint64 // a free page the guest may register as shared info
	PageTableGPA     uint64 // PML4 of the initial identity map
	IdentityMapSize  uint64 // bytes identity-mapped from 0 by the initial tables
	FreeGPA          uint64 // first page not used by anything the loader placed
}

// MemmapEntry is one entry of the memory map.
type MemmapEntry struct {
	Addr uint64
	Size uint64
	Type uint32
	_    uint32
}

// MMUOp is one operation of mmu_batch.
type MMUOp struct {
	Kind   uint32
	Result int32 // written by the hypervisor: 0 or a negative errno
	A      uint64
	B      uint64
}

// MeasuredBoot is the boot measurement.
type MeasuredBoot struct {
	Version uint32 // 1
	Algo    uint32 // DIGEST_SHA256
	Kernel  [32]uint8
	Initrd  [32]uint8 // zero when there is no initramfs
	Cmdline [32]uint8
}

// VirtioInfo describes one slot of the hypercall virtio transport
// (virtio_info). The fields mirror virtio-mmio's registers of the same
// names; Generation is the slot's own.
type VirtioInfo struct {
	DeviceID         uint32 // virtio device ID; 0: the slot is empty
	VendorID         uint32 // "PVSR", as virtio-mmio's VendorID
	DeviceFeatures   uint64 // every feature bit the device offers
	NumQueues        uint32
	QueueNumMax      uint32 // the largest size every queue takes
	ConfigLen        uint32 // bytes of device-specific config space
	ConfigGeneration uint32
	Status           uint32 // the device status byte
	Generation       uint32 // changes on every attach to the slot
	Flags            uint32 // VIRTIO_EJECT_REQUESTED
	_                [4]uint8
}

// Lineage is what vm_lineage reports (since ABI 4): the patch level the
// VM runs at, the highest its lineage has seen, and LINEAGE_* flags.
type Lineage struct {
	PatchLevel uint64 // the VM's patch level: the last declared or set, 0 if none
	Highest    uint64 // the highest patch level the VM's lineage has seen
	Flags      uint32 // LINEAGE_ROLLED_BACK, LINEAGE_RESTORED
	_          [4]uint8
}

// IntrospectTarget is one grant introspect_targets reports (since ABI 5):
// its handle and what the target VM is.
type IntrospectTarget struct {
	Handle  uint32 // names the grant in the other introspect calls; never reused
	VCPUs   uint32 // the target's vCPU count
	MemSize uint64 // bytes of the target's RAM: introspect_read takes [0, MemSize)
	Mode    uint32 // INTROSPECT_MODE_*
	_       [4]uint8
	Name    [IntrospectNameMax]uint8 // the target's name, NUL-padded
}

// IntrospectVCPU is a target vCPU's architectural registers as
// introspect_vcpu reports them (since ABI 5). GPR is in the x86 encoding
// order: RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8-R15.
type IntrospectVCPU struct {
	GPR    [16]uint64
	RIP    uint64
	RFLAGS uint64
	CR0    uint64
	CR2    uint64
	CR3    uint64 // the target's page-table root (guest-physical, with its flag bits)
	CR4    uint64
	EFER   uint64
	FSBase uint64
	GSBase uint64
	Seq    uint64 // publications so far: a new copy has a larger seq
	CS     uint32 // code segment selector
	SS     uint32 // stack segment selector
	CPL    uint32 // current privilege level, 0-3
	Flags  uint32 // INTROSPECT_VCPU_BLOCKED
}

// Structs lists the shared structures for the generator, in dependency
// order.
var Structs = []any{PvclockTimeInfo{}, VCPUInfo{}, SharedInfo{}, StartInfo{}, MemmapEntry{}, MMUOp{}, MeasuredBoot{}, VirtioInfo{}, Lineage{}, IntrospectTarget{}, IntrospectVCPU{}, VCPUContext{}}

// Encode lays out a fixed-layout ABI value (or a slice of them) as the
// guest sees it: little-endian, in field order, padding included.
func Encode(v any) []byte {
	var b bytes.Buffer
	if err := binary.Write(&b, binary.LittleEndian, v); err != nil {
		panic("hypercall: encoding an ABI struct: " + err.Error()) // a broken internal invariant
	}
	return b.Bytes()
}

// VCPUContext is the initial register context of a secondary vCPU
// (vcpu_up, since ABI 6). Everything else starts as the loader's entry
// state.
type VCPUContext struct {
	RIP    uint64
	RSP    uint64
	RDI    uint64 // the entry's first argument
	CR3    uint64 // guest-physical address of the PML4, 4 KiB-aligned
	GSBase uint64 // MSR_GS_BASE (Linux's per-CPU base)
	Flags  uint64 // 0; other values are reserved
}
