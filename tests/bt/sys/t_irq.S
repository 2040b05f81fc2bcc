/*
 * t_irq.S — the local APIC: one-shot and periodic timer interrupts taken
 * from HLT, the current-count register, the TSC-deadline timer, a
 * self-IPI, TPR masking (class below TPR held until TPR drops), and
 * software disable through the SVR.
 */
#include "common.inc"

#define APIC 0xFEE00000
#define A_TPR 0x80
#define A_EOI 0xB0
#define A_SVR 0xF0
#define A_ICR 0x300
#define A_LVTT 0x320
#define A_TICR 0x380
#define A_TCCR 0x390
#define A_TDCR 0x3E0

	.code64
test_main:
	HANDLE 0x40, h_timer
	HANDLE 0x41, h_ipi
	HANDLE 0xff, h_spurious
	movl $APIC, %ebx

	/* version register: 0x50014 */
	movl 0x30(%rbx), %eax
	CHECK_EQ %rax, $0x50014, 1
	movl $0x1ff, A_SVR(%rbx)        /* software enable, spurious 0xFF */
	movl $0xb, A_TDCR(%rbx)         /* divide by 1 */

	/* one-shot: 1 ms at the 1 GHz bus */
	movl $0x40, A_LVTT(%rbx)
	movl $1000000, A_TICR(%rbx)
	movl A_TCCR(%rbx), %eax
	testl %eax, %eax
	jnz 1f
	movb $2, %al
	jmp fail
1:	cmpl $1000000, %eax
	jbe 1f
	movb $3, %al
	jmp fail
1:	sti
2:	hlt
	cmpq $1, ticks(%rip)
	jb 2b
	cli
	movl A_TCCR(%rbx), %eax
	CHECK_EQ %rax, $0, 4

	/* periodic: three ticks of 200 us, then masked */
	movq $0, ticks(%rip)
	movl $0x20040, A_LVTT(%rbx)
	movl $200000, A_TICR(%rbx)
	sti
2:	hlt
	cmpq $3, ticks(%rip)
	jb 2b
	cli
	movl $0x10040, A_LVTT(%rbx)     /* masked */

	/* TSC deadline: 100 us ahead */
	movq $0, ticks(%rip)
	movl $0x40040, A_LVTT(%rbx)
	rdtsc
	shlq $32, %rdx
	orq %rdx, %rax
	addq $200000, %rax
	movq %rax, %rdx
	shrq $32, %rdx
	movl $0x6e0, %ecx
	wrmsr
	sti
2:	hlt
	cmpq $1, ticks(%rip)
	jb 2b
	cli
	movl $0x6e0, %ecx
	rdmsr
	CHECK_EQ %rax, $0, 5            /* cleared when it fired */
	movl $0x10000, A_LVTT(%rbx)

	/* self-IPI (shorthand self, fixed, vector 0x41) */
	movl $0x40041, A_ICR(%rbx)
	sti
	nop
	cli
	CHECK_EQ ipis(%rip), $1, 6

	/* TPR 0x50 holds vector 0x41 (class 4) back until TPR drops */
	movl $0x50, A_TPR(%rbx)
	movl $0x40041, A_ICR(%rbx)
	sti
	nop
	nop
	cli
	CHECK_EQ ipis(%rip), $1, 7
	movq %cr8, %rax
	CHECK_EQ %rax, $5, 8
	xorl %eax, %eax
	movq %rax, %cr8                 /* CR8 is the TPR too */
	sti
	nop
	cli
	CHECK_EQ ipis(%rip), $2, 9

	/* software disabled: the IPI stays pending in IRR, not delivered */
	movl $0xff, A_SVR(%rbx)
	movl $0x40041, A_ICR(%rbx)
	sti
	nop
	cli
	CHECK_EQ ipis(%rip), $2, 10
	movl $0x1ff, A_SVR(%rbx)
	sti
	nop
	cli
	CHECK_EQ ipis(%rip), $3, 11
	jmp pass

h_timer:
	incq ticks(%rip)
	movl $(APIC + A_EOI), %eax
	movl $0, (%rax)
	ret
h_ipi:
	incq ipis(%rip)
	movl $(APIC + A_EOI), %eax
	movl $0, (%rax)
	ret
h_spurious:
	ret

	.data
ticks: .quad 0
ipis: .quad 0
	.text
