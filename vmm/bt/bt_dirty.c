/*
 * bt_dirty.c — dirty logging for memory slots mapped with VMM_MEM_LOG_DIRTY
 * (the SVGA frame buffer, so that the MKS compares only what the guest
 * wrote).
 *
 * Every guest store already checks the code bitmap: a store to a page that
 * holds translated code takes the slow path, which drops the code
 * (bt_tc_invalidate_page) and clears the bit.  A logged page is "watched"
 * by setting its bit too; the slow path then notes the page as written
 * (bt_dirty_note), and later stores to it run at full speed until the page
 * is watched again.  Per logged slot, one bit per page in three sets:
 *   dirty    written since the last harvest (no longer watched)
 *   pending  reported by a harvest, not yet watched again
 *   again    watched again since the last harvest: reported once more,
 *            because stores between that harvest and the re-watch ran
 *            unwatched
 * A harvest (vm_get_dirty, any thread) reports dirty | pending | again and
 * moves dirty to pending.  Only the vCPU thread watches pages again
 * (bt_dirty_rearm, between runs of units): it owns the code bitmap and its
 * TLB, and no store of its own can be in flight then.  So every store is
 * either in memory before the harvest that reports its page, or its page
 * is reported again by a later one.  That argument needs the one vCPU:
 * with more, a store on another vCPU could be in flight across a re-watch,
 * and the engine declines to log (the caller compares everything).
 */
#include <stdlib.h>
#include <string.h>

#include "bt.h"

static struct bt_dirty *bt_dirty_of(struct bt_vm *vm, uint64_t gpa, uint64_t *page)
{
	for (unsigned i = 0; i < vm->nregions; i++) {
		struct bt_region *r = &vm->regions[i];
		if (vm->dlog[i].words && gpa >= r->gpa && gpa - r->gpa < r->size) {
			*page = (gpa - r->gpa) >> 12;
			return &vm->dlog[i];
		}
	}
	return NULL;
}

void bt_dirty_note(struct bt_vm *vm, uint64_t gpa_page)
{
	uint64_t p;

	if (!atomic_load_explicit(&vm->dlog_active, memory_order_relaxed))
		return;
	pthread_mutex_lock(&vm->dlog_lock);
	struct bt_dirty *d = bt_dirty_of(vm, gpa_page, &p);
	if (d)
		d->dirty[p / 64] |= 1ull << (p % 64);
	pthread_mutex_unlock(&vm->dlog_lock);
}

static void bt_dirty_all_pending_locked(struct bt_vm *vm)
{
	bool any = false;
	for (unsigned i = 0; i < BT_MAX_REGIONS; i++) {
		struct bt_dirty *d = &vm->dlog[i];
		if (!d->words)
			continue;
		memset(d->pending, 0xff, d->words * sizeof(uint64_t));
		uint64_t tail = (vm->regions[i].size >> 12) % 64;
		if (tail)
			d->pending[d->words - 1] = (1ull << tail) - 1;
		any = true;
	}
	if (any)
		atomic_store(&vm->dlog_rearm, true);
}

void bt_dirty_unwatched(struct bt_vm *vm)
{
	if (!atomic_load_explicit(&vm->dlog_active, memory_order_relaxed))
		return;
	pthread_mutex_lock(&vm->dlog_lock);
	bt_dirty_all_pending_locked(vm);
	pthread_mutex_unlock(&vm->dlog_lock);
}

int bt_dirty_set_region(struct bt_vm *vm, unsigned slot, bool log)
{
	struct bt_dirty *d = &vm->dlog[slot];
	/* Several vCPUs: see the top of the file. */
	uint64_t words = log && vm->cfg.ncpus <= 1 ? ((vm->regions[slot].size >> 12) + 63) / 64 : 0;
	uint64_t *set = NULL;

	if (words && !(set = calloc(words * 3, sizeof(uint64_t))))
		return -1;
	pthread_mutex_lock(&vm->dlog_lock);
	free(d->dirty);
	d->dirty = set;
	d->pending = set ? set + words : NULL;
	d->again = set ? set + 2 * words : NULL;
	d->words = words;
	bool active = false;
	for (unsigned i = 0; i < BT_MAX_REGIONS; i++)
		active |= vm->dlog[i].words != 0;
	atomic_store(&vm->dlog_active, active);
	/* Nothing is watched yet: every page waits for the vCPU to watch it. */
	if (words)
		bt_dirty_all_pending_locked(vm);
	pthread_mutex_unlock(&vm->dlog_lock);
	return 0;
}

void bt_dirty_free(struct bt_vm *vm)
{
	for (unsigned i = 0; i < BT_MAX_REGIONS; i++)
		free(vm->dlog[i].dirty);
	pthread_mutex_destroy(&vm->dlog_lock);
}

void bt_dirty_rearm(struct bt_cpu *cpu)
{
	struct bt_vm *vm = cpu->vm;

	if (!atomic_exchange(&vm->dlog_rearm, false) || vm->cfg.ncpus > 1)
		return;
	pthread_mutex_lock(&vm->dlog_lock);
	for (unsigned i = 0; i < vm->nregions; i++) {
		struct bt_dirty *d = &vm->dlog[i];
		uint64_t base = vm->regions[i].gpa >> 12;
		for (uint64_t w = 0; w < d->words; w++) {
			uint64_t bits = d->pending[w];
			for (; bits; bits &= bits - 1) {
				uint64_t pfn = base + w * 64 + (uint64_t)__builtin_ctzll(bits);
				if (pfn < vm->code_bitmap_pages)
					__atomic_fetch_or(&vm->code_bitmap[pfn >> 3], (uint8_t)(1u << (pfn & 7)),
					                  __ATOMIC_RELAXED);
			}
			d->again[w] |= d->pending[w];
		}
	}
	/* TLB entries of newly watched pages must send stores to the slow path
	 * (the inline fast paths look at BT_TLB_CODE, not at the bitmap). */
	for (unsigned t = 0; t < BT_TLB_SIZE; t++) {
		struct bt_tlb_entry *e = &cpu->tlb[t];
		uint64_t p;
		if (!e->tag || e->perm & BT_TLB_CODE)
			continue;
		struct bt_dirty *d = bt_dirty_of(vm, e->gpa, &p);
		if (d && (d->pending[p / 64] >> (p % 64)) & 1)
			e->perm |= BT_TLB_CODE;
	}
	for (unsigned i = 0; i < vm->nregions; i++)
		if (vm->dlog[i].words)
			memset(vm->dlog[i].pending, 0, vm->dlog[i].words * sizeof(uint64_t));
	pthread_mutex_unlock(&vm->dlog_lock);
}

int bt_dirty_get(struct bt_vm *vm, unsigned slot, uint64_t *bitmap, size_t words)
{
	int rc = -1;

	if (slot >= BT_MAX_REGIONS)
		return -1;
	pthread_mutex_lock(&vm->dlog_lock);
	struct bt_dirty *d = &vm->dlog[slot];
	if (d->words && words >= d->words && vm->cfg.ncpus <= 1) {
		bool rearm = false;
		memset(bitmap, 0, words * sizeof(*bitmap));
		for (uint64_t w = 0; w < d->words; w++) {
			bitmap[w] = d->dirty[w] | d->pending[w] | d->again[w];
			d->pending[w] |= d->dirty[w];
			rearm |= d->pending[w] != 0;
			d->dirty[w] = 0;
			d->again[w] = 0;
		}
		if (rearm)
			atomic_store(&vm->dlog_rearm, true);
		rc = 0;
	}
	pthread_mutex_unlock(&vm->dlog_lock);
	return rc;
}
