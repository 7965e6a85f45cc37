/*
 * smpcount: THREADS threads (argv[1], default 4) each add 1 to two shared
 * counters ITERS times (argv[2], default 10000000): one with an atomic
 * fetch-and-add (LOCK XADD), one under a pthread mutex (futexes when
 * contended). Prints both totals and "smpcount: exact" when each equals
 * THREADS * ITERS, else "smpcount: LOST". Exit status 0 only when exact.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static unsigned long iters = 10000000;
static volatile unsigned long atomic_total, mutex_total;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void *work(void *arg)
{
	(void)arg;
	for (unsigned long i = 0; i < iters; i++) {
		__atomic_fetch_add(&atomic_total, 1, __ATOMIC_RELAXED);
		pthread_mutex_lock(&lock);
		mutex_total = mutex_total + 1;
		pthread_mutex_unlock(&lock);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned long threads = 4, want;
	pthread_t t[64];

	if (argc > 1)
		threads = strtoul(argv[1], NULL, 0);
	if (argc > 2)
		iters = strtoul(argv[2], NULL, 0);
	if (threads < 1 || threads > 64) {
		fprintf(stderr, "smpcount: 1 to 64 threads\n");
		return 2;
	}
	for (unsigned long i = 0; i < threads; i++)
		if (pthread_create(&t[i], NULL, work, NULL)) {
			perror("smpcount: pthread_create");
			return 2;
		}
	for (unsigned long i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	want = threads * iters;
	printf("smpcount: %lu threads x %lu: atomic %lu mutex %lu, want %lu\n", threads, iters,
	       atomic_total, mutex_total, want);
	if (atomic_total == want && mutex_total == want) {
		printf("smpcount: exact\n");
		return 0;
	}
	printf("smpcount: LOST\n");
	return 1;
}
