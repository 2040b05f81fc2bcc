/*
 * test_ioapic.c — the IOAPIC programmed through IOREGSEL/IOWIN; its
 * messages are observed at the engine's vm_msi().
 */
#include "devtest.h"
#include "tests/unit/t.h"
#include "vmx/platform.h"

#define SEL (PLAT_IOAPIC_BASE + 0x00)
#define WIN (PLAT_IOAPIC_BASE + 0x10)
#define EOI (PLAT_IOAPIC_BASE + 0x40)

static uint32_t reg_read(struct devtest *t, uint32_t idx)
{
	devtest_mmio_write(t, SEL, 4, idx);
	return (uint32_t)devtest_mmio_read(t, WIN, 4);
}

static void reg_write(struct devtest *t, uint32_t idx, uint32_t v)
{
	devtest_mmio_write(t, SEL, 4, idx);
	devtest_mmio_write(t, WIN, 4, v);
}

static void rte_write(struct devtest *t, unsigned pin, uint64_t e)
{
	reg_write(t, 0x10 + 2 * pin + 1, (uint32_t)(e >> 32));
	reg_write(t, 0x10 + 2 * pin, (uint32_t)e);
}

static uint64_t rte_read(struct devtest *t, unsigned pin)
{
	return reg_read(t, 0x10 + 2 * pin) | (uint64_t)reg_read(t, 0x10 + 2 * pin + 1) << 32;
}

static void lapic_eoi(struct devtest *t, uint8_t vector)
{
	t->vm->ioapic_eoi(t->vm->ioapic, vector);
}

