/*
 * vmmouse.c — VMware's absolute pointer over the backdoor (commands 39 DATA,
 * 40 STATUS, 41 COMMAND, 86 RESTRICT), as Linux's psmouse "vmmouse"
 * protocol and xf86-input-vmmouse drive it (guest-interfaces.md section 7).
 *
 * Each pointer event from the MKS becomes 4 queued words (buttons, X, Y in
 * 0..0xFFFF, wheel) plus an ordinary PS/2 packet on the i8042 aux port: the
 * kernel only looks at the backdoor queue when such a packet arrives.  While
 * the guest has not enabled the device, or asked for relative mode, the MKS
 * falls back to the PS/2 mouse.
 *
 * `vmmouse.present` (default TRUE) turns it off.
 */
#include "vmmouse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "i8042.h"
#include "mks/mks.h"
#include "vmx/backdoor.h"
#include "vmx/device.h"
#include "vmx/lock.h"
#include "vmx/log.h"
#include "vmx/vm.h"

#define VMMOUSE_VERSION_WORD 0x3442554Au
#define VMMOUSE_STATUS_ERROR 0xFFFFu

/* ---- the protocol, without locks or host calls (fuzzed alone) ---- */

void vmmouse_proto_reset(struct vmmouse_state *s)
{
	s->head = s->count = 0;
	s->status = VMMOUSE_STATUS_ERROR;
	s->absolute = 0;
	s->restricted = 0;
}

static void q_push(struct vmmouse_state *s, uint32_t w)
{
	if (s->count >= VMMOUSE_QUEUE_WORDS || s->head >= VMMOUSE_QUEUE_WORDS)
		return;
	s->queue[(s->head + s->count) % VMMOUSE_QUEUE_WORDS] = w;
	s->count++;
}

static uint32_t q_pop(struct vmmouse_state *s)
{
	uint32_t w;

	if (!s->count || s->head >= VMMOUSE_QUEUE_WORDS)
		return 0;
	w = s->queue[s->head];
	s->head = (s->head + 1) % VMMOUSE_QUEUE_WORDS;
	s->count--;
	return w;
}

bool vmmouse_proto_call(struct vmmouse_state *s, struct backdoor_call *c)
{
	uint16_t cmd = (uint16_t)c->ecx;

	if (s->restricted && c->cpl != 0 && cmd != VMMOUSE_CMD_RESTRICT) {
		vlog_guest("vmmouse: command %u from CPL %u after RESTRICT", cmd, c->cpl);
		c->eax = 0xFFFFFFFFu;
		return false;
	}
	switch (cmd) {
	case VMMOUSE_CMD_COMMAND:
		switch (c->ebx) {
		case VMMOUSE_SUB_ENABLE:
			s->head = s->count = 0;
			s->status = 0;
			s->absolute = 0;
			q_push(s, VMMOUSE_VERSION_WORD);
			break;
		case VMMOUSE_SUB_DISABLE:
			s->head = s->count = 0;
			s->status = VMMOUSE_STATUS_ERROR;
			s->absolute = 0;
			break;
		case VMMOUSE_SUB_ABSOLUTE:
			s->absolute = 1;
			break;
		case VMMOUSE_SUB_RELATIVE:
			s->absolute = 0;
			break;
		default:
			vlog_guest("vmmouse: unknown command 0x%08x", c->ebx);
			break;
		}
		return false;
	case VMMOUSE_CMD_STATUS:
		c->eax = (uint32_t)s->status << 16 | (s->status == VMMOUSE_STATUS_ERROR ? 0 : s->count);
		return false;
	case VMMOUSE_CMD_DATA: {
		uint32_t n = c->ebx, w[4] = { 0, 0, 0, 0 };
		if (s->status == VMMOUSE_STATUS_ERROR || n == 0 || n > 4 || n > s->count) {
			/* Asking for more than is queued: the device reports an error. */
			vlog_guest("vmmouse: DATA(%u) with %u words queued", n, s->count);
			s->status = VMMOUSE_STATUS_ERROR;
			s->head = s->count = 0;
			c->eax = 0;
			return false;
		}
		for (uint32_t i = 0; i < n; i++)
			w[i] = q_pop(s);
		c->eax = w[0];
		c->ebx = w[1];
		c->ecx = w[2];
		c->edx = w[3];
		c->regs_changed = true;
		return false;
	}
	case VMMOUSE_CMD_RESTRICT:
		s->restricted = c->ebx == 1;
		return false;
	}
	return false;
}

