/*
 * svga.c — VMware SVGA II (PCI 15AD:0405 at 00:0f.0): PCI function,
 * registers, IRQ, configuration and what the MKS shows.
 *
 * BARs: BAR0 16 I/O ports (index, value, BIOS, IRQ status), BAR1 VRAM
 * (svga.vramSize, default 32 MiB: 1920x1080x32 double-buffered plus the
 * Screen Object backing store), BAR2 the 2 MiB FIFO.  VRAM and FIFO are host
 * buffers mapped into the guest as RAM (pci_bar.ram): frame buffer writes and
 * FIFO commands never exit; the MMIO handlers below serve only callers that
 * bypass the engine.
 *
 * Where the FIFO is processed: synchronously on the vCPU that writes
 * SVGA_REG_SYNC or reads SVGA_REG_BUSY, with a budget of commands so one
 * exit never runs long; whatever is left, and everything the guest commits
 * without a SYNC (6.1 only syncs when it won the FIFO[BUSY] 0->1 race, and
 * cursor bypass 3 never syncs), is picked up by a 16 ms loop timer that runs
 * while the FIFO is enabled.  One device lock serialises both.  Synchronous
 * processing keeps fence latency at one exit; the timer bounds the rest.
 *
 * Output: while SVGA_REG_ENABLE is 0 the VGA (vga.c) owns the MKS.  When
 * enabled, the MKS scans out the primary Screen Object's backing store in
 * VRAM (Screen Object mode, what 6.1 uses) or, with no screens defined, the
 * legacy GFB at VRAM offset 0 with WIDTH/HEIGHT/BPP/PITCHLOCK (polled until
 * the FIFO runs, then driven by SVGA_CMD_UPDATE damage).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "../config.h"
#include "../device.h"
#include "../log.h"
#include "../loop.h"
#include "../vm.h"
#include "../../mks/mks.h"
#include "svga.h"
#include "vga.h"

/*
 * mks/ and vga.c are written in parallel with this file: reference them
 * weakly so the device links (and runs headless) before they exist.
 */
#pragma weak mks_of
#pragma weak mks_scanout_set
#pragma weak mks_scanout_disable
#pragma weak mks_cursor_move
#pragma weak vga_create
#pragma weak vga_set_active
#pragma weak vga_destroy
#pragma weak vga_set_dirty_source
#pragma weak vga_host_writes

static int svga_vram_dirty(void *opaque, const uint8_t *base, size_t len, uint64_t *bitmap);

#define SVGA_TICK_NS (16ull * 1000 * 1000)
#define SVGA_SYNC_BUDGET 512

static const uint32_t svga_caps =
	SVGA_CAP_RECT_COPY | SVGA_CAP_CURSOR | SVGA_CAP_CURSOR_BYPASS | SVGA_CAP_CURSOR_BYPASS_2 |
	SVGA_CAP_ALPHA_CURSOR | SVGA_CAP_EXTENDED_FIFO | SVGA_CAP_PITCHLOCK | SVGA_CAP_IRQMASK |
	SVGA_CAP_GMR | SVGA_CAP_GMR2 | SVGA_CAP_SCREEN_OBJECT_2;

struct mks *svga_mks(struct svga *s)
{
	if (!s->mks && mks_of)
		s->mks = mks_of(s->vm);
	return s->mks;
}

/* ---- IRQ ---- */

void svga_update_irq(struct svga *s)
{
	pci_set_irq(&s->pci, (s->irq_status & s->irq_mask) != 0);
}

void svga_raise_irq(struct svga *s, uint32_t flags)
{
	flags &= s->irq_mask;
	if (!flags)
		return;
	s->irq_status |= flags;
	svga_update_irq(s);
}

/* ---- scanout ---- */

static uint32_t svga_bytes_pp(uint32_t bpp)
{
	return bpp == 8 ? 1 : bpp == 16 ? 2 : 4;
}

uint32_t svga_gfb_pitch(const struct svga *s)
{
	uint32_t pl = 0;

	if (s->fifo_w && s->fifo_w[SVGA_FIFO_MIN] > 4 * SVGA_FIFO_PITCHLOCK)
		pl = __atomic_load_n(&s->fifo_w[SVGA_FIFO_PITCHLOCK], __ATOMIC_RELAXED);
	if (!pl)
		pl = s->pitchlock;
	if (!pl)
		pl = s->width * svga_bytes_pp(s->bpp);
	return pl;
}

