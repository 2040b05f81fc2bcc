/*
 * bt.h — internals of the bt engine, a software x86-64 CPU.
 *
 * Pieces and owners (one file group each):
 *   bt_engine.c   the vmm.h contract: VM/vCPU objects, run loop, kick, regs
 *   bt_tc.c       translation units: decode (Zydis) guest code into basic
 *                 blocks, keyed by physical address and mode, chained to
 *                 successors, invalidated when their code pages are written
 *   bt_exec.c     operand access, effective addresses, the dispatch table
 *   bt_flags.c    lazy arithmetic flags
 *   bt_alu.c      integer, control-flow, string and bit instructions
 *   bt_mmu.c      software TLB, page walks, A/D bits, physical access, MMIO
 *   bt_seg.c      segmentation, descriptor loads, far transfers, mode changes
 *   bt_exc.c      exceptions and interrupts through the IDT, IRET, triple fault
 *   bt_sys.c      privileged/system instructions, MSRs, CPUID, TSC, I/O, HLT
 *   bt_lapic.c    the local APIC
 *   bt_x87.c      x87 and MMX
 *   bt_sse.c      SSE..SSSE3 (+ POPCNT etc. as implemented), FXSAVE/FXRSTOR
 *
 * Faults: every helper that can fault (memory access, segment load, a
 * privileged instruction at CPL>0) calls bt_raise(), which longjmps to the
 * instruction boundary in the run loop.  The instruction has then not
 * retired: handlers must write architectural state only after the last
 * operation that can fault, or write it in an order that makes re-execution
 * idempotent (as hardware does for e.g. PUSH: the store comes first).
 *
 * Guest data is hostile: nothing here asserts on it.  An instruction the
 * engine does not implement raises #UD in the guest and is logged once per
 * mnemonic (bt_unimplemented()).
 */
#ifndef VIREO_BT_H
#define VIREO_BT_H

#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <Zydis/Zydis.h>

#include "../vmm.h"

struct bt_vm;
struct bt_cpu;

/* ---- registers ---- */

enum bt_gpr {
	BT_RAX, BT_RCX, BT_RDX, BT_RBX, BT_RSP, BT_RBP, BT_RSI, BT_RDI,
	BT_R8, BT_R9, BT_R10, BT_R11, BT_R12, BT_R13, BT_R14, BT_R15,
};

enum bt_sreg { BT_ES, BT_CS, BT_SS, BT_DS, BT_FS, BT_GS, BT_NSEG };

/* RFLAGS bits */
#define BT_CF   0x0001u
#define BT_PF   0x0004u
#define BT_AF   0x0010u
#define BT_ZF   0x0040u
#define BT_SF   0x0080u
#define BT_TF   0x0100u
#define BT_IF   0x0200u
#define BT_DF   0x0400u
#define BT_OF   0x0800u
#define BT_IOPL 0x3000u
#define BT_NT   0x4000u
#define BT_RF   0x10000u
#define BT_VM   0x20000u
#define BT_AC   0x40000u
#define BT_VIF  0x80000u
#define BT_VIP  0x100000u
#define BT_ID   0x200000u
#define BT_ARITH_FLAGS (BT_CF | BT_PF | BT_AF | BT_ZF | BT_SF | BT_OF)

/* CR0/CR4/EFER bits used across files */
#define BT_CR0_PE 0x1u
#define BT_CR0_MP 0x2u
#define BT_CR0_EM 0x4u
#define BT_CR0_TS 0x8u
#define BT_CR0_ET 0x10u
#define BT_CR0_NE 0x20u
#define BT_CR0_WP 0x10000u
#define BT_CR0_AM 0x40000u
#define BT_CR0_PG 0x80000000u
#define BT_CR4_PSE 0x10u
#define BT_CR4_PAE 0x20u
#define BT_CR4_PGE 0x80u
#define BT_CR4_OSFXSR 0x200u
#define BT_CR4_OSXMMEXCPT 0x400u
#define BT_CR4_FSGSBASE 0x10000u
#define BT_EFER_SCE 0x1u
#define BT_EFER_LME 0x100u
#define BT_EFER_LMA 0x400u
#define BT_EFER_NXE 0x800u

