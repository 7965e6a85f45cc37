/*
 * privinsn: privileged and system instructions from user mode.
 *
 * At CPL 3 each instruction below must fault and reach the kernel only as
 * an exception (SIGSEGV for #GP, SIGILL for #UD), never act: HLT, CLI/STI
 * and port I/O (IOPL 0, no I/O bitmap), MSR and control/debug register
 * access, descriptor-table loads, INVLPG, WBINVD/INVD, CLTS, SWAPGS,
 * SYSRET, far returns, jumps and calls to the kernel's code selector, and
 * segment loads of kernel selectors (#GP with the selector as error code).
 * VMCALL and VMMCALL from user mode raise #UD (docs/abi.md), whatever RAX
 * asks for: here the harmless version and yield calls, which would return
 * a value if they ran. Instructions whose fault differs between CPU
 * vendors (SYSENTER, SYSEXIT, XSETBV, MONITOR, MWAIT) may give either
 * signal. Then it checks that the kernel still forks.
 */
#include "stubs.h"

#define GP 13
#define UD 6
#define EITHER -1 /* #GP or #UD */

struct insn {
	const char *name;
	uint8_t code[20];
	int len, at; /* bytes, and offset of the instruction that must fault */
	long trapno, err;
};

/* KCS and KSS are Linux's kernel code and data selectors (__KERNEL_CS,
 * __KERNEL_DS: GDT entries 2 and 3). */
#define KCS 0x10
#define KSS 0x18

static const struct insn insns[] = {
	{"hlt", {0xf4}, 1, 0, GP, 0},
	{"cli", {0xfa}, 1, 0, GP, 0},
	{"sti", {0xfb}, 1, 0, GP, 0},
	{"in $0x60", {0xe4, 0x60}, 2, 0, GP, 0},
	{"out $0x80", {0xe6, 0x80}, 2, 0, GP, 0},
	{"in dx (0x3f8)", {0x66, 0xba, 0xf8, 0x03, 0xec}, 5, 4, GP, 0},
	{"out dx (0x64)", {0x66, 0xba, 0x64, 0x00, 0xb0, 0xfe, 0xee}, 7, 6, GP, 0},
	{"insb", {0x6c}, 1, 0, GP, 0},
	{"outsb", {0x6e}, 1, 0, GP, 0},
	{"rdmsr", {0x31, 0xc9, 0x0f, 0x32}, 4, 2, GP, 0},
	{"wrmsr", {0x31, 0xc9, 0x31, 0xd2, 0x0f, 0x30}, 6, 4, GP, 0},
	{"rdpmc", {0x31, 0xc9, 0x0f, 0x33}, 4, 2, GP, 0},
	{"mov cr0, rax", {0x0f, 0x20, 0xc0}, 3, 0, GP, 0},
	{"mov rax, cr3", {0x31, 0xc0, 0x0f, 0x22, 0xd8}, 5, 2, GP, 0},
	{"mov rax, cr4", {0x31, 0xc0, 0x0f, 0x22, 0xe0}, 5, 2, GP, 0},
	{"mov dr7, rax", {0x0f, 0x21, 0xf8}, 3, 0, GP, 0},
	{"mov rax, dr7", {0x31, 0xc0, 0x0f, 0x23, 0xf8}, 5, 2, GP, 0},
	{"lgdt", {0x0f, 0x01, 0x14, 0x24}, 4, 0, GP, 0},
	{"lidt", {0x0f, 0x01, 0x1c, 0x24}, 4, 0, GP, 0},
	{"lldt", {0x31, 0xc0, 0x0f, 0x00, 0xd0}, 5, 2, GP, 0},
	{"ltr", {0x31, 0xc0, 0x0f, 0x00, 0xd8}, 5, 2, GP, 0},
	{"lmsw", {0x31, 0xc0, 0x0f, 0x01, 0xf0}, 5, 2, GP, 0},
	{"invlpg", {0x0f, 0x01, 0x3c, 0x24}, 4, 0, GP, 0},
	{"wbinvd", {0x0f, 0x09}, 2, 0, GP, 0},
	{"invd", {0x0f, 0x08}, 2, 0, GP, 0},
	{"clts", {0x0f, 0x06}, 2, 0, GP, 0},
	{"swapgs", {0x0f, 0x01, 0xf8}, 3, 0, GP, 0},
	{"sysretq", {0x48, 0x0f, 0x07}, 3, 0, GP, 0},
	{"sysret", {0x0f, 0x07}, 2, 0, GP, 0},
	{"sysenter", {0x0f, 0x34}, 2, 0, EITHER, 0},
	{"sysexit", {0x0f, 0x35}, 2, 0, EITHER, 0},
	{"xsetbv", {0x31, 0xc9, 0x31, 0xc0, 0x31, 0xd2, 0x0f, 0x01, 0xd1}, 9, 6, EITHER, 0},
	{"monitor", {0x0f, 0x01, 0xc8}, 3, 0, EITHER, 0},
	{"mwait", {0x0f, 0x01, 0xc9}, 3, 0, EITHER, 0},
	{"vmcall version", {0x31, 0xc0, 0x0f, 0x01, 0xc1}, 5, 2, UD, 0},
	{"vmmcall version", {0x31, 0xc0, 0x0f, 0x01, 0xd9}, 5, 2, UD, 0},
	{"vmcall yield", {0xb0, 14, 0x0f, 0x01, 0xc1}, 5, 2, UD, 0},
	{"vmmcall yield", {0xb0, 14, 0x0f, 0x01, 0xd9}, 5, 2, UD, 0},
	/* push ss, rsp, rflags, cs, rip of a kernel-mode frame; iretq */
	{"iretq to ring 0", {0x6a, KSS, 0x6a, 0, 0x6a, 2, 0x6a, KCS, 0x6a, 0, 0x48, 0xcf}, 12, 10, GP, KCS},
	{"lretq to ring 0", {0x6a, KCS, 0x6a, 0, 0x48, 0xcb}, 6, 4, GP, KCS},
	/* mov $KCS<<32, %rax; push %rax; ljmp/lcall *(%rsp) (m16:32) */
	{"ljmp to ring 0", {0x48, 0xb8, 0, 0, 0, 0, KCS, 0, 0, 0, 0x50, 0xff, 0x2c, 0x24}, 14, 11, GP, KCS},
	{"lcall to ring 0", {0x48, 0xb8, 0, 0, 0, 0, KCS, 0, 0, 0, 0x50, 0xff, 0x1c, 0x24}, 14, 11, GP, KCS},
	/* mov $sel, %ax; mov %ax, %ds / %ss */
	{"mov ds, kernel", {0x66, 0xb8, KSS, 0, 0x8e, 0xd8}, 6, 4, GP, KSS},
	{"mov ss, kernel", {0x66, 0xb8, KSS, 0, 0x8e, 0xd0}, 6, 4, GP, KSS},
	{"mov es, kernel cs", {0x66, 0xb8, KCS, 0, 0x8e, 0xc0}, 6, 4, GP, KCS},
};

