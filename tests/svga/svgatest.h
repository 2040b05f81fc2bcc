/*
 * svgatest.h — drive the SVGA II device the way vmwgfx does: PCI BARs
 * programmed through configuration space, registers through BAR0's
 * index/value ports, the FIFO through BAR2 MMIO, guest RAM through gmem.
 * Shared by the device tests and the FIFO fuzzer (static functions only).
 */
#ifndef VIREO_TESTS_SVGATEST_H
#define VIREO_TESTS_SVGATEST_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "tests/devices/devtest.h"
#include "vmx/dev/svga.h"
#include "vmx/pci.h"

#define SVT_IO     0x1070u
#define SVT_VRAM   0xE0000000ull
#define SVT_FIFO   0xE8000000ull
#define SVT_DEVFN  (SVGA_PCI_SLOT << 3)

#if defined(__GNUC__)
#define SVT_UNUSED __attribute__((unused))
#else
#define SVT_UNUSED
#endif

/* A VM with the PCI bus, the MKS (when linked) and the SVGA; BARs mapped. */
static SVT_UNUSED struct devtest *svt_new(const char *extra_vmx)
{
	char text[1024];
	struct devtest *t;
	struct pci_bus *bus;

	snprintf(text, sizeof(text), "memsize = \"64\"\n%s", extra_vmx ? extra_vmx : "");
	t = devtest_new(text);
	if (!t)
		return NULL;
	if (devtest_add(t, "pci") != 0 || devtest_add(t, "mks") < 0 || devtest_add(t, "svga") != 0) {
		devtest_free(t);
		return NULL;
	}
	bus = pci_bus_of(t->vm);
	pci_config_write(bus, SVT_DEVFN, PCI_BASE_ADDRESS_0, 4, SVT_IO);
	pci_config_write(bus, SVT_DEVFN, PCI_BASE_ADDRESS_0 + 4, 4, (uint32_t)SVT_VRAM);
	pci_config_write(bus, SVT_DEVFN, PCI_BASE_ADDRESS_0 + 8, 4, (uint32_t)SVT_FIFO);
	pci_config_write(bus, SVT_DEVFN, PCI_COMMAND, 2,
	                 PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	return t;
}

static SVT_UNUSED void svt_wr(struct devtest *t, uint32_t idx, uint32_t v)
{
	devtest_out(t, SVT_IO + SVGA_INDEX_PORT, 4, idx);
	devtest_out(t, SVT_IO + SVGA_VALUE_PORT, 4, v);
}

static SVT_UNUSED uint32_t svt_rd(struct devtest *t, uint32_t idx)
{
	devtest_out(t, SVT_IO + SVGA_INDEX_PORT, 4, idx);
	return (uint32_t)devtest_in(t, SVT_IO + SVGA_VALUE_PORT, 4);
}

static SVT_UNUSED void svt_fw(struct devtest *t, unsigned idx, uint32_t v)
{
	devtest_mmio_write(t, SVT_FIFO + 4ull * idx, 4, v);
}

static SVT_UNUSED uint32_t svt_fr(struct devtest *t, unsigned idx)
{
	return (uint32_t)devtest_mmio_read(t, SVT_FIFO + 4ull * idx, 4);
}

/* vmw_fifo_create: MIN one page, MAX = MEM_SIZE, then CONFIG_DONE. */
static SVT_UNUSED void svt_fifo_setup(struct devtest *t, uint32_t max)
{
	svt_wr(t, SVGA_REG_ENABLE, 1);
	svt_fw(t, SVGA_FIFO_MIN, 4096);
	svt_fw(t, SVGA_FIFO_MAX, max);
	svt_fw(t, SVGA_FIFO_NEXT_CMD, 4096);
	svt_fw(t, SVGA_FIFO_STOP, 4096);
	svt_fw(t, SVGA_FIFO_BUSY, 0);
	svt_wr(t, SVGA_REG_CONFIG_DONE, 1);
}

/* Copy words into the ring at NEXT_CMD (wrapping), without publishing them. */
static SVT_UNUSED uint32_t svt_put(struct devtest *t, uint32_t pos, const uint32_t *w, size_t n)
{
	uint32_t min = svt_fr(t, SVGA_FIFO_MIN), max = svt_fr(t, SVGA_FIFO_MAX);

	for (size_t i = 0; i < n; i++) {
		devtest_mmio_write(t, SVT_FIFO + pos, 4, w[i]);
		pos += 4;
		if (pos >= max)
			pos = min;
	}
	return pos;
}

/* vmw_fifo_commit + vmw_fifo_ping_host: publish, then SYNC if we win FIFO[BUSY]. */
static SVT_UNUSED void svt_cmd(struct devtest *t, const uint32_t *w, size_t n)
{
	uint32_t next = svt_put(t, svt_fr(t, SVGA_FIFO_NEXT_CMD), w, n);

	svt_fw(t, SVGA_FIFO_NEXT_CMD, next);
	if (svt_fr(t, SVGA_FIFO_BUSY) == 0) {
		svt_fw(t, SVGA_FIFO_BUSY, 1);
		svt_wr(t, SVGA_REG_SYNC, 1);
	}
}

#endif
