/*
 * i8042.c — the 8042 keyboard controller (0x60/0x64) with a PS/2 keyboard
 * (IRQ1) and a PS/2 mouse (IRQ12, IntelliMouse wheel).
 *
 * Bytes wait in three queues: the controller's own responses, the
 * keyboard's and the mouse's.  The single output buffer is refilled from
 * them in that order whenever the guest reads it; keyboard bytes pass the
 * set-2 -> set-1 translation there when the command byte asks for it, as in
 * the real part.  IRQ lines follow "output buffer full with data from that
 * port and its interrupt enabled", so each refill makes a fresh edge.
 */
#include "i8042.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mks/mks.h"
#include "vmx/device.h"
#include "vmx/iobus.h"
#include "vmx/irq.h"
#include "vmx/lock.h"
#include "vmx/log.h"
#include "vmx/platform.h"
#include "vmx/vm.h"

/* Status register */
#define ST_OBF     0x01
#define ST_SYS     0x04
#define ST_CMD     0x08
#define ST_UNLOCK  0x10
#define ST_AUXDATA 0x20
/* Command byte */
#define CTR_KBDINT 0x01
#define CTR_AUXINT 0x02
#define CTR_SYS    0x04
#define CTR_KBDDIS 0x10
#define CTR_AUXDIS 0x20
#define CTR_XLATE  0x40

/* Queue entries: data byte plus where it came from. */
#define Q_AUX 0x100u     /* mouse data (IRQ12, AUXDATA) */
#define Q_RAW 0x200u     /* never translated (controller responses) */

#define KQ_SIZE 16       /* a PS/2 keyboard buffers 16 bytes */
#define MQ_SIZE 96
#define CQ_SIZE 16
/* Key events waiting for room in the keyboard's own 16 bytes: a VNC client
 * types faster than a slow guest (bt) drains them, and a real keyboard's
 * typist is never that fast.  Whole events, in order. */
#define KBD_BACKLOG 1024
#define KBD_EV_MAX 8

struct ps2q {
	uint16_t data[MQ_SIZE];
	uint8_t head, count, cap;
};

struct i8042 {
	struct vmx_vm *vm;
	struct vmx_mutex lock;

	/* controller */
	uint8_t ctr, outport, status_cmd, pending;
	uint8_t obuf, obf, obuf_src_aux;
	uint8_t kbd_irq, aux_irq;
	uint8_t xlate_break;
	struct ps2q cq, kq, mq;

	/* keyboard */
	uint8_t kbd_arg_cmd, kbd_scan, kbd_set, kbd_leds, kbd_typematic;
	/* mouse */
	uint8_t mouse_arg_cmd, mouse_on, mouse_remote, mouse_wrap, mouse_scale21;
	uint8_t mouse_rate, mouse_res, mouse_id, mouse_buttons;
	uint8_t rate_hist[3];
	int32_t mouse_dx, mouse_dy, mouse_dz;

	/* Host side, not guest state: dropped on reset. */
	struct { uint8_t len, b[KBD_EV_MAX]; } backlog[KBD_BACKLOG];
	unsigned bl_head, bl_count;
};

static const struct vstate_field i8042_fields[] = {
	VSTATE_FIELD(struct i8042, ctr),
	VSTATE_FIELD(struct i8042, outport),
	VSTATE_FIELD(struct i8042, status_cmd),
	VSTATE_FIELD(struct i8042, pending),
	VSTATE_FIELD(struct i8042, obuf),
	VSTATE_FIELD(struct i8042, obf),
	VSTATE_FIELD(struct i8042, obuf_src_aux),
	VSTATE_FIELD(struct i8042, xlate_break),
	VSTATE_FIELD(struct i8042, cq),
	VSTATE_FIELD(struct i8042, kq),
	VSTATE_FIELD(struct i8042, mq),
	VSTATE_FIELD(struct i8042, kbd_arg_cmd),
	VSTATE_FIELD(struct i8042, kbd_scan),
	VSTATE_FIELD(struct i8042, kbd_set),
	VSTATE_FIELD(struct i8042, kbd_leds),
	VSTATE_FIELD(struct i8042, kbd_typematic),
	VSTATE_FIELD(struct i8042, mouse_arg_cmd),
	VSTATE_FIELD(struct i8042, mouse_on),
	VSTATE_FIELD(struct i8042, mouse_remote),
	VSTATE_FIELD(struct i8042, mouse_wrap),
	VSTATE_FIELD(struct i8042, mouse_scale21),
	VSTATE_FIELD(struct i8042, mouse_rate),
	VSTATE_FIELD(struct i8042, mouse_res),
	VSTATE_FIELD(struct i8042, mouse_id),
	VSTATE_FIELD(struct i8042, rate_hist),
	VSTATE_END
};

