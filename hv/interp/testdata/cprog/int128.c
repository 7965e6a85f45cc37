/* 128-bit arithmetic. Division is done here by shift and subtract, since
 * there is no libgcc to provide __udivti3. */
#include "prog.h"

typedef unsigned __int128 u128;
typedef __int128 i128;

static u128 udivmod128(u128 n, u128 d, u128 *rem)
{
	u128 q = 0, r = 0;
	if (d == 0) {
		*rem = n;
		return ~(u128)0;
	}
	int top = 127;
	while (top > 0 && !(n >> top & 1))
		top--;
	for (int i = top; i >= 0; i--) {
		r = r << 1 | (n >> i & 1);
		if (r >= d) {
			r -= d;
			q |= (u128)1 << i;
		}
	}
	*rem = r;
	return q;
}

#define INT128_OUT 14

/* in: quadruples {a, b, c, d}; per entry 14 outputs (low word first). */
void int128(const u64 *in, u64 n, u64 *out)
{
	for (u64 i = 0; i < n; i++) {
		const u64 *p = in + 4 * i;
		u64 *o = out + INT128_OUT * i;
		u128 x = (u128)p[1] << 64 | p[0];
		u128 y = (u128)p[3] << 64 | p[2];
		u128 m = (u128)p[0] * p[2]; /* 64x64 -> 128, MUL */
		o[0] = (u64)m;
		o[1] = (u64)(m >> 64);
		i128 s = (i128)(i64)p[0] * (i64)p[2]; /* IMUL */
		o[2] = (u64)s;
		o[3] = (u64)((u128)s >> 64);
		u128 xy = x * y; /* 128x128 -> low 128 */
		o[4] = (u64)xy;
		o[5] = (u64)(xy >> 64);
		u128 r, q = udivmod128(x, y >> (p[3] & 127), &r);
		o[6] = (u64)q;
		o[7] = (u64)(q >> 64);
		o[8] = (u64)r;
		o[9] = (u64)(r >> 64);
		u128 sh = x << (p[2] & 127) ^ x >> (p[1] & 127);
		o[10] = (u64)sh;
		o[11] = (u64)(sh >> 64);
		i128 sa = (i128)x >> (p[0] & 127);
		o[12] = (u64)sa;
		o[13] = (u64)((u128)sa >> 64) + ((i128)x < (i128)y) + 2 * (x < y);
	}
}
