/* fib: the doubly recursive Fibonacci, fib(40) by default.  Calls and
 * returns: stresses a translator's indirect control flow (ret). */
#include "bench.h"

__attribute__((noinline)) static long fib(long n)
{
	return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

int main(int argc, char **argv)
{
	long n = bench_arg(argc, argv, 40);
	long long t0 = bench_now_ns();
	long r = fib(n);
	bench_report("fib", n, r, bench_now_ns() - t0);
	return 0;
}
