/*
 * tlbalias: non-canonical aliases and stale translations of user pages.
 *
 * An x86-64 CPU with 48-bit virtual addresses raises #GP for any address
 * whose bits 63..47 are not all equal, whatever the TLB holds, and a page
 * that munmap, mprotect(PROT_NONE) or a new mapping took away is gone once
 * the kernel's flush (INVLPG, or the TLB-flush hypercall in pv mode)
 * returns. A soft TLB tagged with fewer than all 64 address bits, or a
 * flush that misses an entry, lets user code read through such an address.
 *
 * Each round maps a page, writes a pattern, reads it (so that the
 * translation is cached), then reads through 26 non-canonical aliases
 * (va ^ 1<<b for b = 47..63, all of bits 63..48 set, and 8 random
 * va ^ k<<48): each must fault. Then it takes the page away in one of five
 * ways and checks again, the canonical address too:
 *
 *     munmap      munmap; the address must fault
 *     mprotect    mprotect(PROT_NONE); the address must fault
 *     remap       mmap(MAP_FIXED) a new page holding other data over it
 *     reuse-va    munmap, then a new mmap that the kernel put at the same
 *                 address, holding other data
 *     reuse-page  munmap, then a new page elsewhere (likely the same frame)
 *                 holding other data; the old address must fault
 *
 * 50 rounds of each. Any read that does not fault where it must, or that
 * returns other data than the current mapping holds, is a breach; the
 * result line says how many and whether they saw the old pattern.
 */
#include "unpriv.h"

#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>

#define ROUNDS 50
#define NALIAS 26
#define PAGE 4096

static sigjmp_buf probe_env;
static volatile int fault_sig;
static volatile long fault_trapno;

static void on_fault(int sig, siginfo_t *si, void *uc)
{
	(void)si;
	fault_sig = sig;
	fault_trapno = ((ucontext_t *)uc)->uc_mcontext.gregs[REG_TRAPNO];
	siglongjmp(probe_env, 1);
}

/* load reads 8 bytes at addr with a plain MOV through RDI (never RSP or
 * RBP, whose non-canonical use would be #SS instead of #GP). */
static uint64_t __attribute__((noinline)) load(uint64_t addr)
{
	uint64_t v;

	__asm__ volatile("movq (%1), %0" : "=r"(v) : "D"(addr) : "memory");
	return v;
}

/* probe reads addr: 1 and *val if the read succeeded, 0 if it faulted. */
static int probe(uint64_t addr, uint64_t *val)
{
	fault_sig = 0;
	if (sigsetjmp(probe_env, 1))
		return 0;
	*val = load(addr);
	return 1;
}

struct tally {
	const char *name;
	long probes;       /* reads that must fault */
	long faults;       /* of which faulted */
	long gp, pf;       /* faults by vector (#GP is right for an alias) */
	long leaked;       /* reads that succeeded where they must fault */
	long leaked_old;   /* of which returned the old pattern */
	long leaked_new;   /* of which returned the new data */
	long reads;        /* reads of a replaced page's address, which must see the new page */
	long stale;        /* of which did not */
	long stale_old;    /* of which returned the old pattern */
	long sameva;       /* reuse-va rounds where the kernel gave back the address */
};

static uint64_t seed = 0x9e3779b97f4a7c15ULL;
static const char *phase; /* "mapped" or "removed": when the reads happen */

/* aliases fills out[NALIAS] with non-canonical aliases of va. */
static void aliases(uint64_t va, uint64_t *out)
{
	int n = 0;

	for (int b = 47; b < 64; b++)
		out[n++] = va ^ (1ULL << b);
	out[n++] = va | 0xffff000000000000ULL;
	while (n < NALIAS) {
		uint64_t k = rng_next(&seed) & 0xffff;

		if (k != 0)
			out[n++] = va ^ (k << 48);
	}
}

/* must_fault reads addr and counts a breach unless it faults. */
static void must_fault(struct tally *t, uint64_t addr, uint64_t old, uint64_t new)
{
	uint64_t v;

	t->probes++;
	if (probe(addr, &v)) {
		t->leaked++;
		if (v == old)
			t->leaked_old++;
		else if (v == new)
			t->leaked_new++;
		if (t->leaked <= 3)
			printf("tlbalias: %s: %s: read at %#llx returned %#llx (old %#llx, new %#llx)\n", t->name,
			       phase, (unsigned long long)addr, (unsigned long long)v, (unsigned long long)old,
			       (unsigned long long)new);
		return;
	}
	t->faults++;
	if (fault_trapno == 13)
		t->gp++;
	else if (fault_trapno == 14)
		t->pf++;
}

static void probe_aliases(struct tally *t, uint64_t va, uint64_t old, uint64_t new)
{
	uint64_t al[NALIAS];

	aliases(va, al);
	for (int i = 0; i < NALIAS; i++)
		must_fault(t, al[i], old, new);
}

