/*
 * balloon.c — the vmw_balloon device (spec section 6).
 *
 * The guest's driver allocates pages and "locks" them: we drop their host
 * backing, so the vmx's resident memory shrinks; an unlocked page refaults
 * as zeroes.  A bitmap over guest RAM frames tracks what is locked, so
 * duplicate locks, unlocks of pages never locked, PFNs outside RAM and
 * malformed batches are refused per page and never reach madvise().
 *
 * The port handler needs the caller's registers (RBX, RSI in; RBX, RCX
 * out), which the I/O bus does not pass: it finds its vCPU by thread.
 */
#include "balloon.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "../../vmdb/vmx_link.h"
#include "../config.h"
#include "../device.h"
#include "../iobus.h"
#include "../lock.h"
#include "../log.h"
#include "../loop.h"
#include "../mem.h"
#include "../vm.h"

#pragma weak vmx_link_publish
#pragma weak vmx_link_watch

#define PAGE      4096ull
#define PAGES_2M  512ull

/* Granted capabilities: no VMCI doorbell (signalled wake-up) without a VMCI device. */
#define BALLOON_CAPS (BALLOON_CAP_BASIC | BALLOON_CAP_BATCHED | BALLOON_CAP_BATCHED_2M | \
                      BALLOON_CAP_64BIT)

struct balloon {
	struct gmem *mem;
	struct vmx_mutex lock;
	uint64_t nframes;           /* frames of RAM (bitmap size) */
	uint64_t *locked;           /* bit per frame */
	uint64_t size;              /* locked frames */
	_Atomic uint64_t target;    /* host's wish, frames */
	uint32_t caps;
	bool started;
	/* device only */
	struct vmx_vm *vm;
	struct vmx_timer *timer;
	uint64_t pub_target, pub_size;
	int pub_conn;
};

/* Frame index of a RAM page, or UINT64_MAX when gpa is not 4 KiB of RAM. */
static uint64_t frame_of(const struct balloon *b, uint64_t gpa)
{
	const struct gmem *m = b->mem;
	uint64_t idx;

	if (gpa < m->low_size)
		idx = gpa / PAGE;
	else if (gpa >= VMX_4G && gpa - VMX_4G < m->ram_size - m->low_size)
		idx = (m->low_size + (gpa - VMX_4G)) / PAGE;
	else
		return UINT64_MAX;
	if (idx >= b->nframes || !gmem_ptr(m, gpa, PAGE))
		return UINT64_MAX;
	return idx;
}

static bool bit_get(const struct balloon *b, uint64_t i)
{
	return b->locked[i / 64] >> (i % 64) & 1;
}

static void bit_set(struct balloon *b, uint64_t i, bool v)
{
	if (v)
		b->locked[i / 64] |= 1ull << (i % 64);
	else
		b->locked[i / 64] &= ~(1ull << (i % 64));
}

static void drop_backing(struct balloon *b, uint64_t gpa, uint64_t len)
{
	void *p = gmem_ptr(b->mem, gpa, len);
	if (!p)
		return;
	/* RAM is a shared memfd mapping: REMOVE frees the pages, they refault as zeroes. */
	if (madvise(p, len, MADV_REMOVE) != 0 && madvise(p, len, MADV_DONTNEED) != 0)
		vlog_guest("balloon: cannot drop %llu bytes at 0x%llx", (unsigned long long)len,
		           (unsigned long long)gpa);
}

/*
 * Lock or unlock npages frames starting at pfn; returns a per-page status.
 * The backing of locked pages is dropped by the caller (batches coalesce
 * contiguous pages into one madvise).
 */
static uint32_t page_op(struct balloon *b, uint64_t pfn, uint64_t npages, bool lock)
{
	if (pfn > (UINT64_MAX / PAGE) - npages)
		return BALLOON_ERR_PPN;
	uint64_t gpa = pfn * PAGE;
	uint64_t first = frame_of(b, gpa);
	/* A 2 MiB page must be aligned and lie in one RAM region. */
	if (first == UINT64_MAX || (npages > 1 && ((pfn % npages) != 0 ||
	                                          !gmem_ptr(b->mem, gpa, npages * PAGE))))
		return BALLOON_ERR_PPN;
	if (first + npages > b->nframes)
		return BALLOON_ERR_PPN;
	for (uint64_t i = 0; i < npages; i++)
		if (bit_get(b, first + i) != !lock)
			return lock ? BALLOON_ERR_LOCKED : BALLOON_ERR_UNLOCKED;
	for (uint64_t i = 0; i < npages; i++)
		bit_set(b, first + i, lock);
	if (lock) {
		b->size += npages;
	} else {
		b->size -= npages;
	}
	return BALLOON_SUCCESS;
}

