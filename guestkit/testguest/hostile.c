/*
 * hostile: the test guest as an attacker. Each attack tries to break one of
 * the hypervisor's promises from inside a VM and reports what it saw as one
 * line tests/hostile_test.go parses:
 *
 *   hostile: begin NAME                      before each attack (a VM that stops
 *                                            or hangs names the attack it died in)
 *   hostile: NAME key=value ... breaches=N   the outcome; N > 0 is a broken promise
 *   hostile: call nr=N n=K errnos=0x...      per call number (calls): how often it
 *                                            was made and the errnos it returned
 *   hostile: done attacks=K breaches=N       then a power-off with status 0, or 3
 *                                            if any breach was seen
 *
 * Command line: hostile[=calls,alias,int,ud,timer,unaligned] (default: all)
 * seed=N calls=N rounds=N keys=N samples=N first=N (the ud form to start at).
 * The attacks (docs/security.md):
 *
 *   calls      random hypercalls, numbers in and out of the table, arguments
 *              biased to edge values; every result must be >= 0 or a negative
 *              errno (the test checks each call's errnos against the table),
 *              and no register but RAX (and an out-argument) may change.
 *   alias      stale soft-TLB entries reached through non-canonical aliases
 *              after a flush, and writes through a frame given back with
 *              balloon_out: every alias must fault and nothing may land.
 *   int        INT n from ring 3 through DPL-0 gates for every vector, INT3,
 *              INTO, ICEBP: the architectural exception, delivered normally.
 *   ud         instruction forms engines leave out and random byte strings in
 *              ring 3: each executes or raises an exception the guest handles.
 *   timer      a one-shot timer that expires while its VIRQ is unbound or
 *              masked, then vcpu_block: it must return at once.
 *   unaligned  2/4/8/16-byte accesses straddling the end of RAM and a
 *              ballooned-out frame: they complete, unbacked bytes read
 *              all-ones and writes to them are dropped.
 *
 * The guest runs on its own GDT, IDT (every exception on IST1, so a fault
 * with a wild stack pointer still arrives), TSS and page tables: RAM is
 * supervisor-only but for the few pages ring 3 may touch, so ring-3 code,
 * however random, cannot damage the kernel. Calls that could legitimately end
 * or wreck the guest (shutdown, a page-table switch to a random page, a
 * balloon_out of its own code) have their arguments redirected to harmless
 * equivalents; the redirections are listed at fix_args.
 */
#include "testguest.h"

#define PTE_P 0x1UL
#define PTE_RW 0x2UL
#define PTE_US 0x4UL
#define PTE_PS 0x80UL

#define ALIAS_VA 0x0000008000000000UL /* PML4 slot 1: the alias attack's window */
#define NONCANON 0x0000800000000000UL

extern char __bss_end[];

static u64 mem_end;    /* first byte after RAM */
static u64 scratch_lo; /* [scratch_lo, mem_end): memory the attacks may give back or scribble on */
static u64 breaches;

/* ---- randomness ---- */

static u64 rng = 0x9e3779b97f4a7c15UL;

static u64 rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545f4914f6cdd1dUL;
}

static u64 opt(const char *cmdline, const char *key, u64 def)
{
	const char *p = cmdline_find(cmdline, key);

	return p ? parse_u64(p, 0) : def;
}

static void stop(const char *why)
{
	printf("hostile: setup failed: %s\n", why);
	pvisor_shutdown(PVISOR_SHUTDOWN_POWEROFF, 2);
	for (;;)
		__asm__ volatile("pause");
}

/* ---- page tables ---- */

static u64 h_pml4[512] __attribute__((aligned(4096)));
static u64 h_pdpt[512] __attribute__((aligned(4096)));
static u64 h_pd[512] __attribute__((aligned(4096)));
static u64 h_pt[512] __attribute__((aligned(4096))); /* [0, 2 MiB) in 4 KiB pages */
static u64 a_pdpt[512] __attribute__((aligned(4096)));
static u64 a_pd[512] __attribute__((aligned(4096)));
static u64 a_pt[512] __attribute__((aligned(4096)));
static u64 junk_pt[1024] __attribute__((aligned(4096))); /* mmu_batch's WRITE_PTE target: linked nowhere */
static u8 frame_a[4096] __attribute__((aligned(4096)));
static u8 frame_b[4096] __attribute__((aligned(4096)));
static u8 canary[4096] __attribute__((aligned(4096)));
static u8 kcode[4096] __attribute__((aligned(4096)));     /* ring-0 code the ud attack writes */
static u8 kdata[4 * 4096] __attribute__((aligned(4096))); /* what ring-0 forms point at */
static u8 kstack[4 * 4096] __attribute__((aligned(4096)));
/* The only pages ring 3 may touch. */
static u8 ucode[4096] __attribute__((aligned(4096)));
static u8 ustack[4096] __attribute__((aligned(4096)));
static u8 udata[4 * 4096] __attribute__((aligned(4096)));
static u8 own_tss[104] __attribute__((aligned(16)));

static void set_tss_stacks(void)
{
	u64 rsp0 = (u64)rsp0_stack + RSP0_SIZE, ist = (u64)ist1_stack + IST1_SIZE;

	memcpy(own_tss + 4, &rsp0, 8);
	memcpy(own_tss + 36, &ist, 8);
}

static void build_tables(void)
{
	u64 n2m = mem_end >> 21;

	for (u64 i = 0; i < 512; i++) {
		u64 a = i << 12;

		/* Below 64 KiB only the start info and the hypercall page. */
		h_pt[i] = (a >= 0x10000 || a == 0x9000 || a == 0xa000) ? a | PTE_P | PTE_RW : 0;
	}
	for (u64 p = (u64)ucode; p < (u64)ucode + sizeof(ucode); p += 4096)
		h_pt[p >> 12] |= PTE_US;
	for (u64 p = (u64)ustack; p < (u64)ustack + sizeof(ustack); p += 4096)
		h_pt[p >> 12] |= PTE_US;
	for (u64 p = (u64)udata; p < (u64)udata + sizeof(udata); p += 4096)
		h_pt[p >> 12] |= PTE_US;
	h_pd[0] = (u64)h_pt | PTE_P | PTE_RW | PTE_US;
	/* RAM, and one 2 MiB page above it: unbacked, for the unaligned attack. */
	for (u64 i = 1; i <= n2m; i++)
		h_pd[i] = (i << 21) | PTE_P | PTE_RW | PTE_PS;
	h_pdpt[0] = (u64)h_pd | PTE_P | PTE_RW | PTE_US;
	h_pml4[0] = (u64)h_pdpt | PTE_P | PTE_RW | PTE_US;
	a_pd[0] = (u64)a_pt | PTE_P | PTE_RW | PTE_US;
	a_pdpt[0] = (u64)a_pd | PTE_P | PTE_RW | PTE_US;
	h_pml4[1] = (u64)a_pdpt | PTE_P | PTE_RW | PTE_US;
}

/* Puts back everything the calls attack may have changed. */
static void restore_env(void)
{
	__asm__ volatile("cli" ::: "memory");
	pvisor_timer_set(0);
	for (u64 p = 0; p < PVISOR_MAX_PORTS; p++)
		pvisor_evtchn_close(p);
	if (pvisor_load_gdt(gdt_base(), gdt_limit()) != 0 || pvisor_load_idt(idt_base(), idt_limit()) != 0)
		stop("load_gdt/load_idt");
	reload_segments();
	set_tss_stacks();
	if (pvisor_set_tss((u64)own_tss, 0x67) != 0)
		stop("set_tss");
	if (pvisor_mmu_set_cr3((u64)h_pml4) != 0)
		stop("mmu_set_cr3");
	if (pvisor_shared_info_register((u64)&shinfo, UPCALL_VECTOR) != 0)
		stop("shared_info_register");
	shinfo.vcpu[0].upcall_mask = 0;
	shinfo.vcpu[0].upcall_pending = 0;
	memset((void *)shinfo.evtchn_pending, 0, sizeof(shinfo.evtchn_pending));
}

/* ---- running code under the trap hook ---- */

/*
 * h_enter(rip, rsp, rflags, regs, cs, ss) IRETQs to cs:rip with every
 * general register but RSP loaded from regs[] (hc_regs_probe's order); the
 * hook ends the run on a trap by sending control to user_return, which
 * returns from h_enter. The probe loops read (or write RBP to) each address
 * of the array at RSI, RCX entries long: R8 counts the accesses that did not
 * fault, R10 the reads that returned RBP. Each loop ends with ud2.
 */
