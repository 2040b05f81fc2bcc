/*
 * fuzz_bt_fpu.c — the bt engine's x87/MMX/SSE handlers under hostile guest
 * code and data: the input becomes a run of FPU-family instructions (x87
 * escapes, 0F/0F38/0F3A SSE..SSSE3 opcodes with random prefixes, ModRM and
 * immediates; memory operands at [rbx] inside the data page), an FXSAVE
 * image for the starting state, and the data page that FXRSTOR/FRSTOR/
 * FLDENV/LDMXCSR and every memory operand read.  Runs at CPL 3 in a bthost
 * guest; the engine must neither crash nor stop the VM.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "tests/bt/bthost.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct bthost host;
static bool host_ok;
/* The guest may write its own page tables, GDT, IDT and TSS (FXSAVE through
 * a clobbered RBX): restore the system area before every input. */
static uint8_t sys_area[BTH_CODE];
/* An exception leaves the vCPU in the CPL 0 stub: start each input at CPL 3. */
static struct vmm_sregs sregs0;

/* Opcodes after 0F worth reaching: the SSE/MMX ranges and FXSAVE group. */
static const uint8_t sse_ops[] = {
	0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d,
	0x2e, 0x2f, 0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x5b,
	0x5c, 0x5d, 0x5e, 0x5f, 0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
	0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f, 0x70, 0x71, 0x72, 0x73, 0x74, 0x75, 0x76, 0x77,
	0x7c, 0x7d, 0x7e, 0x7f, 0xae, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xd0, 0xd1, 0xd2, 0xd3,
	0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xe1,
	0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xeb, 0xec, 0xed, 0xee, 0xef,
	0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe,
};

/* [rbx] with a small displacement keeps operands inside the data page. */
static unsigned modrm_bytes(uint8_t sel, uint8_t *out)
{
	unsigned reg = (sel >> 3) & 7;
	switch (sel & 3) {
	case 0: out[0] = (uint8_t)(0xc0 | reg << 3 | (sel >> 6) | ((sel >> 2) & 4)); return 1;
	case 1: out[0] = (uint8_t)(reg << 3 | 3); return 1;
	case 2: out[0] = (uint8_t)(0x40 | reg << 3 | 3); out[1] = (uint8_t)(sel & 0xf0); return 2;
	default: out[0] = (uint8_t)(0xc0 | reg << 3 | (sel >> 5)); return 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct bth_state in, out;
	uint8_t code[256];
	unsigned n = 0;
	size_t i = 0;

	if (!host_ok) {
		if (bthost_init(&host, 3))
			return 0;
		host_ok = true;
		memcpy(sys_area, host.ram, sizeof(sys_area));
		vmm_engine_bt.get_sregs(host.vcpu, &sregs0);
	}
	memcpy(host.ram, sys_area, sizeof(sys_area));
	vmm_engine_bt.set_sregs(host.vcpu, &sregs0);
	/* the instruction stream: 4 input bytes per instruction, up to 48 */
	while (i + 4 <= size && i < 192 && n + 8 <= sizeof(code)) {
		uint8_t k = data[i], a = data[i + 1], b = data[i + 2], c = data[i + 3];
		i += 4;
		if (k & 1) {                       /* x87 */
			code[n++] = (uint8_t)(0xd8 + (a & 7));
			n += modrm_bytes(b, code + n);
			continue;
		}
		static const uint8_t pfx[4] = {0, 0x66, 0xf2, 0xf3};
		if ((k >> 1) & 3)
			code[n++] = pfx[(k >> 1) & 3];
		if (k & 8)
			code[n++] = (uint8_t)(0x40 | (c & 0x0c) | ((k >> 4) & 8));   /* REX.W/R */
		code[n++] = 0x0f;
		if ((k & 0x30) == 0x10) {          /* 0F 38: SSSE3 */
			code[n++] = 0x38;
			code[n++] = (uint8_t)(a & 0x1f);
			n += modrm_bytes(b, code + n);
		} else if ((k & 0x30) == 0x20) {   /* 0F 3A: PALIGNR */
			code[n++] = 0x3a;
			code[n++] = 0x0f;
			n += modrm_bytes(b, code + n);
			code[n++] = c;
		} else {
			uint8_t op = sse_ops[a % sizeof(sse_ops)];
			code[n++] = op;
			if (op != 0x77)
				n += modrm_bytes(b, code + n);
			if ((op >= 0x70 && op <= 0x73) || op == 0xc2 || (op >= 0xc4 && op <= 0xc6))
				code[n++] = c;
		}
	}
	memset(&in, 0, sizeof(in));
	/* the starting FPU state, then the data page, from the rest of the input */
	if (i < size) {
		size_t m = size - i < 512 ? size - i : 512;
		memcpy(in.fx, data + i, m);
		i += m;
	}
	if (i < size) {
		size_t m = size - i < BTH_DATA_SIZE ? size - i : BTH_DATA_SIZE;
		memcpy(in.data, data + i, m);
	}
	in.r.rbx = BTH_DATA + 0x400;
	in.r.rdi = BTH_DATA + 0x800;
	in.r.rsp = BTH_STACK - 0x100;
	bthost_load(&host, code, n);
	/* set_fpu refuses an image with reserved MXCSR bits: run from reset then */
	bthost_run(&host, &in, &out);
	return 0;
}
