/*
 * fuzz_bt.c — the bt engine's decoder, translation cache and integer/system
 * instruction handlers on arbitrary guest code.  The first input byte picks
 * CPL 0 or 3; the rest is code at BTH_CODE in 64-bit mode, run until the
 * done marker, an exception reaching the IDT, or a short watchdog.  The guest
 * may wreck its own tables; the engine must neither crash nor hang.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../bt/bthost.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct bthost fz_host;
static bool fz_ready;
static struct bth_state fz_in, fz_out;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!fz_ready) {
		if (bthost_init(&fz_host, 3))
			abort();
		fz_host.quiet = true;
		bthost_set_timeout_ms(5);
		fz_ready = true;
	}
	if (size < 1)
		return 0;
	unsigned cpl = (data[0] & 1) ? 3 : 0;
	data++;
	size--;
	if (size > 4096)
		size = 4096;
	if (bthost_reset(&fz_host, cpl))
		abort();
	memset(&fz_in, 0, sizeof(fz_in));
	fz_in.fx[0] = 0x7f; fz_in.fx[1] = 0x03;
	fz_in.fx[24] = 0x80; fz_in.fx[25] = 0x1f;
	fz_in.r.rsp = BTH_STACK - 0x100;
	fz_in.r.rdi = BTH_DATA;
	fz_in.r.rsi = BTH_DATA + 0x800;
	fz_in.r.rcx = 16;
	bthost_load(&fz_host, data, size);
	bthost_run(&fz_host, &fz_in, &fz_out);
	return 0;
}
