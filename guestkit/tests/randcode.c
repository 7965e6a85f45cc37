/*
 * randcode: random and rare machine code from user mode.
 *
 * 40 seeds; for each the parent forks a child, which runs 64 pieces of
 * code from its own read-write-execute page and is reaped by the parent.
 * Seeds cycle through three kinds of page: random bytes; a sequence of
 * rare instruction forms (IRETD, LRETW, far jumps and calls, the x87
 * transcendentals, FXSAVE/FRSTOR, MMX and 3DNow!, VEX/EVEX/XOP, stacked
 * prefixes such as 44 66 03 03, over-long instructions, system
 * instructions, VMCALL...); and the two mixed. Each piece is entered at a
 * random offset with the general registers cleared except RSP (a scratch
 * stack) and RBX/RSI/RDI/RBP (a scratch data area), under a 10 ms timer;
 * SIGSEGV, SIGILL, SIGFPE, SIGBUS, SIGTRAP and SIGALRM are caught on an
 * alternate stack and return to the loop (after restoring the TLS base,
 * which a MOV to FS may have cleared).
 *
 * The child is fenced in as far as an unprivileged process can be: its
 * own process group, no new processes (RLIMIT_NPROC 0), 64 MiB of address
 * space, 4 s of CPU, standard streams on /dev/null. The parent kills a
 * child that has not ended after 30 s. Success: every child ended (exit or
 * signal) and the machine still runs; the result line counts the endings.
 */
#include "unpriv.h"

#include <asm/prctl.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <ucontext.h>

#define SEEDS 40
#define PIECES 64
#define PAGE 4096
#define SCRATCH (16 * PAGE)
#define CHILD_DEADLINE 30.0

