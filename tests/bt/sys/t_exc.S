/*
 * t_exc.S — exceptions: #DE, #UD, #BP (trap RIP), #GP (bad MSR, bad
 * selector with its error code, INT n through a DPL 0 gate from CPL 3),
 * #PF error codes and CR2 for not-present pages, an IST stack, and a
 * double fault (#PF whose gate is not present -> #NP -> #DF on IST2).
 */
#include "common.inc"

	.code64
test_main:
	.irp v, 0, 3, 6, 11, 13, 14
	HANDLE \v, h_recover
	.endr

	/* #DE */
	EXPECT 1f
	xorl %ecx, %ecx
	divl %ecx
	movb $1, %al
	jmp fail
1:	CHECK_EQ last_vec(%rip), $0, 2

	/* #UD */
	EXPECT 1f
	ud2
	movb $3, %al
	jmp fail
1:	CHECK_EQ last_vec(%rip), $6, 4

	/* #BP is a trap: the saved RIP is after INT3, and execution resumes there */
	movq $0, resume_rip(%rip)
	movq $2f, resume_rip(%rip)
	movq %rsp, resume_rsp(%rip)
	int3
2:	CHECK_EQ last_vec(%rip), $3, 5
	CHECK_EQ last_rip(%rip), $2b, 6

	/* #GP(0) from an unknown MSR */
	EXPECT 1f
	movl $0x12345, %ecx
	rdmsr
	movb $7, %al
	jmp fail
1:	CHECK_EQ last_vec(%rip), $13, 8
	CHECK_EQ last_err(%rip), $0, 9

	/* #GP(sel) from a selector beyond the GDT limit */
	EXPECT 1f
	movw $0x1238, %ax
	movw %ax, %ds
	movb $10, %al
	jmp fail
1:	CHECK_EQ last_vec(%rip), $13, 11
	CHECK_EQ last_err(%rip), $0x1238, 12

	/* #NP(sel) from a not-present data segment */
	movq gdt + 0x58(%rip), %rax
	btrq $47, %rax
	movq %rax, gdt + 0x58(%rip)
	EXPECT 1f
	movw $SEL_DATA16, %ax
	movw %ax, %es
	movb $13, %al
	jmp fail
1:	CHECK_EQ last_vec(%rip), $11, 14
	CHECK_EQ last_err(%rip), $SEL_DATA16, 15

	/* #PF: not present read (err 0) and write (err 2), CR2 */
	movabsq $0x00007ff000000010, %rbx
	EXPECT 1f
	movq (%rbx), %rax
	movb $16, %al
	jmp fail
1:	CHECK_EQ last_vec(%rip), $14, 17
	CHECK_EQ last_err(%rip), $0, 18
	CHECK_EQ last_cr2(%rip), %rbx, 19
	EXPECT 1f
	movq %rax, (%rbx)
	movb $20, %al
	jmp fail
1:	CHECK_EQ last_err(%rip), $2, 21

	/* IST: #UD on IST1 -> the frame lies on the IST1 stack (below 0x60000) */
	movl $6, %edi
	xorl %esi, %esi
	movl $1, %edx
	call set_gate
	EXPECT 1f
	ud2
1:	movq last_frame(%rip), %rax
	cmpq $0x60000, %rax
	jae 2f
	cmpq $0x5f000, %rax
	ja 3f
2:	movb $22, %al
	jmp fail
3:
	/* double fault: #PF with a not-present gate -> #NP during delivery -> #DF */
	HANDLE 8, h_recover
	movl $8, %edi
	xorl %esi, %esi
	movl $2, %edx
	call set_gate
	andb $0x7f, IDT_ADDR + 14 * 16 + 5    /* gate 14: P = 0 */
	EXPECT 1f
	movq (%rbx), %rax
	movb $23, %al
	jmp fail
1:	CHECK_EQ last_vec(%rip), $8, 24
	CHECK_EQ last_err(%rip), $0, 25
	movq last_frame(%rip), %rax
	cmpq $0x58000, %rax
	jb 2f
	movb $26, %al
	jmp fail
2:	orb $0x80, IDT_ADDR + 14 * 16 + 5

	/* INT n from CPL 3 through a DPL 0 gate: #GP(n * 8 + 2) */
	movl $0x80, %edi
	movl $3, %esi
	xorl %edx, %edx
	call set_gate
	HANDLE 0x80, h_back
	movq %rsp, kstack(%rip)
	pushq $(SEL_UDATA | 3)
	pushq $0x50000
	pushq $0x2
	pushq $(SEL_UCODE64 | 3)
	pushq $user
	iretq
user:
	movq $1f, resume_rip(%rip)
	movq $0x50000, resume_rsp(%rip)
	int $0x81
	movq $1, %rbx
	int $0x80
1:	movq last_err(%rip), %rbx
	int $0x80

h_back:
	movq kstack(%rip), %rsp
	CHECK_EQ %rbx, $(0x81 * 8 + 2), 27
	jmp pass

	.data
kstack: .quad 0
	.text