static uint32_t batch_op(struct balloon *b, uint64_t batch_pfn, uint64_t count, uint64_t npages,
                         bool lock)
{
	if (count > BALLOON_BATCH_MAX || batch_pfn > UINT64_MAX / PAGE) {
		vlog_guest("balloon: batch of %llu entries refused", (unsigned long long)count);
		return BALLOON_ERR_CMD;
	}
	uint8_t *page = gmem_ptr(b->mem, batch_pfn * PAGE, PAGE);
	if (!page) {
		vlog_guest("balloon: batch page 0x%llx is not RAM", (unsigned long long)batch_pfn);
		return BALLOON_ERR_PPN;
	}
	uint64_t run_gpa = 0, run_len = 0;   /* locked pages not yet dropped */
	for (uint64_t i = 0; i < count; i++) {
		uint64_t e;
		/* Read each entry once: the guest may change the page meanwhile. */
		memcpy(&e, page + i * 8, 8);
		uint64_t pfn = e >> 12;
		uint32_t st = page_op(b, pfn, npages, lock);
		if (st != BALLOON_SUCCESS)
			vlog_guest("balloon: %s of pfn 0x%llx refused (%u)", lock ? "lock" : "unlock",
			           (unsigned long long)pfn, st);
		else if (lock) {
			uint64_t gpa = pfn * PAGE, len = npages * PAGE;
			/* Contiguous in the same RAM region: one madvise for the run. */
			if (run_len && gpa == run_gpa + run_len && gmem_ptr(b->mem, run_gpa, run_len + len)) {
				run_len += len;
			} else {
				if (run_len)
					drop_backing(b, run_gpa, run_len);
				run_gpa = gpa;
				run_len = len;
			}
		}
		e = (pfn << 12) | st;
		memcpy(page + i * 8, &e, 8);
	}
	if (run_len)
		drop_backing(b, run_gpa, run_len);
	return BALLOON_SUCCESS;
}

static void release_all(struct balloon *b)
{
	/* The guest pops its pages without telling us: they are plain RAM again. */
	memset(b->locked, 0, ((b->nframes + 63) / 64) * 8);
	b->size = 0;
}

static uint64_t answer_target(struct balloon *b, uint64_t limit)
{
	uint64_t t = atomic_load(&b->target);
	if (!(b->caps & BALLOON_CAP_64BIT) && limit > UINT32_MAX)
		limit = UINT32_MAX;
	/* Never ask for more than the guest has, nor for more than RAM. */
	if (limit && t > limit)
		t = limit;
	if (t > b->nframes)
		t = b->nframes;
	return t;
}

void balloon_core_cmd(struct balloon *b, struct balloon_regs *r)
{
	uint32_t cmd = r->ecx;
	uint64_t a1 = r->rbx, a2 = r->rsi;
	uint32_t st = BALLOON_SUCCESS;

	if (r->eax != BALLOON_MAGIC) {
		vlog_guest("balloon: bad magic 0x%08x", r->eax);
		r->eax = BALLOON_ERR_CMD;
		return;
	}
	vmx_mutex_lock(&b->lock);
	if (cmd != BALLOON_CMD_START && cmd != BALLOON_CMD_GUEST_ID && !b->started) {
		/* Talk to us only after START (e.g. after a VM reset). */
		r->eax = BALLOON_ERR_RESET;
		vmx_mutex_unlock(&b->lock);
		return;
	}
	switch (cmd) {
	case BALLOON_CMD_START:
		release_all(b);
		b->caps = (uint32_t)a1 & BALLOON_CAPS;
		b->started = a1 != 0;
		r->ecx = b->caps;
		st = BALLOON_SUCCESS_CAPS;
		break;
	case BALLOON_CMD_GUEST_ID:
		break;
	case BALLOON_CMD_GET_TARGET:
		if (!(b->caps & BALLOON_CAP_64BIT) && a1 > UINT32_MAX)
			st = BALLOON_ERR_CMD;
		else
			r->rbx = answer_target(b, a1);
		break;
	case BALLOON_CMD_LOCK:
	case BALLOON_CMD_UNLOCK:
		if (!(b->caps & BALLOON_CAP_BASIC) || a1 > UINT32_MAX) {
			st = a1 > UINT32_MAX ? BALLOON_ERR_PPN : BALLOON_ERR_CMD;
			break;
		}
		st = page_op(b, a1, 1, cmd == BALLOON_CMD_LOCK);
		if (st == BALLOON_SUCCESS && cmd == BALLOON_CMD_LOCK)
			drop_backing(b, a1 * PAGE, PAGE);
		r->rbx = answer_target(b, 0);
		break;
	case BALLOON_CMD_BATCHED_LOCK:
	case BALLOON_CMD_BATCHED_UNLOCK:
	case BALLOON_CMD_BATCHED_2M_LOCK:
	case BALLOON_CMD_BATCHED_2M_UNLOCK: {
		bool two_m = cmd >= BALLOON_CMD_BATCHED_2M_LOCK;
		uint32_t need = two_m ? BALLOON_CAP_BATCHED_2M : BALLOON_CAP_BATCHED;
		if (!(b->caps & need)) {
			st = BALLOON_ERR_CMD;
			break;
		}
		st = batch_op(b, a1, a2, two_m ? PAGES_2M : 1,
		              cmd == BALLOON_CMD_BATCHED_LOCK || cmd == BALLOON_CMD_BATCHED_2M_LOCK);
		r->rbx = answer_target(b, 0);
		break;
	}
	default:
		/* VMCI_DOORBELL_SET included: that capability is never granted. */
		vlog_guest("balloon: unsupported command %u", cmd);
		st = BALLOON_ERR_CMD;
		break;
	}
	r->eax = st;
	vmx_mutex_unlock(&b->lock);
}

