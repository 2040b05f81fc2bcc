/*
 * vireoctl.c — the command-line tool: dispatch, help and shared helpers.
 * Commands live in vireoctl_<name>.c; adding one is a row in vctl_cmds.
 */
#include "vireoctl.h"
#include "vireoctl_vmdb.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef VIREO_VERSION
#define VIREO_VERSION "unknown"
#endif
#ifndef VIREO_FLAVOR
#define VIREO_FLAVOR "unknown"
#endif

/*
 * A row per command.  Handlers with the plain signature int (int, char **)
 * (e.g. those in vireoctl_vmdb.h) go in .fn:
 *   { .name = "list", .fn = vireoctl_cmd_list, .usage = "", .summary = "..." },
 */
static const struct vctl_cmd vctl_cmds[] = {
	{
		.name = "create", .run = vctl_cmd_create,
		.usage = "NAME [--dir PARENT] [--memsize MB] [--cpus N] [--kernel K] [--initrd I] "
		"[--cmdline C] [--engine auto|hv|bt]",
		.summary = "create a new VM folder PARENT/NAME with NAME.vmx",
		.help =
		"  --dir PARENT    where the VM folder is made (default: $HOME/vireo)\n"
		"  --memsize MB    guest memory, 4..1048576, a multiple of 4 (default 512)\n"
		"  --cpus N        virtual CPUs, 1..64 (default 1)\n"
		"  --kernel K      Linux bzImage to boot directly (stored as an absolute path)\n"
		"  --initrd I      initial ramdisk for --kernel\n"
		"  --cmdline C     kernel command line\n"
		"  --engine E      auto (default), hv (/dev/kvm) or bt (software)\n"
		"Refuses to overwrite an existing VM folder.  Prints the .vmx path.\n",
	},
	{
		.name = "run", .run = vctl_cmd_run,
		.usage = "PATH.vmx [-s key=value]...",
		.summary = "run a VM in the foreground with serial port 0 on this terminal",
		.help =
		"  -s key=value    override a .vmx key for this run only (not saved)\n"
		"Runs vireo-vmx (next to vireoctl, else $VIREO_VMX, else from PATH);\n"
		"the exit status is the VM's: 0 after the guest powers off.\n",
	},
	/* Through vireod and VMDB (app/vireoctl_vmdb.c). */
	{ .name = "list", .fn = vireoctl_cmd_list, .usage = "",
	  .summary = "list the registered VMs with their power state" },
	{ .name = "register", .fn = vireoctl_cmd_register, .usage = "PATH.vmx",
	  .summary = "add a VM to the inventory" },
	{ .name = "unregister", .fn = vireoctl_cmd_unregister, .usage = "VM",
	  .summary = "remove a VM from the inventory" },
	{ .name = "start", .fn = vireoctl_cmd_start, .usage = "VM",
	  .summary = "power a VM on (through vireod)" },
	{ .name = "stop", .fn = vireoctl_cmd_stop, .usage = "[--hard] VM",
	  .summary = "shut a VM down gracefully, or power it off with --hard" },
	{ .name = "reset", .fn = vireoctl_cmd_reset, .usage = "VM",
	  .summary = "reset a VM" },
	{ .name = "status", .fn = vireoctl_cmd_status, .usage = "[VM]",
	  .summary = "show power state and reason" },
	{ .name = "get", .fn = vireoctl_cmd_get, .usage = "PATH",
	  .summary = "read a VMDB value" },
	{ .name = "set", .fn = vireoctl_cmd_set, .usage = "PATH VALUE",
	  .summary = "write a VMDB value" },
	{ .name = "watch", .fn = vireoctl_cmd_watch, .usage = "PATH",
	  .summary = "print each change of a VMDB path as it arrives" },
	{ .name = "guestinfo", .fn = vireoctl_cmd_guestinfo, .usage = "VM [KEY [VALUE]]",
	  .summary = "list, read or set the VM's guestinfo.KEY variables (guest tools)" },
	{ .name = "balloon", .fn = vireoctl_cmd_balloon, .usage = "VM MB",
	  .summary = "set the memory balloon target in MB (0 gives the memory back)" },
	{ .name = "screenshot", .fn = vireoctl_cmd_screenshot, .usage = "VM FILE.png",
	  .summary = "save the VM's screen as a PNG (written by the VM's process)" },
};

