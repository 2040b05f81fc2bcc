/*
 * test_vnc_input.c — input through the MKS into the real devices: keys reach
 * the i8042 as set-1 (translated) bytes, keyboard LED commands reach the
 * MKS's back ends, the relative pointer becomes PS/2 packets, and with the
 * vmmouse enabled an absolute pointer is queued on the vmmouse and nudges
 * the aux port (IRQ 12) as the Linux driver expects.
 */
#include <stdio.h>
#include <string.h>

#include "mks/mks_int.h"
#include "tests/devices/devtest.h"
#include "tests/unit/t.h"
#include "vmx/backdoor.h"
#include "vmx/dev/vmmouse.h"

static unsigned led_state, led_calls;

static void rec_leds(void *o, unsigned leds)
{
	led_state = leds;
	led_calls++;
}

static const struct mks_backend_ops rec_ops = { .name = "rec", .leds = rec_leds };

static void no_frame(void *o, const struct mks_frame *f)
{
}

static int read_byte(struct devtest *t)
{
	if (!(devtest_in(t, 0x64, 1) & 1))
		return -1;
	return (int)devtest_in(t, 0x60, 1);
}

static void drain(struct devtest *t)
{
	while (read_byte(t) >= 0)
		;
}

int main(void)
{
	char err[256];
	struct devtest *t = devtest_new("");

	T_ASSERT(t != NULL);
	if (!t)
		return T_DONE();
	T_EQ_I64(backdoor_init(t->vm, err, sizeof(err)), 0);
	T_EQ_I64(devtest_add(t, "mks"), 0);
	T_EQ_I64(devtest_add(t, "i8042"), 0);
	T_EQ_I64(devtest_add(t, "vmmouse"), 0);
	struct mks *m = devtest_priv(t, "mks");
	T_ASSERT(m == mks_of(t->vm));
	for (struct vdev *d = t->vm->devices; d; d = d->next)
		if (d->cls->start && strcmp(d->cls->name, "mks"))   /* no MKS thread: calls run here */
			T_EQ_I64(d->cls->start(d, err, sizeof(err)), 0);
	mks_backend_add(m, &rec_ops, NULL);

	/* Keys: 'a' down/up arrives translated to set 1; an extended key keeps E0. */
	drain(t);
	mks_input_key(m, 0x1E, true);
	T_EQ_I64(read_byte(t), 0x1E);
	mks_input_key(m, 0x1E, false);
	T_EQ_I64(read_byte(t), 0x9E);
	mks_input_key(m, 0xE048, true);   /* Up */
	T_EQ_I64(read_byte(t), 0xE0);
	T_EQ_I64(read_byte(t), 0x48);
	mks_input_key(m, 0xE048, false);
	T_EQ_I64(read_byte(t), 0xE0);
	T_EQ_I64(read_byte(t), 0xC8);
	mks_input_key(m, 0x41, true);     /* F7: set 2 has it at 0x83 */
	T_EQ_I64(read_byte(t), 0x41);
	mks_input_key(m, 0x12345, true);  /* nonsense: ignored */
	T_EQ_I64(read_byte(t), -1);

	/* LEDs: ED 04 (caps) from the guest reaches the back end. */
	devtest_out(t, 0x60, 1, 0xED);
	T_EQ_I64(read_byte(t), 0xFA);
	devtest_out(t, 0x60, 1, 0x04);
	T_EQ_I64(read_byte(t), 0xFA);
	mks_with_frame(m, no_frame, NULL);   /* lets the MKS deliver pending notices */
	T_EQ_U64(led_state, 4);
	T_ASSERT(led_calls >= 1);

	/* The guest turns the aux port on: interrupts, mouse enable. */
	devtest_out(t, 0x64, 1, 0x60);
	devtest_out(t, 0x60, 1, 0x47);
	devtest_out(t, 0x64, 1, 0xA8);
	devtest_out(t, 0x64, 1, 0xD4);
	devtest_out(t, 0x60, 1, 0xF4);
	T_EQ_I64(read_byte(t), 0xFA);

	/* No vmmouse yet: relative packets (PS/2 y counts up). */
	mks_input_pointer(m, 100, 100, 0, 0);
	drain(t);
	mks_input_pointer(m, 110, 95, 1, 0);
	T_ASSERT(devtest_gsi_level(t, 12));
	T_EQ_I64(read_byte(t), 0x09);     /* bit 3, left button */
	T_EQ_I64(read_byte(t), 10);
	T_EQ_I64(read_byte(t), 5);

	/* The driver enables the vmmouse in absolute mode. */
	struct vmmouse_state *vs = vmmouse_state_for_tests(devtest_priv(t, "vmmouse"));
	struct backdoor_call c;
	memset(&c, 0, sizeof(c));
	c.ecx = VMMOUSE_CMD_COMMAND;
	c.ebx = VMMOUSE_SUB_ENABLE;
	vmmouse_proto_call(vs, &c);
	c.ecx = VMMOUSE_CMD_DATA;
	c.ebx = 1;
	vmmouse_proto_call(vs, &c);
	T_EQ_U64(c.eax, 0x3442554A);
	c.ecx = VMMOUSE_CMD_COMMAND;
	c.ebx = VMMOUSE_SUB_ABSOLUTE;
	vmmouse_proto_call(vs, &c);
	drain(t);
	mks_input_pointer(m, 320, 240, 4, 0);   /* 640x480 default screen, right button */
	/* A PS/2 packet arrives to wake the driver... */
	int b0 = read_byte(t);
	T_ASSERT(b0 >= 0 && (b0 & 0x08));
	read_byte(t);
	read_byte(t);
	/* ...and the event is on the vmmouse queue. */
	c.ecx = VMMOUSE_CMD_STATUS;
	vmmouse_proto_call(vs, &c);
	T_EQ_U64(c.eax & 0xFFFF, 4);
	c.ecx = VMMOUSE_CMD_DATA;
	c.ebx = 4;
	vmmouse_proto_call(vs, &c);
	T_EQ_U64(c.eax, VMMOUSE_RIGHT);
	T_EQ_U64(c.ebx, (320u * 0xFFFF + 319) / 639);
	T_EQ_U64(c.ecx, (240u * 0xFFFF + 239) / 479);

	devtest_free(t);
	return T_DONE();
}
