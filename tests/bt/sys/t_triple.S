/*
 * t_triple.S — a triple fault: with an empty IDT, INT3 -> #GP (gate beyond
 * the limit) -> #GP during delivery -> #DF -> #GP -> shutdown.  The harness
 * expects VMM_EXIT_SHUTDOWN; reaching the end reports failure.
 */
#include "common.inc"

	.code64
test_main:
	lidt empty_idt(%rip)
	int3
	movb $1, %al
	jmp fail

	.data
	.align 8
	.word 0, 0, 0
empty_idt:
	.word 0
	.quad 0
	.text
