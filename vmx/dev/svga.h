/*
 * svga.h — the VMware SVGA II display device (PCI 15AD:0405), 2D stages A+B
 * of shared/spec/svga.md: registers, the FIFO with its capability block,
 * Screen Objects, GMR2, fences and IRQs, pitchlock, alpha cursor and cursor
 * bypass 3.  svga.c owns the PCI function, registers and the scanout;
 * svga_fifo.c decodes the FIFO and runs the 2D commands.
 *
 * The struct is shared by the two .c files, the device tests and the FIFO
 * fuzzer; nothing else should reach into it.
 */
#ifndef VIREO_SVGA_H
#define VIREO_SVGA_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../lock.h"
#include "../pci.h"

struct vmx_vm;
struct vmx_timer;
struct mks;
struct vga;

/* ---- device constants (svga_reg.h values, see the spec) ---- */
#define SVGA_PCI_VENDOR      0x15AD
#define SVGA_PCI_DEVICE      0x0405
#define SVGA_PCI_SLOT        15

#define SVGA_ID_0            0x90000000u
#define SVGA_ID_1            0x90000001u
#define SVGA_ID_2            0x90000002u
#define SVGA_ID_INVALID      0xFFFFFFFFu

/* BAR0 port offsets */
#define SVGA_INDEX_PORT      0
#define SVGA_VALUE_PORT      1
#define SVGA_BIOS_PORT       2
#define SVGA_IRQSTATUS_PORT  8

enum svga_reg {
	SVGA_REG_ID = 0, SVGA_REG_ENABLE = 1, SVGA_REG_WIDTH = 2, SVGA_REG_HEIGHT = 3,
	SVGA_REG_MAX_WIDTH = 4, SVGA_REG_MAX_HEIGHT = 5, SVGA_REG_DEPTH = 6,
	SVGA_REG_BITS_PER_PIXEL = 7, SVGA_REG_PSEUDOCOLOR = 8, SVGA_REG_RED_MASK = 9,
	SVGA_REG_GREEN_MASK = 10, SVGA_REG_BLUE_MASK = 11, SVGA_REG_BYTES_PER_LINE = 12,
	SVGA_REG_FB_START = 13, SVGA_REG_FB_OFFSET = 14, SVGA_REG_VRAM_SIZE = 15,
	SVGA_REG_FB_SIZE = 16, SVGA_REG_CAPABILITIES = 17, SVGA_REG_MEM_START = 18,
	SVGA_REG_MEM_SIZE = 19, SVGA_REG_CONFIG_DONE = 20, SVGA_REG_SYNC = 21,
	SVGA_REG_BUSY = 22, SVGA_REG_GUEST_ID = 23, SVGA_REG_DEAD = 24,
	SVGA_REG_CURSOR_X = 25, SVGA_REG_CURSOR_Y = 26, SVGA_REG_CURSOR_ON = 27,
	SVGA_REG_HOST_BITS_PER_PIXEL = 28, SVGA_REG_SCRATCH_SIZE = 29, SVGA_REG_MEM_REGS = 30,
	SVGA_REG_NUM_DISPLAYS = 31, SVGA_REG_PITCHLOCK = 32, SVGA_REG_IRQMASK = 33,
	SVGA_REG_NUM_GUEST_DISPLAYS = 34, SVGA_REG_DISPLAY_ID = 35,
	SVGA_REG_DISPLAY_IS_PRIMARY = 36, SVGA_REG_DISPLAY_POSITION_X = 37,
	SVGA_REG_DISPLAY_POSITION_Y = 38, SVGA_REG_DISPLAY_WIDTH = 39,
	SVGA_REG_DISPLAY_HEIGHT = 40, SVGA_REG_GMR_ID = 41, SVGA_REG_GMR_DESCRIPTOR = 42,
	SVGA_REG_GMR_MAX_IDS = 43, SVGA_REG_GMR_MAX_DESCRIPTOR_LENGTH = 44,
	SVGA_REG_TRACES = 45, SVGA_REG_GMRS_MAX_PAGES = 46, SVGA_REG_MEMORY_SIZE = 47,
	SVGA_REG_TOP = 85,
	SVGA_PALETTE_BASE = 1024,
	SVGA_SCRATCH_BASE = 1024 + 768,
};
#define SVGA_SCRATCH_SIZE    64

/* SVGA_REG_CAPABILITIES */
#define SVGA_CAP_RECT_COPY        0x00000002u
#define SVGA_CAP_CURSOR           0x00000020u
#define SVGA_CAP_CURSOR_BYPASS    0x00000040u
#define SVGA_CAP_CURSOR_BYPASS_2  0x00000080u
#define SVGA_CAP_ALPHA_CURSOR     0x00000200u
#define SVGA_CAP_EXTENDED_FIFO    0x00008000u
#define SVGA_CAP_PITCHLOCK        0x00020000u
#define SVGA_CAP_IRQMASK          0x00040000u
#define SVGA_CAP_GMR              0x00100000u
#define SVGA_CAP_GMR2             0x00400000u
#define SVGA_CAP_SCREEN_OBJECT_2  0x00800000u