/* rare lists the forms the instruction pages are made of. */
static const struct {
	uint8_t n, b[15];
} rare[] = {
	{1, {0xcf}}, {2, {0x48, 0xcf}}, {2, {0x66, 0xcf}},                   /* iretd, iretq, iretw */
	{1, {0xcb}}, {2, {0x66, 0xcb}}, {2, {0x48, 0xcb}}, {3, {0xca, 8, 0}}, /* lret, lretw, lretq, lret $8 */
	{3, {0xff, 0x2c, 0x24}}, {4, {0x48, 0xff, 0x2c, 0x24}}, {3, {0xff, 0x1c, 0x24}}, /* ljmp, lcall *(%rsp) */
	{7, {0xea, 0, 0, 0, 0, 0x33, 0}}, {7, {0x9a, 0, 0, 0, 0, 0x33, 0}},           /* invalid in 64-bit */
	{2, {0xd9, 0xfe}}, {2, {0xd9, 0xff}}, {2, {0xd9, 0xfb}}, {2, {0xd9, 0xf2}},     /* fsin fcos fsincos fptan */
	{2, {0xd9, 0xf3}}, {2, {0xd9, 0xf1}}, {2, {0xd9, 0xf9}}, {2, {0xd9, 0xf0}},     /* fpatan fyl2x fyl2xp1 f2xm1 */
	{2, {0xd9, 0xfd}}, {2, {0xd9, 0xf8}}, {2, {0xd9, 0xf5}}, {2, {0xd9, 0xf4}},     /* fscale fprem fprem1 fxtract */
	{2, {0xd9, 0xfc}}, {2, {0xd9, 0xfa}}, {2, {0xd9, 0xe8}}, {2, {0xd9, 0xeb}},     /* frndint fsqrt fld1 fldpi */
	{2, {0xd9, 0xee}}, {2, {0xde, 0xf9}}, {2, {0xdb, 0xf1}}, {2, {0xda, 0xc1}},     /* fldz fdivp fcomi fcmovb */
	{2, {0xd9, 0xf7}}, {2, {0xd9, 0xf6}}, {2, {0xdd, 0xc1}}, {2, {0xdb, 0xe3}},     /* fincstp fdecstp ffree fninit */
	{3, {0xdf, 0x24, 0x24}}, {3, {0xdf, 0x34, 0x24}},                             /* fbld fbstp */
	{3, {0xd9, 0x24, 0x24}}, {3, {0xd9, 0x34, 0x24}}, {3, {0xd9, 0x2c, 0x24}},      /* fldenv fnstenv fldcw */
	{3, {0xdd, 0x24, 0x24}}, {3, {0xdd, 0x34, 0x24}}, {3, {0xdb, 0x14, 0x24}},      /* frstor fnsave fist */
	{4, {0x0f, 0xae, 0x04, 0x24}}, {4, {0x0f, 0xae, 0x0c, 0x24}}, {5, {0x48, 0x0f, 0xae, 0x0c, 0x24}}, /* fxsave/rstor */
	{3, {0x0f, 0x6f, 0xc1}}, {3, {0x0f, 0xfc, 0xc1}}, {2, {0x0f, 0x77}}, {3, {0x0f, 0x6e, 0xc0}}, /* MMX */
	{3, {0x0f, 0x7e, 0xc0}}, {3, {0x0f, 0xd5, 0xc1}}, {4, {0x0f, 0x7f, 0x04, 0x24}}, {4, {0x0f, 0x73, 0xd0, 5}},
	{4, {0x0f, 0x71, 0xe0, 3}}, {3, {0x0f, 0x63, 0xc1}}, {3, {0x0f, 0xf5, 0xc1}}, {3, {0x0f, 0xd7, 0xc1}},
	{2, {0x0f, 0x0e}}, {4, {0x0f, 0x0f, 0xc1, 0xb4}}, {4, {0x0f, 0x38, 0x00, 0xc1}}, {4, {0x0f, 0xc4, 0xc0, 1}},
	{4, {0x44, 0x66, 0x03, 0x03}}, {3, {0x66, 0x48, 0x90}}, {5, {0x40, 0x40, 0x40, 0x48, 0x90}}, /* prefixes */
	{15, {0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x90}},
	{2, {0xf0, 0x90}}, {3, {0xf0, 0x01, 0xc0}}, {4, {0xf0, 0x0f, 0xc7, 0x0e}}, {4, {0x48, 0x0f, 0xc7, 0x0e}},
	{8, {0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0x8b, 0x03}}, {3, {0x67, 0x8b, 0x03}}, {5, {0xf2, 0xf3, 0x0f, 0x10, 0xc1}},
	{5, {0x66, 0xf2, 0x0f, 0x58, 0xc1}}, {4, {0xf3, 0x0f, 0xb8, 0xc0}}, {4, {0xf3, 0x0f, 0xbc, 0xc0}},
	{5, {0xc4, 0xe2, 0x79, 0x18, 0xc0}}, {3, {0xc5, 0xf8, 0x77}}, {6, {0x62, 0xf1, 0x7c, 0x48, 0x10, 0xc1}}, /* VEX EVEX */
	{5, {0x8f, 0xe9, 0x78, 0x01, 0xc0}},                                                         /* XOP */
	{2, {0x0f, 0x0b}}, {3, {0x0f, 0xb9, 0xc0}}, {3, {0x0f, 0xff, 0xc0}}, {1, {0xce}}, {2, {0xd4, 0x0a}},
	{2, {0xd5, 0x0a}}, {1, {0x27}}, {1, {0x3f}}, {1, {0x06}}, {1, {0x0e}}, {1, {0x17}}, {1, {0x60}}, {1, {0xd6}},
	{4, {0xc8, 0xff, 0xff, 0xff}}, {1, {0xc9}}, {2, {0x0f, 0xa2}}, {2, {0x0f, 0x31}}, {3, {0x0f, 0x01, 0xf9}},
	{3, {0x0f, 0x01, 0xd0}}, {3, {0x0f, 0x01, 0xc1}}, {3, {0x0f, 0x01, 0xd9}}, {3, {0x0f, 0x01, 0xf8}},
	{2, {0x0f, 0x34}}, {2, {0x0f, 0x35}}, {1, {0xf4}}, {1, {0xfa}}, {1, {0xfb}}, {2, {0xe4, 0x60}},
	{3, {0x0f, 0x00, 0xc0}}, {4, {0x0f, 0x01, 0x04, 0x24}}, {4, {0x0f, 0x01, 0x0c, 0x24}}, {3, {0x0f, 0x02, 0xc0}},
	{3, {0x0f, 0x03, 0xc0}}, {3, {0x0f, 0x00, 0xe0}}, {2, {0x8e, 0xe0}}, {2, {0x8e, 0xe8}}, {2, {0x8c, 0xc8}},
	{2, {0x0f, 0xa1}}, {2, {0x0f, 0xa0}}, {1, {0x9c}}, {1, {0x9d}}, {2, {0xf3, 0xa4}}, {2, {0xf3, 0xab}},
	{2, {0xf2, 0xae}}, {3, {0x0f, 0xae, 0xf8}}, {3, {0x0f, 0x18, 0x03}}, {3, {0x0f, 0x0d, 0x03}},
	{3, {0x0f, 0xc7, 0xf0}}, {3, {0x0f, 0xc7, 0xf8}}, {4, {0xf3, 0x0f, 0xae, 0xc0}}, {5, {0xf3, 0x48, 0x0f, 0xae, 0xd0}},
	{3, {0x0f, 0x01, 0xca}}, {3, {0x0f, 0x01, 0xcb}}, {3, {0x0f, 0x01, 0xe8}}, {3, {0x0f, 0x01, 0xee}},
	{3, {0x0f, 0x01, 0xef}}, {2, {0x0f, 0x37}}, {2, {0x0f, 0xaa}}, {1, {0xf1}}, {1, {0xcc}}, {2, {0xcd, 0x80}},
	{2, {0xcd, 0x08}}, {2, {0xe2, 0xfe}}, {2, {0xeb, 0xfe}}, {3, {0x0f, 0x20, 0xc0}}, {3, {0x0f, 0x22, 0xd8}},
	{2, {0x0f, 0x32}}, {2, {0x0f, 0x30}}, {3, {0x0f, 0x01, 0x3b}}, {2, {0x0f, 0x09}}, {2, {0x0f, 0x06}},
};
#define NRARE ((int)(sizeof(rare) / sizeof(rare[0])))

