/* Tiny freestanding C library: strings, memory, a printf to the console. */
#include "testguest.h"

u64 strlen(const char *s)
{
	u64 n = 0;

	while (s[n])
		n++;
	return n;
}

/* String instructions, so the compiler cannot turn these back into calls to themselves. */
void *memset(void *d, int c, u64 n)
{
	void *p = d;

	__asm__ volatile("rep stosb" : "+D"(p), "+c"(n) : "a"(c) : "memory");
	return d;
}

void *memcpy(void *d, const void *s, u64 n)
{
	void *p = d;

	__asm__ volatile("rep movsb" : "+D"(p), "+S"(s), "+c"(n) : : "memory");
	return d;
}

int memcmp(const void *a, const void *b, u64 n)
{
	const u8 *p = a, *q = b;

	for (; n; n--, p++, q++)
		if (*p != *q)
			return *p < *q ? -1 : 1;
	return 0;
}

struct out {
	char *buf;
	u64 cap, len;
};

static void put(struct out *o, char c)
{
	if (o->len + 1 < o->cap)
		o->buf[o->len] = c;
	o->len++;
}

static void put_num(struct out *o, u64 v, unsigned base, int neg, int width, char pad)
{
	char tmp[24];
	int n = 0;

	do {
		tmp[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	if (neg)
		tmp[n++] = '-';
	while (width-- > n)
		put(o, pad);
	while (n)
		put(o, tmp[--n]);
}

/* Supports %d %u %x %s %c %p %%, the l and ll length modifiers, a width and a 0 flag. */
int vsnprintf(char *buf, u64 cap, const char *fmt, va_list ap)
{
	struct out o = {buf, cap, 0};

	for (; *fmt; fmt++) {
		int lng = 0, width = 0;
		char pad = ' ';

		if (*fmt != '%') {
			put(&o, *fmt);
			continue;
		}
		fmt++;
		if (*fmt == '0') {
			pad = '0';
			fmt++;
		}
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		while (*fmt == 'l') {
			lng = 1;
			fmt++;
		}
		switch (*fmt) {
		case 'd': {
			s64 v = lng ? va_arg(ap, s64) : va_arg(ap, int);
			put_num(&o, v < 0 ? -(u64)v : (u64)v, 10, v < 0, width, pad);
			break;
		}
		case 'u':
			put_num(&o, lng ? va_arg(ap, u64) : va_arg(ap, unsigned), 10, 0, width, pad);
			break;
		case 'x':
			put_num(&o, lng ? va_arg(ap, u64) : va_arg(ap, unsigned), 16, 0, width, pad);
			break;
		case 'p':
			put(&o, '0');
			put(&o, 'x');
			put_num(&o, (u64)va_arg(ap, void *), 16, 0, width, pad);
			break;
		case 's': {
			const char *s = va_arg(ap, const char *);

			if (!s)
				s = "(null)";
			while (*s)
				put(&o, *s++);
			break;
		}
		case 'c':
			put(&o, (char)va_arg(ap, int));
			break;
		case '%':
			put(&o, '%');
			break;
		default:
			put(&o, '%');
			if (!*fmt)
				goto done;
			put(&o, *fmt);
		}
	}
done:
	if (o.cap)
		o.buf[o.len < o.cap ? o.len : o.cap - 1] = 0;
	return (int)o.len;
}

int snprintf(char *buf, u64 cap, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, cap, fmt, ap);
	va_end(ap);
	return n;
}

/*
 * Output made before declare_version (when no console call is allowed yet)
 * is kept here and written once the console is enabled.
 */
static char early[8192];
static u64 early_len;
static int console_on;

static void console_out(const char *s, u64 n)
{
	if (!console_on) {
		if (early_len + n <= sizeof(early)) {
			memcpy(early + early_len, s, n);
			early_len += n;
		}
		return;
	}
	while (n) {
		u64 k = n > PVISOR_CONSOLE_MAX ? PVISOR_CONSOLE_MAX : n;

		pvisor_console_write((u64)s, k);
		s += k;
		n -= k;
	}
}

void console_enable(void)
{
	console_on = 1;
	console_out(early, early_len);
	early_len = 0;
}

void printf(const char *fmt, ...)
{
	static char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(line) - 1)
		n = sizeof(line) - 1;
	console_out(line, (u64)n);
}

u64 parse_u64(const char *s, const char **end)
{
	u64 v = 0;
	unsigned base = 10;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	for (;; s++) {
		unsigned d;

		if (*s >= '0' && *s <= '9')
			d = *s - '0';
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = *s - 'a' + 10;
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = *s - 'A' + 10;
		else
			break;
		v = v * base + d;
	}
	if (end)
		*end = s;
	return v;
}

/*
 * Finds the word key (either "name=" or a bare "name") in a space-separated
 * command line; returns what follows it, or 0.
 */
const char *cmdline_find(const char *cmdline, const char *key)
{
	u64 kl = strlen(key);
	const char *p = cmdline;

	while (*p) {
		const char *w = p;
		u64 wl = 0;

		while (w[wl] && w[wl] != ' ')
			wl++;
		if (wl >= kl && memcmp(w, key, kl) == 0 &&
		    (key[kl - 1] == '=' || wl == kl))
			return w + kl;
		p = w + wl;
		while (*p == ' ')
			p++;
	}
	return 0;
}
