/*
 * mks.h — the MKS: the screen and input pipeline of one VM.
 *
 * One MKS thread per vireo-vmx.  Display devices (VGA, SVGA II) describe a
 * *scanout* (where the guest's visible pixels are) and report *damage*
 * (rectangles that changed).  The MKS thread copies damaged pixels from the
 * scanout into the primary node's *shadow framebuffer* (XRGB8888, always an
 * exact copy of what the guest shows) and hands the damage to the back ends
 * chained behind the primary node: VNC, screenshots, later the GTK local
 * console (shared memory plus damage notices) and SVGA3D's GL compositor.
 *
 * Input goes the other way: back ends call mks_input_*(), the MKS routes
 * keys to the PS/2 keyboard and the pointer to the vmmouse (absolute, when
 * the guest's driver enabled it) or else to the PS/2 mouse (relative).
 *
 * Threads: the device-side calls (mks_scanout_set, mks_damage, cursor) are
 * safe from vCPU threads and never block on a back end: they take the MKS
 * lock briefly and wake the MKS thread.  Back-end callbacks run on the MKS
 * thread only.
 */
#ifndef VIREO_MKS_H
#define VIREO_MKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vmx_vm;
struct mks;

#define MKS_MAX_WIDTH  8192
#define MKS_MAX_HEIGHT 8192

/* Guest pixel formats a scanout may have. */
enum mks_format {
	MKS_FMT_XRGB8888 = 0, /* 32 bpp, B G R X in memory (little endian 0x00RRGGBB) */
	MKS_FMT_RGB565,       /* 16 bpp */
	MKS_FMT_RGB555,       /* 15 bpp in 16 bits */
	MKS_FMT_PAL8,         /* 8 bpp indexed through palette[] */
};

/*
 * Where the guest's visible picture is.  base points into host memory the
 * device owns (guest VRAM, or a buffer the VGA text renderer fills); the
 * device guarantees base..base+stride*height stays mapped until the next
 * mks_scanout_set() or mks_scanout_disable() returns.
 * poll: the guest writes base without telling anyone (VGA/VBE linear
 * modes, SVGA with the FIFO disabled); the MKS then compares base with the
 * shadow on its own refresh tick (about 30 Hz) to find the damage.
 */
struct mks_scanout {
	const uint8_t *base;
	uint32_t width, height;   /* pixels, 1..MKS_MAX_* */
	uint32_t stride;          /* bytes per line, >= width * bytes per pixel */
	enum mks_format format;
	bool poll;
	uint32_t palette[256];    /* 0x00RRGGBB, for MKS_FMT_PAL8 */
	/*
	 * Optional, for a poll scanout in guest RAM whose writes the engine logs:
	 * the 4 KiB pages of [base, base+len) written since the last call, bit
	 * i of bitmap (64-bit words) for the page holding base (rounded down to
	 * 4 KiB) plus i.  Returns 0, or -1 when it cannot tell (the MKS then
	 * compares the whole scanout).  Called on the MKS thread under its scan
	 * lock: it must not take device locks.
	 */
	int (*dirty)(void *opaque, const uint8_t *base, size_t len, uint64_t *bitmap);
	void *dirty_opaque;
};

/*
 * The MKS is a device class ("mks", created before the display devices,
 * present when the VM has a display: svga.present, default TRUE); its thread
 * starts from the device start hook.  Display devices find it here.
 */
struct mks *mks_of(struct vmx_vm *vm);                     /* vm's MKS or NULL */

/* ---- device side ---- */
/* A new mode or framebuffer; the whole screen is damaged.  Invalid values are refused (-1). */
int mks_scanout_set(struct mks *m, const struct mks_scanout *s);
/* No picture (device disabled): back ends show black at the last size. */
void mks_scanout_disable(struct mks *m);
/* Pixels in this rectangle changed; clipped to the scanout, empty ones ignored. */
void mks_damage(struct mks *m, int32_t x, int32_t y, int32_t w, int32_t h);
/* Copy a rectangle inside the scanout (SVGA RECT_COPY): back ends may send CopyRect. */
void mks_copy_rect(struct mks *m, int32_t sx, int32_t sy, int32_t dx, int32_t dy,
                   int32_t w, int32_t h);
