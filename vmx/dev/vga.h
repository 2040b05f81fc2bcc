/*
 * vga.h — legacy VGA and Bochs VBE ("dispi") compatibility of the SVGA II
 * device.
 *
 * The SVGA II PCI device owns the VRAM and creates the VGA on it.  The VGA
 * claims the legacy ports 0x3B0-0x3DF, the VBE ports 0x1CE/0x1CF and the
 * MMIO window 0xA0000-0xBFFFF.  Planar VGA memory lives in the first 256 KiB
 * of VRAM, interleaved the way chain-4 addresses it: byte 4*offset+plane.
 *
 * While active it drives the MKS: text and 16-colour modes are rendered
 * into a pixel buffer it owns; 256-colour and VBE linear modes are scanouts
 * pointing into VRAM with poll = true.  A loop timer (about 30 Hz) applies
 * register changes and renders; vga_refresh() does the same on demand.
 */
#ifndef VIREO_VGA_H
#define VIREO_VGA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vmx_vm;
struct vga;

/* Smallest VRAM the VGA accepts: four 64 KiB planes. */
#define VGA_MIN_VRAM (256u * 1024u)

/* vram must stay valid until vga_destroy(); vram_size >= VGA_MIN_VRAM. */
struct vga *vga_create(struct vmx_vm *vm, uint8_t *vram, size_t vram_size,
                       char *err, size_t errlen);
/* false: SVGA owns the scanout (the VGA stops touching the MKS). */
void vga_set_active(struct vga *v, bool active);
void vga_destroy(struct vga *v);

/*
 * Apply pending mode changes and render text/planar changes to the MKS now
 * (the timer does this ~30 times a second).  Any thread; tests use it.
 */
void vga_refresh(struct vga *v);
/*
 * VBE linear scanouts point into VRAM, which the owner may have the engine
 * log writes to: fn then tells the MKS which pages changed (see struct
 * mks_scanout).  Stores the VGA itself makes into VRAM (the 0xA0000 window,
 * mode-set clears) are not in that log; vga_host_writes() counts them.
 */
void vga_set_dirty_source(struct vga *v, int (*fn)(void *opaque, const uint8_t *base, size_t len,
                                                  uint64_t *bitmap),
                          void *opaque);
unsigned vga_host_writes(struct vga *v);
/* Is a VBE (dispi) mode enabled?  The SVGA device reports it in its registers. */
bool vga_vbe_enabled(struct vga *v);

#endif
