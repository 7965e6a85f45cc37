/*
 * logl: the x87 transcendental instructions behind glibc's long double
 * functions.
 *
 * glibc 2.36 computes logl, expl, sinl, cosl, tanl, atan2l, log1pl, exp2l
 * and powl on x86-64 with FYL2X, FYL2XP1, F2XM1, FSCALE, FRNDINT, FSIN,
 * FCOS, FPTAN, FPATAN, FPREM and FXTRACT. The program calls each on a set
 * of inputs and compares the result with the true value, to within MAXULP
 * units in the last place of the 64-bit significand. The true values are
 * those of the long double nearest each input literal, computed with
 * Python's mpmath at 40 digits, e.g.
 *
 *     mpmath.mp.dps = 40; mpmath.log(mpmath.mpf(12345.678L))
 *
 * and written here with 36 significant digits (more than a long double
 * holds, so the literal rounds to the nearest long double). An instruction
 * the engine does not implement raises #UD; the program catches SIGILL and
 * SIGFPE and reports where. Success: every result within MAXULP, and the
 * machine still running.
 */
#include "unpriv.h"

#include <math.h>
#include <signal.h>
#include <ucontext.h>

#define MAXULP 4

struct row {
	const char *fn;
	int nargs;
	long double x, y, want;
};

static const struct row rows[] = {
	{"logl", 1, 2L, 0, 6.93147180559945309417232121458176568e-1L},
	{"logl", 1, 10L, 0, 2.30258509299404568401799145468436421L},
	{"logl", 1, 0.5L, 0, -6.93147180559945309417232121458176568e-1L},
	{"logl", 1, 1e-4000L, 0, -9.21034037197618273607197856107707912e+3L},
	{"logl", 1, 1.0000001L, 0, 9.99999949999485539243965377069118728e-8L},
	{"logl", 1, 12345.678L, 0, 9.42106132129183197652160413410300665L},
	{"logl", 1, 1e4000L, 0, 9.21034037197618273607196236512476679e+3L},
	{"expl", 1, 1L, 0, 2.7182818284590452353602874713526625L},
	{"expl", 1, -1L, 0, 3.67879441171442321595523770161460867e-1L},
	{"expl", 1, 10L, 0, 2.20264657948067165169579006452842444e+4L},
	{"expl", 1, -20L, 0, 2.06115362243855782796594038015582098e-9L},
	{"expl", 1, 0.001L, 0, 1.00100050016670834166801420785326921L},
	{"expl", 1, 11356L, 0, 7.04914579998566243846196748833784963e+4931L},
	{"expl", 1, -11355L, 0, 3.85618613316889269896918451403944079e-4932L},
	{"sinl", 1, 0.5L, 0, 4.79425538604203000273287935215571388e-1L},
	{"sinl", 1, 1L, 0, 8.41470984807896506652502321630299e-1L},
	{"sinl", 1, 3L, 0, 1.4112000805986722210074480280811028e-1L},
	{"sinl", 1, 100L, 0, -5.06365641109758793656557610459785432e-1L},
	{"sinl", 1, 1e-10L, 0, 1.00000000000000000001671126382916997e-10L},
	{"sinl", 1, -2.5L, 0, -5.98472144103956494051854702186162272e-1L},
	{"cosl", 1, 0.5L, 0, 8.77582561890372716116281582603829652e-1L},
	{"cosl", 1, 1L, 0, 5.40302305868139717400936607442976604e-1L},
	{"cosl", 1, 3L, 0, -9.89992496600445457271572794731261302e-1L},
	{"cosl", 1, 100L, 0, 8.62318872287683934101938513950842536e-1L},
	{"cosl", 1, 1e-10L, 0, 9.99999999999999999995e-1L},
	{"tanl", 1, 0.5L, 0, 5.46302489843790513255179465780285383e-1L},
	{"tanl", 1, 1L, 0, 1.55740772465490223050697480745836017L},
	{"tanl", 1, 1.5L, 0, 1.41014199471717193876460836519877564e+1L},
	{"tanl", 1, -3L, 0, 1.42546543074277805295635410533913493e-1L},
	{"tanl", 1, 100L, 0, -5.87213915156929076677809635644587894e-1L},
	{"atan2l", 2, 1L, 1L, 7.85398163397448309615660845819875721e-1L},
	{"atan2l", 2, 1L, -1L, 2.35619449019234492884698253745962716L},
	{"atan2l", 2, -1L, -1L, -2.35619449019234492884698253745962716L},
	{"atan2l", 2, 3L, 4L, 6.43501108793284386802809228717322638e-1L},
	{"atan2l", 2, 1e-300L, 1L, 9.99999999999999999965300056673511208e-301L},
	{"atan2l", 2, 1L, 1e-300L, 1.57079632679489661923132169163975144L},
	{"atan2l", 2, 0L, -1L, 3.14159265358979323846264338327950288L},
	{"log1pl", 1, 1e-10L, 0, 9.99999999950000000021711263827082182e-11L},
	{"log1pl", 1, 0.5L, 0, 4.05465108108164381978013115464349137e-1L},
	{"log1pl", 1, 1L, 0, 6.93147180559945309417232121458176568e-1L},
	{"log1pl", 1, -0.5L, 0, -6.93147180559945309417232121458176568e-1L},
	{"log1pl", 1, 1e-20L, 0, 1.00000000000000000002916395822511968e-20L},
	{"exp2l", 1, 0.5L, 0, 1.41421356237309504880168872420969808L},
	{"exp2l", 1, 10.25L, 0, 1.21774808576278637231871996985392734e+3L},
	{"exp2l", 1, -100.75L, 0, 4.69059500618157214824278454132361097e-31L},
	{"exp2l", 1, 1e-10L, 0, 1.00000000006931471805839679601264358L},
	{"exp2l", 1, 16383.5L, 0, 8.4126720815831006364134570999607349e+4931L},
	{"powl", 2, 2L, 0.5L, 1.41421356237309504880168872420969808L},
	{"powl", 2, 3L, 40L, 1.2157665459056928801e+19L},
	{"powl", 2, 10L, -3L, 1.0e-3L},
	{"powl", 2, 1.0001L, 10000L, 2.71814592682522609930480416431144031L},
	{"powl", 2, 2.5L, 3.5L, 2.47052942200654635312413558158806135e+1L},
	{"powl", 2, 0.3L, 100L, 5.15377520732011332899039221858420565e-53L},
};

