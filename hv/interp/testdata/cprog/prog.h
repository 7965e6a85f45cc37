/* Shared declarations of the freestanding test programs. */
typedef unsigned long u64;
typedef long i64;
typedef unsigned int u32;
typedef int i32;
typedef unsigned short u16;
typedef unsigned char u8;
typedef unsigned long size_t;

/* Commands of main; the Go test uses the same numbers. */
enum {
	CMD_SHA256 = 1,   /* (buf, len, out[32]) */
	CMD_SORT_I64,     /* (a, n): quicksort, signed */
	CMD_HEAP_U64,     /* (a, n): heapsort, unsigned */
	CMD_SORT_STR,     /* (ptrs, n): quicksort of C strings */
	CMD_CRC32,        /* (buf, len) -> IEEE CRC-32 */
	CMD_CRC32C,       /* (buf, len) -> Castagnoli CRC-32, bitwise */
	CMD_DIVMOD,       /* (pairs, n, out) */
	CMD_MEMOPS,       /* (buf, ops, nops, out) */
	CMD_VM,           /* (code, locals) -> top of stack */
	CMD_RECUR,        /* (args, out) */
	CMD_INT128,       /* (in, n, out) */
	CMD_BITS,         /* (in, n, out) */
	CMD_BENCH,        /* (buf, len, scratch, out) */
};

void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);

void sha256(const u8 *p, u64 n, u8 out[32]);
void sort_i64(i64 *a, u64 n);
void heapsort_u64(u64 *a, u64 n);
void sort_str(const char **a, u64 n);
u32 crc32_ieee(const u8 *p, u64 n);
u32 crc32c_bitwise(const u8 *p, u64 n);
void divmod(const u64 *in, u64 n, u64 *out);
void memops(u8 *buf, const u64 *ops, u64 nops, u64 *out);
i64 vm_run(const u8 *code, i64 *locals);
void recur(const u64 *args, u64 *out);
void int128(const u64 *in, u64 n, u64 *out);
void bits(const u64 *in, u64 n, u64 *out);
u64 bench(u8 *buf, u64 len, u8 *scratch, u64 *out);
