/*
 * pci.c — PCI bus 0 behind configuration mechanism #1.
 *
 * 0xCF9 (reset control, misc.c) sits inside CONFIG_ADDRESS's dword; the
 * iobus forbids overlaps, so the bus takes over a range already registered
 * at 0xCF9 and forwards byte accesses at that port to it, the way the PIIX
 * decodes only dword accesses at 0xCF8 as CONFIG_ADDRESS.
 */
#include "pci.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "lock.h"
#include "log.h"
#include "platform.h"
#include "vm.h"

struct pci_bus {
	struct vmx_vm *vm;
	struct vmx_mutex lock;        /* config space, device table */
	uint32_t config_addr;
	struct pci_dev *devs[PCI_SLOTS * PCI_FUNCS];
	/* The 0xCF9 range found at init, forwarded to. */
	struct iobus_range cf9;
	bool have_cf9;

	struct vmx_mutex intx_lock;
	unsigned intx_count[4];       /* asserting devices per PIRQ line */
};

uint8_t pci_get8(const struct pci_dev *d, unsigned off)
{
	return off < 256 ? d->config[off] : 0xFF;
}

uint16_t pci_get16(const struct pci_dev *d, unsigned off)
{
	return (uint16_t)(pci_get8(d, off) | pci_get8(d, off + 1) << 8);
}

uint32_t pci_get32(const struct pci_dev *d, unsigned off)
{
	return (uint32_t)pci_get16(d, off) | (uint32_t)pci_get16(d, off + 2) << 16;
}

void pci_set8(struct pci_dev *d, unsigned off, uint8_t v)
{
	if (off < 256)
		d->config[off] = v;
}

void pci_set16(struct pci_dev *d, unsigned off, uint16_t v)
{
	pci_set8(d, off, (uint8_t)v);
	pci_set8(d, off + 1, (uint8_t)(v >> 8));
}

void pci_set32(struct pci_dev *d, unsigned off, uint32_t v)
{
	pci_set16(d, off, (uint16_t)v);
	pci_set16(d, off + 2, (uint16_t)(v >> 16));
}

static void pci_set_mask32(uint8_t *arr, unsigned off, uint32_t v)
{
	for (unsigned i = 0; i < 4; i++)
		arr[off + i] = (uint8_t)(v >> (8 * i));
}

void pci_set_wmask(struct pci_dev *d, unsigned off, unsigned len, uint8_t mask)
{
	for (unsigned i = 0; i < len && off + i < 256; i++)
		d->wmask[off + i] = mask;
}

struct pci_bus *pci_bus_of(struct vmx_vm *vm)
{
	return vmx_vm_device(vm, "pci");
}

/* ---- BARs ---- */

static uint32_t pci_bar_lowbits(const struct pci_bar *b)
{
	if (b->flags & PCI_BAR_IO)
		return 0x1;
	return ((b->flags & PCI_BAR_MEM64) ? 0x4u : 0u) | ((b->flags & PCI_BAR_PREFETCH) ? 0x8u : 0u);
}

uint64_t pci_bar_addr(const struct pci_dev *d, unsigned i)
{
	const struct pci_bar *b;
	uint64_t a;

	if (i >= PCI_NUM_BARS)
		return 0;
	b = &d->bars[i];
	if (!b->size)
		return 0;
	a = pci_get32(d, PCI_BASE_ADDRESS_0 + 4 * i);
	if (b->flags & PCI_BAR_IO)
		return a & ~3ull;
	a &= ~15ull;
	if ((b->flags & PCI_BAR_MEM64) && i + 1 < PCI_NUM_BARS)
		a |= (uint64_t)pci_get32(d, PCI_BASE_ADDRESS_0 + 4 * (i + 1)) << 32;
	return a;
}