static const uint8_t prefixes[] = {0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0x66, 0x67, 0xf0, 0xf2, 0xf3, 0x40, 0x41, 0x44, 0x48, 0x4f};

static uint8_t *code, *scratch;
static uint64_t rng; /* the child's random state (static: it lives across siglongjmp) */
static sigjmp_buf piece_env;
static unsigned long tls_base;

/*
 * enter_piece(code, stack, data) jumps to code with RSP = stack, RBX, RSI,
 * RDI and RBP = data, RCX = 64 and every other general register 0. It
 * never returns: the piece ends in a signal (a RET finds ud2 on the
 * stack).
 */
void enter_piece(uint8_t *code, uint8_t *stack, uint8_t *data);
__asm__(".text\n"
	"enter_piece:\n"
	"	mov %rsi, %rsp\n"
	"	mov %rdi, %r11\n"
	"	mov %rdx, %rbx\n"
	"	mov %rdx, %rsi\n"
	"	mov %rdx, %rdi\n"
	"	mov %rdx, %rbp\n"
	"	mov $64, %ecx\n"
	"	xor %eax, %eax\n"
	"	xor %edx, %edx\n"
	"	xor %r8d, %r8d\n"
	"	xor %r9d, %r9d\n"
	"	xor %r10d, %r10d\n"
	"	xor %r12d, %r12d\n"
	"	xor %r13d, %r13d\n"
	"	xor %r14d, %r14d\n"
	"	xor %r15d, %r15d\n"
	"	jmp *%r11\n"
	"piece_landing:\n"
	"	ud2\n");
extern const char piece_landing[];

static void on_signal(int sig, siginfo_t *si, void *uc)
{
	long ret;

	(void)si, (void)uc;
	/* A piece may have loaded FS: put glibc's thread pointer back
	 * before siglongjmp, which reads its pointer guard through FS. */
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(SYS_arch_prctl), "D"(ARCH_SET_FS), "S"(tls_base)
			 : "rcx", "r11", "memory");
	siglongjmp(piece_env, sig);
}

static void fill_page(uint64_t *s, int kind)
{
	int i = 0;

	while (i < PAGE) {
		uint64_t r = rng_next(s);

		if (kind == 0 || (kind == 2 && (r & 1))) {
			code[i++] = r >> 8;
			continue;
		}
		if ((r >> 1) % 4 == 0) /* a few stacked prefixes first */
			for (int n = (r >> 3) % 4; n > 0 && i < PAGE; n--)
				code[i++] = prefixes[(r >> (8 + 4 * n)) % sizeof(prefixes)];
		int k = (r >> 32) % NRARE;
		for (int j = 0; j < rare[k].n && i < PAGE; j++)
			code[i++] = rare[k].b[j];
	}
}