void h_enter(u64 rip, u64 rsp, u64 rflags, const u64 *regs, u64 cs, u64 ss);
extern char probe_r[], probe_r_insn[], probe_r_next[], probe_r_end[];
extern char probe_w[], probe_w_insn[], probe_w_next[], probe_w_end[];
__asm__(".text\n"
	".globl h_enter\n"
	"h_enter:\n\t"
	"push %rbx\n\tpush %rbp\n\tpush %r12\n\tpush %r13\n\tpush %r14\n\tpush %r15\n\t"
	"mov %rsp, kernel_saved_rsp(%rip)\n\t"
	"push %r9\n\tpush %rsi\n\tpush %rdx\n\tpush %r8\n\tpush %rdi\n\t"
	"mov %rcx, %rax\n\t"
	"mov 8(%rax), %rbx\n\tmov 16(%rax), %rcx\n\tmov 24(%rax), %rdx\n\t"
	"mov 32(%rax), %rsi\n\tmov 40(%rax), %rdi\n\tmov 48(%rax), %rbp\n\t"
	"mov 56(%rax), %r8\n\tmov 64(%rax), %r9\n\tmov 72(%rax), %r10\n\t"
	"mov 80(%rax), %r11\n\tmov 88(%rax), %r12\n\tmov 96(%rax), %r13\n\t"
	"mov 104(%rax), %r14\n\tmov 112(%rax), %r15\n\tmov 0(%rax), %rax\n\t"
	"iretq\n"
	".globl probe_r, probe_r_insn, probe_r_next, probe_r_end\n"
	"probe_r:\n"
	"1:\tmov (%rsi), %rdx\n"
	"probe_r_insn:\n\t"
	"mov (%rdx), %rax\n\t"
	"inc %r8\n\t"
	"cmp %rax, %rbp\n\t"
	"jne probe_r_next\n\t"
	"inc %r10\n"
	"probe_r_next:\n\t"
	"add $8, %rsi\n\t"
	"dec %rcx\n\t"
	"jnz 1b\n\t"
	"ud2\n"
	"probe_r_end:\n"
	".globl probe_w, probe_w_insn, probe_w_next, probe_w_end\n"
	"probe_w:\n"
	"1:\tmov (%rsi), %rdx\n"
	"probe_w_insn:\n\t"
	"mov %rbp, (%rdx)\n\t"
	"inc %r8\n"
	"probe_w_next:\n\t"
	"add $8, %rsi\n\t"
	"dec %rcx\n\t"
	"jnz 1b\n\t"
	"ud2\n"
	"probe_w_end:\n");

/* Index of regs[] (as hc_regs_probe). */
enum { RAX, RBX, RCX, RDX, RSI, RDI, RBP, R8, R9, R10, R11, R12, R13, R14, R15 };

#define UPROBE_W 2048 /* offset of probe_w's copy in ucode */

enum { M_NONE, M_RUN, M_PROBE };
static volatile int hmode;
static volatile int watchdog; /* M_RUN: a timer upcall ends the run (a timeout) */
static volatile struct {
	u64 count, vector, error, rip, cs, cr2;
	struct trap_frame f; /* the frame of the trap that ended the run */
	u64 gp, pf, other, doubles, timeouts;
} hr;

static int probe_fixup(struct trap_frame *f)
{
	const u64 bases[4] = {(u64)probe_r, (u64)ucode, (u64)probe_w, (u64)ucode + UPROBE_W};

	for (int i = 0; i < 4; i++) {
		int w = i >= 2;
		u64 insn = bases[i] + (w ? probe_w_insn - probe_w : probe_r_insn - probe_r);
		u64 next = bases[i] + (w ? probe_w_next - probe_w : probe_r_next - probe_r);

		if (f->rip == insn) {
			f->rip = next;
			return 1;
		}
	}
	return 0;
}

static void end_run(struct trap_frame *f)
{
	hr.f = *f;
	hmode = M_NONE;
	f->rip = (u64)user_return;
	f->cs = SEL_KCODE;
	f->ss = SEL_KDATA;
	f->rsp = kernel_saved_rsp;
	f->rflags = 0x2;
}

static int hook(struct trap_frame *f)
{
	if (f->vector == UPCALL_VECTOR) {
		handle_upcall();
		if (hmode == M_RUN && watchdog) {
			hr.timeouts++;
			hr.vector = UPCALL_VECTOR;
			end_run(f);
		}
		return 1;
	}
	if (hmode == M_NONE)
		return 0; /* an unexpected trap: trap_dispatch reports it */
	u64 cr2 = 0;

	if (f->vector == 14)
		__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
	hr.count++;
	hr.vector = f->vector;
	hr.error = f->error;
	hr.rip = f->rip;
	hr.cs = f->cs;
	hr.cr2 = cr2;
	if (f->vector == 8)
		hr.doubles++;
	if (hmode == M_PROBE && (f->vector == 13 || f->vector == 14) && probe_fixup(f)) {
		if (f->vector == 13)
			hr.gp++;
		else
			hr.pf++;
		return 1;
	}
	end_run(f);
	return 1;
}

static u64 kregs_default[16], uregs_default[16];

static void init_regs(void)
{
	for (int i = 0; i < 15; i++) {
		kregs_default[i] = (u64)kdata + 4096;
		uregs_default[i] = (u64)udata + 4096;
	}
	kregs_default[RAX] = uregs_default[RAX] = 0;
	kregs_default[RCX] = uregs_default[RCX] = 0x1234; /* no MSR; a short rep count */
	kregs_default[RDX] = uregs_default[RDX] = 0x80;
}

static void run(int ring, u64 rip, u64 rsp, u64 rflags, const u64 *regs)
{
	hr.count = 0;
	hr.vector = ~0UL;
	hmode = M_RUN;
	if (ring == 3)
		h_enter(rip, rsp, rflags, regs, SEL_UCODE, SEL_UDATA);
	else
		h_enter(rip, rsp, rflags, regs, SEL_KCODE, SEL_KDATA);
	hmode = M_NONE;
	reload_segments();
}

/*
 * Runs a probe loop over addrs[0..n) in ring 0 or 3; returns the accesses
 * that did not fault, *matched the reads that returned want. *bad is set if
 * the loop did not end at its ud2 (a trap other than #GP/#PF stopped it).
 */
static u64 probe(int ring, int write, const u64 *addrs, u64 n, u64 want, u64 *matched, u64 *bad)
{
	static u64 regs[16];
	u64 hits = 0, seen = 0;

	*bad = 0;
	while (n) {
		u64 k = n, start;

		memcpy(regs, ring == 3 ? uregs_default : kregs_default, sizeof(regs));
		if (ring == 3) {
			if (k > sizeof(udata) / 8)
				k = sizeof(udata) / 8;
			memcpy(udata, addrs, k * 8);
			regs[RSI] = (u64)udata;
			start = (u64)ucode + (write ? UPROBE_W : 0);
		} else {
			regs[RSI] = (u64)addrs;
			start = (u64)(write ? probe_w : probe_r);
		}
		regs[RCX] = k;
		regs[R8] = regs[R10] = 0;
		regs[RBP] = want;
		hr.count = 0;
		hr.vector = ~0UL;
		hmode = M_PROBE;
		if (ring == 3)
			h_enter(start, (u64)ustack + sizeof(ustack), 0x2, regs, SEL_UCODE, SEL_UDATA);
		else
			h_enter(start, (u64)kstack + sizeof(kstack), 0x2, regs, SEL_KCODE, SEL_KDATA);
		hmode = M_NONE;
		u64 end = start + (write ? probe_w_end - probe_w : probe_r_end - probe_r) - 2;
		if (hr.vector != 6 || hr.f.rip != end)
			*bad = 1;
		hits += hr.f.r8;
		seen += hr.f.r10;
		addrs += k;
		n -= k;
	}
	reload_segments();
	if (matched)
		*matched = seen;
	return hits;
}

/* ---- calls: random hypercalls ---- */

#define NBUCKET (PVISOR_HC_COUNT + 1) /* the last bucket: every number outside the table */
static u64 call_n[NBUCKET], call_errs[NBUCKET][2]; /* errnos seen: bit e of word e/64 */
#define NPOOL 128 /* a power of two: the values below, repeated */
static u64 pool[NPOOL];
static u64 page_mask; /* frames of RAM rounded up to a power of two, minus 1 */
static const u64 msrs[16] = {0xc0000080, 0xc0000081, 0xc0000082, 0xc0000083, 0xc0000084, 0xc0000100, 0xc0000101,
		     0xc0000102, 0xc0000103, 0x277, 0x174, 0x175, 0x176, 0x10, 0x1b, 0x40000000};

static void build_pool(void)
{
	u32 a = 0x80000008, b, c = 0, d;

	__asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
	u64 maxphys = 1UL << (a & 0xff);
	const u64 v[] = {
		0, 1, 2, 3, 7, 8, 31, 32, 255, 256, 511, 512, 4095, 4096, 4097,
		~0UL, ~0UL - 1, ~0UL - 0xfff, 0x7fffffffUL, 0x80000000UL, 0xffffffffUL, 1UL << 32, (1UL << 32) | 1,
		1UL << 63, 0x7fffffffffffffffUL, NONCANON, NONCANON - 0x1000, 0xffff7fffffffffffUL,
		0xffff800000000000UL, 0x8000000000000000UL - 0x1000,
		mem_end, mem_end - 1, mem_end - 8, mem_end - 24, mem_end - 0x1000, mem_end + 0x1000,
		mem_end * 2, maxphys, maxphys - 0x1000, (1UL << 52) - 0x1000,
		0x1000, 0x8000, 0x8100, 0x9000, 0xa000, 0xb000, (u64)h_pml4, (u64)h_pt, (u64)&shinfo,
		(u64)&shinfo + 0x800, start_info->hypercall_page_gpa, (u64)canary, (u64)own_tss,
		mem_end >> 12, (mem_end >> 12) - 1, (mem_end >> 12) + 1, scratch_lo >> 12,
		PVISOR_CONSOLE_MAX, PVISOR_CONSOLE_MAX + 1, PVISOR_MMU_BATCH_MAX, PVISOR_MMU_BATCH_MAX + 1,
		PVISOR_BALLOON_MAX, PVISOR_BALLOON_MAX + 1, PVISOR_MAX_PORTS, PVISOR_MAX_PORTS - 1,
		UPCALL_VECTOR, PVISOR_ABI_VERSION,
	};
	_Static_assert(sizeof(v) / sizeof(v[0]) <= NPOOL, "pool size");
	for (u64 i = 0; i < NPOOL; i++)
		pool[i] = v[i % (sizeof(v) / sizeof(v[0]))];
	for (page_mask = 1; page_mask < (mem_end >> 12); page_mask <<= 1)
		;
	page_mask--;
}