/* An ARGB8888 cursor image (premultiplied false), w,h <= 256; copied. */
int mks_cursor_define(struct mks *m, uint32_t w, uint32_t h, uint32_t hot_x, uint32_t hot_y,
                      const uint32_t *argb);
void mks_cursor_move(struct mks *m, int32_t x, int32_t y, bool visible);
/* Keyboard LED state from the guest (bit0 scroll, bit1 num, bit2 caps). */
void mks_leds(struct mks *m, unsigned leds);

/* ---- back ends (the host-ops tree) ---- */
struct mks_rect {
	int32_t x, y, w, h;
};

/* The shadow framebuffer as back ends see it (MKS thread only). */
struct mks_frame {
	const uint32_t *pixels;   /* XRGB8888 */
	uint32_t width, height, stride_px;
};

struct mks_backend_ops {
	const char *name;
	/* Size changed (also called once when the back end is attached). */
	void (*resize)(void *opaque, const struct mks_frame *f);
	/* The shadow was updated in these rectangles (already copied). */
	void (*update)(void *opaque, const struct mks_frame *f, const struct mks_rect *r,
	               unsigned nrects);
	/* Optional: a copy the back end may forward as such (shadow already updated). */
	void (*copy)(void *opaque, const struct mks_frame *f, const struct mks_rect *src,
	             int32_t dx, int32_t dy);
	void (*cursor)(void *opaque, uint32_t w, uint32_t h, uint32_t hot_x, uint32_t hot_y,
	               const uint32_t *argb);
	void (*cursor_pos)(void *opaque, int32_t x, int32_t y, bool visible);
	void (*leds)(void *opaque, unsigned leds);
	/* Called on the MKS thread about 30 times a second (timers, sockets). */
	void (*tick)(void *opaque);
	void (*destroy)(void *opaque);
};

/* Chain a back end behind the primary node; called before or after mks_start. */
int mks_backend_add(struct mks *m, const struct mks_backend_ops *ops, void *opaque);
/* Run fn on the MKS thread with the current frame (screenshots, tests); waits for it. */
int mks_with_frame(struct mks *m, void (*fn)(void *opaque, const struct mks_frame *f),
                   void *opaque);
/* A back end's file descriptor, serviced on the MKS thread. */
int mks_add_fd(struct mks *m, int fd, uint32_t events, void (*cb)(void *opaque, uint32_t events),
               void *opaque);
void mks_del_fd(struct mks *m, int fd);

/* ---- input, from back ends ---- */
/* PC AT set-1 scancode as QEMU's extended key event carries it (0xE0xx for extended keys). */
void mks_input_key(struct mks *m, uint32_t scancode, bool down);
/* Absolute pointer in screen pixels of the current scanout; buttons bit0 left, 1 middle,
 * 2 right (RFB order); wheel: +1 up / -1 down per notch. */
void mks_input_pointer(struct mks *m, int32_t x, int32_t y, unsigned buttons, int wheel);

/* Input sinks, registered by i8042.c and vmmouse.c at device start. */
struct mks_input_ops {
	void (*key)(void *opaque, uint32_t scancode, bool down);
	/* Relative PS/2 path. */
	void (*rel)(void *opaque, int dx, int dy, int dz, unsigned buttons);
	/* Absolute path; returns false when the guest has not enabled it (use rel). */
	bool (*abs)(void *opaque, int32_t x, int32_t y, uint32_t width, uint32_t height,
	            unsigned buttons, int wheel);
};
void mks_input_set_keyboard(struct mks *m, const struct mks_input_ops *ops, void *opaque);
void mks_input_set_mouse(struct mks *m, const struct mks_input_ops *ops, void *opaque);
void mks_input_set_absolute(struct mks *m, const struct mks_input_ops *ops, void *opaque);

#endif
