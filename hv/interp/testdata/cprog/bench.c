/* The benchmark workload: SHA-256 of a buffer, a copy of it (REP MOVSB)
 * sorted as 64-bit integers, and a loop of block copies. */
#include "prog.h"

static void copy_rep(void *d, const void *s, size_t n)
{
	__asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
}

/*
 * bench hashes buf[0:len] into out[0:4], sorts a copy of buf (len/8 signed
 * words) in scratch, then copies 4 KiB blocks of the sorted words around
 * scratch (second half) 64 times, each with a word checksum.
 * Returns the sum of the checksums.
 */
u64 bench(u8 *buf, u64 len, u8 *scratch, u64 *out)
{
	sha256(buf, len, (u8 *)out);
	u64 n = len / 8;
	copy_rep(scratch, buf, n * 8);
	sort_i64((i64 *)scratch, n);
	u8 *area = scratch + n * 8;
	u64 sum = 0;
	for (u64 k = 0; k < 64; k++) {
		u64 off = (k * 4096 + k * 24) % (n * 8 - 4096);
		u8 *dst = area + (k & 7) * 4104;
		if (k & 1)
			copy_rep(dst, scratch + off, 4096);
		else
			memcpy(dst, scratch + off, 4096);
		const u64 *w = (const u64 *)dst;
		for (u64 i = 0; i < 512; i++)
			sum += w[i] ^ (sum >> 7);
	}
	return sum;
}
