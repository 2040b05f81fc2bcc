/*
 * vireo-toolsd — Vireo's guest tools daemon.
 *
 *   vireo-toolsd [-b] [-l LOGFILE] [-v]
 *
 * Polls the host's TCLO channel (every 100 ms when idle, at once after a
 * command, as vmtoolsd does; the poll is the heartbeat), answers reset,
 * ping, Capabilities_Register, Set_Option, Time_Synchronize and the power
 * operations, sends guest information every 30 s, and keeps the clock in
 * step with the host while the host says `Set_Option synctime 1`.
 * OS_Halt / OS_Reboot run the guest's own `poweroff` / `reboot` after the
 * host has the answer.  -b: run in the background.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "toolsd.h"

#include "../lib/vbackdoor.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define IDLE_POLL_S 0.1
#define INFO_EVERY_S 30.0
/* vmtoolsd restarts a failed channel after 1 s (spec 3.4) */
#define RESTART_S 1.0

enum { POST_RESET = 1, POST_CAPS = 2, POST_HALT = 4, POST_REBOOT = 8, POST_SYNC = 16,
       POST_SYNC_BACK = 32, POST_INFO = 64 };

static volatile sig_atomic_t stop_requested;

double toolsd_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void toolsd_log(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "vireo-toolsd: %s\n", msg);
	fflush(stderr);
}

bool toolsd_rpci(struct toolsd *t, const void *req, size_t len)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		if (!t->rpci.open && !vrpc_open(&t->rpci, VRPC_PROTO_RPCI))
			return false;
		char *reply = NULL;
		size_t n = 0;
		if (vrpc_call(&t->rpci, req, len, &reply, &n)) {
			bool ok = n >= 1 && reply[0] == '1';
			if (!ok && t->verbose)
				toolsd_log("RPCI '%.40s' answered '%.80s'", (const char *)req, reply);
			free(reply);
			return ok;
		}
		/* a broken channel: the host may have lost it (restore); open afresh */
		vrpc_close(&t->rpci);
	}
	return false;
}

bool toolsd_rpcif(struct toolsd *t, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return false;
	return toolsd_rpci(t, buf, (size_t)n);
}

static bool opt_bool(const char *v)
{
	return strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0;
}

/* Set_Option <name> <value>; the result text for the host. */
static const char *set_option(struct toolsd *t, char *args, unsigned *post)
{
	while (*args == ' ')
		args++;
	char *val = strchr(args, ' ');
	if (!val || !val[1])
		return "ERROR Unknown or invalid option";
	*val++ = '\0';
	if (strcmp(args, "synctime") == 0) {
		bool on = opt_bool(val);
		if (on && !t->synctime) {
			*post |= POST_SYNC;   /* a loop that starts syncs at once */
			t->next_slew = toolsd_now() + t->sync_period;
			t->next_check = toolsd_now();
		}
		t->synctime = on;
		if (!on) {
			struct timeval zero = { 0, 0 };
			adjtime(&zero, NULL);   /* stopping the loop stops the slew */
		}
	} else if (strcmp(args, "synctime.period") == 0) {
		long p = strtol(val, NULL, 10);
		t->sync_period = p > 0 && p < 86400 ? (unsigned)p : 60;
	} else if (strcmp(args, "time.synchronize.tools.slewCorrection") == 0) {
		t->slew = opt_bool(val);
	} else if (strcmp(args, "time.synchronize.tools.startup") == 0) {
		if (opt_bool(val) && !t->startup_sync_done) {
			t->startup_sync_done = true;
			*post |= POST_SYNC_BACK;
		}
	} else if (strcmp(args, "broadcastIP") == 0) {
		t->broadcast_ip = opt_bool(val);
		if (t->broadcast_ip)
			*post |= POST_INFO;
	}
	/* like vmtoolsd's core, every option with a value is accepted */
	return "OK ";
}

