/*
 * vgatest.h — helpers for the VGA device tests: a devtest VM with the MKS
 * and a VGA on a plain VRAM buffer, register access as a VGA BIOS does it,
 * and the MKS shadow framebuffer read back through mks_with_frame.
 */
#ifndef VIREO_TESTS_VGATEST_H
#define VIREO_TESTS_VGATEST_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../devices/devtest.h"
#include "mks/mks.h"
#include "vmx/dev/vga.h"

struct vgat {
	struct devtest *t;
	struct mks *mks;
	struct vga *vga;
	uint8_t *vram;
	size_t vram_size;
	/* the last frame read back */
	uint32_t *px;
	uint32_t w, h;
	/* damage the back end saw since the last vgat_clear_updates() */
	unsigned nupdates;
	int32_t ux0, uy0, ux1, uy1;     /* union of update rectangles */
};

extern int vgat_failures;

#define VT_CHECK(cond, ...)                                                   \
	do {                                                                  \
		if (!(cond)) {                                                \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
			fprintf(stderr, __VA_ARGS__);                         \
			fprintf(stderr, "\n");                                \
			vgat_failures++;                                      \
		}                                                             \
	} while (0)

struct vgat *vgat_new(size_t vram_size);
void vgat_free(struct vgat *g);

void vgat_out8(struct vgat *g, uint16_t port, uint8_t val);
void vgat_out16(struct vgat *g, uint16_t port, uint16_t val);
uint8_t vgat_in8(struct vgat *g, uint16_t port);
uint16_t vgat_in16(struct vgat *g, uint16_t port);
void vgat_seq(struct vgat *g, uint8_t idx, uint8_t val);
void vgat_gr(struct vgat *g, uint8_t idx, uint8_t val);
void vgat_crtc(struct vgat *g, uint8_t idx, uint8_t val);
void vgat_attr(struct vgat *g, uint8_t idx, uint8_t val);
void vgat_dac(struct vgat *g, uint8_t idx, uint8_t r, uint8_t gr, uint8_t b);
void vgat_mem8(struct vgat *g, uint32_t addr, uint8_t val);
uint8_t vgat_memr8(struct vgat *g, uint32_t addr);
void vgat_dispi(struct vgat *g, uint16_t idx, uint16_t val);
uint16_t vgat_dispi_read(struct vgat *g, uint16_t idx);

/* A standard mode's register set, the way a VGA BIOS loads it (screen left blank). */
struct vgat_regs {
	uint8_t misc, seq[5], crtc[25], attr[21], gr[9];
};
extern const struct vgat_regs vgat_mode3, vgat_mode12, vgat_mode13;
void vgat_set_regs(struct vgat *g, const struct vgat_regs *r);
/* Palette address source on (the BIOS's last step): the screen shows. */
void vgat_screen_on(struct vgat *g);

/* vga_refresh() then read the MKS shadow into g->px / g->w / g->h. */
void vgat_frame(struct vgat *g);
uint32_t vgat_px(const struct vgat *g, uint32_t x, uint32_t y);
void vgat_clear_updates(struct vgat *g);

/* 6-bit DAC component as the DAC widens it to 8 bits. */
uint32_t vgat_c6(unsigned v);

#endif