static void svga_vga_active(struct svga *s, bool active)
{
	if (s->vga && vga_set_active)
		vga_set_active(s->vga, active);
}

static int svga_pick_screen(const struct svga *s)
{
	int best = -1;

	for (int i = 0; i < SVGA_MAX_SCREENS; i++) {
		const struct svga_screen *sc = &s->screens[i];
		if (!sc->defined)
			continue;
		if (sc->flags & SVGA_SCREEN_IS_PRIMARY)
			return i;
		if (best < 0 || (sc->root_x == 0 && sc->root_y == 0 &&
		                 (s->screens[best].root_x || s->screens[best].root_y)))
			best = i;
	}
	return best;
}

void svga_update_scanout(struct svga *s)
{
	struct mks *m = svga_mks(s);
	struct mks_scanout so;
	int kind = 0, screen = -1;

	memset(&so, 0, sizeof(so));
	if (!(s->enable & 1)) {
		if (s->scanout_kind != 0 || !s->scanout_disabled) {
			s->scanout_kind = 0;
			s->scanout_disabled = true;
			if (s->vga)
				svga_vga_active(s, true);
			else if (m)
				mks_scanout_disable(m);
		}
		return;
	}
	if (s->scanout_kind == 0)
		svga_vga_active(s, false);
	if (!(s->enable & 2)) {
		screen = svga_pick_screen(s);
		if (screen >= 0) {
			const struct svga_screen *sc = &s->screens[screen];
			if (!(sc->flags & (SVGA_SCREEN_DEACTIVATE | SVGA_SCREEN_BLANKING))) {
				kind = 2;
				so.base = s->vram + sc->offset;
				so.width = sc->width;
				so.height = sc->height;
				so.stride = sc->pitch;
				so.format = MKS_FMT_XRGB8888;
			}
		} else {
			uint32_t pitch = svga_gfb_pitch(s);
			uint64_t need = (uint64_t)pitch * s->height;
			if (s->width && s->height && pitch >= s->width * svga_bytes_pp(s->bpp) &&
			    need <= s->vram_size) {
				kind = 1;
				so.base = s->vram;
				so.width = s->width;
				so.height = s->height;
				so.stride = pitch;
				so.format = s->bpp == 8 ? MKS_FMT_PAL8 :
				            s->bpp == 16 ? MKS_FMT_RGB565 : MKS_FMT_XRGB8888;
				so.poll = !s->config_done;
				so.dirty = svga_vram_dirty;
				so.dirty_opaque = s;
				for (unsigned i = 0; i < 256; i++)
					so.palette[i] = (uint32_t)s->palette[3 * i] << 16 |
					                (uint32_t)s->palette[3 * i + 1] << 8 |
					                s->palette[3 * i + 2];
			} else {
				vlog_guest("svga: legacy mode %ux%u bpp %u pitch %u does not fit VRAM",
				           s->width, s->height, s->bpp, pitch);
			}
		}
	}
	s->scanout_kind = kind ? kind : 3;   /* 3: enabled, nothing shown */
	s->scanout_screen = screen;
	if (!m)
		return;
	if (kind) {
		if (mks_scanout_set(m, &so) != 0)
			vlog_guest("svga: MKS refused scanout %ux%u stride %u", so.width, so.height,
			           so.stride);
		s->scanout_disabled = false;
	} else {
		mks_scanout_disable(m);
		s->scanout_disabled = true;
	}
}

/* ---- FIFO wake-up ---- */

static void svga_arm_timer(struct svga *s)
{
	if (s->timer && !s->timer_armed) {
		s->timer_armed = true;
		vmx_timer_arm_in(s->timer, SVGA_TICK_NS);
	}
}

static bool svga_fifo_running(const struct svga *s)
{
	return (s->enable & 1) && s->config_done;
}

static void svga_tick(void *opaque)
{
	struct svga *s = opaque;

	vmx_mutex_lock(&s->lock);
	s->timer_armed = false;
	if (svga_fifo_running(s)) {
		if (svga_fifo_process(s, 4 * SVGA_SYNC_BUDGET))
			s->busy = false;
		svga_fifo_poll_cursor(s);
		svga_arm_timer(s);
	}
	vmx_mutex_unlock(&s->lock);
}