/* Exception vectors */
enum {
	BT_DE = 0, BT_DB = 1, BT_NMI = 2, BT_BP = 3, BT_OFV = 4, BT_BR = 5, BT_UD = 6, BT_NM = 7,
	BT_DF_EXC = 8, BT_TS = 10, BT_NP = 11, BT_SS_EXC = 12, BT_GP = 13, BT_PF_EXC = 14,
	BT_MF = 16, BT_AC_EXC = 17, BT_MC = 18, BT_XM = 19,
};

/* Cached segment descriptor. attr uses the VMX access-rights layout:
 * type[3:0] s[4] dpl[6:5] p[7] avl[12] l[13] db[14] g[15] unusable[16]. */
struct bt_seg {
	uint16_t sel;
	uint64_t base;
	uint32_t limit;      /* byte granular */
	uint32_t attr;
};
#define BT_SEG_S    (1u << 4)
#define BT_SEG_P    (1u << 7)
#define BT_SEG_L    (1u << 13)
#define BT_SEG_DB   (1u << 14)
#define BT_SEG_G    (1u << 15)
#define BT_SEG_UNUSABLE (1u << 16)
#define BT_SEG_DPL(a) (((a) >> 5) & 3u)

struct bt_dtr {
	uint64_t base;
	uint16_t limit;
};

/* ---- lazy flags (bt_flags.c) ---- */

enum bt_cc_op {
	BT_CC_NONE,      /* arithmetic flags are in cpu->rflags */
	BT_CC_ADD, BT_CC_ADC, BT_CC_SUB, BT_CC_SBB,
	BT_CC_LOGIC,     /* AND/OR/XOR/TEST: CF=OF=0, AF undefined (0) */
	BT_CC_INC, BT_CC_DEC,   /* CF preserved from cc_src2 */
	BT_CC_NEG,
	BT_CC_SHL, BT_CC_SHR, BT_CC_SAR,
	BT_CC_MUL,       /* CF=OF = (cc_src1 != 0) */
};

struct bt_lazy {
	uint8_t op;      /* enum bt_cc_op */
	uint8_t size;    /* operand size in bytes: 1, 2, 4, 8 */
	uint64_t dst;    /* result */
	uint64_t src1;   /* first operand */
	uint64_t src2;   /* second operand (or carry-in / preserved CF / shift count) */
};

/* Record the flags of an operation; materialised only when read. */
static inline void bt_lazy_set(struct bt_lazy *l, enum bt_cc_op op, unsigned size,
                               uint64_t dst, uint64_t src1, uint64_t src2)
{
	l->op = (uint8_t)op;
	l->size = (uint8_t)size;
	l->dst = dst;
	l->src1 = src1;
	l->src2 = src2;
}

/* ---- the local APIC (bt_lapic.c) ---- */

struct bt_lapic {
	uint64_t base_msr;           /* IA32_APIC_BASE */
	uint32_t id, tpr, ldr, dfr, svr, lvt[7], icr_lo, icr_hi, esr;
	uint32_t timer_initial, timer_divide;
	uint64_t timer_start_ns;     /* when the current count started */
	uint64_t timer_deadline_ns;  /* next expiry in host monotonic ns, 0 = none */
	uint64_t tsc_deadline;       /* IA32_TSC_DEADLINE */
	uint32_t irr[8], isr[8], tmr[8];
	atomic_uint pending_ext;     /* set from other threads: re-scan irr_ext */
	atomic_uint irr_ext[8];      /* vectors posted by other threads */
	atomic_uint tmr_ext[8];      /* ... and which of them are level-triggered */
};

/* ---- the vCPU ---- */

#define BT_MAX_INSN_LEN 15