static const struct vstate_desc i8042_state = {
	.name = "i8042", .version = 1, .fields = i8042_fields,
};

/* The 8042's scan code translation, set 2 -> set 1 (bytes >= 0x80 pass, but F7 and SysRq). */
static const uint8_t xlate_table[128] = {
	0xff, 0x43, 0x41, 0x3f, 0x3d, 0x3b, 0x3c, 0x58, 0x64, 0x44, 0x42, 0x40, 0x3e, 0x0f, 0x29, 0x59,
	0x65, 0x38, 0x2a, 0x70, 0x1d, 0x10, 0x02, 0x5a, 0x66, 0x71, 0x2c, 0x1f, 0x1e, 0x11, 0x03, 0x5b,
	0x67, 0x2e, 0x2d, 0x20, 0x12, 0x05, 0x04, 0x5c, 0x68, 0x39, 0x2f, 0x21, 0x14, 0x13, 0x06, 0x5d,
	0x69, 0x31, 0x30, 0x23, 0x22, 0x15, 0x07, 0x5e, 0x6a, 0x72, 0x32, 0x24, 0x16, 0x08, 0x09, 0x5f,
	0x6b, 0x33, 0x25, 0x17, 0x18, 0x0b, 0x0a, 0x60, 0x6c, 0x34, 0x35, 0x26, 0x27, 0x19, 0x0c, 0x61,
	0x6d, 0x73, 0x28, 0x74, 0x1a, 0x0d, 0x62, 0x6e, 0x3a, 0x36, 0x1c, 0x1b, 0x75, 0x2b, 0x63, 0x76,
	0x55, 0x56, 0x77, 0x78, 0x79, 0x7a, 0x0e, 0x7b, 0x7c, 0x4f, 0x7d, 0x4b, 0x47, 0x7e, 0x7f, 0x6f,
	0x52, 0x53, 0x50, 0x4c, 0x4d, 0x48, 0x01, 0x45, 0x57, 0x4e, 0x51, 0x4a, 0x37, 0x49, 0x46, 0x54,
};

static uint8_t xlate(uint8_t b)
{
	if (b < 0x80)
		return xlate_table[b];
	if (b == 0x83)
		return 0x41;
	if (b == 0x84)
		return 0x54;
	return b;
}

/* ---- queues ---- */

static void q_init(struct ps2q *q, uint8_t cap)
{
	q->head = q->count = 0;
	q->cap = cap;
}

static unsigned q_room(const struct ps2q *q)
{
	unsigned cap = q->cap <= MQ_SIZE ? q->cap : MQ_SIZE;
	return q->count < cap ? cap - q->count : 0;
}

static bool q_push(struct ps2q *q, uint16_t v)
{
	if (!q_room(q))
		return false;
	q->data[(q->head + q->count) % MQ_SIZE] = v;
	q->count++;
	return true;
}

static bool q_pop(struct ps2q *q, uint16_t *v)
{
	if (!q->count || q->head >= MQ_SIZE)
		return false;
	*v = q->data[q->head];
	q->head = (uint8_t)((q->head + 1) % MQ_SIZE);
	q->count--;
	return true;
}

/* ---- output buffer and IRQs ---- */