/* Run a program without waiting for it (SIGCHLD is ignored: no zombies). */
static bool spawn(const char *prog)
{
	pid_t p = fork();
	if (p < 0)
		return false;
	if (p == 0) {
		execlp(prog, prog, (char *)NULL);
		_exit(127);
	}
	return true;
}

static void power_op(struct toolsd *t, bool reboot)
{
	int state = reboot ? 2 : 1;
	toolsd_rpcif(t, "tools.os.statechange.status 1 %d", state);
	toolsd_rpcif(t, "log %s", reboot ? "Initiating reboot." : "Initiating halt.");
	toolsd_log("host asked for %s: running %s", reboot ? "OS_Reboot" : "OS_Halt",
	           reboot ? "reboot" : "poweroff");
	/* The guest's own shutdown; if the program is missing, signal init the
	 * way busybox's poweroff/reboot do (USR2 / TERM). */
	if (!spawn(reboot ? "reboot" : "poweroff"))
		kill(1, reboot ? SIGTERM : SIGUSR2);
}

/* One TCLO command: the result to send back, post-actions in *post. */
static const char *dispatch(struct toolsd *t, char *cmd, size_t len, unsigned *post)
{
	/* at most one trailing NUL; a NUL inside means a binary command we do not take */
	if (len > 0 && cmd[len - 1] == '\0')
		len--;
	if (len == 0)
		return "ERROR Bad command";
	if (memchr(cmd, '\0', len))
		return "ERROR Unknown Command";
	char *args = strchr(cmd, ' ');
	if (args)
		*args++ = '\0';
	else
		args = cmd + len;
	if (t->verbose)
		toolsd_log("TCLO %s%s%s", cmd, *args ? " " : "", args);
	if (strcmp(cmd, "reset") == 0) {
		*post |= POST_RESET;
		return "OK ATR toolbox";
	}
	if (strcmp(cmd, "ping") == 0)
		return "OK ";
	if (strcmp(cmd, "Capabilities_Register") == 0) {
		*post |= POST_CAPS;
		return "OK ";
	}
	if (strcmp(cmd, "Set_Option") == 0)
		return set_option(t, args, post);
	if (strcmp(cmd, "Time_Synchronize") == 0) {
		*post |= atoi(args) == 1 ? POST_SYNC_BACK : POST_SYNC;
		return "OK ";
	}
	if (strcmp(cmd, "OS_Halt") == 0) {
		*post |= POST_HALT;
		return "OK ";
	}
	if (strcmp(cmd, "OS_Reboot") == 0) {
		*post |= POST_REBOOT;
		return "OK ";
	}
	if (strcmp(cmd, "OS_PowerOn") == 0 || strcmp(cmd, "OS_Resume") == 0 ||
	    strcmp(cmd, "OS_Suspend") == 0) {
		/* no scripts to run: report success at once */
		int state = cmd[3] == 'P' ? 3 : cmd[3] == 'R' ? 4 : 5;
		char buf[64];
		snprintf(buf, sizeof(buf), "tools.os.statechange.status 1 %d", state);
		toolsd_rpci(t, buf, strlen(buf));
		return "OK ";
	}
	return "ERROR Unknown Command";
}

static void run_post(struct toolsd *t, unsigned post)
{
	if (post & POST_RESET) {
		toolsd_rpcif(t, "vmx.capability.unified_loop toolbox");
		toolsd_rpcif(t, "log toolbox: Version: vireo-toolsd %s (vireo)", TOOLSD_VERSION_STR);
		t->next_info = toolsd_now() + 0.5;
	}
	if (post & POST_CAPS) {
		toolsd_rpcif(t, "tools.capability.statechange ");
		toolsd_rpcif(t, "tools.capability.softpowerop_retry ");
		if (!toolsd_rpcif(t, "tools.set.version %d", TOOLSD_VERSION_NUM))
			toolsd_log("the host refused tools.set.version");
		t->next_info = toolsd_now();
	}
	if (post & (POST_SYNC | POST_SYNC_BACK))
		tsync_once(t, (post & POST_SYNC_BACK) != 0, true);
	if (post & POST_INFO)
		t->next_info = toolsd_now();
	if (post & (POST_HALT | POST_REBOOT))
		power_op(t, (post & POST_REBOOT) != 0);
}

