/*
 * iobus.c — port-I/O and MMIO dispatch with declared access widths.
 */
#include "iobus.h"

#include <string.h>

#include "log.h"

void iobus_init(struct iobus *bus, const char *name)
{
	memset(bus, 0, sizeof(*bus));
	bus->name = name;
	vmx_mutex_init(&bus->lock, VMX_RANK_BUS, name);
}

void iobus_destroy(struct iobus *bus)
{
	vmx_mutex_destroy(&bus->lock);
}

int iobus_register(struct iobus *bus, uint64_t base, uint64_t len,
                   const struct iobus_ops *ops, void *opaque, const char *name)
{
	unsigned i;

	if (len == 0 || base + len < base || !ops || !(ops->widths & 0xF))
		return -1;
	vmx_mutex_lock(&bus->lock);
	if (bus->nranges == IOBUS_MAX_RANGES) {
		vmx_mutex_unlock(&bus->lock);
		vlog_error("%s bus: no room for %s", bus->name, name);
		return -1;
	}
	for (i = 0; i < bus->nranges; i++) {
		const struct iobus_range *r = &bus->ranges[i];
		if (base < r->base + r->len && r->base < base + len) {
			vmx_mutex_unlock(&bus->lock);
			vlog_error("%s bus: %s at 0x%llx+0x%llx overlaps %s", bus->name, name,
			           (unsigned long long)base, (unsigned long long)len, r->name);
			return -1;
		}
		if (r->base > base)
			break;
	}
	memmove(&bus->ranges[i + 1], &bus->ranges[i], (bus->nranges - i) * sizeof(bus->ranges[0]));
	bus->ranges[i] = (struct iobus_range){
		.base = base, .len = len, .ops = ops, .opaque = opaque, .name = name,
	};
	bus->nranges++;
	vmx_mutex_unlock(&bus->lock);
	return 0;
}

int iobus_unregister(struct iobus *bus, uint64_t base, void *opaque)
{
	int ret = -1;

	vmx_mutex_lock(&bus->lock);
	for (unsigned i = 0; i < bus->nranges; i++) {
		if (bus->ranges[i].base == base && bus->ranges[i].opaque == opaque) {
			memmove(&bus->ranges[i], &bus->ranges[i + 1],
			        (bus->nranges - i - 1) * sizeof(bus->ranges[0]));
			bus->nranges--;
			ret = 0;
			break;
		}
	}
	vmx_mutex_unlock(&bus->lock);
	return ret;
}

/* Find the range holding all of [addr, addr+size); copy it out. */
static bool iobus_lookup(struct iobus *bus, uint64_t addr, unsigned size, struct iobus_range *out)
{
	unsigned lo = 0, hi;
	bool found = false;

	vmx_mutex_lock(&bus->lock);
	hi = bus->nranges;
	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		const struct iobus_range *r = &bus->ranges[mid];
		if (addr < r->base) {
			hi = mid;
		} else if (addr - r->base >= r->len) {
			lo = mid + 1;
		} else {
			if (size <= r->len - (addr - r->base)) {
				*out = *r;
				found = true;
			}
			break;
		}
	}
	if (!found)
		bus->unassigned++;
	vmx_mutex_unlock(&bus->lock);
	return found;
}

bool iobus_access(struct iobus *bus, uint64_t addr, unsigned size, bool write, uint64_t *val)
{
	struct iobus_range r;
	uint64_t mask = size >= 8 ? ~0ull : ((1ull << (size * 8)) - 1);

	if (size != 1 && size != 2 && size != 4 && size != 8) {
		vlog_guest("%s access of size %u at 0x%llx", bus->name, size, (unsigned long long)addr);
		if (!write)
			*val = ~0ull;
		return false;
	}
	if (!iobus_lookup(bus, addr, size, &r)) {
		if (!write)
			*val = mask;
		return false;
	}
	if (r.ops->widths & size) {
		if (write) {
			r.ops->write(r.opaque, addr - r.base, size, *val & mask);
		} else {
			*val = r.ops->read(r.opaque, addr - r.base, size) & mask;
		}
		return true;
	}
	/* Illegal width: split into the largest legal smaller width, as a bus would. */
	unsigned w = size >> 1;
	while (w && !(r.ops->widths & w))
		w >>= 1;
	if (!w) {
		vlog_guest("%s: %u-byte %s at 0x%llx (%s accepts widths mask 0x%x)", bus->name, size,
		           write ? "write" : "read", (unsigned long long)addr, r.name, r.ops->widths);
		if (!write)
			*val = mask;
		return true;
	}
	uint64_t acc = 0;
	for (unsigned off = 0; off < size; off += w) {
		uint64_t part = write ? (*val >> (off * 8)) : 0;
		uint64_t pmask = w >= 8 ? ~0ull : ((1ull << (w * 8)) - 1);
		if (write)
			r.ops->write(r.opaque, addr + off - r.base, w, part & pmask);
		else
			acc |= (r.ops->read(r.opaque, addr + off - r.base, w) & pmask) << (off * 8);
	}
	if (!write)
		*val = acc;
	return true;
}
