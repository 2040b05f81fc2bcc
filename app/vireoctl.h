/*
 * vireoctl.h — the command-line tool's commands and shared helpers.
 *
 * Each command is a row in the table in vireoctl.c: a handler that gets the
 * arguments after the command name and returns the process exit status
 * (0 success, 1 failure, 2 usage error).  Helpers print one-line errors
 * prefixed with "vireoctl: ".
 */
#ifndef VIREO_VIREOCTL_H
#define VIREO_VIREOCTL_H

#include <stdbool.h>
#include <stdint.h>

#if defined(__GNUC__)
#define VCTL_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define VCTL_PRINTF(a, b)
#endif

#define VCTL_EXIT_OK    0
#define VCTL_EXIT_FAIL  1
#define VCTL_EXIT_USAGE 2

struct vctl_cmd {
	const char *name;
	/* One of the two: run gets its row (for usage errors); fn is a plain handler. */
	int (*run)(const struct vctl_cmd *cmd, int argc, char **argv);
	int (*fn)(int argc, char **argv);
	const char *usage;     /* arguments after "vireoctl NAME" */
	const char *summary;   /* one line for --help */
	const char *help;      /* details for "vireoctl help NAME", or NULL */
};

/* Handlers (argv[0] is the first argument after the command name). */
int vctl_cmd_create(const struct vctl_cmd *cmd, int argc, char **argv);
int vctl_cmd_run(const struct vctl_cmd *cmd, int argc, char **argv);

/* "vireoctl: <msg>" on stderr. */
void vctl_error(const char *fmt, ...) VCTL_PRINTF(1, 2);
/* "vireoctl: <msg>" and the command's usage line on stderr; returns VCTL_EXIT_USAGE. */
int vctl_usage_error(const struct vctl_cmd *cmd, const char *fmt, ...) VCTL_PRINTF(2, 3);
/* The command's full help on stdout. */
void vctl_print_help(const struct vctl_cmd *cmd);

/*
 * Option scanning for "--name VALUE" and "--name=VALUE".  Returns true when
 * argv[*i] is option `name`; then *value is set and *i advanced past it.
 * A missing value is a usage error: *value is NULL and *bad is set.
 */
bool vctl_opt(int argc, char **argv, int *i, const char *name, const char **value, bool *bad);
/* Is this argument a request for help (-h, --help)? */
bool vctl_is_help(const char *arg);
/* Decimal in [min, max]; prints a usage error naming opt and returns false. */
bool vctl_parse_u64(const struct vctl_cmd *cmd, const char *opt, const char *s, uint64_t min,
                    uint64_t max, uint64_t *out);

#endif
