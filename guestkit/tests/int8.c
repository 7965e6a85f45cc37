/*
 * int8: software interrupts from user mode.
 *
 * Linux 6.12 on x86-64 opens three IDT gates to user mode (DPL 3): int3
 * (vector 3, SIGTRAP), overflow (vector 4, SIGSEGV) and, only with
 * IA32_EMULATION, int $0x80. Every other `int $n` from ring 3 must be a #GP
 * whose error code names the gate (n*8 + 2, the IDT bit), which the kernel
 * turns into SIGSEGV; a CPU that delivers it instead (a double fault for
 * int $8, a page fault for int $14, a device interrupt) hands user mode a
 * kernel entry with a forged frame.
 *
 * The program runs int $n for every n in 0..255, then int $8, int $13 and
 * int $0x1f 100 times each, and the one-byte forms int3 (CC), icebp (F1,
 * SIGTRAP through #DB) and into (CE, #UD in 64-bit mode). It checks the
 * signal, the vector and error code in the signal frame, and the RIP
 * (the int instruction for a fault, the next one for a trap; for icebp
 * either, since a host that is itself virtualized may report it at the
 * instruction); int $0x80 may
 * instead return getpid() (a kernel with IA32 emulation). Then it checks
 * that the kernel still forks. With -v it names each stub before running
 * it, so that a console that ends in a kernel panic shows which one.
 */
#include "stubs.h"

#define NVEC 256
#define NREP 3
#define REPS 100
static const int repvec[NREP] = {8, 13, 0x1f};

enum { ONE_CC = NVEC + NREP, ONE_F1, ONE_CE, NSTUB };

static int fill(int i, uint8_t *code)
{
	if (i < NVEC) {
		code[0] = 0xcd, code[1] = i;
		return 2;
	}
	if (i < NVEC + NREP) {
		code[0] = 0xcd, code[1] = repvec[i - NVEC];
		return 2;
	}
	code[0] = i == ONE_CC ? 0xcc : i == ONE_F1 ? 0xf1 : 0xce;
	return 1;
}

struct want {
	int sig;
	long trapno, err;
	int after; /* RIP after the instruction (a trap) rather than at it */
};

static struct want expect(int i)
{
	int n = i < NVEC ? i : i < NVEC + NREP ? repvec[i - NVEC] : -1;

	if (n == 3 || i == ONE_CC)
		return (struct want){SIGTRAP, 3, 0, 1};
	if (n == 4)
		return (struct want){SIGSEGV, 4, 0, 1};
	if (i == ONE_F1)
		return (struct want){SIGTRAP, 1, 0, 1};
	if (i == ONE_CE)
		return (struct want){SIGILL, 6, 0, 0};
	return (struct want){SIGSEGV, 13, n * 8 + 2, 0};
}

int main(int argc, char **argv)
{
	int verbose = argc > 1 && !strcmp(argv[1], "-v");
	long sigs[32] = {0}, runs = 0, bad = 0, gate80 = 0;
	uint8_t *page;

	drop_privileges("int8");
	stub_handlers();
	page = stub_page(NSTUB, fill);
	for (int i = 0; i < NSTUB; i++) {
		int reps = i >= NVEC && i < NVEC + NREP ? REPS : 1;

		for (int r = 0; r < reps; r++) {
			struct outcome o;
			struct want w = expect(i);

			if (verbose && r == 0)
				printf("int8: stub %d\n", i);
			o = run_stub(page, i);
			uint64_t rip = stub_insn(page, i) + (w.after ? (i >= ONE_CC ? 1 : 2) : 0);

			runs++;
			if (o.sig > 0 && o.sig < 32)
				sigs[o.sig]++;
			if (i == 0x80 && o.sig == 0 && o.rax == (uint64_t)getpid()) {
				gate80 = 1; /* the IA32 system-call gate */
				continue;
			}
			if (o.sig == w.sig && o.trapno == w.trapno && o.err == w.err &&
			    (o.rip == rip || (i == ONE_F1 && o.rip == stub_insn(page, i))))
				continue;
			if (++bad <= 8)
				printf("int8: stub %d (%02x %02x): %s vector %ld error %#lx rip %+lld; want %s vector %ld "
				       "error %#lx rip %+d (rax %#llx)\n",
				       i, page[i * STUB_SLOT + STUB_HEAD], page[i * STUB_SLOT + STUB_HEAD + 1],
				       signame(o.sig), o.trapno, o.err, (long long)(o.rip - stub_insn(page, i)),
				       signame(w.sig), w.trapno, w.err, w.after ? (i >= ONE_CC ? 1 : 2) : 0,
				       (unsigned long long)o.rax);
		}
	}
	if (!kernel_alive())
		attack_result(1, "the kernel no longer forks after %ld software interrupts", runs);
	attack_result(bad != 0,
		      "%ld of %ld software interrupts ended otherwise than the IDT allows; signals: SIGSEGV %ld, "
		      "SIGTRAP %ld, SIGILL %ld, other %ld; int $0x80 %s; kernel alive",
		      bad, runs, sigs[SIGSEGV], sigs[SIGTRAP], sigs[SIGILL],
		      runs - gate80 - sigs[SIGSEGV] - sigs[SIGTRAP] - sigs[SIGILL],
		      gate80 ? "is the IA32 system call" : "faults");
}