static u64 rand_arg(void)
{
	u64 r = rnd();

	switch (r & 7) {
	case 0:
	case 1:
	case 2:
		return pool[(r >> 8) % NPOOL];
	case 3: /* a page boundary in RAM (or just above it), or just below one */
		return (((r >> 8) & page_mask) << 12) + ((r >> 40) & 1 ? 0 : 0x1000 - ((r >> 41) & 15));
	case 4:
		return msrs[(r >> 8) % 16];
	case 5:
		return (r >> 8) & 0xffff;
	case 6:
		return pool[(r >> 8) % NPOOL] + ((r >> 40) & 15) - 8;
	default:
		return rnd();
	}
}

static u64 rand_nr(void)
{
	u64 r = rnd();

	switch (r & 15) {
	case 0:
		return PVISOR_HC_COUNT + ((r >> 8) & 31);
	case 1:
		return (r >> 8) & 0xffffffffUL;
	case 2:
		return pool[(r >> 8) % NPOOL];
	default:
		return (r >> 8) % PVISOR_HC_COUNT;
	}
}

static int canonical(u64 a) { return (u64)((s64)(a << 16) >> 16) == a; }

static int in_ram(u64 gpa, u64 len)
{
	return gpa < mem_end && len <= mem_end - gpa;
}

/*
 * The scratch pages the hypervisor may read and write, the last of RAM: what
 * calls write goes to BUF (kept inside it), mmu_batch reads OPS (and, past
 * its end, GFNS, whose frame numbers are no op kind), the balloon calls read
 * GFNS; an array that runs past the end of RAM gets -EFAULT.
 */
#define SCRATCH_BUF (mem_end - 0x3000)
#define SCRATCH_OPS (mem_end - 0x2000)
#define SCRATCH_GFNS (mem_end - 0x1000)
#define NOPS (4096 / sizeof(struct pvisor_mmu_op))

/* A frame balloon calls may name: mostly scratch frames, never the guest's own. */
static u64 rand_gfn(void)
{
	u64 r = rnd(), lo = scratch_lo >> 12, hi = SCRATCH_BUF >> 12;

	switch (r & 7) {
	case 0:
		return (mem_end >> 12) + ((r >> 8) & 7); /* beyond memory */
	case 1:
		return (r & 0x100) ? ~0UL - ((r >> 9) & 3) : rnd() | 1UL << 40;
	default:
		return lo + (r >> 8) % (hi - lo);
	}
}

static u64 wake_port;
static u64 special_slot; /* the GFNS slot fix_args gave a frame in use, for one call */

/* A random op in slot i of the scratch batch, naming no page table the guest uses. */
static void rand_op(u64 i)
{
	struct pvisor_mmu_op *op = (struct pvisor_mmu_op *)SCRATCH_OPS + i;
	u64 r = rnd();

	op->kind = (r & 7) < 6 ? (r & 3) + 1 : (u32)(r >> 32);
	op->result = (s32)r;
	op->a = rand_arg();
	op->b = rand_arg();
	if (op->kind == PVISOR_MMU_OP_WRITE_PTE && op->a < mem_end)
		op->a = (u64)junk_pt + (op->a & 0xfff);
	if (op->kind == PVISOR_MMU_OP_SET_CR3 && op->a < mem_end && (op->a & 0xfff) == 0)
		op->a = (u64)h_pml4;
	if (op->kind == 0 || op->kind > PVISOR_MMU_OP_SET_CR3)
		op->kind = 5 + (u32)(r >> 40); /* unknown, never 0..4 wrapped */
}

/*
 * Makes a random call safe for the guest to survive without making it less
 * hostile to the hypervisor: arguments that would legitimately end or wreck
 * the guest are redirected to harmless ones of the same validity.
 *   - shutdown: reasons 0..2 get an upper bit (-EINVAL).
 *   - console_write: a valid non-empty range gets length 0 (no console flood).
 *   - calls that write guest memory (console_read, memory_map,
 *     measured_boot, virtio_info, virtio_config_read, vm_generation,
 *     vm_lineage): a buffer that starts in RAM moves into the scratch page
 *     BUF, its length cut to fit it. (The introspect calls write only under
 *     an operator's grant, which a hostile VM never holds: they answer 0 or
 *     -EPERM and write nothing.)
 *   - mmu_batch and the balloon calls: an array that starts in RAM moves
 *     into the scratch pages OPS or GFNS, keeping its length (so one running
 *     past the end of RAM still fails); their contents are random ops and
 *     frames that name no page the guest uses (WRITE_PTE only into a page
 *     table linked nowhere, SET_CR3 only to the guest's own).
 *   - shared_info_register, mmu_set_cr3, load_gdt, load_idt, set_tss: a
 *     request the hypervisor would accept names the guest's own page/table.
 *   - evtchn_mask/close of the port vcpu_block relies on pick another port;
 *     vcpu_block is preceded by an event on that port, so it returns at once.
 */
static void fix_args(u64 nr, u64 *a)
{
	switch (nr) {
	case PVISOR_HC_SHUTDOWN:
		if (a[0] <= PVISOR_SHUTDOWN_CRASH)
			a[0] |= 1UL << 16;
		break;
	case PVISOR_HC_CONSOLE_WRITE:
		if (a[1] && a[1] <= PVISOR_CONSOLE_MAX && in_ram(a[0], a[1]))
			a[1] = 0;
		break;
	case PVISOR_HC_CONSOLE_READ:
	case PVISOR_HC_MEMORY_MAP:
	case PVISOR_HC_MEASURED_BOOT: {
		/* What the call may write: cap bytes, cap entries, one struct. */
		u64 unit = nr == PVISOR_HC_MEMORY_MAP ? sizeof(struct pvisor_memmap_entry) : 1;
		u64 most = nr == PVISOR_HC_MEASURED_BOOT ? sizeof(struct pvisor_measured_boot) : a[1] * unit;

		if (a[0] < mem_end) {
			a[0] = SCRATCH_BUF + (a[0] & 0xff8) % (4096 - sizeof(struct pvisor_measured_boot));
			if (nr != PVISOR_HC_MEASURED_BOOT && (a[1] > 4096 / unit || most > SCRATCH_BUF + 4096 - a[0]))
				a[1] = (SCRATCH_BUF + 4096 - a[0]) / unit;
		}
		break;
	}
	case PVISOR_HC_VIRTIO_INFO:
		if (a[1] < mem_end)
			a[1] = SCRATCH_BUF + (a[1] & 0xff8) % (4096 - sizeof(struct pvisor_virtio_info));
		break;
	case PVISOR_HC_VM_GENERATION:
	case PVISOR_HC_VM_LINEAGE:
		if (a[0] < mem_end)
			a[0] = SCRATCH_BUF + (a[0] & 0xff8) % (4096 - sizeof(struct pvisor_lineage));
		break;
	case PVISOR_HC_VIRTIO_CONFIG_READ:
		if (a[2] < mem_end) {
			a[2] = SCRATCH_BUF + (a[2] & 0xff8);
			if (a[3] > SCRATCH_BUF + 4096 - a[2])
				a[3] = SCRATCH_BUF + 4096 - a[2];
		}
		break;
	case PVISOR_HC_SHARED_INFO_REGISTER:
		if (a[0] < mem_end && (a[0] & 0xfff) == 0)
			a[0] = (u64)&shinfo;
		if (a[1] >= 32 && a[1] <= 255)
			a[1] = UPCALL_VECTOR;
		break;
	case PVISOR_HC_MMU_SET_CR3:
		if (a[0] < mem_end && (a[0] & 0xfff) == 0)
			a[0] = (u64)h_pml4;
		break;
	case PVISOR_HC_MMU_BATCH:
		if (a[0] < mem_end)
			a[0] = SCRATCH_OPS + sizeof(struct pvisor_mmu_op) * (a[0] % NOPS);
		for (int i = 0; i < 4; i++)
			rand_op(rnd() % NOPS);
		break;
	case PVISOR_HC_LOAD_GDT:
		if (a[1] <= 0xffff && canonical(a[0]))
			a[0] = gdt_base(), a[1] = gdt_limit();
		break;
	case PVISOR_HC_LOAD_IDT:
		if (a[1] <= 0xffff && canonical(a[0]))
			a[0] = idt_base(), a[1] = idt_limit();
		break;
	case PVISOR_HC_SET_TSS:
		if (a[1] >= 0x67 && a[1] <= 0xffff && canonical(a[0]))
			a[0] = (u64)own_tss, a[1] = 0x67;
		break;
	case PVISOR_HC_BALLOON_OUT:
	case PVISOR_HC_BALLOON_IN: {
		u64 *g = (u64 *)SCRATCH_GFNS;

		if (a[0] < mem_end)
			a[0] = SCRATCH_GFNS + (a[0] & 0xff8);
		for (int i = 0; i < 8; i++)
			g[rnd() & 511] = rand_gfn();
		/* A frame in use, for one call: balloon_in must leave it as it is,
		 * balloon_out of the shared-info page gets -EBUSY. */
		special_slot = rnd() & 511;
		if (nr == PVISOR_HC_BALLOON_IN && (rnd() & 3) == 0)
			g[special_slot] = (u64)canary >> 12;
		if (nr == PVISOR_HC_BALLOON_OUT && (rnd() & 7) == 0)
			g[special_slot] = (u64)&shinfo >> 12;
		break;
	}
	case PVISOR_HC_EVTCHN_MASK:
	case PVISOR_HC_EVTCHN_CLOSE:
		if (a[0] == wake_port)
			a[0] ^= 1;
		break;
	}
}

