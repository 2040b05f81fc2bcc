/*
 * test_svga_regs.c — SVGA II PCI identity, BARs, ID negotiation, the
 * registers and FIFO words vmwgfx 6.1 checks before it loads, config keys,
 * and the legacy (GFB) mode reaching the MKS shadow.
 */
#include <stdlib.h>

#include "mks/mks.h"
#include "svgatest.h"
#include "tests/unit/t.h"
#include "vmx/log.h"
#include "vmx/vm.h"

static void test_pci(struct devtest *t)
{
	struct pci_bus *bus = pci_bus_of(t->vm);

	T_EQ_U64(pci_config_read(bus, SVT_DEVFN, PCI_VENDOR_ID, 2), 0x15AD);
	T_EQ_U64(pci_config_read(bus, SVT_DEVFN, PCI_DEVICE_ID, 2), 0x0405);
	T_EQ_U64(pci_config_read(bus, SVT_DEVFN, PCI_SUBSYSTEM_VENDOR_ID, 2), 0x15AD);
	T_EQ_U64(pci_config_read(bus, SVT_DEVFN, 0x08, 4) >> 8, 0x030000);
	T_EQ_U64(pci_config_read(bus, SVT_DEVFN, PCI_INTERRUPT_PIN, 1), 1);
	/* BAR sizing: BAR0 16 ports, BAR1 32 MiB prefetchable, BAR2 2 MiB. */
	pci_config_write(bus, SVT_DEVFN, PCI_BASE_ADDRESS_0 + 4, 4, 0xFFFFFFFF);
	T_EQ_U64(pci_config_read(bus, SVT_DEVFN, PCI_BASE_ADDRESS_0 + 4, 4), 0xFE000008);
	pci_config_write(bus, SVT_DEVFN, PCI_BASE_ADDRESS_0 + 4, 4, (uint32_t)SVT_VRAM);
	pci_config_write(bus, SVT_DEVFN, PCI_BASE_ADDRESS_0 + 8, 4, 0xFFFFFFFF);
	T_EQ_U64(pci_config_read(bus, SVT_DEVFN, PCI_BASE_ADDRESS_0 + 8, 4), 0xFFE00000);
	pci_config_write(bus, SVT_DEVFN, PCI_BASE_ADDRESS_0 + 8, 4, (uint32_t)SVT_FIFO);
	pci_config_write(bus, SVT_DEVFN, PCI_BASE_ADDRESS_0, 4, 0xFFFFFFFF);
	T_EQ_U64(pci_config_read(bus, SVT_DEVFN, PCI_BASE_ADDRESS_0, 4) & 0xFFFF, 0xFFF1);
	pci_config_write(bus, SVT_DEVFN, PCI_BASE_ADDRESS_0, 4, SVT_IO);
	T_ASSERT(devtest_pio_claimed(t, SVT_IO + SVGA_VALUE_PORT, 4));
}

