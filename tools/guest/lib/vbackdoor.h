/*
 * vbackdoor.h — the guest side of the VMware backdoor (ports 0x5658/0x5659).
 *
 * Facts: ../../../shared/spec/guest-interfaces.md sections 2 and 3.  No
 * GLib, no allocation: the tools are static programs in a busybox initramfs.
 */
#ifndef VIREO_VBACKDOOR_H
#define VIREO_VBACKDOOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VBD_MAGIC        0x564D5868u
#define VBD_PORT_LB      0x5658u
#define VBD_PORT_HB      0x5659u
#define VBD_CMD_GETMHZ   1
#define VBD_CMD_GETVERSION 10
#define VBD_CMD_GETTIME  23
#define VBD_CMD_STOPCATCHUP 24
#define VBD_CMD_MESSAGE  30
#define VBD_CMD_GETTIMEFULL 46
#define VBD_CMD_GETTIMEFULL_WITH_LAG 55

/* The registers of one backdoor call, in and out (low 32 bits meaningful). */
struct vbd_regs {
	uint32_t ax, bx, cx, dx, si, di, bp;
};

/* Low-bandwidth call: `in eax, dx` with dx = lo16(r->dx) (the caller sets the port). */
void vbd_lb(struct vbd_regs *r);
/* High-bandwidth `rep outsb` (guest -> host) of len bytes from buf. */
void vbd_hb_out(struct vbd_regs *r, const void *buf, size_t len);
/* High-bandwidth `rep insb` (host -> guest) of len bytes into buf. */
void vbd_hb_in(struct vbd_regs *r, void *buf, size_t len);

/*
 * Tests only: route the calls to a function instead of the I/O ports (a
 * host-side implementation linked into the same process).  NULL restores
 * the ports.
 */
struct vbd_transport {
	void (*lb)(void *opaque, struct vbd_regs *r);
	/* write: guest -> host; r->cx holds the byte count */
	void (*hb)(void *opaque, struct vbd_regs *r, bool write, uint8_t *buf, size_t len);
	void *opaque;
};
void vbd_set_transport(const struct vbd_transport *t);

/*
 * Whether the backdoor answers (GETVERSION gives magic and version 6).  A
 * #GP of the IN (no hypervisor, or ring-3 I/O not forwarded) is caught
 * and answers false; product gets the product type when non-NULL.
 */
bool vbd_probe(uint32_t *version, uint32_t *product);

/*
 * Ask the kernel for the backdoor ports (ioperm), for hosts where ring-3
 * backdoor I/O faults (KVM without enable_vmware_backdoor).  Needs root or
 * CAP_SYS_RAWIO; harmless where the ports are already open.  0 or -errno.
 */
int vbd_ioperm(void);

/* Host time from GETTIMEFULL_WITH_LAG, GETTIMEFULL or GETTIME, in µs since 1970. */
bool vbd_host_time_us(int64_t *us, uint32_t *maxlag_us);

#endif
