/* memsweep: a 32 MiB array swept with large[(4096*i+i) % S] = 1 +
 * large[i % S]; N iterations (default 20 passes, 20 * S).  The strided
 * store touches a new page nearly every iteration: the first pass takes
 * the demand-zero faults, every pass stresses the TLB. */
#include "bench.h"

#define S (32L * 1024 * 1024)

static unsigned char large[S];

int main(int argc, char **argv)
{
	long n = bench_arg(argc, argv, 20 * S);
	long long t0 = bench_now_ns();
	for (long i = 0; i < n; i++)
		large[(4096 * i + i) % S] = (unsigned char)(1 + large[i % S]);
	long long ns = bench_now_ns() - t0;
	long long sum = 0;
	for (long i = 0; i < S; i += 4093)
		sum += large[i];
	bench_report("memsweep", n, sum, ns);
	return 0;
}
