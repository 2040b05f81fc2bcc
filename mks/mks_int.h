/*
 * mks_int.h — internals shared by the files of mks/ (not a contract for
 * other modules; tests of the MKS use it too).
 */
#ifndef VIREO_MKS_INT_H
#define VIREO_MKS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mks.h"

struct vmxcfg;

/* What the .vmx says about the MKS's back ends. */
struct mks_config {
	bool vnc_enabled;             /* RemoteDisplay.vnc.enabled */
	uint16_t vnc_port;            /* RemoteDisplay.vnc.port, default 5900 */
	char vnc_ip[64];              /* RemoteDisplay.vnc.ip, default 127.0.0.1 */
	char *vnc_password;           /* RemoteDisplay.vnc.password (or NULL) */
	char shot_on_signal[4096];    /* mks.screenshotOnSignal: PNG path written on SIGUSR2 */
};

/* mks.c */
struct mks *mks_new(struct vmx_vm *vm);             /* vm may be NULL (unit tests) */
void mks_free(struct mks *m);
int mks_start_thread(struct mks *m);
const struct mks_config *mks_config(const struct mks *m);
struct vmx_vm *mks_vm(const struct mks *m);
void mks_rects_add(struct mks_rect *list, unsigned *n, struct mks_rect r);
void mks_convert_line(const struct mks_scanout *s, const uint8_t *row, uint32_t x, uint32_t n,
                      uint32_t *out);

/* mks_conf.c: config keys, and the back ends the config asks for (start hook). */
int mks_read_config(struct mks *m, struct mks_config *cfg, const struct vmxcfg *vc,
                    char *err, size_t errlen);
int mks_backends_start(struct mks *m, char *err, size_t errlen);

/* mks_vnc.c (only with libvncserver) */
bool mks_vnc_available(void);
int mks_vnc_start(struct mks *m, const struct mks_config *cfg, char *err, size_t errlen);
/* Set-1 scancode (0xE0xx extended) for an X keysym, US layout; 0 when unknown. */
uint32_t mks_keysym_to_scancode(uint32_t keysym);
/* Scancode from a QEMU extended key event's keycode (0x80 bit: E0 prefix); 0 when none. */
uint32_t mks_qemu_keycode_to_scancode(uint32_t keycode);

/* mks_shot.c: write the frame as a PNG (8-bit RGB). */
int mks_png_write(const char *path, const struct mks_frame *f, char *err, size_t errlen);
/* Take a screenshot through the MKS thread. */
int mks_screenshot(struct mks *m, const char *path, char *err, size_t errlen);

#endif
