/*
 * test_balloon.c — the vmw_balloon protocol on real guest RAM (a memfd
 * gmem, as vireo-vmx has): locked pages lose their host backing (mincore
 * says so), come back zeroed, and bad PFNs, duplicates and oversized
 * batches are refused per page.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tests/unit/t.h"
#include "vmx/dev/balloon.h"
#include "vmx/mem.h"

#define RAM_MB 64
#define PAGE 4096ull

static struct balloon_regs cmd(struct balloon *b, uint32_t c, uint64_t a1, uint64_t a2)
{
	struct balloon_regs r = { .eax = BALLOON_MAGIC, .ecx = c, .rbx = a1, .rsi = a2 };
	balloon_core_cmd(b, &r);
	return r;
}

/* Is the host page behind gpa resident? */
static bool resident(struct gmem *m, uint64_t gpa)
{
	unsigned char v = 0;
	uint8_t *p = gmem_ptr(m, gpa, PAGE);
	if (!p || mincore(p, PAGE, &v) != 0)
		return true;
	return v & 1;
}

static uint64_t *batch_page(struct gmem *m, uint64_t pfn)
{
	return gmem_ptr(m, pfn * PAGE, PAGE);
}

int main(void)
{
	struct gmem mem;
	char err[256];
	memset(&mem, 0, sizeof(mem));
	if (gmem_init(&mem, RAM_MB << 20, err, sizeof(err)) != 0) {
		fprintf(stderr, "gmem_init: %s\n", err);
		return 1;
	}
	struct balloon *b = balloon_core_new(&mem);
	T_ASSERT(b != NULL);
	struct balloon_regs r;

	/* Nothing but START before START. */
	r = cmd(b, BALLOON_CMD_GET_TARGET, 1000, 0);
	T_EQ_U64(r.eax, BALLOON_ERR_RESET);
	/* Bad magic. */
	struct balloon_regs bad = { .eax = 0x12345678, .ecx = BALLOON_CMD_START, .rbx = 0x3E };
	balloon_core_cmd(b, &bad);
	T_EQ_U64(bad.eax, BALLOON_ERR_CMD);

	/* Linux 6.1 on x86-64 asks for 0x3E; no doorbell without VMCI. */
	r = cmd(b, BALLOON_CMD_START, 0x3E, 0);
	T_EQ_U64(r.eax, BALLOON_SUCCESS_CAPS);
	T_EQ_U64(r.ecx, 0x2E);
	T_ASSERT(balloon_core_connected(b));
	r = cmd(b, BALLOON_CMD_GUEST_ID, 1, 0);
	T_EQ_U64(r.eax, BALLOON_SUCCESS);

	balloon_core_set_target(b, 4096);   /* 16 MiB */
	r = cmd(b, BALLOON_CMD_GET_TARGET, (RAM_MB << 20) / PAGE, 0);
	T_EQ_U64(r.eax, BALLOON_SUCCESS);
	T_EQ_U64(r.rbx, 4096);
	r = cmd(b, BALLOON_CMD_GET_TARGET, 1000, 0);   /* clamped to the guest's limit */
	T_EQ_U64(r.rbx, 1000);

	/* Fill 8 MiB at 16 MiB with a pattern, then lock those pages in one batch. */
	const uint64_t base_pfn = (16ull << 20) / PAGE, bpfn = 100;
	for (uint64_t i = 0; i < 512; i++)
		memset(gmem_ptr(&mem, (base_pfn + i) * PAGE, PAGE), 0xA5, PAGE);
	T_ASSERT(resident(&mem, base_pfn * PAGE));
	uint64_t *bp = batch_page(&mem, bpfn);
	for (uint64_t i = 0; i < 512; i++)
		bp[i] = (base_pfn + i) << 12;
	r = cmd(b, BALLOON_CMD_BATCHED_LOCK, bpfn, 512);
	T_EQ_U64(r.eax, BALLOON_SUCCESS);
	T_EQ_U64(r.rbx, 4096);
	unsigned bad_entries = 0, still = 0;
	for (uint64_t i = 0; i < 512; i++) {
		bad_entries += (bp[i] & 0x1F) != 0 || (bp[i] >> 12) != base_pfn + i;
		still += resident(&mem, (base_pfn + i) * PAGE);
	}
	T_EQ_U64(bad_entries, 0);
	T_EQ_U64(still, 0);
	T_EQ_U64(balloon_core_size(b), 512);

	/* The same pages again, a PFN outside RAM, the batch page's neighbour twice. */
	bp[0] = base_pfn << 12;
	bp[1] = ((uint64_t)(RAM_MB << 20) / PAGE + 5) << 12;
	bp[2] = (bpfn + 1) << 12;
	bp[3] = (bpfn + 1) << 12;
	bp[4] = 0xFFFFFFFFFFFFF000ull;
	r = cmd(b, BALLOON_CMD_BATCHED_LOCK, bpfn, 5);
	T_EQ_U64(r.eax, BALLOON_SUCCESS);
	T_EQ_U64(bp[0] & 0x1F, BALLOON_ERR_LOCKED);
	T_EQ_U64(bp[1] & 0x1F, BALLOON_ERR_PPN);
	T_EQ_U64(bp[2] & 0x1F, BALLOON_SUCCESS);
	T_EQ_U64(bp[3] & 0x1F, BALLOON_ERR_LOCKED);
	T_EQ_U64(bp[4] & 0x1F, BALLOON_ERR_PPN);
	T_EQ_U64(balloon_core_size(b), 513);

	/* Oversized batch, batch page outside RAM. */
	r = cmd(b, BALLOON_CMD_BATCHED_LOCK, bpfn, 513);
	T_EQ_U64(r.eax, BALLOON_ERR_CMD);
	r = cmd(b, BALLOON_CMD_BATCHED_LOCK, 1ull << 40, 1);
	T_EQ_U64(r.eax, BALLOON_ERR_PPN);
	r = cmd(b, 55, 0, 0);
	T_EQ_U64(r.eax, BALLOON_ERR_CMD);

	/* Unlock: pages come back as zeroes and are writable again. */
	for (uint64_t i = 0; i < 512; i++)
		bp[i] = (base_pfn + i) << 12;
	r = cmd(b, BALLOON_CMD_BATCHED_UNLOCK, bpfn, 512);
	T_EQ_U64(r.eax, BALLOON_SUCCESS);
	T_EQ_U64(balloon_core_size(b), 1);
	uint8_t *p = gmem_ptr(&mem, base_pfn * PAGE, PAGE);
	T_EQ_U64(p[0], 0);
	T_EQ_U64(p[4095], 0);
	p[7] = 7;
	T_EQ_U64(p[7], 7);
	/* Unlocking what is not locked. */
	bp[0] = (base_pfn + 3) << 12;
	r = cmd(b, BALLOON_CMD_BATCHED_UNLOCK, bpfn, 1);
	T_EQ_U64(bp[0] & 0x1F, BALLOON_ERR_UNLOCKED);

	/* 2 MiB pages: aligned works, misaligned is refused. */
	bp[0] = (32ull << 20) / PAGE << 12;
	bp[1] = ((32ull << 20) / PAGE + 1) << 12;
	r = cmd(b, BALLOON_CMD_BATCHED_2M_LOCK, bpfn, 2);
	T_EQ_U64(r.eax, BALLOON_SUCCESS);
	T_EQ_U64(bp[0] & 0x1F, BALLOON_SUCCESS);
	T_EQ_U64(bp[1] & 0x1F, BALLOON_ERR_PPN);
	T_EQ_U64(balloon_core_size(b), 1 + 512);

	/* Basic (non-batched) commands. */
	r = cmd(b, BALLOON_CMD_LOCK, base_pfn + 600, 1);
	T_EQ_U64(r.eax, BALLOON_SUCCESS);
	r = cmd(b, BALLOON_CMD_LOCK, base_pfn + 600, 1);
	T_EQ_U64(r.eax, BALLOON_ERR_LOCKED);
	r = cmd(b, BALLOON_CMD_LOCK, 1ull << 33, 1);
	T_EQ_U64(r.eax, BALLOON_ERR_PPN);
	r = cmd(b, BALLOON_CMD_UNLOCK, base_pfn + 600, 1);
	T_EQ_U64(r.eax, BALLOON_SUCCESS);

	/* START 0 ("reset connection") and a VM reset release everything. */
	r = cmd(b, BALLOON_CMD_START, 0, 0);
	T_EQ_U64(balloon_core_size(b), 0);
	r = cmd(b, BALLOON_CMD_GET_TARGET, 1000, 0);
	T_EQ_U64(r.eax, BALLOON_ERR_RESET);
	r = cmd(b, BALLOON_CMD_START, 0x3E, 0);
	r = cmd(b, BALLOON_CMD_LOCK, base_pfn, 1);
	T_EQ_U64(r.eax, BALLOON_SUCCESS);   /* released by START 0: lockable again */
	T_EQ_U64(balloon_core_size(b), 1);
	balloon_core_reset(b);
	T_EQ_U64(balloon_core_size(b), 0);
	T_ASSERT(!balloon_core_connected(b));

	balloon_core_free(b);
	gmem_destroy(&mem);
	return T_DONE();
}