static void test_regs(struct devtest *t)
{
	uint32_t caps;

	/* 6.1 writes ID_2 and insists on reading ID_2 back. */
	svt_wr(t, SVGA_REG_ID, SVGA_ID_2);
	T_EQ_U64(svt_rd(t, SVGA_REG_ID), SVGA_ID_2);
	svt_wr(t, SVGA_REG_ID, 0x90000003);   /* above ours: the highest we have */
	T_EQ_U64(svt_rd(t, SVGA_REG_ID), SVGA_ID_2);
	svt_wr(t, SVGA_REG_ID, SVGA_ID_1);
	T_EQ_U64(svt_rd(t, SVGA_REG_ID), SVGA_ID_1);
	svt_wr(t, SVGA_REG_ID, 0x12345678);   /* garbage: unchanged */
	T_EQ_U64(svt_rd(t, SVGA_REG_ID), SVGA_ID_1);
	svt_wr(t, SVGA_REG_ID, SVGA_ID_2);

	caps = svt_rd(t, SVGA_REG_CAPABILITIES);
	T_ASSERT(caps & SVGA_CAP_PITCHLOCK);
	T_ASSERT(caps & SVGA_CAP_EXTENDED_FIFO);
	T_ASSERT(caps & SVGA_CAP_IRQMASK);
	T_ASSERT(caps & SVGA_CAP_GMR2);
	T_ASSERT(caps & SVGA_CAP_SCREEN_OBJECT_2);
	T_ASSERT(caps & SVGA_CAP_ALPHA_CURSOR);
	T_ASSERT(!(caps & 0x01000000u));           /* no command buffers */
	T_ASSERT(!(caps & 0x08000000u));           /* no GB objects */
	T_EQ_U64(svt_rd(t, SVGA_REG_VRAM_SIZE), 32u << 20);
	T_EQ_U64(svt_rd(t, SVGA_REG_MEM_SIZE), 2u << 20);
	T_EQ_U64(svt_rd(t, SVGA_REG_MEM_REGS), 291);
	T_ASSERT(svt_rd(t, SVGA_REG_NUM_DISPLAYS) >= 1);
	T_ASSERT(svt_rd(t, SVGA_REG_GMR_MAX_IDS) > 0);
	T_ASSERT(svt_rd(t, SVGA_REG_GMRS_MAX_PAGES) > 0);
	T_EQ_U64(svt_rd(t, SVGA_REG_MAX_WIDTH), 2560);
	T_EQ_U64(svt_rd(t, SVGA_REG_MAX_HEIGHT), 1600);
	T_EQ_U64(svt_rd(t, SVGA_REG_DEPTH), 24);
	T_EQ_U64(svt_rd(t, SVGA_REG_FB_START), SVT_VRAM);
	T_EQ_U64(svt_rd(t, SVGA_REG_MEM_START), SVT_FIFO);
	/* FIFO capability words are there before CONFIG_DONE (6.1's pitchlock check). */
	T_ASSERT(svt_fr(t, SVGA_FIFO_CAPABILITIES) & SVGA_FIFO_CAP_PITCHLOCK);
	T_ASSERT(svt_fr(t, SVGA_FIFO_CAPABILITIES) & SVGA_FIFO_CAP_FENCE);
	T_EQ_U64(svt_fr(t, SVGA_FIFO_CURSOR_SCREEN_ID), SVGA_ID_INVALID);

	/* Out-of-range mode registers are refused. */
	svt_wr(t, SVGA_REG_WIDTH, 100000);
	T_EQ_U64(svt_rd(t, SVGA_REG_WIDTH), 1024);
	svt_wr(t, SVGA_REG_BITS_PER_PIXEL, 7);
	T_EQ_U64(svt_rd(t, SVGA_REG_BITS_PER_PIXEL), 32);
	/* Pitch follows PITCHLOCK. */
	svt_wr(t, SVGA_REG_PITCHLOCK, 8192);
	T_EQ_U64(svt_rd(t, SVGA_REG_BYTES_PER_LINE), 8192);
	svt_wr(t, SVGA_REG_PITCHLOCK, 0);
	T_EQ_U64(svt_rd(t, SVGA_REG_BYTES_PER_LINE), 4096);

	/* IRQ status is write-1-to-clear; nothing pending at reset. */
	T_EQ_U64(devtest_in(t, SVT_IO + SVGA_IRQSTATUS_PORT, 4), 0);
	svt_wr(t, SVGA_REG_IRQMASK, 0xFFFFFFFF);
	T_EQ_U64(svt_rd(t, SVGA_REG_IRQMASK), SVGA_IRQFLAG_MASK);
	svt_wr(t, SVGA_REG_IRQMASK, 0);
	/* Scratch and palette registers hold values. */
	svt_wr(t, SVGA_SCRATCH_BASE + 3, 0xCAFE);
	T_EQ_U64(svt_rd(t, SVGA_SCRATCH_BASE + 3), 0xCAFE);
	T_EQ_U64(svt_rd(t, SVGA_REG_SCRATCH_SIZE), SVGA_SCRATCH_SIZE);
	/* BUSY with the FIFO off reads 0 (never a lockup). */
	T_EQ_U64(svt_rd(t, SVGA_REG_BUSY), 0);
}

struct px_req {
	uint32_t x, y, w, h, px;
};

static void frame_px(void *opaque, const struct mks_frame *f)
{
	struct px_req *r = opaque;

	r->w = f->width;
	r->h = f->height;
	r->px = (f->pixels && r->x < f->width && r->y < f->height) ?
	        f->pixels[(size_t)r->y * f->stride_px + r->x] : 0xDEADBEEF;
}

static uint32_t shadow_px(struct devtest *t, uint32_t x, uint32_t y, uint32_t *w, uint32_t *h)
{
	struct px_req r = { x, y, 0, 0, 0 };

	T_EQ_U64(mks_with_frame(mks_of(t->vm), frame_px, &r), 0);
	*w = r.w;
	*h = r.h;
	return r.px;
}

