/*
 * linuxboot.h — direct Linux boot by the x86 boot protocol (bzImage, 64-bit entry).
 *
 * Keys (Vireo extensions to the .vmx):
 *   linux.kernel   path to a bzImage (protocol 2.12 or later, 64-bit capable)
 *   linux.initrd   optional initramfs
 *   linux.cmdline  kernel command line
 */
#ifndef VIREO_LINUXBOOT_H
#define VIREO_LINUXBOOT_H

#include <stddef.h>
#include <stdint.h>

struct vmx_vm;

/* Validate the files at power-on so bad input fails before anything runs. */
int linuxboot_check(struct vmx_vm *vm, char *err, size_t errlen);
/* Load kernel, initrd, boot_params, ACPI tables and page tables; set the BSP's registers. */
int linuxboot_load(struct vmx_vm *vm, char *err, size_t errlen);

/* Guest-physical layout of a direct boot. */
#define LB_GDT          0x500ull
#define LB_BOOT_PARAMS  0x7000ull
#define LB_PML4         0x9000ull
#define LB_PDPT         0xA000ull
#define LB_PD           0xB000ull     /* four pages: 4 GiB of 2 MiB pages */
#define LB_CMDLINE      0x20000ull
#define LB_CMDLINE_MAX  0x10000ull
#define LB_KERNEL       0x100000ull

/* E820 types */
#define E820_RAM       1
#define E820_RESERVED  2
#define E820_ACPI      3

struct e820_entry {
	uint64_t addr, size;
	uint32_t type;
} __attribute__((packed));

/* The platform's memory map (also what firmware will be told). Returns entries used. */
unsigned linuxboot_e820(const struct vmx_vm *vm, struct e820_entry *out, unsigned max);

#endif
