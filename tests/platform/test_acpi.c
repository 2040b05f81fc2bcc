/*
 * test_acpi.c — the ACPI tables (structure, checksums, addresses, and
 * ACPICA's iasl disassembling each one and recompiling the DSDT) and the
 * PM device (SMI_CMD, power button SCI, PM timer rate, S5 power-off).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/devices/devtest.h"
#include "tests/unit/t.h"
#include "vmx/acpi.h"
#include "vmx/aml.h"
#include "vmx/platform.h"

static struct devtest *t;
static uint8_t buf[PLAT_ACPI_SIZE];

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* The table at gpa inside buf, checked for bounds, signature and checksum. */
static const uint8_t *table_at(uint64_t gpa, size_t used, const char *sig)
{
	const uint8_t *p;
	uint32_t len;

	if (gpa < PLAT_ACPI_BASE || gpa + 36 > PLAT_ACPI_BASE + used) {
		T_FAIL("%s at 0x%llx lies outside the tables", sig, (unsigned long long)gpa);
		return NULL;
	}
	p = buf + (gpa - PLAT_ACPI_BASE);
	len = get32(p + 4);
	if (memcmp(p, sig, 4) != 0 || gpa + len > PLAT_ACPI_BASE + used) {
		T_FAIL("bad %s at 0x%llx (sig %.4s len %u)", sig, (unsigned long long)gpa, p, len);
		return NULL;
	}
	if (strcmp(sig, "FACS") != 0)
		T_EQ_U64(acpi_checksum(p, len), 0);
	return p;
}

static bool have_iasl(void)
{
	return system("command -v iasl >/dev/null 2>&1") == 0;
}

/* Write a table to dir/name.dat and disassemble it; returns the .dsl text (static). */
static const char *iasl_disassemble(const char *dir, const char *name, const uint8_t *p, size_t len)
{
	static char text[262144];
	char path[512], cmd[1200];
	FILE *f;
	size_t n;
	int rc;

	snprintf(path, sizeof(path), "%s/%s.dat", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(p, 1, len, f) != len) {
		T_FAIL("cannot write %s", path);
		if (f)
			fclose(f);
		return "";
	}
	fclose(f);
	snprintf(cmd, sizeof(cmd), "cd %s && iasl -d %s.dat >%s.log 2>&1", dir, name, name);
	rc = system(cmd);
	if (rc != 0) {
		snprintf(cmd, sizeof(cmd), "cat %s/%s.log >&2", dir, name);
		if (system(cmd) != 0)
			T_FAIL("cannot show the log");
		T_FAIL("iasl -d %s failed (status %d)", name, rc);
		return "";
	}
	snprintf(path, sizeof(path), "%s/%s.dsl", dir, name);
	f = fopen(path, "r");
	if (!f) {
		T_FAIL("iasl -d %s wrote no .dsl", name);
		return "";
	}
	n = fread(text, 1, sizeof(text) - 1, f);
	text[n] = 0;
	fclose(f);
	/* The disassembler marks what it could not parse. */
	if (strstr(text, "**** ") || strstr(text, "Error"))
		T_FAIL("iasl -d %s reported problems:\n%s", name, text);
	return text;
}

static void f_contains(const char *path, const char *needle)
{
	static char text[65536];
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(text, 1, sizeof(text) - 1, f) : 0;

	if (f)
		fclose(f);
	text[n] = 0;
	T_CONTAINS(text, needle);
}

static void test_aml_encoding(void)
{
	struct aml a;
	size_t m;

	T_EQ_U64(aml_eisaid_value("PNP0A03"), 0x030AD041u);
	T_EQ_U64(aml_eisaid_value("PNP0501"), 0x0105D041u);
	/* PkgLength: one byte below 64, two bytes above (low nibble first). */
	aml_init(&a);
	m = aml_package_begin(&a, 1);
	aml_integer(&a, 0x1234);
	aml_end(&a, m);
	T_EQ_U64(a.len, 1 + 1 + 1 + 3);
	T_EQ_U64(a.buf[1], 5);
	aml_free(&a);
	aml_init(&a);
	m = aml_package_begin(&a, 30);
	for (int i = 0; i < 30; i++)
		aml_integer(&a, 0x100 + (unsigned)i);   /* 3 bytes each: body 91 */
	aml_end(&a, m);
	T_EQ_U64(a.len, 1 + 2 + 91);
	T_EQ_U64(a.buf[1], 0x40 | ((91 + 2) & 0xF));
	T_EQ_U64(a.buf[2], (91 + 2) >> 4);
	aml_free(&a);
	aml_init(&a);
	aml_namestring(&a, "\\_SB.PCI0.ISA");
	T_EQ_U64(a.len, 1 + 2 + 12);
	T_MEMEQ(a.buf, "\\\x2f\x03_SB_PCI0ISA_", 15);
	aml_free(&a);
}

