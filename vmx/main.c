/*
 * main.c — vireo-vmx: one process per running VM.
 *
 *   vireo-vmx [-s key=value]... PATH.vmx
 *
 * -s overrides a configuration key for this run only (it is not saved).
 * Exit status: 0 when the guest powers off, 1 on failure (stderr names the
 * file, key or line), 2 on bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "../vmdb/vmx_link.h"
#include "config.h"
#include "log.h"
#include "loop.h"
#include "tools.h"
#include "vm.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: vireo-vmx [-s key=value]... PATH.vmx\n"
	           "Runs one virtual machine until its guest powers off.\n");
}

/* NAME.vmx.lck in the VM folder: one vireo-vmx per VM. */
static int vmx_take_lock(const char *vmx, char *err, size_t errlen)
{
	char path[PATH_MAX], pid[32];
	int fd;

	snprintf(path, sizeof(path), "%s.lck", vmx);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		snprintf(err, errlen, "%s: cannot create lock file %s: %s", vmx, path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		ssize_t n = read(fd, pid, sizeof(pid) - 1);
		pid[n > 0 ? n : 0] = 0;
		pid[strcspn(pid, "\n")] = 0;
		snprintf(err, errlen, "%s: this VM is already running (lock %s held%s%s)", vmx, path,
		         pid[0] ? " by pid " : "", pid);
		close(fd);
		return -1;
	}
	if (ftruncate(fd, 0) == 0) {
		int n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
		if (pwrite(fd, pid, (size_t)n, 0) != n)
			vlog_warn("cannot write pid to %s", path);
	}
	return fd;   /* held until the process exits */
}

/* A power request written into VMDB by vireoctl or the GUI. */
static void vmx_on_link_request(void *opaque, enum vmx_link_request req)
{
	struct vmx_vm *vm = opaque;

	switch (req) {
	case VMX_LINK_REQ_OFF:
		/*
		 * Graceful: the guest tools run the guest's own shutdown (TCLO
		 * OS_Halt; they fall back to the button if the guest refuses);
		 * without tools, the ACPI power button.
		 */
		if (tools_request_power(vm, TOOLS_POWER_HALT) == 0)
			break;
		if (vmx_vm_power_button(vm) != 0)
			vmx_vm_request_power(vm, VMX_POWER_OFF, "stop requested (no power button)");
		break;
	case VMX_LINK_REQ_HARDOFF:
		vmx_vm_request_power(vm, VMX_POWER_OFF, "hard stop requested");
		break;
	case VMX_LINK_REQ_RESET:
		vmx_vm_request_power(vm, VMX_POWER_RESET, "reset requested");
		break;
	default:
		vlog_info("VMDB power request %d not supported", (int)req);
		break;
	}
}

static void vmx_on_signal(void *opaque, uint32_t events)
{
	struct vmx_vm *vm = opaque;
	struct signalfd_siginfo si;
	int fd = vm->signal_fd;

	if (read(fd, &si, sizeof(si)) != sizeof(si))
		return;
	vlog_info("signal %u: powering off", si.ssi_signo);
	vmx_vm_request_power(vm, VMX_POWER_OFF, "host signal");
}

int main(int argc, char **argv)
{
	char err[1024];
	const char *overrides[64];
	unsigned noverrides = 0;
	struct vmxcfg *cfg;
	struct vmx_vm *vm;
	const char *path = NULL;
	int status;
	sigset_t sigs;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-s") == 0 && i + 1 < argc) {
			if (noverrides == 64 || !strchr(argv[i + 1], '=')) {
				fprintf(stderr, "vireo-vmx: -s %s: expected key=value\n", argv[i + 1]);
				return 2;
			}
			overrides[noverrides++] = argv[++i];
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("vireo-vmx %s (%s)\n", VIREO_VERSION, VIREO_FLAVOR);
			return 0;
		} else if (argv[i][0] == '-' || path) {
			fprintf(stderr, "vireo-vmx: unexpected argument \"%s\"\n", argv[i]);
			usage(stderr);
			return 2;
		} else {
			path = argv[i];
		}
	}
	if (!path) {
		usage(stderr);
		return 2;
	}

	cfg = vmxcfg_load(path, err, sizeof(err));
	if (!cfg) {
		fprintf(stderr, "vireo-vmx: %s\n", err);
		return 1;
	}
	for (unsigned i = 0; i < noverrides; i++) {
		char key[256];
		const char *eq = strchr(overrides[i], '=');
		size_t kl = (size_t)(eq - overrides[i]);
		if (kl == 0 || kl >= sizeof(key)) {
			fprintf(stderr, "vireo-vmx: -s %s: bad key\n", overrides[i]);
			return 2;
		}
		memcpy(key, overrides[i], kl);
		key[kl] = 0;
		if (vmxcfg_set(cfg, key, eq + 1) != 0) {
			fprintf(stderr, "vireo-vmx: -s %s: not a valid key=value\n", overrides[i]);
			vmxcfg_free(cfg);
			return 2;
		}
	}
	if (vmx_take_lock(vmxcfg_path(cfg), err, sizeof(err)) < 0) {
		fprintf(stderr, "vireo-vmx: %s\n", err);
		vmxcfg_free(cfg);
		return 1;
	}

	/* Signals become loop events; vCPU threads inherit this mask. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	{
		char *dir = strdup(vmxcfg_path(cfg));
		char *slash = dir ? strrchr(dir, '/') : NULL;
		if (slash)
			*slash = 0;
		vlog_set_thread_name("vmx");
		vlog_open(slash ? dir : ".", "vireo-vmx");
		free(dir);
	}

	vm = vmx_vm_create(cfg, err, sizeof(err));
	if (!vm) {
		vlog_error("%s", err);
		fprintf(stderr, "vireo-vmx: %s\n", err);
		vmxcfg_free(cfg);
		vlog_close();
		return 1;
	}
	vm->signal_fd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	if (vm->signal_fd >= 0)
		vmx_loop_add_fd(vm->loop, vm->signal_fd, EPOLLIN, vmx_on_signal, vm);

	struct vmx_link *lk = vmx_link_open_env(err, sizeof(err));
	if (!lk && getenv("VIREO_VMDB_SOCK"))
		vlog_warn("VMDB: %s", err);
	if (lk) {
		vmx_link_on_request(lk, vmx_on_link_request, vm);
		vmx_link_attach(lk, vm->loop);
		vmx_link_publish_power(lk, VMX_LINK_ON, NULL);
	}
	vm->link = lk;
	status = vmx_vm_run(vm);
	vlog_info("exit status %d", status);
	vm->link = NULL;
	if (lk) {
		vmx_link_publish_power(lk, VMX_LINK_OFF, vm->fail_reason[0] ? vm->fail_reason : "powered off");
		vmx_link_close(lk);
	}
	if (vm->signal_fd >= 0)
		close(vm->signal_fd);
	vmx_vm_destroy(vm);
	vmxcfg_free(cfg);
	vlog_close();
	return status;
}
