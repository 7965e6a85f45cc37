/*
 * Several vCPUs (ABI 6): vcpu_up, evtchn_bind_ipi, mmu_flush_tlb_mask.
 *
 * check_smp_calls runs in the check suite on one vCPU: the error paths and
 * what a single vCPU can do with the calls. smp (the "smp" command line)
 * needs nr_vcpus > 1: vCPU 0 starts every other vCPU with vcpu_up on the
 * loader's page tables, and then, with each of them at once:
 *   - locked read-modify-writes and a spin lock on shared words, with exact
 *     totals;
 *   - IPIs: a ping to each vCPU's IPI port, answered on vCPU 0's, with the
 *     pinged vCPU asleep in vcpu_block between pings;
 *   - a TLB shootdown: a page is remapped while the others hold its old
 *     translation, and mmu_flush_tlb_mask makes them see the new frame;
 *   - each vCPU's own timer and VIRQ, and its own pvclock slot.
 * The others poll their event bits with upcalls masked: no interrupt
 * reaches them.
 */
#include "testguest.h"

#define ENOENT PVISOR_ENOENT
#define EFAULT PVISOR_EFAULT
#define EBUSY PVISOR_EBUSY
#define EINVAL PVISOR_EINVAL

#define MAX_CPUS PVISOR_MAX_VCPUS
#define AP_STACK 16384
#define COUNT_ITERS 200000UL
#define PINGS 500
#define SHOOT_VA (8UL << 39) /* PML4 slot 8: nothing else maps it */

extern char ap_entry[]; /* start.S: takes RDI, calls ap_main */

/*
 * The stacks, page tables and frames live above the image (the start
 * info's free_gpa, identity-mapped): the image must stay below 2 MiB for
 * the hostile modes.
 */
static u8 (*ap_stacks)[AP_STACK];
static struct pvisor_vcpu_context ctx;

static volatile u64 alive[MAX_CPUS];  /* written by each vCPU at start */
static volatile u64 cmd[MAX_CPUS];    /* vCPU 0's command to vCPU i */
static volatile u64 done[MAX_CPUS];   /* the last command vCPU i finished */
static volatile u64 result[MAX_CPUS]; /* what it read */
static volatile u64 ipi_port[MAX_CPUS], pongs[MAX_CPUS];
static volatile u64 pong_port, timer_port[MAX_CPUS];

static volatile u64 xadd_count, lock_word, locked_count;

/* Page tables of SHOOT_VA and its two frames. */
static u64 *shoot_pdpt, *shoot_pd, *shoot_pt, *frame_a, *frame_b;

/* smp_alloc carves the areas above out of free memory, zeroed. */
static void smp_alloc(void)
{
	u64 p = (start_info->free_gpa + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
	u64 **pages[] = {&shoot_pdpt, &shoot_pd, &shoot_pt, &frame_a, &frame_b};

	ap_stacks = (void *)p;
	p += (u64)MAX_CPUS * AP_STACK;
	for (u64 i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
		*pages[i] = (u64 *)p;
		p += PAGE_SIZE;
	}
	memset(ap_stacks, 0, p - (u64)ap_stacks);
}

enum { CMD_NONE, CMD_COUNT, CMD_READ, CMD_PINGS, CMD_TIMER, CMD_CLOCK };

static u64 now_ns(void)
{
	return pvclock_now();
}

static int test_and_clear(volatile pv_u64 *words, u64 port)
{
	pv_u64 bit = 1ULL << (port % 64);

	return (__atomic_fetch_and(&words[port / 64], ~bit, __ATOMIC_SEQ_CST) & bit) != 0;
}

static void spin_lock(volatile u64 *l)
{
	while (__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE))
		while (*l)
			__asm__ volatile("pause");
}

static void spin_unlock(volatile u64 *l)
{
	__atomic_store_n(l, 0, __ATOMIC_RELEASE);
}

static void count_work(void)
{
	for (u64 i = 0; i < COUNT_ITERS; i++) {
		__atomic_fetch_add(&xadd_count, 1, __ATOMIC_SEQ_CST);
		spin_lock(&lock_word);
		locked_count = locked_count + 1;
		spin_unlock(&lock_word);
	}
}

