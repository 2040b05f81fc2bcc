/*
 * i8042.h — the PS/2 keyboard controller's input side, for the console.
 *
 * Find the controller with vmx_vm_device(vm, "i8042").  Both calls are safe
 * from any thread; events are dropped while the guest has the device
 * disabled or its buffer is full (as a real keyboard would).
 */
#ifndef VIREO_I8042_H
#define VIREO_I8042_H

#include <stddef.h>
#include <stdint.h>

struct i8042;

/* Scan code set 2 bytes of one key event (make or break, E0/F0 prefixes included). */
void i8042_key_event(struct i8042 *kc, const uint8_t *set2, size_t len);
/* Relative motion (dx right, dy down, dz wheel down) and buttons (bit0 left, 1 right, 2 middle). */
void i8042_mouse_event(struct i8042 *kc, int dx, int dy, int dz, unsigned buttons);

/* A PS/2 packet with no motion (the vmmouse's "read your queue" nudge); dropped while
 * the guest has the mouse off. */
void i8042_mouse_wake(struct i8042 *kc);

#endif