#define NROW ((int)(sizeof(rows) / sizeof(rows[0])))

static volatile int current = -1;

static void on_signal(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;
	const uint8_t *ip = (const uint8_t *)uc->uc_mcontext.gregs[REG_RIP];

	(void)si;
	printf("attack logl: BREACH %s(%s) raised signal %d at rip %p: bytes %02x %02x %02x %02x\n",
	       current >= 0 ? rows[current].fn : "?", current >= 0 ? "..." : "", sig, (const void *)ip, ip[0], ip[1],
	       ip[2], ip[3]);
	fflush(stdout);
	_exit(1);
}

static long double call(const struct row *r)
{
	/* volatile: the compiler must not fold the call at build time. */
	volatile long double x = r->x, y = r->y;
	const char *f = r->fn;

	if (!strcmp(f, "logl"))
		return logl(x);
	if (!strcmp(f, "expl"))
		return expl(x);
	if (!strcmp(f, "sinl"))
		return sinl(x);
	if (!strcmp(f, "cosl"))
		return cosl(x);
	if (!strcmp(f, "tanl"))
		return tanl(x);
	if (!strcmp(f, "atan2l"))
		return atan2l(x, y);
	if (!strcmp(f, "log1pl"))
		return log1pl(x);
	if (!strcmp(f, "exp2l"))
		return exp2l(x);
	if (!strcmp(f, "powl"))
		return powl(x, y);
	attack_fail("unknown function %s", f);
}

/* ulps is |got - want| in units of the last place of want. */
static long double ulps(long double got, long double want)
{
	if (isnan(got) || isinf(got))
		return INFINITY;
	if (got == want)
		return 0;
	return fabsl(got - want) / ldexpl(1.0L, ilogbl(want) - 63);
}

int main(void)
{
	struct sigaction sa;
	int bad = 0;
	long double worst = 0;

	drop_privileges("logl");
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_signal;
	sa.sa_flags = SA_SIGINFO;
	if (sigaction(SIGILL, &sa, NULL) != 0 || sigaction(SIGFPE, &sa, NULL) != 0 ||
	    sigaction(SIGSEGV, &sa, NULL) != 0)
		attack_fail("sigaction");
	for (int i = 0; i < NROW; i++) {
		const struct row *r = &rows[i];
		long double got, u;

		current = i;
		got = call(r);
		u = ulps(got, r->want);
		if (u > worst)
			worst = u;
		if (r->nargs == 1)
			printf("logl: %s(%.21Lg) = %.21Lg, want %.21Lg: %.1Lf ulp\n", r->fn, r->x, got, r->want, u);
		else
			printf("logl: %s(%.21Lg, %.21Lg) = %.21Lg, want %.21Lg: %.1Lf ulp\n", r->fn, r->x, r->y, got,
			       r->want, u);
		if (!(u <= MAXULP)) {
			bad++;
			printf("logl: %s: off by %.3Lg ulp (more than %d)\n", r->fn, u, MAXULP);
		}
	}
	attack_result(bad != 0, "%d of %d long double results off by more than %d ulp; worst %.1Lf ulp", bad, NROW, MAXULP,
		      worst);
}