static void kc_update_irq(struct i8042 *kc)
{
	bool k = kc->obf && !kc->obuf_src_aux && (kc->ctr & CTR_KBDINT);
	bool a = kc->obf && kc->obuf_src_aux && (kc->ctr & CTR_AUXINT);

	if (k != (bool)kc->kbd_irq) {
		kc->kbd_irq = k;
		vmx_irq_set(kc->vm, PLAT_IRQ_KBD, k);
	}
	if (a != (bool)kc->aux_irq) {
		kc->aux_irq = a;
		vmx_irq_set(kc->vm, PLAT_IRQ_MOUSE, a);
	}
}

static void kc_refill(struct i8042 *kc)
{
	uint16_t v;

	while (!kc->obf) {
		if (q_pop(&kc->cq, &v)) {
			/* Controller responses and D2/D3 data. */
		} else if (!(kc->ctr & CTR_KBDDIS) && q_pop(&kc->kq, &v)) {
			if ((kc->ctr & CTR_XLATE) && !(v & Q_RAW)) {
				uint8_t b = (uint8_t)v;
				if (b == 0xF0) {
					kc->xlate_break = 1;
					continue;
				}
				b = xlate(b);
				if (kc->xlate_break && b != 0xE0 && b != 0xE1)
					b |= 0x80;
				if (b != 0xE0 && b != 0xE1)
					kc->xlate_break = 0;
				v = b;
			}
		} else if (!(kc->ctr & CTR_AUXDIS) && q_pop(&kc->mq, &v)) {
			v |= Q_AUX;
		} else {
			break;
		}
		kc->obuf = (uint8_t)v;
		kc->obuf_src_aux = (v & Q_AUX) ? 1 : 0;
		kc->obf = 1;
	}
	kc_update_irq(kc);
}

static void kc_respond(struct i8042 *kc, uint8_t b)
{
	q_push(&kc->cq, (uint16_t)(b | Q_RAW));
}

static void kbd_respond(struct i8042 *kc, uint8_t b)
{
	q_push(&kc->kq, b);
}

static void mouse_respond(struct i8042 *kc, uint8_t b)
{
	q_push(&kc->mq, b);
}

/* ---- keyboard ---- */

static void kbd_backlog_drain(struct i8042 *kc);

static void kbd_reset_state(struct i8042 *kc)
{
	q_init(&kc->kq, KQ_SIZE);
	kc->bl_head = kc->bl_count = 0;
	kc->kbd_arg_cmd = 0;
	kc->kbd_scan = 1;
	kc->kbd_set = 2;
	kc->kbd_leds = 0;
	kc->kbd_typematic = 0x2B;
	kc->xlate_break = 0;
}

static void kbd_write(struct i8042 *kc, uint8_t v)
{
	if (kc->kbd_arg_cmd) {
		uint8_t cmd = kc->kbd_arg_cmd;
		kc->kbd_arg_cmd = 0;
		switch (cmd) {
		case 0xED:
			kc->kbd_leds = v & 7;
			/* Same bit order as mks_leds: scroll, num, caps. */
			mks_leds(mks_of(kc->vm), kc->kbd_leds);
			kbd_respond(kc, 0xFA);
			return;
		case 0xF3:
			kc->kbd_typematic = v & 0x7F;
			kbd_respond(kc, 0xFA);
			return;
		case 0xF0:
			if (v == 0) {
				kbd_respond(kc, 0xFA);
				kbd_respond(kc, kc->kbd_set);
			} else if (v <= 3) {
				kc->kbd_set = v;
				kbd_respond(kc, 0xFA);
			} else {
				kbd_respond(kc, 0xFE);
			}
			return;
		}
	}
	switch (v) {
	case 0xED: case 0xF0: case 0xF3:
		kc->kbd_arg_cmd = v;
		kbd_respond(kc, 0xFA);
		break;
	case 0xEE:
		kbd_respond(kc, 0xEE);
		break;
	case 0xF2:
		kbd_respond(kc, 0xFA);
		kbd_respond(kc, 0xAB);
		kbd_respond(kc, 0x83);
		break;
	case 0xF4:
		kc->kbd_scan = 1;
		kbd_respond(kc, 0xFA);
		break;
	case 0xF5:
		kc->kbd_scan = 0;
		kc->kbd_set = 2;
		kc->bl_head = kc->bl_count = 0;
		kbd_respond(kc, 0xFA);
		break;
	case 0xF6:
		kc->kbd_set = 2;
		kc->kbd_typematic = 0x2B;
		kbd_respond(kc, 0xFA);
		break;
	case 0xF7: case 0xF8: case 0xF9: case 0xFA: case 0xFB: case 0xFC: case 0xFD: case 0xFE:
		kbd_respond(kc, 0xFA);
		break;
	case 0xFF:
		kbd_reset_state(kc);
		kbd_respond(kc, 0xFA);
		kbd_respond(kc, 0xAA);
		break;
	default:
		kbd_respond(kc, 0xFE);
		break;
	}
}