static void test_tables(void)
{
	size_t used = 0;
	uint64_t rsdp_gpa = 0;
	char err[256] = "", dir[] = "/tmp/vireo-acpi-XXXXXX";
	const uint8_t *rsdp, *xsdt, *rsdt, *fadt = NULL, *madt = NULL, *dsdt, *facs;

	T_EQ_I64(acpi_build(t->vm, PLAT_ACPI_BASE, buf, sizeof(buf), &used, &rsdp_gpa, err,
	                    sizeof(err)), 0);
	T_STREQ(err, "");
	T_EQ_U64(rsdp_gpa, PLAT_ACPI_BASE);
	T_ASSERT(used > 0 && used <= sizeof(buf));
	/* Too small a buffer is an error, not an overflow. */
	{
		size_t u2;
		uint64_t r2;
		T_EQ_I64(acpi_build(t->vm, PLAT_ACPI_BASE, buf, 200, &u2, &r2, err, sizeof(err)), -1);
		T_CONTAINS(err, "not enough");
		T_EQ_I64(acpi_build(t->vm, PLAT_ACPI_BASE, buf, sizeof(buf), &used, &rsdp_gpa, err,
		                    sizeof(err)), 0);
	}

	rsdp = buf;
	T_MEMEQ(rsdp, "RSD PTR ", 8);
	T_EQ_U64(rsdp_gpa % 16, 0);
	T_EQ_U64(acpi_checksum(rsdp, 20), 0);
	T_EQ_U64(acpi_checksum(rsdp, 36), 0);
	T_EQ_U64(rsdp[15], 2);
	xsdt = table_at(get64(rsdp + 24), used, "XSDT");
	rsdt = table_at(get32(rsdp + 16), used, "RSDT");
	if (!xsdt || !rsdt)
		return;
	T_EQ_U64(get32(xsdt + 4), 36 + 16);
	for (unsigned i = 0; i < 2; i++) {
		uint64_t x = get64(xsdt + 36 + 8 * i);
		T_EQ_U64(get32(rsdt + 36 + 4 * i), x);
		if (i == 0)
			fadt = table_at(x, used, "FACP");
		else
			madt = table_at(x, used, "APIC");
	}
	if (!fadt || !madt)
		return;
	T_EQ_U64(get32(fadt + 4), 276);
	T_EQ_U64(fadt[8], 6);
	dsdt = table_at(get32(fadt + 40), used, "DSDT");
	T_EQ_U64(get64(fadt + 140), get32(fadt + 40));
	facs = table_at(get32(fadt + 36), used, "FACS");
	T_EQ_U64(get32(fadt + 36) % 64, 0);
	T_EQ_U64(fadt[46] | fadt[47] << 8, 9);                  /* SCI_INT */
	T_EQ_U64(get32(fadt + 48), PLAT_PORT_SMI_CMD);
	T_EQ_U64(get32(fadt + 56), PLAT_PORT_PM_BASE);
	T_EQ_U64(get32(fadt + 64), PLAT_PORT_PM_BASE + 4);
	T_EQ_U64(get32(fadt + 76), PLAT_PORT_PM_BASE + 8);
	T_EQ_U64(get32(fadt + 80), PLAT_PORT_GPE0);
	T_EQ_U64(get32(fadt + 112) & (1u << 10), 1u << 10);    /* RESET_REG_SUP */
	T_EQ_U64(get32(fadt + 112) & (1u << 4), 0);            /* fixed power button */
	T_EQ_U64(fadt[116], 1);                                 /* reset reg in I/O space */
	T_EQ_U64(get64(fadt + 120), PLAT_PORT_RESET);
	T_EQ_U64(fadt[128], 0x06);

	/* MADT: two CPUs, the IOAPIC, two overrides, the NMI. */
	{
		uint32_t len = get32(madt + 4);
		unsigned lapics = 0, ioapics = 0, isos = 0, nmis = 0;
		T_EQ_U64(get32(madt + 36), PLAT_LAPIC_BASE);
		T_EQ_U64(get32(madt + 40) & 1, 1);
		for (uint32_t p = 44; p + 2 <= len && madt[p + 1] >= 2; p += madt[p + 1]) {
			const uint8_t *e = madt + p;
			switch (e[0]) {
			case 0:
				T_EQ_U64(e[3], lapics);
				lapics++;
				break;
			case 1:
				T_EQ_U64(get32(e + 4), PLAT_IOAPIC_BASE);
				ioapics++;
				break;
			case 2:
				if (e[3] == 0)
					T_EQ_U64(get32(e + 4), 2);
				else
					T_EQ_U64((e[8] | e[9] << 8), 0x000D);
				isos++;
				break;
			case 4:
				T_EQ_U64(e[5], 1);
				nmis++;
				break;
			}
		}
		T_EQ_U64(lapics, 2);
		T_EQ_U64(ioapics, 1);
		T_EQ_U64(isos, 2);
		T_EQ_U64(nmis, 1);
	}

	if (!have_iasl()) {
		printf("SKIP iasl checks: iasl is not installed (installer/deps.sh installs acpica-tools)\n");
		return;
	}
	if (!mkdtemp(dir)) {
		T_FAIL("mkdtemp");
		return;
	}
	{
		const char *txt;
		char cmd[600];
		txt = iasl_disassemble(dir, "dsdt", dsdt, get32(dsdt + 4));
		T_CONTAINS(txt, "PNP0A03");
		T_CONTAINS(txt, "_PRT");
		T_CONTAINS(txt, "_S5_");
		T_CONTAINS(txt, "PNP0501");
		T_CONTAINS(txt, "PNP0303");
		T_CONTAINS(txt, "PNP0F13");
		T_CONTAINS(txt, "PNP0B00");
		T_CONTAINS(txt, "ACPI0007");
		T_CONTAINS(txt, "0xC0000000,         // Range Minimum");   /* the PCI hole */
		txt = iasl_disassemble(dir, "facp", fadt, get32(fadt + 4));
		T_CONTAINS(txt, "Address : 0000000000000CF9");
		T_CONTAINS(txt, "Reset Register Supported (V2) : 1");
		T_CONTAINS(txt, "Control Method Power Button (V1) : 0");
		txt = iasl_disassemble(dir, "apic", madt, get32(madt + 4));
		T_CONTAINS(txt, "Interrupt Source Override");
		iasl_disassemble(dir, "facs", facs, get32(facs + 4));
		iasl_disassemble(dir, "rsdt", rsdt, get32(rsdt + 4));
		iasl_disassemble(dir, "xsdt", xsdt, get32(xsdt + 4));
		/* (iasl -d takes no bare RSDP: its checksums are checked above.) */
		/* The disassembled DSDT compiles again without errors. */
		snprintf(cmd, sizeof(cmd), "cd %s && iasl -p dsdt2 dsdt.dsl >recompile.log 2>&1", dir);
		if (system(cmd) != 0) {
			snprintf(cmd, sizeof(cmd), "cat %s/recompile.log >&2", dir);
			if (system(cmd) != 0)
				T_FAIL("cannot show the log");
			T_FAIL("the disassembled DSDT does not compile");
		} else {
			char log[600];
			snprintf(log, sizeof(log), "%s/recompile.log", dir);
			f_contains(log, "0 Errors, 0 Warnings");
		}
		/* VIREO_KEEP_TMP=1 keeps the tables and iasl's output for a look. */
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (getenv("VIREO_KEEP_TMP"))
			printf("tables and iasl output kept in %s\n", dir);
		else if (system(cmd) != 0)
			T_FAIL("cannot remove %s", dir);
	}
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static void test_pm(void)
{
	uint32_t t0, t1;
	uint64_t v0, v1;

	T_EQ_I64(devtest_add(t, "acpi-pm"), 0);
	/* Legacy mode until the OS asks through SMI_CMD. */
	T_EQ_U64(devtest_in(t, PLAT_PORT_PM_BASE + 4, 2) & 1, 0);
	devtest_out(t, PLAT_PORT_SMI_CMD, 1, ACPI_SMI_ENABLE);
	T_EQ_U64(devtest_in(t, PLAT_PORT_PM_BASE + 4, 2) & 1, 1);

	/* Power button: status always, SCI only when enabled; write 1 to clear. */
	acpi_power_button(t->vm);
	T_EQ_U64(devtest_in(t, PLAT_PORT_PM_BASE, 2) & ACPI_PM1_PWRBTN, ACPI_PM1_PWRBTN);
	T_ASSERT(!devtest_gsi_level(t, PLAT_IRQ_SCI));
	devtest_out(t, PLAT_PORT_PM_BASE + 2, 2, ACPI_PM1_PWRBTN);
	T_ASSERT(devtest_gsi_level(t, PLAT_IRQ_SCI));
	T_EQ_U64(devtest_in(t, PLAT_PORT_PM_BASE + 2, 2), ACPI_PM1_PWRBTN);
	devtest_out(t, PLAT_PORT_PM_BASE, 2, ACPI_PM1_PWRBTN);
	T_EQ_U64(devtest_in(t, PLAT_PORT_PM_BASE, 2) & ACPI_PM1_PWRBTN, 0);
	T_ASSERT(!devtest_gsi_level(t, PLAT_IRQ_SCI));
	/* A 32-bit access covers status and enable together. */
	acpi_power_button(t->vm);
	T_EQ_U64(devtest_in(t, PLAT_PORT_PM_BASE, 4) & 0x01000100u, 0x01000100u);
	devtest_out(t, PLAT_PORT_PM_BASE, 4, 0x00000100u);    /* clear status, disable */
	T_ASSERT(!devtest_gsi_level(t, PLAT_IRQ_SCI));
	/* GPE0: status & enable raise the SCI as well. */
	devtest_out(t, PLAT_PORT_GPE0 + 2, 2, 0x0001);
	T_EQ_U64(devtest_in(t, PLAT_PORT_GPE0 + 2, 2), 1);

	/* PM timer: 3.579545 MHz, 24 bits, on guest time. */
	v0 = devtest_in(t, PLAT_PORT_PM_BASE + 8, 4);
	sleep_ms(50);
	v1 = devtest_in(t, PLAT_PORT_PM_BASE + 8, 4);
	t0 = (uint32_t)v0;
	t1 = (uint32_t)v1;
	T_EQ_U64(v0 >> 24, 0);
	{
		uint32_t d = (t1 - t0) & 0xFFFFFF;
		/* 50 ms is 178977 ticks; allow for a loaded machine. */
		if (d < 170000 || d > 900000)
			T_FAIL("PM timer advanced %u ticks in 50 ms", d);
		else
			T_ASSERT(true);
	}
	/* Read-only: writes do not move it backwards. */
	devtest_out(t, PLAT_PORT_PM_BASE + 8, 4, 0);
	T_ASSERT(((uint32_t)devtest_in(t, PLAT_PORT_PM_BASE + 8, 4) - t1) % 0x1000000 < 0x800000);

	/* Sleep types other than S5 are refused; S5 with SLP_EN powers off. */
	T_EQ_I64(devtest_take_power(t), VMX_POWER_NONE);
	devtest_out(t, PLAT_PORT_PM_BASE + 4, 2, (1u << 10) | ACPI_PM1_SLP_EN | 1);
	T_EQ_I64(devtest_take_power(t), VMX_POWER_NONE);
	devtest_out(t, PLAT_PORT_PM_BASE + 4, 2, (ACPI_S5_SLP_TYP << 10) | 1);   /* no SLP_EN */
	T_EQ_I64(devtest_take_power(t), VMX_POWER_NONE);
	T_EQ_U64(devtest_in(t, PLAT_PORT_PM_BASE + 4, 2) & ACPI_PM1_SLP_EN, 0);
	devtest_out(t, PLAT_PORT_PM_BASE + 4, 2, (ACPI_S5_SLP_TYP << 10) | ACPI_PM1_SLP_EN | 1);
	T_EQ_I64(devtest_take_power(t), VMX_POWER_OFF);
	/* Byte writes too: the high byte carries SLP_EN. */
	devtest_out(t, PLAT_PORT_PM_BASE + 5, 1, (ACPI_S5_SLP_TYP << 2) | 0x20);
	T_EQ_I64(devtest_take_power(t), VMX_POWER_OFF);
}

int main(void)
{
	t = devtest_new("numvcpus = \"2\"\nserial0.present = \"TRUE\"\n");
	if (!t)
		return 1;
	T_EQ_I64(devtest_add(t, "serial0"), 0);
	test_aml_encoding();
	test_tables();
	test_pm();
	devtest_free(t);
	return T_DONE();
}
