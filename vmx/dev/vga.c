/*
 * vga.c — legacy VGA registers, planar VGA memory and the Bochs VBE
 * ("dispi") interface of the SVGA II device (see vga.h).
 *
 * Memory: the four 64 KiB planes are interleaved in the first 256 KiB of
 * VRAM, plane p of offset o at byte 4*o+p (as chain-4 addresses it), so
 * mode 13h and the VBE modes are linear in VRAM and can be scanned out in
 * place.  Odd/even (text) accesses put the character of cell k in plane 0
 * and its attribute in plane 1, both at offset k; the BIOS loads fonts into
 * plane 2 in planar mode, which the text renderer reads back.
 *
 * Every register and window access runs on a vCPU thread under v->lock and
 * only updates state; mode changes and text updates reach the MKS from
 * vga_refresh() (a 30 Hz loop timer), so a BIOS programming sixty registers
 * for one mode set produces one scanout change, not sixty.
 *
 * Nothing the guest writes is trusted: indices are masked, VBE geometry is
 * clamped so that every scanout and banked access stays inside vram_size.
 */
#include "vga.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../iobus.h"
#include "../log.h"
#include "../loop.h"
#include "../vm.h"
#include "vga_priv.h"

/* A host-side store into VRAM (lock held): the render timer redraws, and
 * the MKS, which may be comparing only the pages the engine saw written,
 * compares everything once. */
static void vga_vram_written(struct vga *v)
{
	v->vram_gen++;
	atomic_store_explicit(&v->host_writes,
	                      atomic_load_explicit(&v->host_writes, memory_order_relaxed) + 1,
	                      memory_order_release);
}

#define VGA_PORT_BASE  0x3B0
#define VGA_PORT_LEN   0x30
#define VGA_MEM_BASE   0xA0000ull
#define VGA_MEM_LEN    0x20000ull
#define VGA_TICK_NS    33333333ull

/* 4-bit mask -> one 0xff byte per set bit (plane enable masks). */
static uint32_t vga_expand4(unsigned m)
{
	uint32_t r = 0;

	for (unsigned p = 0; p < 4; p++)
		if (m & (1u << p))
			r |= 0xffu << (8 * p);
	return r;
}

/* ---------------------------------------------------------------- memory */

/*
 * Map a window offset (0..0x1FFFF from 0xA0000) to an address in the
 * selected memory map; false when the map does not decode it.
 */
static bool vga_mem_decode(const struct vga *v, uint32_t off, uint32_t *addr)
{
	switch ((v->gr[6] >> 2) & 3) {
	case 0:
		*addr = off;
		return true;
	case 1:
		if (off >= 0x10000)
			return false;
		*addr = off + v->bank_offset;
		return true;
	case 2:
		if (off < 0x10000 || off >= 0x18000)
			return false;
		*addr = off - 0x10000;
		return true;
	default:
		if (off < 0x18000)
			return false;
		*addr = off - 0x18000;
		return true;
	}
}

static uint8_t vga_mem_readb(struct vga *v, uint32_t off)
{
	uint32_t addr;

	if (!vga_mem_decode(v, off, &addr))
		return 0xff;
	if (v->sr[4] & 0x08) {
		/* chain-4: byte addressing straight into the interleaved planes */
		return addr < v->vram_size ? v->vram[addr] : 0xff;
	}
	if (v->gr[5] & 0x10) {
		/* odd/even: A0 picks plane 0/1 (or 2/3 with the page bit of GR04) */
		unsigned plane = (v->gr[4] & 2) | (addr & 1);
		uint64_t b = ((uint64_t)(addr & ~1u) << 1) | plane;
		return b < v->vram_size ? v->vram[b] : 0xff;
	}
	if ((uint64_t)addr * 4 + 4 > v->vram_size)
		return 0xff;
	memcpy(&v->latch, v->vram + (size_t)addr * 4, 4);
	if (!(v->gr[5] & 0x08))
		return (uint8_t)(v->latch >> (8 * (v->gr[4] & 3)));
	/* read mode 1: colour compare against GR02 on the planes GR07 cares about */
	uint32_t diff = (v->latch ^ vga_expand4(v->gr[2] & 0xf)) & vga_expand4(v->gr[7] & 0xf);
	diff |= diff >> 16;
	diff |= diff >> 8;
	return (uint8_t)~diff;
}