static void pci_unmap_bar(struct pci_dev *d, unsigned i)
{
	struct pci_bar *b = &d->bars[i];

	if (!b->mapped)
		return;
	if (b->ram_mapped) {
		vmx_vm_set_mem_slot(d->vm, b->ram_slot, 0, 0, NULL, 0, NULL);
		b->ram_mapped = false;
	}
	iobus_unregister((b->flags & PCI_BAR_IO) ? &d->vm->pio : &d->vm->mmio, b->mapped_addr,
	                 b->opaque);
	b->mapped = false;
}

/*
 * Is [base, base+len) free on the bus?  Checked first so that a guest
 * placing BARs over other devices gets a rate-limited line, not the bus's
 * error for every attempt.
 */
static bool pci_range_free(struct iobus *bus, uint64_t base, uint64_t len)
{
	bool free_ = true;

	vmx_mutex_lock(&bus->lock);
	for (unsigned i = 0; i < bus->nranges && free_; i++) {
		const struct iobus_range *r = &bus->ranges[i];
		if (base < r->base + r->len && r->base < base + len)
			free_ = false;
	}
	vmx_mutex_unlock(&bus->lock);
	return free_;
}

/* Bring every BAR's bus mapping in line with the command register and BARs. */
static void pci_update_mappings(struct pci_dev *d)
{
	uint16_t cmd = pci_get16(d, PCI_COMMAND);

	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		struct pci_bar *b = &d->bars[i];
		bool io = b->flags & PCI_BAR_IO;
		uint64_t addr = pci_bar_addr(d, i);
		bool want;

		if (!b->size || !b->ops)
			continue;
		want = (io ? (cmd & PCI_COMMAND_IO) : (cmd & PCI_COMMAND_MEMORY)) && addr != 0;
		/* Outside the space it decodes in: a half-programmed or sizing value. */
		if (want && io && addr + b->size > 0x10000)
			want = false;
		if (want && !io && (addr + b->size < addr ||
		                    (!(b->flags & PCI_BAR_MEM64) && addr + b->size > VMX_4G)))
			want = false;
		if (b->mapped && (!want || b->mapped_addr != addr))
			pci_unmap_bar(d, i);
		if (want && !b->mapped) {
			struct iobus *bus = io ? &d->vm->pio : &d->vm->mmio;
			if (pci_range_free(bus, addr, b->size) &&
			    iobus_register(bus, addr, b->size, b->ops, b->opaque, d->name) == 0) {
				b->mapped = true;
				b->mapped_addr = addr;
				/* RAM over the registered range: the engine no longer exits for it. */
				if (b->ram && !io && b->ram_slot >= 0 &&
				    vmx_vm_set_mem_slot(d->vm, b->ram_slot, addr, b->size, b->ram,
				                        b->log_dirty ? GMEM_LOG_DIRTY : 0, d->name) == 0) {
					bool logged = b->log_dirty && vmx_vm_can_log_dirty(d->vm);
					b->ram_mapped = true;
					vlog_info("pci %s: BAR%u at 0x%llx+0x%llx is guest RAM%s", d->name, i,
					           (unsigned long long)addr, (unsigned long long)b->size,
					           logged ? ", writes logged per page" : "");
				}
			} else {
				vlog_guest("pci %s BAR%u at 0x%llx+0x%llx conflicts; not decoded",
				           d->name, i, (unsigned long long)addr,
				           (unsigned long long)b->size);
			}
		}
		if (b->flags & PCI_BAR_MEM64)
			i++;
	}
}

int pci_bar_dirty(struct pci_dev *d, unsigned bar, uint64_t off, uint64_t len,
                  uint64_t *bitmap)
{
	if (bar >= PCI_NUM_BARS || !d->vm || !d->bars[bar].log_dirty || d->bars[bar].ram_slot < 0)
		return -1;
	return vmx_vm_mem_dirty(d->vm, d->bars[bar].ram_slot, off, len, bitmap);
}

/* ---- INTx ---- */

int pci_intx_gsi(const struct pci_dev *d)
{
	unsigned pin = d->config[PCI_INTERRUPT_PIN];

	if (pin < 1 || pin > 4)
		return -1;
	return 16 + (int)(((d->devfn >> 3) + pin - 1) & 3);
}