static void svga_sync(struct svga *s)
{
	if (!svga_fifo_running(s)) {
		s->busy = false;
		return;
	}
	s->busy = true;
	if (svga_fifo_process(s, SVGA_SYNC_BUDGET))
		s->busy = false;
	svga_arm_timer(s);
}

/* ---- registers ---- */

static uint32_t svga_depth(uint32_t bpp)
{
	return bpp == 32 ? 24 : bpp;
}

static uint32_t svga_reg_read(struct svga *s, uint32_t idx)
{
	switch (idx) {
	case SVGA_REG_ID: return s->id;
	case SVGA_REG_ENABLE: return s->enable;
	case SVGA_REG_WIDTH: return s->width;
	case SVGA_REG_HEIGHT: return s->height;
	case SVGA_REG_MAX_WIDTH: return s->max_width;
	case SVGA_REG_MAX_HEIGHT: return s->max_height;
	case SVGA_REG_DEPTH: return svga_depth(s->bpp);
	case SVGA_REG_BITS_PER_PIXEL: return s->bpp;
	case SVGA_REG_HOST_BITS_PER_PIXEL: return s->bpp;
	case SVGA_REG_PSEUDOCOLOR: return s->bpp == 8;
	case SVGA_REG_RED_MASK: return s->bpp == 16 ? 0xF800 : s->bpp == 8 ? 0 : 0xFF0000;
	case SVGA_REG_GREEN_MASK: return s->bpp == 16 ? 0x07E0 : s->bpp == 8 ? 0 : 0x00FF00;
	case SVGA_REG_BLUE_MASK: return s->bpp == 16 ? 0x001F : s->bpp == 8 ? 0 : 0x0000FF;
	case SVGA_REG_BYTES_PER_LINE: return svga_gfb_pitch(s);
	case SVGA_REG_FB_START: return (uint32_t)pci_bar_addr(&s->pci, 1);
	case SVGA_REG_FB_OFFSET: return 0;
	case SVGA_REG_VRAM_SIZE: return s->vram_size;
	case SVGA_REG_FB_SIZE: {
		uint64_t sz = (uint64_t)svga_gfb_pitch(s) * s->height;
		return sz > s->vram_size ? s->vram_size : (uint32_t)sz;
	}
	case SVGA_REG_CAPABILITIES: return svga_caps;
	case SVGA_REG_MEM_START: return (uint32_t)pci_bar_addr(&s->pci, 2);
	case SVGA_REG_MEM_SIZE: return s->fifo_size;
	case SVGA_REG_CONFIG_DONE: return s->config_done;
	case SVGA_REG_SYNC: return 0;
	case SVGA_REG_BUSY:
		/* VMware: a BUSY read may process commands itself; 6.1 spins on it. */
		if (s->busy && svga_fifo_running(s) && svga_fifo_process(s, SVGA_SYNC_BUDGET))
			s->busy = false;
		if (!svga_fifo_running(s))
			s->busy = false;
		return s->busy;
	case SVGA_REG_GUEST_ID: return s->guest_id;
	case SVGA_REG_CURSOR_X: return s->cursor_x;
	case SVGA_REG_CURSOR_Y: return s->cursor_y;
	case SVGA_REG_CURSOR_ON: return s->cursor_on;
	case SVGA_REG_SCRATCH_SIZE: return SVGA_SCRATCH_SIZE;
	case SVGA_REG_MEM_REGS: return SVGA_FIFO_NUM_REGS;
	case SVGA_REG_NUM_DISPLAYS: return 1;
	case SVGA_REG_PITCHLOCK: return s->pitchlock;
	case SVGA_REG_IRQMASK: return s->irq_mask;
	case SVGA_REG_DISPLAY_ID: return s->display_id;
	case SVGA_REG_GMR_MAX_IDS: return SVGA_GMR_MAX_IDS;
	case SVGA_REG_GMR_MAX_DESCRIPTOR_LENGTH: return 0;
	case SVGA_REG_TRACES: return s->traces;
	case SVGA_REG_GMRS_MAX_PAGES:
		return s->gmr_pages_limit > UINT32_MAX ? UINT32_MAX : (uint32_t)s->gmr_pages_limit;
	case SVGA_REG_MEMORY_SIZE: return s->vram_size;   /* no host surfaces without 3D */
	default:
		break;
	}
	if (idx >= SVGA_PALETTE_BASE && idx < SVGA_PALETTE_BASE + 768)
		return s->palette[idx - SVGA_PALETTE_BASE];
	if (idx >= SVGA_SCRATCH_BASE && idx < SVGA_SCRATCH_BASE + SVGA_SCRATCH_SIZE)
		return s->scratch[idx - SVGA_SCRATCH_BASE];
	return 0;
}