int main(void)
{
	struct devtest *t = devtest_new("");
	struct devtest_msi m;

	if (!t || devtest_add(t, "ioapic") != 0)
		return 1;
	T_ASSERT(t->vm->ioapic_ops != NULL && t->vm->ioapic_eoi != NULL);

	/* Version 0x20, 24 pins; every pin masked after reset; ID writable. */
	T_EQ_U64(reg_read(t, 0x01), 0x00170020);
	for (unsigned pin = 0; pin < 24; pin++)
		T_EQ_U64(rte_read(t, pin), 0x10000);
	reg_write(t, 0x00, 0x05000000);
	T_EQ_U64(reg_read(t, 0x00), 0x05000000);
	reg_write(t, 0x00, 0xffffffff);
	T_EQ_U64(reg_read(t, 0x00), 0x0f000000);
	reg_write(t, 0x00, 0);
	reg_write(t, 0x01, 0);
	T_EQ_U64(reg_read(t, 0x01), 0x00170020);
	T_EQ_U64(devtest_mmio_read(t, SEL, 4), 0x01);

	/* Edge pin 4 (COM1), physical destination 1. */
	rte_write(t, 4, 0x31 | (uint64_t)1 << 56);
	T_EQ_U64(rte_read(t, 4), 0x0100000000000031ull);
	vmx_irq_pulse(t->vm, 4);
	T_EQ_U64(devtest_msi_count(t), 1);
	m = devtest_msi_get(t, 0);
	T_EQ_U64(m.addr, 0xFEE01000ull);
	T_EQ_U64(m.data, 0x4031);
	/* A held-high edge line does not repeat. */
	vmx_irq_set(t->vm, 4, true);
	vmx_irq_set(t->vm, 4, true);
	vmx_irq_set(t->vm, 4, false);
	T_EQ_U64(devtest_msi_count(t), 2);
	devtest_msi_clear(t);

	/* Masked edge: remembered and delivered once on unmask. */
	rte_write(t, 4, 0x31 | 1ull << 16 | (uint64_t)1 << 56);
	vmx_irq_pulse(t->vm, 4);
	vmx_irq_pulse(t->vm, 4);
	T_EQ_U64(devtest_msi_count(t), 0);
	rte_write(t, 4, 0x31 | (uint64_t)1 << 56);
	T_EQ_U64(devtest_msi_count(t), 1);
	devtest_msi_clear(t);

	/* ISA IRQ0 arrives on pin 2 (the MADT override); GSI 2 does not. */
	rte_write(t, 2, 0x30);
	vmx_irq_pulse(t->vm, 0);
	T_EQ_U64(devtest_msi_count(t), 1);
	T_EQ_U64(devtest_msi_get(t, 0).data & 0xff, 0x30);
	vmx_irq_pulse(t->vm, 2);
	T_EQ_U64(devtest_msi_count(t), 1);
	devtest_msi_clear(t);

	/* Fixed/lowest-priority/NMI delivery modes and logical mode in the message. */
	rte_write(t, 5, 0x45 | 1ull << 8 | 1ull << 11 | (uint64_t)0x0f << 56);
	vmx_irq_pulse(t->vm, 5);
	m = devtest_msi_get(t, 0);
	T_EQ_U64(m.addr, 0xFEE0F004ull);
	T_EQ_U64(m.data, 0x4145);
	rte_write(t, 5, 0x02 | 4ull << 8);
	vmx_irq_pulse(t->vm, 5);
	T_EQ_U64(devtest_msi_get(t, 1).data, 0x4402);
	devtest_msi_clear(t);

	/* Level pin 20: Remote IRR, no repeat while set, re-delivery on EOI. */
	rte_write(t, 20, 0x41 | 1ull << 15 | 1ull << 11 | (uint64_t)3 << 56);
	vmx_irq_set(t->vm, 20, true);
	T_EQ_U64(devtest_msi_count(t), 1);
	m = devtest_msi_get(t, 0);
	T_EQ_U64(m.addr, 0xFEE03004ull);
	T_EQ_U64(m.data, 0xC041);
	T_ASSERT(rte_read(t, 20) & (1ull << 14));
	vmx_irq_set(t->vm, 20, true);
	T_EQ_U64(devtest_msi_count(t), 1);
	/* The guest cannot clear Remote IRR by writing the entry. */
	reg_write(t, 0x10 + 40, 0x41 | 1u << 15 | 1u << 11);
	T_ASSERT(rte_read(t, 20) & (1ull << 14));
	lapic_eoi(t, 0x99);   /* another vector: nothing */
	T_EQ_U64(devtest_msi_count(t), 1);
	lapic_eoi(t, 0x41);   /* still asserted: delivered again */
	T_EQ_U64(devtest_msi_count(t), 2);
	T_ASSERT(rte_read(t, 20) & (1ull << 14));
	vmx_irq_set(t->vm, 20, false);
	lapic_eoi(t, 0x41);
	T_EQ_U64(devtest_msi_count(t), 2);
	T_ASSERT(!(rte_read(t, 20) & (1ull << 14)));
	/* The EOI register (version 0x20) does the same. */
	vmx_irq_set(t->vm, 20, true);
	T_EQ_U64(devtest_msi_count(t), 3);
	devtest_mmio_write(t, EOI, 4, 0x41);
	T_EQ_U64(devtest_msi_count(t), 4);
	vmx_irq_set(t->vm, 20, false);
	devtest_mmio_write(t, EOI, 4, 0x41);
	T_EQ_U64(devtest_msi_count(t), 4);
	devtest_msi_clear(t);

	/* Masked level pin remembers its level. */
	rte_write(t, 21, 0x42 | 1ull << 15 | 1ull << 16);
	vmx_irq_set(t->vm, 21, true);
	T_EQ_U64(devtest_msi_count(t), 0);
	rte_write(t, 21, 0x42 | 1ull << 15);
	T_EQ_U64(devtest_msi_count(t), 1);
	/* Switched to edge, Remote IRR goes away. */
	rte_write(t, 21, 0x42);
	T_ASSERT(!(rte_read(t, 21) & (1ull << 14)));
	vmx_irq_set(t->vm, 21, false);
	/* Masked, level low by then: nothing on unmask. */
	rte_write(t, 21, 0x42 | 1ull << 15 | 1ull << 16);
	rte_write(t, 21, 0x42 | 1ull << 15);
	T_EQ_U64(devtest_msi_count(t), 1);
	devtest_msi_clear(t);

	/* Byte access to IOREGSEL, 8-byte access split in two dwords. */
	devtest_mmio_write(t, SEL, 1, 0x01);
	T_EQ_U64(devtest_mmio_read(t, WIN, 4), 0x00170020);
	devtest_mmio_write(t, SEL, 1, 0x10 + 8);
	T_EQ_U64(devtest_mmio_read(t, WIN, 1), 0x31);
	T_EQ_U64(devtest_mmio_read(t, PLAT_IOAPIC_BASE, 8), 0x18);   /* SEL, then 0 */

	/* Hostile: unknown indexes, offsets, widths. */
	T_EQ_U64(reg_read(t, 0x10 + 48), 0xffffffff);
	reg_write(t, 0x10 + 48, 0x1234);
	reg_write(t, 0xff, 0x1234);
	devtest_mmio_write(t, PLAT_IOAPIC_BASE + 0x800, 4, 1);
	(void)devtest_mmio_read(t, PLAT_IOAPIC_BASE + 0xffc, 4);
	devtest_mmio_write(t, WIN, 8, ~0ull);
	devtest_mmio_write(t, SEL + 3, 1, 0xff);
	for (uint32_t idx = 0; idx < 0x100; idx++)
		reg_write(t, idx, 0xffffffff);
	for (unsigned g = 0; g < VMX_IOAPIC_PINS; g++)
		vmx_irq_pulse(t->vm, g);
	for (unsigned v = 0; v < 256; v++)
		lapic_eoi(t, (uint8_t)v);

	/* Reset masks every pin again. */
	for (struct vdev *d = t->vm->devices; d; d = d->next)
		d->cls->reset(d);
	for (unsigned pin = 0; pin < 24; pin++)
		T_EQ_U64(rte_read(t, pin), 0x10000);

	devtest_free(t);
	return T_DONE();
}
