# guest_vgabios.s — a real-mode ROM guest that runs Debian's SeaVGABIOS for
# the VMware SVGA II (vgabios-vmware.bin, embedded with .incbin) against
# Vireo's VGA, the way a system BIOS runs a VGA option ROM:
#   1. BDA/EBDA and an IVT of iret stubs as SeaBIOS leaves them;
#   2. copy the VGA BIOS to RAM at 2000:0000 and far-call its init at
#      offset 3 with AX = the SVGA's PCI address (00:0f.0);
#   3. INT 10h AX=0003 (text mode 3), then the message below through the
#      teletype function; "VGA-TEXT-READY" on COM1;
#   4. wait for a byte on COM1, then INT 10h 4F02 mode 0x144 (1024x768x32,
#      banked), fill banks 0-3 with the pattern dword(A) = A through the
#      0xA0000 window (INT 10h 4F05 to switch banks); "VGA-VBE-READY".
# The host side (test_vgabios.py) takes screenshots at both points.

.code16
.set VGABIOS_SEG, 0x2000

.text
start:
	cli
	cld
	xorw	%ax, %ax
	movw	%ax, %ss
	movw	$0x7000, %sp
	movw	%ax, %ds
	movw	%ax, %es
	# every interrupt vector -> an iret in this ROM
	xorw	%di, %di
	movw	$256, %cx
1:	movw	$iret_stub, %ax
	stosw
	movw	$0xF000, %ax
	stosw
	loop	1b
	# BDA: 639 KiB of base memory, a 1 KiB EBDA at 9FC0:0000
	movw	$639, 0x413
	movw	$0x9FC0, 0x40E
	movw	$0x9FC0, %ax
	movw	%ax, %es
	movb	$1, %es:0
	# copy the VGA BIOS to RAM
	movw	%cs, %ax
	movw	%ax, %ds
	movw	$vgabios, %si
	movw	$VGABIOS_SEG, %ax
	movw	%ax, %es
	xorw	%di, %di
	movw	$((vgabios_end - vgabios + 1) / 2), %cx
	rep movsw
	xorw	%ax, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	$msg_start, %si
	call	puts
	movw	$0x0078, %ax              # bus 0, device 15, function 0
	lcall	$VGABIOS_SEG, $3
	cli
	cld
	xorw	%ax, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	$msg_post, %si
	call	puts

	movw	$0x0003, %ax
	int	$0x10
	movw	$msg_screen, %si
2:	movb	%cs:(%si), %al
	testb	%al, %al
	jz	3f
	movb	$0x0e, %ah
	movw	$0x0007, %bx
	pushw	%si
	int	$0x10
	popw	%si
	incw	%si
	jmp	2b
3:	movw	$msg_text_ready, %si
	call	puts
	call	getc

	movw	$0x4f02, %ax
	movw	$0x0144, %bx
	int	$0x10
	cmpw	$0x004f, %ax
	jne	vbe_fail
	xorw	%dx, %dx
4:	pushw	%dx
	movw	$0x4f05, %ax
	xorw	%bx, %bx
	int	$0x10
	popw	%dx
	cmpw	$0x004f, %ax
	jne	vbe_fail
	movw	$0xA000, %ax
	movw	%ax, %es
	xorw	%di, %di
	movzwl	%dx, %ebx
	shll	$16, %ebx
	movw	$16384, %cx
5:	movl	%ebx, %eax
	movw	%di, %ax
	stosl
	loop	5b
	incw	%dx
	cmpw	$4, %dx
	jb	4b
	movw	$msg_vbe_ready, %si
	call	puts
	jmp	idle
vbe_fail:
	movw	$msg_vbe_fail, %si
	call	puts
idle:
	sti
	hlt
	jmp	idle

# puts: the NUL-terminated string at CS:SI to COM1
puts:
	movb	%cs:(%si), %al
	testb	%al, %al
	jz	1f
	call	putc
	incw	%si
	jmp	puts
1:	ret

putc:
	pushw	%dx
	pushw	%ax
	movw	$0x3fd, %dx
1:	inb	%dx, %al
	testb	$0x20, %al
	jz	1b
	popw	%ax
	movw	$0x3f8, %dx
	outb	%al, %dx
	popw	%dx
	ret

getc:
	movw	$0x3fd, %dx
1:	inb	%dx, %al
	testb	$0x01, %al
	jz	1b
	movw	$0x3f8, %dx
	inb	%dx, %al
	ret

iret_stub:
	iret

msg_start:	.asciz "VGABIOS-GUEST: calling the VGA BIOS\n"
msg_post:	.asciz "VGABIOS-GUEST: VGA BIOS init returned\n"
msg_screen:	.asciz "VIREO VGA OK"
msg_text_ready:	.asciz "VGA-TEXT-READY\n"
msg_vbe_ready:	.asciz "VGA-VBE-READY\n"
msg_vbe_fail:	.asciz "VGA-VBE-FAIL READY\n"

	.balign 16
vgabios:
	.incbin "vgabios-vmware.bin"
vgabios_end:

.section .reset, "ax"
reset_vector:
	ljmp	$0xF000, $start