struct balloon *balloon_core_new(struct gmem *mem)
{
	struct balloon *b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->mem = mem;
	b->nframes = mem->ram_size / PAGE;
	b->locked = calloc((b->nframes + 63) / 64 + 1, 8);
	if (!b->locked) {
		free(b);
		return NULL;
	}
	vmx_mutex_init(&b->lock, VMX_RANK_DEVICE, "balloon");
	b->pub_conn = -1;
	b->pub_target = b->pub_size = UINT64_MAX;
	return b;
}

void balloon_core_free(struct balloon *b)
{
	if (!b)
		return;
	vmx_mutex_destroy(&b->lock);
	free(b->locked);
	free(b);
}

void balloon_core_set_target(struct balloon *b, uint64_t pages)
{
	atomic_store(&b->target, pages);
}

uint64_t balloon_core_target(const struct balloon *b)
{
	return atomic_load(&((struct balloon *)b)->target);
}

uint64_t balloon_core_size(const struct balloon *b)
{
	struct balloon *mb = (struct balloon *)b;
	vmx_mutex_lock(&mb->lock);
	uint64_t n = b->size;
	vmx_mutex_unlock(&mb->lock);
	return n;
}

bool balloon_core_connected(const struct balloon *b)
{
	struct balloon *mb = (struct balloon *)b;
	vmx_mutex_lock(&mb->lock);
	bool c = b->started;
	vmx_mutex_unlock(&mb->lock);
	return c;
}

void balloon_core_reset(struct balloon *b)
{
	vmx_mutex_lock(&b->lock);
	release_all(b);
	b->started = false;
	b->caps = 0;
	vmx_mutex_unlock(&b->lock);
}

/* ---- the device ---- */

static int balloon_vcpu_of_thread(struct vmx_vm *vm)
{
	pthread_t self = pthread_self();
	for (unsigned i = 0; i < vm->ncpus; i++)
		if (vm->vcpus[i].ev && vm->vcpus[i].thread_started &&
		    pthread_equal(vm->vcpus[i].thread, self))
			return (int)i;
	return -1;
}

static uint64_t balloon_port_read(void *opaque, uint64_t off, unsigned size)
{
	struct balloon *b = opaque;
	struct vmx_vm *vm = b->vm;
	int id = balloon_vcpu_of_thread(vm);
	struct vmm_regs regs;

	if (id < 0 || vm->engine->get_regs(vm->vcpus[id].ev, &regs) != 0) {
		vlog_guest("balloon: port read outside a vCPU");
		return BALLOON_ERR_CMD;
	}
	struct balloon_regs r = {
		.eax = (uint32_t)regs.rax, .ecx = (uint32_t)regs.rcx, .rbx = regs.rbx, .rsi = regs.rsi,
	};
	balloon_core_cmd(b, &r);
	/* RAX too: on hv, KVM_SET_REGS during the IN exit wins over the IN's completion. */
	regs.rax = r.eax;
	regs.rbx = r.rbx;
	regs.rcx = r.ecx;
	vm->engine->set_regs(vm->vcpus[id].ev, &regs);
	return r.eax;
}

