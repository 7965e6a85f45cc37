/*
 * pvisor test guest: start-up, check reporting, and the mode chosen by the
 * command line (the checks, bench=NAME [iters=K], spin, idle, steal, clockpause, count[=N], fill, scan,
 * balloon, hostile[=ATTACKS] (hostile.c), smp (smp.c), plant=HEX at=GPA or monitor=HEX (monitor.c)).
 */
#include "testguest.h"

unsigned long pvisor_hypercall_entry;
struct pvisor_start_info *start_info;
u64 checks_ok, checks_failed;
static u64 check_no;

void check(int cond, const char *desc)
{
	check_no++;
	if (cond) {
		checks_ok++;
		printf("ok %lu - %s\n", check_no, desc);
	} else {
		checks_failed++;
		printf("not ok %lu - %s\n", check_no, desc);
	}
}

static void print_val(char *buf, u64 cap, s64 v)
{
	if (v > -1000000 && v < 1000000)
		snprintf(buf, cap, "%ld", v);
	else
		snprintf(buf, cap, "0x%lx", (u64)v);
}

void check_eq(s64 got, s64 want, const char *desc)
{
	char g[32], w[32];

	check_no++;
	if (got == want) {
		checks_ok++;
		printf("ok %lu - %s\n", check_no, desc);
		return;
	}
	checks_failed++;
	print_val(g, sizeof(g), got);
	print_val(w, sizeof(w), want);
	printf("not ok %lu - %s (got %s want %s)\n", check_no, desc, g, w);
}

void check_u(u64 got, u64 want, const char *desc)
{
	check_no++;
	if (got == want) {
		checks_ok++;
		printf("ok %lu - %s\n", check_no, desc);
		return;
	}
	checks_failed++;
	printf("not ok %lu - %s (got 0x%lx want 0x%lx)\n", check_no, desc, got, want);
}

void finish(void)
{
	__asm__ volatile("cli");
	printf("testguest: %lu ok, %lu failed\n", checks_ok, checks_failed);
	pvisor_shutdown(PVISOR_SHUTDOWN_POWEROFF, checks_failed == 0 ? 0 : 1);
	/* shutdown does not return; if it does, say so and stop here. */
	printf("testguest: shutdown returned\n");
	for (;;)
		__asm__ volatile("pause");
}

static char cmdline[4096];

/* spin_kinds parses "hypercall,cpuid,io,mmio,msr" or "all". */
static u64 spin_kinds(const char *p)
{
	static const struct {
		const char *name;
		u64 bit;
	} kinds[] = {{"hypercall", SPIN_HYPERCALL}, {"cpuid", SPIN_CPUID}, {"io", SPIN_IO},
		     {"mmio", SPIN_MMIO},	    {"msr", SPIN_MSR},	   {"all", ~0UL}};
	u64 mask = 0;

	while (*p && *p != ' ') {
		u64 i, n;

		for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
			n = strlen(kinds[i].name);
			if (!memcmp(p, kinds[i].name, n) && (p[n] == ',' || p[n] == ' ' || !p[n])) {
				mask |= kinds[i].bit;
				p += n;
				break;
			}
		}
		if (i == sizeof(kinds) / sizeof(kinds[0])) {
			printf("spin: unknown exit kind in %s\n", p);
			finish();
		}
		if (*p == ',')
			p++;
	}
	return mask;
}