/* FIFO[CAPABILITIES] */
#define SVGA_FIFO_CAP_FENCE            0x001u
#define SVGA_FIFO_CAP_PITCHLOCK        0x004u
#define SVGA_FIFO_CAP_CURSOR_BYPASS_3  0x010u
#define SVGA_FIFO_CAP_RESERVE          0x040u
#define SVGA_FIFO_CAP_SCREEN_OBJECT    0x080u
#define SVGA_FIFO_CAP_GMR2             0x100u
#define SVGA_FIFO_CAP_SCREEN_OBJECT_2  0x200u

/* FIFO register words */
enum svga_fifo_reg {
	SVGA_FIFO_MIN = 0, SVGA_FIFO_MAX = 1, SVGA_FIFO_NEXT_CMD = 2, SVGA_FIFO_STOP = 3,
	SVGA_FIFO_CAPABILITIES = 4, SVGA_FIFO_FLAGS = 5, SVGA_FIFO_FENCE = 6,
	SVGA_FIFO_3D_HWVERSION = 7, SVGA_FIFO_PITCHLOCK = 8, SVGA_FIFO_CURSOR_ON = 9,
	SVGA_FIFO_CURSOR_X = 10, SVGA_FIFO_CURSOR_Y = 11, SVGA_FIFO_CURSOR_COUNT = 12,
	SVGA_FIFO_CURSOR_LAST_UPDATED = 13, SVGA_FIFO_RESERVED = 14,
	SVGA_FIFO_CURSOR_SCREEN_ID = 15, SVGA_FIFO_DEAD = 16,
	SVGA_FIFO_3D_HWVERSION_REVISED = 17, SVGA_FIFO_3D_CAPS = 32,
	SVGA_FIFO_GUEST_3D_HWVERSION = 288, SVGA_FIFO_FENCE_GOAL = 289, SVGA_FIFO_BUSY = 290,
	SVGA_FIFO_NUM_REGS = 291,
};

/* IRQ flags */
#define SVGA_IRQFLAG_ANY_FENCE      0x1u
#define SVGA_IRQFLAG_FIFO_PROGRESS  0x2u
#define SVGA_IRQFLAG_FENCE_GOAL     0x4u
#define SVGA_IRQFLAG_MASK           0x3Fu

/* 2D FIFO commands */
enum svga_cmd {
	SVGA_CMD_INVALID_CMD = 0, SVGA_CMD_UPDATE = 1, SVGA_CMD_RECT_COPY = 3,
	SVGA_CMD_RECT_ROP_COPY = 14, SVGA_CMD_DEFINE_CURSOR = 19,
	SVGA_CMD_DEFINE_ALPHA_CURSOR = 22, SVGA_CMD_UPDATE_VERBOSE = 25,
	SVGA_CMD_FRONT_ROP_FILL = 29, SVGA_CMD_FENCE = 30, SVGA_CMD_ESCAPE = 33,
	SVGA_CMD_DEFINE_SCREEN = 34, SVGA_CMD_DESTROY_SCREEN = 35,
	SVGA_CMD_DEFINE_GMRFB = 36, SVGA_CMD_BLIT_GMRFB_TO_SCREEN = 37,
	SVGA_CMD_BLIT_SCREEN_TO_GMRFB = 38, SVGA_CMD_ANNOTATION_FILL = 39,
	SVGA_CMD_ANNOTATION_COPY = 40, SVGA_CMD_DEFINE_GMR2 = 41, SVGA_CMD_REMAP_GMR2 = 42,
	SVGA_CMD_NOP = 45, SVGA_CMD_NOP_ERROR = 46,
};

#define SVGA_GMR_NULL         0xFFFFFFFFu
#define SVGA_GMR_FRAMEBUFFER  0xFFFFFFFEu

#define SVGA_REMAP_GMR2_VIA_GMR    0x1u
#define SVGA_REMAP_GMR2_PPN64      0x2u
#define SVGA_REMAP_GMR2_SINGLE_PPN 0x4u

#define SVGA_SCREEN_HAS_ROOT    0x01u
#define SVGA_SCREEN_IS_PRIMARY  0x02u
#define SVGA_SCREEN_DEACTIVATE  0x08u
#define SVGA_SCREEN_BLANKING    0x10u

