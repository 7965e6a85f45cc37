#include "prog.h"

u64 main(u64 cmd, u64 a, u64 b, u64 c, u64 d)
{
	switch (cmd) {
	case CMD_SHA256:
		sha256((const u8 *)a, b, (u8 *)c);
		return 0;
	case CMD_SORT_I64:
		sort_i64((i64 *)a, b);
		return 0;
	case CMD_HEAP_U64:
		heapsort_u64((u64 *)a, b);
		return 0;
	case CMD_SORT_STR:
		sort_str((const char **)a, b);
		return 0;
	case CMD_CRC32:
		return crc32_ieee((const u8 *)a, b);
	case CMD_CRC32C:
		return crc32c_bitwise((const u8 *)a, b);
	case CMD_DIVMOD:
		divmod((const u64 *)a, b, (u64 *)c);
		return 0;
	case CMD_MEMOPS:
		memops((u8 *)a, (const u64 *)b, c, (u64 *)d);
		return 0;
	case CMD_VM:
		return (u64)vm_run((const u8 *)a, (i64 *)b);
	case CMD_RECUR:
		recur((const u64 *)a, (u64 *)b);
		return 0;
	case CMD_INT128:
		int128((const u64 *)a, b, (u64 *)c);
		return 0;
	case CMD_BITS:
		bits((const u64 *)a, b, (u64 *)c);
		return 0;
	case CMD_BENCH:
		return bench((u8 *)a, b, (u8 *)c, (u64 *)d);
	}
	return ~0UL;
}