/* Legacy GFB: ENABLE + WIDTH/HEIGHT, pixels written through BAR1. */
static void test_legacy(struct devtest *t)
{
	uint32_t w, h;

	svt_wr(t, SVGA_REG_WIDTH, 800);
	svt_wr(t, SVGA_REG_HEIGHT, 600);
	svt_wr(t, SVGA_REG_ENABLE, 1);
	T_EQ_U64(svt_rd(t, SVGA_REG_BYTES_PER_LINE), 3200);
	T_EQ_U64(svt_rd(t, SVGA_REG_FB_SIZE), 3200 * 600);
	devtest_mmio_write(t, SVT_VRAM + 10 * 3200 + 20 * 4, 4, 0x00123456);
	devtest_mmio_write(t, SVT_VRAM + 599 * 3200 + 799 * 4, 4, 0x00ABCDEF);
	T_EQ_U64(devtest_mmio_read(t, SVT_VRAM + 10 * 3200 + 20 * 4, 4), 0x00123456);
	/* Without the FIFO the MKS polls the GFB. */
	T_EQ_U64(shadow_px(t, 20, 10, &w, &h), 0x00123456);
	T_EQ_U64(w, 800);
	T_EQ_U64(h, 600);
	T_EQ_U64(shadow_px(t, 799, 599, &w, &h), 0x00ABCDEF);

	/* A 6.1 LDU-style mode change with pitchlock. */
	svt_wr(t, SVGA_REG_PITCHLOCK, 1024 * 4);
	svt_wr(t, SVGA_REG_WIDTH, 1000);
	svt_wr(t, SVGA_REG_HEIGHT, 700);
	devtest_mmio_write(t, SVT_VRAM + 5 * 4096 + 999 * 4, 4, 0x00FF00FF);
	T_EQ_U64(shadow_px(t, 999, 5, &w, &h), 0x00FF00FF);
	T_EQ_U64(w, 1000);

	/* A mode bigger than VRAM is not shown (and nothing breaks). */
	svt_wr(t, SVGA_REG_PITCHLOCK, 0x10000000);
	T_EQ_U64(svt_rd(t, SVGA_REG_ENABLE), 1);
	svt_wr(t, SVGA_REG_PITCHLOCK, 0);
	svt_wr(t, SVGA_REG_ENABLE, 0);
}

/* Run the class's init directly so the error text can be checked. */
static void expect_config_error(const char *vmx, const char *needle)
{
	struct devtest *t = devtest_new(vmx);
	unsigned n;
	const struct vdev_class *const *cls = vdev_classes(&n);
	char err[512] = "";
	struct vdev d;

	if (!t) {
		T_FAIL("devtest_new(%s)", vmx);
		return;
	}
	T_EQ_U64(devtest_add(t, "pci"), 0);
	for (unsigned i = 0; i < n; i++) {
		if (strcmp(cls[i]->name, "svga") != 0)
			continue;
		memset(&d, 0, sizeof(d));
		d.cls = cls[i];
		d.vm = t->vm;
		T_ASSERT(cls[i]->present(t->vm));
		T_ASSERT(cls[i]->init(&d, err, sizeof(err)) != 0);
		T_CONTAINS(err, needle);
	}
	devtest_free(t);
}

static void test_config(void)
{
	struct devtest *t;

	expect_config_error("svga.vramSize = \"1000\"\n", "svga.vramSize");
	expect_config_error("svga.vramSize = \"16777217\"\n", "svga.vramSize");
	expect_config_error("svga.vramSize = \"lots\"\n", "svga.vramSize");
	expect_config_error("svga.maxWidth = \"99999\"\n", "svga.maxWidth");
	expect_config_error("svga.maxHeight = \"10\"\n", "svga.maxHeight");
	expect_config_error("svga.present = \"maybe\"\n", "svga.present");

	/* svga.present = FALSE: no device. */
	t = devtest_new("svga.present = \"FALSE\"\n");
	T_ASSERT(t != NULL);
	if (t) {
		T_EQ_U64(devtest_add(t, "pci"), 0);
		T_EQ_U64(devtest_add(t, "svga"), 1);
		devtest_free(t);
	}
	/* Good values are used. */
	t = svt_new("svga.vramSize = \"67108864\"\nsvga.maxWidth = \"3840\"\n"
	            "svga.maxHeight = \"2160\"\n");
	T_ASSERT(t != NULL);
	if (t) {
		T_EQ_U64(svt_rd(t, SVGA_REG_VRAM_SIZE), 64u << 20);
		T_EQ_U64(svt_rd(t, SVGA_REG_MAX_WIDTH), 3840);
		T_EQ_U64(svt_rd(t, SVGA_REG_MAX_HEIGHT), 2160);
		devtest_free(t);
	}
}

int main(void)
{
	struct devtest *t;

	vlog_set_stderr_level(VLOG_ERROR);
	t = svt_new(NULL);
	if (!t) {
		fprintf(stderr, "test_svga_regs: cannot build the VM\n");
		return 1;
	}
	T_ASSERT(mks_of(t->vm) != NULL);
	test_pci(t);
	test_regs(t);
	if (mks_of(t->vm))
		test_legacy(t);
	devtest_free(t);
	test_config();
	return T_DONE();
}