/* wait_for spins until *p == want, for at most 20 s of pvclock time. */
static int wait_for(volatile u64 *p, u64 want)
{
	u64 t0 = now_ns();

	while (*p != want) {
		if (now_ns() - t0 > 20000000000UL)
			return 0;
		__asm__ volatile("pause");
	}
	return 1;
}

/* The other vCPUs' entry (from ap_entry, on the stack ctx gave). */
void ap_main(u64 id)
{
	volatile struct pvisor_vcpu_info *vi = &shinfo.vcpu[id];
	u64 seen = 0;

	pvisor_load_idt(idt_base(), idt_limit());
	alive[id] = 1;
	for (;;) {
		u64 c;

		while ((c = cmd[id]) == seen)
			__asm__ volatile("pause");
		seen = c;
		switch (c & 0xff) {
		case CMD_COUNT:
			count_work();
			break;
		case CMD_READ:
			result[id] = *(volatile u64 *)SHOOT_VA;
			break;
		case CMD_PINGS:
			/* Asleep until an event; each ping is answered on vCPU 0's port. */
			while (pongs[id] < PINGS) {
				vi->upcall_pending = 0;
				if (test_and_clear(shinfo.evtchn_pending, ipi_port[id])) {
					pongs[id]++;
					pvisor_evtchn_send(pong_port);
					continue;
				}
				pvisor_vcpu_block();
				__asm__ volatile("cli");
			}
			break;
		case CMD_TIMER: {
			/* This vCPU's own timer wakes it from vcpu_block. */
			u64 t0 = now_ns(), woke = 0;

			pvisor_timer_set(t0 + 2000000);
			while (now_ns() - t0 < 5000000000UL) {
				vi->upcall_pending = 0;
				if (test_and_clear(shinfo.evtchn_pending, timer_port[id])) {
					woke = 1;
					break;
				}
				pvisor_vcpu_block();
				__asm__ volatile("cli");
			}
			result[id] = woke && now_ns() - t0 >= 2000000;
			break;
		}
		case CMD_CLOCK:
			result[id] = vi->time.version != 0 && vi->time.version % 2 == 0 && now_ns() != 0;
			break;
		}
		done[id] = c;
	}
}

/* run_cmd gives vCPU i command c (with a sequence number) and waits. */
static u64 seq;
static int run_cmd(u64 i, u64 c)
{
	u64 v = (++seq << 8) | c;

	cmd[i] = v;
	return wait_for(&done[i], v);
}

static int run_all(u64 n, u64 c)
{
	u64 v = (++seq << 8) | c;
	int ok = 1;

	for (u64 i = 1; i < n; i++)
		cmd[i] = v;
	if (c == CMD_COUNT)
		count_work();
	for (u64 i = 1; i < n; i++)
		ok &= wait_for(&done[i], v);
	return ok;
}

static u64 read_cr3(void)
{
	u64 v;

	__asm__ volatile("mov %%cr3, %0" : "=r"(v));
	return v;
}

