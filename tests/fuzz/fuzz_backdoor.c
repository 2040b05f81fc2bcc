/*
 * fuzz_backdoor.c — the GuestRPC channel and the tools RPCI/TCLO handlers
 * fed with sequences of backdoor register sets and HB pieces.
 *
 * Input: a stream of 20-byte records {op, chan, flags, pad, ebx, ecx-high,
 * cookie mix, len}.  Cookies are usually taken from the last OPEN so deep
 * states are reachable; HB pieces take their bytes from the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmx/backdoor.h"
#include "vmx/guestrpc.h"
#include "vmx/tools.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fz_chan {
	uint16_t id;
	uint32_t hi, lo;
};

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tools *t = tools_core_new(NULL);
	struct fz_chan ch[4];
	uint64_t now = 1;
	static uint8_t buf[70000];

	if (!t)
		return 0;
	memset(ch, 0, sizeof(ch));
	tools_core_set_hb(t, size & 1, size & 2);
	while (size >= 16) {
		uint8_t op = data[0], ci = data[1] & 3, flags = data[2];
		uint32_t ebx = rd32(data + 4), arg = rd32(data + 8), mix = rd32(data + 12);
		struct fz_chan *c = &ch[ci];
		data += 16;
		size -= 16;
		uint32_t hi = (flags & 1) ? c->hi ^ mix : c->hi, lo = (flags & 2) ? c->lo ^ mix : c->lo;
		uint16_t id = (flags & 4) ? (uint16_t)mix : c->id;
		switch (op % 6) {
		case 0: case 1: case 2: {
			/* A low-bandwidth MESSAGE call; OPEN alternates between RPCI and TCLO. */
			unsigned type = (op / 6) % 8;
			struct backdoor_call b = {
				.eax = BDOOR_MAGIC, .ebx = ebx,
				.ecx = (uint32_t)type << 16 | BDOOR_CMD_MESSAGE,
				.edx = (uint32_t)id << 16 | 0x5658, .esi = hi, .edi = lo,
			};
			if (type == GRPC_TYPE_OPEN && !(flags & 8))
				b.ebx = ((flags & 16) ? GRPC_PROTO_TCLO : GRPC_PROTO_RPCI) |
				        ((flags & 32) ? 0 : GRPC_FLAG_COOKIE);
			tools_core_message(t, &b);
			if (type == GRPC_TYPE_OPEN && (b.ecx >> 16) & GRPC_ST_SUCCESS) {
				c->id = (uint16_t)(b.edx >> 16);
				c->hi = b.esi;
				c->lo = b.edi;
			}
			break;
		}
		case 3: case 4: {
			/* An HB piece: bytes from the input, length and ECX from the record. */
			size_t len = arg % 2048;
			bool write = op % 6 == 3;
			if (write && len > size)
				len = size;
			struct backdoor_call r = {
				.eax = BDOOR_MAGIC, .ebx = ebx & 0xFFFF0001u,
				.ecx = (flags & 64) ? (uint32_t)len : mix,
				.edx = (uint32_t)id << 16 | 0x5659,
				.esi = write ? 0 : hi, .edi = write ? lo : 0, .ebp = write ? hi : lo,
			};
			if (len == 0)
				len = 1;
			if (write) {
				memset(buf, 0, len);
				memcpy(buf, data, len <= size ? len : size);
			}
			tools_core_hb(t, &r, write, buf, len);
			if (write) {
				size_t used = len <= size ? len : size;
				data += used;
				size -= used;
			}
			break;
		}
		default:
			/* Time passes; the host queues a command now and then. */
			now += (uint64_t)(arg % 10000) * 1000000ull;
			tools_core_tick(t, now);
			if (flags & 1)
				tools_core_queue(t, (flags & 2) ? "OS_Halt" : "ping");
			break;
		}
	}
	tools_core_free(t);
	return 0;
}