#define VCTL_NCMDS (sizeof(vctl_cmds) / sizeof(vctl_cmds[0]))

static void vctl_usage(FILE *f)
{
	fprintf(f, "usage: vireoctl COMMAND [ARGS...]\n"
	           "       vireoctl help COMMAND | --help | --version\n\ncommands:\n");
	for (size_t i = 0; i < VCTL_NCMDS; i++)
		fprintf(f, "  %-10s %s\n", vctl_cmds[i].name, vctl_cmds[i].summary);
}

static const struct vctl_cmd *vctl_find(const char *name)
{
	for (size_t i = 0; i < VCTL_NCMDS; i++)
		if (strcmp(vctl_cmds[i].name, name) == 0)
			return &vctl_cmds[i];
	return NULL;
}

void vctl_error(const char *fmt, ...)
{
	va_list ap;

	fputs("vireoctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int vctl_usage_error(const struct vctl_cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	fputs("vireoctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (cmd)
		fprintf(stderr, "usage: vireoctl %s %s\n", cmd->name, cmd->usage);
	else
		vctl_usage(stderr);
	return VCTL_EXIT_USAGE;
}

void vctl_print_help(const struct vctl_cmd *cmd)
{
	printf("usage: vireoctl %s %s\n%s.\n", cmd->name, cmd->usage, cmd->summary);
	if (cmd->help)
		printf("\n%s", cmd->help);
}

bool vctl_is_help(const char *arg)
{
	return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

bool vctl_opt(int argc, char **argv, int *i, const char *name, const char **value, bool *bad)
{
	const char *a = argv[*i];
	size_t n = strlen(name);

	if (strncmp(a, name, n) != 0)
		return false;
	if (a[n] == '=') {
		*value = a + n + 1;
		(*i)++;
		return true;
	}
	if (a[n] != '\0')
		return false;
	if (*i + 1 >= argc) {
		*value = NULL;
		*bad = true;
		(*i)++;
		return true;
	}
	*value = argv[*i + 1];
	*i += 2;
	return true;
}

bool vctl_parse_u64(const struct vctl_cmd *cmd, const char *opt, const char *s, uint64_t min,
                    uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	const char *p = s;

	if (!*p)
		goto bad;
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			goto bad;
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			goto range;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (v < min || v > max)
		goto range;
	*out = v;
	return true;
bad:
	vctl_usage_error(cmd, "%s \"%s\": not a number (expected %llu..%llu)", opt, s,
	                 (unsigned long long)min, (unsigned long long)max);
	return false;
range:
	vctl_usage_error(cmd, "%s \"%s\": out of range (expected %llu..%llu)", opt, s,
	                 (unsigned long long)min, (unsigned long long)max);
	return false;
}

int main(int argc, char **argv)
{
	const struct vctl_cmd *cmd;

	if (argc < 2) {
		vctl_usage(stderr);
		return VCTL_EXIT_USAGE;
	}
	if (vctl_is_help(argv[1])) {
		vctl_usage(stdout);
		return VCTL_EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
		printf("vireoctl %s (%s)\n", VIREO_VERSION, VIREO_FLAVOR);
		return VCTL_EXIT_OK;
	}
	if (strcmp(argv[1], "help") == 0) {
		if (argc == 2) {
			vctl_usage(stdout);
			return VCTL_EXIT_OK;
		}
		if (argc > 3)
			return vctl_usage_error(NULL, "help: unexpected argument \"%s\"", argv[3]);
		cmd = vctl_find(argv[2]);
		if (!cmd)
			return vctl_usage_error(NULL, "help: unknown command \"%s\"", argv[2]);
		vctl_print_help(cmd);
		return VCTL_EXIT_OK;
	}
	if (argv[1][0] == '-')
		return vctl_usage_error(NULL, "unknown option \"%s\"", argv[1]);
	cmd = vctl_find(argv[1]);
	if (!cmd)
		return vctl_usage_error(NULL, "unknown command \"%s\"", argv[1]);
	if (argc >= 3 && vctl_is_help(argv[2])) {
		vctl_print_help(cmd);
		return VCTL_EXIT_OK;
	}
	return cmd->run ? cmd->run(cmd, argc - 2, argv + 2) : cmd->fn(argc - 2, argv + 2);
}
