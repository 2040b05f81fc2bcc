/*
 * device.h — the device contract.
 *
 * Every virtual device is one .c file that defines a struct vdev_class and
 * registers it with VDEV_REGISTER().  At power-on the platform creates each
 * registered device whose class says it is present in this VM's config, in
 * ascending `order` (interrupt controllers before the devices that use them).
 *
 * Device code touches guest memory only through gmem_*() (mem.h) and raises
 * interrupts only through vmx_irq_*() (irq.h).  Everything the guest writes
 * is untrusted: check it, log it with vlog_guest(), never assert on it.
 */
#ifndef VIREO_DEVICE_H
#define VIREO_DEVICE_H

#include <stdbool.h>
#include <stddef.h>

#include "vstate.h"

struct vmx_vm;
struct vdev;

struct vdev_class {
	const char *name;
	int order;                 /* creation order, lower first */
	/* Is this device in this VM? NULL means always. */
	bool (*present)(struct vmx_vm *vm);
	/* Allocate state, read config, claim ranges. err names the config key on bad input. */
	int (*init)(struct vdev *dev, char *err, size_t errlen);
	void (*reset)(struct vdev *dev);
	void (*destroy)(struct vdev *dev);
	/* Saved state described as data; NULL when the device has none. */
	const struct vstate_desc *state;
	/* After a restore: re-arm timers and recompute derived state. */
	void (*post_load)(struct vdev *dev);
	/* On the loop thread just before the vCPUs start; vm->link (VMDB) is set by
	 * then (NULL without vireod).  Start host threads and VMDB watches here. */
	int (*start)(struct vdev *dev, char *err, size_t errlen);
};

struct vdev {
	const struct vdev_class *cls;
	struct vmx_vm *vm;
	void *priv;                /* the device's own state; vstate offsets apply to it */
	struct vdev *next;
};

#define VDEV_MAX_CLASSES 64

void vdev_register_class(const struct vdev_class *cls);
const struct vdev_class *const *vdev_classes(unsigned *count);

/* Registration at load time; the meson build links devices with link_whole. */
#define VDEV_REGISTER(cls_)                                                 \
	__attribute__((constructor)) static void vdev_register_##cls_(void) \
	{                                                                    \
		vdev_register_class(&(cls_));                                \
	}

#endif