static void vga_mem_writeb(struct vga *v, uint32_t off, uint8_t val)
{
	uint32_t addr;

	if (!vga_mem_decode(v, off, &addr))
		return;
	if (v->sr[4] & 0x08) {
		unsigned plane = addr & 3;
		if ((v->sr[2] & (1u << plane)) && addr < v->vram_size) {
			v->vram[addr] = val;
			vga_vram_written(v);
			if (plane == 2)
				v->font_gen++;
		}
		return;
	}
	if (!(v->sr[4] & 0x04)) {
		/* odd/even (text) */
		unsigned plane = (v->gr[4] & 2) | (addr & 1);
		uint64_t b = ((uint64_t)(addr & ~1u) << 1) | plane;
		if ((v->sr[2] & (1u << plane)) && b < v->vram_size) {
			v->vram[b] = val;
			vga_vram_written(v);
			if (plane == 2)
				v->font_gen++;
		}
		return;
	}
	if ((uint64_t)addr * 4 + 4 > v->vram_size)
		return;

	uint32_t data, bit_mask, cur;
	unsigned rot = v->gr[3] & 7;
	uint8_t b = val;

	switch (v->gr[5] & 3) {
	case 0:
		b = (uint8_t)((b >> rot) | (b << ((8 - rot) & 7)));
		data = b * 0x01010101u;
		{
			uint32_t sr_en = vga_expand4(v->gr[1] & 0xf);
			data = (data & ~sr_en) | (vga_expand4(v->gr[0] & 0xf) & sr_en);
		}
		bit_mask = v->gr[8];
		break;
	case 1:
		/* write mode 1: the latches go back unchanged */
		data = v->latch;
		bit_mask = 0xff;
		goto store;
	case 2:
		data = vga_expand4(b & 0xf);
		bit_mask = v->gr[8];
		break;
	default:
		b = (uint8_t)((b >> rot) | (b << ((8 - rot) & 7)));
		bit_mask = v->gr[8] & b;
		data = vga_expand4(v->gr[0] & 0xf);
		break;
	}
	switch ((v->gr[3] >> 3) & 3) {
	case 1:
		data &= v->latch;
		break;
	case 2:
		data |= v->latch;
		break;
	case 3:
		data ^= v->latch;
		break;
	default:
		break;
	}
	bit_mask *= 0x01010101u;
	data = (data & bit_mask) | (v->latch & ~bit_mask);
store:;
	uint32_t wmask = vga_expand4(v->sr[2] & 0xf);
	memcpy(&cur, v->vram + (size_t)addr * 4, 4);
	cur = (cur & ~wmask) | (data & wmask);
	memcpy(v->vram + (size_t)addr * 4, &cur, 4);
	vga_vram_written(v);
	if (wmask & 0x00ff0000u)
		v->font_gen++;
}

static uint64_t vga_mem_read(void *opaque, uint64_t off, unsigned size)
{
	struct vga *v = opaque;
	uint64_t r = 0;

	vmx_mutex_lock(&v->lock);
	for (unsigned i = 0; i < size && i < 8; i++)
		r |= (uint64_t)vga_mem_readb(v, (uint32_t)((off + i) & 0x1ffff)) << (8 * i);
	vmx_mutex_unlock(&v->lock);
	return r;
}

static void vga_mem_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct vga *v = opaque;

	vmx_mutex_lock(&v->lock);
	for (unsigned i = 0; i < size && i < 8; i++)
		vga_mem_writeb(v, (uint32_t)((off + i) & 0x1ffff), (uint8_t)(val >> (8 * i)));
	vmx_mutex_unlock(&v->lock);
}

static const struct iobus_ops vga_mem_ops = {
	.read = vga_mem_read,
	.write = vga_mem_write,
	.widths = IOBUS_W1 | IOBUS_W2 | IOBUS_W4 | IOBUS_W8,
};

