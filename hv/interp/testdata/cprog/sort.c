/* Sorting: quicksort with insertion sort for short runs, heapsort, and a
 * quicksort of C strings. */
#include "prog.h"

static void isort_i64(i64 *a, i64 n)
{
	for (i64 i = 1; i < n; i++) {
		i64 v = a[i], j = i - 1;
		while (j >= 0 && a[j] > v) {
			a[j + 1] = a[j];
			j--;
		}
		a[j + 1] = v;
	}
}

static inline void swap_i64(i64 *a, i64 *b)
{
	i64 t = *a;
	*a = *b;
	*b = t;
}

void sort_i64(i64 *a, u64 un)
{
	i64 n = (i64)un;
	while (n > 16) {
		i64 m = n / 2;
		/* Median of three to a[0]. */
		if (a[m] < a[0])
			swap_i64(&a[m], &a[0]);
		if (a[n - 1] < a[0])
			swap_i64(&a[n - 1], &a[0]);
		if (a[n - 1] < a[m])
			swap_i64(&a[n - 1], &a[m]);
		swap_i64(&a[0], &a[m]);
		i64 pivot = a[0], i = 0, j = n;
		for (;;) {
			do
				i++;
			while (i < n && a[i] < pivot);
			do
				j--;
			while (a[j] > pivot);
			if (i >= j)
				break;
			swap_i64(&a[i], &a[j]);
		}
		swap_i64(&a[0], &a[j]);
		/* Recurse into the smaller part, loop on the larger. */
		if (j < n - 1 - j) {
			sort_i64(a, (u64)j);
			a += j + 1;
			n -= j + 1;
		} else {
			sort_i64(a + j + 1, (u64)(n - 1 - j));
			n = j;
		}
	}
	isort_i64(a, n);
}

static void sift(u64 *a, u64 root, u64 n)
{
	for (;;) {
		u64 child = 2 * root + 1;
		if (child >= n)
			return;
		if (child + 1 < n && a[child + 1] > a[child])
			child++;
		if (a[root] >= a[child])
			return;
		u64 t = a[root];
		a[root] = a[child];
		a[child] = t;
		root = child;
	}
}

void heapsort_u64(u64 *a, u64 n)
{
	if (n < 2)
		return;
	for (u64 i = n / 2; i-- > 0;)
		sift(a, i, n);
	for (u64 end = n - 1; end > 0; end--) {
		u64 t = a[0];
		a[0] = a[end];
		a[end] = t;
		sift(a, 0, end);
	}
}

void sort_str(const char **a, u64 un)
{
	i64 n = (i64)un;
	if (n < 2)
		return;
	if (n < 8) {
		for (i64 i = 1; i < n; i++) {
			const char *v = a[i];
			i64 j = i - 1;
			while (j >= 0 && strcmp(a[j], v) > 0) {
				a[j + 1] = a[j];
				j--;
			}
			a[j + 1] = v;
		}
		return;
	}
	/* Lomuto partition around the middle element. */
	const char *t = a[n / 2];
	a[n / 2] = a[n - 1];
	a[n - 1] = t;
	i64 store = 0;
	for (i64 i = 0; i < n - 1; i++) {
		if (strcmp(a[i], t) < 0) {
			const char *x = a[i];
			a[i] = a[store];
			a[store] = x;
			store++;
		}
	}
	a[n - 1] = a[store];
	a[store] = t;
	sort_str(a, (u64)store);
	sort_str(a + store + 1, (u64)(n - store - 1));
}
