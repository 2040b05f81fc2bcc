# guest_acpi.s — an idle guest with an ACPI OS's view of the power button:
# enable ACPI (SMI_CMD), PWRBTN_EN in PM1_EN, SCI (IRQ 9, level, active
# high per the MADT override) through the IOAPIC, then HLT until the
# button's SCI arrives, acknowledge it, and enter S5 through PM1a_CNT.
# It never exits on its own: a host must press the button (vireoctl stop).
.include "guest.inc"
	.equ	PM1_STS, 0x600
	.equ	PM1_EN,  0x602
	.equ	PM1_CNT, 0x604
	.equ	SMI_CMD, 0xB2
	.equ	VEC_SCI, 0x60
	.equ	PRESSED, COUNTERS + 0x40
	.text
	.code64
	.globl	guest_main
guest_main:
	call	pic_mask_all
	call	lapic_enable
	movl	$VEC_SCI, %edi
	leaq	isr_sci(%rip), %rsi
	movl	$0x8E, %edx
	call	set_gate
	movb	$0xF1, %al              # ACPI_ENABLE: the PM sets SCI_EN
	outb	%al, $SMI_CMD
	movw	$0x0100, %ax            # PWRBTN_EN
	movw	$PM1_EN, %dx
	outw	%ax, %dx
	movl	$0x23, %edi             # pin 9 high: destination APIC 0
	xorl	%esi, %esi
	call	ioapic_write
	movl	$0x22, %edi             # pin 9 low: vector, fixed, level (bit 15), active high
	movl	$(VEC_SCI | 0x8000), %esi
	call	ioapic_write
	leaq	msg_ready(%rip), %rsi
	call	puts
1:	sti
	hlt
	cli
	cmpq	$0, PRESSED
	je	1b
	leaq	msg_button(%rip), %rsi
	call	puts
	movw	$0x2000, %ax            # SLP_EN with SLP_TYP 0 (\_S5)
	movw	$PM1_CNT, %dx
	outw	%ax, %dx
	# Not reached when S5 works.
	leaq	msg_nos5(%rip), %rsi
	call	puts
	movl	$0x41, %eax
	ret

isr_sci:
	pushq	%rax
	pushq	%rdx
	movw	$PM1_STS, %dx
	inw	%dx, %ax
	testw	$0x0100, %ax
	jz	2f
	incq	PRESSED
2:	outw	%ax, %dx                # write-1-to-clear what was set: SCI drops
	movl	$LAPIC, %eax
	movl	$0, 0xB0(%rax)          # EOI (level: the IOAPIC re-checks the pin)
	popq	%rdx
	popq	%rax
	iretq

	.section .rodata
msg_ready:  .asciz "acpi: waiting for the power button\n"
msg_button: .asciz "acpi: power button pressed, entering S5\n"
msg_nos5:   .asciz "acpi: FAILED: still running after S5\n"