/* ---- mouse ---- */

static void mouse_reset_state(struct i8042 *kc)
{
	q_init(&kc->mq, MQ_SIZE);
	kc->mouse_arg_cmd = 0;
	kc->mouse_on = 0;
	kc->mouse_remote = 0;
	kc->mouse_wrap = 0;
	kc->mouse_scale21 = 0;
	kc->mouse_rate = 100;
	kc->mouse_res = 2;
	kc->mouse_id = 0;
	kc->mouse_dx = kc->mouse_dy = kc->mouse_dz = 0;
	memset(kc->rate_hist, 0, sizeof(kc->rate_hist));
}

static int clampi(int v, int lo, int hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* One movement packet from the accumulated motion; false when there is no room. */
static bool mouse_send_packet(struct i8042 *kc)
{
	unsigned len = kc->mouse_id == 3 ? 4 : 3;
	int dx = clampi(kc->mouse_dx, -255, 255);
	int dy = clampi(kc->mouse_dy, -255, 255);
	int dz = clampi(kc->mouse_dz, -8, 7);
	uint8_t b0 = (uint8_t)(0x08 | (kc->mouse_buttons & 7));

	if (q_room(&kc->mq) < len)
		return false;
	/* PS/2 counts y upwards. */
	if (dx < 0)
		b0 |= 0x10;
	if (-dy < 0)
		b0 |= 0x20;
	mouse_respond(kc, b0);
	mouse_respond(kc, (uint8_t)dx);
	mouse_respond(kc, (uint8_t)-dy);
	if (len == 4)
		mouse_respond(kc, (uint8_t)dz);
	kc->mouse_dx -= dx;
	kc->mouse_dy -= dy;
	kc->mouse_dz = len == 4 ? kc->mouse_dz - dz : 0;
	return true;
}

static void mouse_write(struct i8042 *kc, uint8_t v)
{
	if (kc->mouse_wrap && v != 0xEC && v != 0xFF) {
		mouse_respond(kc, v);
		return;
	}
	if (kc->mouse_arg_cmd) {
		uint8_t cmd = kc->mouse_arg_cmd;
		kc->mouse_arg_cmd = 0;
		if (cmd == 0xF3) {
			kc->mouse_rate = v;
			/* The IntelliMouse knock: rates 200, 100, 80 switch on the wheel. */
			kc->rate_hist[0] = kc->rate_hist[1];
			kc->rate_hist[1] = kc->rate_hist[2];
			kc->rate_hist[2] = v;
			if (kc->rate_hist[0] == 200 && kc->rate_hist[1] == 100 && kc->rate_hist[2] == 80)
				kc->mouse_id = 3;
		} else {
			kc->mouse_res = v & 3;
		}
		mouse_respond(kc, 0xFA);
		return;
	}
	switch (v) {
	case 0xE6:
		kc->mouse_scale21 = 0;
		mouse_respond(kc, 0xFA);
		break;
	case 0xE7:
		kc->mouse_scale21 = 1;
		mouse_respond(kc, 0xFA);
		break;
	case 0xE8: case 0xF3:
		kc->mouse_arg_cmd = v;
		mouse_respond(kc, 0xFA);
		break;
	case 0xE9:
		mouse_respond(kc, 0xFA);
		mouse_respond(kc, (uint8_t)((kc->mouse_remote ? 0x40 : 0) | (kc->mouse_on ? 0x20 : 0) |
		                            (kc->mouse_scale21 ? 0x10 : 0) |
		                            ((kc->mouse_buttons & 1) ? 0x04 : 0) |
		                            ((kc->mouse_buttons & 4) ? 0x02 : 0) |
		                            ((kc->mouse_buttons & 2) ? 0x01 : 0)));
		mouse_respond(kc, kc->mouse_res);
		mouse_respond(kc, kc->mouse_rate);
		break;
	case 0xEA:
		kc->mouse_remote = 0;
		mouse_respond(kc, 0xFA);
		break;
	case 0xEB:
		mouse_respond(kc, 0xFA);
		mouse_send_packet(kc);
		break;
	case 0xEC:
		kc->mouse_wrap = 0;
		mouse_respond(kc, 0xFA);
		break;
	case 0xEE:
		kc->mouse_wrap = 1;
		mouse_respond(kc, 0xFA);
		break;
	case 0xF0:
		kc->mouse_remote = 1;
		mouse_respond(kc, 0xFA);
		break;
	case 0xF2:
		mouse_respond(kc, 0xFA);
		mouse_respond(kc, kc->mouse_id);
		break;
	case 0xF4:
		kc->mouse_on = 1;
		mouse_respond(kc, 0xFA);
		break;
	case 0xF5:
		kc->mouse_on = 0;
		mouse_respond(kc, 0xFA);
		break;
	case 0xF6:
		kc->mouse_rate = 100;
		kc->mouse_res = 2;
		kc->mouse_scale21 = 0;
		kc->mouse_on = 0;
		mouse_respond(kc, 0xFA);
		break;
	case 0xFF:
		mouse_reset_state(kc);
		mouse_respond(kc, 0xFA);
		mouse_respond(kc, 0xAA);
		mouse_respond(kc, 0x00);
		break;
	default:
		mouse_respond(kc, 0xFE);
		break;
	}
}

/* ---- the controller ---- */

/* Returns true when the guest asked for a CPU reset (done by the caller, unlocked). */
static bool kc_command(struct i8042 *kc, uint8_t cmd)
{
	switch (cmd) {
	case 0x20:
		kc_respond(kc, kc->ctr);
		break;
	case 0xA7:
		kc->ctr |= CTR_AUXDIS;
		break;
	case 0xA8:
		kc->ctr &= (uint8_t)~CTR_AUXDIS;
		break;
	case 0xA9: case 0xAB:
		kc_respond(kc, 0x00);   /* interface test passed */
		break;
	case 0xAA:
		kc->ctr |= CTR_SYS;
		kc_respond(kc, 0x55);
		break;
	case 0xAD:
		kc->ctr |= CTR_KBDDIS;
		break;
	case 0xAE:
		kc->ctr &= (uint8_t)~CTR_KBDDIS;
		break;
	case 0xC0:
		kc_respond(kc, 0x80);   /* input port: keyboard not inhibited */
		break;
	case 0xD0:
		kc_respond(kc, kc->outport);
		break;
	case 0x60: case 0xD1: case 0xD2: case 0xD3: case 0xD4:
		kc->pending = cmd;
		break;
	case 0xE0:
		kc_respond(kc, 0x00);
		break;
	default:
		if (cmd > 0x20 && cmd < 0x40) {
			kc_respond(kc, 0x00);   /* controller RAM other than the command byte */
		} else if (cmd > 0x60 && cmd < 0x80) {
			kc->pending = cmd;
		} else if (cmd >= 0xF0) {
			/* Pulse output port lines low; bit 0 is the CPU reset. */
			return !(cmd & 1);
		} else {
			vlog_guest("i8042: unknown controller command 0x%02x", cmd);
		}
		break;
	}
	return false;
}

static bool kc_data(struct i8042 *kc, uint8_t v)
{
	uint8_t cmd = kc->pending;

	kc->pending = 0;
	switch (cmd) {
	case 0:
		kbd_write(kc, v);
		break;
	case 0x60:
		kc->ctr = v;
		break;
	case 0xD1:
		kc->outport = v;
		if (!(v & 1))
			return true;
		break;
	case 0xD2:
		kc_respond(kc, v);
		break;
	case 0xD3:
		q_push(&kc->cq, (uint16_t)(v | Q_AUX | Q_RAW));
		break;
	case 0xD4:
		mouse_write(kc, v);
		break;
	default:
		break;   /* other controller RAM bytes: ignored */
	}
	return false;
}

static void kc_reset_request(struct i8042 *kc)
{
	vmx_vm_request_power(kc->vm, VMX_POWER_RESET, "i8042 reset pulse");
}

static uint64_t kc_data_read(void *opaque, uint64_t off, unsigned size)
{
	struct i8042 *kc = opaque;
	uint8_t v;

	vmx_mutex_lock(&kc->lock);
	v = kc->obuf;
	if (kc->obf) {
		kc->obf = 0;
		/* Drop the line before the next byte raises it: IRQ 1/12 are
		 * edge-triggered at the IO-APIC, and without a new edge Linux
		 * never sees the bytes queued behind an ACK (atkbd's GETID
		 * answer FA AB 83 stalled after FA and the keyboard was lost). */
		kc_update_irq(kc);
		kbd_backlog_drain(kc);
		kc_refill(kc);
	}
	vmx_mutex_unlock(&kc->lock);
	return v;
}

static void kc_data_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct i8042 *kc = opaque;
	bool reset;

	vmx_mutex_lock(&kc->lock);
	kc->status_cmd = 0;
	reset = kc_data(kc, (uint8_t)val);
	kc_refill(kc);
	vmx_mutex_unlock(&kc->lock);
	if (reset)
		kc_reset_request(kc);
}