/* ---- limits of this implementation ---- */
#define SVGA_MAX_SCREENS      8          /* 6.1 uses up to 8 display units */
#define SVGA_GMR_MAX_IDS      8192
#define SVGA_CURSOR_MAX       256        /* MKS cursor limit */
#define SVGA_FIFO_SIZE        (2u << 20) /* 2 MiB, as VMware desktop and VBox */
#define SVGA_VRAM_DEFAULT     (32u << 20)
#define SVGA_PAGE_SHIFT       12
#define SVGA_PPN_INVALID      UINT64_MAX

struct svga_screen {
	bool defined;
	uint32_t flags;
	uint32_t width, height;
	int32_t root_x, root_y;
	uint32_t offset;         /* backing store: byte offset in VRAM */
	uint32_t pitch;
};

struct svga_gmr {
	uint32_t npages;
	uint64_t *ppn;           /* npages entries; SVGA_PPN_INVALID = not mapped */
};

struct svga {
	struct vmx_vm *vm;
	struct pci_dev pci;
	struct vmx_mutex lock;   /* everything below; FIFO/VRAM bytes are racy by nature */

	/* configuration */
	uint32_t vram_size, fifo_size;
	uint32_t max_width, max_height;
	uint8_t *vram;           /* BAR1 backing (mmap) */
	uint8_t *fifo;           /* BAR2 backing */
	uint32_t *fifo_w;        /* same, as words */

	/* registers */
	uint32_t index;
	uint32_t id;
	uint32_t enable;
	uint32_t width, height, bpp;
	uint32_t config_done;
	uint32_t guest_id;
	uint32_t pitchlock;
	uint32_t irq_mask, irq_status;
	uint32_t traces;
	uint32_t cursor_x, cursor_y, cursor_on;
	uint32_t display_id;
	uint32_t bios;
	uint32_t scratch[SVGA_SCRATCH_SIZE];
	uint8_t palette[768];

	/* FIFO state */
	bool busy;               /* SVGA_REG_BUSY: work outstanding since the last SYNC */
	uint32_t fifo_cursor_count;
	uint32_t last_fence;
	uint8_t *bounce;         /* one command, gathered across the wrap point */
	uint64_t cmds_done, cmds_bad;

	/* 2D state */
	struct svga_screen screens[SVGA_MAX_SCREENS];
	struct { uint32_t gmr, offset, bpl, format; } gmrfb;
	struct svga_gmr *gmrs;   /* SVGA_GMR_MAX_IDS entries */
	uint64_t gmr_pages;      /* sum of npages */
	uint64_t gmr_pages_limit;

	/* output */
	struct mks *mks;
	struct vga *vga;
	int scanout_kind;        /* 0 none, 1 legacy GFB, 2 screen object */
	int scanout_screen;
	bool scanout_disabled;
	struct vmx_timer *timer;
	bool timer_armed;

	/* Poll scanouts compare only the VRAM pages the engine logged as
	 * written; stores the device makes itself (FIFO commands, the MMIO
	 * path) are counted here instead, and make the MKS compare everything. */
	atomic_uint vram_host_writes;
	unsigned vram_host_seen;     /* MKS thread only (svga_vram_dirty) */
};

/* ---- svga.c ---- */
/* Re-evaluate the INTx line from irq_status & irq_mask (lock held). */
void svga_update_irq(struct svga *s);
/* Latch IRQ flags (only those enabled in the mask) and update the line (lock held). */
void svga_raise_irq(struct svga *s, uint32_t flags);
/* Recompute what the MKS shows after a mode, enable or screen change (lock held). */
void svga_update_scanout(struct svga *s);
/* The MKS, or NULL while there is none (lock held). */
struct mks *svga_mks(struct svga *s);
/* A store by the device into VRAM (any thread): see vram_host_writes. */
void svga_vram_host_write(struct svga *s);
/* Legacy GFB pitch in bytes. */
uint32_t svga_gfb_pitch(const struct svga *s);

/* ---- svga_fifo.c ---- */
/*
 * Process committed FIFO commands, at most `budget` of them.  Returns true
 * when the ring was drained (lock held).  Safe on any guest-written state.
 */
bool svga_fifo_process(struct svga *s, unsigned budget);
/* Poll cursor bypass 3 (lock held). */
void svga_fifo_poll_cursor(struct svga *s);
/* Write the host-owned FIFO words (caps, versions) — at reset and before CONFIG_DONE. */
void svga_fifo_init_regs(struct svga *s);
/* Drop every GMR, screen and the GMRFB (reset, destroy). */
void svga_fifo_reset(struct svga *s);
/*
 * Read/write guest memory through a GMR (or VRAM for SVGA_GMR_FRAMEBUFFER);
 * 0, or -1 when any byte is outside the region or not guest RAM.
 */
int svga_gmr_read(struct svga *s, uint32_t gmr, uint64_t off, void *buf, size_t len);
int svga_gmr_write(struct svga *s, uint32_t gmr, uint64_t off, const void *buf, size_t len);

#endif
