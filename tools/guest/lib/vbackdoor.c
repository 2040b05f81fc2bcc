/*
 * vbackdoor.c — backdoor calls from user space (see vbackdoor.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "vbackdoor.h"

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <sys/io.h>

static const struct vbd_transport *transport;

void vbd_set_transport(const struct vbd_transport *t)
{
	transport = t;
}

void vbd_lb(struct vbd_regs *r)
{
	if (transport) {
		transport->lb(transport->opaque, r);
		return;
	}
	__asm__ __volatile__("inl %%dx, %%eax"
	                     : "+a"(r->ax), "+b"(r->bx), "+c"(r->cx), "+d"(r->dx), "+S"(r->si), "+D"(r->di)
	                     :
	                     : "memory");
}

/*
 * The HB calls pass a cookie in EBP, which the compiler may use as the
 * frame pointer: save it around the string instruction.  The 128 bytes
 * skip the red zone that a leaf caller may keep below RSP.
 */
void vbd_hb_out(struct vbd_regs *r, const void *buf, size_t len)
{
	if (transport) {
		r->cx = (uint32_t)len;
		transport->hb(transport->opaque, r, true, (uint8_t *)(uintptr_t)buf, len);
		return;
	}
	uint64_t bx = r->bx, cx = len, dx = r->dx, si = (uintptr_t)buf, di = r->di, bp = r->bp;
	__asm__ __volatile__("sub $128, %%rsp\n\t"
	                     "push %%rbp\n\t"
	                     "mov %[bp], %%rbp\n\t"
	                     "cld\n\t"
	                     "rep outsb\n\t"
	                     "mov %%rbp, %[bp]\n\t"
	                     "pop %%rbp\n\t"
	                     "add $128, %%rsp"
	                     : "+b"(bx), "+c"(cx), "+d"(dx), "+S"(si), "+D"(di), [bp] "+r"(bp)
	                     : "a"((uint64_t)r->ax)
	                     : "memory", "cc");
	r->bx = (uint32_t)bx;
	r->cx = (uint32_t)cx;
	r->dx = (uint32_t)dx;
	r->bp = (uint32_t)bp;
}

void vbd_hb_in(struct vbd_regs *r, void *buf, size_t len)
{
	if (transport) {
		r->cx = (uint32_t)len;
		transport->hb(transport->opaque, r, false, buf, len);
		return;
	}
	uint64_t bx = r->bx, cx = len, dx = r->dx, si = r->si, di = (uintptr_t)buf, bp = r->bp;
	__asm__ __volatile__("sub $128, %%rsp\n\t"
	                     "push %%rbp\n\t"
	                     "mov %[bp], %%rbp\n\t"
	                     "cld\n\t"
	                     "rep insb\n\t"
	                     "mov %%rbp, %[bp]\n\t"
	                     "pop %%rbp\n\t"
	                     "add $128, %%rsp"
	                     : "+b"(bx), "+c"(cx), "+d"(dx), "+S"(si), "+D"(di), [bp] "+r"(bp)
	                     : "a"((uint64_t)r->ax)
	                     : "memory", "cc");
	r->bx = (uint32_t)bx;
	r->cx = (uint32_t)cx;
	r->dx = (uint32_t)dx;
	r->bp = (uint32_t)bp;
}

static sigjmp_buf probe_jmp;

static void probe_fault(int sig)
{
	siglongjmp(probe_jmp, sig);
}

bool vbd_probe(uint32_t *version, uint32_t *product)
{
	struct sigaction sa, old_segv, old_ill;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = probe_fault;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &old_segv);
	sigaction(SIGILL, &sa, &old_ill);
	/* volatile: read after a siglongjmp */
	volatile bool ok = false;
	if (sigsetjmp(probe_jmp, 1) == 0) {
		struct vbd_regs r = { .ax = VBD_MAGIC, .bx = ~VBD_MAGIC, .cx = 0xFFFF0000u | VBD_CMD_GETVERSION,
		                      .dx = VBD_PORT_LB };
		vbd_lb(&r);
		if (r.bx == VBD_MAGIC && r.ax != 0xFFFFFFFFu) {
			ok = true;
			if (version)
				*version = r.ax;
			if (product)
				*product = r.cx;
		}
	}
	sigaction(SIGSEGV, &old_segv, NULL);
	sigaction(SIGILL, &old_ill, NULL);
	return ok;
}

int vbd_ioperm(void)
{
	if (ioperm(VBD_PORT_LB, 2, 1) != 0)
		return -errno;
	return 0;
}

bool vbd_host_time_us(int64_t *us, uint32_t *maxlag_us)
{
	static const uint16_t full[] = { VBD_CMD_GETTIMEFULL_WITH_LAG, VBD_CMD_GETTIMEFULL };
	for (size_t i = 0; i < sizeof(full) / sizeof(full[0]); i++) {
		struct vbd_regs r = { .ax = VBD_MAGIC, .bx = 0, .cx = full[i], .dx = VBD_PORT_LB };
		vbd_lb(&r);
		/* 46/55 leave EAX = magic on success (spec 5.1) */
		if (r.ax != VBD_MAGIC)
			continue;
		int64_t s = (int64_t)(((uint64_t)r.si << 32) | r.dx);
		if (s <= 0)
			continue;
		/* EDI = how far the guest's apparent time lags real time: aim for the apparent time */
		int64_t lag = full[i] == VBD_CMD_GETTIMEFULL_WITH_LAG ? (int64_t)(int32_t)r.di : 0;
		*us = s * 1000000 + r.bx - lag;
		if (maxlag_us)
			*maxlag_us = r.cx;
		return true;
	}
	struct vbd_regs r = { .ax = VBD_MAGIC, .bx = 0, .cx = VBD_CMD_GETTIME, .dx = VBD_PORT_LB };
	vbd_lb(&r);
	if (r.ax == 0xFFFFFFFFu || r.ax == 0 || r.ax == VBD_MAGIC)
		return false;
	*us = (int64_t)r.ax * 1000000 + r.bx;
	if (maxlag_us)
		*maxlag_us = r.cx;
	return true;
}