/* ----------------------------------------------------------------- ports */

/* The CRTC and status ports answer at 0x3Bx in mono, 0x3Dx in colour mode. */
static bool vga_port_decoded(const struct vga *v, uint16_t port)
{
	if (port >= 0x3B0 && port <= 0x3BF)
		return !(v->misc & 1);
	if (port >= 0x3D0 && port <= 0x3DF)
		return (v->misc & 1) != 0;
	return true;
}

static uint8_t vga_port_readb(struct vga *v, uint16_t port)
{
	if (!vga_port_decoded(v, port))
		return 0xff;
	switch (port) {
	case 0x3C0:
		return v->ar_index;
	case 0x3C1:
		return (v->ar_index & 0x1f) < sizeof(v->ar) ? v->ar[v->ar_index & 0x1f] : 0;
	case 0x3C2:
		return 0x00;   /* input status 0: no switch sense, no CRT interrupt */
	case 0x3C4:
		return v->sr_index;
	case 0x3C5:
		return v->sr_index < sizeof(v->sr) ? v->sr[v->sr_index] : 0;
	case 0x3C6:
		return v->pel_mask;
	case 0x3C7:
		return v->dac_state;
	case 0x3C8:
		return v->dac_write;
	case 0x3C9: {
		uint8_t val = v->palette[v->dac_read * 3u + v->dac_sub];
		if (++v->dac_sub == 3) {
			v->dac_sub = 0;
			v->dac_read++;
		}
		return val;
	}
	case 0x3CA:
		return v->fcr;
	case 0x3CC:
		return v->misc;
	case 0x3CE:
		return v->gr_index;
	case 0x3CF:
		return v->gr_index < 9 ? v->gr[v->gr_index] : 0;
	case 0x3B4:
	case 0x3D4:
		return v->cr_index;
	case 0x3B5:
	case 0x3D5:
		return v->cr_index < 0x19 ? v->cr[v->cr_index] : 0;
	case 0x3BA:
	case 0x3DA:
		/*
		 * Input status 1: walk through display / retrace phases on
		 * every read, so "wait for retrace" loops of both polarities end.
		 */
		v->ar_flip = false;
		v->st01 = (uint8_t)((v->st01 + 1) & 3);
		return (uint8_t)(((v->st01 & 1) ? 0x01 : 0) | ((v->st01 & 2) ? 0x09 : 0));
	default:
		return 0xff;
	}
}

static void vga_port_writeb(struct vga *v, uint16_t port, uint8_t val)
{
	if (!vga_port_decoded(v, port))
		return;
	switch (port) {
	case 0x3C0:
		if (!v->ar_flip) {
			v->ar_index = val & 0x3f;
		} else {
			unsigned i = v->ar_index & 0x1f;
			if (i < 0x10)
				v->ar[i] = val & 0x3f;
			else if (i < sizeof(v->ar))
				v->ar[i] = val;
			v->pal_gen++;
		}
		v->ar_flip = !v->ar_flip;
		break;
	case 0x3C2:
		v->misc = val;
		break;
	case 0x3C4:
		v->sr_index = val & 0x1f;
		break;
	case 0x3C5:
		if (v->sr_index < sizeof(v->sr))
			v->sr[v->sr_index] = val;
		break;
	case 0x3C6:
		v->pel_mask = val;
		break;
	case 0x3C7:
		v->dac_read = val;
		v->dac_sub = 0;
		v->dac_state = 3;
		break;
	case 0x3C8:
		v->dac_write = val;
		v->dac_sub = 0;
		v->dac_state = 0;
		break;
	case 0x3C9:
		v->dac_cache[v->dac_sub++] = val;
		if (v->dac_sub == 3) {
			memcpy(&v->palette[v->dac_write * 3u], v->dac_cache, 3);
			v->dac_sub = 0;
			v->dac_write++;
			v->pal_gen++;
		}
		break;
	case 0x3CE:
		v->gr_index = val & 0x0f;
		break;
	case 0x3CF:
		if (v->gr_index < 9)
			v->gr[v->gr_index] = val;
		break;
	case 0x3B4:
	case 0x3D4:
		v->cr_index = val & 0x3f;
		break;
	case 0x3B5:
	case 0x3D5:
		if (v->cr_index <= 7 && (v->cr[0x11] & 0x80)) {
			/* write-protected; only the line-compare bit of the overflow passes */
			if (v->cr_index == 7)
				v->cr[7] = (uint8_t)((v->cr[7] & ~0x10) | (val & 0x10));
		} else if (v->cr_index < 0x19) {
			v->cr[v->cr_index] = val;
		}
		break;
	case 0x3BA:
	case 0x3DA:
		v->fcr = val & 0x10;
		break;
	default:
		break;
	}
}