static void svga_cursor_regs_changed(struct svga *s)
{
	struct mks *m = svga_mks(s);

	if (m)
		mks_cursor_move(m, (int32_t)s->cursor_x, (int32_t)s->cursor_y, s->cursor_on == 1);
}

static void svga_reg_write(struct svga *s, uint32_t idx, uint32_t v)
{
	switch (idx) {
	case SVGA_REG_ID:
		if ((v >> 8) == (SVGA_ID_0 >> 8))
			s->id = v > SVGA_ID_2 ? SVGA_ID_2 : v;
		else
			vlog_guest("svga: bad ID request 0x%x", v);
		return;
	case SVGA_REG_ENABLE: {
		uint32_t old = s->enable;
		s->enable = v & 3;
		if ((old ^ s->enable) & 1)
			s->busy = false;
		svga_update_scanout(s);
		if (svga_fifo_running(s))
			svga_arm_timer(s);
		return;
	}
	case SVGA_REG_WIDTH:
	case SVGA_REG_HEIGHT: {
		uint32_t max = idx == SVGA_REG_WIDTH ? s->max_width : s->max_height;
		if (v == 0 || v > max) {
			vlog_guest("svga: %s %u out of range (max %u)",
			           idx == SVGA_REG_WIDTH ? "WIDTH" : "HEIGHT", v, max);
			return;
		}
		if (idx == SVGA_REG_WIDTH)
			s->width = v;
		else
			s->height = v;
		svga_update_scanout(s);
		return;
	}
	case SVGA_REG_BITS_PER_PIXEL:
		if (v != 8 && v != 16 && v != 32) {
			vlog_guest("svga: unsupported BITS_PER_PIXEL %u", v);
			return;
		}
		s->bpp = v;
		svga_update_scanout(s);
		return;
	case SVGA_REG_CONFIG_DONE:
		s->config_done = v & 1;
		if (s->config_done)
			svga_sync(s);
		svga_update_scanout(s);
		return;
	case SVGA_REG_SYNC:
		svga_sync(s);
		return;
	case SVGA_REG_GUEST_ID:
		s->guest_id = v;
		return;
	case SVGA_REG_CURSOR_X:
		s->cursor_x = v;
		svga_cursor_regs_changed(s);
		return;
	case SVGA_REG_CURSOR_Y:
		s->cursor_y = v;
		svga_cursor_regs_changed(s);
		return;
	case SVGA_REG_CURSOR_ON:
		s->cursor_on = v;
		svga_cursor_regs_changed(s);
		return;
	case SVGA_REG_PITCHLOCK:
		s->pitchlock = v;
		svga_update_scanout(s);
		return;
	case SVGA_REG_IRQMASK:
		s->irq_mask = v & SVGA_IRQFLAG_MASK;
		svga_update_irq(s);
		return;
	case SVGA_REG_TRACES:
		s->traces = v & 1;
		return;
	case SVGA_REG_DISPLAY_ID:
		s->display_id = v;
		return;
	case SVGA_REG_NUM_GUEST_DISPLAYS:
	case SVGA_REG_DISPLAY_IS_PRIMARY:
	case SVGA_REG_DISPLAY_POSITION_X:
	case SVGA_REG_DISPLAY_POSITION_Y:
	case SVGA_REG_DISPLAY_WIDTH:
	case SVGA_REG_DISPLAY_HEIGHT:
		return;   /* legacy topology: one display, nothing to do */
	default:
		break;
	}
	if (idx >= SVGA_PALETTE_BASE && idx < SVGA_PALETTE_BASE + 768) {
		s->palette[idx - SVGA_PALETTE_BASE] = (uint8_t)v;
		if (s->bpp == 8 && s->scanout_kind == 1 && idx == SVGA_PALETTE_BASE + 767)
			svga_update_scanout(s);
		return;
	}
	if (idx >= SVGA_SCRATCH_BASE && idx < SVGA_SCRATCH_BASE + SVGA_SCRATCH_SIZE) {
		s->scratch[idx - SVGA_SCRATCH_BASE] = v;
		return;
	}
	vlog_guest("svga: write 0x%x to read-only or unknown register %u", v, idx);
}