struct bt_tlb_entry {
	uint64_t tag;                /* linear page number | 1 (valid), or 0 */
	uint8_t *hva;                /* host address of the page, NULL for MMIO */
	uint64_t gpa;                /* guest-physical page address */
	uint32_t perm;               /* BT_TLB_* */
};
#define BT_TLB_SIZE 1024
#define BT_TLB_R     0x1u
#define BT_TLB_W     0x2u        /* writable with current CR0.WP / U/S rules */
#define BT_TLB_X     0x4u
#define BT_TLB_USER  0x8u        /* accessible at CPL 3 */
#define BT_TLB_GLOBAL 0x10u
#define BT_TLB_CODE  0x20u       /* page holds translated code: writes go slow path */
#define BT_TLB_DIRTY 0x40u       /* the PTE's D bit is already set */
#define BT_TLB_RW    0x400u      /* R/W set at every level (bt_mmu.c); used by the
                                  * bt_exec.c fast path, keep the two in step */

/* Access kinds for bt_mmu_*() and bt_mem_*() */
#define BT_ACC_READ  0x1u
#define BT_ACC_WRITE 0x2u
#define BT_ACC_EXEC  0x4u
#define BT_ACC_SUPER 0x8u        /* implicit supervisor access (descriptor tables, IDT, TSS) */

struct bt_cpu {
	/* architectural state */
	uint64_t gpr[16];
	uint64_t rip;
	uint64_t rflags;             /* non-arithmetic bits always; arithmetic ones when lazy.op == NONE */
	struct bt_lazy lazy;
	struct bt_seg seg[BT_NSEG];
	struct bt_seg ldtr, tr;
	struct bt_dtr gdtr, idtr;
	uint64_t cr0, cr2, cr3, cr4, cr8;
	uint64_t dr[8];
	uint64_t efer;
	unsigned cpl;

	/* MSRs */
	uint64_t star, lstar, cstar, sfmask, kernel_gs_base;
	uint64_t sysenter_cs, sysenter_esp, sysenter_eip;
	uint64_t pat, misc_enable, tsc_offset, tsc_aux;
	uint64_t mtrr_def_type, mtrr_fixed[11], mtrr_var[16];

	/* x87 / MMX / SSE (bt_x87.c, bt_sse.c) */
	long double st[8];           /* physical registers R0..R7 */
	uint16_t fcw, fsw, ftw;      /* ftw: full 2-bit tag word */
	uint16_t fop;
	uint64_t fip, fdp;
	uint16_t fcs, fds;
	uint32_t mxcsr;
	uint8_t xmm[16][16] __attribute__((aligned(16)));

	/* the local APIC */
	struct bt_lapic lapic;

	/* execution */
	bool halted;
	bool irq_shadow;             /* after STI / MOV SS: no interrupt before the next insn */
	bool nmi_pending;
	uint64_t insn_start_rip;     /* RIP of the instruction being executed */
	unsigned insn_len;
	jmp_buf fault_jmp;           /* bt_raise() lands here */
	int exc_depth;               /* nested delivery: 1 = #DF on next, 2 = triple fault */
	bool end_block;              /* set by a handler (mode/CR change, HLT, STI, far
	                              * transfer, IRET): the run loop must not run the
	                              * rest of the unit; it clears the flag */
	uint8_t exc_class;           /* bt_exc.c: class of the event being delivered */
	uint64_t icount;             /* retired instructions */

	/* the software TLB (bt_mmu.c) */
	struct bt_tlb_entry tlb[BT_TLB_SIZE];

	/* links */
	struct bt_vm *vm;
	unsigned id;
	atomic_bool kick;            /* leave the run loop at the next block boundary */
	struct vmm_exit *exit;       /* set when the run loop must return */
	bool exit_requested;
};

/* ---- the VM ---- */

#define BT_MAX_REGIONS 32           /* = GMEM_MAX_REGIONS (PAM slots, RAM BARs) */

struct bt_region {
	uint64_t gpa, size;
	uint8_t *hva;
	uint32_t flags;              /* VMM_MEM_READONLY */
};

/* Dirty logging of one VMM_MEM_LOG_DIRTY region (bt_dirty.c), under dlog_lock. */
struct bt_dirty {
	uint64_t *dirty, *pending, *again;   /* one bit per page; one allocation */
	uint64_t words;                      /* 0: the region is not logged */
};