/* check_smp_calls: the SMP rows on one vCPU (part of the check suite). */
void check_smp_calls(void)
{
	u64 n = start_info->nr_vcpus;
	long p;

	check(pvisor_features(0) & PVISOR_FEATURE_SMP, "features has FEATURE_SMP");
	check_eq(pvisor_vcpu_count(), n, "vcpu_count equals the start info's nr_vcpus");
	/* Every call here is refused: no stack is needed. */
	ctx = (struct pvisor_vcpu_context){.rip = (u64)ap_entry, .rsp = 0x80000, .cr3 = read_cr3()};
	check_eq(pvisor_vcpu_up(0, (u64)&ctx), -EINVAL, "vcpu_up of vCPU 0 -> -EINVAL");
	check_eq(pvisor_vcpu_up(n, (u64)&ctx), -EINVAL, "vcpu_up of vCPU nr_vcpus -> -EINVAL");
	check_eq(pvisor_vcpu_up(1UL << 32, (u64)&ctx), -EINVAL, "vcpu_up vcpu with upper bits set -> -EINVAL");
	check_eq(pvisor_evtchn_bind_ipi(n), -EINVAL, "evtchn_bind_ipi of vCPU nr_vcpus -> -EINVAL");
	check_eq(pvisor_mmu_flush_tlb_mask(1UL << n, 0, 0), -EINVAL, "mmu_flush_tlb_mask with a bit at nr_vcpus -> -EINVAL");
	check_eq(pvisor_mmu_flush_tlb_mask(1, 0, 4), -EINVAL, "mmu_flush_tlb_mask unknown flag -> -EINVAL");
	check_eq(pvisor_mmu_flush_tlb_mask(1, 0, PVISOR_FLUSH_PAGE | PVISOR_FLUSH_GLOBAL), -EINVAL,
		 "mmu_flush_tlb_mask FLUSH_PAGE with FLUSH_GLOBAL -> -EINVAL");
	check_eq(pvisor_mmu_flush_tlb_mask(1, 0x0000800000000000UL, PVISOR_FLUSH_PAGE), -EINVAL,
		 "mmu_flush_tlb_mask FLUSH_PAGE non-canonical va -> -EINVAL");
	check_eq(pvisor_mmu_flush_tlb_mask(1, 0, 0), 0, "mmu_flush_tlb_mask of vCPU 0 alone returns 0");
	check_eq(pvisor_mmu_flush_tlb_mask(0, 0, PVISOR_FLUSH_GLOBAL), 0, "mmu_flush_tlb_mask of no vCPU returns 0");

	/* An IPI port to oneself: evtchn_send raises it. */
	p = pvisor_evtchn_bind_ipi(0);
	check(p > 0 && p < (long)PVISOR_MAX_PORTS, "evtchn_bind_ipi(0) returns a port");
	if (p > 0 && p < (long)PVISOR_MAX_PORTS) {
		check(shinfo.evtchn_mask[p / 64] & (1UL << (p % 64)), "the IPI port starts masked");
		check_eq(pvisor_evtchn_send(p), 0, "evtchn_send on the IPI port returns 0");
		check(test_and_clear(shinfo.evtchn_pending, p), "the sent IPI port is pending");
		check_eq(pvisor_evtchn_close(p), 0, "evtchn_close of the IPI port returns 0");
		check_eq(pvisor_evtchn_send(p), -ENOENT, "evtchn_send on the closed IPI port -> -ENOENT");
	}
}

/* shoot_map points SHOOT_VA at frame f (a plain store, as a kernel's). */
static void shoot_map(u64 *f)
{
	__atomic_store_n(&shoot_pt[0], (u64)f | 3, __ATOMIC_RELEASE);
}

