/*
 * lock.h — mutexes with ranks.
 *
 * Locks are taken in ascending rank order.  Debug builds keep a per-thread
 * stack of held locks and abort with both lock names on an inversion: that
 * is a Vireo bug, never a guest-triggerable condition.
 */
#ifndef VIREO_LOCK_H
#define VIREO_LOCK_H

#include <pthread.h>

enum vmx_lock_rank {
	VMX_RANK_VM = 10,       /* power state, vCPU set */
	VMX_RANK_BUS = 15,      /* I/O and MMIO bus maps */
	VMX_RANK_DEVICE = 20,   /* one per device */
	VMX_RANK_IRQ = 30,      /* PIC, IOAPIC, routing */
	VMX_RANK_ENGINE = 35,   /* engine-internal (bt LAPIC, TLB shootdown) */
	VMX_RANK_LOOP = 40,     /* poll loop timers and call queue */
	VMX_RANK_LOG = 50,      /* the log itself: anything may log */
};

struct vmx_mutex {
	pthread_mutex_t m;
	int rank;
	const char *name;
};

void vmx_mutex_init(struct vmx_mutex *mx, int rank, const char *name);
void vmx_mutex_destroy(struct vmx_mutex *mx);
void vmx_mutex_lock(struct vmx_mutex *mx);
void vmx_mutex_unlock(struct vmx_mutex *mx);

#endif
