/* countPrimes: primes below N (default 10,000,000) by trial division over
 * odd divisors.  Integer divide and a tight loop: pure CPL3 compute. */
#include "bench.h"

int main(int argc, char **argv)
{
	long n = bench_arg(argc, argv, 10000000);
	long long t0 = bench_now_ns();
	long count = n > 2 ? 1 : 0; /* 2 */
	for (long k = 3; k < n; k += 2) {
		int prime = 1;
		for (long d = 3; d * d <= k; d += 2)
			if (k % d == 0) {
				prime = 0;
				break;
			}
		count += prime;
	}
	bench_report("countPrimes", n, count, bench_now_ns() - t0);
	return 0;
}
