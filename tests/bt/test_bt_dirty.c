/*
 * test_bt_dirty.c — bt's dirty log (vm_get_dirty on a VMM_MEM_LOG_DIRTY
 * slot), with the harvests placed exactly between guest stores: the guest
 * writes a 64 KiB logged region and executes OUT 0xE2, and the host reads
 * the log inside that OUT.  Each step checks one rule of bt_dirty.c:
 * a written page is reported; a reported page stays reported until the
 * vCPU watches it again (stores in between are not logged); once watched
 * again it is reported one more time; a clean page is not reported; the
 * inline fast paths and the bulk REP STOS path log too.
 */
#include <stdio.h>
#include <string.h>

#include "bthost.h"
#include "../unit/t.h"

#define LOG_GPA  0x800000u
#define LOG_SIZE 0x10000u      /* 16 pages */
#define MAX_H    16

static struct bthost h;
static uint64_t harvest[MAX_H];
static int harvest_rc[MAX_H];
static unsigned nharvest;

static void on_out(struct bthost *hh, uint16_t port, uint64_t value)
{
	(void)value;
	if (port != 0xE2 || nharvest >= MAX_H)
		return;
	uint64_t bm[2] = { 0, 0 };
	harvest_rc[nharvest] = vmm_engine_bt.vm_get_dirty(hh->vm, 1, bm, 2);
	harvest[nharvest++] = bm[0];
}

int main(void)
{
	static struct bth_state in, out;
	/*
	 *  mov $0x800000,%edi; mov $0x805000,%esi
	 *  movl $1,(%rdi); out 0xE2 (H0); out 0xE2 (H1)
	 *  movl $2,(%rdi); out 0xE2 (H2)
	 *  movl $3,(%rdi); mov $1000,%ecx; 1: dec %ecx; jnz 1b   (> 256 units: the
	 *      engine loop runs between them and watches page 0 again)
	 *  out 0xE2 (H3); out 0xE2 (H4)
	 *  movl $4,(%rdi); movl $5,(%rsi); out 0xE2 (H5)
	 *  mov $0x808000,%edi; mov $1024,%ecx; mov $imm64,%rax; rep stosq; out 0xE2 (H6)
	 */
	static const uint8_t code[] = {
		0xbf, 0x00, 0x00, 0x80, 0x00, 0xbe, 0x00, 0x50, 0x80, 0x00, 0xc7, 0x07,
		0x01, 0x00, 0x00, 0x00, 0xe6, 0xe2, 0xe6, 0xe2, 0xc7, 0x07, 0x02, 0x00,
		0x00, 0x00, 0xe6, 0xe2, 0xc7, 0x07, 0x03, 0x00, 0x00, 0x00, 0xb9, 0xe8,
		0x03, 0x00, 0x00, 0xff, 0xc9, 0x75, 0xfc, 0xe6, 0xe2, 0xe6, 0xe2, 0xc7,
		0x07, 0x04, 0x00, 0x00, 0x00, 0xc7, 0x06, 0x05, 0x00, 0x00, 0x00, 0xe6,
		0xe2, 0xbf, 0x00, 0x80, 0x80, 0x00, 0xb9, 0x00, 0x04, 0x00, 0x00, 0x48,
		0xb8, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0xf3, 0x48, 0xab,
		0xe6, 0xe2,
	};

	if (bthost_init(&h, 0)) {
		fprintf(stderr, "bthost_init failed\n");
		return 1;
	}
	h.on_out = on_out;
	/* RAM below the logged region, the region itself (slot 1) above it. */
	struct vmm_mem_region ram = { 0, LOG_GPA, h.ram, 0 };
	struct vmm_mem_region log = { LOG_GPA, LOG_SIZE, h.ram + LOG_GPA, VMM_MEM_LOG_DIRTY };
	T_EQ_I64(vmm_engine_bt.vm_set_memory(h.vm, 0, &ram), 0);
	T_EQ_I64(vmm_engine_bt.vm_set_memory(h.vm, 1, &log), 0);
	uint64_t bm[2];
	T_EQ_I64(vmm_engine_bt.vm_get_dirty(h.vm, 2, bm, 2), -1);      /* not logged */
	T_EQ_I64(vmm_engine_bt.vm_get_dirty(h.vm, 1, bm, 0), -1);      /* bitmap too small */

	memset(&in, 0, sizeof(in));
	in.fx[0] = 0x7f; in.fx[1] = 0x03;
	in.fx[24] = 0x80; in.fx[25] = 0x1f;
	in.r.rsp = BTH_STACK - 0x100;
	bthost_load(&h, code, sizeof(code));
	T_EQ_I64(bthost_run(&h, &in, &out), 0);
	T_EQ_I64(out.vector, -1);
	T_EQ_U64(nharvest, 7);
	for (unsigned i = 0; i < nharvest; i++)
		T_EQ_I64(harvest_rc[i], 0);
	/* Mapping the slot made every page count as written once. */
	T_EQ_U64(harvest[0], 0xFFFF);
	/* Page 0, reported, is not watched again yet: still reported. */
	T_EQ_U64(harvest[1], 0x1);
	/* ... also after a store the engine did not log. */
	T_EQ_U64(harvest[2], 0x1);
	/* Watched again after a store it did not log: reported once more. */
	T_EQ_U64(harvest[3], 0x1);
	T_EQ_U64(harvest[4], 0x0);
	/* Watched pages log again, through the inline store path. */
	T_EQ_U64(harvest[5], 0x21);
	/* REP STOSQ over pages 8 and 9 (pages 0 and 5 wait to be watched). */
	T_EQ_U64(harvest[6], 0x321);

	uint32_t v0, v5;
	uint64_t q;
	memcpy(&v0, h.ram + LOG_GPA, 4);
	memcpy(&v5, h.ram + LOG_GPA + 0x5000, 4);
	memcpy(&q, h.ram + LOG_GPA + 0x9ff8, 8);
	T_EQ_U64(v0, 4);
	T_EQ_U64(v5, 5);
	T_EQ_U64(q, 0x1122334455667788ull);

	/* Unmapped, the slot is no longer logged. */
	struct vmm_mem_region gone = { LOG_GPA, 0, h.ram + LOG_GPA, 0 };
	T_EQ_I64(vmm_engine_bt.vm_set_memory(h.vm, 1, &gone), 0);
	T_EQ_I64(vmm_engine_bt.vm_get_dirty(h.vm, 1, bm, 2), -1);
	bthost_fini(&h);
	return T_DONE();
}
