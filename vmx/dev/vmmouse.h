/*
 * vmmouse.h — the vmmouse protocol state machine (vmmouse.c), apart from the
 * device so the fuzzer and tests can drive it alone.
 */
#ifndef VIREO_VMMOUSE_H
#define VIREO_VMMOUSE_H

#include <stdbool.h>
#include <stdint.h>

struct backdoor_call;

#define VMMOUSE_CMD_DATA      39
#define VMMOUSE_CMD_STATUS    40
#define VMMOUSE_CMD_COMMAND   41
#define VMMOUSE_CMD_RESTRICT  86

#define VMMOUSE_SUB_ENABLE    0x45414552u
#define VMMOUSE_SUB_DISABLE   0x000000F5u
#define VMMOUSE_SUB_RELATIVE  0x4C455252u
#define VMMOUSE_SUB_ABSOLUTE  0x53424152u

#define VMMOUSE_LEFT          0x20u
#define VMMOUSE_RIGHT         0x10u
#define VMMOUSE_MIDDLE        0x08u

#define VMMOUSE_QUEUE_WORDS   1024

struct vmmouse_state {
	uint32_t queue[VMMOUSE_QUEUE_WORDS];
	uint32_t head, count;
	uint32_t status;          /* 0, or 0xFFFF: disabled / error */
	uint8_t absolute, restricted;
};

void vmmouse_proto_reset(struct vmmouse_state *s);
/* One backdoor command (ECX low 16 bits) with the guest's registers; answers in c. */
bool vmmouse_proto_call(struct vmmouse_state *s, struct backdoor_call *c);
/* Queue a pointer event (buttons: bit0 left, 1 middle, 2 right; wheel +1 up).
 * False when the guest has not enabled absolute mode. */
bool vmmouse_proto_event(struct vmmouse_state *s, int32_t x, int32_t y, uint32_t width,
                         uint32_t height, unsigned buttons, int wheel);
/* The state inside the vdev's priv (tests). */
struct vmmouse_state *vmmouse_state_for_tests(void *priv);

#endif
