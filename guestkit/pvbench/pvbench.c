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
 * initramfs as /bin/pvbench. Usage: pvbench [NAME...] (default: all but
 * the disk benchmarks, which run only when named: `pvisor bench io`).
 *
 * The disk benchmarks use the block device $PVBENCH_DISK (default /dev/vda)
 * with O_DIRECT, so that every operation reaches the device, within its
 * first BLK_SPAN bytes: blk-seqwrite and blk-seqread move 1 MiB per
 * operation in order, blk-randread reads 4 KiB at a random aligned offset.
 *
 * The multiprocessor benchmarks (`pvisor bench smp`) need two CPUs online,
 * but par, which runs on any number: ipi is one membarrier(2)
 * PRIVATE_EXPEDITED from CPU 0 while a thread of the process spins on CPU 1
 * (an IPI to CPU 1 and the wait for its answer); shootdown is one munmap on
 * CPU 0 of a page a thread on CPU 1 has just touched (a remote TLB flush);
 * futex is one wake and its answer between threads on CPUs 0 and 1, each
 * asleep in FUTEX_WAIT until woken; par is PAR_WORK rounds of an integer
 * hash split evenly over one thread per online CPU (the parallel speedup
 * is its time on one vCPU over its time on several).
 *
 * The network benchmarks talk TCP to a peer VM running `pvbench
 * net-server` (it serves until killed) at $PVBENCH_PEER (an IPv4 address)
 * port NET_PORT: net-stream sends 1 MiB per operation, net-rr is one
 * 1-byte request and its 1-byte answer per operation.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
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

#define BLK_SPAN (64L << 20)
#define BLK_BIG (1L << 20)
#define BLK_SMALL 4096L
static int blk_fd = -1;
static char *blk_buf;

static void blk_open(void)
{
	const char *path = getenv("PVBENCH_DISK");

	if (blk_fd >= 0)
		return;
	if (!path)
		path = "/dev/vda";
	blk_fd = open(path, O_RDWR | O_DIRECT);
	if (blk_fd < 0)
		die(path);
	if (posix_memalign((void **)&blk_buf, 4096, BLK_BIG))
		die("posix_memalign");
	memset(blk_buf, 0x5a, BLK_BIG);
}

static void bench_blk_seqwrite(long n)
{
	blk_open();
	for (long i = 0; i < n; i++) {
		off_t off = (i * BLK_BIG) % BLK_SPAN;

		if (pwrite(blk_fd, blk_buf, BLK_BIG, off) != BLK_BIG)
			die("blk-seqwrite");
	}
}

static void bench_blk_seqread(long n)
{
	blk_open();
	for (long i = 0; i < n; i++) {
		off_t off = (i * BLK_BIG) % BLK_SPAN;

		if (pread(blk_fd, blk_buf, BLK_BIG, off) != BLK_BIG)
			die("blk-seqread");
	}
}

static void bench_blk_randread(long n)
{
	static unsigned long long x = 0x9e3779b97f4a7c15ULL;

	blk_open();
	for (long i = 0; i < n; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		off_t off = (off_t)(x % (BLK_SPAN / BLK_SMALL)) * BLK_SMALL;

		if (pread(blk_fd, blk_buf, BLK_SMALL, off) != BLK_SMALL)
			die("blk-randread");
	}
}

#define NET_PORT 5001
#define NET_CHUNK (1L << 20)
static int net_fd = -1;

