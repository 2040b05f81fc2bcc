# guest_pit.s — PIT channel 0 at 1 kHz -> IOAPIC pin 2 -> LAPIC vector 0x20,
# waiting in HLT; 20 ticks must take at least ~19 ms of virtual time.
.include "guest.inc"
	.equ	NTICKS, 20
	.text
	.code64
	.globl	guest_main
guest_main:
	call	pic_mask_all
	call	lapic_enable
	movl	$0x350, %edi            # LINT0 masked: only the IOAPIC path
	movl	$0x10000, %esi
	call	lapic_write
	movl	$0x15, %edi             # pin 2 high: destination APIC 0
	xorl	%esi, %esi
	call	ioapic_write
	movl	$0x14, %edi             # pin 2 low: vector, fixed, edge, unmasked
	movl	$VEC_PIT, %esi
	call	ioapic_write
	call	read_ns
	movq	%rax, %r12
	call	pit_start_1khz
1:	sti
	hlt
	cli
	cmpq	$NTICKS, TICKS_PIT
	jb	1b
	call	read_ns
	subq	%r12, %rax
	movq	%rax, %r13
	leaq	msg_a(%rip), %rsi
	call	puts
	movq	TICKS_PIT, %rdi
	call	putdec
	leaq	msg_b(%rip), %rsi
	call	puts
	movq	%r13, %rax
	xorl	%edx, %edx
	movl	$1000, %ecx
	divq	%rcx
	movq	%rax, %rdi
	call	putdec
	leaq	msg_c(%rip), %rsi
	call	puts
	cmpq	$15000000, %r13         # 19 periods of 1 ms, with slack
	jb	2f
	movq	$STATUS_OK, %rax
	ret
2:	leaq	msg_fast(%rip), %rsi
	call	puts
	movl	$0x41, %eax
	ret

	.section .rodata
msg_a:    .asciz "pit: "
msg_b:    .asciz " ticks via IOAPIC in "
msg_c:    .asciz " us\n"
msg_fast: .asciz "pit: FAILED: ticks came faster than the programmed rate\n"