/* Recompute what d drives onto its line; caller holds no PCI lock. */
static void pci_intx_update(struct pci_dev *d)
{
	struct pci_bus *bus = d->bus;
	int gsi = pci_intx_gsi(d);
	bool want;

	if (!bus || gsi < 0)
		return;
	vmx_mutex_lock(&bus->intx_lock);
	want = d->irq_level && !(pci_get16(d, PCI_COMMAND) & PCI_COMMAND_INTX_DISABLE);
	if (want != d->irq_asserted) {
		unsigned line = (unsigned)gsi - 16;
		bool before = bus->intx_count[line] != 0;
		if (want)
			bus->intx_count[line]++;
		else
			bus->intx_count[line]--;
		d->irq_asserted = want;
		if (before != (bus->intx_count[line] != 0))
			vmx_irq_set(bus->vm, (unsigned)gsi, bus->intx_count[line] != 0);
	}
	vmx_mutex_unlock(&bus->intx_lock);
}

void pci_set_irq(struct pci_dev *d, bool level)
{
	if (d->irq_level == level)
		return;
	d->irq_level = level;
	if (level)
		d->config[PCI_STATUS] |= PCI_STATUS_INTERRUPT;
	else
		d->config[PCI_STATUS] &= (uint8_t)~PCI_STATUS_INTERRUPT;
	pci_intx_update(d);
}

/* ---- capabilities ---- */

unsigned pci_add_capability(struct pci_dev *d, uint8_t cap_id, unsigned off, unsigned size)
{
	unsigned prev, guard = 0;

	if (off == 0)
		off = d->cap_next ? d->cap_next : 0x40;
	off = (off + 3) & ~3u;
	if (size < 2 || off < 0x40 || off + size > 256)
		return 0;
	d->config[off] = cap_id;
	d->config[off + 1] = 0;
	prev = d->config[PCI_CAPABILITY_LIST];
	if (!prev) {
		d->config[PCI_CAPABILITY_LIST] = (uint8_t)off;
	} else {
		while (d->config[prev + 1] && guard++ < 48)
			prev = d->config[prev + 1];
		d->config[prev + 1] = (uint8_t)off;
	}
	d->config[PCI_STATUS] |= PCI_STATUS_CAP_LIST;
	if (off + size > d->cap_next) {
		unsigned next = (off + size + 3) & ~3u;
		d->cap_next = next >= 256 ? 0xFF : (uint8_t)next;
	}
	return off;
}

/* ---- config space ---- */

static void pci_dev_build_config(struct pci_dev *d)
{
	memset(d->config, 0, sizeof(d->config));
	memset(d->wmask, 0, sizeof(d->wmask));
	memset(d->w1cmask, 0, sizeof(d->w1cmask));
	pci_set16(d, PCI_VENDOR_ID, d->vendor_id);
	pci_set16(d, PCI_DEVICE_ID, d->device_id);
	d->config[PCI_REVISION_ID] = d->revision;
	d->config[PCI_CLASS_PROG] = (uint8_t)d->class_code;
	d->config[PCI_CLASS_PROG + 1] = (uint8_t)(d->class_code >> 8);
	d->config[PCI_CLASS_PROG + 2] = (uint8_t)(d->class_code >> 16);
	pci_set16(d, PCI_SUBSYSTEM_VENDOR_ID, d->subsys_vendor_id);
	pci_set16(d, PCI_SUBSYSTEM_ID, d->subsys_id);
	d->config[PCI_INTERRUPT_PIN] = d->irq_pin <= 4 ? d->irq_pin : 0;

	/* IO, memory, master, parity response, SERR, INTx disable. */
	d->wmask[PCI_COMMAND] = 0x47;
	d->wmask[PCI_COMMAND + 1] = 0x05;
	/* Status error bits are write-1-to-clear. */
	d->w1cmask[PCI_STATUS + 1] = 0xF9;
	d->wmask[PCI_CACHE_LINE_SIZE] = 0xFF;
	d->wmask[PCI_LATENCY_TIMER] = 0xFF;
	d->wmask[PCI_INTERRUPT_LINE] = 0xFF;

	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		struct pci_bar *b = &d->bars[i];
		unsigned off = PCI_BASE_ADDRESS_0 + 4 * i;
		uint64_t size = b->size;

		b->mapped = false;
		if (!size)
			continue;
		/* A BAR smaller than its type allows is rounded up to a power of two. */
		if (size < ((b->flags & PCI_BAR_IO) ? 4u : 16u))
			size = (b->flags & PCI_BAR_IO) ? 4u : 16u;
		while (size & (size - 1))
			size += size & -size;
		b->size = size;
		if ((b->flags & PCI_BAR_MEM64) && i + 1 >= PCI_NUM_BARS)
			b->flags &= ~PCI_BAR_MEM64;
		pci_set32(d, off, pci_bar_lowbits(b));
		pci_set_mask32(d->wmask, off,
		               (uint32_t)~(size - 1) & ((b->flags & PCI_BAR_IO) ? ~3u : ~15u));
		if (b->flags & PCI_BAR_MEM64) {
			pci_set_mask32(d->wmask, off + 4, (uint32_t)(~(size - 1) >> 32));
			d->bars[i + 1].size = 0;
			i++;
		}
	}
}

