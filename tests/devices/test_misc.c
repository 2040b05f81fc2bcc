/*
 * test_misc.c — POST, port 0x92, 0xCF9 reset control, and the Vireo test
 * device (present only with vireo.testDevice = "TRUE").
 */
#include <time.h>

#include "devtest.h"
#include "tests/unit/t.h"
#include "vmx/platform.h"

#define TD PLAT_TESTDEV_BASE

static void test_misc_ports(void)
{
	struct devtest *t = devtest_new("");

	if (!t || devtest_add(t, "misc") != 0) {
		T_FAIL("cannot build the VM");
		return;
	}
	devtest_out(t, 0x80, 1, 0x55);
	T_EQ_U64(devtest_in(t, 0x80, 1), 0x55);
	T_EQ_U64(devtest_take_power(t), VMX_POWER_NONE);

	/* 0xCF9: SYS_RST alone selects, RST_CPU with it resets (FADT value 0x06). */
	devtest_out(t, 0xCF9, 1, 0x02);
	T_EQ_U64(devtest_take_power(t), VMX_POWER_NONE);
	T_EQ_U64(devtest_in(t, 0xCF9, 1), 0x02);
	devtest_out(t, 0xCF9, 1, 0x06);
	T_EQ_U64(devtest_take_power(t), VMX_POWER_RESET);
	devtest_out(t, 0xCF9, 1, 0x0E);
	T_EQ_U64(devtest_take_power(t), VMX_POWER_RESET);
	T_EQ_U64(devtest_in(t, 0xCF9, 1), 0x0A);   /* RST_CPU self-clears */
	devtest_out(t, 0xCF9, 1, 0x08);
	T_EQ_U64(devtest_take_power(t), VMX_POWER_NONE);

	/* 0x92: A20 bit is kept, bit 0 resets and reads back 0. */
	T_EQ_U64(devtest_in(t, 0x92, 1), 0x02);
	devtest_out(t, 0x92, 1, 0x00);
	T_EQ_U64(devtest_in(t, 0x92, 1), 0x00);
	T_EQ_U64(devtest_take_power(t), VMX_POWER_NONE);
	devtest_out(t, 0x92, 1, 0x03);
	T_EQ_U64(devtest_take_power(t), VMX_POWER_RESET);
	T_EQ_U64(devtest_in(t, 0x92, 1), 0x02);

	/* Wider accesses do not reach the one-byte ports' neighbours wrongly. */
	devtest_out(t, 0x80, 2, 0xffff);
	devtest_out(t, 0xCF8, 4, 0x80000000u);   /* CONFIG_ADDRESS: not a reset */
	T_EQ_U64(devtest_take_power(t), VMX_POWER_NONE);
	for (struct vdev *d = t->vm->devices; d; d = d->next)
		d->cls->reset(d);
	T_EQ_U64(devtest_in(t, 0xCF9, 1), 0x00);
	devtest_free(t);
}

static void test_testdev(void)
{
	struct devtest *t = devtest_new("");
	uint64_t a, b;

	/* Absent unless asked for. */
	if (!t) {
		T_FAIL("cannot build the VM");
		return;
	}
	T_EQ_I64(devtest_add(t, "testdev"), 1);
	T_EQ_U64(devtest_mmio_read(t, TD, 4), 0xffffffffu);
	devtest_free(t);

	t = devtest_new("vireo.testDevice = \"maybe\"\n");
	T_EQ_I64(t ? devtest_add(t, "testdev") : 0, -1);
	devtest_free(t);

	t = devtest_new("vireo.testDevice = \"TRUE\"\n");
	if (!t || devtest_add(t, "ioapic") || devtest_add(t, "testdev") != 0) {
		T_FAIL("cannot build the VM");
		return;
	}
	T_EQ_U64(devtest_mmio_read(t, TD + 0x00, 4), 0x54534556u);
	devtest_mmio_write(t, TD + 0x04, 4, 0xdeadbeef);
	T_EQ_U64(devtest_mmio_read(t, TD + 0x04, 4), 0xdeadbeef);
	a = devtest_mmio_read(t, TD + 0x0C, 4);
	b = devtest_mmio_read(t, TD + 0x0C, 4);
	T_EQ_U64(b, a + 1);
	devtest_mmio_write(t, TD + 0x18, 8, 0x0123456789abcdefull);
	T_EQ_U64(devtest_mmio_read(t, TD + 0x18, 8), 0x0123456789abcdefull);
	devtest_mmio_write(t, TD + 0x18, 4, 0);   /* 8-byte only: ignored */
	T_EQ_U64(devtest_mmio_read(t, TD + 0x18, 8), 0x0123456789abcdefull);
	T_EQ_U64(devtest_mmio_read(t, TD + 0x18, 4), 0xffffffffu);
	a = devtest_mmio_read(t, TD + 0x20, 8);
	{
		struct timespec ts = { 0, 2000000 };
		nanosleep(&ts, NULL);
	}
	b = devtest_mmio_read(t, TD + 0x20, 8);
	T_ASSERT(b > a + 1000000);
	T_ASSERT(b < a + 1000000000);
	/* The read-only registers ignore writes. */
	devtest_mmio_write(t, TD + 0x00, 4, 0);
	T_EQ_U64(devtest_mmio_read(t, TD + 0x00, 4), 0x54534556u);

	/* IRQ pulses the GSI: IOAPIC pin 9 programmed, one message. */
	devtest_mmio_write(t, PLAT_IOAPIC_BASE, 4, 0x10 + 2 * 9);
	devtest_mmio_write(t, PLAT_IOAPIC_BASE + 0x10, 4, 0x39);
	devtest_mmio_write(t, TD + 0x10, 4, 9);
	T_EQ_U64(devtest_msi_count(t), 1);
	T_EQ_U64(devtest_msi_get(t, 0).data & 0xff, 0x39);
	devtest_mmio_write(t, TD + 0x10, 4, 1000);   /* no such GSI: ignored */
	T_EQ_U64(devtest_msi_count(t), 1);

	/* EXIT: status value & 0xff; 0 is a clean power-off. */
	devtest_mmio_write(t, TD + 0x08, 4, 0x103);
	T_EQ_U64(devtest_take_power(t), VMX_POWER_FAIL);
	T_EQ_I64(t->vm->exit_status, 3);
	t->vm->exit_status = 0;
	devtest_mmio_write(t, TD + 0x08, 2, 0);   /* wrong width: ignored */
	T_EQ_U64(devtest_take_power(t), VMX_POWER_NONE);
	devtest_mmio_write(t, TD + 0x08, 4, 0x100);
	T_EQ_U64(devtest_take_power(t), VMX_POWER_OFF);
	T_EQ_I64(t->vm->exit_status, 0);

	/* Hostile: every offset and width. */
	for (uint64_t off = 0; off < 0x1000; off += 4) {
		for (unsigned sz = 1; sz <= 8; sz *= 2) {
			if (off == 0x08 || off == 0x10)
				continue;
			(void)devtest_mmio_read(t, TD + off, sz);
			devtest_mmio_write(t, TD + off, sz, ~0ull);
		}
	}
	T_EQ_U64(devtest_take_power(t), VMX_POWER_NONE);
	devtest_free(t);
}

int main(void)
{
	test_misc_ports();
	test_testdev();
	return T_DONE();
}
