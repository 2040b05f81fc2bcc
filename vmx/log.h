/*
 * log.h — the per-VM vmware.log and the process's diagnostic output.
 *
 * vlog_open() rotates vmware.log -> vmware-0.log -> vmware-1.log ->
 * vmware-2.log (three old logs kept) and writes a first line naming the
 * version and build flavour.  Before vlog_open(), or when the log cannot be
 * opened, lines go to stderr only.
 */
#ifndef VIREO_LOG_H
#define VIREO_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

enum vlog_level { VLOG_DEBUG, VLOG_INFO, VLOG_WARN, VLOG_ERROR };

int vlog_open(const char *dir, const char *progname);
void vlog_close(void);
/* Also copy lines at or above this level to stderr (default: VLOG_WARN). */
void vlog_set_stderr_level(enum vlog_level lvl);
/* Name of the calling thread in log lines ("vmx", "vcpu-0", "mks" ...). */
void vlog_set_thread_name(const char *name);

#if defined(__GNUC__)
#define VLOG_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define VLOG_PRINTF(a, b)
#endif

void vlog(enum vlog_level lvl, const char *fmt, ...) VLOG_PRINTF(2, 3);
void vlogv(enum vlog_level lvl, const char *fmt, va_list ap) VLOG_PRINTF(2, 0);

#define vlog_info(...)  vlog(VLOG_INFO, __VA_ARGS__)
#define vlog_warn(...)  vlog(VLOG_WARN, __VA_ARGS__)
#define vlog_error(...) vlog(VLOG_ERROR, __VA_ARGS__)
#define vlog_debug(...) vlog(VLOG_DEBUG, __VA_ARGS__)

/*
 * Rate limiting for anything the guest can trigger: at most `burst` lines
 * per `interval_ns` per call site; the number suppressed is reported with
 * the next line that gets through.
 */
struct vlog_ratelimit {
	uint64_t window_start;
	unsigned printed;
	unsigned suppressed;
};

bool vlog_ratelimit_ok(struct vlog_ratelimit *rl, unsigned burst, uint64_t interval_ns,
                       unsigned *suppressed_out);

/* Guest-caused errors: rate-limited per call site, never fatal. */
#define vlog_guest(...)                                                          \
	do {                                                                     \
		static struct vlog_ratelimit vlog_rl_;                            \
		unsigned vlog_sup_;                                              \
		if (vlog_ratelimit_ok(&vlog_rl_, 10, 5000000000ull, &vlog_sup_)) { \
			if (vlog_sup_)                                           \
				vlog(VLOG_WARN, "guest: (%u similar messages suppressed)", vlog_sup_); \
			vlog(VLOG_WARN, "guest: " __VA_ARGS__);                  \
		}                                                                \
	} while (0)

/* Monotonic host time in nanoseconds. */
uint64_t vlog_now_ns(void);

#endif
