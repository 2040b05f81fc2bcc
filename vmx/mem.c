/*
 * mem.c — guest RAM in a memfd around the PCI hole, ROMs, checked access.
 */
#include "mem.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MEM_2M 0x200000ull

static int gmem_add_region(struct gmem *m, uint64_t gpa, uint64_t size, uint8_t *hva,
                           uint32_t flags, const char *name)
{
	if (m->nregions == GMEM_MAX_REGIONS)
		return -1;
	for (unsigned i = 0; i < m->nregions; i++) {
		const struct gmem_region *r = &m->regions[i];
		if (r->size && gpa < r->gpa + r->size && r->gpa < gpa + size)
			return -1;   /* overlap */
	}
	m->regions[m->nregions++] = (struct gmem_region){
		.gpa = gpa, .size = size, .hva = hva, .flags = flags, .name = name,
	};
	return 0;
}

int gmem_init(struct gmem *m, uint64_t ram_size, char *err, size_t errlen)
{
	void *reserve, *map;
	uint64_t high;

	memset(m, 0, sizeof(*m));
	m->fd = -1;
	if (ram_size < 2 * GMEM_LEGACY_END || ram_size % 4096) {
		snprintf(err, errlen, "guest memory size %llu is not a usable size",
		         (unsigned long long)ram_size);
		return -1;
	}
	m->fd = memfd_create("vireo-guest-ram", MFD_CLOEXEC);
	if (m->fd < 0 || ftruncate(m->fd, (off_t)ram_size) != 0) {
		snprintf(err, errlen, "cannot create %llu MiB of guest memory: %s",
		         (unsigned long long)(ram_size >> 20), strerror(errno));
		if (m->fd >= 0)
			close(m->fd);
		m->fd = -1;
		return -1;
	}
	/* Reserve 2 MiB extra so the mapping can be 2 MiB aligned (huge pages). */
	reserve = mmap(NULL, ram_size + MEM_2M, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (reserve == MAP_FAILED) {
		snprintf(err, errlen, "cannot reserve address space for guest memory: %s", strerror(errno));
		close(m->fd);
		m->fd = -1;
		return -1;
	}
	uintptr_t aligned = ((uintptr_t)reserve + MEM_2M - 1) & ~(uintptr_t)(MEM_2M - 1);
	map = mmap((void *)aligned, ram_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, m->fd, 0);
	if (map == MAP_FAILED) {
		snprintf(err, errlen, "cannot map guest memory: %s", strerror(errno));
		munmap(reserve, ram_size + MEM_2M);
		close(m->fd);
		m->fd = -1;
		return -1;
	}
	/* Trim the unused parts of the reservation. */
	if (aligned > (uintptr_t)reserve)
		munmap(reserve, aligned - (uintptr_t)reserve);
	uintptr_t end = aligned + ram_size, rend = (uintptr_t)reserve + ram_size + MEM_2M;
	if (rend > end)
		munmap((void *)end, rend - end);
	madvise(map, ram_size, MADV_HUGEPAGE);

	m->ram = map;
	m->ram_size = ram_size;
	m->low_size = ram_size < VMX_PCI_HOLE_START ? ram_size : VMX_PCI_HOLE_START;
	gmem_add_region(m, 0, GMEM_LEGACY_START, m->ram, GMEM_RAM, "ram-dos");
	gmem_add_region(m, GMEM_LEGACY_END, m->low_size - GMEM_LEGACY_END, m->ram + GMEM_LEGACY_END,
	                GMEM_RAM, "ram-low");
	high = ram_size - m->low_size;
	if (high)
		gmem_add_region(m, VMX_4G, high, m->ram + m->low_size, GMEM_RAM, "ram-high");
	return 0;
}

void gmem_destroy(struct gmem *m)
{
	for (unsigned i = 0; i < m->nregions; i++)
		if ((m->regions[i].flags & (GMEM_ROM | GMEM_ALIAS)) == GMEM_ROM && m->regions[i].size)
			munmap(m->regions[i].hva, m->regions[i].size);
	if (m->ram)
		munmap(m->ram, m->ram_size);
	if (m->fd >= 0)
		close(m->fd);
	memset(m, 0, sizeof(*m));
	m->fd = -1;
}

int gmem_map_low_ram(struct gmem *m, uint64_t gpa, uint64_t size, const char *name)
{
	if (gpa < GMEM_LEGACY_START || gpa + size > GMEM_LEGACY_END || gpa % 4096 || size % 4096)
		return -1;
	return gmem_add_region(m, gpa, size, m->ram + gpa, GMEM_RAM, name);
}

int gmem_add_rom(struct gmem *m, uint64_t gpa, const void *data, size_t len,
                 const char *name, char *err, size_t errlen)
{
	size_t size = (len + 4095) & ~(size_t)4095;
	uint8_t *p;

	if (size == 0 || gpa % 4096 || gpa + size < gpa) {
		snprintf(err, errlen, "%s: bad ROM placement", name);
		return -1;
	}
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		snprintf(err, errlen, "%s: %s", name, strerror(errno));
		return -1;
	}
	memcpy(p, data, len);
	if (gmem_add_region(m, gpa, size, p, GMEM_ROM, name) != 0) {
		snprintf(err, errlen, "%s: ROM at 0x%llx overlaps other memory", name,
		         (unsigned long long)gpa);
		munmap(p, size);
		return -1;
	}
	return 0;
}

