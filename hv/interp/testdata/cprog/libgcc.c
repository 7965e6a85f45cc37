/* The few libgcc helpers gcc calls for builtins that have no instruction
 * in the baseline x86-64 ISA. */
#include "prog.h"

int __popcountdi2(u64 x)
{
	x = x - (x >> 1 & 0x5555555555555555ul);
	x = (x & 0x3333333333333333ul) + (x >> 2 & 0x3333333333333333ul);
	x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0ful;
	return (int)(x * 0x0101010101010101ul >> 56);
}

int __clrsbdi2(i64 x)
{
	u64 v = (u64)(x < 0 ? ~x : x);
	int n = 0;
	while (n < 63 && !(v >> (62 - n) & 1))
		n++;
	return n;
}
