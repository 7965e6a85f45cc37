/*
 * cpuidloop: a CPU-bound attacker made of exits. CPUID exits to the
 * hypervisor in trap and hwassist mode (as under VT-x), so the loop spends
 * most of its time in the hypervisor's exit path, where a scheduler that
 * charges only guest execution would lose track of it. Usage:
 * cpuidloop [SECONDS] (0 or none: until killed).
 */
#include "unpriv.h"

static void step(void)
{
	unsigned a = 0, b, c = 0, d;

	__asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
}

int main(int argc, char **argv)
{
	run_loop("cpuidloop", argc, argv, step);
}