#define CANARY_WORD 0xca4a41e5ca4a41e5UL

static void attack_calls(u64 count)
{
	u64 in[16], out[16], bad = 0, clobbered = 0, canary_bad = 0, shinfo_out = 0;
	long r;

	memset(call_n, 0, sizeof(call_n));
	memset(call_errs, 0, sizeof(call_errs));
	for (u64 i = 0; i < 512; i++)
		((volatile u64 *)canary)[i] = CANARY_WORD;
	for (u64 i = 0; i < NOPS; i++)
		rand_op(i);
	for (u64 i = 0; i < 512; i++)
		((u64 *)SCRATCH_GFNS)[i] = rand_gfn();
	for (int j = 1; j < 15; j++)
		in[j] = rnd(); /* the registers that are no argument keep this pattern */
	wake_port = pvisor_evtchn_bind_virq(PVISOR_VIRQ_CONSOLE, 0);
	if ((s64)wake_port < 0 || pvisor_evtchn_unmask(wake_port) != 0)
		stop("bind a wake-up port");
	for (u64 i = 0; i < count; i++) {
		u64 nr = rand_nr(), a[5];

		for (int j = 0; j < 5; j++)
			a[j] = rand_arg();
		fix_args(nr, a);
		if (nr == PVISOR_HC_VCPU_BLOCK) {
			pvisor_evtchn_unmask(wake_port);
			pvisor_evtchn_send(wake_port);
		}
		in[0] = nr;
		in[RDI] = a[0];
		in[RSI] = a[1];
		in[RDX] = a[2];
		in[R10] = a[3];
		in[R8] = a[4];
		out[15] = in[15];
		r = (long)hc_regs_probe(in, out);
		__asm__ volatile("cli" ::: "memory"); /* vcpu_block returns with IF set */
		if (nr == PVISOR_HC_SET_KERNEL_STACK || nr == PVISOR_HC_SET_IST)
			set_tss_stacks(); /* they write the loader's TSS; keep the guest's own right */
		u64 diff = 0;

		for (int j = 1; j < 15; j++)
			diff |= out[j] ^ in[j];
		if (diff)
			for (int j = 1; j < 15; j++)
				if (out[j] != in[j] && !(nr == PVISOR_HC_MSR_READ && j == RSI) && !clobbered++)
					printf("hostile: calls clobber nr=0x%lx reg=%d before=0x%lx after=0x%lx\n", nr, j,
					       in[j], out[j]);
		u64 b = nr < PVISOR_HC_COUNT ? nr : PVISOR_HC_COUNT;

		if (nr == PVISOR_HC_BALLOON_IN || nr == PVISOR_HC_BALLOON_OUT) {
			u64 *slot = (u64 *)SCRATCH_GFNS + special_slot;

			/* A balloon_out that listed the shared-info page must fail. */
			if (r >= 0 && *slot == (u64)&shinfo >> 12 && nr == PVISOR_HC_BALLOON_OUT &&
			    (u64)slot >= a[0] && (u64)slot < a[0] + a[1] * 8 && !shinfo_out++)
				printf("hostile: calls balloon_out took the shared-info page (result %ld)\n", r);
			*slot = rand_gfn();
		}

		call_n[b]++;
		if (r < 0) {
			if (-r < 128)
				call_errs[b][-r / 64] |= 1UL << (-r % 64);
			else if (!bad++)
				printf("hostile: calls bad-result nr=0x%lx result=0x%lx\n", nr, (u64)r);
		}
		if (i % 100000 == 99999)
			printf("hostile: calls progress %lu\n", i + 1);
	}
	for (u64 i = 0; i < 512; i++)
		canary_bad += ((volatile u64 *)canary)[i] != CANARY_WORD;
	/* Bring every scratch frame back for the attacks that follow. */
	u64 *g = (u64 *)SCRATCH_GFNS;
	for (u64 f = scratch_lo >> 12; f < (SCRATCH_OPS >> 12);) {
		u64 n = 0;

		while (n < 512 && f < (SCRATCH_OPS >> 12))
			g[n++] = f++;
		pvisor_balloon_in((u64)g, n);
	}
	restore_env();
	for (u64 b = 0; b < NBUCKET; b++)
		printf("hostile: call nr=%lu n=%lu errnos=0x%lx,0x%lx\n", b, call_n[b], call_errs[b][0], call_errs[b][1]);
	u64 br = bad + clobbered + (canary_bad != 0) + shinfo_out;
	printf("hostile: calls n=%lu bad=%lu clobbered=%lu canary=%lu shinfo_out=%lu breaches=%lu\n", count, bad,
	       clobbered, canary_bad, shinfo_out, br);
	breaches += br;
}

/* ---- alias: the soft TLB after flushes and balloon_out ---- */

static u64 keyaddrs[32768 + 64];

static const char *const flush_names[] = {"flush_tlb", "flush_tlb_global", "mmu_set_cr3", "mov_cr3",
					  "batch_flush", "batch_set_cr3", "invlpg", "mmu_invlpg"};
static const char *const change_names[] = {"unmap", "supervisor", "remap"};

static void flush(int m, u64 va)
{
	static struct pvisor_mmu_op op;
	u64 cr3;

	switch (m) {
	case 0:
		pvisor_mmu_flush_tlb(0);
		break;
	case 1:
		pvisor_mmu_flush_tlb(PVISOR_FLUSH_GLOBAL);
		break;
	case 2:
		pvisor_mmu_set_cr3((u64)h_pml4);
		break;
	case 3:
		__asm__ volatile("mov %%cr3, %0\n\tmov %0, %%cr3" : "=r"(cr3) : : "memory");
		break;
	case 4:
	case 5:
		op.kind = m == 4 ? PVISOR_MMU_OP_FLUSH_TLB : PVISOR_MMU_OP_SET_CR3;
		op.a = m == 4 ? 0 : (u64)h_pml4;
		op.b = 0;
		pvisor_mmu_batch((u64)&op, 1);
		break;
	case 6:
		__asm__ volatile("invlpg (%0)" : : "r"(va) : "memory");
		break;
	default:
		pvisor_mmu_invlpg(va);
	}
}

/* The non-canonical aliases of va: the tags one flush can produce, others. */
static u64 aliases(u64 va, u64 *out, u64 random_keys, int all_keys)
{
	u64 n = 0;

	for (int j = 1; j <= 15; j++)
		out[n++] = va ^ (((1UL << j) - 1) << 48);
	out[n++] = va | 1UL << 47;
	out[n++] = va | 1UL << 63;
	out[n++] = va ^ 0xffff000000000000UL;
	out[n++] = va ^ 0x7fff000000000000UL;
	out[n++] = va ^ 0x8000800000000000UL;
	out[n++] = va | 0x0000800000000000UL | 1UL << 62;
	if (all_keys)
		for (u64 k = 1; k < 0x8000; k++)
			out[n++] = va ^ (k << 48);
	else
		for (u64 i = 0; i < random_keys; i++)
			out[n++] = va ^ ((1 + rnd() % 0x7fff) << 48);
	return n;
}