/* ---- BAR0: ports ---- */

static uint64_t svga_io_read(void *opaque, uint64_t off, unsigned size)
{
	struct svga *s = opaque;
	uint32_t v = 0;

	vmx_mutex_lock(&s->lock);
	switch (off) {
	case SVGA_INDEX_PORT: v = s->index; break;
	case SVGA_VALUE_PORT: v = svga_reg_read(s, s->index); break;
	case SVGA_BIOS_PORT: v = s->bios; break;
	case SVGA_IRQSTATUS_PORT: v = s->irq_status; break;
	default: v = 0; break;
	}
	vmx_mutex_unlock(&s->lock);
	if (size < 4)
		v &= (1u << (8 * size)) - 1;
	return v;
}

static void svga_io_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct svga *s = opaque;
	uint32_t v = (uint32_t)val;

	vmx_mutex_lock(&s->lock);
	switch (off) {
	case SVGA_INDEX_PORT: s->index = v; break;
	case SVGA_VALUE_PORT: svga_reg_write(s, s->index, v); break;
	case SVGA_BIOS_PORT: s->bios = v; break;
	case SVGA_IRQSTATUS_PORT:
		s->irq_status &= ~v;
		svga_update_irq(s);
		break;
	default: break;
	}
	vmx_mutex_unlock(&s->lock);
}

static const struct iobus_ops svga_io_ops = {
	.read = svga_io_read, .write = svga_io_write,
	.widths = IOBUS_W1 | IOBUS_W2 | IOBUS_W4,
};

/*
 * BAR1/BAR2: plain memory (the engines map it as RAM; these handlers are
 * the path for device tests and a BAR left without a memory slot).  No
 * lock: the guest owns these bytes and the host copies what it needs
 * before using it.  Naturally aligned 4-byte
 * accesses are single atomic stores (FIFO words, the BUSY cmpxchg).
 */
static uint64_t svga_mem_rd(uint8_t *base, uint32_t len, uint64_t off, unsigned size)
{
	uint64_t v = 0;

	if (off >= len || size > len - off)
		return 0;
	if (size == 4 && !(off & 3))
		return __atomic_load_n((uint32_t *)(base + off), __ATOMIC_ACQUIRE);
	memcpy(&v, base + off, size);
	return v;
}

static void svga_mem_wr(uint8_t *base, uint32_t len, uint64_t off, unsigned size, uint64_t v)
{
	if (off >= len || size > len - off)
		return;
	if (size == 4 && !(off & 3)) {
		__atomic_store_n((uint32_t *)(base + off), (uint32_t)v, __ATOMIC_RELEASE);
		return;
	}
	memcpy(base + off, &v, size);
}

static uint64_t svga_vram_read(void *opaque, uint64_t off, unsigned size)
{
	struct svga *s = opaque;
	return svga_mem_rd(s->vram, s->vram_size, off, size);
}

static void svga_vram_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct svga *s = opaque;
	svga_mem_wr(s->vram, s->vram_size, off, size, val);
	svga_vram_host_write(s);
}

void svga_vram_host_write(struct svga *s)
{
	atomic_fetch_add_explicit(&s->vram_host_writes, 1, memory_order_release);
}

/*
 * The scanout's dirty source (struct mks_scanout.dirty), on the MKS thread:
 * the engine's log of BAR1, unless the device or the VGA stored into VRAM
 * since the last call.  The log is read first, so a store counted after
 * the count is read shows in the next call.
 */
static int svga_vram_dirty(void *opaque, const uint8_t *base, size_t len, uint64_t *bitmap)
{
	struct svga *s = opaque;

	if (base < s->vram || len > s->vram_size || (size_t)(base - s->vram) > s->vram_size - len)
		return -1;
	int rc = pci_bar_dirty(&s->pci, 1, (uint64_t)(base - s->vram), len, bitmap);
	unsigned hw = atomic_load_explicit(&s->vram_host_writes, memory_order_acquire) +
	              (vga_host_writes ? vga_host_writes(s->vga) : 0);
	if (hw != s->vram_host_seen) {
		s->vram_host_seen = hw;
		return -1;
	}
	return rc;
}

