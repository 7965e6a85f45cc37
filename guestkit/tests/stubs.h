/*
 * stubs.h: run one instruction from user mode and see how it ended.
 *
 * Each stub lives in its own 32-byte slot of a page that is written once
 * and then made read+execute (no self-modifying code):
 *
 *     mov $20, %eax       (i386 getpid, for int $0x80 on a kernel with
 *                          IA32 emulation)
 *     <the bytes under test>
 *     ret
 *
 * run_stub calls a slot and reports either the value it returned in RAX
 * or the signal it raised, with the vector (trapno), error code and RIP
 * that the kernel saved in the signal frame.
 */
#ifndef PVISOR_STUBS_H
#define PVISOR_STUBS_H

#include "unpriv.h"

#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <ucontext.h>

#define STUB_SLOT 32
#define STUB_HEAD 5 /* mov $20, %eax */

struct outcome {
	int sig;         /* 0: the stub returned */
	long trapno, err;
	uint64_t rip;    /* where the signal frame says the fault was */
	uint64_t rax;    /* when it returned */
};

static sigjmp_buf stub_env;
static volatile struct outcome stub_out;

static void stub_on_signal(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;

	(void)si;
	stub_out.sig = sig;
	stub_out.trapno = uc->uc_mcontext.gregs[REG_TRAPNO];
	stub_out.err = uc->uc_mcontext.gregs[REG_ERR];
	stub_out.rip = uc->uc_mcontext.gregs[REG_RIP];
	siglongjmp(stub_env, 1);
}

/* stub_handlers catches the signals a user-mode fault can raise. */
static void stub_handlers(void)
{
	static const int sigs[] = {SIGSEGV, SIGILL, SIGTRAP, SIGBUS, SIGFPE};
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = stub_on_signal;
	sa.sa_flags = SA_SIGINFO;
	sigfillset(&sa.sa_mask);
	for (unsigned i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (sigaction(sigs[i], &sa, NULL) != 0)
			attack_fail("sigaction");
}

/* stub_page maps n slots, lets fill write slot i's bytes (at most
 * STUB_SLOT - STUB_HEAD - 1), and returns the read+execute page. */
static uint8_t *stub_page(int n, int (*fill)(int i, uint8_t *code))
{
	size_t size = ((size_t)n * STUB_SLOT + 4095) & ~(size_t)4095;
	uint8_t *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		attack_fail("mmap");
	memset(p, 0xcc, size);
	for (int i = 0; i < n; i++) {
		uint8_t *s = p + (size_t)i * STUB_SLOT;
		int len;

		s[0] = 0xb8, s[1] = 20, s[2] = s[3] = s[4] = 0;
		len = fill(i, s + STUB_HEAD);
		if (len <= 0 || len > STUB_SLOT - STUB_HEAD - 1)
			attack_fail("stub %d: bad length %d", i, len);
		s[STUB_HEAD + len] = 0xc3;
	}
	if (mprotect(p, size, PROT_READ | PROT_EXEC) != 0)
		attack_fail("mprotect");
	return p;
}

static struct outcome run_stub(uint8_t *page, int i)
{
	uint64_t (*fn)(void) = (uint64_t (*)(void))(page + (size_t)i * STUB_SLOT);
	struct outcome o;

	memset((void *)&stub_out, 0, sizeof(stub_out));
	if (sigsetjmp(stub_env, 1) == 0)
		stub_out.rax = fn();
	memcpy(&o, (const void *)&stub_out, sizeof(o));
	return o;
}

/* stub_insn is the address of slot i's instruction under test. */
static inline uint64_t stub_insn(uint8_t *page, int i)
{
	return (uint64_t)(page + (size_t)i * STUB_SLOT + STUB_HEAD);
}

static inline const char *signame(int sig)
{
	switch (sig) {
	case 0: return "none";
	case SIGSEGV: return "SIGSEGV";
	case SIGILL: return "SIGILL";
	case SIGTRAP: return "SIGTRAP";
	case SIGBUS: return "SIGBUS";
	case SIGFPE: return "SIGFPE";
	}
	return "other";
}

/* kernel_alive checks that the kernel still forks, runs and reaps a child. */
static int kernel_alive(void)
{
	int st;
	pid_t p = fork();

	if (p == 0)
		_exit(42);
	return p > 0 && waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == 42;
}

#endif
