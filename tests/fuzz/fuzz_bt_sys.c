/*
 * fuzz_bt_sys.c — fuzzes the guest-facing system parts of the bt engine
 * (bt-sys): page walks over guest page tables, descriptor loads from a
 * guest GDT/LDT, far transfers, event delivery through a guest IDT/TSS
 * (nested faults, triple fault), MSR and CR writes, and the LAPIC register
 * file and timer.  The input supplies guest RAM (tables included), the
 * starting mode and a list of operations; every operation may fault, which
 * lands back here through cpu->fault_jmp as it would in the run loop.
 */
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/bt/bt.h"

#define RAM_SIZE (256u << 10)

struct fz {
	const uint8_t *p;
	size_t n;
};

/* Not inlined: inside the setjmp loop its locals trip -Wclobbered under ASan. */
__attribute__((noinline)) static uint64_t take(struct fz *f, unsigned bytes)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < bytes; i++) {
		v <<= 8;
		if (f->n) {
			v |= *f->p++;
			f->n--;
		}
	}
	return v;
}

static void fz_mmio(void *o, unsigned id, uint64_t gpa, unsigned size, bool write, uint8_t *data)
{
	(void)o; (void)id; (void)gpa;
	if (!write)
		memset(data, 0xa5, size);
}

static void fz_pio(void *o, unsigned id, uint16_t port, unsigned size, bool write, uint32_t count,
                   uint8_t *data)
{
	(void)o; (void)id; (void)port;
	if (!write)
		memset(data, 0x5a, (size_t)size * count);
}

static void fz_shutdown(void *o, unsigned id, const char *why)
{
	(void)o; (void)id; (void)why;
}

static bool fz_pic_pending(void *o) { (void)o; return true; }
static int fz_pic_ack(void *o) { (void)o; return 0x30; }
static void fz_eoi(void *o, uint8_t v) { (void)o; (void)v; }

static const struct vmm_host_ops fz_ops = {
	.pic_pending = fz_pic_pending, .pic_ack = fz_pic_ack, .eoi = fz_eoi,
	.pio = fz_pio, .mmio = fz_mmio, .shutdown = fz_shutdown,
};

