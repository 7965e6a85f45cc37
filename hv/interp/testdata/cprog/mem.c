/* The C library's memory and string functions, written out; gcc also calls
 * memcpy/memset/memmove/memcmp itself. Loops must not be turned back into
 * calls of the functions that contain them. */
#include "prog.h"

#pragma GCC optimize("no-tree-loop-distribute-patterns")

void *memcpy(void *dst, const void *src, size_t n)
{
	u8 *d = dst;
	const u8 *s = src;
	/* Word copies first; the tail byte by byte. */
	while (n >= 8) {
		u64 v;
		__builtin_memcpy(&v, s, 8);
		__builtin_memcpy(d, &v, 8);
		d += 8;
		s += 8;
		n -= 8;
	}
	while (n--)
		*d++ = *s++;
	return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
	u8 *d = dst;
	const u8 *s = src;
	if (d <= s || d >= s + n) {
		while (n--)
			*d++ = *s++;
	} else {
		while (n--)
			d[n] = s[n];
	}
	return dst;
}

void *memset(void *dst, int c, size_t n)
{
	u8 *d = dst;
	u64 v = (u8)c * 0x0101010101010101ul;
	while (n >= 8) {
		__builtin_memcpy(d, &v, 8);
		d += 8;
		n -= 8;
	}
	while (n--)
		*d++ = (u8)c;
	return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const u8 *x = a, *y = b;
	for (size_t i = 0; i < n; i++)
		if (x[i] != y[i])
			return x[i] < y[i] ? -1 : 1;
	return 0;
}

size_t strlen(const char *s)
{
	const char *p = s;
	while (*p)
		p++;
	return (size_t)(p - s);
}

int strcmp(const char *a, const char *b)
{
	const u8 *x = (const u8 *)a, *y = (const u8 *)b;
	while (*x && *x == *y) {
		x++;
		y++;
	}
	return (int)*x - (int)*y;
}

/* Copies with a size known at compile time: gcc expands these inline, as
 * REP MOVS/STOS or SSE moves depending on size and optimization level. */
struct blob {
	u64 w[96];
};

static __attribute__((noinline)) void copy_blob(struct blob *d, const struct blob *s) { *d = *s; }
static __attribute__((noinline)) void clear_blob(struct blob *d) { __builtin_memset(d, 0, sizeof *d); }
static __attribute__((noinline)) void fill_small(u8 *d, int c) { __builtin_memset(d, c, 40); }
static __attribute__((noinline)) void copy_small(u8 *d, const u8 *s) { __builtin_memcpy(d, s, 48); }

/* Explicit string instructions, as optimized C libraries use them. */
static void rep_movsb(void *d, const void *s, size_t n)
{
	__asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
}

static void rep_stosq(void *d, u64 v, size_t n)
{
	__asm__ volatile("rep stosq" : "+D"(d), "+c"(n) : "a"(v) : "memory");
}

/*
 * memops runs a list of operations on buf; each is four words
 * {op, x, y, z}:
 *   0 memcpy(buf+x, buf+y, z)     1 memmove(buf+x, buf+y, z)
 *   2 memset(buf+x, y, z)         3 out = memcmp(buf+x, buf+y, z) sign
 *   4 out = strlen(buf+x)         5 out = strcmp(buf+x, buf+y) sign
 *   6 copy_blob(buf+x, buf+y)     7 clear_blob(buf+x)
 *   8 fill_small(buf+x, y)        9 copy_small(buf+x, buf+y)
 *  10 rep movsb(buf+x, buf+y, z)  11 rep stosq(buf+x, y, z)
 * and results of 3, 4, 5 are appended to out.
 */
void memops(u8 *buf, const u64 *ops, u64 nops, u64 *out)
{
	for (u64 i = 0; i < nops; i++) {
		const u64 *op = ops + 4 * i;
		u64 x = op[1], y = op[2], z = op[3];
		int r;
		switch (op[0]) {
		case 0:
			memcpy(buf + x, buf + y, z);
			break;
		case 1:
			memmove(buf + x, buf + y, z);
			break;
		case 2:
			memset(buf + x, (int)y, z);
			break;
		case 3:
			r = memcmp(buf + x, buf + y, z);
			*out++ = (u64)(i64)(r > 0) - (r < 0);
			break;
		case 4:
			*out++ = strlen((const char *)buf + x);
			break;
		case 5:
			r = strcmp((const char *)buf + x, (const char *)buf + y);
			*out++ = (u64)(i64)(r > 0) - (r < 0);
			break;
		case 6:
			copy_blob((struct blob *)(buf + x), (const struct blob *)(buf + y));
			break;
		case 7:
			clear_blob((struct blob *)(buf + x));
			break;
		case 8:
			fill_small(buf + x, (int)y);
			break;
		case 9:
			copy_small(buf + x, buf + y);
			break;
		case 10:
			rep_movsb(buf + x, buf + y, z);
			break;
		case 11:
			rep_stosq(buf + x, y, z);
			break;
		}
	}
}
