/*
 * bt_alu.h — helpers shared by the integer instruction files (bt_alu.c,
 * bt_ctl.c, bt_string.c).  Internal to bt-core.
 */
#ifndef VIREO_BT_ALU_H
#define VIREO_BT_ALU_H

#include "bt.h"

void bt_ctl_init(void);
void bt_string_init(void);

static inline uint64_t bt_mask(unsigned size)
{
	return size >= 8 ? ~0ull : (1ull << (size * 8)) - 1;
}

static inline uint64_t bt_msb(unsigned size)
{
	return 1ull << (size * 8 - 1);
}

/* Sign-extend the low size bytes of v. */
static inline int64_t bt_sext(uint64_t v, unsigned size)
{
	unsigned sh = 64 - size * 8;
	return (int64_t)(v << sh) >> sh;
}

/* Operation size in bytes. */
static inline unsigned bt_osz(const struct bt_insn *in)
{
	return in->zi.operand_width / 8u;
}

static inline bool bt_is64(const struct bt_insn *in)
{
	return in->zi.machine_mode == ZYDIS_MACHINE_MODE_LONG_64;
}

/* Stack address size in bytes: 8 in 64-bit mode, else SS.B. */
static inline unsigned bt_stack_size(const struct bt_cpu *cpu)
{
	if (bt_long_mode(cpu) && (cpu->seg[BT_CS].attr & BT_SEG_L))
		return 8;
	return (cpu->seg[BT_SS].attr & BT_SEG_DB) ? 4 : 2;
}

/* Write a stack pointer value with the stack address size. */
static inline void bt_set_sp(struct bt_cpu *cpu, uint64_t v, unsigned ss)
{
	if (ss == 8)
		cpu->gpr[BT_RSP] = v;
	else if (ss == 4)
		cpu->gpr[BT_RSP] = (uint32_t)v;
	else
		cpu->gpr[BT_RSP] = (cpu->gpr[BT_RSP] & ~0xffffull) | (uint16_t)v;
}

/* PUSH: the store comes first, so a fault leaves RSP unchanged. */
static inline void bt_push(struct bt_cpu *cpu, uint64_t v, unsigned size)
{
	unsigned ss = bt_stack_size(cpu);
	uint64_t sp = (cpu->gpr[BT_RSP] - size) & bt_mask(ss);
	bt_mem_write(cpu, BT_SS, sp, size, v);
	bt_set_sp(cpu, sp, ss);
}

/* Read the top of stack at a byte offset from RSP, without popping. */
static inline uint64_t bt_stack_peek(struct bt_cpu *cpu, uint64_t off, unsigned size)
{
	unsigned ss = bt_stack_size(cpu);
	return bt_mem_read(cpu, BT_SS, (cpu->gpr[BT_RSP] + off) & bt_mask(ss), size);
}

static inline void bt_stack_adjust(struct bt_cpu *cpu, int64_t delta)
{
	unsigned ss = bt_stack_size(cpu);
	bt_set_sp(cpu, (cpu->gpr[BT_RSP] + (uint64_t)delta) & bt_mask(ss), ss);
}

/* Set CF/OF explicitly, SF/ZF/PF from res, AF cleared. */
static inline void bt_flags_cf_of(struct bt_cpu *cpu, unsigned size, uint64_t res, bool cf, bool of)
{
	bt_lazy_set(&cpu->lazy, BT_CC_LOGIC, size, res, 0, 0);
	uint64_t f = bt_get_rflags(cpu) & ~(uint64_t)(BT_CF | BT_OF);
	if (cf)
		f |= BT_CF;
	if (of)
		f |= BT_OF;
	cpu->rflags = f;
}

/* Replace only the given arithmetic flag bits. */
static inline void bt_flags_set_bits(struct bt_cpu *cpu, uint64_t mask, uint64_t val)
{
	uint64_t f = bt_get_rflags(cpu);
	cpu->rflags = (f & ~mask) | (val & mask);
}

/*
 * Fast path for memory in 64-bit mode: a software-TLB hit inside one page of
 * RAM, with the permissions the slow path would check (CPL 3 needs USER; a
 * write needs RW and DIRTY and must not hit a code page).  Anything else
 * returns NULL: the caller takes bt_mem_read/bt_mem_write, which also fill
 * the TLB.  The tag holds the full canonical page address, so a
 * non-canonical address never hits.
 */
/* Host pointer for [lin, lin+len) inside one page when the software TLB
 * holds it with the right permissions; NULL otherwise. */
static inline uint8_t *bt_tlb_ptr_inl(struct bt_cpu *cpu, uint64_t lin, unsigned len, bool write)
{
	if ((lin & 0xfff) + len > 4096)
		return NULL;
	const struct bt_tlb_entry *t = &cpu->tlb[(lin >> 12) & (BT_TLB_SIZE - 1)];
	if (t->tag != ((lin & ~0xfffull) | 1) || !t->hva)
		return NULL;
	if (cpu->cpl == 3 && !(t->perm & BT_TLB_USER))
		return NULL;
	if (write && (t->perm & (BT_TLB_DIRTY | BT_TLB_CODE | BT_TLB_RW)) != (BT_TLB_DIRTY | BT_TLB_RW))
		return NULL;
	return t->hva + (lin & 0xfff);
}

static inline uint8_t *bt_mem_ptr_inl(struct bt_cpu *cpu, enum bt_sreg s, uint64_t off, unsigned len,
                                      bool write)
{
	if (!(cpu->seg[BT_CS].attr & BT_SEG_L) || !(cpu->efer & BT_EFER_LMA))
		return NULL;
	return bt_tlb_ptr_inl(cpu, off + ((s == BT_FS || s == BT_GS) ? cpu->seg[s].base : 0), len, write);
}

/* ---- compiled fast forms of common instructions (bt_fast.c) ---- */

struct bt_fop {
	uint8_t kind;                /* BT_FOP_* */
	uint8_t reg;                 /* REG: gpr; MEM: base gpr, BT_FOP_NONE or BT_FOP_RIP */
	uint8_t index;               /* MEM: index gpr or BT_FOP_NONE */
	uint8_t scale;
	uint8_t seg;                 /* enum bt_sreg */
	int64_t val;                 /* MEM: displacement; IMM: value */
};
enum { BT_FOP_REG = 1, BT_FOP_MEM, BT_FOP_IMM };
#define BT_FOP_NONE 0xff
#define BT_FOP_RIP  0xfe

struct bt_fast;
typedef void (*bt_fast_fn)(struct bt_cpu *cpu, const struct bt_fast *f);
struct bt_fast {
	bt_fast_fn fn;               /* NULL: use the generic handler */
	uint8_t size;                /* operation size in bytes (4 or 8) */
	uint8_t ssize;               /* MOVZX: source size */
	struct bt_fop a, b;
};
/* Fill f for in, or leave f->fn NULL when the form is not covered. */
void bt_fast_compile(const struct bt_insn *in, struct bt_fast *f);

#endif