void tg_main(struct pvisor_start_info *si)
{
	const char *mode, *p;
	u64 iters = 100000;
	long v, f;

	start_info = si;
	pvisor_hypercall_entry = si->hypercall_page_gpa;
	if (si->cmdline_gpa && si->cmdline_len) {
		u64 n = si->cmdline_len < sizeof(cmdline) - 1 ? si->cmdline_len : sizeof(cmdline) - 1;

		memcpy(cmdline, (const void *)si->cmdline_gpa, n);
		cmdline[n] = 0;
	}

	/* Only version and features may come before declare_version. */
	v = pvisor_version();
	f = pvisor_features(0);
	if (cmdline_find(cmdline, "hostile") || cmdline_find(cmdline, "hostile="))
		hostile(cmdline);
	if (cmdline_find(cmdline, "smp"))
		smp();
	mode = cmdline_find(cmdline, "bench=");
	if (mode || cmdline_find(cmdline, "spin") || cmdline_find(cmdline, "spin=") || cmdline_find(cmdline, "idle") ||
	    cmdline_find(cmdline, "steal") || cmdline_find(cmdline, "clockpause") || cmdline_find(cmdline, "count") ||
	    cmdline_find(cmdline, "count=") ||
	    cmdline_find(cmdline, "fill") || cmdline_find(cmdline, "balloon")) {
		pvisor_declare_version(PVISOR_ABI_VERSION);
		console_enable();
		if (!mode && cmdline_find(cmdline, "idle"))
			idle();
		if (!mode && cmdline_find(cmdline, "steal"))
			steal();
		if (!mode && cmdline_find(cmdline, "clockpause"))
			clockpause();
		if (!mode && (p = cmdline_find(cmdline, "count=")))
			count(parse_u64(p, 0));
		if (!mode && cmdline_find(cmdline, "count"))
			count(300);
		if (!mode && cmdline_find(cmdline, "fill"))
			fill();
		if (!mode && cmdline_find(cmdline, "balloon"))
			balloon_driver();
		if (!mode && (p = cmdline_find(cmdline, "spin=")))
			spin_exits(spin_kinds(p));
		if (!mode)
			spin();
		p = cmdline_find(cmdline, "iters=");
		if (p)
			iters = parse_u64(p, 0);
		char name[32];
		u64 n = 0;
		while (mode[n] && mode[n] != ' ' && n < sizeof(name) - 1) {
			name[n] = mode[n];
			n++;
		}
		name[n] = 0;
		run_bench(name, iters);
	}

	const char *mon = cmdline_find(cmdline, "monitor=");
	if (mon || (p = cmdline_find(cmdline, "plant="))) {
		pvisor_declare_version(PVISOR_ABI_VERSION);
		console_enable();
		if (mon)
			monitor(mon);
		const char *at = cmdline_find(cmdline, "at=");
		plant(p, at ? parse_u64(at, 0) : 0);
	}

	if (cmdline_find(cmdline, "scan")) {
		pvisor_declare_version(PVISOR_ABI_VERSION);
		console_enable();
		run_scan();
		finish();
	}

	/* Output is buffered until declare_version has succeeded. */
	printf("testguest: pvisor ABI %lu test guest\n", (u64)PVISOR_ABI_VERSION);
	check_u(si->magic, PVISOR_START_INFO_MAGIC, "start info magic is PVSI");
	check_eq(si->abi_version, PVISOR_ABI_VERSION, "start info ABI version");
	check_u(si->hypercall_page_gpa & 0xfff, 0, "hypercall page is page-aligned");
	check(si->mem_size >= (8UL << 20), "start info memory size is at least 8 MiB");
	check_eq(v, PVISOR_ABI_VERSION, "version returns the header's ABI version");
	{
		u64 want = PVISOR_FEATURE_CONSOLE | PVISOR_FEATURE_TIMER | PVISOR_FEATURE_EVTCHN |
			   PVISOR_FEATURE_MMU_BATCH | PVISOR_FEATURE_PVCLOCK | PVISOR_FEATURE_MEASURED_BOOT |
			   PVISOR_FEATURE_VIRTIO;

		check_u((u64)f & want, want, "features word 0 has every ABI 1 feature and FEATURE_VIRTIO");
	}
	check_eq(pvisor_features(1), -PVISOR_EINVAL, "features word 1 -> -EINVAL");
	check_eq(pvisor_features(1UL << 32), -PVISOR_EINVAL, "features word with upper bits set -> -EINVAL");
	check_eq(pvisor_declare_version(99), -PVISOR_EPROTO, "declare_version(99) -> -EPROTO");
	check_eq(pvisor_declare_version(0), -PVISOR_EPROTO, "declare_version(0) -> -EPROTO");
	check_eq(pvisor_declare_version((1UL << 32) | 1), -PVISOR_EINVAL,
		 "declare_version with upper bits set -> -EINVAL");
	v = pvisor_declare_version(1);
	console_enable();
	check_eq(v, 0, "declare_version(1) returns 0: an ABI 1 guest still runs");
	check_eq(pvisor_declare_version(PVISOR_ABI_VERSION), 0, "declare_version(ABI_VERSION) returns 0");

	run_checks();
	finish();
}