struct bt_vm {
	struct vmm_vm_config cfg;
	struct bt_region regions[BT_MAX_REGIONS];
	unsigned nregions;
	struct bt_cpu *cpus[64];
	unsigned ncpus;
	struct bt_tc *tc;            /* translation cache (bt_tc.c) */
	uint8_t *code_bitmap;        /* one bit per 4 KiB guest-physical page holding code */
	uint64_t code_bitmap_pages;
	uint64_t boot_ns;            /* host monotonic time at VM creation */
	void *trace;                 /* FILE * for the execution trace, or NULL */
	pthread_mutex_t dlog_lock;   /* dlog; leaf lock */
	struct bt_dirty dlog[BT_MAX_REGIONS];
	atomic_bool dlog_active;     /* some region is logged */
	atomic_bool dlog_rearm;      /* pages wait for the vCPU to watch them again */
};

/* ---- the dispatch table (bt_exec.c) ---- */

struct bt_insn {
	ZydisDecodedInstruction zi;
	ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
};

typedef void (*bt_handler)(struct bt_cpu *cpu, const struct bt_insn *in);

/* Handlers by ZydisMnemonic. Each file registers its own in its init function. */
void bt_exec_register(ZydisMnemonic m, bt_handler h);
void bt_alu_init(void);
void bt_sys_init(void);
void bt_x87_init(void);
void bt_sse_init(void);
/* String instructions (Zydis category STRINGOP: MOVS CMPS STOS LODS SCAS INS
 * OUTS) dispatch through their own table first, so MOVSD/CMPSD (string) and
 * MOVSD/CMPSD (SSE2) can have different handlers.  Falls back to the main
 * table when no string handler is registered. */
void bt_exec_register_string(ZydisMnemonic m, bt_handler h);
/* Execute one decoded instruction (RIP already points past it). */
void bt_exec_insn(struct bt_cpu *cpu, const struct bt_insn *in);
/* The handler bt_exec_insn would call (resolved once at translation time). */
bt_handler bt_exec_lookup(const struct bt_insn *in);

/* Operands of a decoded instruction (bt_exec.c). idx indexes in->ops. */
uint64_t bt_op_read(struct bt_cpu *cpu, const struct bt_insn *in, unsigned idx);
void bt_op_write(struct bt_cpu *cpu, const struct bt_insn *in, unsigned idx, uint64_t v);
/* Wide operands (XMM, m128, m80, m512): bytes little-endian. */
void bt_op_read_buf(struct bt_cpu *cpu, const struct bt_insn *in, unsigned idx, void *buf, unsigned len);
void bt_op_write_buf(struct bt_cpu *cpu, const struct bt_insn *in, unsigned idx, const void *buf, unsigned len);
/* Host pointer for [off, off+len) in segment s when the access hits the
 * software TLB within one RAM page in 64-bit mode with the right permissions;
 * NULL otherwise (then use bt_mem_*).  For bulk and string fast paths. */
uint8_t *bt_mem_ptr(struct bt_cpu *cpu, enum bt_sreg s, uint64_t off, unsigned len, bool write);
/* Effective address (offset within the segment) of a memory operand. */
uint64_t bt_op_ea(struct bt_cpu *cpu, const struct bt_insn *in, unsigned idx);
/* Segment register used by a memory operand. */
enum bt_sreg bt_op_seg(const struct bt_insn *in, unsigned idx);

/* GPR access with x86 partial-register semantics (32-bit writes zero-extend). */
uint64_t bt_gpr_read(struct bt_cpu *cpu, ZydisRegister r);
void bt_gpr_write(struct bt_cpu *cpu, ZydisRegister r, uint64_t v);

/* ---- flags (bt_flags.c) ---- */

uint64_t bt_get_rflags(struct bt_cpu *cpu);          /* materialise the full RFLAGS */
void bt_set_rflags(struct bt_cpu *cpu, uint64_t v);  /* all bits; sets lazy.op = NONE */
bool bt_cond(struct bt_cpu *cpu, unsigned cc);       /* Jcc/SETcc/CMOVcc condition 0..15 */
bool bt_get_cf(struct bt_cpu *cpu);

/* ---- memory (bt_mmu.c) ---- */