static struct pci_dev *pci_find(struct pci_bus *bus, unsigned devfn)
{
	return devfn < PCI_SLOTS * PCI_FUNCS ? bus->devs[devfn] : NULL;
}

static uint32_t pci_dev_read(struct pci_dev *d, unsigned off, unsigned size)
{
	uint32_t v = 0;

	for (unsigned i = 0; i < size; i++)
		v |= (uint32_t)d->config[off + i] << (8 * i);
	if (d->cfg_read)
		v = d->cfg_read(d, off, size, v);
	return v;
}

static void pci_dev_write(struct pci_dev *d, unsigned off, unsigned size, uint32_t val)
{
	bool remap = false;
	uint16_t old_cmd = pci_get16(d, PCI_COMMAND);

	for (unsigned i = 0; i < size; i++) {
		unsigned o = off + i;
		uint8_t b = (uint8_t)(val >> (8 * i));
		d->config[o] = (uint8_t)((d->config[o] & ~d->wmask[o]) | (b & d->wmask[o]));
		d->config[o] &= (uint8_t)~(b & d->w1cmask[o]);
		if ((o >= PCI_COMMAND && o < PCI_COMMAND + 2) ||
		    (o >= PCI_BASE_ADDRESS_0 && o < PCI_BASE_ADDRESS_0 + 4 * PCI_NUM_BARS))
			remap = true;
	}
	if (remap)
		pci_update_mappings(d);
	if ((old_cmd ^ pci_get16(d, PCI_COMMAND)) & PCI_COMMAND_INTX_DISABLE)
		pci_intx_update(d);
	if (d->cfg_write)
		d->cfg_write(d, off, size, val);
}

uint32_t pci_config_read(struct pci_bus *bus, unsigned devfn, unsigned off, unsigned size)
{
	struct pci_dev *d;
	uint32_t v;

	if ((size != 1 && size != 2 && size != 4) || off > 256 - size || off % size)
		return 0xFFFFFFFFu;
	vmx_mutex_lock(&bus->lock);
	d = pci_find(bus, devfn);
	v = d ? pci_dev_read(d, off, size) : 0xFFFFFFFFu;
	vmx_mutex_unlock(&bus->lock);
	if (size < 4)
		v &= (1u << (8 * size)) - 1;
	return v;
}

void pci_config_write(struct pci_bus *bus, unsigned devfn, unsigned off, unsigned size,
                      uint32_t val)
{
	struct pci_dev *d;

	if ((size != 1 && size != 2 && size != 4) || off > 256 - size || off % size)
		return;
	vmx_mutex_lock(&bus->lock);
	d = pci_find(bus, devfn);
	if (d)
		pci_dev_write(d, off, size, val);
	vmx_mutex_unlock(&bus->lock);
}