static void on_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void sleep_s(double s)
{
	if (s <= 0)
		return;
	struct timespec ts = { .tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9) };
	nanosleep(&ts, NULL);
}

static void daemonize(const char *logfile)
{
	pid_t p = fork();
	if (p < 0) {
		perror("vireo-toolsd: fork");
		exit(1);
	}
	if (p > 0)
		_exit(0);
	setsid();
	int fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, 0);
		if (!logfile) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (fd > 2)
			close(fd);
	}
	if (chdir("/") != 0)
		exit(1);
}

int main(int argc, char **argv)
{
	struct toolsd t;
	memset(&t, 0, sizeof(t));
	t.sync_period = 60;
	t.slew = true;
	bool background = false;
	const char *logfile = NULL;
	int c;
	while ((c = getopt(argc, argv, "bl:v")) != -1) {
		switch (c) {
		case 'b': background = true; break;
		case 'l': logfile = optarg; break;
		case 'v': t.verbose = true; break;
		default:
			fprintf(stderr, "usage: vireo-toolsd [-b] [-l LOGFILE] [-v]\n");
			return 2;
		}
	}
	if (logfile) {
		int fd = open(logfile, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd < 0) {
			fprintf(stderr, "vireo-toolsd: %s: %s\n", logfile, strerror(errno));
			return 1;
		}
		dup2(fd, 1);
		dup2(fd, 2);
		close(fd);
	}
	if (getuid() == 0)
		vbd_ioperm();   /* for KVM hosts that do not forward ring-3 backdoor I/O */
	uint32_t version;
	if (!vbd_probe(&version, NULL)) {
		toolsd_log("no VMware backdoor: not running in a virtual machine");
		return 1;
	}
	if (background)
		daemonize(logfile);
	signal(SIGCHLD, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	toolsd_log("version %s started (backdoor version %u)", TOOLSD_VERSION_STR, version);

	char *result = NULL;   /* the previous command's result, sent with the next poll */
	size_t rlen = 0;
	unsigned post = 0;
	int failures = 0;
	t.next_info = toolsd_now() + 1.0;
	while (!stop_requested) {
		if (!t.tclo.open) {
			if (!vrpc_open(&t.tclo, VRPC_PROTO_TCLO)) {
				if (failures++ % 60 == 0)
					toolsd_log("cannot open the TCLO channel; retrying");
				sleep_s(RESTART_S);
				continue;
			}
			free(result);
			result = NULL;
			rlen = 0;   /* the first poll after opening sends nothing */
		}
		char *cmd = NULL;
		size_t clen = 0;
		if (!vrpc_send(&t.tclo, result ? result : "", rlen) || !vrpc_recv(&t.tclo, &cmd, &clen)) {
			toolsd_log("TCLO channel failed; reopening");
			vrpc_close(&t.tclo);
			vrpc_close(&t.rpci);
			post = 0;
			sleep_s(RESTART_S);
			continue;
		}
		failures = 0;
		free(result);
		result = NULL;
		rlen = 0;
		/* the result of the previous command has reached the host: act on it */
		if (post) {
			run_post(&t, post);
			post = 0;
		}
		double delay = IDLE_POLL_S;
		if (cmd) {
			const char *r = dispatch(&t, cmd, clen, &post);
			result = strdup(r);
			rlen = result ? strlen(result) : 0;
			free(cmd);
			delay = 0;
		}
		if (!post) {
			tsync_tick(&t);
			if (toolsd_now() >= t.next_info) {
				ginfo_gather(&t);
				t.next_info = toolsd_now() + INFO_EVERY_S;
			}
		}
		sleep_s(delay);
	}
	toolsd_log("stopping");
	vrpc_close(&t.tclo);
	vrpc_close(&t.rpci);
	free(result);
	return 0;
}