/* Segment-relative access: limit/type checks (not in 64-bit mode), then linear. */
uint64_t bt_mem_read(struct bt_cpu *cpu, enum bt_sreg s, uint64_t off, unsigned size);
void bt_mem_write(struct bt_cpu *cpu, enum bt_sreg s, uint64_t off, unsigned size, uint64_t v);
void bt_mem_read_buf(struct bt_cpu *cpu, enum bt_sreg s, uint64_t off, void *buf, unsigned len);
void bt_mem_write_buf(struct bt_cpu *cpu, enum bt_sreg s, uint64_t off, const void *buf, unsigned len);
/* Linear access; acc is BT_ACC_* (BT_ACC_SUPER for implicit system accesses). */
uint64_t bt_lin_read(struct bt_cpu *cpu, uint64_t lin, unsigned size, unsigned acc);
void bt_lin_write(struct bt_cpu *cpu, uint64_t lin, unsigned size, uint64_t v, unsigned acc);
/* Segment base + offset with checks; raises #GP/#SS on a violation. */
uint64_t bt_seg_linear(struct bt_cpu *cpu, enum bt_sreg s, uint64_t off, unsigned size, unsigned acc);
/* Translate linear -> guest-physical for an access; raises #PF. */
uint64_t bt_mmu_translate(struct bt_cpu *cpu, uint64_t lin, unsigned acc);
/* Fetch instruction bytes at RIP (may cross a page); returns bytes available (<= len). */
unsigned bt_fetch(struct bt_cpu *cpu, uint64_t lin, uint8_t *buf, unsigned len);
void bt_tlb_flush(struct bt_cpu *cpu, bool include_global);
/* Read linear memory without faulting or setting A/D bits (logs, traces); false if unmapped. */
bool bt_mmu_peek(struct bt_cpu *cpu, uint64_t lin, void *buf, unsigned len);
void bt_tlb_flush_page(struct bt_cpu *cpu, uint64_t lin);
/* Host pointer for guest-physical [gpa, gpa+len) in RAM, or NULL (MMIO/unmapped). */
uint8_t *bt_phys_ptr(struct bt_vm *vm, uint64_t gpa, uint64_t len, bool write);
/* The same for one page-contained access on a fast path: plain RAM only, not
 * the LAPIC page, and for a write not a page holding translated code. */
uint8_t *bt_phys_ptr_fast(struct bt_cpu *cpu, uint64_t gpa, unsigned len, bool write);
/* Physical read/write with MMIO dispatch to the platform. */
uint64_t bt_phys_read(struct bt_cpu *cpu, uint64_t gpa, unsigned size);
void bt_phys_write(struct bt_cpu *cpu, uint64_t gpa, unsigned size, uint64_t v);

/* ---- translation cache (bt_tc.c) ---- */

struct bt_tc;
struct bt_tc *bt_tc_new(struct bt_vm *vm);
void bt_tc_free(struct bt_tc *tc);
/* A guest write hit a physical page that holds translated code. */
void bt_tc_invalidate_page(struct bt_vm *vm, uint64_t gpa_page);
void bt_tc_flush(struct bt_vm *vm);
/* Run translated code until an exit or kick; returns when cpu->exit_requested. */
void bt_tc_run(struct bt_cpu *cpu);
/* Counters for vm_stats (bt_tc.c). */
struct bt_tc_stats {
	uint64_t blocks, insns, flushes, invalidated;
};
const struct bt_tc_stats *bt_tc_stats(const struct bt_tc *tc);
/* Dirty logging (bt_dirty.c). */
void bt_dirty_note(struct bt_vm *vm, uint64_t gpa_page);   /* a watched page was written */
void bt_dirty_unwatched(struct bt_vm *vm);                  /* the code bitmap was cleared */
int bt_dirty_set_region(struct bt_vm *vm, unsigned slot, bool log);
void bt_dirty_rearm(struct bt_cpu *cpu);                    /* vCPU thread, between runs */
int bt_dirty_get(struct bt_vm *vm, unsigned slot, uint64_t *bitmap, size_t words);
void bt_dirty_free(struct bt_vm *vm);
static inline bool bt_page_is_code(const struct bt_vm *vm, uint64_t gpa)
{
	uint64_t pfn = gpa >> 12;
	return pfn < vm->code_bitmap_pages && (vm->code_bitmap[pfn >> 3] >> (pfn & 7)) & 1u;
}

