/*
 * vctl_main.c — a test driver that runs vireoctl's VMDB commands
 * (app/vireoctl_vmdb.c) as `vctl COMMAND ARGS...`, so they are tested before
 * and independently of their rows in vireoctl's command table.
 */
#include <stdio.h>
#include <string.h>

#include "../../app/vireoctl_vmdb.h"

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} cmds[] = {
		{ "list", vireoctl_cmd_list }, { "register", vireoctl_cmd_register },
		{ "unregister", vireoctl_cmd_unregister }, { "start", vireoctl_cmd_start },
		{ "stop", vireoctl_cmd_stop }, { "reset", vireoctl_cmd_reset },
		{ "status", vireoctl_cmd_status }, { "get", vireoctl_cmd_get },
		{ "set", vireoctl_cmd_set }, { "watch", vireoctl_cmd_watch },
	};
	if (argc < 2)
		return 2;
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].fn(argc - 2, argv + 2);
	fprintf(stderr, "vctl: unknown command %s\n", argv[1]);
	return 2;
}
