# guest_pic.s — PIT channel 0 at 1 kHz -> 8259 IRQ0 -> LAPIC LINT0 in
# ExtINT mode (the engine's INTA path), vector 0x28, waiting in HLT.
.include "guest.inc"
	.equ	NTICKS, 20
	.text
	.code64
	.globl	guest_main
guest_main:
	movb	$0x11, %al              # ICW1: edge, cascade, ICW4
	outb	%al, $0x20
	outb	%al, $0xA0
	movb	$VEC_PIC, %al           # ICW2: vector bases 0x28 / 0x38
	outb	%al, $0x21
	movb	$0x38, %al
	outb	%al, $0xA1
	movb	$0x04, %al              # ICW3
	outb	%al, $0x21
	movb	$0x02, %al
	outb	%al, $0xA1
	movb	$0x01, %al              # ICW4: 8086 mode
	outb	%al, $0x21
	outb	%al, $0xA1
	movb	$0xFE, %al              # only IRQ0
	outb	%al, $0x21
	movb	$0xFF, %al
	outb	%al, $0xA1
	call	lapic_enable
	movl	$0x350, %edi            # LINT0: ExtINT
	movl	$0x700, %esi
	call	lapic_write
	movl	$0x14, %edi             # IOAPIC pin 2 masked: only the 8259 path
	movl	$0x10000, %esi
	call	ioapic_write
	call	read_ns
	movq	%rax, %r12
	call	pit_start_1khz
1:	sti
	hlt
	cli
	cmpq	$NTICKS, TICKS_PIC
	jb	1b
	call	read_ns
	subq	%r12, %rax
	movq	%rax, %r13
	leaq	msg_a(%rip), %rsi
	call	puts
	movq	TICKS_PIC, %rdi
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
	cmpq	$15000000, %r13
	jb	2f
	movq	$STATUS_OK, %rax
	ret
2:	leaq	msg_fast(%rip), %rsi
	call	puts
	movl	$0x41, %eax
	ret

	.section .rodata
msg_a:    .asciz "pic: "
msg_b:    .asciz " ticks via 8259 ExtINT in "
msg_c:    .asciz " us\n"
msg_fast: .asciz "pic: FAILED: ticks came faster than the programmed rate\n"
