/* CRC-32: IEEE (reflected 0xEDB88320) with a table built on first use, and
 * Castagnoli (reflected 0x82F63B78) bit by bit. */
#include "prog.h"

static u32 table[256];
static int tableReady;

u32 crc32_ieee(const u8 *p, u64 n)
{
	if (!tableReady) {
		for (u32 i = 0; i < 256; i++) {
			u32 c = i;
			for (int k = 0; k < 8; k++)
				c = c & 1 ? 0xEDB88320u ^ c >> 1 : c >> 1;
			table[i] = c;
		}
		tableReady = 1;
	}
	u32 c = ~0u;
	for (u64 i = 0; i < n; i++)
		c = table[(c ^ p[i]) & 0xff] ^ c >> 8;
	return ~c;
}

u32 crc32c_bitwise(const u8 *p, u64 n)
{
	u32 c = ~0u;
	while (n--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82F63B78u & -(c & 1));
	}
	return ~c;
}