static uint64_t kc_status_read(void *opaque, uint64_t off, unsigned size)
{
	struct i8042 *kc = opaque;
	uint8_t st;

	vmx_mutex_lock(&kc->lock);
	st = ST_UNLOCK;
	if (kc->obf)
		st |= ST_OBF | (kc->obuf_src_aux ? ST_AUXDATA : 0);
	if (kc->ctr & CTR_SYS)
		st |= ST_SYS;
	if (kc->status_cmd)
		st |= ST_CMD;
	vmx_mutex_unlock(&kc->lock);
	return st;
}

static void kc_cmd_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct i8042 *kc = opaque;
	bool reset;

	vmx_mutex_lock(&kc->lock);
	kc->status_cmd = 1;
	kc->pending = 0;
	reset = kc_command(kc, (uint8_t)val);
	kc_refill(kc);
	vmx_mutex_unlock(&kc->lock);
	if (reset)
		kc_reset_request(kc);
}

static const struct iobus_ops kc_data_ops = {
	.read = kc_data_read, .write = kc_data_write, .widths = IOBUS_W1,
};

static const struct iobus_ops kc_cmd_ops = {
	.read = kc_status_read, .write = kc_cmd_write, .widths = IOBUS_W1,
};

/* ---- input from the console ---- */

