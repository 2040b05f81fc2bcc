/*
 * iobus.h — the port-I/O and MMIO buses.
 *
 * A device claims a range with the access widths it accepts (like QEMU's
 * MemoryRegionOps .valid sizes).  An access of an illegal width is split into
 * the largest legal smaller width when there is one, otherwise dropped
 * (reads return all ones) and logged, rate-limited.  Accesses to unclaimed
 * addresses read all ones and are ignored on write — as on real hardware —
 * and are counted, not logged, except the first per address in debug builds.
 * An access must lie entirely inside one range to reach it.
 */
#ifndef VIREO_IOBUS_H
#define VIREO_IOBUS_H

#include <stdbool.h>
#include <stdint.h>

#include "lock.h"

#define IOBUS_W1 0x1u
#define IOBUS_W2 0x2u
#define IOBUS_W4 0x4u
#define IOBUS_W8 0x8u

struct iobus_ops {
	/* off is relative to the range base; size is a legal width. */
	uint64_t (*read)(void *opaque, uint64_t off, unsigned size);
	void (*write)(void *opaque, uint64_t off, unsigned size, uint64_t val);
	uint8_t widths;          /* IOBUS_W* mask of legal sizes */
};

struct iobus_range {
	uint64_t base, len;
	const struct iobus_ops *ops;
	void *opaque;
	const char *name;
};

#define IOBUS_MAX_RANGES 128

struct iobus {
	const char *name;        /* "pio" or "mmio" */
	struct vmx_mutex lock;   /* protects the map, not the devices */
	struct iobus_range ranges[IOBUS_MAX_RANGES];   /* sorted by base */
	unsigned nranges;
	uint64_t unassigned;     /* count of accesses that hit nothing */
};

void iobus_init(struct iobus *bus, const char *name);
void iobus_destroy(struct iobus *bus);
/* Returns 0, or -1 when the range overlaps another or the table is full. */
int iobus_register(struct iobus *bus, uint64_t base, uint64_t len,
                   const struct iobus_ops *ops, void *opaque, const char *name);
/* Remove the range registered at base with this opaque (PCI BAR moves). */
int iobus_unregister(struct iobus *bus, uint64_t base, void *opaque);
/*
 * Perform one access of size 1, 2, 4 or 8.  *val is the value to write or
 * receives the value read.  Returns true when a device claimed the address.
 */
bool iobus_access(struct iobus *bus, uint64_t addr, unsigned size, bool write, uint64_t *val);

#endif