static void set_flat(struct bt_seg *s, uint16_t sel, uint32_t attr)
{
	s->sel = sel;
	s->base = 0;
	s->limit = 0xffffffffu;
	s->attr = attr;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct bt_vm vm;
	static struct bt_cpu cpu;
	static uint8_t *ram;
	struct fz f = { data, size };

	if (!ram && !(ram = malloc(RAM_SIZE)))
		return 0;
	memset(&vm, 0, sizeof(vm));
	memset(&cpu, 0, sizeof(cpu));
	memset(ram, 0, RAM_SIZE);
	vm.cfg.host = &fz_ops;
	vm.cfg.tsc_hz = 1000000000ull;
	vm.cfg.apic_bus_hz = 100000000ull;
	vm.regions[0] = (struct bt_region){ .gpa = 0, .size = RAM_SIZE, .hva = ram, .flags = 0 };
	vm.nregions = 1;
	vm.cpus[0] = &cpu;
	vm.ncpus = 1;
	vm.boot_ns = bt_now_ns();
	cpu.vm = &vm;
	bt_lapic_reset(&cpu);

	/* The starting mode. */
	unsigned mode = (unsigned)take(&f, 1) % 3;
	cpu.rflags = 2;
	if (mode == 0) {
		for (int i = 0; i < BT_NSEG; i++) {
			cpu.seg[i].limit = 0xffff;
			cpu.seg[i].attr = BT_SEG_P | BT_SEG_S | 0x3;
		}
		cpu.seg[BT_CS].attr = BT_SEG_P | BT_SEG_S | 0xb;
		cpu.cr0 = BT_CR0_ET;
	} else {
		unsigned cpl = (unsigned)take(&f, 1) & 3;
		uint32_t dpl = cpl << 5;
		cpu.cr0 = BT_CR0_PE | BT_CR0_ET | (mode == 2 ? BT_CR0_PG : 0);
		cpu.cr4 = mode == 2 ? BT_CR4_PAE : 0;
		cpu.efer = mode == 2 ? (BT_EFER_LME | BT_EFER_LMA | BT_EFER_NXE) : 0;
		for (int i = 0; i < BT_NSEG; i++)
			set_flat(&cpu.seg[i], (uint16_t)(0x10 | cpl), BT_SEG_P | BT_SEG_S | BT_SEG_G | BT_SEG_DB | dpl | 0x3);
		set_flat(&cpu.seg[BT_CS], (uint16_t)(0x08 | cpl),
		         BT_SEG_P | BT_SEG_S | BT_SEG_G | dpl | 0xb | (mode == 2 ? BT_SEG_L : BT_SEG_DB));
		cpu.cr3 = take(&f, 3) & (RAM_SIZE - 1) & ~0xfffull;
		cpu.gdtr.base = take(&f, 3) & (RAM_SIZE - 1);
		cpu.gdtr.limit = (uint16_t)take(&f, 2);
		cpu.idtr.base = take(&f, 3) & (RAM_SIZE - 1);
		cpu.idtr.limit = (uint16_t)take(&f, 2);
		cpu.tr.base = take(&f, 3) & (RAM_SIZE - 1);
		cpu.tr.limit = (uint32_t)take(&f, 2);
		cpu.tr.attr = BT_SEG_P | 0xb;
		cpu.ldtr.attr = BT_SEG_UNUSABLE;
	}
	bt_update_cpl(&cpu);
	cpu.gpr[BT_RSP] = take(&f, 3) & (RAM_SIZE - 1);

	/* Guest RAM: (offset, length, bytes) runs. */
	unsigned runs = (unsigned)take(&f, 1) & 15;
	for (unsigned r = 0; r < runs && f.n; r++) {
		uint32_t off = (uint32_t)take(&f, 3) & (RAM_SIZE - 1);
		uint32_t len = (uint32_t)take(&f, 2);
		if (len > f.n)
			len = (uint32_t)f.n;
		if (len > RAM_SIZE - off)
			len = RAM_SIZE - off;
		memcpy(ram + off, f.p, len);
		f.p += len;
		f.n -= len;
	}

	/* Operations, each of which may fault into the handler. */
	for (unsigned step = 0; step < 64 && f.n; step++) {
		unsigned op = (unsigned)take(&f, 1);
		cpu.exit_requested = false;
		cpu.exc_depth = 0;
		if (setjmp(cpu.fault_jmp))
			continue;
		cpu.insn_start_rip = cpu.rip;
		switch (op % 14) {
		case 0:
			bt_lin_read(&cpu, take(&f, 8), 1u << (take(&f, 1) & 3), (unsigned)take(&f, 1) & 0xf);
			break;
		case 1:
			bt_lin_write(&cpu, take(&f, 8), 1u << (take(&f, 1) & 3), take(&f, 8), (unsigned)take(&f, 1) & 0xf);
			break;
		case 2:
			bt_load_seg(&cpu, (enum bt_sreg)(take(&f, 1) % BT_NSEG), (uint16_t)take(&f, 2));
			break;
		case 3:
			bt_deliver(&cpu, (unsigned)take(&f, 1), (uint32_t)take(&f, 2), take(&f, 1) & 1, take(&f, 1) & 1);
			break;
		case 4:
			bt_lapic_write(&cpu, (uint32_t)take(&f, 2) & 0xff0, (uint32_t)take(&f, 4));
			break;
		case 5:
			(void)bt_lapic_read(&cpu, (uint32_t)take(&f, 2) & 0xff0);
			(void)bt_lapic_pending(&cpu);
			break;
		case 6:
			bt_far_jmp(&cpu, (uint16_t)take(&f, 2), take(&f, 4), 2u << (take(&f, 1) % 3));
			break;
		case 7:
			bt_far_call(&cpu, (uint16_t)take(&f, 2), take(&f, 4), 2u << (take(&f, 1) % 3));
			break;
		case 8:
			bt_far_ret(&cpu, 2u << (take(&f, 1) % 3), (uint16_t)take(&f, 2));
			break;
		case 9: {
			uint32_t idx = (uint32_t)take(&f, 4);
			uint64_t v;
			if (take(&f, 1) & 1)
				(void)bt_wrmsr(&cpu, idx, take(&f, 8));
			else
				(void)bt_rdmsr(&cpu, idx, &v);
			break;
		}
		case 10:
			bt_write_cr(&cpu, (unsigned)take(&f, 1) % 9, take(&f, 8));
			break;
		case 11:
			cpu.rflags |= BT_IF;
			(void)bt_check_interrupts(&cpu);
			break;
		case 12:
			(void)bt_lapic_poll_timer(&cpu, bt_now_ns() + take(&f, 4) * 1000);
			break;
		case 13: {
			uint8_t buf[16];
			(void)bt_fetch(&cpu, take(&f, 8), buf, sizeof(buf));
			(void)bt_mmu_peek(&cpu, take(&f, 8), buf, sizeof(buf));
			break;
		}
		}
	}
	return 0;
}