/* One whole event into the keyboard's buffer, in the set the guest asked for. */
static void kbd_push_event(struct i8042 *kc, const uint8_t *set2, size_t len)
{
	bool brk = false;

	for (size_t i = 0; i < len; i++) {
		uint8_t b = set2[i];
		if (kc->kbd_set == 1 && !(kc->ctr & CTR_XLATE)) {
			/* The keyboard itself speaks set 1. */
			if (b == 0xF0) {
				brk = true;
				continue;
			}
			b = xlate(b);
			if (brk && b != 0xE0 && b != 0xE1) {
				b |= 0x80;
				brk = false;
			}
		}
		q_push(&kc->kq, b);
	}
}

/* Move waiting events into the keyboard's buffer as far as it has room. */
static void kbd_backlog_drain(struct i8042 *kc)
{
	while (kc->bl_count && kc->kbd_scan) {
		unsigned i = kc->bl_head;
		if (q_room(&kc->kq) < kc->backlog[i].len)
			break;
		kbd_push_event(kc, kc->backlog[i].b, kc->backlog[i].len);
		kc->bl_head = (kc->bl_head + 1) % KBD_BACKLOG;
		kc->bl_count--;
	}
}

void i8042_key_event(struct i8042 *kc, const uint8_t *set2, size_t len)
{
	if (!kc || !len)
		return;
	if (len > KBD_EV_MAX) {
		vlog_error("i8042: key event of %zu bytes dropped", len);
		return;
	}
	vmx_mutex_lock(&kc->lock);
	/* A disabled keyboard scans nothing: the event is gone, as on hardware. */
	if (kc->kbd_scan) {
		/* A whole event or nothing: half a sequence would confuse the guest. */
		if (kc->bl_count < KBD_BACKLOG) {
			unsigned t = (kc->bl_head + kc->bl_count) % KBD_BACKLOG;
			kc->backlog[t].len = (uint8_t)len;
			memcpy(kc->backlog[t].b, set2, len);
			kc->bl_count++;
		} else {
			vlog_guest("i8042: the guest is not reading its keyboard; key event dropped");
		}
		kbd_backlog_drain(kc);
		kc_refill(kc);
	}
	vmx_mutex_unlock(&kc->lock);
}