#define NINSN ((int)(sizeof(insns) / sizeof(insns[0])))

static int fill(int i, uint8_t *code)
{
	memcpy(code, insns[i].code, insns[i].len);
	return insns[i].len;
}

int main(void)
{
	long segv = 0, ill = 0, bad = 0;
	uint8_t *page;

	drop_privileges("privinsn");
	stub_handlers();
	page = stub_page(NINSN, fill);
	for (int i = 0; i < NINSN; i++) {
		const struct insn *in = &insns[i];
		struct outcome o = run_stub(page, i);
		uint64_t rip = stub_insn(page, i) + in->at;
		int ok;

		segv += o.sig == SIGSEGV;
		ill += o.sig == SIGILL;
		if (in->trapno == EITHER)
			ok = (o.sig == SIGSEGV && o.trapno == GP) || (o.sig == SIGILL && o.trapno == UD);
		else
			ok = o.sig == (in->trapno == UD ? SIGILL : SIGSEGV) && o.trapno == in->trapno;
		ok = ok && o.err == in->err && o.rip == rip;
		if (!ok) {
			bad++;
			printf("privinsn: %s: %s vector %ld error %#lx rip %+lld (rax %#llx); want vector %ld error %#lx "
			       "rip %+d\n",
			       in->name, signame(o.sig), o.trapno, o.err, (long long)(o.rip - stub_insn(page, i)),
			       (unsigned long long)o.rax, in->trapno, in->err, in->at);
		}
	}
	if (!kernel_alive())
		attack_result(1, "the kernel no longer forks after %d privileged instructions", NINSN);
	attack_result(bad != 0, "%ld of %d privileged instructions did not fault as they must (SIGSEGV %ld, SIGILL %ld); "
		      "kernel alive", bad, NINSN, segv, ill);
}
