/* Integer division and remainder of every width and signedness, by
 * variables (DIV/IDIV) and by constants (multiply-high sequences). */
#include "prog.h"

#define DIVMOD_OUT 24

void divmod(const u64 *in, u64 n, u64 *out)
{
	for (u64 i = 0; i < n; i++) {
		u64 a = in[2 * i], b = in[2 * i + 1];
		u64 *o = out + DIVMOD_OUT * i;
		o[0] = a / b;
		o[1] = a % b;
		o[2] = (u64)((i64)a / (i64)b);
		o[3] = (u64)((i64)a % (i64)b);
		o[4] = (u32)a / (u32)b;
		o[5] = (u32)a % (u32)b;
		o[6] = (u64)(i64)((i32)a / (i32)b);
		o[7] = (u64)(i64)((i32)a % (i32)b);
		o[8] = (u16)a / (u16)b;
		o[9] = (u64)(i64)((short)a % (short)b);
		o[10] = (u8)a / (u8)b;
		o[11] = (u64)(i64)((signed char)a / (signed char)b);
		o[12] = a / 10;
		o[13] = a % 10;
		o[14] = (u64)((i64)a / 7);
		o[15] = (u64)((i64)a % 7);
		o[16] = (u32)a / 3;
		o[17] = (u64)(i64)((i32)a / -5);
		o[18] = a / 1000000007;
		o[19] = (u64)((i64)a % 1000000007);
		o[20] = (u64)((i64)a / 16);
		o[21] = (u64)((i64)a % 16);
		o[22] = (u64)((i32)a / 1024);
		o[23] = a / 0x8000000000000001ul;
	}
}