static uint64_t svga_fifo_read(void *opaque, uint64_t off, unsigned size)
{
	struct svga *s = opaque;
	return svga_mem_rd(s->fifo, s->fifo_size, off, size);
}

static void svga_fifo_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct svga *s = opaque;
	svga_mem_wr(s->fifo, s->fifo_size, off, size, val);
}

static const struct iobus_ops svga_vram_ops = {
	.read = svga_vram_read, .write = svga_vram_write,
	.widths = IOBUS_W1 | IOBUS_W2 | IOBUS_W4 | IOBUS_W8,
};

static const struct iobus_ops svga_fifo_ops = {
	.read = svga_fifo_read, .write = svga_fifo_write,
	.widths = IOBUS_W1 | IOBUS_W2 | IOBUS_W4 | IOBUS_W8,
};

/* ---- reset ---- */

static void svga_reset_locked(struct svga *s)
{
	s->index = 0;
	s->id = SVGA_ID_2;
	s->enable = 0;
	s->width = 1024;
	s->height = 768;
	s->bpp = 32;
	s->config_done = 0;
	s->guest_id = 0;
	s->pitchlock = 0;
	s->irq_mask = 0;
	s->irq_status = 0;
	s->traces = 0;
	s->cursor_x = s->cursor_y = s->cursor_on = 0;
	s->display_id = 0;
	s->bios = 0;
	s->busy = false;
	memset(s->scratch, 0, sizeof(s->scratch));
	memset(s->palette, 0, sizeof(s->palette));
	memset(s->fifo, 0, s->fifo_size);
	svga_fifo_reset(s);
	svga_fifo_init_regs(s);
	svga_update_irq(s);
	s->scanout_kind = -1;   /* force the VGA hand-over on the next update */
	svga_update_scanout(s);
}

static void svga_reset(struct vdev *dev)
{
	struct svga *s = dev->priv;

	vmx_mutex_lock(&s->lock);
	svga_reset_locked(s);
	vmx_mutex_unlock(&s->lock);
}

/* ---- config and lifetime ---- */

static bool svga_present(struct vmx_vm *vm)
{
	char err[256];
	bool on = true;

	/* A bad value still creates the device so that init reports it. */
	if (vmxcfg_get_bool(vm->cfg, "svga.present", true, &on, err, sizeof(err)) != 0)
		return true;
	return on;
}

static uint64_t svga_pow2(uint64_t v)
{
	uint64_t p = 1;

	while (p < v)
		p <<= 1;
	return p;
}

static void svga_free(struct svga *s)
{
	/*
	 * vm.c destroys devices in creation order, so the MKS (order 30) is
	 * gone by now: the VGA must not hand it a last "disable".
	 */
	if (s->vga && vga_set_active)
		vga_set_active(s->vga, false);
	if (s->vga && vga_destroy)
		vga_destroy(s->vga);
	if (s->timer)
		vmx_timer_free(s->timer);
	if (s->gmrs) {
		svga_fifo_reset(s);
		free(s->gmrs);
	}
	if (s->vram)
		munmap(s->vram, svga_pow2(s->vram_size));
	if (s->fifo)
		munmap(s->fifo, s->fifo_size);
	free(s->bounce);
	vmx_mutex_destroy(&s->lock);
	free(s);
}