static void balloon_port_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	vlog_guest("balloon: write to port 0x%x ignored", BALLOON_PORT);
}

static const struct iobus_ops balloon_ops = {
	.read = balloon_port_read, .write = balloon_port_write, .widths = IOBUS_W4,
};

static void balloon_publish(struct balloon *b)
{
	struct vmx_link *lk = b->vm->link;
	uint64_t t = balloon_core_target(b), s = balloon_core_size(b);
	int conn = balloon_core_connected(b);
	char v[32];

	if (!lk || !vmx_link_publish)
		return;
	if (t != b->pub_target) {
		snprintf(v, sizeof(v), "%llu", (unsigned long long)(t / 256));
		vmx_link_publish(lk, "guest/balloon/target_mb", v);
		b->pub_target = t;
	}
	if (s != b->pub_size) {
		snprintf(v, sizeof(v), "%llu", (unsigned long long)(s / 256));
		vmx_link_publish(lk, "guest/balloon/size_mb", v);
		b->pub_size = s;
	}
	if (conn != b->pub_conn) {
		vmx_link_publish(lk, "guest/balloon/connected", conn ? "true" : "false");
		b->pub_conn = conn;
	}
}

static void balloon_timer_cb(void *opaque)
{
	struct balloon *b = opaque;
	balloon_publish(b);
	vmx_timer_arm_in(b->timer, 1000000000ull);
}

static void balloon_on_request(void *opaque, const char *rel, const char *value)
{
	struct balloon *b = opaque;
	char *end;
	if (!value || !*value)
		return;
	unsigned long long mb = strtoull(value, &end, 10);
	if (*end || mb > b->mem->ram_size / (1024 * 1024)) {
		vlog_warn("VMDB request/balloon_mb \"%s\": not a size in MB up to %llu", value,
		          (unsigned long long)(b->mem->ram_size >> 20));
		return;
	}
	vlog_info("balloon: target %llu MB", mb);
	balloon_core_set_target(b, mb * 256);
	balloon_publish(b);
}

static int balloon_init(struct vdev *dev, char *err, size_t errlen)
{
	struct vmx_vm *vm = dev->vm;
	uint64_t mb;

	if (vmxcfg_get_u64(vm->cfg, "sched.mem.balloonTarget", 0, 0, vm->memsize_mb, &mb, err,
	                   errlen) != 0)
		return -1;
	struct balloon *b = balloon_core_new(&vm->mem);
	if (!b) {
		snprintf(err, errlen, "balloon: out of memory");
		return -1;
	}
	b->vm = vm;
	dev->priv = b;
	balloon_core_set_target(b, mb * 256);
	if (iobus_register(&vm->pio, BALLOON_PORT, 4, &balloon_ops, b, "balloon") != 0) {
		snprintf(err, errlen, "balloon: I/O port 0x%x already claimed", BALLOON_PORT);
		return -1;
	}
	return 0;
}

static int balloon_start(struct vdev *dev, char *err, size_t errlen)
{
	struct balloon *b = dev->priv;
	struct vmx_vm *vm = dev->vm;

	if (!vm->link)
		return 0;
	b->timer = vmx_timer_new(vm->loop, VMX_CLOCK_REAL, balloon_timer_cb, b);
	if (!b->timer) {
		snprintf(err, errlen, "balloon: cannot create a timer");
		return -1;
	}
	vmx_timer_arm_in(b->timer, 1000000000ull);
	if (vmx_link_watch)
		vmx_link_watch(vm->link, "request/balloon_mb", balloon_on_request, b);
	balloon_publish(b);
	return 0;
}

static void balloon_reset(struct vdev *dev)
{
	balloon_core_reset(dev->priv);
}

static void balloon_destroy(struct vdev *dev)
{
	struct balloon *b = dev->priv;
	if (!b)
		return;
	iobus_unregister(&dev->vm->pio, BALLOON_PORT, b);
	if (b->timer)
		vmx_timer_free(b->timer);
	balloon_core_free(b);
	dev->priv = NULL;
}

static const struct vdev_class balloon_class = {
	.name = "balloon",
	.order = 60,
	.init = balloon_init,
	.reset = balloon_reset,
	.destroy = balloon_destroy,
	.start = balloon_start,
};

VDEV_REGISTER(balloon_class)