bool vmmouse_proto_event(struct vmmouse_state *s, int32_t x, int32_t y, uint32_t width,
                         uint32_t height, unsigned buttons, int wheel)
{
	uint32_t flags = 0, ax, ay;

	if (s->status == VMMOUSE_STATUS_ERROR || !s->absolute)
		return false;
	if (VMMOUSE_QUEUE_WORDS - s->count < 4)
		return true;   /* guest not reading: drop the event, stay absolute */
	if (width < 2)
		width = 2;
	if (height < 2)
		height = 2;
	if (x < 0)
		x = 0;
	if (y < 0)
		y = 0;
	if ((uint32_t)x > width - 1)
		x = (int32_t)width - 1;
	if ((uint32_t)y > height - 1)
		y = (int32_t)height - 1;
	ax = (uint32_t)(((uint64_t)x * 0xFFFF + (width - 1) / 2) / (width - 1));
	ay = (uint32_t)(((uint64_t)y * 0xFFFF + (height - 1) / 2) / (height - 1));
	if (buttons & 1)
		flags |= VMMOUSE_LEFT;
	if (buttons & 2)
		flags |= VMMOUSE_MIDDLE;
	if (buttons & 4)
		flags |= VMMOUSE_RIGHT;
	q_push(s, flags);
	q_push(s, ax);
	q_push(s, ay);
	/* The guest reports -z as REL_WHEEL (positive: up). */
	q_push(s, (uint32_t)(uint8_t)(int8_t)(wheel > 0 ? -1 : wheel < 0 ? 1 : 0));
	return true;
}

/* ---- the device ---- */

struct vmmouse {
	struct vmx_vm *vm;
	struct vmx_mutex lock;
	struct vmmouse_state s;
};

static const struct vstate_field vmmouse_fields[] = {
	VSTATE_FIELD(struct vmmouse, s),
	VSTATE_END
};

static const struct vstate_desc vmmouse_vstate = {
	.name = "vmmouse", .version = 1, .fields = vmmouse_fields,
};

static void vmmouse_bd(void *opaque, struct vmx_vm *vm, struct backdoor_call *c)
{
	struct vmmouse *mo = opaque;

	vmx_mutex_lock(&mo->lock);
	vmmouse_proto_call(&mo->s, c);
	vmx_mutex_unlock(&mo->lock);
}

static bool vmmouse_abs(void *opaque, int32_t x, int32_t y, uint32_t width, uint32_t height,
                        unsigned buttons, int wheel)
{
	struct vmmouse *mo = opaque;
	bool taken;

	vmx_mutex_lock(&mo->lock);
	taken = vmmouse_proto_event(&mo->s, x, y, width, height, buttons, wheel);
	vmx_mutex_unlock(&mo->lock);
	if (taken)
		i8042_mouse_wake(vmx_vm_device(mo->vm, "i8042"));
	return taken;
}

static const struct mks_input_ops vmmouse_sink = { .abs = vmmouse_abs };

static bool vmmouse_present(struct vmx_vm *vm)
{
	bool on = true;
	char err[256];
	vmxcfg_get_bool(vm->cfg, "vmmouse.present", true, &on, err, sizeof(err));
	return on;
}

static int vmmouse_init(struct vdev *dev, char *err, size_t errlen)
{
	struct vmmouse *mo = calloc(1, sizeof(*mo));
	static const uint16_t cmds[] = {
		VMMOUSE_CMD_DATA, VMMOUSE_CMD_STATUS, VMMOUSE_CMD_COMMAND, VMMOUSE_CMD_RESTRICT,
	};

	if (!mo) {
		snprintf(err, errlen, "vmmouse: out of memory");
		return -1;
	}
	mo->vm = dev->vm;
	vmx_mutex_init(&mo->lock, VMX_RANK_DEVICE, "vmmouse");
	vmmouse_proto_reset(&mo->s);
	for (unsigned i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (backdoor_register(dev->vm, cmds[i], vmmouse_bd, mo) != 0) {
			snprintf(err, errlen, "vmmouse: cannot register backdoor command %u", cmds[i]);
			vmx_mutex_destroy(&mo->lock);
			free(mo);
			return -1;
		}
	}
	dev->priv = mo;
	return 0;
}

static int vmmouse_start(struct vdev *dev, char *err, size_t errlen)
{
	mks_input_set_absolute(mks_of(dev->vm), &vmmouse_sink, dev->priv);
	return 0;
}

static void vmmouse_reset(struct vdev *dev)
{
	struct vmmouse *mo = dev->priv;

	vmx_mutex_lock(&mo->lock);
	vmmouse_proto_reset(&mo->s);
	vmx_mutex_unlock(&mo->lock);
}

static void vmmouse_destroy(struct vdev *dev)
{
	struct vmmouse *mo = dev->priv;

	if (!mo)
		return;
	mks_input_set_absolute(mks_of(dev->vm), NULL, NULL);
	vmx_mutex_destroy(&mo->lock);
	free(mo);
	dev->priv = NULL;
}

static const struct vdev_class vmmouse_class = {
	.name = "vmmouse",
	.order = 45,   /* after the i8042, whose aux port it nudges */
	.present = vmmouse_present,
	.init = vmmouse_init,
	.reset = vmmouse_reset,
	.destroy = vmmouse_destroy,
	.state = &vmmouse_vstate,
	.start = vmmouse_start,
};

VDEV_REGISTER(vmmouse_class)

struct vmmouse_state *vmmouse_state_for_tests(void *priv)
{
	return priv ? &((struct vmmouse *)priv)->s : NULL;
}