static uint64_t vga_pio_read(void *opaque, uint64_t off, unsigned size)
{
	struct vga *v = opaque;
	uint64_t r = 0;

	vmx_mutex_lock(&v->lock);
	for (unsigned i = 0; i < size && i < 4; i++)
		r |= (uint64_t)vga_port_readb(v, (uint16_t)(VGA_PORT_BASE + off + i)) << (8 * i);
	vmx_mutex_unlock(&v->lock);
	return r;
}

static void vga_pio_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct vga *v = opaque;

	/* outw 0x3C4, 0x0F02 is "index 2, data 0x0F": bytes in port order */
	vmx_mutex_lock(&v->lock);
	for (unsigned i = 0; i < size && i < 4; i++)
		vga_port_writeb(v, (uint16_t)(VGA_PORT_BASE + off + i), (uint8_t)(val >> (8 * i)));
	vmx_mutex_unlock(&v->lock);
}

static const struct iobus_ops vga_pio_ops = {
	.read = vga_pio_read,
	.write = vga_pio_write,
	.widths = IOBUS_W1 | IOBUS_W2 | IOBUS_W4,
};

/* ------------------------------------------------------------------- VBE */

static unsigned vbe_bytes_pp(unsigned bpp)
{
	return (bpp + 7) / 8;
}

static uint32_t vbe_bank_count(const struct vga *v)
{
	size_t n = v->vram_size >> 16;
	return n > 0xffff ? 0xffff : (uint32_t)n;
}

/*
 * Make the VBE geometry consistent and safe, as the guest can read back:
 * sizes within limits, the virtual screen within VRAM, the visible window
 * within the virtual screen (scanout base + stride * height inside VRAM).
 */
static void vbe_fixup(struct vga *v)
{
	uint16_t *r = v->vbe;
	unsigned bpp = r[VBE_IDX_BPP];

	if (bpp != 4 && bpp != 8 && bpp != 15 && bpp != 16 && bpp != 24 && bpp != 32)
		bpp = r[VBE_IDX_BPP] = 8;
	uint32_t xres = r[VBE_IDX_XRES] & ~7u, yres = r[VBE_IDX_YRES];
	if (xres < 8)
		xres = 8;
	if (xres > VBE_MAX_XRES)
		xres = VBE_MAX_XRES;
	if (yres < 1)
		yres = 1;
	if (yres > VBE_MAX_YRES)
		yres = VBE_MAX_YRES;

	uint32_t vw = r[VBE_IDX_VIRT_WIDTH];
	if (bpp == 4)
		vw &= ~7u;
	if (vw < xres)
		vw = xres;
	uint64_t lo = bpp == 4 ? vw / 2 : (uint64_t)vw * vbe_bytes_pp(bpp);
	if (lo * yres > v->vram_size) {
		/* the virtual width does not fit: fall back to the visible width */
		vw = xres;
		lo = bpp == 4 ? vw / 2 : (uint64_t)vw * vbe_bytes_pp(bpp);
	}
	if (lo * yres > v->vram_size) {
		/* the mode itself does not fit: shorten it (VRAM >= 256 KiB, lo <= 32 KiB) */
		yres = (uint32_t)(v->vram_size / lo);
		if (yres < 1)
			yres = 1;
	}
	uint64_t vh = v->vram_size / lo;
	if (vh > 0xffff)
		vh = 0xffff;

	uint32_t xo = r[VBE_IDX_X_OFFSET], yo = r[VBE_IDX_Y_OFFSET];
	if (bpp == 4)
		xo &= ~7u;
	if (xo > vw - xres)
		xo = vw - xres;
	if (yo > vh - yres)
		yo = (uint32_t)(vh - yres);
	uint64_t xbytes = bpp == 4 ? xo / 2 : (uint64_t)xo * vbe_bytes_pp(bpp);
	/* base + lo * yres must stay inside VRAM even with a horizontal offset */
	while (yo > 0 && (uint64_t)yo * lo + xbytes + lo * yres > v->vram_size)
		yo--;
	if ((uint64_t)yo * lo + xbytes + lo * yres > v->vram_size) {
		xo = 0;
		xbytes = 0;
	}

	r[VBE_IDX_XRES] = (uint16_t)xres;
	r[VBE_IDX_YRES] = (uint16_t)yres;
	r[VBE_IDX_VIRT_WIDTH] = (uint16_t)vw;
	r[VBE_IDX_VIRT_HEIGHT] = (uint16_t)vh;
	r[VBE_IDX_X_OFFSET] = (uint16_t)xo;
	r[VBE_IDX_Y_OFFSET] = (uint16_t)yo;
	v->vbe_line_offset = (uint32_t)lo;
	v->vbe_start = (uint32_t)((uint64_t)yo * lo + xbytes);
}

