/*
 * vireo-iopl PROGRAM [ARGS...] — run PROGRAM with I/O permission for the
 * backdoor ports.
 *
 * VMware forwards backdoor I/O from any privilege level; KVM does so only
 * with kvm.enable_vmware_backdoor=1.  Elsewhere a ring-3 `in` on 0x5658
 * faults, and unmodified tools (vmtoolsd, vmware-rpctool) conclude they
 * are not in a VM.  The kernel's I/O bitmap is kept across execve, so
 * taking the ports here lets the program's IN reach the hypervisor.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/io.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: vireo-iopl PROGRAM [ARGS...]\n");
		return 2;
	}
	/* 0x5658-0x5659: backdoor LB and HB; the balloon port is kernel-only. */
	if (ioperm(0x5658, 2, 1) != 0) {
		int e = errno;
		if (iopl(3) != 0) {
			fprintf(stderr, "vireo-iopl: ioperm(0x5658, 2): %s (needs root or CAP_SYS_RAWIO)\n",
			        strerror(e));
			return 126;
		}
	}
	execvp(argv[1], argv + 1);
	fprintf(stderr, "vireo-iopl: %s: %s\n", argv[1], strerror(errno));
	return 127;
}