static void attack_alias(u64 rounds, u64 keys)
{
	u64 probes = 0, hits = 0, landed = 0, bad = 0, stale = 0;
	int told = 0;

	memcpy(ucode, probe_r, probe_r_end - probe_r);
	memcpy(ucode + UPROBE_W, probe_w, probe_w_end - probe_w);

	for (u64 r = 0; r < rounds; r++) {
		int m = r % 8, c = (r / 8) % 3, t = (r / 24) % 2 ? 3 : 0;
		u64 va = ALIAS_VA + ((r % 64) << 12), *pte = &a_pt[(va >> 12) & 511];
		u64 secret = 0x5ec2e75ec2e70000UL | r, other = 0x0b0b0b0b0b0b0b0bUL, matched, b, h, n;

		for (int i = 0; i < 512; i++) {
			((volatile u64 *)frame_a)[i] = secret;
			((volatile u64 *)frame_b)[i] = other;
		}
		*(volatile u64 *)pte = (u64)frame_a | PTE_P | PTE_RW | PTE_US;
		pvisor_mmu_flush_tlb(0);
		/* Touch: the TLB now holds va -> frame_a. */
		h = probe(t, 0, &va, 1, secret, &matched, &b);
		if (h != 1 || matched != 1 || b) {
			bad++;
			printf("hostile: alias setup round=%lu ring=%d: va 0x%lx did not read its frame\n", r, t, va);
			continue;
		}
		if (m >= 6)
			pvisor_mmu_flush_tlb(0); /* an older-key entry the page flush must not miss */
		if (c == 0)
			*(volatile u64 *)pte = 0;
		else if (c == 1)
			*(volatile u64 *)pte = (u64)frame_a | PTE_P | PTE_RW;
		else
			*(volatile u64 *)pte = (u64)frame_b | PTE_P | PTE_RW | PTE_US;
		flush(m, va);

		n = aliases(va, keyaddrs, keys, r % 16 == 0);
		u64 h0 = probe(0, 0, keyaddrs, n, secret, &matched, &b);
		bad += b;
		u64 nu = n < 256 ? n : 256;
		u64 h3 = probe(3, 0, keyaddrs, nu, secret, 0, &b);
		bad += b;
		/* Writes through the aliases must land nowhere. */
		u64 hw = probe(0, 1, keyaddrs, 21, 0xdeadbeefdeadbeefUL, 0, &b);
		bad += b;
		u64 changed = 0;
		for (int i = 0; i < 512; i++)
			changed += ((volatile u64 *)frame_a)[i] != secret;
		probes += n + nu + 21;
		/* The page itself: gone, supervisor-only, or the other frame. */
		u64 hv = 0, vm;
		if (c == 0)
			hv = probe(0, 0, &va, 1, secret, 0, &b) + probe(3, 0, &va, 1, secret, 0, &b);
		else if (c == 1)
			hv = probe(3, 0, &va, 1, secret, 0, &b);
		else if (probe(0, 0, &va, 1, other, &vm, &b) != 1 || vm != 1)
			hv = 1;
		stale += hv;
		hits += h0 + h3 + hw;
		landed += changed != 0;
		if ((h0 || h3 || hw || changed || hv) && told++ < 4)
			printf("hostile: alias hit round=%lu touch=ring%d change=%s flush=%s: ring-0 reads %lu, ring-3 "
			       "reads %lu, writes %lu (frame words changed %lu), page itself %lu\n",
			       r, t, change_names[c], flush_names[m], h0, h3, hw, changed, hv);
		*(volatile u64 *)pte = 0;
		pvisor_mmu_invlpg(va);
	}

	/* A frame given back: writes through its old mapping and aliases are dropped. */
	u64 brounds = rounds / 8 + 1, blanded = 0, bhits = 0;
	for (u64 r = 0; r < brounds; r++) {
		u64 va = ALIAS_VA + ((64 + r % 64) << 12), *pte = &a_pt[(va >> 12) & 511];
		u64 frame = scratch_lo + ((r % 64) << 12), gfn = frame >> 12, b, matched, n;
		u64 val = 0x1a4d1a4d00000000UL | r;

		*(volatile u64 *)pte = frame | PTE_P | PTE_RW | PTE_US;
		pvisor_mmu_flush_tlb(0);
		probe(0, 1, &va, 1, val, 0, &b); /* a writable TLB entry */
		if (r & 1)
			pvisor_mmu_flush_tlb(0); /* and an older key's */
		if (pvisor_balloon_out((u64)&gfn, 1) != 1) {
			bad++;
			printf("hostile: alias balloon_out of frame 0x%lx failed\n", gfn);
			continue;
		}
		n = aliases(va, keyaddrs, keys / 4, 0);
		keyaddrs[n++] = va;
		keyaddrs[n++] = frame;
		u64 h = probe(0, 1, keyaddrs, n, 0x7e57000000000000UL | r, 0, &b);
		/* va and frame take the write (and drop it); no alias may. */
		bhits += h > 2 ? h - 2 : 0;
		bad += b + (h < 2);
		if (probe(0, 0, &va, 1, ~0UL, &matched, &b) != 1 || matched != 1) {
			bhits++;
			printf("hostile: alias ballooned frame 0x%lx does not read all-ones through va\n", gfn);
		}
		if (pvisor_balloon_in((u64)&gfn, 1) != 1) {
			bad++;
			continue;
		}
		u64 nz = 0;
		for (int i = 0; i < 512; i++)
			nz += ((volatile u64 *)frame)[i] != 0;
		blanded += nz != 0;
		if (nz && told++ < 8)
			printf("hostile: alias write landed in ballooned frame 0x%lx: %lu words nonzero after balloon_in\n",
			       gfn, nz);
		probes += n + 1;
		*(volatile u64 *)pte = 0;
		pvisor_mmu_invlpg(va);
	}
	pvisor_mmu_flush_tlb(0);
	u64 br = hits + landed + stale + bad + bhits + blanded;
	printf("hostile: alias rounds=%lu balloon_rounds=%lu probes=%lu gp=%lu pf=%lu hits=%lu landed=%lu stale=%lu "
	       "balloon_hits=%lu balloon_landed=%lu bad=%lu breaches=%lu\n",
	       rounds, brounds, probes, hr.gp, hr.pf, hits, landed, stale, bhits, blanded, bad, br);
	breaches += br;
}

/* ---- int: INT n from ring 3 through DPL-0 gates ---- */

static void attack_int(void)
{
	u64 ok = 0, wrong = 0, told = 0, top = (u64)ustack + sizeof(ustack);
	struct {
		u8 len, bytes[3];
		u64 vector, error, rip_off;
		const char *name;
	} extra[] = {
		{1, {0xcc}, 13, (3 << 3) | 2, 0, "int3"},
		{1, {0xce}, 6, 0, 0, "into"},
		{1, {0xf1}, 1, 0, 1, "icebp"},
	};

	hr.doubles = 0;
	for (int n = 0; n < 256 + 3; n++) {
		u64 want_v = 13, want_e = ((u64)n << 3) | 2, want_rip = (u64)ucode;
		const char *name = "int";

		memset(ucode, 0xcc, 64);
		if (n < 256) {
			ucode[0] = 0xcd;
			ucode[1] = (u8)n;
			ucode[2] = 0x0f;
			ucode[3] = 0x0b;
		} else {
			int e = n - 256;

			memcpy(ucode, extra[e].bytes, extra[e].len);
			ucode[extra[e].len] = 0x0f;
			ucode[extra[e].len + 1] = 0x0b;
			want_v = extra[e].vector;
			want_e = extra[e].error;
			want_rip += extra[e].rip_off;
			name = extra[e].name;
		}
		run(3, (u64)ucode, top, 0x2, uregs_default);
		if (hr.vector == want_v && hr.error == want_e && hr.rip == want_rip && hr.cs == SEL_UCODE && hr.count == 1) {
			ok++;
			continue;
		}
		wrong++;
		if (told++ < 8)
			printf("hostile: int wrong %s 0x%x: vector %lu error 0x%lx rip 0x%lx cs 0x%lx (want vector %lu "
			       "error 0x%lx rip 0x%lx)\n",
			       name, n & 255, hr.vector, hr.error, hr.rip, hr.cs, want_v, want_e, want_rip);
	}
	u64 br = wrong + hr.doubles;
	printf("hostile: int tried=%d ok=%lu wrong=%lu double=%lu breaches=%lu\n", 256 + 3, ok, wrong, hr.doubles, br);
	breaches += br;
}

/* ---- ud: instruction forms engines leave out, and random bytes, in rings 0 and 3 ---- */

enum {
	S_NONE,
	S_IRETQ,  /* 8-byte frame, same ring */
	S_IRETD,  /* 4-byte frame */
	S_IRETW,  /* 2-byte frame */
	S_LRETQ,  /* far return, 8-byte slots */
	S_LRETD,  /* 4-byte slots */
	S_LRETW,  /* 2-byte slots */
	S_TO3Q,   /* ring 0 -> ring 3: lretq / iretq with RSP and SS */
	S_FAR32,  /* m16:32 far pointer to a 32-bit code segment */
	S_FAR64,  /* m16:64 far pointer, same code segment */
	S_FAR16,  /* m16:16 far pointer */
};
#define R0 1
#define R3 2
#define X87 "\xdb\xe3\xd9\xe8\xd9\xe8" /* fninit; fld1; fld1 */