/* What the VGA registers say in a VBE mode, for banked access and for guests that read them. */
static void vbe_set_vga_compat(struct vga *v)
{
	unsigned bpp = v->vbe[VBE_IDX_BPP];

	v->gr[6] = (uint8_t)((v->gr[6] & ~0x0c) | 0x05);   /* graphics, 64 KiB at 0xA0000 */
	v->cr[0x17] |= 3;
	v->cr[0x13] = (uint8_t)(v->vbe_line_offset >> 3);
	if (bpp != 4) {
		v->sr[4] |= 0x08;                              /* chain-4 */
		v->gr[5] = (uint8_t)((v->gr[5] & ~0x60) | 0x40);
	}
	v->sr[2] = 0x0f;
}

static uint16_t vbe_read_data(struct vga *v)
{
	unsigned i = v->vbe_index;

	if (i >= VBE_NREGS)
		return 0;
	if (v->vbe[VBE_IDX_ENABLE] & VBE_GETCAPS) {
		if (i == VBE_IDX_XRES)
			return VBE_MAX_XRES;
		if (i == VBE_IDX_YRES)
			return VBE_MAX_YRES;
		if (i == VBE_IDX_BPP)
			return VBE_MAX_BPP;
	}
	if (i == VBE_IDX_VIDEO_MEM64K)
		return (uint16_t)vbe_bank_count(v);
	return v->vbe[i];
}

static void vbe_write_data(struct vga *v, uint16_t val)
{
	unsigned i = v->vbe_index;
	bool en = (v->vbe[VBE_IDX_ENABLE] & VBE_ENABLED) != 0;

	switch (i) {
	case VBE_IDX_ID:
		if (val >= VBE_ID0 && val <= VBE_ID5)
			v->vbe[VBE_IDX_ID] = val;
		break;
	case VBE_IDX_XRES:
	case VBE_IDX_YRES:
	case VBE_IDX_BPP:
	case VBE_IDX_VIRT_WIDTH:
	case VBE_IDX_X_OFFSET:
	case VBE_IDX_Y_OFFSET:
		v->vbe[i] = val;
		if (en) {
			vbe_fixup(v);
			vbe_set_vga_compat(v);
		}
		break;
	case VBE_IDX_BANK:
		/* out of range: keep the old bank, so the BIOS's read-back sees the failure */
		if (val < vbe_bank_count(v)) {
			v->vbe[VBE_IDX_BANK] = val;
			v->bank_offset = (uint32_t)val << 16;
		} else {
			vlog_guest("vga: VBE bank %u beyond %u KiB of VRAM", val,
			           (unsigned)(v->vram_size >> 10));
		}
		break;
	case VBE_IDX_ENABLE:
		val &= VBE_ENABLED | VBE_GETCAPS | VBE_8BIT_DAC | VBE_LFB_ENABLED | VBE_NOCLEARMEM;
		if ((val & VBE_ENABLED) && !en) {
			v->vbe[VBE_IDX_ENABLE] = val;
			v->vbe[VBE_IDX_VIRT_WIDTH] = 0;
			v->vbe[VBE_IDX_X_OFFSET] = 0;
			v->vbe[VBE_IDX_Y_OFFSET] = 0;
			vbe_fixup(v);
			if (!(val & VBE_NOCLEARMEM)) {
				uint64_t n = (uint64_t)v->vbe_line_offset * v->vbe[VBE_IDX_YRES];
				memset(v->vram, 0, n < v->vram_size ? (size_t)n : v->vram_size);
			}
			vbe_set_vga_compat(v);
			vga_vram_written(v);
		} else {
			v->vbe[VBE_IDX_ENABLE] = val;
			if (!(val & VBE_ENABLED)) {
				v->bank_offset = 0;
				v->vbe[VBE_IDX_BANK] = 0;
			}
		}
		v->pal_gen++;   /* the DAC width may have changed */
		break;
	default:
		break;   /* VIRT_HEIGHT, VIDEO_MEMORY_64K and unknown: read-only */
	}
}

