/*
 * mem.h — guest-physical memory and the one accessor devices use.
 *
 * Guest RAM lives in a memfd, mapped 2 MiB-aligned with MADV_HUGEPAGE.
 * Below 4 GiB RAM stops at the PCI hole (VMX_PCI_HOLE_START); the rest is
 * mapped above 4 GiB.  Firmware ROMs are read-only regions near 4 GiB.
 *
 * Every device access to guest memory goes through gmem_ptr()/gmem_read()/
 * gmem_write(): they check the whole range [gpa, gpa+len), overflow-safe,
 * and never return a pointer that is valid only for the start of it.
 */
#ifndef VIREO_MEM_H
#define VIREO_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VMX_PCI_HOLE_START 0xC0000000ull
#define VMX_4G             0x100000000ull
#define GMEM_MAX_REGIONS   32   /* firmware boot: 13 PAM slots below 1 MiB; RAM BARs */
#define GMEM_LEGACY_START  0xA0000ull
#define GMEM_LEGACY_END    0x100000ull

#define GMEM_RAM 0x0u
#define GMEM_ROM 0x1u   /* read-only to the guest (same bit as VMM_MEM_READONLY) */
#define GMEM_ALIAS 0x2u /* hva belongs to RAM or to another region: never unmapped */
#define GMEM_LOG_DIRTY 0x4u /* slots: the engine logs guest writes (vmx_vm_mem_dirty) */

struct gmem_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *hva;
	uint32_t flags;
	const char *name;
};

struct gmem {
	int fd;                  /* memfd backing RAM */
	uint8_t *ram;            /* mapping of the whole memfd */
	uint64_t ram_size;       /* bytes of guest RAM */
	uint64_t low_size;       /* RAM below the PCI hole */
	struct gmem_region regions[GMEM_MAX_REGIONS];
	unsigned nregions;
};

/* Create guest RAM of ram_size bytes and map it around the PCI hole. */
int gmem_init(struct gmem *m, uint64_t ram_size, char *err, size_t errlen);
void gmem_destroy(struct gmem *m);
/*
 * The legacy window 0xA0000-0xFFFFF is not RAM after gmem_init (VGA and
 * ROM space).  A direct kernel boot, which has no firmware there, maps the
 * RAM behind 0xC0000-0xFFFFF back in with this (the memfd already backs it).
 */
int gmem_map_low_ram(struct gmem *m, uint64_t gpa, uint64_t size, const char *name);
/* Add a read-only ROM region (copied from data) at gpa. */
int gmem_add_rom(struct gmem *m, uint64_t gpa, const void *data, size_t len,
                 const char *name, char *err, size_t errlen);

/*
 * Slots whose mapping changes at run time (the PAM shadow windows below
 * 1 MiB).  gmem_reserve_slots() appends n empty (size 0) regions and returns
 * the index of the first, or -1.  gmem_set_slot() fills or empties one
 * (size 0): hva is an alias (RAM, or part of a ROM region), never owned;
 * -1 when the range overlaps another region.  The caller tells the engine.
 */
int gmem_reserve_slots(struct gmem *m, unsigned n);
int gmem_set_slot(struct gmem *m, unsigned idx, uint64_t gpa, uint64_t size, uint8_t *hva,
                  uint32_t flags, const char *name);

/* Host pointer for [gpa, gpa+len) when it lies entirely in one RAM region, else NULL. */
void *gmem_ptr(const struct gmem *m, uint64_t gpa, uint64_t len);
/* Same, but ROM regions count too (read-only use). */
const void *gmem_ptr_ro(const struct gmem *m, uint64_t gpa, uint64_t len);
/* Copy to/from guest memory; may span adjacent regions. -1 if any byte is not RAM. */
int gmem_read(const struct gmem *m, uint64_t gpa, void *buf, size_t len);
int gmem_write(const struct gmem *m, uint64_t gpa, const void *buf, size_t len);
/* Is every byte of [gpa, gpa+len) RAM? */
bool gmem_is_ram(const struct gmem *m, uint64_t gpa, uint64_t len);

#endif
