/* Bit operations through gcc builtins and idioms: BSR/BSF (or their REP
 * forms), the POPCNT-free popcount sequence, BSWAP, rotates. */
#include "prog.h"

#define BITS_OUT 16

void bits(const u64 *in, u64 n, u64 *out)
{
	for (u64 i = 0; i < n; i++) {
		u64 x = in[i];
		u32 w = (u32)x;
		u64 *o = out + BITS_OUT * i;
		o[0] = x ? (u64)__builtin_clzll(x) : 64;
		o[1] = x ? (u64)__builtin_ctzll(x) : 64;
		o[2] = (u64)__builtin_popcountll(x);
		o[3] = w ? (u64)__builtin_clz(w) : 32;
		o[4] = w ? (u64)__builtin_ctz(w) : 32;
		o[5] = (u64)__builtin_popcount(w);
		o[6] = __builtin_bswap64(x);
		o[7] = __builtin_bswap32(w);
		o[8] = (u64)__builtin_parityll(x);
		o[9] = x << (i & 63) | x >> (-i & 63);
		o[10] = (u32)(w >> (i & 31) | w << (-i & 31));
		o[11] = (u64)__builtin_ffsll((i64)x);
		o[12] = (u64)__builtin_clrsbll((i64)x);
		o[13] = x & -x;
		o[14] = (u64)((i64)x >> (x & 63));
		o[15] = (u16)((u16)x << 3 | (u16)x >> 13) ^ (u64)__builtin_bswap16((u16)(x >> 16));
	}
}
