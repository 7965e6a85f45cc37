/*
 * Introspection from outside a VM (tests/monitor_test.go):
 *
 * plant=HEX at=GPA: the target. It writes the bytes HEX names at
 * guest-physical (= virtual: identity-mapped) address GPA of its own RAM,
 * built byte by byte from the command line's text, so that the binary
 * marker exists nowhere else in its memory or in any image. Then it idles
 * on its one-shot timer and re-verifies the marker every 100 ms, printing
 * "plant: verified N" once a second; a changed marker ends it with status 3.
 *
 * monitor=HEX: the monitor. It polls its introspection grants every 200 ms.
 * For each new grant it reads the target's memory map, scans all of the
 * target's RAM in INTROSPECT_READ_MAX reads for the signature HEX and prints
 * "monitor: hit gpa=0x..." for each hit, changes its own copy of a hit and
 * reads the target again (the target must be unchanged), reads vCPU 0's
 * registers and walks the target's page tables from CR3 to translate RIP,
 * and tries the calls with bogus handles and bounds, printing the errnos.
 * Whenever what its grants answer changes (granted, revoked, target gone)
 * it prints a "monitor: state" line with the result of a read through every
 * handle it has seen.
 */
#include "testguest.h"

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* hexlen returns the number of bytes the hex word at s names, or 0 if it is
 * not 1 to max bytes of hex digits. */
static u64 hexlen(const char *s, u64 max)
{
	u64 n = 0;

	while (s[n] && s[n] != ' ') {
		if (hexval(s[n]) < 0)
			return 0;
		n++;
	}
	if (n == 0 || n % 2 || n / 2 > max)
		return 0;
	return n / 2;
}

static inline u8 hexbyte(const char *s, u64 i) { return (u8)(hexval(s[2 * i]) << 4 | hexval(s[2 * i + 1])); }

static void sleep_ns(u64 ns)
{
	u64 deadline = pvclock_now() + ns;

	pvisor_timer_set(deadline);
	while (pvclock_now() < deadline)
		pvisor_vcpu_block();
}

static void start_timer(const char *who)
{
	if (pvisor_shared_info_register((u64)&shinfo, UPCALL_VECTOR) != 0) {
		printf("%s: shared_info_register failed\n", who);
		pvisor_shutdown(PVISOR_SHUTDOWN_POWEROFF, 1);
	}
	__asm__ volatile("cli" ::: "memory");
}

/* ---- the target ---- */

void plant(const char *hex, u64 at)
{
	u64 n = hexlen(hex, 64), from = (start_info->free_gpa + 4095) & ~4095UL;
	u64 end = start_info->mem_size < start_info->identity_map_size ? start_info->mem_size
								       : start_info->identity_map_size;

	if (!n || at < from || at > end || end - at < n) {
		printf("plant: want plant=HEX (1 to 64 bytes) at=GPA inside [0x%lx, 0x%lx)\n", from, end);
		pvisor_shutdown(PVISOR_SHUTDOWN_POWEROFF, 2);
	}
	for (u64 i = 0; i < n; i++)
		((volatile u8 *)at)[i] = hexbyte(hex, i);
	start_timer("plant");
	printf("plant: marker of %lu bytes at gpa=0x%lx\n", n, at);
	for (u64 round = 1;; round++) {
		sleep_ns(100000000UL);
		for (u64 i = 0; i < n; i++) {
			if (((volatile u8 *)at)[i] != hexbyte(hex, i)) {
				printf("plant: marker changed at gpa=0x%lx\n", at + i);
				pvisor_shutdown(PVISOR_SHUTDOWN_POWEROFF, 3);
			}
		}
		if (round % 10 == 0)
			printf("plant: verified %lu\n", round / 10);
	}
}

/* ---- the monitor ---- */

static u8 sig[64];
static u64 siglen;
static u8 chunk[PVISOR_INTROSPECT_READ_MAX] __attribute__((aligned(8)));
static struct pvisor_introspect_target targets[PVISOR_INTROSPECT_MAX_GRANTS];
static struct pvisor_memmap_entry tmap[32];
static u64 hit_gpa[16];
static u64 hits;

static int haszero(u64 v) { return ((v - 0x0101010101010101UL) & ~v & 0x8080808080808080UL) != 0; }

/* search records the signature's hits among the first n bytes of chunk,
 * which hold the target's bytes from base. It looks for one byte of the
 * signature (the anchor: the first that is neither 0x00 nor 0xff, which
 * fill most of a guest's memory) eight bytes at a time, and compares the
 * whole signature where the anchor matches. */