static const struct form {
	const char *name;
	const char *bytes;
	u8 len, stack, rings;
} forms[] = {
	{"fsin", X87 "\xd9\xfe", 8, 0, R0 | R3},
	{"fcos", X87 "\xd9\xff", 8, 0, R0 | R3},
	{"fsincos", X87 "\xd9\xfb", 8, 0, R0 | R3},
	{"fptan", X87 "\xd9\xf2", 8, 0, R0 | R3},
	{"fpatan", X87 "\xd9\xf3", 8, 0, R0 | R3},
	{"fyl2x", X87 "\xd9\xf1", 8, 0, R0 | R3},
	{"fyl2xp1", X87 "\xd9\xf9", 8, 0, R0 | R3},
	{"f2xm1", X87 "\xd9\xf0", 8, 0, R0 | R3},
	{"fprem", X87 "\xd9\xf8", 8, 0, R0 | R3},
	{"fprem1", X87 "\xd9\xf5", 8, 0, R0 | R3},
	{"fscale", X87 "\xd9\xfd", 8, 0, R0 | R3},
	{"frndint", X87 "\xd9\xfc", 8, 0, R0 | R3},
	{"fxtract", X87 "\xd9\xf4", 8, 0, R0 | R3},
	{"fbstp", X87 "\xdf\x33", 8, 0, R0 | R3},
	{"fbld", X87 "\xdf\x23", 8, 0, R0 | R3},
	{"fsave-frstor", X87 "\xdd\x33\xdd\x23", 10, 0, R0 | R3},
	{"fxsave64-fxrstor64", "\x48\x0f\xae\x03\x48\x0f\xae\x0b", 8, 0, R0 | R3},
	{"movq-mm", "\x0f\x6f\xc1", 3, 0, R0 | R3},
	{"paddb-mm", "\x0f\xfc\xc1", 3, 0, R0 | R3},
	{"pxor-mm", "\x0f\xef\xc0", 3, 0, R0 | R3},
	{"movd-mm-eax", "\x0f\x6e\xc0", 3, 0, R0 | R3},
	{"movd-eax-mm", "\x0f\x7e\xc0", 3, 0, R0 | R3},
	{"pmaddwd-mm", "\x0f\xf5\xc1", 3, 0, R0 | R3},
	{"punpcklbw-mm", "\x0f\x60\xc1", 3, 0, R0 | R3},
	{"psrlw-mm-imm", "\x0f\x71\xd0\x02", 4, 0, R0 | R3},
	{"pshufw-mm", "\x0f\x70\xc1\x1b", 4, 0, R0 | R3},
	{"pmovmskb-mm", "\x0f\xd7\xc1", 3, 0, R0 | R3},
	{"movq-mem-mm", "\x0f\x7f\x03", 3, 0, R0 | R3},
	{"maskmovq", "\x0f\xf7\xc1", 3, 0, R0 | R3},
	{"emms", "\x0f\x77", 2, 0, R0 | R3},
	{"rex-then-66 (44 66 03 03)", "\x44\x66\x03\x03", 4, 0, R0 | R3},
	{"two-rex xadd (4f 48 0f c1 c0)", "\x4f\x48\x0f\xc1\xc0", 5, 0, R0 | R3},
	{"pshufb", "\x66\x0f\x38\x00\xc1", 5, 0, R0 | R3},
	{"palignr", "\x66\x0f\x3a\x0f\xc1\x08", 6, 0, R0 | R3},
	{"ptest", "\x66\x0f\x38\x17\xc1", 5, 0, R0 | R3},
	{"pcmpistri", "\x66\x0f\x3a\x63\xc1\x00", 6, 0, R0 | R3},
	{"crc32", "\xf2\x0f\x38\xf1\xc1", 5, 0, R0 | R3},
	{"popcnt", "\xf3\x0f\xb8\xc0", 4, 0, R0 | R3},
	{"lzcnt", "\xf3\x0f\xbd\xc0", 4, 0, R0 | R3},
	{"tzcnt", "\xf3\x0f\xbc\xc0", 4, 0, R0 | R3},
	{"movbe", "\x0f\x38\xf0\x03", 4, 0, R0 | R3},
	{"aesenc", "\x66\x0f\x38\xdc\xc1", 5, 0, R0 | R3},
	{"pclmulqdq", "\x66\x0f\x3a\x44\xc1\x00", 6, 0, R0 | R3},
	{"adcx", "\x66\x0f\x38\xf6\xc0", 5, 0, R0 | R3},
	{"rdrand", "\x0f\xc7\xf0", 3, 0, R0 | R3},
	{"rdseed", "\x0f\xc7\xf8", 3, 0, R0 | R3},
	{"rdpid", "\xf3\x0f\xc7\xf8", 4, 0, R0 | R3},
	{"rdtscp", "\x0f\x01\xf9", 3, 0, R0 | R3},
	{"xgetbv", "\x0f\x01\xd0", 3, 0, R0 | R3},
	{"endbr64", "\xf3\x0f\x1e\xfa", 4, 0, R0 | R3},
	{"vzeroupper", "\xc5\xf8\x77", 3, 0, R0 | R3},
	{"vaddps", "\xc5\xf8\x58\xc1", 4, 0, R0 | R3},
	{"evex vaddps", "\x62\xf1\x7c\x48\x58\xc1", 6, 0, R0 | R3},
	{"xop", "\x8f\xe9\x78\xc2\xc1\x05", 6, 0, R0 | R3},
	{"salc", "\xd6", 1, 0, R0 | R3},
	{"aam", "\xd4\x0a", 2, 0, R0 | R3},
	{"daa", "\x27", 1, 0, R0 | R3},
	{"push-es", "\x06", 1, 0, R0 | R3},
	{"callf-ptr", "\x9a\x00\x00\x00\x00\x10\x00", 7, 0, R0 | R3},
	{"lock-nop", "\xf0\x90", 2, 0, R0 | R3},
	{"lock-add-reg", "\xf0\x01\xc0", 3, 0, R0 | R3},
	{"ud0", "\x0f\xff\xc0", 3, 0, R0 | R3},
	{"ud1", "\x0f\xb9\xc0", 3, 0, R0 | R3},
	{"prefetchw", "\x0f\x0d\x0b", 3, 0, R0 | R3},
	{"clflushopt", "\x66\x0f\xae\x3b", 4, 0, R0 | R3},
	{"clwb", "\x66\x0f\xae\x33", 4, 0, R0 | R3},
	{"cmpxchg16b", "\x48\x0f\xc7\x0b", 4, 0, R0 | R3},
	{"movnti", "\x48\x0f\xc3\x03", 4, 0, R0 | R3},
	{"xlat", "\xd7", 1, 0, R0 | R3},
	{"enter-nested", "\xc8\x10\x00\x02", 4, 0, R0 | R3},
	{"enter16", "\x66\xc8\x10\x00\x01", 5, 0, R0 | R3},
	{"xbegin", "\xc7\xf8\x00\x00\x00\x00", 6, 0, R0 | R3},
	{"xend", "\x0f\x01\xd5", 3, 0, R0 | R3},
	{"xtest", "\x0f\x01\xd6", 3, 0, R0 | R3},
	{"serialize", "\x0f\x01\xe8", 3, 0, R0 | R3},
	{"clac", "\x0f\x01\xca", 3, 0, R0 | R3},
	{"rdpkru", "\x0f\x01\xee", 3, 0, R0 | R3},
	{"wrpkru", "\x0f\x01\xef", 3, 0, R3},
	{"sgdt", "\x0f\x01\x03", 3, 0, R0 | R3},
	{"smsw", "\x0f\x01\xe0", 3, 0, R0 | R3},
	{"str", "\x0f\x00\xc8", 3, 0, R0 | R3},
	{"sldt", "\x0f\x00\xc0", 3, 0, R0 | R3},
	{"lar", "\x0f\x02\xc0", 3, 0, R0 | R3},
	{"lsl", "\x0f\x03\xc0", 3, 0, R0 | R3},
	{"verr", "\x0f\x00\xe0", 3, 0, R0 | R3},
	{"movsxd", "\x48\x63\xc0", 3, 0, R0 | R3},
	{"mov-r-cs", "\x8c\xc8", 2, 0, R0 | R3},
	{"rdmsr-unknown", "\x0f\x32", 2, 0, R0 | R3},
	{"wrmsr-unknown", "\x0f\x30", 2, 0, R0 | R3},
	{"rdpmc", "\x0f\x33", 2, 0, R0 | R3},
	{"mov-from-cr0", "\x0f\x20\xc0", 3, 0, R0 | R3},
	{"mov-from-cr8", "\x44\x0f\x20\xc0", 4, 0, R0 | R3},
	{"mov-from-dr7", "\x0f\x21\xf8", 3, 0, R0 | R3},
	{"clts", "\x0f\x06", 2, 0, R0 | R3},
	{"wbinvd", "\x0f\x09", 2, 0, R0 | R3},
	{"invd", "\x0f\x08", 2, 0, R0 | R3},
	{"in", "\xe4\x80", 2, 0, R0 | R3},
	{"insb", "\x6c", 1, 0, R0 | R3},
	{"outsb", "\x6e", 1, 0, R0 | R3},
	{"swapgs-twice", "\x0f\x01\xf8\x0f\x01\xf8", 6, 0, R0 | R3},
	{"monitor", "\x0f\x01\xc8", 3, 0, R0 | R3},
	{"invlpg", "\x0f\x01\x3b", 3, 0, R0 | R3},
	{"invpcid", "\x66\x0f\x38\x82\x03", 5, 0, R0 | R3},
	{"getsec", "\x0f\x37", 2, 0, R0 | R3},
	{"rsm", "\x0f\xaa", 2, 0, R0 | R3},
	{"vmxon", "\xf3\x0f\xc7\x33", 4, 0, R0 | R3},
	{"vmread", "\x0f\x78\xc0", 3, 0, R0 | R3},
	{"invept", "\x66\x0f\x38\x80\x03", 5, 0, R0 | R3},
	{"sysenter", "\x0f\x34", 2, 0, R0 | R3},
	{"sysexit", "\x0f\x35", 2, 0, R0 | R3},
	{"hlt", "\xf4", 1, 0, R3},
	{"syscall", "\x0f\x05", 2, 0, R3},
	{"sysretq", "\x48\x0f\x07", 3, 0, R3},
	{"vmcall", "\x0f\x01\xc1", 3, 0, R3},
	{"vmmcall", "\x0f\x01\xd9", 3, 0, R3},
	{"lgdt", "\x0f\x01\x13", 3, 0, R3},
	{"lidt", "\x0f\x01\x1b", 3, 0, R3},
	{"ltr", "\x0f\x00\xd8", 3, 0, R3},
	{"mov-to-cr0", "\x0f\x22\xc0", 3, 0, R3},
	{"mov-to-dr0", "\x0f\x23\xc0", 3, 0, R3},
	{"cli", "\xfa", 1, 0, R3},
	{"iretq", "\x48\xcf", 2, S_IRETQ, R0 | R3},
	{"iretd", "\xcf", 1, S_IRETD, R0 | R3},
	{"iretw", "\x66\xcf", 2, S_IRETW, R0 | R3},
	{"lretq", "\x48\xcb", 2, S_LRETQ, R0 | R3},
	{"lretd", "\xcb", 1, S_LRETD, R0 | R3},
	{"lretw", "\x66\xcb", 2, S_LRETW, R0 | R3},
	{"lretd-imm", "\xca\x08\x00", 3, S_LRETD, R0 | R3},
	{"lretq-to-ring3", "\x48\xcb", 2, S_TO3Q, R0},
	{"iretq-to-ring3", "\x48\xcf", 2, S_TO3Q, R0},
	{"ljmp-m16:32-to-32-bit", "\xff\x2c\x24", 3, S_FAR32, R0 | R3},
	{"lcall-m16:32-to-32-bit", "\xff\x1c\x24", 3, S_FAR32, R0 | R3},
	{"ljmp-m16:64", "\x48\xff\x2c\x24", 4, S_FAR64, R0 | R3},
	{"lcall-m16:64", "\x48\xff\x1c\x24", 4, S_FAR64, R0 | R3},
	{"ljmp-m16:16", "\x66\xff\x2c\x24", 4, S_FAR16, R0 | R3},
	{"lcall-m16:16", "\x66\xff\x1c\x24", 4, S_FAR16, R0 | R3},
};

