/*
 * vmx_link_loop.c — the link on the VMX poll loop (vmx/loop.h).  Kept apart
 * from vmx_link.c so that only vireo-vmx, which has loop.c, pulls it in.
 */
#include <sys/epoll.h>

#include "../vmx/loop.h"
#include "vmx_link.h"

static void link_timer(void *opaque);

struct link_loop {
	struct vmx_link *lk;
	struct vmx_timer *t;
};

static void link_timer(void *opaque)
{
	struct link_loop *ll = opaque;
	vmx_link_tick(ll->lk);
	vmx_timer_arm_in(ll->t, 1000000000ull);
}

int vmx_link_attach(struct vmx_link *lk, struct vmx_loop *loop)
{
	static struct link_loop ll; /* one link per vmx process */
	if (!lk)
		return 0;
	int rc = vmx_loop_add_fd(loop, vmx_link_fd(lk), EPOLLIN, vmx_link_fd_cb, lk);
	if (rc)
		return rc;
	ll.lk = lk;
	ll.t = vmx_timer_new(loop, VMX_CLOCK_REAL, link_timer, &ll);
	if (ll.t)
		vmx_timer_arm_in(ll.t, 1000000000ull);
	return 0;
}