static void child(int seed)
{
	static const int sigs[] = {SIGSEGV, SIGILL, SIGFPE, SIGBUS, SIGTRAP, SIGALRM};
	struct rlimit none = {0, 0}, as = {64 << 20, 64 << 20}, cpu = {4, 5};
	stack_t alt;
	struct sigaction sa;
	int fd;

	setpgid(0, 0);
	fd = open("/dev/null", O_RDWR);
	if (fd < 0 || dup2(fd, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
		_exit(120);
	if (setrlimit(RLIMIT_NPROC, &none) != 0 || setrlimit(RLIMIT_CORE, &none) != 0 ||
	    setrlimit(RLIMIT_FSIZE, &none) != 0 || setrlimit(RLIMIT_CPU, &cpu) != 0)
		_exit(121);
	code = mmap(NULL, PAGE, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	scratch = mmap(NULL, SCRATCH, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	alt.ss_sp = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (code == MAP_FAILED || scratch == MAP_FAILED || alt.ss_sp == MAP_FAILED)
		_exit(122);
	alt.ss_size = 4 * PAGE;
	alt.ss_flags = 0;
	if (sigaltstack(&alt, NULL) != 0 || syscall(SYS_arch_prctl, ARCH_GET_FS, &tls_base) != 0)
		_exit(123);
	if (setrlimit(RLIMIT_AS, &as) != 0)
		_exit(124);
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_signal;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigfillset(&sa.sa_mask);
	for (unsigned i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (sigaction(sigs[i], &sa, NULL) != 0)
			_exit(125);

	rng = 0x243f6a8885a308d3ULL * (seed + 1);
	for (int p = 0; p < PIECES; p++) {
		struct itimerval t = {{0, 0}, {0, 10000}}, off = {{0, 0}, {0, 0}};
		uint64_t r;

		fill_page(&rng, seed % 3);
		r = rng_next(&rng);
		memset(scratch, 0, SCRATCH);
		*(uint64_t *)(scratch + SCRATCH - 64) = (uint64_t)piece_landing;
		__asm__ volatile("fninit");
		if (sigsetjmp(piece_env, 1) == 0) {
			setitimer(ITIMER_REAL, &t, NULL);
			enter_piece(code + r % (PAGE - 16), scratch + SCRATCH - 64, scratch + SCRATCH / 2);
		}
		setitimer(ITIMER_REAL, &off, NULL);
	}
	_exit(0);
}

int main(void)
{
	/* endings[0]: exited 0 (all pieces ran), [1]: exited otherwise,
	 * [2 + sig]: killed by sig. */
	long endings[2 + 65] = {0}, killed = 0;
	double t0;
	char detail[512];
	int n = 0;

	drop_privileges("randcode");
	for (int sig = 1; sig < 32; sig++)
		if (sig != SIGKILL && sig != SIGSTOP && sig != SIGCHLD)
			signal(sig, SIG_IGN); /* a stray kill(0 or -1, ...) from a child */
	t0 = now_seconds();
	for (int seed = 0; seed < SEEDS; seed++) {
		pid_t pid;
		int st;
		double start = now_seconds();

		fflush(stdout);
		pid = fork();
		if (pid < 0)
			attack_fail("fork");
		if (pid == 0) {
			for (int sig = 1; sig < 32; sig++)
				signal(sig, SIG_DFL);
			child(seed);
		}
		for (;;) {
			pid_t w = waitpid(pid, &st, WNOHANG);
			struct timespec ts = {0, 5000000};

			if (w == pid)
				break;
			if (w < 0)
				attack_fail("waitpid");
			if (now_seconds() - start > CHILD_DEADLINE) {
				kill(pid, SIGKILL);
				killed++;
				if (waitpid(pid, &st, 0) != pid)
					attack_fail("waitpid");
				break;
			}
			nanosleep(&ts, NULL);
		}
		if (WIFEXITED(st))
			endings[WEXITSTATUS(st) == 0 ? 0 : 1]++;
		else if (WIFSIGNALED(st) && WTERMSIG(st) < 65)
			endings[2 + WTERMSIG(st)]++;
		printf("randcode: seed %d: %s %d after %.2f s\n", seed, WIFEXITED(st) ? "exit" : "signal",
		       WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), now_seconds() - start);
	}
	n += snprintf(detail + n, sizeof(detail) - n, "exit0=%ld exit-other=%ld", endings[0], endings[1]);
	for (int sig = 1; sig < 65; sig++)
		if (endings[2 + sig])
			n += snprintf(detail + n, sizeof(detail) - n, " sig%d=%ld", sig, endings[2 + sig]);
	if (killed != 0)
		attack_result(1, "%ld of %d children did not end within %.0f s (%s)", killed, SEEDS, CHILD_DEADLINE, detail);
	attack_result(0, "%d children, %d pieces each, all ended in %.1f s: %s", SEEDS, PIECES, now_seconds() - t0, detail);
}