/* ---- 0xCF8 / 0xCFC ---- */

static uint64_t pci_addr_read(void *opaque, uint64_t off, unsigned size)
{
	struct pci_bus *bus = opaque;

	if (off == 0 && size == 4)
		return bus->config_addr;
	if (bus->have_cf9 && off == PLAT_PORT_RESET - PLAT_PORT_PCI_ADDR && size == 1 &&
	    (bus->cf9.ops->widths & IOBUS_W1))
		return bus->cf9.ops->read(bus->cf9.opaque, 0, 1);
	return ~0ull;
}

static void pci_addr_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct pci_bus *bus = opaque;

	if (off == 0 && size == 4) {
		vmx_mutex_lock(&bus->lock);
		bus->config_addr = (uint32_t)val & 0x80FFFFFCu;
		vmx_mutex_unlock(&bus->lock);
		return;
	}
	if (bus->have_cf9 && off == PLAT_PORT_RESET - PLAT_PORT_PCI_ADDR && size == 1 &&
	    (bus->cf9.ops->widths & IOBUS_W1)) {
		bus->cf9.ops->write(bus->cf9.opaque, 0, 1, val);
		return;
	}
	/* Byte and word accesses to 0xCF8 are not CONFIG_ADDRESS: ignored. */
}

/* The device and offset CONFIG_ADDRESS selects, or false when it selects nothing. */
static bool pci_decode(struct pci_bus *bus, uint64_t off, unsigned *devfn, unsigned *reg)
{
	uint32_t a = bus->config_addr;

	if (!(a & 0x80000000u) || ((a >> 16) & 0xFF) != 0)
		return false;
	*devfn = (a >> 8) & 0xFF;
	*reg = (a & 0xFC) + (unsigned)off;
	return true;
}

static uint64_t pci_data_read(void *opaque, uint64_t off, unsigned size)
{
	struct pci_bus *bus = opaque;
	unsigned devfn, reg;
	struct pci_dev *d;
	uint32_t v = 0xFFFFFFFFu;

	vmx_mutex_lock(&bus->lock);
	if (pci_decode(bus, off, &devfn, &reg) && (d = pci_find(bus, devfn)) && reg + size <= 256)
		v = pci_dev_read(d, reg, size);
	vmx_mutex_unlock(&bus->lock);
	return v;
}

static void pci_data_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct pci_bus *bus = opaque;
	unsigned devfn, reg;
	struct pci_dev *d;

	vmx_mutex_lock(&bus->lock);
	if (pci_decode(bus, off, &devfn, &reg) && (d = pci_find(bus, devfn)) && reg + size <= 256)
		pci_dev_write(d, reg, size, (uint32_t)val);
	vmx_mutex_unlock(&bus->lock);
}

static const struct iobus_ops pci_addr_ops = {
	.read = pci_addr_read, .write = pci_addr_write,
	.widths = IOBUS_W1 | IOBUS_W2 | IOBUS_W4,
};

static const struct iobus_ops pci_data_ops = {
	.read = pci_data_read, .write = pci_data_write,
	.widths = IOBUS_W1 | IOBUS_W2 | IOBUS_W4,
};

/* ---- registration ---- */

