/*
 * fuzz_vga.c — access streams to the legacy VGA and Bochs VBE (vmx/dev/vga.c):
 * every VGA port at every width, the 0xA0000-0xBFFFF window, the VBE
 * index/data ports, direct VRAM writes (the linear framebuffer), activation
 * changes, and refreshes that render and hand scanouts to the real MKS,
 * which then copies from them.  VRAM is an odd size so that any scanout or
 * banked access past its end trips ASan.  Nothing may crash or trip the
 * lock-rank checker.
 *
 * Input: records of 6 bytes  [op] [a0] [a1] [v0] [v1] [v2].
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mks/mks.h"
#include "tests/devices/devtest.h"
#include "vmx/dev/vga.h"
#include "vmx/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* 256 KiB planes + 64 KiB + 12 bytes: not a power of two, not 64 KiB-aligned */
#define FZ_VRAM_SIZE (VGA_MIN_VRAM + 0x10000 + 12)

static const uint16_t fz_hot_ports[] = {
	0x3C0, 0x3C0, 0x3C1, 0x3C4, 0x3C5, 0x3C5, 0x3CE, 0x3CF, 0x3CF, 0x3D4, 0x3D5, 0x3D5,
	0x3DA, 0x3C8, 0x3C9, 0x3C7, 0x3C2, 0x3B4, 0x3B5, 0x3BA, 0x1CE, 0x1CF, 0x1D0,
};

static struct devtest *fz_vm(void)
{
	static struct devtest *t;

	if (t)
		return t;
	vlog_set_stderr_level(VLOG_ERROR);
	t = devtest_new("memsize = \"4\"\n");
	if (!t || devtest_add(t, "mks") != 0 || !mks_of(t->vm))
		abort();
	return t;
}

static void fz_sum(void *opaque, const struct mks_frame *f)
{
	uint32_t *acc = opaque;

	for (uint32_t y = 0; y < f->height; y += 7)
		*acc += f->pixels[(size_t)y * f->stride_px + (y % f->width)];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t *vram;
	struct devtest *t = fz_vm();
	struct vga *v;
	char err[256];
	unsigned refreshes = 0;
	uint32_t acc = 0;

	if (!vram && !(vram = malloc(FZ_VRAM_SIZE)))
		abort();
	memset(vram, 0, FZ_VRAM_SIZE);
	v = vga_create(t->vm, vram, FZ_VRAM_SIZE, err, sizeof(err));
	if (!v)
		abort();

	for (size_t i = 0; i + 6 <= size; i += 6) {
		const uint8_t *r = data + i;
		unsigned op = r[0] & 7, wsel = (r[0] >> 3) & 3;
		unsigned width = 1u << wsel;               /* 1, 2, 4, 8 */
		uint64_t val = r[3] | ((uint64_t)r[4] << 8) | ((uint64_t)r[5] << 16) |
		               ((uint64_t)r[3] << 24) | ((uint64_t)r[4] << 56);
		uint16_t port;

		if (r[0] & 0x80)
			port = fz_hot_ports[r[1] % (sizeof(fz_hot_ports) / sizeof(fz_hot_ports[0]))];
		else
			port = (uint16_t)(0x3B0 + r[1] % 0x30);
		switch (op) {
		case 0:
			devtest_out(t, port, width > 4 ? 1 : width, val);
			break;
		case 1:
			(void)devtest_in(t, port, width > 4 ? 2 : width);
			break;
		case 2:
			devtest_mmio_write(t, 0xA0000 + ((r[1] | (r[2] << 8) | ((r[0] >> 5) & 1) << 16) & 0x1ffff),
			                   width, val);
			break;
		case 3:
			(void)devtest_mmio_read(t, 0xA0000 + ((r[1] | (r[2] << 8) | ((r[0] >> 5) & 1) << 16) & 0x1ffff),
			                        width);
			break;
		case 4:
			devtest_out(t, 0x1CE, 2, r[1] % 12);
			devtest_out(t, 0x1CF, 2, r[3] | (r[4] << 8));
			break;
		case 5:
			/* rendering is the expensive part: a few per input */
			if (refreshes++ < 3)
				vga_refresh(v);
			break;
		case 6:
			vga_set_active(v, r[1] & 1);
			break;
		default:
			vram[(r[1] | (r[2] << 8) | ((size_t)r[5] << 16)) % FZ_VRAM_SIZE] = r[3];
			break;
		}
	}
	vga_set_active(v, true);
	vga_refresh(v);
	mks_with_frame(mks_of(t->vm), fz_sum, &acc);
	vga_destroy(v);
	/* the MKS must not keep a scanout into the VRAM we reuse */
	mks_scanout_disable(mks_of(t->vm));
	return (int)(acc & 0);
}
