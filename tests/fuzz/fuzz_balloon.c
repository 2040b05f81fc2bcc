/*
 * fuzz_balloon.c — the balloon command and batch-page parser on 16 MiB of
 * real (memfd) guest RAM.  Input: 24-byte records {cmd, arg1, arg2}, with
 * the rest of the input copied into the batch page first.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmx/dev/balloon.h"
#include "vmx/mem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_RAM (16ull << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct gmem mem;
	static bool ready;
	char err[128];

	if (!ready) {
		if (gmem_init(&mem, FZ_RAM, err, sizeof(err)) != 0) {
			fprintf(stderr, "gmem_init: %s\n", err);
			abort();
		}
		ready = true;
	}
	struct balloon *b = balloon_core_new(&mem);
	if (!b)
		return 0;
	balloon_core_set_target(b, size * 7);
	while (size >= 24) {
		uint64_t a1, a2;
		uint32_t cmd;
		memcpy(&cmd, data, 4);
		memcpy(&a1, data + 8, 8);
		memcpy(&a2, data + 16, 8);
		data += 24;
		size -= 24;
		/* Mostly small, in-range values so the batch path is reached. */
		if (!(cmd & 0x80000000u)) {
			cmd %= 12;
			a2 %= 600;
			if (cmd != 0 && cmd != 1)
				a1 %= FZ_RAM / 4096 + 16;
		}
		if (cmd >= 6 && cmd <= 9) {
			uint8_t *page = gmem_ptr(&mem, (a1 % (FZ_RAM / 4096)) * 4096, 4096);
			size_t n = size < 4096 ? size : 4096;
			if (page) {
				/* Entries mostly point into RAM. */
				memcpy(page, data, n);
				for (size_t i = 0; i + 8 <= n; i += 8)
					if (!(page[i] & 0x20))
						page[i + 3] &= 0x0F, page[i + 4] = page[i + 5] = page[i + 6] = page[i + 7] = 0;
			}
		}
		struct balloon_regs r = { .eax = BALLOON_MAGIC, .ecx = cmd, .rbx = a1, .rsi = a2 };
		if (cmd == 0x80000001u)
			r.eax = 0;
		balloon_core_cmd(b, &r);
	}
	if (balloon_core_size(b) > FZ_RAM / 4096)
		abort();
	balloon_core_free(b);
	return 0;
}