static uint64_t vbe_pio_read(void *opaque, uint64_t off, unsigned size)
{
	struct vga *v = opaque;
	uint64_t r;

	vmx_mutex_lock(&v->lock);
	r = off == 0 ? v->vbe_index : vbe_read_data(v);
	vmx_mutex_unlock(&v->lock);
	return size == 1 ? (r & 0xff) : r;
}

static void vbe_pio_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct vga *v = opaque;

	vmx_mutex_lock(&v->lock);
	if (off == 0)
		v->vbe_index = (uint16_t)(size == 1 ? (val & 0xff) : val);
	else
		vbe_write_data(v, (uint16_t)(size == 1 ? (val & 0xff) : val));
	vmx_mutex_unlock(&v->lock);
}

static const struct iobus_ops vbe_pio_ops = {
	.read = vbe_pio_read,
	.write = vbe_pio_write,
	.widths = IOBUS_W1 | IOBUS_W2,
};

/* ------------------------------------------------------------- lifecycle */

/* Power-on state: colour text registers, screen blank until a BIOS programs a mode. */
static void vga_reset_regs(struct vga *v)
{
	v->misc = 0x01;
	v->sr[2] = 0x0f;
	v->sr[4] = 0x02;
	v->gr[5] = 0x10;
	v->gr[6] = 0x0e;            /* text at 0xB8000, odd/even chaining */
	v->gr[8] = 0xff;
	v->ar_index = 0x00;         /* palette address source off: blank until a BIOS sets a mode */
	v->ar[0x12] = 0x0f;
	v->pel_mask = 0xff;
	v->vbe[VBE_IDX_ID] = VBE_ID5;
	v->vbe[VBE_IDX_XRES] = 640;
	v->vbe[VBE_IDX_YRES] = 480;
	v->vbe[VBE_IDX_BPP] = 8;
}

static void vga_tick(void *opaque)
{
	struct vga *v = opaque;
	bool again;

	vmx_mutex_lock(&v->lock);
	v->frame++;
	if (v->active)
		vga_render_refresh(v);
	again = v->active;
	vmx_mutex_unlock(&v->lock);
	if (again)
		vmx_timer_arm_in(v->timer, VGA_TICK_NS);
}