void i8042_mouse_event(struct i8042 *kc, int dx, int dy, int dz, unsigned buttons)
{
	if (!kc)
		return;
	vmx_mutex_lock(&kc->lock);
	if (kc->mouse_on) {
		bool changed = (buttons & 7) != kc->mouse_buttons;
		kc->mouse_buttons = buttons & 7;
		kc->mouse_dx = clampi(kc->mouse_dx + clampi(dx, -4096, 4096), -4096, 4096);
		kc->mouse_dy = clampi(kc->mouse_dy + clampi(dy, -4096, 4096), -4096, 4096);
		kc->mouse_dz = clampi(kc->mouse_dz + clampi(dz, -64, 64), -64, 64);
		if (!kc->mouse_remote) {
			/* Send until the motion is used up, or the queue is full (motion kept). */
			while (changed || kc->mouse_dx || kc->mouse_dy ||
			       (kc->mouse_id == 3 && kc->mouse_dz)) {
				if (!mouse_send_packet(kc))
					break;
				changed = false;
			}
			kc_refill(kc);
		}
	}
	vmx_mutex_unlock(&kc->lock);
}

void i8042_mouse_wake(struct i8042 *kc)
{
	if (!kc)
		return;
	vmx_mutex_lock(&kc->lock);
	/* A packet without motion: the vmmouse driver reads its queue on each one. */
	if (kc->mouse_on && !kc->mouse_remote && mouse_send_packet(kc))
		kc_refill(kc);
	vmx_mutex_unlock(&kc->lock);
}

/* ---- the MKS's input sinks ---- */

static uint8_t set1_to_set2[128];

static void kc_build_set1_map(void)
{
	for (unsigned i = 0; i < 128; i++)
		if (xlate_table[i] < 0x80)
			set1_to_set2[xlate_table[i]] = (uint8_t)i;
	set1_to_set2[0x41] = 0x83;   /* F7: set 2 has it above 0x7F */
	set1_to_set2[0x54] = 0x84;   /* Alt+SysRq */
}

static void kc_sink_key(void *opaque, uint32_t scancode, bool down)
{
	struct i8042 *kc = opaque;
	uint8_t seq[4];
	size_t n = 0;
	uint8_t code = (uint8_t)(scancode & 0x7F);

	if ((scancode & ~0xE07Fu) || !code || !set1_to_set2[code])
		return;
	if ((scancode >> 8) == 0xE0)
		seq[n++] = 0xE0;
	if (!down)
		seq[n++] = 0xF0;
	seq[n++] = set1_to_set2[code];
	i8042_key_event(kc, seq, n);
}