int gmem_reserve_slots(struct gmem *m, unsigned n)
{
	unsigned first = m->nregions;

	if (n > GMEM_MAX_REGIONS - m->nregions)
		return -1;
	for (unsigned i = 0; i < n; i++)
		m->regions[m->nregions++] = (struct gmem_region){ .flags = GMEM_ALIAS, .name = "empty" };
	return (int)first;
}

int gmem_set_slot(struct gmem *m, unsigned idx, uint64_t gpa, uint64_t size, uint8_t *hva,
                  uint32_t flags, const char *name)
{
	if (idx >= m->nregions || gpa % 4096 || size % 4096 || gpa + size < gpa)
		return -1;
	for (unsigned i = 0; i < m->nregions; i++) {
		const struct gmem_region *r = &m->regions[i];
		if (i != idx && size && r->size && gpa < r->gpa + r->size && r->gpa < gpa + size)
			return -1;
	}
	m->regions[idx] = (struct gmem_region){
		.gpa = size ? gpa : 0, .size = size, .hva = size ? hva : NULL,
		.flags = flags | GMEM_ALIAS, .name = size ? name : "empty",
	};
	return 0;
}

static const struct gmem_region *gmem_find(const struct gmem *m, uint64_t gpa, uint64_t len)
{
	if (len == 0 || gpa + len < gpa)
		return NULL;
	for (unsigned i = 0; i < m->nregions; i++) {
		const struct gmem_region *r = &m->regions[i];
		/* Whole range inside: start and end, written to avoid overflow. */
		if (gpa >= r->gpa && gpa - r->gpa < r->size && len <= r->size - (gpa - r->gpa))
			return r;
	}
	return NULL;
}

void *gmem_ptr(const struct gmem *m, uint64_t gpa, uint64_t len)
{
	const struct gmem_region *r = gmem_find(m, gpa, len);
	if (!r || (r->flags & GMEM_ROM))
		return NULL;
	return r->hva + (gpa - r->gpa);
}

const void *gmem_ptr_ro(const struct gmem *m, uint64_t gpa, uint64_t len)
{
	const struct gmem_region *r = gmem_find(m, gpa, len);
	return r ? r->hva + (gpa - r->gpa) : NULL;
}

bool gmem_is_ram(const struct gmem *m, uint64_t gpa, uint64_t len)
{
	while (len) {
		const struct gmem_region *r = gmem_find(m, gpa, 1);
		if (!r || (r->flags & GMEM_ROM))
			return false;
		uint64_t chunk = r->size - (gpa - r->gpa);
		if (chunk >= len)
			return true;
		gpa += chunk;
		len -= chunk;
	}
	return true;
}

int gmem_read(const struct gmem *m, uint64_t gpa, void *buf, size_t len)
{
	uint8_t *out = buf;

	if (gpa + len < gpa)
		return -1;
	while (len) {
		const struct gmem_region *r = gmem_find(m, gpa, 1);
		if (!r)
			return -1;
		uint64_t chunk = r->size - (gpa - r->gpa);
		if (chunk > len)
			chunk = len;
		memcpy(out, r->hva + (gpa - r->gpa), chunk);
		out += chunk;
		gpa += chunk;
		len -= chunk;
	}
	return 0;
}

int gmem_write(const struct gmem *m, uint64_t gpa, const void *buf, size_t len)
{
	const uint8_t *in = buf;

	if (gpa + len < gpa || !gmem_is_ram(m, gpa, len))
		return -1;
	while (len) {
		const struct gmem_region *r = gmem_find(m, gpa, 1);
		uint64_t chunk = r->size - (gpa - r->gpa);
		if (chunk > len)
			chunk = len;
		memcpy(r->hva + (gpa - r->gpa), in, chunk);
		in += chunk;
		gpa += chunk;
		len -= chunk;
	}
	return 0;
}