struct vga *vga_create(struct vmx_vm *vm, uint8_t *vram, size_t vram_size,
                       char *err, size_t errlen)
{
	struct vga *v;

	if (!vm || !vram || vram_size < VGA_MIN_VRAM) {
		snprintf(err, errlen, "vga: VRAM of %zu bytes is below the %u the VGA needs",
		         vram_size, VGA_MIN_VRAM);
		return NULL;
	}
	v = calloc(1, sizeof(*v));
	if (!v) {
		snprintf(err, errlen, "vga: out of memory");
		return NULL;
	}
	v->vm = vm;
	v->vram = vram;
	v->vram_size = vram_size;
	v->mks = mks_of(vm);
	/* DEVICE+1: the SVGA device calls vga_set_active() holding its own lock */
	vmx_mutex_init(&v->lock, VMX_RANK_DEVICE + 1, "vga");
	vga_reset_regs(v);

	if (iobus_register(&vm->pio, VGA_PORT_BASE, VGA_PORT_LEN, &vga_pio_ops, v, "vga") != 0) {
		snprintf(err, errlen, "vga: ports 0x3B0-0x3DF are already claimed");
		goto fail;
	}
	v->pio_claimed = true;
	/* three ports: a 16-bit access to the data port 0x1CF spans 0x1D0 */
	if (iobus_register(&vm->pio, VBE_PORT_INDEX, 3, &vbe_pio_ops, v, "vga-vbe") != 0) {
		snprintf(err, errlen, "vga: VBE ports 0x1CE-0x1D0 are already claimed");
		goto fail;
	}
	v->vbe_claimed = true;
	if (iobus_register(&vm->mmio, VGA_MEM_BASE, VGA_MEM_LEN, &vga_mem_ops, v, "vga-mem") != 0) {
		snprintf(err, errlen, "vga: the window 0xA0000-0xBFFFF is already claimed");
		goto fail;
	}
	v->mmio_claimed = true;
	if (vm->loop) {
		v->timer = vmx_timer_new(vm->loop, VMX_CLOCK_REAL, vga_tick, v);
		if (!v->timer) {
			snprintf(err, errlen, "vga: cannot create its refresh timer");
			goto fail;
		}
	}
	vga_set_active(v, true);
	return v;
fail:
	vga_destroy(v);
	return NULL;
}

unsigned vga_host_writes(struct vga *v)
{
	return v ? atomic_load_explicit(&v->host_writes, memory_order_acquire) : 0;
}

void vga_set_dirty_source(struct vga *v, int (*fn)(void *opaque, const uint8_t *base, size_t len,
                                                  uint64_t *bitmap),
                          void *opaque)
{
	if (!v)
		return;
	vmx_mutex_lock(&v->lock);
	v->dirty = fn;
	v->dirty_opaque = opaque;
	v->so_set = false;   /* give the MKS the scanout again, with the source */
	vmx_mutex_unlock(&v->lock);
}

void vga_set_active(struct vga *v, bool active)
{
	if (!v)
		return;
	vmx_mutex_lock(&v->lock);
	bool was = v->active;
	v->active = active;
	if (active && !was) {
		/* the SVGA device had the scanout: give ours again from scratch */
		v->cur_valid = false;
		v->so_set = false;
		v->so_disabled = false;
		vga_render_refresh(v);
	}
	vmx_mutex_unlock(&v->lock);
	if (active && !was && v->timer)
		vmx_timer_arm_in(v->timer, VGA_TICK_NS);
}

void vga_refresh(struct vga *v)
{
	if (!v)
		return;
	vmx_mutex_lock(&v->lock);
	if (v->active)
		vga_render_refresh(v);
	vmx_mutex_unlock(&v->lock);
}

bool vga_vbe_enabled(struct vga *v)
{
	bool en;

	if (!v)
		return false;
	vmx_mutex_lock(&v->lock);
	en = (v->vbe[VBE_IDX_ENABLE] & VBE_ENABLED) != 0;
	vmx_mutex_unlock(&v->lock);
	return en;
}

void vga_destroy(struct vga *v)
{
	if (!v)
		return;
	if (v->timer)
		vmx_timer_free(v->timer);
	if (v->mmio_claimed)
		iobus_unregister(&v->vm->mmio, VGA_MEM_BASE, v);
	if (v->vbe_claimed)
		iobus_unregister(&v->vm->pio, VBE_PORT_INDEX, v);
	if (v->pio_claimed)
		iobus_unregister(&v->vm->pio, VGA_PORT_BASE, v);
	/* The MKS may still point at our pixel buffer or the VRAM: take the picture away first. */
	if (v->mks && v->active && v->so_set)
		mks_scanout_disable(v->mks);
	vga_render_free(v);
	vmx_mutex_destroy(&v->lock);
	free(v);
}