static void search(u64 base, u64 n)
{
	u64 k = 0, last, rep;

	if (n < siglen)
		return;
	while (k + 1 < siglen && (sig[k] == 0 || sig[k] == 0xff))
		k++;
	if (sig[k] == 0 || sig[k] == 0xff)
		k = 0;
	rep = sig[k] * 0x0101010101010101UL;
	last = n - siglen + k; /* the anchor of the last position that fits */
	for (u64 q = k; q <= last;) {
		if ((q & 7) == 0 && q + 7 <= last && !haszero(*(u64 *)(chunk + q) ^ rep)) {
			q += 8; /* no anchor here */
			continue;
		}
		if (chunk[q] == sig[k] && memcmp(chunk + q - k, sig, siglen) == 0) {
			printf("monitor: hit gpa=0x%lx\n", base + q - k);
			if (hits < sizeof(hit_gpa) / sizeof(hit_gpa[0]))
				hit_gpa[hits] = base + q - k;
			hits++;
		}
		q++;
	}
}

static u64 read_u64(u64 handle, u64 gpa, long *err)
{
	static u64 word;

	*err = pvisor_introspect_read(handle, gpa, (u64)&word, 8);
	return word;
}

/* walk translates va through the target's 4-level page tables from cr3,
 * reading them with introspect_read; 0 and a message on a fault. */
static u64 walk(u64 handle, u64 cr3, u64 va, int *levels)
{
	const u64 mask = 0x000ffffffffff000UL;
	u64 table = cr3 & mask;

	for (int level = 3; level >= 0; level--) {
		u64 shift = 12 + 9 * (u64)level;
		long err;
		u64 pte = read_u64(handle, table + ((va >> shift) & 511) * 8, &err);

		*levels = 4 - level;
		if (err != 8) {
			printf("monitor: walk va=0x%lx: reading the level-%d table at 0x%lx -> %ld\n", va, level, table, err);
			return 0;
		}
		if (!(pte & 1)) {
			printf("monitor: walk va=0x%lx: level-%d entry 0x%lx not present\n", va, level, pte);
			return 0;
		}
		if (level == 0 || (level <= 2 && (pte & 0x80))) {
			u64 size = 1UL << shift;

			return (pte & mask & ~(size - 1)) | (va & (size - 1));
		}
		table = pte & mask;
	}
	return 0;
}

static void scan_target(const struct pvisor_introspect_target *t)
{
	u64 h = t->handle, mem = t->mem_size, reads = 0, step = sizeof(chunk) - (siglen - 1);
	long n;
	char name[PVISOR_INTROSPECT_NAME_MAX + 1];

	memcpy(name, t->name, PVISOR_INTROSPECT_NAME_MAX);
	name[PVISOR_INTROSPECT_NAME_MAX] = 0;
	printf("monitor: target handle=%u name=%s mem=0x%lx vcpus=%u mode=%u\n", t->handle, name, mem, t->vcpus, t->mode);
	n = pvisor_introspect_memmap(h, (u64)tmap, sizeof(tmap) / sizeof(tmap[0]));
	printf("monitor: memmap entries=%ld\n", n);
	for (long i = 0; i < n && i < (long)(sizeof(tmap) / sizeof(tmap[0])); i++)
		printf("monitor: memmap 0x%lx+0x%lx type=%u\n", (u64)tmap[i].addr, (u64)tmap[i].size, tmap[i].type);

	hits = 0;
	for (u64 gpa = 0; gpa < mem; gpa += step) {
		u64 len = mem - gpa < sizeof(chunk) ? mem - gpa : sizeof(chunk);
		long r = pvisor_introspect_read(h, gpa, (u64)chunk, len);

		reads++;
		if (r != (long)len) {
			printf("monitor: introspect_read(0x%lx, %lu) -> %ld: scan stopped\n", gpa, len, r);
			break;
		}
		search(gpa, len);
		if (len < sizeof(chunk))
			break;
	}
	printf("monitor: scan done handle=%lu bytes=0x%lx reads=%lu hits=%lu\n", h, mem, reads, hits);

	/* The monitor's copy is its own: changing it leaves the target as it was. */
	if (hits) {
		u64 at = hit_gpa[0];
		long r1 = pvisor_introspect_read(h, at, (u64)chunk, siglen);

		for (u64 i = 0; i < siglen; i++)
			chunk[i] ^= 0xff;
		long r2 = pvisor_introspect_read(h, at, (u64)chunk + 4096, siglen);

		printf("monitor: changed its copy of gpa=0x%lx; target %s (reads %ld %ld)\n", at,
		       r1 == (long)siglen && r2 == (long)siglen && memcmp(chunk + 4096, sig, siglen) == 0 ? "unchanged"
												      : "CHANGED",
		       r1, r2);
	}

	/* Registers, and a page-table walk from the target's CR3. */
	static struct pvisor_introspect_vcpu r;
	long e = pvisor_introspect_vcpu(h, 0, (u64)&r);

	printf("monitor: vcpu0 -> %ld rip=0x%lx rsp=0x%lx rflags=0x%lx cr0=0x%lx cr3=0x%lx cr4=0x%lx efer=0x%lx cs=0x%x cpl=%u "
	       "seq=%lu flags=%u\n",
	       e, (u64)r.rip, (u64)r.gpr[4], (u64)r.rflags, (u64)r.cr0, (u64)r.cr3, (u64)r.cr4, (u64)r.efer, r.cs, r.cpl,
	       (u64)r.seq, r.flags);
	if (e == 0) {
		int levels = 0;
		u64 gpa = walk(h, r.cr3, r.rip, &levels);

		printf("monitor: walk va=0x%lx -> gpa=0x%lx levels=%d\n", (u64)r.rip, gpa, levels);
		if (hits) {
			gpa = walk(h, r.cr3, hit_gpa[0], &levels);
			printf("monitor: walk va=0x%lx -> gpa=0x%lx levels=%d\n", hit_gpa[0], gpa, levels);
		}
	}

	/* Bogus handles and bounds: every errno. */
	static const u64 bogus[] = {0, 0xffffffffUL, 0x7fffffffUL};
	for (u64 i = 0; i < sizeof(bogus) / sizeof(bogus[0]); i++)
		printf("monitor: bogus handle=0x%lx memmap=%ld read=%ld vcpu=%ld\n", bogus[i],
		       pvisor_introspect_memmap(bogus[i], (u64)tmap, 1), pvisor_introspect_read(bogus[i], 0, (u64)chunk, 8),
		       pvisor_introspect_vcpu(bogus[i], 0, (u64)&r));
	printf("monitor: bogus handle=0x%lx (64-bit) memmap=%ld read=%ld vcpu=%ld\n", h | 1UL << 32,
	       pvisor_introspect_memmap(h | 1UL << 32, (u64)tmap, 1), pvisor_introspect_read(h | 1UL << 32, 0, (u64)chunk, 8),
	       pvisor_introspect_vcpu(h | 1UL << 32, 0, (u64)&r));
	printf("monitor: bounds beyond=%ld straddle=%ld toolong=%ld wrap=%ld farbuf=%ld vcpu1=%ld\n",
	       pvisor_introspect_read(h, mem, (u64)chunk, 8), pvisor_introspect_read(h, mem - 4, (u64)chunk, 8),
	       pvisor_introspect_read(h, 0, (u64)chunk, PVISOR_INTROSPECT_READ_MAX + 1),
	       pvisor_introspect_read(h, ~0UL - 3, (u64)chunk, 8), pvisor_introspect_read(h, 0, 0xffffffff000UL, 8),
	       pvisor_introspect_vcpu(h, 1, (u64)&r));
}

