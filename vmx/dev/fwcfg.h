/*
 * fwcfg.h — QEMU's firmware configuration interface (fw_cfg), as unmodified
 * SeaBIOS expects it, and the tables Vireo hands the firmware through it.
 *
 * Ports (x86): 0x510 selector (16-bit write), 0x511 data (byte reads),
 * 0x514 DMA address high / 0x518 low (big-endian 32-bit writes; the low
 * write starts the transfer); reads of 0x514-0x51B return "QEMU CFG".
 * Port 0x402 is QEMU's debug console: SeaBIOS's debug output, which goes
 * to vmware.log line by line (rate-limited); reading it returns 0xE9.
 *
 * The vdev "fwcfg" (order 90) is present for a firmware boot (no
 * linux.kernel).  Its items are built in the `start` hook, when every
 * device exists: RAM size, CPU count, UUID, "etc/e820", "bootorder",
 * "etc/boot-fail-wait", "etc/sercon-port", the ACPI tables through the
 * table loader ("etc/table-loader", "etc/acpi/tables", "etc/acpi/rsdp"),
 * SMBIOS ("etc/smbios/smbios-anchor", "etc/smbios/smbios-tables") and the
 * SVGA's VGA BIOS as "pci15ad,0405.rom".
 *
 * Keys: firmware = "bios" (vm.c), bios.bootOrder = "cdrom,hdd,..." (VMware),
 * bios.bootRetry.enabled / bios.bootRetry.delay (seconds), bios.bootDelay
 * (ms; > 0 shows SeaBIOS's boot menu prompt), uuid.bios (VMware's
 * "56 4d ... -..." form; derived from the .vmx path when absent),
 * vireo.vgaBios (path; "" disables the VGA ROM).
 */
#ifndef VIREO_FWCFG_H
#define VIREO_FWCFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vmx_vm;

#define FWCFG_PORT_BASE      0x510
#define FWCFG_PORT_LEN       12
#define FWCFG_PORT_DEBUGCON  0x402

/* Well-known selectors */
#define FWCFG_SIGNATURE      0x00
#define FWCFG_ID             0x01
#define FWCFG_UUID           0x02
#define FWCFG_RAM_SIZE       0x03
#define FWCFG_NOGRAPHIC      0x04
#define FWCFG_NB_CPUS        0x05
#define FWCFG_BOOT_MENU      0x0e
#define FWCFG_MAX_CPUS       0x0f
#define FWCFG_FILE_DIR       0x19
#define FWCFG_FILE_FIRST     0x20
#define FWCFG_FILE_MAX       64
#define FWCFG_ARCH_LOCAL     0x8000
#define FWCFG_IRQ0_OVERRIDE  (FWCFG_ARCH_LOCAL + 2)
#define FWCFG_WRITE_CHANNEL  0x4000   /* legacy write flag in the selector: ignored */

#define FWCFG_ID_TRADITIONAL 0x1u
#define FWCFG_ID_DMA         0x2u

/* DMA control bits (big-endian in the guest's descriptor) */
#define FWCFG_DMA_ERROR      0x01u
#define FWCFG_DMA_READ       0x02u
#define FWCFG_DMA_SKIP       0x04u
#define FWCFG_DMA_SELECT     0x08u
#define FWCFG_DMA_WRITE      0x10u

#define FWCFG_NAME_MAX       56        /* file names, NUL included */

/* Guest memory as the DMA engine sees it (the vdev passes gmem + the engine). */
struct fwcfg_mem_ops {
	int (*read)(void *opaque, uint64_t gpa, void *buf, size_t len);
	int (*write)(void *opaque, uint64_t gpa, const void *buf, size_t len);
};

struct fwcfg;

/* The interface's state machine, independent of a VM (tests, fuzzing). */
struct fwcfg *fwcfg_new(const struct fwcfg_mem_ops *mem, void *opaque);
void fwcfg_free(struct fwcfg *f);
/* Set a numbered item (data copied). 0, or -1 when out of memory. */
int fwcfg_set_item(struct fwcfg *f, uint16_t key, const void *data, size_t len);
/* Add a named file (data copied; same name replaces). Its selector, or -1. */
int fwcfg_add_file(struct fwcfg *f, const char *name, const void *data, size_t len);
/* Contents of an item by selector or file name (tests); NULL when absent. */
const uint8_t *fwcfg_item(const struct fwcfg *f, uint16_t key, size_t *len);
const uint8_t *fwcfg_file(const struct fwcfg *f, const char *name, size_t *len);
/* Selector 0, offset 0, no pending DMA address (system reset). */
void fwcfg_reset(struct fwcfg *f);
/* Port access at off = port - FWCFG_PORT_BASE (0..11); size 1, 2 or 4. */
uint64_t fwcfg_io_read(struct fwcfg *f, unsigned off, unsigned size);
void fwcfg_io_write(struct fwcfg *f, unsigned off, unsigned size, uint64_t val);

/* ---- builders (fwcfg_data.c); each returns a malloc'd blob, or NULL ---- */

/* Table-loader entries are 128 bytes each. */
#define FWCFG_LOADER_ENTRY 128

/*
 * From acpi_build()'s output at base 0 (RSDP at offset 0): the blob for
 * "etc/acpi/tables" (the RSDP's bytes cleared), the one for "etc/acpi/rsdp",
 * and the loader script that allocates both and patches every pointer.
 */
int fwcfg_acpi_loader(const uint8_t *acpi, size_t acpi_len, uint8_t **tables, size_t *tables_len,
                      uint8_t **rsdp, size_t *rsdp_len, uint8_t **loader, size_t *loader_len,
                      char *err, size_t errlen);

struct fwcfg_smbios_info {
	const char *bios_vendor, *bios_version, *bios_date;
	const char *sys_vendor, *sys_product, *sys_version, *sys_serial;
	uint8_t uuid[16];          /* RFC 4122 byte order; SMBIOS stores the first three fields LE */
	unsigned ncpus;
	uint64_t ram_low, ram_high;   /* bytes below the PCI hole, above 4 GiB */
};
/* SMBIOS 2.8 structures (types 0 1 3 4 16 17 19 32 127) and a 2.1 entry point. */
int fwcfg_smbios(const struct fwcfg_smbios_info *in, uint8_t **anchor, size_t *anchor_len,
                 uint8_t **tables, size_t *tables_len);

/* Parse VMware's uuid.bios ("56 4d 12 ... 9a-bc ... "): 0, or -1 when malformed. */
int fwcfg_parse_uuid(const char *text, uint8_t uuid[16]);

/* One bootable device, for "bootorder". */
enum fwcfg_boot_kind { FWCFG_BOOT_HDD, FWCFG_BOOT_CDROM };
struct fwcfg_boot_dev {
	enum fwcfg_boot_kind kind;
	bool scsi;                 /* PVSCSI target; else an AHCI port */
	unsigned pci_slot, pci_func;
	unsigned unit;             /* AHCI port, or SCSI target */
	unsigned order;            /* position in the .vmx (controller, unit) */
};
/*
 * SeaBIOS device paths in the order bios.bootOrder asks ("cdrom,hdd", VMware
 * names; unknown words are ignored, devices not named follow in .vmx
 * order).  Returns a NUL-terminated, newline-separated string.
 */
char *fwcfg_bootorder(const struct fwcfg_boot_dev *devs, unsigned n, const char *boot_order);

#endif