static void kc_sink_rel(void *opaque, int dx, int dy, int dz, unsigned buttons)
{
	/* MKS order is left, middle, right; PS/2 is left, right, middle. */
	unsigned b = (buttons & 1) | ((buttons & 4) ? 2 : 0) | ((buttons & 2) ? 4 : 0);
	i8042_mouse_event(opaque, dx, dy, dz, b);
}

static const struct mks_input_ops kc_kbd_sink = { .key = kc_sink_key };
static const struct mks_input_ops kc_mouse_sink = { .rel = kc_sink_rel };

/* ---- the vdev ---- */

static void kc_reset_locked(struct i8042 *kc)
{
	q_init(&kc->cq, CQ_SIZE);
	kbd_reset_state(kc);
	mouse_reset_state(kc);
	kc->mouse_buttons = 0;
	/* What a BIOS leaves: translation on, keyboard interrupt on, POST passed. */
	kc->ctr = CTR_XLATE | CTR_SYS | CTR_KBDINT;
	kc->outport = 0x03;
	kc->pending = 0;
	kc->status_cmd = 0;
	kc->obf = 0;
	kc->obuf = 0;
	kc->obuf_src_aux = 0;
	kc_update_irq(kc);
}

static int kc_init(struct vdev *dev, char *err, size_t errlen)
{
	struct i8042 *kc = calloc(1, sizeof(*kc));

	if (!kc) {
		snprintf(err, errlen, "i8042: out of memory");
		return -1;
	}
	kc->vm = dev->vm;
	vmx_mutex_init(&kc->lock, VMX_RANK_DEVICE, "i8042");
	if (iobus_register(&dev->vm->pio, PLAT_PORT_I8042_DATA, 1, &kc_data_ops, kc, "i8042") != 0 ||
	    iobus_register(&dev->vm->pio, PLAT_PORT_I8042_CMD, 1, &kc_cmd_ops, kc, "i8042") != 0) {
		iobus_unregister(&dev->vm->pio, PLAT_PORT_I8042_DATA, kc);
		vmx_mutex_destroy(&kc->lock);
		free(kc);
		snprintf(err, errlen, "i8042: ports 0x60/0x64 are taken");
		return -1;
	}
	vmx_mutex_lock(&kc->lock);
	kc_reset_locked(kc);
	vmx_mutex_unlock(&kc->lock);
	dev->priv = kc;
	kc_build_set1_map();
	return 0;
}

static int kc_start(struct vdev *dev, char *err, size_t errlen)
{
	struct mks *m = mks_of(dev->vm);

	mks_input_set_keyboard(m, &kc_kbd_sink, dev->priv);
	mks_input_set_mouse(m, &kc_mouse_sink, dev->priv);
	return 0;
}

static void kc_reset(struct vdev *dev)
{
	struct i8042 *kc = dev->priv;

	vmx_mutex_lock(&kc->lock);
	kc_reset_locked(kc);
	vmx_mutex_unlock(&kc->lock);
}

static void kc_destroy(struct vdev *dev)
{
	struct i8042 *kc = dev->priv;

	if (!kc)
		return;
	mks_input_set_keyboard(mks_of(dev->vm), NULL, NULL);
	mks_input_set_mouse(mks_of(dev->vm), NULL, NULL);
	iobus_unregister(&dev->vm->pio, PLAT_PORT_I8042_DATA, kc);
	iobus_unregister(&dev->vm->pio, PLAT_PORT_I8042_CMD, kc);
	vmx_mutex_destroy(&kc->lock);
	free(kc);
	dev->priv = NULL;
}

static const struct vdev_class i8042_class = {
	.name = "i8042",
	.order = 40,
	.init = kc_init,
	.reset = kc_reset,
	.destroy = kc_destroy,
	.state = &i8042_state,
	.start = kc_start,
};

VDEV_REGISTER(i8042_class)
