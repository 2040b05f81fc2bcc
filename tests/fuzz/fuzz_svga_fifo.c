/*
 * fuzz_svga_fifo.c — the SVGA II FIFO command decoder.  Each input becomes a
 * run of FIFO commands committed the way a guest would (in one go or a few
 * dwords at a time, across the wrap point), with SYNC and BUSY accesses in
 * between, against a device with a mapped GMR and a defined screen.
 * Nothing may crash, hang, read or write outside guest RAM / VRAM, or trip
 * the lock-rank checker.
 *
 * Input: [stop offset lo][stop hi][irq mask] then records
 *        [sel] [n] [n * 4 body bytes]
 * sel < 0xF0 picks a known command ID (so the decoder is reached), else the
 * first body dword is the raw ID; bit 7 of n publishes NEXT_CMD and SYNCs
 * right after this record (partial commits), bit 6 reads BUSY instead.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mks/mks.h"
#include "tests/svga/svgatest.h"
#include "vmx/log.h"
#include "vmx/mem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_RING_MIN 4096u
#define FZ_RING_MAX (4096u + 65536u)

static const uint32_t fz_ids[] = {
	SVGA_CMD_UPDATE, SVGA_CMD_RECT_COPY, SVGA_CMD_RECT_ROP_COPY, SVGA_CMD_DEFINE_CURSOR,
	SVGA_CMD_DEFINE_ALPHA_CURSOR, SVGA_CMD_UPDATE_VERBOSE, SVGA_CMD_FRONT_ROP_FILL,
	SVGA_CMD_FENCE, SVGA_CMD_ESCAPE, SVGA_CMD_DEFINE_SCREEN, SVGA_CMD_DESTROY_SCREEN,
	SVGA_CMD_DEFINE_GMRFB, SVGA_CMD_BLIT_GMRFB_TO_SCREEN, SVGA_CMD_BLIT_SCREEN_TO_GMRFB,
	SVGA_CMD_ANNOTATION_FILL, SVGA_CMD_ANNOTATION_COPY, SVGA_CMD_DEFINE_GMR2,
	SVGA_CMD_REMAP_GMR2, SVGA_CMD_NOP, SVGA_CMD_NOP_ERROR, 1041, 0,
};

static struct devtest *fz_vm(void)
{
	static struct devtest *t;

	if (t)
		return t;
	vlog_set_stderr_level(VLOG_ERROR);
	t = svt_new("memsize = \"16\"\nsvga.vramSize = \"8388608\"\n");
	if (!t)
		abort();
	return t;
}

/* The state a 6.1 guest has after modeset: GMR 1 over 4 pages, screen 0. */
static void fz_prologue(struct devtest *t, uint32_t stop, uint32_t mask)
{
	struct svga *s = devtest_priv(t, "svga");
	static const uint32_t setup[] = {
		SVGA_CMD_DEFINE_GMR2, 1, 4,
		SVGA_CMD_REMAP_GMR2, 1, SVGA_REMAP_GMR2_PPN64, 0, 4, 0x300, 0, 0x301, 0, 0x250, 0,
		0x251, 0,
		SVGA_CMD_DEFINE_SCREEN, 44, 0, SVGA_SCREEN_HAS_ROOT | SVGA_SCREEN_IS_PRIMARY,
		640, 480, 0, 0, SVGA_GMR_FRAMEBUFFER, 0x10000, 640 * 4, 0,
		SVGA_CMD_DEFINE_GMRFB, 1, 0, 256, 32 | 24 << 8,
	};

	vmx_mutex_lock(&s->lock);
	svga_fifo_reset(s);
	vmx_mutex_unlock(&s->lock);
	svt_wr(t, SVGA_REG_ENABLE, 1);
	svt_fw(t, SVGA_FIFO_MIN, FZ_RING_MIN);
	svt_fw(t, SVGA_FIFO_MAX, FZ_RING_MAX);
	svt_fw(t, SVGA_FIFO_NEXT_CMD, stop);
	svt_fw(t, SVGA_FIFO_STOP, stop);
	svt_fw(t, SVGA_FIFO_BUSY, 0);
	svt_wr(t, SVGA_REG_CONFIG_DONE, 1);
	svt_wr(t, SVGA_REG_IRQMASK, mask);
	svt_cmd(t, setup, sizeof(setup) / 4);
}

static void fz_frame(void *opaque, const struct mks_frame *f)
{
	(void)opaque;
	(void)f;
}

static void fz_publish(struct devtest *t, uint32_t next)
{
	svt_fw(t, SVGA_FIFO_NEXT_CMD, next);
	svt_fw(t, SVGA_FIFO_BUSY, 1);
	svt_wr(t, SVGA_REG_SYNC, 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct devtest *t = fz_vm();
	static unsigned runs;
	uint32_t stop, next, budget = FZ_RING_MAX - FZ_RING_MIN - 64;
	size_t i = 3;

	if (size < 3)
		return 0;
	stop = FZ_RING_MIN + (((uint32_t)data[0] | (uint32_t)data[1] << 8) * 4u) %
	                     (FZ_RING_MAX - FZ_RING_MIN);
	fz_prologue(t, stop, data[2]);
	next = svt_fr(t, SVGA_FIFO_NEXT_CMD);
	while (i + 2 <= size) {
		uint8_t sel = data[i], n = data[i + 1];
		size_t words = n & 0x3F;
		uint32_t w;

		i += 2;
		if (sel < 0xF0) {
			w = fz_ids[sel % (sizeof(fz_ids) / sizeof(fz_ids[0]))];
			if (4 * (size_t)(words + 1) > budget)
				break;
			next = svt_put(t, next, &w, 1);
			budget -= 4;
		}
		for (size_t k = 0; k < words && i + 4 <= size; k++, i += 4) {
			if (4 > budget)
				break;
			memcpy(&w, data + i, 4);
			next = svt_put(t, next, &w, 1);
			budget -= 4;
		}
		if (n & 0x80)
			fz_publish(t, next);
		if (n & 0x40)
			(void)svt_rd(t, SVGA_REG_BUSY);
	}
	fz_publish(t, next);
	(void)svt_rd(t, SVGA_REG_BUSY);
	devtest_out(t, SVT_IO + SVGA_IRQSTATUS_PORT, 4, 0xFFFFFFFF);
	/* Let the MKS consume what the device reported now and then. */
	if (++runs % 32 == 0 && mks_of(t->vm))
		mks_with_frame(mks_of(t->vm), fz_frame, NULL);
	return 0;
}
