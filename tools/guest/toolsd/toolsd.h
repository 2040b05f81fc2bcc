/*
 * toolsd.h — vireo-toolsd internals: the daemon's state, time sync and
 * guest information (toolsd.c holds the TCLO loop and power operations).
 */
#ifndef VIREO_TOOLSD_H
#define VIREO_TOOLSD_H

#include "../lib/vrpc.h"

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* Vireo tools 1.0.0 in VMware's encoding: major * 1024 + minor * 32 + base. */
#define TOOLSD_VERSION_STR "1.0.0"
#define TOOLSD_VERSION_NUM (1 * 1024 + 0 * 32 + 0)

struct toolsd {
	struct vrpc_chan tclo, rpci;
	/* Set_Option state */
	bool synctime;
	unsigned sync_period;     /* seconds between slew corrections */
	bool slew;
	bool broadcast_ip;
	bool startup_sync_done;
	/* schedule (CLOCK_MONOTONIC seconds) */
	double next_check, next_slew, next_info;
	bool verbose;
};

void toolsd_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* RPCI on the daemon's long-lived channel (reopened on failure); true on "1 ". */
bool toolsd_rpci(struct toolsd *t, const void *req, size_t len);
bool toolsd_rpcif(struct toolsd *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
double toolsd_now(void);

/* Time sync (tsync.c).  force: step whatever the size of the error. */
bool tsync_once(struct toolsd *t, bool allow_backward, bool force);
/* Called every loop iteration: periodic checks when synctime is on. */
void tsync_tick(struct toolsd *t);

/* Guest information (ginfo.c): send everything now. */
void ginfo_gather(struct toolsd *t);
/* The primary IPv4 address as text, or false when the guest has none. */
bool ginfo_primary_ip(char *buf, size_t len);

#endif
