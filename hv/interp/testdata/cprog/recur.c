/* Recursion: Fibonacci, Ackermann, and a mutually recursive pair. */
#include "prog.h"

u64 fib(u64 n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

u64 ack(u64 m, u64 n)
{
	if (m == 0)
		return n + 1;
	if (n == 0)
		return ack(m - 1, 1);
	return ack(m - 1, ack(m, n - 1));
}

static u64 hof_m(u64 n);
static __attribute__((noinline)) u64 hof_f(u64 n) { return n == 0 ? 1 : n - hof_m(hof_f(n - 1)); }
static __attribute__((noinline)) u64 hof_m(u64 n) { return n == 0 ? 0 : n - hof_f(hof_m(n - 1)); }

/* args: {fib n, ack m, ack n, hofstadter n}; out: fib, ack, F(n), M(n). */
void recur(const u64 *args, u64 *out)
{
	out[0] = fib(args[0]);
	out[1] = ack(args[1], args[2]);
	out[2] = hof_f(args[3]);
	out[3] = hof_m(args[3]);
}