void monitor(const char *hex)
{
	static u64 seen[PVISOR_INTROSPECT_MAX_GRANTS];
	static long last[PVISOR_INTROSPECT_MAX_GRANTS + 1];
	u64 nseen = 1, scanned = 0;
	long lastn = -1000;

	siglen = hexlen(hex, sizeof(sig));
	if (!siglen) {
		printf("monitor: want monitor=HEX, 1 to %lu bytes\n", (u64)sizeof(sig));
		pvisor_shutdown(PVISOR_SHUTDOWN_POWEROFF, 2);
	}
	for (u64 i = 0; i < siglen; i++)
		sig[i] = hexbyte(hex, i);
	start_timer("monitor");
	printf("monitor: signature of %lu bytes, features 0x%lx\n", siglen, (u64)pvisor_features(0));
	seen[0] = 1; /* the first handle a grant gets: -EPERM until then */
	for (u64 round = 0;; round++) {
		long n = pvisor_introspect_targets((u64)targets, PVISOR_INTROSPECT_MAX_GRANTS);
		int changed = n != lastn;

		for (long i = 0; i < n && i < (long)PVISOR_INTROSPECT_MAX_GRANTS; i++) {
			u64 h = targets[i].handle, j;

			for (j = 0; j < nseen && seen[j] != h; j++)
				;
			if (j == nseen && nseen < PVISOR_INTROSPECT_MAX_GRANTS)
				seen[nseen++] = h, changed = 1;
		}
		for (u64 j = 0; j < nseen; j++) {
			long r = pvisor_introspect_read(seen[j], 0, (u64)chunk, 8);

			changed |= r != last[j];
			last[j] = r;
		}
		lastn = n;
		if (changed) {
			char line[256];
			u64 o = (u64)snprintf(line, sizeof(line), "monitor: state round=%lu grants=%ld", round, n);

			for (u64 j = 0; j < nseen && o < sizeof(line); j++)
				o += (u64)snprintf(line + o, sizeof(line) - o, " h%lu=%ld", seen[j], last[j]);
			printf("%s\n", line);
		}
		if (n > 0 && targets[0].handle != scanned) {
			scanned = targets[0].handle;
			scan_target(&targets[0]);
		}
		sleep_ns(200000000UL);
	}
}
