/*
 * cpl3_native.c — the native peer of the cpl3 guest: runs the same
 * cpl3_loop.s and prints "iterations=N result=HEX ns=T" in the guest's format.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

uint64_t cpl3_loop(uint64_t n);

int main(int argc, char **argv)
{
	uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 0) : 10000000ull;
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	uint64_t r = cpl3_loop(n);
	clock_gettime(CLOCK_MONOTONIC, &b);
	uint64_t ns = (uint64_t)(b.tv_sec - a.tv_sec) * 1000000000ull +
	              (uint64_t)(b.tv_nsec - a.tv_nsec);
	printf("native: iterations=%" PRIu64 " result=%016" PRIx64 " ns=%" PRIu64 "\n", n, r, ns);
	return 0;
}