static int svga_init(struct vdev *dev, char *err, size_t errlen)
{
	struct vmx_vm *vm = dev->vm;
	struct svga *s;
	bool on = true;
	uint64_t vram, mw, mh, bar1;

	if (vmxcfg_get_bool(vm->cfg, "svga.present", true, &on, err, errlen) != 0)
		return -1;
	if (vmxcfg_get_u64(vm->cfg, "svga.vramSize", SVGA_VRAM_DEFAULT, 4u << 20, 512u << 20,
	                   &vram, err, errlen) != 0 ||
	    vmxcfg_get_u64(vm->cfg, "svga.maxWidth", 2560, 640, MKS_MAX_WIDTH, &mw, err,
	                   errlen) != 0 ||
	    vmxcfg_get_u64(vm->cfg, "svga.maxHeight", 1600, 480, MKS_MAX_HEIGHT, &mh, err,
	                   errlen) != 0)
		return -1;
	if (vram & 0xFFF) {
		snprintf(err, errlen, "%s: svga.vramSize = \"%llu\": not a multiple of 4096",
		         vmxcfg_path(vm->cfg) ? vmxcfg_path(vm->cfg) : "config",
		         (unsigned long long)vram);
		return -1;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "svga: out of memory");
		return -1;
	}
	vmx_mutex_init(&s->lock, VMX_RANK_DEVICE, "svga");
	s->vm = vm;
	s->vram_size = (uint32_t)vram;
	s->fifo_size = SVGA_FIFO_SIZE;
	s->max_width = (uint32_t)mw;
	s->max_height = (uint32_t)mh;
	bar1 = svga_pow2(vram);
	s->vram = mmap(NULL, bar1, PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	s->fifo = mmap(NULL, s->fifo_size, PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (s->vram == MAP_FAILED)
		s->vram = NULL;
	if (s->fifo == MAP_FAILED)
		s->fifo = NULL;
	s->fifo_w = (uint32_t *)s->fifo;
	s->bounce = malloc(s->fifo_size);
	s->gmrs = calloc(SVGA_GMR_MAX_IDS, sizeof(*s->gmrs));
	if (!s->vram || !s->fifo || !s->bounce || !s->gmrs) {
		snprintf(err, errlen, "svga: cannot allocate %llu bytes of VRAM",
		         (unsigned long long)vram);
		svga_free(s);
		return -1;
	}
	/* Soft budget (6.1 grows past it); the hard cap keeps host memory bounded. */
	s->gmr_pages_limit = vm->mem.ram_size >> SVGA_PAGE_SHIFT;
	if (s->gmr_pages_limit < 0x10000)
		s->gmr_pages_limit = 0x10000;
	s->pci = (struct pci_dev){
		.name = "svga", .vendor_id = SVGA_PCI_VENDOR, .device_id = SVGA_PCI_DEVICE,
		.subsys_vendor_id = SVGA_PCI_VENDOR, .subsys_id = SVGA_PCI_DEVICE,
		.class_code = 0x030000, .irq_pin = 1, .opaque = s,
		.bars = {
			[0] = { .size = 16, .flags = PCI_BAR_IO, .ops = &svga_io_ops, .opaque = s },
			[1] = { .size = bar1, .flags = PCI_BAR_PREFETCH, .ops = &svga_vram_ops,
			        .opaque = s, .ram = s->vram, .log_dirty = true },
			[2] = { .size = s->fifo_size, .ops = &svga_fifo_ops, .opaque = s,
			        .ram = s->fifo },
		},
	};
	if (vm->loop)
		s->timer = vmx_timer_new(vm->loop, VMX_CLOCK_REAL, svga_tick, s);
	if (vga_create) {
		s->vga = vga_create(vm, s->vram, s->vram_size, err, errlen);
		if (!s->vga) {
			svga_free(s);
			return -1;
		}
		if (vga_set_dirty_source)
			vga_set_dirty_source(s->vga, svga_vram_dirty, s);
	}
	if (pci_register(vm, &s->pci, SVGA_PCI_SLOT, 0, err, errlen) != 0) {
		svga_free(s);
		return -1;
	}
	dev->priv = s;
	vmx_mutex_lock(&s->lock);
	svga_reset_locked(s);
	vmx_mutex_unlock(&s->lock);
	vlog_info("svga: VRAM %u KiB, FIFO %u KiB, max %ux%u", s->vram_size >> 10,
	          s->fifo_size >> 10, s->max_width, s->max_height);
	return 0;
}

static int svga_start(struct vdev *dev, char *err, size_t errlen)
{
	struct svga *s = dev->priv;

	/* The MKS may have been created after us: hand it the current picture. */
	vmx_mutex_lock(&s->lock);
	if (svga_mks(s) && s->scanout_kind != 0)
		svga_update_scanout(s);
	vmx_mutex_unlock(&s->lock);
	return 0;
}

static void svga_destroy(struct vdev *dev)
{
	struct svga *s = dev->priv;

	if (!s)
		return;
	pci_unregister(&s->pci);
	svga_free(s);
	dev->priv = NULL;
}

static const struct vdev_class svga_class = {
	.name = "svga",
	.order = 60,
	.present = svga_present,
	.init = svga_init,
	.reset = svga_reset,
	.destroy = svga_destroy,
	.start = svga_start,
};

VDEV_REGISTER(svga_class)
