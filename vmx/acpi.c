/*
 * acpi.c — building the ACPI tables (ACPI 6.x layouts).
 *
 * Layout inside the buffer: RSDP at 0, FACS at the next 64-byte boundary
 * (its required alignment), then DSDT, FADT, MADT, RSDT and XSDT, each
 * 8-byte aligned.  The DSDT describes the PCI root bridge (resources and a
 * _PRT for APIC mode that matches pci.c's swizzle), the ISA devices Vireo
 * emulates, and one processor device per vCPU.
 */
#include "acpi.h"

#include <stdio.h>
#include <string.h>

#include "aml.h"
#include "mem.h"
#include "platform.h"
#include "vm.h"

#define ACPI_OEM_ID       "VIREO "
#define ACPI_OEM_TABLE_ID "VIREO   "
#define ACPI_CREATOR_ID   "VIRO"
#define ACPI_HDR_LEN      36

uint8_t acpi_checksum(const uint8_t *p, size_t len)
{
	uint8_t s = 0;

	for (size_t i = 0; i < len; i++)
		s = (uint8_t)(s + p[i]);
	return s;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static void acpi_header(uint8_t *t, const char *sig, uint32_t len, uint8_t rev)
{
	memcpy(t, sig, 4);
	put32(t + 4, len);
	t[8] = rev;
	t[9] = 0;
	memcpy(t + 10, ACPI_OEM_ID, 6);
	memcpy(t + 16, ACPI_OEM_TABLE_ID, 8);
	memcpy(t + 16, "VIREO", 5);
	memcpy(t + 21, sig, 3);   /* "VIREODSD"-style table ids, unique per table */
	put32(t + 24, 1);
	memcpy(t + 28, ACPI_CREATOR_ID, 4);
	put32(t + 32, 1);
}

static void acpi_finish(uint8_t *t, uint32_t len)
{
	t[9] = 0;
	t[9] = (uint8_t)(0x100 - acpi_checksum(t, len));
}

/* Generic Address Structure for a system I/O register block. */
static void acpi_gas_io(uint8_t *p, uint8_t bit_width, uint8_t access_size, uint64_t addr)
{
	p[0] = 1;              /* system I/O */
	p[1] = bit_width;
	p[2] = 0;
	p[3] = access_size;    /* 1 byte, 2 word, 3 dword */
	put64(p + 4, addr);
}

/* ---- DSDT ---- */

static void dsdt_isa_device(struct aml *a, const char *name, const char *hid, unsigned uid,
                            const struct aml *crs)
{
	size_t dev = aml_device_begin(a, name);

	aml_name(a, "_HID");
	aml_eisaid(a, hid);
	if (uid) {
		aml_name(a, "_UID");
		aml_integer(a, uid);
	}
	aml_name(a, "_CRS");
	aml_buffer(a, crs->buf, crs->len);
	aml_end(a, dev);
}

static void dsdt_serial(struct aml *a, const char *name, unsigned uid, uint16_t port, unsigned irq)
{
	struct aml r;

	aml_init(&r);
	rt_io(&r, port, port, 0x01, 0x08);
	rt_irq_noflags(&r, (uint16_t)(1u << irq));
	rt_end(&r);
	dsdt_isa_device(a, name, "PNP0501", uid, &r);
	a->oom |= r.oom;
	aml_free(&r);
}

static void dsdt_body(struct vmx_vm *vm, struct aml *a)
{
	struct aml r;
	size_t sb, pci, prt, isa;

	/* \_S5: soft-off, SLP_TYP as the PM device expects it. */
	aml_name(a, "\\_S5");
	{
		size_t pkg = aml_package_begin(a, 4);
		aml_integer(a, ACPI_S5_SLP_TYP);
		aml_integer(a, ACPI_S5_SLP_TYP);
		aml_integer(a, 0);
		aml_integer(a, 0);
		aml_end(a, pkg);
	}

	sb = aml_scope_begin(a, "\\_SB");

	for (unsigned i = 0; i < vm->ncpus && i < 256; i++) {
		char name[5];
		size_t cpu;
		snprintf(name, sizeof(name), "C%03X", i);
		cpu = aml_device_begin(a, name);
		aml_name(a, "_HID");
		aml_string(a, "ACPI0007");
		aml_name(a, "_UID");
		aml_integer(a, i);
		aml_end(a, cpu);
	}

	pci = aml_device_begin(a, "PCI0");
	aml_name(a, "_HID");
	aml_eisaid(a, "PNP0A03");
	aml_name(a, "_BBN");
	aml_integer(a, 0);
	aml_name(a, "_UID");
	aml_integer(a, 0);

	aml_init(&r);
	rt_word_bus(&r, 0x00, 0xFF);
	rt_io(&r, PLAT_PORT_PCI_ADDR, PLAT_PORT_PCI_ADDR, 0x01, 0x08);
	rt_word_io(&r, 0x0000, 0x0CF7);
	rt_word_io(&r, 0x0D00, 0xFFFF);
	rt_dword_mem(&r, 0x000A0000, 0x000BFFFF, true);
	if (!vm->bios_low) {
		rt_dword_mem(&r, (uint32_t)PLAT_PCI_MMIO_START, (uint32_t)(PLAT_PCI_MMIO_END - 1), false);
	} else {
		/* Firmware boot: SeaBIOS places BARs in its own window, 2 or 3 GiB up to the IOAPIC. */
		uint32_t start = vm->mem.low_size <= 0x80000000ull ? 0x80000000u : 0xC0000000u;
		rt_dword_mem(&r, start, (uint32_t)(PLAT_IOAPIC_BASE - 1), false);
	}
	rt_end(&r);
	aml_name(a, "_CRS");
	aml_buffer(a, r.buf, r.len);
	a->oom |= r.oom;
	aml_free(&r);

	/* APIC-mode routing: slot S pin P -> GSI 16 + ((S + P) & 3), as pci_intx_gsi(). */
	aml_name(a, "_PRT");
	prt = aml_package_begin(a, 32 * 4);
	for (unsigned slot = 0; slot < 32; slot++) {
		for (unsigned pin = 0; pin < 4; pin++) {
			size_t e = aml_package_begin(a, 4);
			aml_integer(a, (uint64_t)slot << 16 | 0xFFFF);
			aml_integer(a, pin);
			aml_integer(a, 0);
			aml_integer(a, 16 + ((slot + pin) & 3));
			aml_end(a, e);
		}
	}
	aml_end(a, prt);

	isa = aml_device_begin(a, "ISA");
	aml_name(a, "_ADR");
	aml_integer(a, 0x00010000);

	aml_init(&r);
	rt_io(&r, PLAT_PORT_RTC, PLAT_PORT_RTC, 0x01, 0x08);
	rt_irq_noflags(&r, 1u << PLAT_IRQ_RTC);
	rt_end(&r);
	dsdt_isa_device(a, "RTC", "PNP0B00", 0, &r);
	a->oom |= r.oom;
	aml_free(&r);

	aml_init(&r);
	rt_io(&r, PLAT_PORT_I8042_DATA, PLAT_PORT_I8042_DATA, 0x01, 0x01);
	rt_io(&r, PLAT_PORT_I8042_CMD, PLAT_PORT_I8042_CMD, 0x01, 0x01);
	rt_irq_noflags(&r, 1u << PLAT_IRQ_KBD);
	rt_end(&r);
	dsdt_isa_device(a, "KBD", "PNP0303", 0, &r);
	a->oom |= r.oom;
	aml_free(&r);

	aml_init(&r);
	rt_irq_noflags(&r, 1u << PLAT_IRQ_MOUSE);
	rt_end(&r);
	dsdt_isa_device(a, "MOU", "PNP0F13", 0, &r);
	a->oom |= r.oom;
	aml_free(&r);

	/* Only the ports this VM has: a _CRS for a missing UART would mislead the guest. */
	if (vmx_vm_device(vm, "serial0"))
		dsdt_serial(a, "COM1", 1, PLAT_PORT_COM1, PLAT_IRQ_COM1);
	if (vmx_vm_device(vm, "serial1"))
		dsdt_serial(a, "COM2", 2, PLAT_PORT_COM2, PLAT_IRQ_COM2);

	aml_end(a, isa);
	aml_end(a, pci);
	aml_end(a, sb);
}

/* ---- the tables ---- */

#define FADT_LEN 276
#define FACS_LEN 64

struct acpi_out {
	uint8_t *buf;
	size_t cap, pos;
	uint64_t base;
	bool full;
};

/* Reserve len bytes at the next `align` boundary of the guest address. */
static uint8_t *acpi_alloc(struct acpi_out *o, size_t len, size_t align, uint64_t *gpa)
{
	uint64_t at = (o->base + o->pos + align - 1) & ~(uint64_t)(align - 1);
	size_t off = (size_t)(at - o->base);

	if (off > o->cap || len > o->cap - off) {
		o->full = true;
		return NULL;
	}
	memset(o->buf + o->pos, 0, off - o->pos + len);
	o->pos = off + len;
	*gpa = at;
	return o->buf + off;
}

static void fadt_fill(uint8_t *t, uint64_t facs, uint64_t dsdt)
{
	acpi_header(t, "FACP", FADT_LEN, 6);
	put32(t + 36, (uint32_t)facs);
	put32(t + 40, (uint32_t)dsdt);
	t[45] = 0;                                  /* preferred PM profile: unspecified */
	put16(t + 46, PLAT_IRQ_SCI);
	put32(t + 48, PLAT_PORT_SMI_CMD);
	t[52] = ACPI_SMI_ENABLE;
	t[53] = ACPI_SMI_DISABLE;
	put32(t + 56, PLAT_PORT_PM_BASE);           /* PM1a_EVT_BLK */
	put32(t + 64, PLAT_PORT_PM_BASE + 4);       /* PM1a_CNT_BLK */
	put32(t + 76, PLAT_PORT_PM_BASE + 8);       /* PM_TMR_BLK */
	put32(t + 80, PLAT_PORT_GPE0);              /* GPE0_BLK */
	t[88] = 4;                                  /* PM1_EVT_LEN */
	t[89] = 2;                                  /* PM1_CNT_LEN */
	t[91] = 4;                                  /* PM_TMR_LEN */
	t[92] = 4;                                  /* GPE0_BLK_LEN */
	put16(t + 96, 0x65);                        /* C2 latency > 100: no C2 */
	put16(t + 98, 0x3E9);                       /* C3 latency > 1000: no C3 */
	t[108] = 0x32;                              /* RTC CMOS century index */
	put16(t + 109, 0x0003);                     /* IAPC_BOOT_ARCH: legacy devices, 8042 */
	/*
	 * WBINVD, PROC_C1, SLP_BUTTON (no sleep button), RESET_REG_SUP.  PWR_BUTTON
	 * clear: the power button is the fixed-feature one in PM1.
	 */
	put32(t + 112, (1u << 0) | (1u << 2) | (1u << 5) | (1u << 10));
	acpi_gas_io(t + 116, 8, 1, PLAT_PORT_RESET);
	t[128] = ACPI_RESET_VALUE;
	t[131] = 0;                                 /* FADT minor version: 6.0 */
	put64(t + 132, 0);                          /* X_FIRMWARE_CTRL: the 32-bit one is used */
	put64(t + 140, dsdt);
	acpi_gas_io(t + 148, 32, 0, PLAT_PORT_PM_BASE);
	acpi_gas_io(t + 172, 16, 0, PLAT_PORT_PM_BASE + 4);
	acpi_gas_io(t + 208, 32, 0, PLAT_PORT_PM_BASE + 8);
	acpi_gas_io(t + 220, 32, 0, PLAT_PORT_GPE0);
	memcpy(t + 268, "VIREO   ", 8);             /* hypervisor vendor identity */
	acpi_finish(t, FADT_LEN);
}

static size_t madt_len(unsigned ncpus)
{
	return 44 + 8 * (size_t)ncpus + 12 + 10 + 10 + 6;
}

static void madt_fill(uint8_t *t, unsigned ncpus)
{
	size_t len = madt_len(ncpus), p = 44;

	acpi_header(t, "APIC", (uint32_t)len, 3);
	put32(t + 36, (uint32_t)PLAT_LAPIC_BASE);
	put32(t + 40, 1);                           /* PCAT_COMPAT: 8259s present */
	for (unsigned i = 0; i < ncpus; i++) {
		t[p] = 0;                           /* processor local APIC */
		t[p + 1] = 8;
		t[p + 2] = (uint8_t)i;              /* processor UID = _UID of C%03X */
		t[p + 3] = (uint8_t)i;              /* APIC ID */
		put32(t + p + 4, 1);                /* enabled */
		p += 8;
	}
	t[p] = 1;                                   /* I/O APIC */
	t[p + 1] = 12;
	t[p + 2] = 0;                               /* IOAPIC ID */
	put32(t + p + 4, (uint32_t)PLAT_IOAPIC_BASE);
	put32(t + p + 8, 0);                        /* GSI base */
	p += 12;
	t[p] = 2;                                   /* override: IRQ0 -> GSI2, edge, high */
	t[p + 1] = 10;
	t[p + 2] = 0;
	t[p + 3] = PLAT_IRQ_PIT;
	put32(t + p + 4, PLAT_GSI_PIT);
	put16(t + p + 8, 0x0005);
	p += 10;
	t[p] = 2;                                   /* override: SCI, level, active high */
	t[p + 1] = 10;
	t[p + 2] = 0;
	t[p + 3] = PLAT_IRQ_SCI;
	put32(t + p + 4, PLAT_IRQ_SCI);
	put16(t + p + 8, 0x000D);
	p += 10;
	t[p] = 4;                                   /* local APIC NMI: all CPUs, LINT1 */
	t[p + 1] = 6;
	t[p + 2] = 0xFF;
	put16(t + p + 3, 0x0005);                   /* edge, active high */
	t[p + 5] = 1;
	acpi_finish(t, (uint32_t)len);
}

int acpi_build(struct vmx_vm *vm, uint64_t base_gpa, uint8_t *buf, size_t cap, size_t *used,
               uint64_t *rsdp_gpa, char *err, size_t errlen)
{
	struct acpi_out o = { .buf = buf, .cap = cap, .base = base_gpa };
	uint64_t rsdp_at, facs_at, dsdt_at, fadt_at, madt_at, rsdt_at, xsdt_at;
	uint8_t *rsdp, *facs, *dsdt, *fadt, *madt, *rsdt, *xsdt;
	unsigned ncpus = vm->ncpus ? vm->ncpus : 1;
	struct aml body;

	if ((base_gpa & 15) != 0) {
		snprintf(err, errlen, "ACPI tables: base 0x%llx is not 16-byte aligned",
		         (unsigned long long)base_gpa);
		return -1;
	}
	if (ncpus > 255) {
		snprintf(err, errlen, "ACPI tables: %u vCPUs do not fit xAPIC entries", ncpus);
		return -1;
	}
	aml_init(&body);
	dsdt_body(vm, &body);
	if (body.oom) {
		aml_free(&body);
		snprintf(err, errlen, "ACPI tables: out of memory");
		return -1;
	}

	rsdp = acpi_alloc(&o, 36, 16, &rsdp_at);
	facs = acpi_alloc(&o, FACS_LEN, 64, &facs_at);
	dsdt = acpi_alloc(&o, ACPI_HDR_LEN + body.len, 8, &dsdt_at);
	fadt = acpi_alloc(&o, FADT_LEN, 8, &fadt_at);
	madt = acpi_alloc(&o, madt_len(ncpus), 8, &madt_at);
	rsdt = acpi_alloc(&o, ACPI_HDR_LEN + 2 * 4, 8, &rsdt_at);
	xsdt = acpi_alloc(&o, ACPI_HDR_LEN + 2 * 8, 8, &xsdt_at);
	if (o.full) {
		aml_free(&body);
		snprintf(err, errlen, "ACPI tables: %zu bytes are not enough", cap);
		return -1;
	}
	if (xsdt_at + ACPI_HDR_LEN + 16 > VMX_4G) {
		aml_free(&body);
		snprintf(err, errlen, "ACPI tables: base 0x%llx is above 4 GiB",
		         (unsigned long long)base_gpa);
		return -1;
	}

	memcpy(facs, "FACS", 4);
	put32(facs + 4, FACS_LEN);
	facs[32] = 2;                               /* version */

	acpi_header(dsdt, "DSDT", (uint32_t)(ACPI_HDR_LEN + body.len), 2);
	memcpy(dsdt + ACPI_HDR_LEN, body.buf, body.len);
	acpi_finish(dsdt, (uint32_t)(ACPI_HDR_LEN + body.len));
	aml_free(&body);

	fadt_fill(fadt, facs_at, dsdt_at);
	madt_fill(madt, ncpus);

	acpi_header(rsdt, "RSDT", ACPI_HDR_LEN + 8, 1);
	put32(rsdt + 36, (uint32_t)fadt_at);
	put32(rsdt + 40, (uint32_t)madt_at);
	acpi_finish(rsdt, ACPI_HDR_LEN + 8);

	acpi_header(xsdt, "XSDT", ACPI_HDR_LEN + 16, 1);
	put64(xsdt + 36, fadt_at);
	put64(xsdt + 44, madt_at);
	acpi_finish(xsdt, ACPI_HDR_LEN + 16);

	memcpy(rsdp, "RSD PTR ", 8);
	memcpy(rsdp + 9, ACPI_OEM_ID, 6);
	rsdp[15] = 2;
	put32(rsdp + 16, (uint32_t)rsdt_at);
	put32(rsdp + 20, 36);
	put64(rsdp + 24, xsdt_at);
	rsdp[8] = (uint8_t)(0x100 - acpi_checksum(rsdp, 20));
	rsdp[32] = (uint8_t)(0x100 - acpi_checksum(rsdp, 36));

	*used = o.pos;
	*rsdp_gpa = rsdp_at;
	return 0;
}