/* The first byte of a connection says what it is for: 's' stream, 'r' rr. */
static void net_connect(char kind)
{
	const char *peer = getenv("PVBENCH_PEER");
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(NET_PORT)};
	int one = 1;

	if (net_fd >= 0)
		return;
	if (!peer || inet_pton(AF_INET, peer, &sa.sin_addr) != 1) {
		errno = EINVAL;
		die("PVBENCH_PEER");
	}
	for (int try = 0;; try++) {
		net_fd = socket(AF_INET, SOCK_STREAM, 0);
		if (net_fd < 0)
			die("socket");
		if (connect(net_fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		if (try == 100)
			die("connect");
		close(net_fd);
		usleep(100000);
	}
	setsockopt(net_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (write(net_fd, &kind, 1) != 1)
		die("net hello");
}

static void bench_net_stream(long n)
{
	static char buf[NET_CHUNK];

	net_connect('s');
	for (long i = 0; i < n; i++) {
		for (long off = 0; off < NET_CHUNK;) {
			ssize_t w = write(net_fd, buf + off, NET_CHUNK - off);

			if (w <= 0)
				die("net-stream write");
			off += w;
		}
	}
	/* The peer acknowledges every byte with one byte at the end of each
	 * run, so the time covers delivery, not just the local send buffer.
	 */
	char c = 'e';

	if (write(net_fd, &c, 1) != 1 || read(net_fd, &c, 1) != 1)
		die("net-stream end");
}

static int rr_fd = -1;

static void bench_net_rr(long n)
{
	char c = 'x';

	if (rr_fd < 0) {
		int keep = net_fd;

		net_fd = -1;
		net_connect('r');
		rr_fd = net_fd;
		net_fd = keep;
	}
	for (long i = 0; i < n; i++) {
		if (write(rr_fd, &c, 1) != 1 || read(rr_fd, &c, 1) != 1)
			die("net-rr");
	}
}

/* The peer's side: stream connections are drained (a 0xff-free protocol:
 * the stream's bytes are zero, and 'e' ends a run and is answered),
 * rr connections echo every byte. One connection at a time per kind,
 * each in its own process.
 */
static void net_server(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(NET_PORT)};
	int one = 1, ls = socket(AF_INET, SOCK_STREAM, 0);

	if (ls < 0)
		die("socket");
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(ls, (struct sockaddr *)&sa, sizeof(sa)) || listen(ls, 4))
		die("bind/listen");
	dprintf(1, "pvbench-net-server ready\n");
	for (;;) {
		int c = accept(ls, NULL, NULL);
		char kind;

		if (c < 0)
			die("accept");
		setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (fork() == 0) {
			static char buf[1 << 16];

			if (read(c, &kind, 1) != 1)
				_exit(1);
			for (;;) {
				ssize_t r = read(c, buf, kind == 'r' ? 1 : sizeof(buf));

				if (r <= 0)
					_exit(0);
				if (kind == 'r' || buf[r - 1] == 'e') {
					if (write(c, buf + r - 1, 1) != 1)
						_exit(1);
				}
			}
		}
		close(c);
	}
}

/* ---- multiprocessor ---------------------------------------------------- */

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		die("sched_setaffinity (are two CPUs online?)");
}

/* The CPUs the process started with: every benchmark that pins gives them back. */
static cpu_set_t all_cpus;

static void unpin(void)
{
	if (sched_setaffinity(0, sizeof(all_cpus), &all_cpus))
		die("sched_setaffinity");
}

static void need_two_cpus(void)
{
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2) {
		fprintf(stderr, "pvbench: this benchmark needs two CPUs online\n");
		exit(1);
	}
}

static volatile int spin_stop;
static volatile char *shoot_page;
static volatile long shoot_seq, shoot_ack;

/* On CPU 1: keeps the process's mm loaded there, touching shoot_page. */
static void *spinner(void *arg)
{
	long seen = 0;

	(void)arg;
	pin(1);
	while (!spin_stop) {
		long s = shoot_seq;

		if (s != seen) {
			shoot_page[0]++;
			seen = s;
			__atomic_store_n(&shoot_ack, s, __ATOMIC_RELEASE);
		}
		__asm__ volatile("pause");
	}
	return NULL;
}

static void with_spinner(void (*body)(long), long n)
{
	pthread_t t;

	need_two_cpus();
	spin_stop = 0;
	if (pthread_create(&t, NULL, spinner, NULL))
		die("pthread_create");
	pin(0);
	body(n);
	spin_stop = 1;
	pthread_join(t, NULL);
	unpin();
}

static void ipi_body(long n)
{
	for (long i = 0; i < n; i++)
		if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0))
			die("membarrier");
}

static void bench_ipi(long n)
{
	if (syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0))
		die("membarrier register");
	with_spinner(ipi_body, n);
}

static void shootdown_body(long n)
{
	for (long i = 0; i < n; i++) {
		char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		long s = shoot_seq + 1;

		if (p == MAP_FAILED)
			die("mmap");
		p[0] = 1;
		shoot_page = p;
		__atomic_store_n(&shoot_seq, s, __ATOMIC_RELEASE);
		while (__atomic_load_n(&shoot_ack, __ATOMIC_ACQUIRE) != s)
			__asm__ volatile("pause");
		if (munmap(p, 4096))
			die("munmap");
	}
}

static void bench_shootdown(long n)
{
	static char first[4096];

	shoot_page = first;
	with_spinner(shootdown_body, n);
}

