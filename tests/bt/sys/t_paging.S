/*
 * t_paging.S — 4-level paging: 1 GiB and 2 MiB pages, 4 KiB remaps with
 * INVLPG, A/D bits, NX (#PF with I), CR0.WP, reserved bits (#PF with RSVD),
 * U/S from CPL 3 (entered by IRETQ), and global pages with CR4.PGE.
 */
#include "common.inc"

#define PG_A 0x1F0000
#define PG_B 0x1F1000
#define PG_C 0x1F2000
#define PG_D 0x1F3000
#define PG_E 0x1F4000
#define PG_F 0x1F5000
#define PG_G 0x1F6000

	.code64
test_main:
	HANDLE 14, h_recover
	HANDLE 0x80, h_back_to_kernel

	/* 1 GiB page: linear 1G + x -> phys x */
	movq $0x1122334455667788, %rax
	movq %rax, PG_A
	movl $0x40000000 + PG_A, %ebx
	movq (%rbx), %rcx
	CHECK_EQ %rcx, %rax, 1

	/* 2 MiB page: linear 8M + x -> phys 2M + x */
	movq $0x99, 0x200010
	movq 0x800010, %rcx
	CHECK_EQ %rcx, $0x99, 2

	/* 4 KiB remap of PG_A to PG_B's frame, seen after INVLPG */
	movq $0xabcdef, PG_B
	movq PG_A, %rcx                 /* fill the TLB with the old mapping */
	movq $(PG_B + 7), PTE_OF(PG_A)
	invlpg PG_A
	movq PG_A, %rcx
	CHECK_EQ %rcx, $0xabcdef, 3
	movq $(PG_A + 7), PTE_OF(PG_A)
	invlpg PG_A

	/* A and D bits: clear both, read sets A only, write sets D */
	movq $(PG_C + 7), PTE_OF(PG_C)
	invlpg PG_C
	movq PG_C, %rax
	movq PTE_OF(PG_C), %rax
	andq $0x60, %rax
	CHECK_EQ %rax, $0x20, 4
	movq $5, PG_C
	movq PTE_OF(PG_C), %rax
	andq $0x60, %rax
	CHECK_EQ %rax, $0x60, 5
	/* the upper levels got A too */
	movq pd, %rax
	andq $0x20, %rax
	CHECK_EQ %rax, $0x20, 6

	/* NX: a RET on a no-execute page faults with P|I (0x11) and CR2 = page */
	movb $0xc3, PG_D
	movabsq $0x8000000000000007 + PG_D, %rax
	movq %rax, PTE_OF(PG_D)
	invlpg PG_D
	EXPECT 1f
	movl $PG_D, %eax
	call *%rax
	movb $7, %al
	jmp fail
1:	CHECK_EQ last_vec(%rip), $14, 8
	CHECK_EQ last_err(%rip), $0x11, 9
	CHECK_EQ last_cr2(%rip), $PG_D, 10
	movq $(PG_D + 7), PTE_OF(PG_D)
	invlpg PG_D
	movl $PG_D, %eax
	call *%rax                      /* executable again */

	/* WP: a supervisor write to a read-only page faults with P|W (0x3) */
	movq $(PG_E + 5), PTE_OF(PG_E)  /* P | U, not W */
	invlpg PG_E
	EXPECT 1f
	movq $1, PG_E
	movb $11, %al
	jmp fail
1:	CHECK_EQ last_vec(%rip), $14, 12
	CHECK_EQ last_err(%rip), $0x3, 13
	/* with CR0.WP clear the same write succeeds */
	movq %cr0, %rax
	andl $~0x10000, %eax
	movq %rax, %cr0
	movq $0x77, PG_E
	movq %cr0, %rax
	orl $0x10000, %eax
	movq %rax, %cr0
	CHECK_EQ PG_E, $0x77, 14
	movq $(PG_E + 7), PTE_OF(PG_E)
	invlpg PG_E

	/* reserved bit 51 (above MAXPHYADDR): read faults with P|RSVD (0x9) */
	movabsq $0x0008000000000007 + PG_F, %rax
	movq %rax, PTE_OF(PG_F)
	invlpg PG_F
	EXPECT 1f
	movq PG_F, %rax
	movb $15, %al
	jmp fail
1:	CHECK_EQ last_vec(%rip), $14, 16
	CHECK_EQ last_err(%rip), $0x9, 17
	movq $(PG_F + 3), PTE_OF(PG_F)  /* supervisor-only for the U/S test */
	invlpg PG_F

	/* global pages: a CR4.PGE toggle flushes them */
	movq $0x1111, PG_G
	movq $0x2222, PG_B
	movq $(PG_G + 0x107), PTE_OF(PG_G)   /* G */
	invlpg PG_G
	movq PG_G, %rax
	CHECK_EQ %rax, $0x1111, 18
	movq $(PG_B + 0x107), PTE_OF(PG_G)
	movq %cr4, %rax
	andl $~0x80, %eax
	movq %rax, %cr4
	orl $0x80, %eax
	movq %rax, %cr4
	movq PG_G, %rax
	CHECK_EQ %rax, $0x2222, 19
	/* a global entry survives a CR3 write (our TLB keeps it; hardware may) */
	movq $(PG_A + 7), PTE_OF(PG_G)
	movq %cr3, %rax
	movq %rax, %cr3
	movq PG_G, %rax
	CHECK_EQ %rax, $0x2222, 20
	/* ... but a non-global one does not */
	invlpg PG_G
	movq $(PG_B + 7), PTE_OF(PG_G)
	invlpg PG_G
	movq PG_G, %rax
	CHECK_EQ %rax, $0x2222, 23
	movq $(PG_A + 7), PTE_OF(PG_G)
	movq %cr3, %rax
	movq %rax, %cr3
	movq PG_G, %rax
	movabsq $0x1122334455667788, %rbx
	CHECK_EQ %rax, %rbx, 24

	/* U/S: user code reads a supervisor page -> #PF P|U (0x5) at CPL 3 */
	movl $0x80, %edi
	movl $3, %esi
	xorl %edx, %edx
	call set_gate                   /* INT 0x80 reachable from CPL 3 */
	movq %rsp, kstack(%rip)
	pushq $(SEL_UDATA | 3)
	pushq $0x50000
	pushq $0x2                      /* IF=0 */
	pushq $(SEL_UCODE64 | 3)
	pushq $user
	iretq
user:
	movq %cs, %rax
	andl $3, %eax
	cmpl $3, %eax
	jne user_bad
	movq $0x50000, resume_rsp(%rip)   /* (user page: all RAM here is U) */
	movq $1f, resume_rip(%rip)
	movq PG_F, %rax
	jmp user_bad
1:	cmpq $14, last_vec(%rip)
	jne user_bad
	cmpq $5, last_err(%rip)
	jne user_bad
	movq $0, %rbx
	int $0x80
user_bad:
	movq $99, %rbx
	int $0x80

/* INT 0x80 from user mode: back in the kernel with RBX = result. */
h_back_to_kernel:
	movq kstack(%rip), %rsp
	testq %rbx, %rbx
	jz 1f
	movb $21, %al
	jmp fail
1:	movq %cs, %rax
	CHECK_EQ %rax, $SEL_CODE64, 22
	jmp pass

	.data
kstack: .quad 0
	.text
