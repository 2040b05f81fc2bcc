/*
 * vireoctl_run.c — `vireoctl run PATH.vmx [-s key=value]...`: exec vireo-vmx
 * with serial port 0 on the terminal.  exec (not fork) so the exit status,
 * signals and the terminal are the VM's own.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vireoctl.h"

#define RUN_MAX_SETS 64

/* vireo-vmx in the folder of this executable (build tree or bindir), if there. */
static char *vmx_beside_self(void)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash, *path = NULL;

	if (n <= 0)
		return NULL;
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (!slash)
		return NULL;
	*slash = '\0';
	if (asprintf(&path, "%s/vireo-vmx", self) < 0)
		return NULL;
	if (access(path, X_OK) != 0) {
		free(path);
		return NULL;
	}
	return path;
}

int vctl_cmd_run(const struct vctl_cmd *cmd, int argc, char **argv)
{
	const char *vmx = NULL, *sets[RUN_MAX_SETS];
	char *args[2 * RUN_MAX_SETS + 8];
	unsigned nsets = 0, na = 0;
	char *prog;
	const char *env;

	for (int i = 0; i < argc; i++) {
		if (vctl_is_help(argv[i])) {
			vctl_print_help(cmd);
			return VCTL_EXIT_OK;
		} else if (strcmp(argv[i], "-s") == 0) {
			const char *kv = i + 1 < argc ? argv[++i] : NULL;
			if (!kv)
				return vctl_usage_error(cmd, "run: option -s needs key=value");
			if (!strchr(kv, '=') || kv[0] == '=')
				return vctl_usage_error(cmd, "run: -s \"%s\": expected key=value", kv);
			if (nsets == RUN_MAX_SETS)
				return vctl_usage_error(cmd, "run: more than %d -s options", RUN_MAX_SETS);
			sets[nsets++] = kv;
		} else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			return vctl_usage_error(cmd, "run: unknown option \"%s\"", argv[i]);
		} else if (vmx) {
			return vctl_usage_error(cmd, "run: unexpected argument \"%s\"", argv[i]);
		} else {
			vmx = argv[i];
		}
	}
	if (!vmx)
		return vctl_usage_error(cmd, "run: missing PATH.vmx");
	if (access(vmx, R_OK) != 0) {
		vctl_error("%s: %s", vmx, strerror(errno));
		return VCTL_EXIT_FAIL;
	}

	prog = vmx_beside_self();
	env = getenv("VIREO_VMX");
	if (!prog)
		prog = strdup(env && *env ? env : "vireo-vmx");
	if (!prog) {
		vctl_error("out of memory");
		return VCTL_EXIT_FAIL;
	}
	args[na++] = prog;
	args[na++] = (char *)"-s";
	args[na++] = (char *)"serial0.present=TRUE";
	args[na++] = (char *)"-s";
	args[na++] = (char *)"serial0.fileType=stdio";
	/* The user's -s come after ours, so they can override them. */
	for (unsigned k = 0; k < nsets; k++) {
		args[na++] = (char *)"-s";
		args[na++] = (char *)sets[k];
	}
	args[na++] = (char *)vmx;
	args[na] = NULL;
	fflush(stdout);
	/* execvp: a name without '/' is looked up in PATH. */
	execvp(prog, args);
	vctl_error("cannot run %s: %s", prog, strerror(errno));
	free(prog);
	return VCTL_EXIT_FAIL;
}