#define PAD_OFF 2048 /* returns and far jumps land here: ud2 in every mode */

/* The stack slots each control-transfer form pops: slot size, slots, and a far pointer's selector. */
static const struct {
	u8 size, slots, far;
} shapes[] = {
	[S_IRETQ] = {8, 5, 0}, [S_IRETD] = {4, 5, 0}, [S_IRETW] = {2, 5, 0}, [S_LRETQ] = {8, 2, 0},
	[S_LRETD] = {4, 2, 0}, [S_LRETW] = {2, 2, 0}, [S_TO3Q] = {8, 5, 0}, [S_FAR32] = {4, 1, 1},
	[S_FAR64] = {8, 1, 1}, [S_FAR16] = {2, 1, 1},
};

/*
 * Writes the stack image a control-transfer form consumes below top and
 * returns the stack pointer: an IRET frame (RIP, CS, RFLAGS, RSP, SS), a far
 * return's RIP and CS, or a far pointer, each aiming at the ud2 padding; to
 * ring 3 (S_TO3Q) at the user page's padding, lretq taking no RFLAGS slot.
 */
static u64 stack_image(int kind, int ring, const u8 *code, u64 top)
{
	u64 sp = top - 256, o = 0;
	u64 cs = ring == 3 ? SEL_UCODE : SEL_KCODE, ss = ring == 3 ? SEL_UDATA : SEL_KDATA;
	u64 v[5] = {(u64)code + PAD_OFF, cs, 0x2, sp + 128, ss};

	if (kind == S_FAR32)
		v[1] = ring == 3 ? 0x23 : 0x08; /* the 32-bit code segments */
	if (kind == S_TO3Q) {
		u64 to3[5] = {(u64)ucode + PAD_OFF, SEL_UCODE, 0x2, (u64)ustack + sizeof(ustack) - 64, SEL_UDATA};

		memcpy(v, to3, sizeof(v));
	}
	for (int i = 0; i < shapes[kind].slots; i++) {
		if (kind == S_TO3Q && code[1] == 0xcb && i == 2)
			continue; /* lretq: RIP, CS, RSP, SS */
		memcpy((u8 *)sp + o, &v[i], shapes[kind].size);
		o += shapes[kind].size;
	}
	if (shapes[kind].far)
		memcpy((u8 *)sp + o, &v[1], 2);
	return sp;
}

static void fill_code(u8 *code, const u8 *bytes, u64 len)
{
	for (u64 i = 0; i < 4096; i += 2)
		code[i] = 0x0f, code[i + 1] = 0x0b;
	memcpy(code, bytes, len);
	if (len & 1)
		code[len] = 0x90; /* keep the ud2 padding aligned after the form */
}

/* Runs one byte string; returns 1 if it ran to the padding, 0 if it trapped. */
static int run_form(int ring, const u8 *bytes, u64 len, int stack, u64 *regs, u64 rflags)
{
	u8 *code = ring == 3 ? ucode : kcode;
	u64 top = ring == 3 ? (u64)ustack + sizeof(ustack) : (u64)kstack + sizeof(kstack), sp = top - 512;

	fill_code(code, bytes, len);
	if (stack == S_TO3Q)
		fill_code(ucode, 0, 0); /* where it lands */
	if (stack)
		sp = stack_image(stack, ring, code, top);
	run(ring, (u64)code, sp, rflags, regs);
	if (stack == S_TO3Q)
		return hr.vector == 6 && hr.rip == (u64)ucode + PAD_OFF && hr.cs == SEL_UCODE;
	return hr.vector == 6 && hr.rip >= (u64)code + len && hr.rip < (u64)code + 4096;
}

static void attack_ud(u64 first, u64 samples)
{
	u64 nforms = 0, ran = 0, trapped = 0, bad = 0, vecs = 0;
	pv_u64 efer = 0;

	hr.doubles = 0;
	/* SYSCALL raises #UD and SYSENTER #GP: ring 3 has no way into ring 0 but traps. */
	pvisor_msr_read(0xc0000080, &efer);
	pvisor_msr_write(0xc0000080, efer & ~1UL);
	pvisor_msr_write(0x174, 0);
	for (u64 i = first; i < sizeof(forms) / sizeof(forms[0]); i++) {
		const struct form *f = &forms[i];

		for (int ring = 0; ring <= 3; ring += 3) {
			if (!(f->rings & (ring == 3 ? R3 : R0)))
				continue;
			int r = run_form(ring, (const u8 *)f->bytes, f->len, f->stack, ring == 3 ? uregs_default : kregs_default,
					 0x2);
			nforms++;
			if (r)
				ran++;
			else
				trapped++;
			if (hr.vector >= 32 || hr.vector == 8)
				bad++;
			else
				vecs |= 1UL << hr.vector;
			printf("hostile: ud ring=%d form=%lu \"%s\" %s vector=%ld error=0x%lx rip=+0x%lx cs=0x%lx\n",  ring, i,
			       f->name, r ? "ran" : "trapped", (long)hr.vector, hr.error,
			       hr.rip - (u64)(ring == 3 ? ucode : kcode), hr.cs);
		}
	}

	/* Random byte strings in ring 3, a timer upcall as the watchdog. */
	long tp = pvisor_evtchn_bind_virq(PVISOR_VIRQ_TIMER, 0);

	if (tp < 0 || pvisor_evtchn_unmask(tp) != 0)
		stop("bind the timer port");
	shinfo.vcpu[0].upcall_mask = 0;
	static const u8 lead[] = {0x0f, 0x0f, 0x0f, 0x66, 0xf2, 0xf3, 0xf0, 0x48, 0x4f, 0x41, 0xc4, 0xc5, 0x8f,
				  0x62, 0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0x26, 0x64, 0x65, 0x67};
	u64 rran = 0, rtrap = 0, rbad = 0;
	hr.timeouts = 0;
	for (u64 s = 0; s < samples; s++) {
		u8 b[15];
		u64 regs[16];

		for (int i = 0; i < 15; i++)
			b[i] = (u8)rnd();
		for (u64 r = rnd(), i = 0; i < (r & 3); i++)
			b[i] = lead[(r >> (8 + 8 * i)) % sizeof(lead)];
		if ((b[0] == 0x0f || b[1] == 0x0f) && (rnd() & 1))
			b[b[0] == 0x0f ? 1 : 2] = (rnd() & 1) ? 0x38 : 0x3a;
		for (int i = 0; i < 15; i++)
			regs[i] = (rnd() & 1) ? rnd() : uregs_default[i];
		watchdog = 1;
		pvisor_timer_set(pvclock_now() + 2000000);
		int r = run_form(3, b, 15, 0, regs, 0x202);
		watchdog = 0;
		pvisor_timer_set(0);
		__atomic_fetch_and(&shinfo.evtchn_pending[tp / 64], ~(1UL << (tp % 64)), __ATOMIC_SEQ_CST);
		shinfo.vcpu[0].upcall_pending = 0;
		if (r)
			rran++;
		else
			rtrap++;
		if (hr.vector == 8 || (hr.vector >= 32 && hr.vector != UPCALL_VECTOR)) {
			if (!rbad++)
				printf("hostile: ud random bad vector %lu from %02x %02x %02x %02x %02x %02x\n", hr.vector, b[0],
				       b[1], b[2], b[3], b[4], b[5]);
		} else if (hr.vector < 32) {
			vecs |= 1UL << hr.vector;
		}
		if (s % 1000 == 999)
			printf("hostile: ud random progress %lu\n", s + 1);
	}
	pvisor_evtchn_close(tp);
	pvisor_msr_write(0xc0000080, efer);
	u64 br = bad + rbad + hr.doubles;
	printf("hostile: ud forms=%lu ran=%lu trapped=%lu random=%lu random_ran=%lu random_trapped=%lu timeouts=%lu "
	       "vectors=0x%lx double=%lu bad=%lu breaches=%lu\n",
	       nforms, ran, trapped, samples, rran, rtrap, hr.timeouts, vecs, hr.doubles, bad + rbad, br);
	breaches += br;
}

/* ---- timer: expiry while the VIRQ is unbound or masked, then vcpu_block ---- */

/*
 * A block that returns "at once" takes a hypercall, well under this once the
 * time the vCPU waited for a worker (its steal time) is taken out. A block
 * that sleeps until some unrelated event (a device tick) takes longer.
 */
#define TIMER_SLOW 20000000 /* ns */

static const char *const timer_names[] = {"unbound-then-bound", "masked", "masked-then-unmasked", "unbound"};

