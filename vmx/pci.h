/*
 * pci.h — PCI bus 0: configuration mechanism #1 (0xCF8/0xCFC), devices with
 * type-0 headers, BAR sizing and decode, capability lists and INTx routing.
 *
 * A device fills the identity and BAR fields of a struct pci_dev, then calls
 * pci_register() from its vdev init.  pci.c owns the config space from then
 * on: the guest's BAR and command writes map and unmap each BAR's iobus_ops
 * on vm->pio / vm->mmio.  Device-specific registers (0x40-0xFF, or anything
 * the standard header does not cover) are made guest-writable with
 * pci_set_wmask() and observed through the cfg_read/cfg_write hooks.
 *
 * INTx: pin INTA..INTD of slot S drives PIRQ[(S + pin - 1) & 3], which is
 * GSI 16 + that number on the IOAPIC (the DSDT's _PRT says the same).
 * Lines are wire-ORed across the devices that share them.
 *
 * Locking: config accesses run under the bus lock (rank PCI_RANK_CONFIG,
 * below VMX_RANK_BUS so BARs can be (un)mapped under it); the hooks are
 * called with it held and may take their device lock.  pci_set_irq() may be
 * called with a device lock held.
 */
#ifndef VIREO_PCI_H
#define VIREO_PCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iobus.h"

struct vmx_vm;
struct pci_bus;

#define PCI_RANK_CONFIG 12      /* between VMX_RANK_VM and VMX_RANK_BUS */
#define PCI_RANK_INTX   29      /* just below VMX_RANK_IRQ */

#define PCI_NUM_BARS    6
#define PCI_SLOTS       32
#define PCI_FUNCS       8

/* Standard header offsets. */
#define PCI_VENDOR_ID        0x00
#define PCI_DEVICE_ID        0x02
#define PCI_COMMAND          0x04
#define PCI_STATUS           0x06
#define PCI_REVISION_ID      0x08
#define PCI_CLASS_PROG       0x09
#define PCI_CACHE_LINE_SIZE  0x0C
#define PCI_LATENCY_TIMER    0x0D
#define PCI_HEADER_TYPE      0x0E
#define PCI_BASE_ADDRESS_0   0x10
#define PCI_SUBSYSTEM_VENDOR_ID 0x2C
#define PCI_SUBSYSTEM_ID     0x2E
#define PCI_ROM_ADDRESS      0x30
#define PCI_CAPABILITY_LIST  0x34
#define PCI_INTERRUPT_LINE   0x3C
#define PCI_INTERRUPT_PIN    0x3D

#define PCI_COMMAND_IO       0x0001
#define PCI_COMMAND_MEMORY   0x0002
#define PCI_COMMAND_MASTER   0x0004
#define PCI_COMMAND_INTX_DISABLE 0x0400
#define PCI_STATUS_INTERRUPT 0x0008
#define PCI_STATUS_CAP_LIST  0x0010

#define PCI_CAP_ID_MSI       0x05

/* pci_bar.flags */
#define PCI_BAR_IO           0x1u   /* port I/O (else 32-bit memory) */
#define PCI_BAR_MEM64        0x2u   /* 64-bit memory: uses this slot and the next */
#define PCI_BAR_PREFETCH     0x4u

struct pci_bar {
	uint64_t size;               /* power of two (I/O >= 4, memory >= 16); 0: unused */
	unsigned flags;
	const struct iobus_ops *ops; /* offsets passed to ops are relative to the BAR */
	void *opaque;
	/*
	 * A memory BAR that is plain memory (a frame buffer, a command FIFO):
	 * size bytes of host memory, page aligned, mapped into the guest as RAM
	 * so that accesses do not exit to the VMX.  ops stay registered behind
	 * it for callers that bypass the engine (device tests).
	 */
	uint8_t *ram;
	/* With ram: have the engine log the guest's writes (pci_bar_dirty). */
	bool log_dirty;
	/* Owned by pci.c. */
	uint64_t mapped_addr;
	bool mapped;
	int ram_slot;                /* gmem slot of ram, or -1 */
	bool ram_mapped;
};

