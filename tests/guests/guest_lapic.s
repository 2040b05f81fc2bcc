# guest_lapic.s — HLT and wake-up: the LAPIC timer in one-shot mode (count
# from CPUID 0x40000010 EBX, the bus kHz), 5 times 2 ms, each waited for in
# HLT; the wake-ups must take at least ~10 ms of virtual time in total.
.include "guest.inc"
	.equ	NSHOTS, 5
	.text
	.code64
	.globl	guest_main
guest_main:
	call	pic_mask_all
	call	lapic_enable
	movl	$0x350, %edi
	movl	$0x10000, %esi
	call	lapic_write
	movl	$0x40000010, %eax
	cpuid
	testl	%ebx, %ebx
	jnz	1f
	movl	$1000000, %ebx          # no frequency leaf: assume a 1 GHz bus
1:	leal	(%rbx,%rbx), %r14d      # 2 ms worth of bus cycles
	movl	$0x3E0, %edi            # divide by 1
	movl	$0xB, %esi
	call	lapic_write
	movl	$0x320, %edi            # one-shot, vector 0x40
	movl	$VEC_LAPIC, %esi
	call	lapic_write
	call	read_ns
	movq	%rax, %r12
	xorl	%r15d, %r15d            # HLT wake-ups
2:	movq	TICKS_LAPIC, %rbx
	movl	$0x380, %edi
	movl	%r14d, %esi
	call	lapic_write
3:	sti
	hlt
	cli
	incl	%r15d
	cmpq	%rbx, TICKS_LAPIC
	je	3b
	movq	TICKS_LAPIC, %rax
	cmpq	$NSHOTS, %rax
	jb	2b
	call	read_ns
	subq	%r12, %rax
	movq	%rax, %r13
	leaq	msg_a(%rip), %rsi
	call	puts
	movq	TICKS_LAPIC, %rdi
	call	putdec
	leaq	msg_b(%rip), %rsi
	call	puts
	movl	%r15d, %edi
	call	putdec
	leaq	msg_c(%rip), %rsi
	call	puts
	movq	%r13, %rax
	xorl	%edx, %edx
	movl	$1000, %ecx
	divq	%rcx
	movq	%rax, %rdi
	call	putdec
	leaq	msg_d(%rip), %rsi
	call	puts
	cmpq	$9000000, %r13
	jb	4f
	movq	$STATUS_OK, %rax
	ret
4:	leaq	msg_fast(%rip), %rsi
	call	puts
	movl	$0x41, %eax
	ret

	.section .rodata
msg_a:    .asciz "lapic: "
msg_b:    .asciz " timer interrupts, "
msg_c:    .asciz " HLT wake-ups in "
msg_d:    .asciz " us\n"
msg_fast: .asciz "lapic: FAILED: the timer fired early\n"