int pci_register(struct vmx_vm *vm, struct pci_dev *d, int slot, int func,
                 char *err, size_t errlen)
{
	struct pci_bus *bus = pci_bus_of(vm);
	unsigned devfn;

	if (!bus) {
		snprintf(err, errlen, "%s: no PCI bus in this VM", d->name ? d->name : "pci device");
		return -1;
	}
	if (func < 0 || func >= PCI_FUNCS || slot >= PCI_SLOTS) {
		snprintf(err, errlen, "%s: bad PCI address %d.%d", d->name, slot, func);
		return -1;
	}
	vmx_mutex_lock(&bus->lock);
	if (slot < 0) {
		for (slot = 0; slot < PCI_SLOTS; slot++)
			if (!bus->devs[slot << 3])
				break;
		if (slot == PCI_SLOTS) {
			vmx_mutex_unlock(&bus->lock);
			snprintf(err, errlen, "%s: no free PCI slot", d->name);
			return -1;
		}
	}
	devfn = (unsigned)slot << 3 | (unsigned)func;
	if (bus->devs[devfn]) {
		vmx_mutex_unlock(&bus->lock);
		snprintf(err, errlen, "%s: PCI %02x.%u is taken by %s", d->name, (unsigned)slot,
		         (unsigned)func, bus->devs[devfn]->name);
		return -1;
	}
	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		struct pci_bar *b = &d->bars[i];
		b->ram_slot = -1;
		b->ram_mapped = false;
		/* Without a slot the BAR still works, through ops, only slower. */
		if (b->ram && b->size && !(b->flags & PCI_BAR_IO) && !((uintptr_t)b->ram & 4095) &&
		    !(b->size & 4095) && (b->ram_slot = gmem_reserve_slots(&vm->mem, 1)) < 0)
			vlog_info("%s: BAR%u is trapped: no memory slot left", d->name, i);
	}
	d->vm = vm;
	d->bus = bus;
	d->devfn = (uint8_t)devfn;
	d->cap_next = 0x40;
	d->irq_level = d->irq_asserted = false;
	pci_dev_build_config(d);
	bus->devs[devfn] = d;
	/* Functions above 0 are found only when function 0 says multi-function. */
	if (func > 0 && bus->devs[devfn & ~7u])
		bus->devs[devfn & ~7u]->config[PCI_HEADER_TYPE] |= 0x80;
	if (func == 0) {
		for (unsigned f = 1; f < PCI_FUNCS; f++)
			if (bus->devs[devfn + f])
				d->config[PCI_HEADER_TYPE] |= 0x80;
	}
	vmx_mutex_unlock(&bus->lock);
	vlog_debug("pci: %s at 00:%02x.%u (%04x:%04x)", d->name, (unsigned)slot, (unsigned)func,
	           d->vendor_id, d->device_id);
	return 0;
}

void pci_unregister(struct pci_dev *d)
{
	struct pci_bus *bus = d->bus;

	if (!bus)
		return;
	pci_set_irq(d, false);
	vmx_mutex_lock(&bus->lock);
	for (unsigned i = 0; i < PCI_NUM_BARS; i++)
		pci_unmap_bar(d, i);
	if (bus->devs[d->devfn] == d)
		bus->devs[d->devfn] = NULL;
	vmx_mutex_unlock(&bus->lock);
	d->bus = NULL;
}

/* ---- the bus as a vdev ---- */

/* Take over a range registered at 0xCF9 so that CONFIG_ADDRESS can own 0xCF8-0xCFB. */
static void pci_adopt_cf9(struct pci_bus *bus, struct iobus *pio)
{
	struct iobus_range r = { 0 };
	bool found = false;

	vmx_mutex_lock(&pio->lock);
	for (unsigned i = 0; i < pio->nranges; i++) {
		const struct iobus_range *x = &pio->ranges[i];
		if (x->base == PLAT_PORT_RESET && x->len == 1) {
			r = *x;
			found = true;
			break;
		}
	}
	vmx_mutex_unlock(&pio->lock);
	if (found && iobus_unregister(pio, r.base, r.opaque) == 0) {
		bus->cf9 = r;
		bus->have_cf9 = true;
	}
}

