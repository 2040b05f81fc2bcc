/*
 * bench_vnc_boot.S: the guest workload of bench_vnc.py, one boot sector run
 * unchanged by QEMU (-vga std) and by Vireo (SVGA II, SeaBIOS from an AHCI
 * disk).  Protected mode, Bochs dispi 1920x1080x32 with the linear
 * framebuffer, prints "VB" + 's' (SVGA II) or 'q' (std VGA) + "R", then on
 * COM1 commands 'F' colour x y w h (five little-endian dwords) fills that
 * rectangle with rep stosl and answers 'K'.  Nothing is checked: the
 * benchmark sends only rectangles inside 1920x1080.
 */
.code16
.globl _start
_start:
	cli
	xor %ax, %ax
	mov %ax, %ds
	lgdtl gdtr
	mov %cr0, %eax
	or $1, %eax
	mov %eax, %cr0
	ljmpl $0x08, $pm
.code32
pm:
	mov $0x10, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	mov $0x7000, %esp
	mov $4, %eax ; xor %ebx, %ebx ; call dispi
	mov $1, %eax ; mov $1920, %ebx ; call dispi
	mov $2, %eax ; mov $1080, %ebx ; call dispi
	mov $3, %eax ; mov $32, %ebx ; call dispi
	mov $4, %eax ; mov $0x41, %ebx ; call dispi
	/* The linear framebuffer: VRAM in BAR1 of a VMware SVGA II at 00:0f.0
	 * (Vireo), else BAR0 of the std VGA at 00:02.0 (QEMU -vga std). */
	mov $0x80007800, %eax	/* 00:0f.0 vendor/device */
	call pcird
	mov $'q', %bl
	cmp $0x040515ad, %eax
	mov $0x80001010, %eax	/* 00:02.0 BAR0 */
	jne 1f
	mov $'s', %bl
	mov $0x80007814, %eax	/* 00:0f.0 BAR1 */
1:	call pcird
	and $0xfffffff0, %eax
	mov %eax, lfb
	/* "VB" + which device + "R": the firmware's own serial output
	 * before this cannot be taken for it. */
	mov $'V', %al
	call putb
	mov $'B', %al
	call putb
	mov %bl, %al
	call putb
	mov $'R', %al
	call putb
next:
	call getb
	cmp $'F', %al
	jne next
	call getd
	mov %eax, colour
	call getd
	mov %eax, rx
	call getd
	mov %eax, ry
	call getd
	mov %eax, rw
	call getd
	mov %eax, rh
	mov ry, %eax
	imul $7680, %eax, %edi
	mov rx, %eax
	lea (%edi,%eax,4), %edi
	add lfb, %edi
	mov rh, %edx
	cld
row:
	test %edx, %edx
	jz done
	push %edi
	mov rw, %ecx
	mov colour, %eax
	rep stosl
	pop %edi
	add $7680, %edi
	dec %edx
	jmp row
done:
	mov $'K', %al
	call putb
	jmp next

pcird:	/* config address eax -> dword eax */
	mov $0xcf8, %dx
	out %eax, %dx
	mov $0xcfc, %dx
	in %dx, %eax
	ret
dispi:	/* index eax, value ebx */
	mov $0x1ce, %dx
	out %ax, %dx
	mov $0x1cf, %dx
	mov %bx, %ax
	out %ax, %dx
	ret
getb:
	mov $0x3fd, %dx
1:	in %dx, %al
	test $1, %al
	jz 1b
	mov $0x3f8, %dx
	in %dx, %al
	ret
putb:
	mov %al, %ah
	mov $0x3fd, %dx
1:	in %dx, %al
	test $0x20, %al
	jz 1b
	mov $0x3f8, %dx
	mov %ah, %al
	out %al, %dx
	ret
getd:
	push %ebx
	call getb
	movzbl %al, %ebx
	call getb
	movzbl %al, %eax
	shl $8, %eax
	or %eax, %ebx
	call getb
	movzbl %al, %eax
	shl $16, %eax
	or %eax, %ebx
	call getb
	movzbl %al, %eax
	shl $24, %eax
	or %eax, %ebx
	mov %ebx, %eax
	pop %ebx
	ret

.p2align 3
gdt:
	.quad 0
	.quad 0x00CF9A000000FFFF
	.quad 0x00CF92000000FFFF
gdtr:
	.word 23
	.long gdt
lfb: .long 0
colour: .long 0
rx: .long 0
ry: .long 0
rw: .long 0
rh: .long 0
	.org 510
	.byte 0x55, 0xAA
