#!/bin/sh
# mkinstall.sh — build (once, cached under ~/.cache/vireo/firmware) the
# installer ISO of the firmware guest tier and print its folder.
#
# The ISO (grub-mkrescue: GRUB for BIOS, serial console) holds the demo
# image's stock Debian kernel and an installer initramfs (busybox, the
# kernel's modules, mke2fs/e2fsck from the host's e2fsprogs); /vireo/ on it
# carries what the installer puts on the disk: the installed system's
# initrd and /init, its grub.cfg, and GRUB's boot.img and core.img.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=${VIREO_SRC:-$(cd "$here/../../.." && pwd)}
img=$(sh "$src/tools/guest/image/build-demo.sh")
grubdir=/usr/lib/grub/i386-pc
for t in grub-mkrescue grub-mkimage xorriso mformat; do
	command -v "$t" >/dev/null || { echo "mkinstall: $t missing (grub-pc-bin, xorriso, mtools)" >&2; exit 77; }
done
[ -f "$grubdir/boot.img" ] || { echo "mkinstall: $grubdir missing (grub-pc-bin)" >&2; exit 77; }

key=$(cat "$0" "$here/install-init" "$here/target-init" "$here/disk-init" "$img/VERSION" \
	"$src/tools/guest/image/mkinitramfs.sh" | sha256sum | cut -c1-16)
key=$key-$(stat -c %s-%Y "$img/vmlinuz" "$img/initrd.img" | tr '\n' '-')
out=${HOME:-/root}/.cache/vireo/firmware/install-$(echo "$key" | sha256sum | cut -c1-16)
if [ -f "$out/install.iso" ]; then
	echo "$out"
	exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Kernel modules from the demo initramfs (an uncompressed newc cpio).
mkdir -p "$work/extra"
(cd "$work/extra" && cpio -idm --quiet 'lib/modules/*' < "$img/initrd.img")
# Only the drivers the installer and the installed system load, with their
# dependencies (modules.dep): GRUB reads the initrd through BIOS calls, and
# every megabyte costs seconds on bt.
moddir=$(ls -d "$work/extra/lib/modules/"*)
keep=""
for m in ahci sd_mod sr_mod isofs ext4 crc32c_generic crct10dif_generic; do
	line=$(grep -E "(^|/)$m\.ko(\.[a-z]+)?:" "$moddir/modules.dep" || true)
	[ -n "$line" ] && keep="$keep $(echo "$line" | tr -d ':')"
done
find "$moddir" -name '*.ko*' | while read -r f; do
	case " $keep " in
	*" ${f#"$moddir"/} "*) ;;
	*) rm -f "$f" ;;
	esac
done
# e2fsprogs from the host with its library closure (same Debian release as the
# kernel), under /opt/e2fs: never at a busybox applet's path, whose link points
# at the host's /bin/busybox (mkinitramfs.sh copies EXTRA with cp -a).
for b in /sbin/mke2fs /sbin/e2fsck; do
	mkdir -p "$work/extra/opt/e2fs"
	cp "$b" "$work/extra/opt/e2fs/"
	for l in $(ldd "$b" | awk '/=>/ { print $3 } /ld-linux/ { print $1 }'); do
		mkdir -p "$work/extra$(dirname "$l")"
		cp -L "$l" "$work/extra$l"
	done
done
# Guard: no EXTRA file may sit where mkinitramfs.sh puts an applet link.
for a in $("$img/busybox" --list-full); do
	if [ -e "$work/extra/$a" ] || [ -L "$work/extra/$a" ]; then
		echo "mkinstall: $a would overwrite a busybox applet link" >&2
		exit 1
	fi
done
mkdir -p "$work/extra/etc"
printf '[options]\n\tbroken_system_clock = true\n' > "$work/extra/etc/e2fsck.conf"

sh "$src/tools/guest/image/mkinitramfs.sh" "$img/busybox" "$here/install-init" "$work/install.img" "$work/extra"
sh "$src/tools/guest/image/mkinitramfs.sh" "$img/busybox" "$here/target-init" "$work/target.img" "$work/extra"

mkdir -p "$work/iso/boot/grub" "$work/iso/vireo"
cp "$img/vmlinuz" "$work/iso/boot/vmlinuz"
cp "$work/install.img" "$work/iso/boot/install.img"
cat > "$work/iso/boot/grub/grub.cfg" <<'CFG'
serial --unit=0 --speed=115200
terminal_input serial
terminal_output serial
set timeout=1
menuentry "Vireo installer" {
	linux /boot/vmlinuz console=ttyS0 quiet
	initrd /boot/install.img
}
CFG
cat > "$work/iso/vireo/grub.cfg" <<'CFG'
serial --unit=0 --speed=115200
terminal_input serial
terminal_output serial
set timeout=1
menuentry "Vireo installed system" {
	linux /boot/vmlinuz console=ttyS0 quiet
	initrd /boot/initrd.img
}
CFG
cp "$work/target.img" "$work/iso/vireo/target.img"
cp "$here/disk-init" "$work/iso/vireo/disk-init"
cp "$grubdir/boot.img" "$work/iso/vireo/boot.img"
# core.img finds its modules and grub.cfg on the first partition.
grub-mkimage -O i386-pc -d "$grubdir" -o "$work/iso/vireo/core.img" -p '(hd0,msdos1)/boot/grub' \
	biosdisk part_msdos ext2
mkdir -p "$out.tmp"
grub-mkrescue -d "$grubdir" -o "$out.tmp/install.iso" "$work/iso" >/dev/null 2>&1
rm -rf "$out"
mv "$out.tmp" "$out"
echo "$out"
