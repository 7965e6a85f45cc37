/*
 * unpriv.h: what the unprivileged attack programs of guestkit/tests share.
 *
 * Each program is a static binary in the guest's initramfs (/bin/NAME). It
 * drops to uid and gid 65534 (nobody) first, checks that the drop holds,
 * attacks one promise of the hypervisor from user mode, and prints one
 * result line that tests/unpriv_test.go parses:
 *
 *     attack NAME: ok DETAILS          exit status 0
 *     attack NAME: BREACH DETAILS      exit status 1
 *     attack NAME: FAIL DETAILS        exit status 2 (could not run)
 *
 * A breach is anything a CPU and kernel without the bug would not do. The
 * programs are also meant to run on the host (as root, so that they can
 * drop to 65534): the host CPU is the oracle for what they expect.
 */
#ifndef PVISOR_UNPRIV_H
#define PVISOR_UNPRIV_H

#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define UNPRIV_ID 65534

static const char *attack_name = "?";

/* attack_result prints the result line and exits: 0 for ok, 1 for a breach. */
static void attack_result(int breach, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void attack_result(int breach, const char *fmt, ...)
{
	va_list ap;

	printf("attack %s: %s ", attack_name, breach ? "BREACH" : "ok");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	exit(breach ? 1 : 0);
}

/* attack_fail reports that the attack could not run (not a verdict). */
static void attack_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void attack_fail(const char *fmt, ...)
{
	va_list ap;
	int e = errno;

	printf("attack %s: FAIL ", attack_name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf(" (errno %d: %s)\n", e, strerror(e));
	fflush(stdout);
	exit(2);
}

/*
 * drop_privileges becomes uid/gid 65534 with no supplementary groups and
 * checks it: the real and effective ids are 65534 and setuid(0) fails. It
 * also works when started as 65534 already.
 */
static void drop_privileges(const char *name)
{
	gid_t g = UNPRIV_ID;

	attack_name = name;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (getuid() == 0) {
		if (setgroups(1, &g) != 0 || setgid(UNPRIV_ID) != 0 || setuid(UNPRIV_ID) != 0)
			attack_fail("cannot drop to uid %d", UNPRIV_ID);
	}
	if (getuid() != UNPRIV_ID || geteuid() != UNPRIV_ID || getgid() != UNPRIV_ID || getegid() != UNPRIV_ID)
		attack_fail("running as uid %d/%d gid %d/%d, want %d", (int)getuid(), (int)geteuid(),
			    (int)getgid(), (int)getegid(), UNPRIV_ID);
	if (setuid(0) == 0 || seteuid(0) == 0 || setgid(0) == 0)
		attack_fail("regained root after dropping privileges");
	printf("%s: running as uid %d gid %d\n", name, (int)getuid(), (int)getgid());
}

/* xorshift64* : the programs' deterministic random numbers. */
static inline uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static inline double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * run_loop is the body of the CPU-bound attackers (cpuidloop,
 * mprotectloop): it calls step in a loop for argv[1] seconds (0 or absent:
 * until killed), prints "NAME: looping" when it starts and, at the end,
 * the result line with the iteration count.
 */
static inline void run_loop(const char *name, int argc, char **argv, void (*step)(void))
{
	double secs = argc > 1 ? atof(argv[1]) : 0, t0, t;
	unsigned long long n = 0;

	drop_privileges(name);
	printf("%s: looping for %g s\n", name, secs);
	t0 = now_seconds();
	for (;;) {
		for (int i = 0; i < 256; i++)
			step();
		n += 256;
		t = now_seconds() - t0;
		if (secs > 0 && t >= secs)
			break;
	}
	attack_result(0, "%llu iterations in %.2f s", n, t);
}

#endif