static int futex_word[2];

static long futex(int *w, int op, int val)
{
	return syscall(SYS_futex, w, op, val, NULL, NULL, 0);
}

/* Waits until *w is 1, then clears it. */
static void futex_take(int *w)
{
	while (!__atomic_exchange_n(w, 0, __ATOMIC_ACQUIRE))
		futex(w, FUTEX_WAIT_PRIVATE, 0);
}

static void futex_give(int *w)
{
	__atomic_store_n(w, 1, __ATOMIC_RELEASE);
	futex(w, FUTEX_WAKE_PRIVATE, 1);
}

static long futex_n;

static void *futex_peer(void *arg)
{
	(void)arg;
	pin(1);
	for (long i = 0; i < futex_n; i++) {
		futex_take(&futex_word[0]);
		futex_give(&futex_word[1]);
	}
	return NULL;
}

static void bench_futex(long n)
{
	pthread_t t;

	need_two_cpus();
	futex_n = n;
	futex_word[0] = futex_word[1] = 0;
	if (pthread_create(&t, NULL, futex_peer, NULL))
		die("pthread_create");
	pin(0);
	for (long i = 0; i < n; i++) {
		futex_give(&futex_word[0]);
		futex_take(&futex_word[1]);
	}
	pthread_join(t, NULL);
	unpin();
}

/* par: PAR_WORK rounds in all, over one thread per online CPU. */
#define PAR_WORK 200000000L

static volatile unsigned long par_sink;

static void *par_worker(void *arg)
{
	long rounds = (long)arg;
	unsigned long x = 0x9e3779b97f4a7c15UL ^ (unsigned long)rounds;

	for (long i = 0; i < rounds; i++)
		x = (x ^ (x >> 31)) * 0xbf58476d1ce4e5b9UL + (unsigned long)i;
	__atomic_fetch_xor(&par_sink, x, __ATOMIC_RELAXED);
	return NULL;
}

/* One operation is PAR_WORK/1000 rounds, so that ns/op compares across vCPU counts. */
static void bench_par(long n)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	pthread_t t[64];

	if (cpus < 1)
		cpus = 1;
	if (cpus > 64)
		cpus = 64;
	for (long i = 0; i < cpus; i++)
		if (pthread_create(&t[i], NULL, par_worker, (void *)(n * (PAR_WORK / 1000) / cpus)))
			die("pthread_create");
	for (long i = 0; i < cpus; i++)
		pthread_join(t[i], NULL);
}

static const struct bench {
	const char *name;
	void (*run)(long n);
	long iters;
	int named_only; /* runs only when named on the command line */
} benches[] = {
	{"syscall", bench_syscall, 100000, 0},
	{"fork", bench_fork, 300, 0},
	{"exec", bench_exec, 200, 0},
	{"pagefault", bench_pagefault, 8 * PF_PAGES, 0},
	{"ctxsw", bench_ctxsw, 10000, 0},
	{"console", bench_console, 200, 0},
	{"timer", bench_timer, 200, 0},
	{"blk-seqwrite", bench_blk_seqwrite, 64, 1},
	{"blk-seqread", bench_blk_seqread, 64, 1},
	{"blk-randread", bench_blk_randread, 2000, 1},
	{"net-stream", bench_net_stream, 64, 1},
	{"net-rr", bench_net_rr, 2000, 1},
	{"ipi", bench_ipi, 2000, 1},
	{"shootdown", bench_shootdown, 1000, 1},
	{"futex", bench_futex, 2000, 1},
	{"par", bench_par, 1000, 1},
};

int main(int argc, char **argv)
{
	int ran = 0;

	if (argc == 2 && strcmp(argv[1], "net-server") == 0) {
		net_server();
		return 1;
	}
	if (sched_getaffinity(0, sizeof(all_cpus), &all_cpus))
		die("sched_getaffinity");
	dprintf(1, "pvbench-start\n");
	for (size_t i = 0; i < sizeof(benches) / sizeof(benches[0]); i++) {
		const struct bench *b = &benches[i];
		int want = argc < 2 && !b->named_only;

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
		fprintf(stderr, "pvbench: no benchmark matched; have syscall fork exec pagefault ctxsw console timer, and blk-seqwrite blk-seqread blk-randread net-stream net-rr ipi shootdown futex par (and net-server)\n");
		return 2;
	}
	return 0;
}
