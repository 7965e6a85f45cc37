/*
 * x87gen: the host-CPU oracle for the x87 and FXSAVE tests (x87_test.go).
 *
 * Usage: x87gen CODE OFFSET DATA N
 *
 * CODE is raw x86-64 machine code (the same bytes the engine runs). The
 * function at OFFSET is called as void f(void *data, long n) on the
 * contents of the file DATA (n records), and DATA is rewritten with the
 * results. The function executes real x87 instructions on this CPU, so the
 * rewritten records are the hardware's answers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static void *slurp(const char *path, long *len, int exec)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		exit(1);
	}
	fseek(f, 0, SEEK_END);
	*len = ftell(f);
	fseek(f, 0, SEEK_SET);
	size_t sz = (size_t)*len + 4096;
	void *p;
	if (exec)
		p = mmap(0, sz, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	else
		p = mmap(0, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	if (*len && fread(p, 1, (size_t)*len, f) != (size_t)*len) {
		perror("read");
		exit(1);
	}
	fclose(f);
	return p;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: x87gen CODE OFFSET DATA N\n");
		return 2;
	}
	long clen, dlen;
	unsigned char *code = slurp(argv[1], &clen, 1);
	long off = strtol(argv[2], 0, 0);
	unsigned char *data = slurp(argv[3], &dlen, 0);
	long n = strtol(argv[4], 0, 0);
	if (off < 0 || off >= clen) {
		fprintf(stderr, "offset out of range\n");
		return 2;
	}
	void (*fn)(void *, long) = (void (*)(void *, long))(code + off);
	fn(data, n);
	FILE *f = fopen(argv[3], "wb");
	if (!f || fwrite(data, 1, (size_t)dlen, f) != (size_t)dlen || fclose(f)) {
		perror(argv[3]);
		return 1;
	}
	return 0;
}
