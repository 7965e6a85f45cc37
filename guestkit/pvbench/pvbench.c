/*
 * pvbench: the in-guest half of `pvisor bench linux`. It runs operating
 * system micro-benchmarks in the spirit of lmbench's (the operations where
 * a hypervisor's cost shows: system call, fork, exec, page fault, context
 * switch, console write, timer) and brackets each with console lines the
 * host reads:
 *
 *     pvbench-start                  (once, first thing: boot is over)
 *     pvbench-begin NAME
 *     pvbench-end NAME iters=N ns=T
 *
 * T is the guest's own CLOCK_MONOTONIC time for the N operations. The host
 * snapshots its exit and hypercall counters when it sees each line, so it
 * can divide what happened in between by N. Built statically into the
 * initramfs as /bin/pvbench. Usage: pvbench [NAME...] (default: all).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "pvbench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void bench_syscall(long n)
{
	for (long i = 0; i < n; i++)
		syscall(SYS_getppid);
}

static void bench_fork(long n)
{
	for (long i = 0; i < n; i++) {
		pid_t p = fork();

		if (p < 0)
			die("fork");
		if (p == 0)
			_exit(0);
		if (waitpid(p, NULL, 0) != p)
			die("waitpid");
	}
}

static void bench_exec(long n)
{
	for (long i = 0; i < n; i++) {
		pid_t p = fork();

		if (p < 0)
			die("fork");
		if (p == 0) {
			execl("/bin/true", "true", (char *)NULL);
			_exit(127);
		}
		int st;

		if (waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			die("exec /bin/true");
	}
}

/* One operation is one page fault on fresh anonymous memory. */
#define PF_PAGES 1024
static void bench_pagefault(long n)
{
	long pg = sysconf(_SC_PAGESIZE);

	for (long done = 0; done < n; done += PF_PAGES) {
		char *m = mmap(NULL, PF_PAGES * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (m == MAP_FAILED)
			die("mmap");
		for (long i = 0; i < PF_PAGES; i++)
			m[i * pg] = 1;
		munmap(m, PF_PAGES * pg);
	}
}

/* One operation is one switch: a byte passed between two processes. */
static void bench_ctxsw(long n)
{
	int ab[2], ba[2];
	char c = 0;

	if (pipe(ab) || pipe(ba))
		die("pipe");
	pid_t p = fork();

	if (p < 0)
		die("fork");
	if (p == 0) {
		for (long i = 0; i < n / 2; i++) {
			if (read(ab[0], &c, 1) != 1 || write(ba[1], &c, 1) != 1)
				_exit(1);
		}
		_exit(0);
	}
	for (long i = 0; i < n / 2; i++) {
		if (write(ab[1], &c, 1) != 1 || read(ba[0], &c, 1) != 1)
			die("ping-pong");
	}
	waitpid(p, NULL, 0);
	close(ab[0]), close(ab[1]), close(ba[0]), close(ba[1]);
}

/* One operation is one 64-byte line written to the console. */
static void bench_console(long n)
{
	static const char line[] = "pvbench console line ...................................... 64\n";

	for (long i = 0; i < n; i++) {
		if (write(1, line, sizeof(line) - 1) != (ssize_t)sizeof(line) - 1)
			die("console write");
	}
}

/* One operation is a 1 ms sleep: its cost above 1 ms is the timer path. */
static void bench_timer(long n)
{
	struct timespec ms = {0, 1000000};

	for (long i = 0; i < n; i++)
		nanosleep(&ms, NULL);
}

static const struct bench {
	const char *name;
	void (*run)(long n);
	long iters;
} benches[] = {
	{"syscall", bench_syscall, 100000},
	{"fork", bench_fork, 300},
	{"exec", bench_exec, 200},
	{"pagefault", bench_pagefault, 8 * PF_PAGES},
	{"ctxsw", bench_ctxsw, 10000},
	{"console", bench_console, 200},
	{"timer", bench_timer, 200},
};

int main(int argc, char **argv)
{
	int ran = 0;

	dprintf(1, "pvbench-start\n");
	for (size_t i = 0; i < sizeof(benches) / sizeof(benches[0]); i++) {
		const struct bench *b = &benches[i];
		int want = argc < 2;

		for (int a = 1; a < argc; a++)
			want |= strcmp(argv[a], b->name) == 0;
		if (!want)
			continue;
		b->run(b->iters / 10); /* warm up: caches, page tables, the binary */
		dprintf(1, "pvbench-begin %s\n", b->name);
		long long t0 = now_ns();

		b->run(b->iters);
		long long t1 = now_ns();

		dprintf(1, "pvbench-end %s iters=%ld ns=%lld\n", b->name, b->iters, t1 - t0);
		ran++;
	}
	if (ran == 0) {
		fprintf(stderr, "pvbench: no benchmark matched; have syscall fork exec pagefault ctxsw console timer\n");
		return 2;
	}
	return 0;
}
