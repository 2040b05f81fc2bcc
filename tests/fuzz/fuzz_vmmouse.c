/*
 * fuzz_vmmouse.c — the vmmouse backdoor protocol (vmx/dev/vmmouse.c) driven
 * by arbitrary command sequences and pointer events: the queue must stay in
 * bounds and STATUS must always describe what DATA can return.
 *
 * Input: records of 10 bytes: kind, cmd(2), ebx(4), cpl, x, y.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmx/backdoor.h"
#include "vmx/dev/vmmouse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vmmouse_state s;
	static const uint16_t cmds[] = { 39, 40, 41, 86 };
	static const uint32_t subs[] = { 0x45414552u, 0xF5u, 0x4C455252u, 0x53424152u };

	vmmouse_proto_reset(&s);
	for (size_t i = 0; i + 10 <= size; i += 10) {
		const uint8_t *r = data + i;
		struct backdoor_call c;
		memset(&c, 0, sizeof(c));
		uint32_t ebx = (uint32_t)r[3] | (uint32_t)r[4] << 8 | (uint32_t)r[5] << 16 |
		               (uint32_t)r[6] << 24;
		switch (r[0] % 4) {
		case 0:   /* a well-formed command with a known sub-command */
			c.ecx = cmds[r[1] % 4];
			c.ebx = c.ecx == 41 ? subs[r[2] % 4] : (ebx % 6);
			break;
		case 1:   /* anything */
			c.ecx = (uint32_t)r[1] | (uint32_t)r[2] << 8;
			c.ebx = ebx;
			break;
		case 2:
			vmmouse_proto_event(&s, (int8_t)r[8] * 37, (int8_t)r[9] * 29, r[1] * 8u, r[2] * 8u,
			                    r[3], (int8_t)r[4]);
			continue;
		default:
			c.ecx = cmds[r[1] % 4];
			c.ebx = ebx;
			break;
		}
		c.cpl = r[7] & 3;
		uint32_t before = s.count;
		uint16_t cmd = (uint16_t)c.ecx;   /* DATA answers in ECX too */
		vmmouse_proto_call(&s, &c);
		if (s.count > VMMOUSE_QUEUE_WORDS || s.head >= VMMOUSE_QUEUE_WORDS)
			abort();
		/* STATUS reports exactly the queue (or the error state). */
		if (cmd == 40 && c.eax != 0xFFFFFFFFu && (c.eax >> 16) != 0xFFFF &&
		    (c.eax & 0xFFFF) != before)
			abort();
	}
	return 0;
}
