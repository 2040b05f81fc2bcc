/*
 * platform.h — the PC platform's fixed addresses, shared by devices, the
 * ACPI tables and the boot loaders.  Modelled on an i440FX/PIIX machine.
 */
#ifndef VIREO_PLATFORM_H
#define VIREO_PLATFORM_H

/* Memory map */
#define PLAT_EBDA_START      0x9FC00ull      /* below it: usable low RAM */
#define PLAT_ACPI_BASE       0xE0000ull      /* direct boot: ACPI tables, RSDP (in RAM) */
#define PLAT_ACPI_SIZE       0x10000ull
#define PLAT_BIOS_AREA       0xE0000ull      /* 0xE0000-0xFFFFF reserved in e820 */
#define PLAT_HIGH_RAM        0x100000ull
#define PLAT_IOAPIC_BASE     0xFEC00000ull
#define PLAT_TESTDEV_BASE    0xFEBF0000ull   /* vireo test device (tests only), 4 KiB */
#define PLAT_LAPIC_BASE      0xFEE00000ull
#define PLAT_PCI_MMIO_START  0xC0000000ull   /* PCI hole: BARs are placed from here */
#define PLAT_PCI_MMIO_END    0xFEB00000ull

/* Port I/O */
#define PLAT_PORT_PIC1       0x20
#define PLAT_PORT_PIT        0x40
#define PLAT_PORT_I8042_DATA 0x60
#define PLAT_PORT_SYSCTL_B   0x61            /* PIT gate 2, speaker */
#define PLAT_PORT_I8042_CMD  0x64
#define PLAT_PORT_RTC        0x70
#define PLAT_PORT_POST       0x80
#define PLAT_PORT_A20        0x92
#define PLAT_PORT_PIC2       0xA0
#define PLAT_PORT_ELCR       0x4D0
#define PLAT_PORT_PM_BASE    0x600           /* PM1a_EVT 0x600 (4), PM1a_CNT 0x604 (2), PM_TMR 0x608 (4) */
#define PLAT_PORT_GPE0       0x620           /* GPE0_STS 0x620 (2), GPE0_EN 0x622 (2) */
#define PLAT_PORT_SMI_CMD    0xB2
#define PLAT_PORT_RESET      0xCF9           /* reset control register; ACPI reset value 0x06 */
#define PLAT_PORT_PCI_ADDR   0xCF8
#define PLAT_PORT_PCI_DATA   0xCFC
#define PLAT_PORT_COM1       0x3F8
#define PLAT_PORT_COM2       0x2F8
#define PLAT_PORT_BACKDOOR   0x5658
#define PLAT_PORT_BACKDOOR_HB 0x5659

/* IRQs (ISA numbering; GSI = IRQ except IRQ0 -> GSI 2) */
#define PLAT_IRQ_PIT         0
#define PLAT_IRQ_KBD         1
#define PLAT_IRQ_COM2        3
#define PLAT_IRQ_COM1        4
#define PLAT_IRQ_RTC         8
#define PLAT_IRQ_SCI         9
#define PLAT_IRQ_MOUSE       12
#define PLAT_GSI_PIT         2

/* Frequencies */
#define PLAT_PIT_HZ          1193182ull
#define PLAT_PM_TIMER_HZ     3579545ull

#endif