static void smp_shootdown(u64 n)
{
	u64 *pml4 = (u64 *)read_cr3();
	u64 all = n >= 64 ? ~0UL : (1UL << n) - 1;
	int stale = 0, fresh = 1;

	for (int i = 0; i < 512; i++) {
		frame_a[i] = 0xaaaaaaaaaaaaaaaaUL;
		frame_b[i] = 0xbbbbbbbbbbbbbbbbUL;
	}
	shoot_pdpt[0] = (u64)shoot_pd | 3;
	shoot_pd[0] = (u64)shoot_pt | 3;
	shoot_map(frame_a);
	pml4[SHOOT_VA >> 39] = (u64)shoot_pdpt | 3;
	pvisor_mmu_flush_tlb_mask(all, 0, 0);

	/* Every vCPU caches SHOOT_VA -> frame_a. */
	for (u64 i = 1; i < n; i++) {
		run_cmd(i, CMD_READ);
		fresh &= result[i] == frame_a[0];
	}
	check(fresh, "smp: every vCPU reads the first frame through the shared mapping");
	check_u(*(volatile u64 *)SHOOT_VA, frame_a[0], "smp: vCPU 0 reads the first frame");

	/* Remapped without a flush: the others may still read frame_a. */
	shoot_map(frame_b);
	for (u64 i = 1; i < n; i++) {
		run_cmd(i, CMD_READ);
		stale += result[i] == frame_a[0];
	}
	printf("smp: %d of %lu vCPUs read the old frame before the flush\n", stale, n - 1);

	/* The page's flush, for all of them at once. */
	check_eq(pvisor_mmu_flush_tlb_mask(all, SHOOT_VA, PVISOR_FLUSH_PAGE), 0,
		 "smp: mmu_flush_tlb_mask of every vCPU, FLUSH_PAGE, returns 0");
	fresh = 1;
	for (u64 i = 1; i < n; i++) {
		run_cmd(i, CMD_READ);
		fresh &= result[i] == frame_b[0];
	}
	check(fresh, "smp: after mmu_flush_tlb_mask every vCPU reads the new frame");
	check_u(*(volatile u64 *)SHOOT_VA, frame_b[0], "smp: vCPU 0 reads the new frame");

	/* And back, with a full flush of the others only. */
	shoot_map(frame_a);
	for (u64 i = 1; i < n; i++)
		run_cmd(i, CMD_READ);
	check_eq(pvisor_mmu_flush_tlb_mask(all & ~1UL, 0, 0), 0, "smp: mmu_flush_tlb_mask of the others returns 0");
	fresh = 1;
	for (u64 i = 1; i < n; i++) {
		run_cmd(i, CMD_READ);
		fresh &= result[i] == frame_a[0];
	}
	check(fresh, "smp: after a full flush of the others they read the first frame again");
	pml4[SHOOT_VA >> 39] = 0;
	pvisor_mmu_flush_tlb_mask(all, 0, 0);
}

static void smp_ipis(u64 n)
{
	long p;
	int ok = 1;
	u64 t0, t1;

	p = pvisor_evtchn_bind_ipi(0);
	check(p > 0, "smp: evtchn_bind_ipi of vCPU 0 for the answers");
	pong_port = p;
	pvisor_evtchn_unmask(p);
	for (u64 i = 1; i < n; i++) {
		p = pvisor_evtchn_bind_ipi(i);
		ok &= p > 0;
		ipi_port[i] = p;
		pvisor_evtchn_unmask(p);
	}
	check(ok, "smp: evtchn_bind_ipi of every other vCPU");
	for (u64 i = 1; i < n; i++)
		cmd[i] = (++seq << 8) | CMD_PINGS;
	/* Round trips to each vCPU in turn, each asleep in vcpu_block. */
	t0 = now_ns();
	for (u64 k = 0; k < PINGS && ok; k++) {
		for (u64 i = 1; i < n && ok; i++) {
			u64 t = now_ns();

			pvisor_evtchn_send(ipi_port[i]);
			while (!test_and_clear(shinfo.evtchn_pending, pong_port)) {
				if (now_ns() - t > 5000000000UL) {
					ok = 0;
					break;
				}
				__asm__ volatile("pause");
			}
		}
	}
	t1 = now_ns();
	for (u64 i = 1; i < n && ok; i++)
		ok &= wait_for(&done[i], cmd[i]) && pongs[i] == PINGS;
	check(ok, "smp: every ping answered, every vCPU woken from vcpu_block by its IPI");
	if (!ok)
		finish(); /* a vCPU still waits for pings: nothing after this would be sound */
	printf("smp: IPI round trip %lu ns (%d x %lu vCPUs)\n", (t1 - t0) / (PINGS * (n - 1)), PINGS, n - 1);
	for (u64 i = 1; i < n; i++)
		pvisor_evtchn_close(ipi_port[i]);
	pvisor_evtchn_close(pong_port);
}

