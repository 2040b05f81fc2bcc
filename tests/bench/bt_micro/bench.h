/* Shared by the bt microbenchmarks (Adams & Agesen, ASPLOS 2006): each
 * program times only its own loop with CLOCK_MONOTONIC, so boot and serial
 * console costs stay out of the figure, and prints one line that
 * tests/bench/bench_bt.py parses:
 *   VIREO-BENCH name=NAME arg=N result=R ns=ELAPSED
 */
#ifndef BT_MICRO_BENCH_H
#define BT_MICRO_BENCH_H

/* native: true targets do not get the project's -D_GNU_SOURCE. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static inline long long bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The iteration count from argv[1], or the paper's default. */
static inline long bench_arg(int argc, char **argv, long dflt)
{
	if (argc < 2)
		return dflt;
	char *end;
	long v = strtol(argv[1], &end, 10);
	if (*end != '\0' || v < 1) {
		fprintf(stderr, "%s: bad count '%s'\n", argv[0], argv[1]);
		exit(2);
	}
	return v;
}

static inline void bench_report(const char *name, long arg, long long result, long long ns)
{
	printf("VIREO-BENCH name=%s arg=%ld result=%lld ns=%lld\n", name, arg, result, ns);
	fflush(stdout);
}

#endif
