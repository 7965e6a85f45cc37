/*
 * mprotectloop: a CPU-bound attacker made of TLB flushes. Each mprotect of
 * a touched page makes the kernel flush its translation: in pv mode a
 * TLB-flush hypercall, in trap mode an INVLPG exit. The loop spends most
 * of its time in the hypervisor, where a scheduler that charges only
 * guest execution would lose track of it. Usage: mprotectloop [SECONDS]
 * (0 or none: until killed).
 */
#include "unpriv.h"

#include <sys/mman.h>

static volatile char *page;

static void step(void)
{
	page[0]++;
	mprotect((void *)page, 4096, PROT_READ);
	mprotect((void *)page, 4096, PROT_READ | PROT_WRITE);
}

int main(int argc, char **argv)
{
	page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (page == MAP_FAILED) {
		attack_name = "mprotectloop";
		attack_fail("mmap");
	}
	run_loop("mprotectloop", argc, argv, step);
}