static int pci_vdev_init(struct vdev *dev, char *err, size_t errlen)
{
	struct vmx_vm *vm = dev->vm;
	struct pci_bus *bus = calloc(1, sizeof(*bus));

	if (!bus) {
		snprintf(err, errlen, "pci: out of memory");
		return -1;
	}
	bus->vm = vm;
	vmx_mutex_init(&bus->lock, PCI_RANK_CONFIG, "pci");
	vmx_mutex_init(&bus->intx_lock, PCI_RANK_INTX, "pci-intx");
	pci_adopt_cf9(bus, &vm->pio);
	if (iobus_register(&vm->pio, PLAT_PORT_PCI_ADDR, 4, &pci_addr_ops, bus, "pci-addr") != 0 ||
	    iobus_register(&vm->pio, PLAT_PORT_PCI_DATA, 4, &pci_data_ops, bus, "pci-data") != 0) {
		snprintf(err, errlen, "pci: ports 0xCF8-0xCFF are taken");
		iobus_unregister(&vm->pio, PLAT_PORT_PCI_ADDR, bus);
		if (bus->have_cf9)
			iobus_register(&vm->pio, bus->cf9.base, 1, bus->cf9.ops, bus->cf9.opaque,
			               bus->cf9.name);
		vmx_mutex_destroy(&bus->intx_lock);
		vmx_mutex_destroy(&bus->lock);
		free(bus);
		return -1;
	}
	dev->priv = bus;
	return 0;
}

/* System reset: every function's standard header goes back to power-on values. */
static void pci_vdev_reset(struct vdev *dev)
{
	struct pci_bus *bus = dev->priv;

	vmx_mutex_lock(&bus->lock);
	bus->config_addr = 0;
	for (unsigned i = 0; i < PCI_SLOTS * PCI_FUNCS; i++) {
		struct pci_dev *d = bus->devs[i];
		if (!d)
			continue;
		for (unsigned b = 0; b < PCI_NUM_BARS; b++) {
			pci_unmap_bar(d, b);
			pci_set32(d, PCI_BASE_ADDRESS_0 + 4 * b,
			          d->bars[b].size ? pci_bar_lowbits(&d->bars[b]) : 0);
		}
		pci_set16(d, PCI_COMMAND, 0);
		d->config[PCI_STATUS + 1] = 0;
		d->config[PCI_CACHE_LINE_SIZE] = 0;
		d->config[PCI_LATENCY_TIMER] = 0;
		d->config[PCI_INTERRUPT_LINE] = 0;
	}
	vmx_mutex_unlock(&bus->lock);
}

static void pci_vdev_destroy(struct vdev *dev)
{
	struct pci_bus *bus = dev->priv;

	if (!bus)
		return;
	/*
	 * Devices may outlive the bus (vm.c destroys in creation order): detach
	 * them so their pci_unregister() finds no bus.
	 */
	for (unsigned i = 0; i < PCI_SLOTS * PCI_FUNCS; i++) {
		struct pci_dev *d = bus->devs[i];
		if (!d)
			continue;
		pci_set_irq(d, false);
		vmx_mutex_lock(&bus->lock);
		for (unsigned b = 0; b < PCI_NUM_BARS; b++)
			pci_unmap_bar(d, b);
		bus->devs[i] = NULL;
		vmx_mutex_unlock(&bus->lock);
		d->bus = NULL;
	}
	iobus_unregister(&dev->vm->pio, PLAT_PORT_PCI_ADDR, bus);
	iobus_unregister(&dev->vm->pio, PLAT_PORT_PCI_DATA, bus);
	vmx_mutex_destroy(&bus->intx_lock);
	vmx_mutex_destroy(&bus->lock);
	free(bus);
	dev->priv = NULL;
}

static const struct vstate_field pci_bus_fields[] = {
	VSTATE_FIELD(struct pci_bus, config_addr),
	VSTATE_END
};

static const struct vstate_desc pci_bus_state = {
	.name = "pci", .version = 1, .fields = pci_bus_fields,
};

/* After misc (30), which owns 0xCF9; before the bridges (35) and PCI devices. */
static const struct vdev_class pci_class = {
	.name = "pci",
	.order = 34,
	.init = pci_vdev_init,
	.reset = pci_vdev_reset,
	.destroy = pci_vdev_destroy,
	.state = &pci_bus_state,
};

VDEV_REGISTER(pci_class)
