/*
 * log.c — vmware.log: rotation at power-on, timestamped lines, rate limits.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define VLOG_KEEP 3   /* vmware-0.log .. vmware-2.log */

static pthread_mutex_t vlog_lock = PTHREAD_MUTEX_INITIALIZER;
static FILE *vlog_file;
static enum vlog_level vlog_stderr_level = VLOG_WARN;
static _Thread_local char vlog_thread[16] = "main";

uint64_t vlog_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void vlog_set_thread_name(const char *name)
{
	snprintf(vlog_thread, sizeof(vlog_thread), "%s", name);
}

void vlog_set_stderr_level(enum vlog_level lvl)
{
	vlog_stderr_level = lvl;
}

static void vlog_rotate(const char *dir)
{
	char from[PATH_MAX], to[PATH_MAX];

	for (int i = VLOG_KEEP - 1; i >= 0; i--) {
		if (i == 0)
			snprintf(from, sizeof(from), "%s/vmware.log", dir);
		else
			snprintf(from, sizeof(from), "%s/vmware-%d.log", dir, i - 1);
		snprintf(to, sizeof(to), "%s/vmware-%d.log", dir, i);
		if (rename(from, to) != 0 && errno != ENOENT)
			fprintf(stderr, "vireo: cannot rotate %s: %s\n", from, strerror(errno));
	}
}

int vlog_open(const char *dir, const char *progname)
{
	char path[PATH_MAX];
	FILE *f;

	vlog_rotate(dir);
	snprintf(path, sizeof(path), "%s/vmware.log", dir);
	f = fopen(path, "we");
	if (!f) {
		fprintf(stderr, "vireo: cannot open %s: %s\n", path, strerror(errno));
		return -1;
	}
	setvbuf(f, NULL, _IOLBF, 0);
	pthread_mutex_lock(&vlog_lock);
	if (vlog_file)
		fclose(vlog_file);
	vlog_file = f;
	pthread_mutex_unlock(&vlog_lock);
	vlog(VLOG_INFO, "%s: Vireo %s, build flavor %s, pid %d", progname, VIREO_VERSION,
	     VIREO_FLAVOR, (int)getpid());
	return 0;
}

void vlog_close(void)
{
	pthread_mutex_lock(&vlog_lock);
	if (vlog_file)
		fclose(vlog_file);
	vlog_file = NULL;
	pthread_mutex_unlock(&vlog_lock);
}

static const char *const vlog_names[] = { "debug", "info", "warning", "error" };

void vlogv(enum vlog_level lvl, const char *fmt, va_list ap)
{
	char msg[1024], stamp[64];
	struct timespec ts;
	struct tm tm;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* Guest-provided text may contain control characters: keep lines single. */
	for (char *p = msg; *p; p++)
		if ((unsigned char)*p < 0x20 && *p != '\t')
			*p = '?';
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);

	pthread_mutex_lock(&vlog_lock);
	if (vlog_file)
		fprintf(vlog_file, "%s.%03ldZ %s| %s: %s\n", stamp, ts.tv_nsec / 1000000,
		        vlog_thread, vlog_names[lvl], msg);
	if (lvl >= vlog_stderr_level || (!vlog_file && lvl >= VLOG_INFO))
		fprintf(stderr, "vireo: %s\n", msg);
	pthread_mutex_unlock(&vlog_lock);
}

void vlog(enum vlog_level lvl, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlogv(lvl, fmt, ap);
	va_end(ap);
}

bool vlog_ratelimit_ok(struct vlog_ratelimit *rl, unsigned burst, uint64_t interval_ns,
                       unsigned *suppressed_out)
{
	static pthread_mutex_t rl_lock = PTHREAD_MUTEX_INITIALIZER;
	uint64_t now = vlog_now_ns();
	bool ok;

	pthread_mutex_lock(&rl_lock);
	*suppressed_out = 0;
	if (rl->window_start == 0 || now - rl->window_start >= interval_ns) {
		*suppressed_out = rl->suppressed;
		rl->window_start = now;
		rl->printed = 0;
		rl->suppressed = 0;
	}
	ok = rl->printed < burst;
	if (ok)
		rl->printed++;
	else
		rl->suppressed++;
	pthread_mutex_unlock(&rl_lock);
	return ok;
}
