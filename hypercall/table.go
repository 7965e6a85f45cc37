package hypercall

// Table is the hypercall ABI. Append rows; never renumber, never reuse a
// number; retire a call by setting Status: Reserved. See docs/abi.md, "How
// to add a hypercall".
var Table = []Call{
	{
		Nr: 0, Name: "version", Group: "base", Since: 1,
		Doc:    "Returns the highest ABI version the hypervisor speaks. It changes nothing and is the cheapest call: benchmarks use it as the null hypercall.",
		Result: "the hypervisor's ABI version",
		Early:  true,
	},
	{
		Nr: 1, Name: "features", Group: "base", Since: 1,
		Doc: "Returns one 64-bit word of feature bits (FEATURE_* constants are bits of word 0).",
		Args: []Arg{
			{Name: "word", Reg: RDI, Type: U32, Doc: "index of the feature word; only 0 exists"},
		},
		Result: "the feature bits of the word",
		Errors: []Err{{EINVAL, "word is not 0"}},
		Early:  true,
	},
	{
		Nr: 2, Name: "declare_version", Group: "base", Since: 1,
		Doc: "The guest declares the ABI version it speaks; this marks the end of PV start-up, after which every privileged instruction the guest executes is counted as a violation. A guest must make this call before any other except version, features, console_write and shutdown (so that a guest that cannot speak the ABI can still say so and stop); the others answer -EPROTO until it has succeeded.",
		Args: []Arg{
			{Name: "version", Reg: RDI, Type: U32, Doc: "ABI version the guest was built against"},
		},
		Result: "0",
		Errors: []Err{{EPROTO, "version is older than the oldest supported or newer than the hypervisor's"}},
		Early:  true,
	},
	{
		Nr: 3, Name: "console_write", Group: "console", Since: 1,
		Doc: "Writes bytes to the VM's console.",
		Args: []Arg{
			{Name: "buf", Reg: RDI, Type: GPA, Doc: "guest-physical address of the bytes"},
			{Name: "len", Reg: RSI, Type: U64, Doc: "number of bytes, at most CONSOLE_MAX"},
		},
		Result: "the number of bytes written (len)",
		Errors: []Err{{EFAULT, "[buf, buf+len) is not entirely in the VM's memory"}, {EINVAL, "len > CONSOLE_MAX"}},
		Early:  true,
	},
	{
		Nr: 4, Name: "console_read", Group: "console", Since: 1,
		Doc: "Reads pending console input without blocking. VIRQ_CONSOLE signals that input is waiting.",
		Args: []Arg{
			{Name: "buf", Reg: RDI, Type: GPA, Doc: "guest-physical address of the buffer"},
			{Name: "cap", Reg: RSI, Type: U64, Doc: "buffer size in bytes, at most CONSOLE_MAX"},
		},
		Result: "the number of bytes read, 0 if none is pending",
		Errors: []Err{{EFAULT, "[buf, buf+cap) is not entirely in the VM's memory"}, {EINVAL, "cap > CONSOLE_MAX"}},
	},
	{
		Nr: 5, Name: "shared_info_register", Group: "events", Since: 1,
		Doc: "Registers the page the hypervisor shares with the guest (struct pvisor_shared_info: per-vCPU upcall flags, pvclock time and steal time, event-channel bitmaps, wall clock) and the vector through which event upcalls are delivered. The hypervisor fills the time fields at once.",
		Args: []Arg{
			{Name: "page", Reg: RDI, Type: GPA, Doc: "guest-physical address of a 4 KiB-aligned page"},
			{Name: "vector", Reg: RSI, Type: U32, Doc: "upcall interrupt vector, 32..255"},
		},
		Result: "0",
		Errors: []Err{{EINVAL, "page is not 4 KiB-aligned, or vector is not in 32..255"}, {EFAULT, "the page is not in the VM's memory"}},
	},
	{
		Nr: 6, Name: "timer_set", Group: "time", Since: 1,
		Doc: "Arms the calling vCPU's one-shot timer: when pvclock system time reaches deadline, VIRQ_TIMER is raised. A deadline in the past fires at once; 0 cancels. Arming replaces any earlier deadline.",
		Args: []Arg{
			{Name: "deadline", Reg: RDI, Type: U64, Doc: "absolute pvclock system time in nanoseconds, or 0"},
		},
		Result: "0",
	},
	{
		Nr: 7, Name: "evtchn_bind_virq", Group: "events", Since: 1,
		Doc: "Binds a virtual IRQ (VIRQ_*) of a vCPU to a new event-channel port. Ports start masked; unmask to receive.",
		Args: []Arg{
			{Name: "virq", Reg: RDI, Type: U32, Doc: "VIRQ_TIMER or VIRQ_CONSOLE"},
			{Name: "vcpu", Reg: RSI, Type: U32, Doc: "vCPU that receives the upcall"},
		},
		Result: "the port number",
		Errors: []Err{{EINVAL, "unknown virq or vcpu"}, {EBUSY, "the virq is already bound on that vCPU"}, {ENOSPC, "all MAX_PORTS ports are in use"}},
	},
	{
		Nr: 8, Name: "evtchn_send", Group: "events", Since: 1,
		Doc: "Marks a bound port pending, as its source would; an unmasked pending port raises the upcall.",
		Args: []Arg{
			{Name: "port", Reg: RDI, Type: Port, Doc: "a bound port"},
		},
		Result: "0",
		Errors: []Err{{EINVAL, "port >= MAX_PORTS"}, {ENOENT, "port is not bound"}},
	},
	{
		Nr: 9, Name: "evtchn_mask", Group: "events", Since: 1,
		Doc: "Masks a port: it can become pending but raises no upcall. The guest may also set the bit in evtchn_mask itself; the call exists for guests that do not map the shared page.",
		Args: []Arg{
			{Name: "port", Reg: RDI, Type: Port, Doc: "a bound port"},
		},
		Result: "0",
		Errors: []Err{{EINVAL, "port >= MAX_PORTS"}, {ENOENT, "port is not bound"}},
	},
	{
		Nr: 10, Name: "evtchn_unmask", Group: "events", Since: 1,
		Doc: "Unmasks a port; if it is pending the upcall is raised at once.",
		Args: []Arg{
			{Name: "port", Reg: RDI, Type: Port, Doc: "a bound port"},
		},
		Result: "0",
		Errors: []Err{{EINVAL, "port >= MAX_PORTS"}, {ENOENT, "port is not bound"}},
	},
	{
		Nr: 11, Name: "evtchn_close", Group: "events", Since: 1,
		Doc: "Unbinds a port; its pending bit is cleared and the port can be reused.",
		Args: []Arg{
			{Name: "port", Reg: RDI, Type: Port, Doc: "a bound port"},
		},
		Result: "0",
		Errors: []Err{{EINVAL, "port >= MAX_PORTS"}, {ENOENT, "port is not bound"}},
	},
	{
		Nr: 12, Name: "irq_deliver_pending", Group: "events", Since: 1,
		Doc:    "Delivers the event upcall now if one is pending and the vCPU's upcall_mask is 0 and RFLAGS.IF is set. A guest calls it after clearing upcall_mask, since clearing a byte in memory does not exit.",
		Result: "1 if an upcall was delivered, else 0",
	},
	{
		Nr: 13, Name: "vcpu_block", Group: "vcpu", Since: 1,
		Doc:    "Blocks the calling vCPU until an event is pending for it (an unmasked pending port or an expired timer) and returns with RFLAGS.IF set, as STI; HLT does: a guest blocks with interrupts disabled and loses no wake-up. Returns at once if an event is already pending. An expiry of the one-shot timer that no unmasked port took (VIRQ_TIMER unbound or masked) counts until one block or HLT has returned for it, even if it came before the call; arming the timer again discards it. A block never returns for anything else. The vCPU uses no CPU while blocked.",
		Result: "0",
	},
	{
		Nr: 14, Name: "vcpu_yield", Group: "vcpu", Since: 1,
		Doc:    "Gives up the rest of the calling vCPU's time slice.",
		Result: "0",
	},
	{
		Nr: 15, Name: "shutdown", Group: "vcpu", Since: 1,
		Doc: "Stops the VM. It does not return on success.",
		Args: []Arg{
			{Name: "reason", Reg: RDI, Type: U32, Doc: "SHUTDOWN_POWEROFF, SHUTDOWN_REBOOT or SHUTDOWN_CRASH"},
			{Name: "code", Reg: RSI, Type: U32, Doc: "exit code reported to the operator (pvisor run's exit status)"},
		},
		Result: "does not return",
		Errors: []Err{{EINVAL, "unknown reason"}},
		Early:  true,
	},
	{
		Nr: 16, Name: "mmu_set_cr3", Group: "mmu", Since: 1,
		Doc: "Switches the calling vCPU's page tables (as MOV to CR3) and flushes its non-global TLB entries.",
		Args: []Arg{
			{Name: "pml4", Reg: RDI, Type: GPA, Doc: "guest-physical address of a 4 KiB-aligned PML4"},
		},
		Result: "0",
		Errors: []Err{{EINVAL, "pml4 is not 4 KiB-aligned"}, {EFAULT, "pml4 is not in the VM's memory"}},
	},
	{
		Nr: 17, Name: "mmu_flush_tlb", Group: "mmu", Since: 1,
		Doc: "Flushes the calling vCPU's TLB.",
		Args: []Arg{
			{Name: "flags", Reg: RDI, Type: U64, Doc: "FLUSH_GLOBAL to include global entries"},
		},
		Result: "0",
		Errors: []Err{{EINVAL, "flags has bits other than FLUSH_GLOBAL"}},
	},
	{
		Nr: 18, Name: "mmu_invlpg", Group: "mmu", Since: 1,
		Doc: "Flushes the TLB entry of one virtual page (as INVLPG).",
		Args: []Arg{
			{Name: "va", Reg: RDI, Type: GVA, Doc: "any address in the page"},
		},
		Result: "0",
		Errors: []Err{{EINVAL, "va is not canonical"}},
	},
	{
		Nr: 19, Name: "mmu_batch", Group: "mmu", Since: 1,
		Doc: "Performs an array of MMU operations (struct pvisor_mmu_op: MMU_OP_WRITE_PTE, MMU_OP_INVLPG, MMU_OP_FLUSH_TLB, MMU_OP_SET_CR3) in order, in one exit. Each op's result field receives 0 or a negative errno; the batch stops at the first failing op.",
		Args: []Arg{
			{Name: "ops", Reg: RDI, Type: GPA, Doc: "guest-physical address of the array"},
			{Name: "count", Reg: RSI, Type: U64, Doc: "number of ops, at most MMU_BATCH_MAX"},
		},
		Result: "the number of ops that succeeded (count when all did)",
		Errors: []Err{{EFAULT, "the array is not entirely in the VM's memory"}, {EINVAL, "count > MMU_BATCH_MAX"}},
	},
	{
		Nr: 20, Name: "load_gdt", Group: "desc", Since: 1,
		Doc: "Loads the calling vCPU's GDT register (as LGDT).",
		Args: []Arg{
			{Name: "base", Reg: RDI, Type: GVA, Doc: "linear address of the table"},
			{Name: "limit", Reg: RSI, Type: U32, Doc: "table limit (size - 1), at most 0xffff"},
		},
		Result: "0",
		Errors: []Err{{EINVAL, "base is not canonical or limit > 0xffff"}},
	},
	{
		Nr: 21, Name: "load_idt", Group: "desc", Since: 1,
		Doc: "Loads the calling vCPU's IDT register (as LIDT).",
		Args: []Arg{
			{Name: "base", Reg: RDI, Type: GVA, Doc: "linear address of the table"},
			{Name: "limit", Reg: RSI, Type: U32, Doc: "table limit (size - 1), at most 0xffff"},
		},
		Result: "0",
		Errors: []Err{{EINVAL, "base is not canonical or limit > 0xffff"}},
	},
	{
		Nr: 22, Name: "set_kernel_stack", Group: "desc", Since: 1,
		Doc: "Sets the stack the vCPU switches to on an interrupt or exception from user mode (TSS.RSP0).",
		Args: []Arg{
			{Name: "rsp0", Reg: RDI, Type: GVA, Doc: "top of the kernel stack"},
		},
		Result: "0",
		Errors: []Err{{EINVAL, "rsp0 is not canonical"}, {EFAULT, "the loader's TSS page has been given back with balloon_out"}},
	},
	{
		Nr: 23, Name: "set_ist", Group: "desc", Since: 1,
		Doc: "Sets one interrupt stack table entry (TSS.IST1-7) of the calling vCPU.",
		Args: []Arg{
			{Name: "index", Reg: RDI, Type: U32, Doc: "IST index, 1..7"},
			{Name: "rsp", Reg: RSI, Type: GVA, Doc: "top of the stack"},
		},
		Result: "0",
		Errors: []Err{{EINVAL, "index is not in 1..7 or rsp is not canonical"}, {EFAULT, "the loader's TSS page has been given back with balloon_out"}},
	},
	{
		Nr: 24, Name: "msr_read", Group: "msr", Since: 1,
		Doc: "Reads an MSR of the calling vCPU from the allowed set: EFER, STAR, LSTAR, CSTAR, SFMASK, FS_BASE, GS_BASE, KERNEL_GS_BASE, PAT, TSC_AUX, SYSENTER_CS/ESP/EIP.",
		Args: []Arg{
			{Name: "index", Reg: RDI, Type: U32, Doc: "MSR number"},
			{Name: "value", Reg: RSI, Type: U64, Dir: Out, Doc: "the MSR's value"},
		},
		Result: "0",
		Errors: []Err{{EPERM, "index is not in the allowed set"}},
	},
	{
		Nr: 25, Name: "msr_write", Group: "msr", Since: 1,
		Doc: "Writes an MSR of the calling vCPU from the allowed set (see msr_read). EFER accepts only changes to SCE and NXE.",
		Args: []Arg{
			{Name: "index", Reg: RDI, Type: U32, Doc: "MSR number"},
			{Name: "value", Reg: RSI, Type: U64, Doc: "new value"},
		},
		Result: "0",
		Errors: []Err{{EPERM, "index is not in the allowed set"}, {EINVAL, "the value is invalid for the MSR (a non-canonical base, reserved EFER or PAT bits)"}},
	},
	{
		Nr: 26, Name: "memory_map", Group: "memory", Since: 1,
		Doc: "Copies the VM's guest-physical memory map (struct pvisor_memmap_entry, MEMMAP_* types) to the guest.",
		Args: []Arg{
			{Name: "buf", Reg: RDI, Type: GPA, Doc: "guest-physical address of an entry array"},
			{Name: "cap", Reg: RSI, Type: U64, Doc: "number of entries the array holds"},
		},
		Result: "the total number of entries (at most cap are written)",
		Errors: []Err{{EFAULT, "the array is not entirely in the VM's memory"}},
	},
	{
		Nr: 27, Name: "measured_boot", Group: "integrity", Since: 1,
		Doc: "Copies the boot measurement (struct pvisor_measured_boot: SHA-256 digests of the kernel image, the initramfs and the command line, as loaded) to the guest.",
		Args: []Arg{
			{Name: "buf", Reg: RDI, Type: GPA, Doc: "guest-physical address of a struct pvisor_measured_boot"},
			{Name: "size", Reg: RSI, Type: U64, Doc: "size of the buffer in bytes"},
		},
		Result: "the number of bytes written (the struct's size)",
		Errors: []Err{{EFAULT, "the buffer is not entirely in the VM's memory"}, {EINVAL, "size is smaller than the struct"}},
	},
	{
		Nr: 28, Name: "set_tss", Group: "desc", Since: 1,
		Doc: "Points the calling vCPU's task register at a 64-bit TSS of the guest's own (as LTR of an available TSS descriptor would): from then on RSP0 and the IST stacks are read from it, so the guest updates them with plain memory writes. set_kernel_stack and set_ist write the loader's TSS and are for guests that keep it.",
		Args: []Arg{
			{Name: "base", Reg: RDI, Type: GVA, Doc: "linear address of the TSS"},
			{Name: "limit", Reg: RSI, Type: U32, Doc: "TSS limit (size - 1), at least 0x67"},
		},
		Result: "0",
		Errors: []Err{{EINVAL, "base is not canonical or limit < 0x67 or limit > 0xffff"}},
	},
	{
		Nr: 29, Name: "balloon_out", Group: "memory", Since: 1,
		Doc: "Gives guest frames back to the host (a balloon driver inflating). Each listed frame leaves the VM's memory: its host memory is freed and uncharged from the budget, and until balloon_in takes it back it is unbacked, like an address outside RAM (reads return all-ones, writes are dropped, hypercall pointers into it get -EFAULT). Frames already out are skipped. The frames come back zeroed.",
		Args: []Arg{
			{Name: "gfns", Reg: RDI, Type: GPA, Doc: "guest-physical address of an array of count u64 guest frame numbers (address / 4096)"},
			{Name: "count", Reg: RSI, Type: U64, Doc: "number of frames, at most BALLOON_MAX"},
		},
		Result: "the number of listed frames that were in the VM's memory and are now out",
		Errors: []Err{{EFAULT, "the array is not entirely in the VM's memory"}, {EINVAL, "count > BALLOON_MAX, or a frame is beyond the VM's memory (then no frame is taken out)"}, {EBUSY, "a frame holds the registered shared-info page (then no frame is taken out)"}},
	},
	{
		Nr: 30, Name: "balloon_in", Group: "memory", Since: 1,
		Doc: "Takes frames given back with balloon_out into the VM's memory again (a balloon driver deflating), zeroed and charged to the VM. The VM's memory size is a hard limit: only frames of the VM's own range exist. Frames already in are left as they are.",
		Args: []Arg{
			{Name: "gfns", Reg: RDI, Type: GPA, Doc: "guest-physical address of an array of count u64 guest frame numbers"},
			{Name: "count", Reg: RSI, Type: U64, Doc: "number of frames, at most BALLOON_MAX"},
		},
		Result: "the number of listed frames that came back (were out)",
		Errors: []Err{{EFAULT, "the array is not entirely in the VM's memory"}, {EINVAL, "count > BALLOON_MAX, or a frame is beyond the VM's memory (then no frame comes back)"}},
	},
	{
		Nr: 31, Name: "balloon_target", Group: "memory", Since: 1,
		Doc:    "Returns the memory size, in frames, the host operator wants the VM to keep populated (xl mem-set's target): a balloon driver gives frames back with balloon_out until the VM's populated frames are at most this, and may take them back with balloon_in up to it. VIRQ_BALLOON on vCPU 0 signals a change. Initially the whole of the VM's memory.",
		Result: "the target in frames",
	},
	{
		Nr: 32, Name: "virtio_info", Group: "virtio", Since: 2,
		Doc: "Describes virtio slot slot (struct pvisor_virtio_info): the device's IDs, offered features, queues, config length and generation, status, the slot's generation (it changes on every attach, so a guest that sees it change knows the slot holds a new device) and flags (VIRTIO_EJECT_REQUESTED). An empty slot reads device_id 0. VIRQ_VIRTIO on vCPU 0 signals that a slot was filled, emptied or asked to eject: the guest rescans the slots.",
		Args: []Arg{
			{Name: "slot", Reg: RDI, Type: U32, Doc: "slot number, below VIRTIO_SLOTS"},
			{Name: "buf", Reg: RSI, Type: GPA, Doc: "guest-physical address of a struct pvisor_virtio_info"},
		},
		Result: "0",
		Errors: []Err{{EINVAL, "slot >= VIRTIO_SLOTS"}, {EFAULT, "the struct is not entirely in the VM's memory"}},
	},
	{
		Nr: 33, Name: "virtio_set_features", Group: "virtio", Since: 2,
		Doc: "Sets the driver's feature bits (virtio 1.1 section 3.1.1) of the device in slot. Allowed once the status has DRIVER and until FEATURES_OK; whether the features are acceptable is decided when the driver sets FEATURES_OK.",
		Args: []Arg{
			{Name: "slot", Reg: RDI, Type: U32, Doc: "slot number"},
			{Name: "features", Reg: RSI, Type: U64, Doc: "the 64 feature bits the driver accepts"},
		},
		Result: "0",
		Errors: []Err{{EINVAL, "slot >= VIRTIO_SLOTS, or the status does not have DRIVER, or already has FEATURES_OK, FAILED or DEVICE_NEEDS_RESET"}, {ENODEV, "the slot is empty"}},
	},
	{
		Nr: 34, Name: "virtio_set_status", Group: "virtio", Since: 2,
		Doc: "Writes the device status byte of the device in slot, as the status register of virtio-mmio: 0 resets the device (and waits for the request in progress, so that afterwards the device touches no guest memory); otherwise bits are added in the order ACKNOWLEDGE, DRIVER, FEATURES_OK, DRIVER_OK, or FAILED at any time, and any other write is ignored. FEATURES_OK is kept only if the driver's features are a subset of the device's and include VERSION_1. The result is the status read back, so one call tells the driver whether FEATURES_OK held.",
		Args: []Arg{
			{Name: "slot", Reg: RDI, Type: U32, Doc: "slot number"},
			{Name: "status", Reg: RSI, Type: U32, Doc: "the new status byte, 0..255"},
		},
		Result: "the device status after the write",
		Errors: []Err{{EINVAL, "slot >= VIRTIO_SLOTS or status > 255"}, {ENODEV, "the slot is empty"}},
	},
	{
		Nr: 35, Name: "virtio_config_read", Group: "virtio", Since: 2,
		Doc: "Copies bytes [offset, offset+len) of the device-specific config space of the device in slot to the guest. The driver reads config_generation (virtio_info) before and after to get a consistent view.",
		Args: []Arg{
			{Name: "slot", Reg: RDI, Type: U32, Doc: "slot number"},
			{Name: "offset", Reg: RSI, Type: U32, Doc: "first config byte"},
			{Name: "buf", Reg: RDX, Type: GPA, Doc: "guest-physical address of the buffer"},
			{Name: "len", Reg: R10, Type: U64, Doc: "number of bytes"},
		},
		Result: "the number of bytes read (len)",
		Errors: []Err{{EINVAL, "slot >= VIRTIO_SLOTS, or offset+len > config_len"}, {ENODEV, "the slot is empty"}, {EFAULT, "[buf, buf+len) is not entirely in the VM's memory"}},
	},
	{
		Nr: 36, Name: "virtio_config_write", Group: "virtio", Since: 2,
		Doc: "Writes bytes [offset, offset+len) of the device-specific config space of the device in slot from the guest (fields the device does not let the driver write are left as they are).",
		Args: []Arg{
			{Name: "slot", Reg: RDI, Type: U32, Doc: "slot number"},
			{Name: "offset", Reg: RSI, Type: U32, Doc: "first config byte"},
			{Name: "buf", Reg: RDX, Type: GPA, Doc: "guest-physical address of the bytes"},
			{Name: "len", Reg: R10, Type: U64, Doc: "number of bytes"},
		},
		Result: "the number of bytes written (len)",
		Errors: []Err{{EINVAL, "slot >= VIRTIO_SLOTS, or offset+len > config_len"}, {ENODEV, "the slot is empty"}, {EFAULT, "[buf, buf+len) is not entirely in the VM's memory"}},
	},
	{
		Nr: 37, Name: "virtio_queue_setup", Group: "virtio", Since: 2,
		Doc: "Sets up (size > 0: size and the three ring addresses, then ready) or disables (size 0) split virtqueue queue of the device in slot, as virtio-mmio's queue registers and QueueReady do. Allowed after FEATURES_OK and before DRIVER_OK; a ready queue is disabled before it changes. Enabling checks the layout: size a power of two up to queue_num_max, the descriptor table 16-byte, the available ring 2-byte and the used ring 4-byte aligned, every ring in RAM. A bad layout breaks the device: its status gains DEVICE_NEEDS_RESET and the config-change port is raised.",
		Args: []Arg{
			{Name: "slot", Reg: RDI, Type: U32, Doc: "slot number"},
			{Name: "queue", Reg: RSI, Type: U32, Doc: "queue index, below num_queues"},
			{Name: "size", Reg: RDX, Type: U32, Doc: "queue size in entries, or 0 to disable"},
			{Name: "desc", Reg: R10, Type: GPA, Doc: "guest-physical address of the descriptor table"},
			{Name: "avail", Reg: R8, Type: GPA, Doc: "guest-physical address of the available (driver) ring"},
			{Name: "used", Reg: R9, Type: GPA, Doc: "guest-physical address of the used (device) ring"},
		},
		Result: "0",
		Errors: []Err{{EINVAL, "slot >= VIRTIO_SLOTS, queue >= num_queues, or the status is not between FEATURES_OK and DRIVER_OK"}, {ENODEV, "the slot is empty"}, {EBUSY, "the queue is ready and the new layout differs: disable it first"}, {EIO, "the layout is bad: the device now needs reset (DEVICE_NEEDS_RESET)"}},
	},
	{
		Nr: 38, Name: "virtio_notify", Group: "virtio", Since: 2,
		Doc: "The doorbell: tells the device in slot that queue has new available buffers. It never blocks and allocates nothing; a notification for a queue that does not exist or is not ready, or to a device that is not running, is ignored. With EVENT_IDX negotiated the driver skips it when the device's avail_event says it is not needed.",
		Args: []Arg{
			{Name: "slot", Reg: RDI, Type: U32, Doc: "slot number"},
			{Name: "queue", Reg: RSI, Type: U32, Doc: "queue index"},
		},
		Result: "0",
		Errors: []Err{{EINVAL, "slot >= VIRTIO_SLOTS"}, {ENODEV, "the slot is empty"}},
	},
	{
		Nr: 39, Name: "virtio_bind", Group: "virtio", Since: 2,
		Doc: "Binds an interrupt of the device in slot to a new event-channel port of a vCPU: kind VIRTIO_BIND_QUEUES is raised when any of its queues has new used buffers (the driver looks at every queue), VIRTIO_BIND_CONFIG when its config space or status changed (DEVICE_NEEDS_RESET). Ports start masked; unmask to receive; evtchn_close unbinds. Interrupts raised while no port is bound are not kept.",
		Args: []Arg{
			{Name: "slot", Reg: RDI, Type: U32, Doc: "slot number"},
			{Name: "kind", Reg: RSI, Type: U32, Doc: "VIRTIO_BIND_QUEUES or VIRTIO_BIND_CONFIG"},
			{Name: "vcpu", Reg: RDX, Type: U32, Doc: "vCPU that receives the upcall"},
		},
		Result: "the port number",
		Errors: []Err{{EINVAL, "slot >= VIRTIO_SLOTS, unknown kind or vcpu"}, {ENODEV, "the slot is empty"}, {EBUSY, "that kind is already bound for the device"}, {ENOSPC, "all MAX_PORTS ports are in use"}},
	},
	{
		Nr: 40, Name: "virtio_release", Group: "virtio", Since: 2,
		Doc: "The guest has unregistered the device in slot, whose ejection the operator requested (VIRTIO_EJECT_REQUESTED): the device is reset, its backend closed and the slot empties (VIRQ_VIRTIO is not raised for it). The guest closes the device's ports with evtchn_close; calls on the slot answer -ENODEV from then on.",
		Args: []Arg{
			{Name: "slot", Reg: RDI, Type: U32, Doc: "slot number"},
		},
		Result: "0",
		Errors: []Err{{EINVAL, "slot >= VIRTIO_SLOTS"}, {ENODEV, "the slot is empty"}, {EBUSY, "no ejection was requested for the device"}},
	}, {
		Nr: 41, Name: "vm_generation", Group: "integrity", Since: 3,
		Doc: "Copies the VM generation ID (16 bytes) to the guest. It is random, and it changes whenever the VM may have been duplicated or moved back in time: every restore of a snapshot gives the restored VM a new one, so two clones restored from one snapshot never share it. A guest that sees it change reseeds its random number generator and renews whatever must not be shared between copies, as Linux's vmgenid driver does. FEATURE_VM_GENERATION says the call exists.",
		Args: []Arg{
			{Name: "buf", Reg: RDI, Type: GPA, Doc: "guest-physical address of 16 bytes"},
		},
		Result: "16 (the number of bytes written)",
		Errors: []Err{{EFAULT, "[buf, buf+16) is not entirely in the VM's memory"}},
	}, {
		Nr: 42, Name: "patch_level", Group: "integrity", Since: 4,
		Doc: "Declares the patch level the guest runs at, with its release string (Linux: the kernel release and the pvisor.patch_level= command-line value, or a value root writes to /sys/hypervisor/pvisor/patch_level from /etc). The VM's patch level becomes level; its lineage's highest level becomes the larger of the two and is recorded at once in the host's lineage record, so a later restore of an older snapshot is refused. Every snapshot records the level. A guest can only raise its lineage's level: declaring one it does not run makes older snapshots need --allow-rollback, nothing more. A declaration is an event in the VM's log. FEATURE_LINEAGE says the call exists.",
		Args: []Arg{
			{Name: "level", Reg: RDI, Type: U64, Doc: "the patch level, 1 or more"},
			{Name: "release", Reg: RSI, Type: GPA, Doc: "guest-physical address of the release string (printable ASCII, not NUL-terminated)"},
			{Name: "len", Reg: RDX, Type: U32, Doc: "its length in bytes, 0 to PATCH_RELEASE_MAX"},
		},
		Result: "0",
		Errors: []Err{{EINVAL, "level is 0 or above 2^62, len > PATCH_RELEASE_MAX, or the release holds a byte outside printable ASCII"}, {EFAULT, "[release, release+len) is not entirely in the VM's memory"}, {EBUSY, "the VM has declared PATCH_DECLARE_MAX times since it booted or was restored"}, {EIO, "the host could not record the lineage (the level is not raised)"}},
	}, {
		Nr: 43, Name: "vm_lineage", Group: "integrity", Since: 4,
		Doc: "Copies struct pvisor_lineage to the guest: the VM's patch level, the highest its lineage has seen, and flags: LINEAGE_RESTORED when the VM was restored from a snapshot, LINEAGE_ROLLED_BACK when the operator restored it below its lineage's level with --allow-rollback, so the guest knows it may lack fixes its lineage had. FEATURE_LINEAGE says the call exists.",
		Args: []Arg{
			{Name: "buf", Reg: RDI, Type: GPA, Doc: "guest-physical address of a struct pvisor_lineage"},
		},
		Result: "0",
		Errors: []Err{{EFAULT, "the structure is not entirely in the VM's memory"}},
	}, {
		Nr: 44, Name: "introspect_targets", Group: "introspect", Since: 5,
		Doc: "Copies the introspection grants the calling VM holds to the guest, as an array of struct pvisor_introspect_target: per grant a handle, and the target VM's name, memory size, vCPU count and mode. The operator grants a monitor VM read access to a target VM (pvisor ctl grant M introspect T) and revokes it (pvisor ctl revoke M introspect T); a grant also ends when the target or the monitor stops, so it never outlives the target. A handle names one grant and is never reused: once revoked, or once its target has stopped, it reaches no VM again. A VM holds at most INTROSPECT_MAX_GRANTS grants; no grant is transitive (a target's own grants give its monitor nothing). FEATURE_INTROSPECT says the introspect calls exist.",
		Args: []Arg{
			{Name: "buf", Reg: RDI, Type: GPA, Doc: "guest-physical address of an array of struct pvisor_introspect_target"},
			{Name: "cap", Reg: RSI, Type: U64, Doc: "number of entries the array holds"},
		},
		Result: "the number of grants the VM holds (at most cap entries are written, oldest grant first); 0 when it holds none",
		Errors: []Err{{EFAULT, "the entries to write are not entirely in the VM's memory"}},
	}, {
		Nr: 45, Name: "introspect_memmap", Group: "introspect", Since: 5,
		Doc: "Copies the target's guest-physical memory map (struct pvisor_memmap_entry, MEMMAP_* types: what the target's own memory_map returns) to the calling guest. The memory map is the loader's; frames the target gave back with balloon_out are not marked in it (introspect_read returns zeros for them).",
		Args: []Arg{
			{Name: "handle", Reg: RDI, Type: U32, Doc: "a grant's handle (introspect_targets)"},
			{Name: "buf", Reg: RSI, Type: GPA, Doc: "guest-physical address of an entry array in the caller's memory"},
			{Name: "cap", Reg: RDX, Type: U64, Doc: "number of entries the array holds"},
		},
		Result: "the total number of entries of the target's map (at most cap are written)",
		Errors: []Err{{EPERM, "handle names no grant the VM holds: never granted, or revoked"}, {ENOENT, "the grant ended because its target stopped"}, {EFAULT, "the entries to write are not entirely in the VM's memory"}},
	}, {
		Nr: 46, Name: "introspect_read", Group: "introspect", Since: 5,
		Doc: "Copies bytes [gpa, gpa+len) of the target's guest-physical memory into the caller's buffer. It is read-only: no introspect call writes the target's memory or registers, and none exists that could. Frames the target gave back with balloon_out read as zeros; addresses outside the target's RAM are refused, so no byte of the host or of a third VM is ever reachable. The target keeps running: the bytes are as the target's memory held them during the copy (a page it writes meanwhile may be copied half old, half new). At most INTROSPECT_READ_MAX bytes per call, copied on the caller's vCPU and charged to the caller's CPU time, so a monitor that reads without pause is held to its own weight and cap.",
		Args: []Arg{
			{Name: "handle", Reg: RDI, Type: U32, Doc: "a grant's handle (introspect_targets)"},
			{Name: "gpa", Reg: RSI, Type: U64, Doc: "guest-physical address in the target's memory"},
			{Name: "buf", Reg: RDX, Type: GPA, Doc: "guest-physical address of the buffer in the caller's memory"},
			{Name: "len", Reg: R10, Type: U64, Doc: "number of bytes, at most INTROSPECT_READ_MAX"},
		},
		Result: "the number of bytes copied (len)",
		Errors: []Err{{EPERM, "handle names no grant the VM holds: never granted, or revoked"}, {ENOENT, "the grant ended because its target stopped"}, {EINVAL, "len > INTROSPECT_READ_MAX, or [gpa, gpa+len) is not entirely inside the target's RAM (from 0 to its memory size)"}, {EFAULT, "[buf, buf+len) is not entirely in the VM's memory"}},
	}, {
		Nr: 47, Name: "introspect_vcpu", Group: "introspect", Since: 5,
		Doc: "Copies the architectural registers of one of the target's vCPUs (struct pvisor_introspect_vcpu: the general-purpose registers, RIP, RFLAGS, CR0, CR2, CR3, CR4, EFER, the FS and GS bases, CS, SS and CPL) to the calling guest, so that a monitor can walk the target's page tables from CR3. A vCPU publishes a copy of its registers each time it leaves its time slice (when it is preempted, yields, blocks or halts), and the call returns the last copy: it is at most one time slice old, and seq tells copies apart. Read-only: nothing the call does reaches the target's registers.",
		Args: []Arg{
			{Name: "handle", Reg: RDI, Type: U32, Doc: "a grant's handle (introspect_targets)"},
			{Name: "vcpu", Reg: RSI, Type: U32, Doc: "the target's vCPU, below its vCPU count"},
			{Name: "buf", Reg: RDX, Type: GPA, Doc: "guest-physical address of a struct pvisor_introspect_vcpu in the caller's memory"},
		},
		Result: "0",
		Errors: []Err{{EPERM, "handle names no grant the VM holds: never granted, or revoked"}, {ENOENT, "the grant ended because its target stopped"}, {EINVAL, "vcpu is not below the target's vCPU count"}, {EAGAIN, "the target has not started running yet: no registers are published"}, {EFAULT, "the structure is not entirely in the VM's memory"}},
	}, {
		Nr: 48, Name: "vcpu_up", Group: "vcpu", Since: 6,
		Doc: "Starts a secondary vCPU, as Xen's VCPUOP_initialise and VCPUOP_up do. Every vCPU but vCPU 0 starts down; this call gives vCPU vcpu the register context at ctx (struct pvisor_vcpu_context: RIP, RSP, RDI, CR3 and the GS base) on top of the loader's entry state (64-bit ring 0, the loader's GDT and IDT limit 0, interrupts off, its own TSS in the loader's TSS area, and a shared-info slot of its own) with the caller's CR0, CR4 and EFER, and makes it runnable. It runs at once, concurrently with the caller. The new vCPU loads its own GDT and IDT, binds its own VIRQs and arms its own timer: nothing of the caller's per-vCPU state is copied. A vCPU that is up stays up until the VM stops.",
		Args: []Arg{
			{Name: "vcpu", Reg: RDI, Type: U32, Doc: "the vCPU to start: 1 to nr_vcpus-1 (struct pvisor_start_info)"},
			{Name: "ctx", Reg: RSI, Type: GPA, Doc: "guest-physical address of a struct pvisor_vcpu_context"},
		},
		Result: "0",
		Errors: []Err{{EINVAL, "vcpu is 0 or not below nr_vcpus; the context's flags are not 0; RIP, RSP or the GS base is not canonical; CR3 is not 4 KiB-aligned"}, {EFAULT, "the context, or the page at CR3, is not entirely in the VM's memory"}, {EBUSY, "the vCPU is up already"}},
	}, {
		Nr: 49, Name: "evtchn_bind_ipi", Group: "events", Since: 6,
		Doc: "Binds a new event-channel port to vCPU vcpu for inter-processor interrupts: evtchn_send on the port, from any vCPU, raises it on vcpu and wakes vcpu if it is blocked, as Xen's EVTCHNOP_bind_ipi. The port starts masked; unmask it to receive. A guest binds one port per vCPU and purpose (Linux: reschedule, call-function, call-function-single).",
		Args: []Arg{
			{Name: "vcpu", Reg: RDI, Type: U32, Doc: "the vCPU that receives the upcall, below nr_vcpus"},
		},
		Result: "the port number",
		Errors: []Err{{EINVAL, "vcpu is not below nr_vcpus"}, {ENOSPC, "all MAX_PORTS ports are in use"}},
	}, {
		Nr: 50, Name: "mmu_flush_tlb_mask", Group: "mmu", Since: 6,
		Doc: "Flushes the TLBs of every vCPU in mask (bit i for vCPU i, the caller included), as Xen's MMUEXT_TLB_FLUSH_MULTI and KVM's PV TLB flush: one call instead of an IPI to each vCPU and a wait for its answer. With FLUSH_PAGE only the translations of the page at va need go (the hypervisor may drop more: another vCPU drops all of its translations, global ones included); without it, all non-global translations, and with FLUSH_GLOBAL the global ones too. When the call returns, no vCPU of the mask uses a translation cached before it: a vCPU that is running flushes at its next instruction boundary and the caller waits for it; one that is not flushes before it next runs. A vCPU that is down is left alone.",
		Args: []Arg{
			{Name: "mask", Reg: RDI, Type: U64, Doc: "bit i: flush vCPU i; no bit at or above nr_vcpus"},
			{Name: "va", Reg: RSI, Type: GVA, Doc: "with FLUSH_PAGE: a canonical address in the page to flush; otherwise ignored"},
			{Name: "flags", Reg: RDX, Type: U64, Doc: "FLUSH_GLOBAL, FLUSH_PAGE, or 0"},
		},
		Result: "0",
		Errors: []Err{{EINVAL, "mask has a bit at or above nr_vcpus; flags has a bit other than FLUSH_GLOBAL and FLUSH_PAGE, or both; FLUSH_PAGE with a non-canonical va"}},
	}, {
		Nr: 51, Name: "vcpu_count", Group: "vcpu", Since: 6,
		Doc:    "Returns the number of vCPUs the VM has, nr_vcpus of struct pvisor_start_info, for a kernel that does not read the start info (Linux). vCPU 0 runs from boot; vcpu_up starts the others.",
		Result: "the number of vCPUs, 1 to MAX_VCPUS",
	},
}