void smp(void)
{
	u64 n = start_info->nr_vcpus, cr3 = read_cr3();
	int ok = 1;

	pvisor_declare_version(PVISOR_ABI_VERSION);
	console_enable();
	smp_alloc();
	build_idt();
	pvisor_load_idt(idt_base(), idt_limit());
	for (u64 i = 0; i < (u64)MAX_CPUS; i++)
		shinfo.vcpu[i].upcall_mask = 1; /* every vCPU polls */
	if (pvisor_shared_info_register((u64)&shinfo, UPCALL_VECTOR) != 0) {
		printf("smp: shared_info_register failed\n");
		finish();
	}
	__asm__ volatile("cli");
	printf("smp: %lu vCPUs\n", n);
	check_eq(pvisor_vcpu_count(), n, "smp: vcpu_count equals nr_vcpus");
	check(n > 1 && n <= (u64)MAX_CPUS, "smp: nr_vcpus is more than 1");
	if (n < 2)
		finish();

	/* Refused contexts leave vCPU 1 down. */
	ctx = (struct pvisor_vcpu_context){.rip = (u64)ap_entry, .rsp = (u64)ap_stacks[1] + AP_STACK, .rdi = 1, .cr3 = cr3};
	ctx.flags = 1;
	check_eq(pvisor_vcpu_up(1, (u64)&ctx), -EINVAL, "vcpu_up with context flags 1 -> -EINVAL");
	ctx.flags = 0;
	ctx.rip = 0x0000800000000000UL;
	check_eq(pvisor_vcpu_up(1, (u64)&ctx), -EINVAL, "vcpu_up with a non-canonical RIP -> -EINVAL");
	ctx.rip = (u64)ap_entry;
	ctx.cr3 = cr3 + 8;
	check_eq(pvisor_vcpu_up(1, (u64)&ctx), -EINVAL, "vcpu_up with an unaligned CR3 -> -EINVAL");
	ctx.cr3 = start_info->mem_size;
	check_eq(pvisor_vcpu_up(1, (u64)&ctx), -EFAULT, "vcpu_up with CR3 beyond RAM -> -EFAULT");
	ctx.cr3 = cr3;
	check_eq(pvisor_vcpu_up(1, start_info->mem_size - 8), -EFAULT, "vcpu_up with the context straddling the end of RAM -> -EFAULT");
	for (int i = 0; i < 20000; i++)
		__asm__ volatile("pause");
	check(!alive[1], "smp: a refused vcpu_up starts nothing");

	for (u64 i = 1; i < n; i++) {
		struct pvisor_vcpu_context c = {.rip = (u64)ap_entry, .rsp = (u64)ap_stacks[i] + AP_STACK, .rdi = i, .cr3 = cr3};

		ok &= pvisor_vcpu_up(i, (u64)&c) == 0;
	}
	check(ok, "smp: vcpu_up of every other vCPU returns 0");
	ok = 1;
	for (u64 i = 1; i < n; i++)
		ok &= wait_for(&alive[i], 1);
	check(ok, "smp: every vCPU runs");
	check_eq(pvisor_vcpu_up(1, (u64)&ctx), -EBUSY, "vcpu_up of a running vCPU -> -EBUSY");

	/* Locked instructions and a spin lock on shared words, from all at once. */
	check(run_all(n, CMD_COUNT), "smp: the counting loops end");
	check_u(xadd_count, n * COUNT_ITERS, "smp: LOCK XADD total is exact");
	check_u(locked_count, n * COUNT_ITERS, "smp: the spin-locked total is exact");

	smp_shootdown(n);
	smp_ipis(n);

	/* Each vCPU's own timer, on a VIRQ_TIMER port bound to it. */
	ok = 1;
	for (u64 i = 1; i < n; i++) {
		long p = pvisor_evtchn_bind_virq(PVISOR_VIRQ_TIMER, i);

		ok &= p > 0;
		timer_port[i] = p;
		pvisor_evtchn_unmask(p);
	}
	check(ok, "smp: VIRQ_TIMER bound on every other vCPU");
	ok = 1;
	for (u64 i = 1; i < n; i++)
		ok &= run_cmd(i, CMD_TIMER) && result[i];
	check(ok, "smp: each vCPU's own timer ends its vcpu_block");
	ok = 1;
	for (u64 i = 1; i < n; i++)
		ok &= run_cmd(i, CMD_CLOCK) && result[i];
	check(ok, "smp: each vCPU reads its own pvclock slot");
	finish();
}
