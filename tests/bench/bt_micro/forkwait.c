/* forkwait: N (default 25,000) fork + wait pairs.  Process creation and
 * teardown: page-table writes, copy-on-write faults, context switches. */
#include "bench.h"
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long n = bench_arg(argc, argv, 25000);
	long ok = 0;
	long long t0 = bench_now_ns();
	for (long i = 0; i < n; i++) {
		pid_t pid = fork();
		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (pid == 0)
			_exit(0);
		int st;
		if (waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0)
			ok++;
	}
	bench_report("forkwait", n, ok, bench_now_ns() - t0);
	return ok == n ? 0 : 1;
}