static void fill(volatile uint64_t *p, uint64_t pat)
{
	for (int i = 0; i < PAGE / 8; i++)
		p[i] = pat ^ i;
}

static void *map_page(void *hint, int flags)
{
	void *p = mmap(hint, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);

	if (p == MAP_FAILED)
		attack_fail("mmap");
	return p;
}

enum { MUNMAP, MPROTECT, REMAP, REUSE_VA, REUSE_PAGE, NVARIANT };

static void round_of(struct tally *t, int variant, int r)
{
	uint64_t old = 0x5a5a000000000000ULL ^ ((uint64_t)r << 32) ^ ((uint64_t)variant << 24);
	uint64_t new = ~old;
	volatile uint64_t *p = map_page(NULL, 0);
	uint64_t va = (uint64_t)p, v;
	void *other = NULL;

	fill(p, old);
	if (load(va) != old)
		attack_fail("%s: the page does not hold what was written", t->name);
	phase = "mapped";
	probe_aliases(t, va, old, new);
	load(va); /* the translation is cached again */
	phase = "removed";

	switch (variant) {
	case MUNMAP:
		munmap((void *)p, PAGE);
		must_fault(t, va, old, new);
		probe_aliases(t, va, old, new);
		return;
	case MPROTECT:
		if (mprotect((void *)p, PAGE, PROT_NONE) != 0)
			attack_fail("mprotect");
		must_fault(t, va, old, new);
		probe_aliases(t, va, old, new);
		munmap((void *)p, PAGE);
		return;
	case REMAP:
		if (map_page((void *)p, MAP_FIXED) != (void *)p)
			attack_fail("mmap MAP_FIXED moved");
		fill(p, new);
		break;
	case REUSE_VA:
		munmap((void *)p, PAGE);
		other = map_page(NULL, 0);
		if (other != (void *)p) {
			/* Not the same address: the old one must fault. */
			fill(other, new);
			must_fault(t, va, old, new);
			probe_aliases(t, va, old, new);
			munmap(other, PAGE);
			return;
		}
		t->sameva++;
		fill(p, new);
		break;
	case REUSE_PAGE:
		munmap((void *)p, PAGE);
		other = map_page((void *)(va + (64ULL << 20)), 0);
		fill(other, new);
		must_fault(t, va, old, new);
		probe_aliases(t, va, old, new);
		munmap(other, PAGE);
		return;
	}
	/* REMAP and REUSE_VA: the address holds the new page now. */
	t->reads++;
	if (!probe(va, &v))
		attack_fail("%s: the new page at %#llx faults", t->name, (unsigned long long)va);
	if (v != new) {
		t->stale++;
		if (v == old)
			t->stale_old++;
	}
	probe_aliases(t, va, old, new);
	munmap((void *)p, PAGE);
}

int main(void)
{
	static const char *names[NVARIANT] = {"munmap", "mprotect", "remap", "reuse-va", "reuse-page"};
	struct tally t[NVARIANT];
	struct sigaction sa;
	long leaked = 0, stale = 0, probes = 0, old = 0, bad_rounds = 0;
	char detail[1024];
	int n = 0;

	drop_privileges("tlbalias");
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSEGV, &sa, NULL) != 0 || sigaction(SIGBUS, &sa, NULL) != 0)
		attack_fail("sigaction");

	memset(t, 0, sizeof(t));
	for (int v = 0; v < NVARIANT; v++) {
		t[v].name = names[v];
		for (int r = 0; r < ROUNDS; r++) {
			long before = t[v].leaked + t[v].stale;

			round_of(&t[v], v, r);
			if (t[v].leaked + t[v].stale != before)
				bad_rounds++;
		}
		printf("tlbalias: %s: %d rounds; %ld reads that must fault: %ld faulted (#GP %ld, #PF %ld), "
		       "%ld read (%ld the old pattern, %ld the new data); %ld reads of the new page: %ld stale "
		       "(%ld the old pattern); same address back %ld times\n",
		       names[v], ROUNDS, t[v].probes, t[v].faults, t[v].gp, t[v].pf, t[v].leaked, t[v].leaked_old,
		       t[v].leaked_new, t[v].reads, t[v].stale, t[v].stale_old, t[v].sameva);
		leaked += t[v].leaked;
		stale += t[v].stale;
		probes += t[v].probes + t[v].reads;
		old += t[v].leaked_old + t[v].stale_old;
		n += snprintf(detail + n, sizeof(detail) - n, " %s=%ld/%ld", names[v], t[v].leaked + t[v].stale,
			      t[v].probes + t[v].reads);
	}
	attack_result(leaked + stale != 0,
		      "%ld of %ld reads went through a non-canonical or removed address and %ld saw a replaced "
		      "page (%ld of them the old pattern), in %ld of %d rounds;%s",
		      leaked, probes, stale, old, bad_rounds, ROUNDS * NVARIANT, detail);
}
