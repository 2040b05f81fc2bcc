/*
 * acpi.h — the ACPI tables Vireo presents, and the PM device behind them.
 *
 * acpi_build() writes RSDP (revision 2), XSDT, RSDT, FADT (revision 6),
 * FACS, MADT and DSDT into buf, with every address computed for a copy of
 * buf placed at guest-physical base_gpa (PLAT_ACPI_BASE for a direct kernel
 * boot: the kernel finds the RSDP by scanning 0xE0000-0xFFFFF).
 *
 * The PM device (vdev "acpi-pm", order 30): PM1a_EVT, PM1a_CNT, PM_TMR and
 * GPE0 at the ports in platform.h, SMI_CMD at 0xB2, SCI on IRQ 9.
 */
#ifndef VIREO_ACPI_H
#define VIREO_ACPI_H

#include <stddef.h>
#include <stdint.h>

struct vmx_vm;

/* Values the tables and the PM device agree on. */
#define ACPI_SMI_ENABLE   0xF1   /* SMI_CMD value: enter ACPI mode (SCI_EN) */
#define ACPI_SMI_DISABLE  0xF0
#define ACPI_S5_SLP_TYP   0      /* \_S5 package's SLP_TYPa */
#define ACPI_RESET_VALUE  0x06   /* FADT reset register: I/O 0xCF9 */

/* PM1 status / enable bits */
#define ACPI_PM1_TMR      0x0001
#define ACPI_PM1_GBL      0x0020
#define ACPI_PM1_PWRBTN   0x0100
#define ACPI_PM1_SLPBTN   0x0200
#define ACPI_PM1_RTC      0x0400
#define ACPI_PM1_WAK      0x8000
/* PM1 control bits */
#define ACPI_PM1_SCI_EN   0x0001
#define ACPI_PM1_SLP_TYP_SHIFT 10
#define ACPI_PM1_SLP_EN   0x2000

/*
 * Build the tables.  Returns 0 with *used = bytes of buf used and
 * *rsdp_gpa = where the RSDP lands, or -1 with err set (buffer too small).
 */
int acpi_build(struct vmx_vm *vm, uint64_t base_gpa, uint8_t *buf, size_t cap, size_t *used,
               uint64_t *rsdp_gpa, char *err, size_t errlen);

/* Byte sum of a table (0 for a valid one). */
uint8_t acpi_checksum(const uint8_t *p, size_t len);

/* Press the fixed-feature power button: PWRBTN_STS, SCI when enabled. */
void acpi_power_button(struct vmx_vm *vm);

#endif