static void attack_timer(u64 rounds)
{
	u64 slow = 0, worst = 0, quick = 0, slow_by[4] = {0};

	for (u64 r = 0; r < rounds; r++) {
		int v = r % 4;
		u64 d = 20000 + rnd() % 480000, deadline;
		long tp = -1;

		if (r < 4)
			printf("hostile: timer variant=%s\n", timer_names[v]); /* where a VM that dies here was */
		__asm__ volatile("cli" ::: "memory");
		shinfo.vcpu[0].upcall_mask = 1;
		if (v == 1 || v == 2)
			tp = pvisor_evtchn_bind_virq(PVISOR_VIRQ_TIMER, 0); /* ports start masked */
		deadline = pvclock_now() + d;
		pvisor_timer_set(deadline);
		while (pvclock_now() < deadline + 20000)
			pvisor_version(); /* exits: the hypervisor sees the expiry now, with nowhere to send it */
		if (v == 0) {
			tp = pvisor_evtchn_bind_virq(PVISOR_VIRQ_TIMER, 0);
			pvisor_evtchn_unmask(tp);
		} else if (v == 2) {
			pvisor_evtchn_unmask(tp);
		}
		volatile pv_u64 *steal = &shinfo.vcpu[0].steal_ns;
		u64 s0 = *steal, t0 = pvclock_now();

		pvisor_vcpu_block();
		u64 t = pvclock_now() - t0, st = *steal - s0;

		t = t > st ? t - st : 0;

		__asm__ volatile("cli" ::: "memory");
		if (t > worst)
			worst = t;
		quick += t < 1000000;
		if (t > TIMER_SLOW) {
			if (!slow_by[v]++)
				printf("hostile: timer %s: vcpu_block took %lu us after the expiry\n", timer_names[v], t / 1000);
			slow++;
		}
		if (tp >= 0)
			pvisor_evtchn_close(tp);
		shinfo.vcpu[0].upcall_pending = 0;
		shinfo.vcpu[0].upcall_mask = 0;
	}
	printf("hostile: timer rounds=%lu under_1ms=%lu slow=%lu (%s %lu, %s %lu, %s %lu, %s %lu) worst_us=%lu "
	       "breaches=%lu\n",
	       rounds, quick, slow, timer_names[0], slow_by[0], timer_names[1], slow_by[1], timer_names[2], slow_by[2],
	       timer_names[3], slow_by[3], worst / 1000, slow);
	breaches += slow;
}

/* ---- unaligned: accesses straddling unbacked memory ---- */

/* The access forms: loads to RAX ([rsi]), stores of RBX; 16 bytes through XMM0 and [rdi]. */
static const struct {
	u8 size, write, len;
	const char *bytes;
} acc[] = {
	{2, 0, 4, "\x66\x8b\x06\x90"},
	{4, 0, 2, "\x8b\x06"},
	{8, 0, 4, "\x48\x8b\x06\x90"},
	{16, 0, 8, "\xf3\x0f\x6f\x06\xf3\x0f\x7f\x07"},
	{2, 1, 4, "\x66\x89\x1e\x90"},
	{4, 1, 2, "\x89\x1e"},
	{8, 1, 4, "\x48\x89\x1e\x90"},
	{16, 1, 8, "\xf3\x0f\x6f\x07\xf3\x0f\x7f\x06"},
};

static u64 un_n, un_wrong, un_faults;

/* One access at addr, whose bytes below split are backed and from split on are not (or the reverse). */
static void unaligned_at(u64 addr, u64 split, int backed_low)
{
	static u64 regs[16];
	u8 *src = kdata + 8192, *dst = kdata + 8192 + 64;

	for (u64 i = 0; i < sizeof(acc) / sizeof(acc[0]); i++) {
		u64 sz = acc[i].size;
		u8 pat[16], want[16], got[16];

		if (addr >= split || addr + sz <= split)
			continue;
		for (u64 j = 0; j < 16; j++) {
			pat[j] = (u8)(0x11 * (j + 1));
			src[j] = pat[j];
		}
		/* Backed bytes hold a known pattern first. */
		for (u64 j = 0; j < sz; j++) {
			int backed = (addr + j < split) == backed_low;

			if (backed)
				*(volatile u8 *)(addr + j) = (u8)(0xa0 + j);
		}
		memcpy(regs, kregs_default, sizeof(regs));
		regs[RSI] = addr;
		regs[RDI] = acc[i].size == 16 && acc[i].write ? (u64)src : (u64)dst;
		memcpy(&regs[RBX], pat, 8);
		memset(dst, 0x5a, 16);
		un_n++;
		if (!run_form(0, (const u8 *)acc[i].bytes, acc[i].len, 0, regs, 0x2)) {
			if (un_faults++ < 4)
				printf("hostile: unaligned %s of %lu bytes at 0x%lx raised vector %lu (error 0x%lx)\n",
				       acc[i].write ? "write" : "read", sz, addr, hr.vector, hr.error);
			continue;
		}
		if (!acc[i].write) {
			for (u64 j = 0; j < sz; j++)
				want[j] = ((addr + j < split) == backed_low) ? (u8)(0xa0 + j) : 0xff;
			if (sz == 16)
				memcpy(got, dst, 16);
			else
				memcpy(got, (const void *)&hr.f.rax, sz);
		} else {
			for (u64 j = 0; j < sz; j++) {
				int backed = (addr + j < split) == backed_low;

				want[j] = backed ? pat[j] : 0xff;
				got[j] = *(volatile u8 *)(addr + j);
			}
		}
		if (memcmp(got, want, sz) != 0 && un_wrong++ < 4)
			printf("hostile: unaligned %s of %lu bytes at 0x%lx: got %02x%02x%02x%02x... want %02x%02x%02x%02x...\n",
			       acc[i].write ? "write" : "read", sz, addr, got[0], got[1], got[2], got[3], want[0], want[1],
			       want[2], want[3]);
	}
}

static void attack_unaligned(void)
{
	u64 frame = scratch_lo + 0x10000, gfn = frame >> 12;

	printf("hostile: unaligned phase=ram-end\n");
	for (u64 k = 1; k <= 15; k++)
		unaligned_at(mem_end - k, mem_end, 1);
	printf("hostile: unaligned phase=ballooned-frame\n");
	if (pvisor_balloon_out((u64)&gfn, 1) != 1)
		stop("balloon_out for the unaligned attack");
	for (u64 k = 1; k <= 15; k++) {
		unaligned_at(frame - k, frame, 1);
		unaligned_at(frame + 4096 - k, frame + 4096, 0);
	}
	if (pvisor_balloon_in((u64)&gfn, 1) != 1)
		stop("balloon_in for the unaligned attack");
	u64 br = un_wrong + un_faults;
	printf("hostile: unaligned accesses=%lu wrong=%lu faults=%lu breaches=%lu\n", un_n, un_wrong, un_faults, br);
	breaches += br;
}

/* ---- the mode ---- */

static int wants(const char *list, const char *name)
{
	u64 n = strlen(name);

	if (!list)
		return 1;
	for (const char *p = list; *p && *p != ' ';) {
		u64 w = 0;

		while (p[w] && p[w] != ',' && p[w] != ' ')
			w++;
		if ((w == n && memcmp(p, name, n) == 0) || (w == 3 && memcmp(p, "all", 3) == 0))
			return 1;
		p += w;
		if (*p == ',')
			p++;
	}
	return 0;
}

static void run_calls(const char *c) { attack_calls(opt(c, "calls=", 1000000)); }
static void run_alias(const char *c) { attack_alias(opt(c, "rounds=", 48), opt(c, "keys=", 256)); }
static void run_int(const char *c) { attack_int(); }
static void run_ud(const char *c) { attack_ud(opt(c, "first=", 0), opt(c, "samples=", 3000)); }
static void run_timer(const char *c) { attack_timer(opt(c, "rounds=", 48)); }
static void run_unaligned(const char *c) { attack_unaligned(); }

/* In this order: the calls attack leaves no trace for the others. */
static const struct {
	const char *name;
	void (*run)(const char *cmdline);
} attacks[] = {
	{"calls", run_calls}, {"alias", run_alias}, {"int", run_int},
	{"ud", run_ud}, {"timer", run_timer}, {"unaligned", run_unaligned},
};

void hostile(const char *cmdline)
{
	const char *list = cmdline_find(cmdline, "hostile=");
	u64 n = 0;

	pvisor_declare_version(PVISOR_ABI_VERSION);
	console_enable();
	__asm__ volatile("cli" ::: "memory");
	rng ^= opt(cmdline, "seed=", 1) * 0xbf58476d1ce4e5b9UL;
	rnd();
	mem_end = start_info->mem_size & ~0xfffUL;
	scratch_lo = mem_end - (1UL << 20);
	if ((u64)__bss_end > (2UL << 20) || mem_end > (511UL << 21) || mem_end < (16UL << 20))
		stop("want an image below 2 MiB and 16 MiB to 1 GiB of RAM");

	build_gdt();
	build_idt();
	for (int v = 0; v < 32; v++)
		set_gate(v, trap_stubs[v], 1);
	build_tables();
	build_pool();
	init_regs();
	restore_env();
	trap_hook = hook;
	printf("hostile: ready mem=0x%lx seed=%lu\n", mem_end, opt(cmdline, "seed=", 1));

	for (u64 i = 0; i < sizeof(attacks) / sizeof(attacks[0]); i++)
		if (wants(list, attacks[i].name)) {
			printf("hostile: begin %s\n", attacks[i].name);
			attacks[i].run(cmdline);
			n++;
		}
	printf("hostile: done attacks=%lu breaches=%lu\n", n, breaches);
	pvisor_shutdown(PVISOR_SHUTDOWN_POWEROFF, breaches ? 3 : 0);
	for (;;)
		__asm__ volatile("pause");
}