/* ---- exceptions and interrupts (bt_exc.c) ---- */

/*
 * Fault protocol (bt_exc.c): bt_raise() sets RIP back to cpu->insn_start_rip,
 * DELIVERS the exception itself through the IDT (nested faults become #DF,
 * then triple fault -> host->shutdown, cpu->exit VMM_EXIT_SHUTDOWN,
 * cpu->exit_requested), then longjmps to cpu->fault_jmp.  After the longjmp
 * the run loop only resumes at cpu->rip (checking exit_requested/halted); it
 * needs no pending-event state.  bt_check_interrupts() and INT n also
 * deliver directly and may bt_raise(), so fault_jmp must be armed when the
 * run loop calls bt_check_interrupts().
 */
_Noreturn void bt_raise(struct bt_cpu *cpu, unsigned vector, uint32_t errcode, bool has_err);
static inline _Noreturn void bt_raise_gp(struct bt_cpu *cpu, uint32_t err) { bt_raise(cpu, BT_GP, err, true); }
static inline _Noreturn void bt_raise_ud(struct bt_cpu *cpu) { bt_raise(cpu, BT_UD, 0, false); }
/* Deliver an event through the IDT (called from the run loop, not from handlers).
 * soft: INT n/INT3/INTO (privilege check against the gate DPL, RIP after insn). */
void bt_deliver(struct bt_cpu *cpu, unsigned vector, uint32_t errcode, bool has_err, bool soft);
/* Check for and deliver a pending external interrupt or NMI; returns true if one was delivered. */
bool bt_check_interrupts(struct bt_cpu *cpu);
/* Log an unimplemented instruction once per mnemonic and raise #UD. */
_Noreturn void bt_unimplemented(struct bt_cpu *cpu, const struct bt_insn *in);

/* ---- segmentation and modes (bt_seg.c) ---- */

/* Load a segment register in the current mode (real/v86: base = sel<<4). */
void bt_load_seg(struct bt_cpu *cpu, enum bt_sreg s, uint16_t sel);
/* 64-bit code (CS.L with EFER.LMA), else 32 (CS.D) or 16. */
unsigned bt_code_bits(const struct bt_cpu *cpu);
bool bt_long_mode(const struct bt_cpu *cpu);
/* Mode key for the translation cache: code bits and the relevant CR0/CR4/EFER bits. */
uint32_t bt_mode_key(const struct bt_cpu *cpu);
void bt_update_cpl(struct bt_cpu *cpu);

/*
 * Far transfers (bt_seg.c), for bt_alu.c's JMP/CALL/RET when
 * in->zi.meta.branch_type == ZYDIS_BRANCH_TYPE_FAR.  opsize is the operand
 * size in bytes (2, 4, 8); RIP already points past the instruction; they set
 * cpu->end_block.  MOV/PUSH/POP to a segment register go through
 * bt_load_seg() (which also sets the MOV SS interrupt shadow for SS).
 */
void bt_far_jmp(struct bt_cpu *cpu, uint16_t sel, uint64_t off, unsigned opsize);
void bt_far_call(struct bt_cpu *cpu, uint16_t sel, uint64_t off, unsigned opsize);
void bt_far_ret(struct bt_cpu *cpu, unsigned opsize, uint16_t imm);
/* Descriptors (bt_seg.c; for bt_exc.c/bt_sys.c): read the 8-byte GDT/LDT entry
 * for sel (false: outside the table limit or no LDT), unpack a code/data
 * descriptor into a cache, set its accessed bit in memory. */
bool bt_desc_read(struct bt_cpu *cpu, uint16_t sel, uint64_t *desc);
void bt_desc_unpack(uint64_t desc, uint16_t sel, struct bt_seg *out);
void bt_desc_set_accessed(struct bt_cpu *cpu, uint16_t sel, uint64_t desc);
/* Stack through SS at the current stack-address width (2, 4, 8 bytes);
 * push/pop commit RSP only after the memory access succeeded. */
