/*
 * vga_priv.h — state shared by vga.c (registers, memory, VBE) and
 * vga_render.c (mode decoding, text and planar rendering).  Not for other
 * devices: they use vga.h.
 */
#ifndef VIREO_VGA_PRIV_H
#define VIREO_VGA_PRIV_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../mks/mks.h"
#include "../lock.h"
#include "vga.h"

/* Bochs VBE "dispi" registers (index port 0x1CE, data port 0x1CF). */
#define VBE_PORT_INDEX       0x1CE
#define VBE_IDX_ID           0x0
#define VBE_IDX_XRES         0x1
#define VBE_IDX_YRES         0x2
#define VBE_IDX_BPP          0x3
#define VBE_IDX_ENABLE       0x4
#define VBE_IDX_BANK         0x5
#define VBE_IDX_VIRT_WIDTH   0x6
#define VBE_IDX_VIRT_HEIGHT  0x7
#define VBE_IDX_X_OFFSET     0x8
#define VBE_IDX_Y_OFFSET     0x9
#define VBE_IDX_VIDEO_MEM64K 0xA
#define VBE_NREGS            0xB

#define VBE_ID0              0xB0C0
#define VBE_ID5              0xB0C5
#define VBE_ENABLED          0x01
#define VBE_GETCAPS          0x02
#define VBE_8BIT_DAC         0x20
#define VBE_LFB_ENABLED      0x40
#define VBE_NOCLEARMEM       0x80

#define VBE_MAX_XRES         8192
#define VBE_MAX_YRES         8192
#define VBE_MAX_BPP          32

/* What the screen shows, decoded from the registers. */
enum vga_kind {
	VGA_K_BLANK = 0,
	VGA_K_TEXT,
	VGA_K_PLANAR,     /* 16 colours from four planes, rendered into fb */
	VGA_K_DIRECT,     /* a scanout straight into VRAM (256 colours, VBE 8/15/16/32) */
	VGA_K_VBE24,      /* VBE 24 bpp, converted into fb */
};

struct vga_mode {
	enum vga_kind kind;
	uint32_t width, height;          /* pixels */
	/* text */
	uint32_t cols, rows, cw, ch;
	uint32_t line_cells;             /* cells per text row in memory */
	uint32_t start;                  /* text/planar: plane offset; direct/24: VRAM byte */
	uint32_t cursor;                 /* plane offset of the cursor cell */
	uint8_t cur_start, cur_end;      /* cursor scan lines; cur_start > cur_end: none */
	uint8_t font_sel;                /* SR03 */
	uint8_t ar10;
	/* planar / direct */
	uint32_t stride;                 /* planar: plane bytes per line; direct: VRAM bytes */
	uint32_t plane_limit;            /* planar: plane offsets wrap here (power of two) */
	enum mks_format format;
};

struct vga {
	struct vmx_vm *vm;
	struct mks *mks;
	uint8_t *vram;
	size_t vram_size;
	struct vmx_mutex lock;
	struct vmx_timer *timer;
	bool active;
	bool pio_claimed, vbe_claimed, mmio_claimed;

	/* ---- VGA registers ---- */
	uint8_t misc, fcr, st01;
	uint8_t sr_index, sr[8];
	uint8_t gr_index, gr[16];
	uint8_t ar_index, ar[0x15];
	bool ar_flip;                    /* next 0x3C0 write is data */
	uint8_t cr_index, cr[0x40];
	uint8_t dac_state, dac_read, dac_write, dac_sub, dac_cache[3], pel_mask;
	uint8_t palette[768];            /* as written: 6 bits, or 8 with VBE_8BIT_DAC */
	uint32_t latch;

	/* ---- VBE ---- */
	uint16_t vbe_index;
	uint16_t vbe[VBE_NREGS];
	uint32_t vbe_line_offset;        /* bytes per line in VRAM */
	uint32_t vbe_start;              /* VRAM byte of the visible top-left pixel */
	uint32_t bank_offset;            /* bytes added to 0xA0000 accesses (map 1) */

	/* ---- change tracking (under lock) ---- */
	uint64_t vram_gen;               /* any VRAM write through the window */
	/* The same count for the MKS thread, which reads it without the lock:
	 * the engine's dirty log does not see these host-side stores. */
	atomic_uint host_writes;
	int (*dirty)(void *opaque, const uint8_t *base, size_t len, uint64_t *bitmap);
	void *dirty_opaque;
	uint64_t font_gen;               /* writes to plane 2 */
	uint64_t pal_gen;                /* DAC or attribute palette */
	uint32_t frame;                  /* timer ticks: blink phases */

	/* ---- what the MKS was given (vga_render.c) ---- */
	struct vga_mode cur;             /* the mode last rendered */
	bool cur_valid;
	struct mks_scanout so;
	bool so_set;                     /* so is the MKS's scanout */
	bool so_disabled;                /* we told the MKS "no picture" */
	uint32_t *fb;                    /* text/planar/24-bpp pixels, XRGB8888 */
	uint32_t fb_w, fb_h;
	uint32_t *cells;                 /* text: what each cell shows now (key) */
	uint32_t ncells;
	uint64_t drawn_font_gen, drawn_pal_gen, drawn_vram_gen;
	struct mks_rect *dmg;            /* text: per-row damage scratch */
};

/* vga_render.c; called with v->lock held. */
void vga_render_refresh(struct vga *v);
void vga_render_free(struct vga *v);
/* 0x00RRGGBB of DAC entry i, honouring the DAC width. */
uint32_t vga_dac_rgb(const struct vga *v, unsigned i);

#endif
