/*
 * lock.c — ranked mutexes; debug builds check the order per thread.
 */
#include "lock.h"

#include <stdio.h>
#include <stdlib.h>

#ifdef VIREO_DEBUG
#define LOCK_MAX_HELD 16
static _Thread_local const struct vmx_mutex *lock_held[LOCK_MAX_HELD];
static _Thread_local int lock_nheld;
#endif

void vmx_mutex_init(struct vmx_mutex *mx, int rank, const char *name)
{
	pthread_mutexattr_t a;

	pthread_mutexattr_init(&a);
#ifdef VIREO_DEBUG
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
#endif
	pthread_mutex_init(&mx->m, &a);
	pthread_mutexattr_destroy(&a);
	mx->rank = rank;
	mx->name = name;
}

void vmx_mutex_destroy(struct vmx_mutex *mx)
{
	pthread_mutex_destroy(&mx->m);
}

void vmx_mutex_lock(struct vmx_mutex *mx)
{
#ifdef VIREO_DEBUG
	if (lock_nheld > 0) {
		const struct vmx_mutex *top = lock_held[lock_nheld - 1];
		if (top->rank >= mx->rank) {
			fprintf(stderr, "vireo: lock order violation: taking %s (rank %d) while holding %s (rank %d)\n",
			        mx->name, mx->rank, top->name, top->rank);
			abort();
		}
	}
	if (lock_nheld == LOCK_MAX_HELD) {
		fprintf(stderr, "vireo: too many locks held taking %s\n", mx->name);
		abort();
	}
#endif
	pthread_mutex_lock(&mx->m);
#ifdef VIREO_DEBUG
	lock_held[lock_nheld++] = mx;
#endif
}

void vmx_mutex_unlock(struct vmx_mutex *mx)
{
#ifdef VIREO_DEBUG
	/* Locks may be released out of order; remove this one wherever it is. */
	for (int i = lock_nheld - 1; i >= 0; i--) {
		if (lock_held[i] == mx) {
			for (int j = i; j < lock_nheld - 1; j++)
				lock_held[j] = lock_held[j + 1];
			lock_nheld--;
			break;
		}
	}
#endif
	pthread_mutex_unlock(&mx->m);
}
