# guest_level.s — a level-triggered IOAPIC pin and its EOI: pin 10 in level
# mode (vector 0x50), pulsed three times through the test device's IRQ
# register.  The IOAPIC sets Remote IRR on delivery and holds further
# interrupts until the LAPIC EOI reaches it; with the split irqchip that
# takes KVM_EXIT_IOAPIC_EOI, which KVM reports only for vectors found in
# its IOAPIC routes.  Each pulse must interrupt, and Remote IRR must be
# clear after each EOI.
.include "guest.inc"
	.equ	PIN, 10
	.equ	VEC_LEVEL, 0x50
	.equ	NPULSES, 3
	.text
	.code64
	.globl	guest_main
guest_main:
	call	pic_mask_all
	call	lapic_enable
	movl	$0x350, %edi
	movl	$0x10000, %esi
	call	lapic_write
	movl	$VEC_LEVEL, %edi
	leaq	isr_level(%rip), %rsi
	movl	$0x8E, %edx
	call	set_gate
	movl	$(0x11 + 2 * PIN), %edi  # destination APIC 0
	xorl	%esi, %esi
	call	ioapic_write
	movl	$(0x10 + 2 * PIN), %edi  # level, active high, unmasked
	movl	$(VEC_LEVEL | 0x8000), %esi
	call	ioapic_write
	xorl	%r15d, %r15d            # failures
	xorl	%r14d, %r14d            # pulses sent
1:	incl	%r14d
	movl	$TESTDEV, %eax
	movl	$PIN, TD_IRQ(%rax)
	sti
	movl	$2000, %ecx
2:	cmpq	%r14, TICKS_LEVEL
	jae	3f
	decl	%ecx
	jnz	2b
3:	cli
	cmpq	%r14, TICKS_LEVEL
	jae	4f
	orl	$1, %r15d               # this pulse did not interrupt
4:	movl	$IOAPIC, %eax           # Remote IRR (bit 14) must be clear again
	movl	$(0x10 + 2 * PIN), (%rax)
	movl	0x10(%rax), %eax
	testl	$0x4000, %eax
	jz	5f
	orl	$2, %r15d
5:	cmpl	$NPULSES, %r14d
	jb	1b
	leaq	msg_a(%rip), %rsi
	call	puts
	movq	TICKS_LEVEL, %rdi
	call	putdec
	leaq	msg_b(%rip), %rsi
	call	puts
	testl	%r15d, %r15d
	jnz	6f
	leaq	msg_ok(%rip), %rsi
	call	puts
	movl	$STATUS_OK, %eax
	ret
6:	leaq	msg_bad(%rip), %rsi
	call	puts
	movl	%r15d, %edi
	call	puthex
	movl	$'\n', %edi
	call	putc
	leal	0x40(%r15), %eax
	ret

isr_level:
	incq	TICKS_LEVEL
	pushq	%rax
	movl	$LAPIC, %eax
	movl	$0, 0xB0(%rax)
	popq	%rax
	iretq

	.section .rodata
msg_a:   .asciz "level: "
msg_b:   .asciz " interrupts from 3 pulses\n"
msg_ok:  .asciz "level: remote IRR cleared by every EOI\n"
msg_bad: .asciz "level: FAILED checks="
