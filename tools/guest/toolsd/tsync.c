/*
 * tsync.c — time sync against the host's clock (GETTIMEFULL).
 *
 * The host's time is read the way open-vm-tools does (spec 5.1): host,
 * guest, host, keeping the sample whose host reads are closest.  An error
 * over 1 s is stepped with settimeofday (then STOPCATCHUP); a smaller one
 * is slewed with adjtime when slewing is allowed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "toolsd.h"

#include "../lib/vbackdoor.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#define STEP_LIMIT_US 1000000
/* A step (a wrong `date -s`, a resumed VM) is looked for this often: a read is cheap. */
#define CHECK_EVERY_S 5.0

static int64_t guest_us(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

/* error = guest - host in µs; false when the host has no time for us. */
static bool measure(int64_t *error)
{
	int64_t best_span = INT64_MAX, best = 0;
	int64_t h0;
	if (!vbd_host_time_us(&h0, NULL))
		return false;
	for (int i = 0; i < 4; i++) {
		int64_t g = guest_us(), h1;
		if (!vbd_host_time_us(&h1, NULL))
			return false;
		int64_t span = llabs(h1 - h0);
		if (span < best_span) {
			best_span = span;
			best = g - (h0 + (h1 - h0) / 2);
		}
		if (span <= 2000)
			break;
		h0 = h1;
	}
	*error = best;
	return true;
}

static void stop_catchup(void)
{
	struct vbd_regs r = { .ax = VBD_MAGIC, .cx = VBD_CMD_STOPCATCHUP, .dx = VBD_PORT_LB };
	vbd_lb(&r);
}

bool tsync_once(struct toolsd *t, bool allow_backward, bool force)
{
	int64_t err;
	if (!measure(&err)) {
		toolsd_log("time sync: the host gave no time");
		return false;
	}
	if (llabs(err) > STEP_LIMIT_US || (force && llabs(err) > 1000)) {
		if (err > 0 && !allow_backward) {
			toolsd_log("time sync: guest ahead by %lld us, backward step not allowed", (long long)err);
			return true;
		}
		/* Re-read right before stepping so the time set is current. */
		int64_t target = guest_us() - err;
		struct timeval tv = { .tv_sec = target / 1000000, .tv_usec = target % 1000000 };
		if (settimeofday(&tv, NULL) != 0) {
			toolsd_log("time sync: settimeofday: %s", strerror(errno));
			return false;
		}
		/* a step resets any slew in progress */
		struct timeval zero = { 0, 0 };
		adjtime(&zero, NULL);
		stop_catchup();
		toolsd_log("time sync: stepped the clock by %+.3f s", (double)-err / 1e6);
		t->next_slew = toolsd_now() + t->sync_period;
		return true;
	}
	if (t->slew && llabs(err) > 1000) {
		struct timeval d = { .tv_sec = -err / 1000000, .tv_usec = -err % 1000000 };
		if (adjtime(&d, NULL) != 0)
			toolsd_log("time sync: adjtime: %s", strerror(errno));
		else if (t->verbose)
			toolsd_log("time sync: slewing %+lld us", (long long)-err);
	}
	return true;
}

void tsync_tick(struct toolsd *t)
{
	if (!t->synctime)
		return;
	double now = toolsd_now();
	if (now >= t->next_slew) {
		t->next_slew = now + t->sync_period;
		t->next_check = now + CHECK_EVERY_S;
		tsync_once(t, true, false);
		return;
	}
	if (now < t->next_check)
		return;
	t->next_check = now + CHECK_EVERY_S;
	int64_t err;
	if (measure(&err) && llabs(err) > STEP_LIMIT_US)
		tsync_once(t, true, false);
}
