/* syscall: N (default 10,000,000) getppid() calls through syscall(2), so
 * no libc cache can skip the kernel entry: the CPL3 <-> CPL0 round trip. */
#include "bench.h"
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long n = bench_arg(argc, argv, 10000000);
	long ppid = (long)getppid();
	long long same = 0;
	long long t0 = bench_now_ns();
	for (long i = 0; i < n; i++)
		same += syscall(SYS_getppid) == ppid;
	/* The result is the count of correct answers: n everywhere. */
	bench_report("getppid", n, same, bench_now_ns() - t0);
	return same == n ? 0 : 1;
}