unsigned bt_stack_width(const struct bt_cpu *cpu);
void bt_sys_push(struct bt_cpu *cpu, unsigned size, uint64_t v);
uint64_t bt_sys_pop(struct bt_cpu *cpu, unsigned size);
/* Registration of bt_seg.c/bt_exc.c handlers; called from bt_sys_init(). */
void bt_seg_register(void);
void bt_exc_register(void);

/*
 * CPUID features beyond the baseline: the implementing owner sets its
 * define to 1 when the instructions work (bt-fpu: SSE3, SSSE3; bt-core:
 * CX16, POPCNT).  bt_sys.c's CPUID reports exactly these.
 */
#define BT_FEAT_SSE3   1   /* bt_sse.c, bt_sse_int.c, FISTTP in bt_x87.c */
#define BT_FEAT_SSSE3  1
#define BT_FEAT_CX16   1
#define BT_FEAT_POPCNT 1

/* ---- system (bt_sys.c) ---- */

uint64_t bt_rdtsc(struct bt_cpu *cpu);
void bt_cpuid(struct bt_cpu *cpu, uint32_t leaf, uint32_t sub, uint32_t out[4]);
/* MSR access; false means #GP. */
bool bt_rdmsr(struct bt_cpu *cpu, uint32_t idx, uint64_t *v);
bool bt_wrmsr(struct bt_cpu *cpu, uint32_t idx, uint64_t v);
/* Port I/O to the platform (synchronous host op). */
uint32_t bt_io_in(struct bt_cpu *cpu, uint16_t port, unsigned size);
void bt_io_out(struct bt_cpu *cpu, uint16_t port, unsigned size, uint32_t v);
/* CR writes with their side effects (TLB flush, mode change, TC mode key). */
void bt_write_cr(struct bt_cpu *cpu, unsigned cr, uint64_t v);

/* ---- LAPIC (bt_lapic.c) ---- */

void bt_lapic_reset(struct bt_cpu *cpu);
uint32_t bt_lapic_read(struct bt_cpu *cpu, uint32_t off);
void bt_lapic_write(struct bt_cpu *cpu, uint32_t off, uint32_t v);
/* Post a vector from any thread (MSI/IPI); kicks the target. */
void bt_lapic_post(struct bt_cpu *cpu, uint8_t vector, bool level);
/* Highest-priority deliverable vector, or -1; ack moves it IRR->ISR. */
int bt_lapic_pending(struct bt_cpu *cpu);
void bt_lapic_ack(struct bt_cpu *cpu, int vector);
/* Fire due timers; returns the next deadline in host ns (0 = none). */
uint64_t bt_lapic_poll_timer(struct bt_cpu *cpu, uint64_t now_ns);
bool bt_lapic_extint_enabled(const struct bt_cpu *cpu);  /* LINT0 in ExtINT mode, or LAPIC disabled */
uint64_t bt_lapic_msr_read(struct bt_cpu *cpu, uint32_t idx);   /* x2APIC MSRs, TSC deadline */
bool bt_lapic_msr_write(struct bt_cpu *cpu, uint32_t idx, uint64_t v);

/* ---- FPU/SSE (bt_x87.c, bt_sse.c) ---- */

void bt_fpu_reset(struct bt_cpu *cpu);   /* FNINIT + MXCSR default */
void bt_fxsave(struct bt_cpu *cpu, uint8_t out[512]);
void bt_fxrstor(struct bt_cpu *cpu, const uint8_t in[512]);  /* may raise #GP on bad MXCSR */

/* ---- misc ---- */

/* bt_engine.c: wake a vCPU sleeping in HLT so it re-evaluates interrupts
 * (bt_lapic_post and NMI/INIT delivery call this; any thread).  Unlike
 * vmm_vcpu_kick it does not make vcpu_run return VMM_EXIT_KICKED. */
void bt_vcpu_wake(struct bt_cpu *cpu);

uint64_t bt_now_ns(void);
void bt_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