struct pci_dev {
	/* Filled by the device before pci_register(). */
	const char *name;
	uint16_t vendor_id, device_id;
	uint16_t subsys_vendor_id, subsys_id;
	uint32_t class_code;         /* class << 16 | subclass << 8 | prog-if */
	uint8_t revision;
	uint8_t irq_pin;             /* 0 none, 1 INTA .. 4 INTD */
	struct pci_bar bars[PCI_NUM_BARS];
	/*
	 * Optional hooks for device-specific registers.  cfg_read gets the value
	 * pci.c would return and returns the one the guest sees; cfg_write is
	 * called after the write was applied to config[] (through the masks).
	 */
	uint32_t (*cfg_read)(struct pci_dev *d, unsigned off, unsigned size, uint32_t val);
	void (*cfg_write)(struct pci_dev *d, unsigned off, unsigned size, uint32_t val);
	void *opaque;

	/* Owned by pci.c. */
	struct vmx_vm *vm;
	struct pci_bus *bus;
	uint8_t devfn;               /* slot << 3 | function */
	uint8_t cap_next;            /* next free offset for pci_add_capability */
	uint8_t config[256];
	uint8_t wmask[256];          /* bits the guest may write */
	uint8_t w1cmask[256];        /* bits the guest clears by writing 1 */
	bool irq_level;              /* the device's INTx output before INTX_DISABLE */
	bool irq_asserted;           /* what it contributes to its PIRQ line now */
};

/* The bus of this VM (created by the "pci" vdev), or NULL. */
struct pci_bus *pci_bus_of(struct vmx_vm *vm);

/*
 * Put d on bus 0 at slot/func (slot < 0: the first free slot, function 0).
 * Builds config space from d's fields.  Returns 0, or -1 with err set.
 */
int pci_register(struct vmx_vm *vm, struct pci_dev *d, int slot, int func,
                 char *err, size_t errlen);
/* Unmap its BARs, drop its INTx and remove it from the bus. */
void pci_unregister(struct pci_dev *d);

/* INTx output of the device (level-triggered, shared). */
void pci_set_irq(struct pci_dev *d, bool level);

/*
 * Add a capability of `size` bytes (id and next pointer included) at `off`
 * (0: the next free offset from 0x40), linked at the end of the list.
 * Returns its offset, or 0 when it does not fit.
 */
unsigned pci_add_capability(struct pci_dev *d, uint8_t cap_id, unsigned off, unsigned size);

/* Make bits guest-writable (device-specific registers). */
void pci_set_wmask(struct pci_dev *d, unsigned off, unsigned len, uint8_t mask);

/* Little-endian config-space helpers (off + width must lie within 256). */
uint8_t pci_get8(const struct pci_dev *d, unsigned off);
uint16_t pci_get16(const struct pci_dev *d, unsigned off);
uint32_t pci_get32(const struct pci_dev *d, unsigned off);
void pci_set8(struct pci_dev *d, unsigned off, uint8_t v);
void pci_set16(struct pci_dev *d, unsigned off, uint16_t v);
void pci_set32(struct pci_dev *d, unsigned off, uint32_t v);

/* Address the guest programmed into BAR i (0 when unused or not mapped). */
uint64_t pci_bar_addr(const struct pci_dev *d, unsigned i);
/*
 * For a RAM BAR with log_dirty: the pages of [off, off+len) of the BAR the
 * guest wrote since the last call (vmx_vm_mem_dirty has the bitmap's
 * layout).  -1 while the BAR is not mapped or the engine cannot log: then
 * the caller must assume every page changed.  Any thread.
 */
int pci_bar_dirty(struct pci_dev *d, unsigned bar, uint64_t off, uint64_t len,
                  uint64_t *bitmap);

/* The GSI a device's INTx pin drives (16..19), or -1 without a pin. */
int pci_intx_gsi(const struct pci_dev *d);

/*
 * Host-side config access (tests, firmware helpers): same path as the guest's.
 * They take the bus lock, so never call them holding a device lock.
 */
uint32_t pci_config_read(struct pci_bus *bus, unsigned devfn, unsigned off, unsigned size);
void pci_config_write(struct pci_bus *bus, unsigned devfn, unsigned off, unsigned size,
                      uint32_t val);

#endif
