#!/bin/sh
# installer/deps.sh — install the Debian packages Vireo's build, demo and tests
# need, when missing.  As root it runs apt-get; otherwise it prints the exact
# apt-get line and fails.  Safe to run again: it installs only what is missing.
set -eu

# build
PKGS="gcc make meson ninja-build pkg-config libzydis-dev libzycore-dev"
# fuzzing and sanitizers (clang's libFuzzer and runtimes)
PKGS="$PKGS clang libclang-rt-14-dev"
# guest images: Debian packages unpacked with dpkg -x, an initramfs made with cpio
PKGS="$PKGS busybox-static cpio dpkg-dev xz-utils zstd"
# test peers and benchmark peers
PKGS="$PKGS socat qemu-system-x86 python3"
# (helpers append lines below: PKGS="$PKGS name"  # why)
PKGS="$PKGS acpica-tools"  # iasl: disassemble and check the ACPI tables
PKGS="$PKGS qemu-utils"  # qemu-img: VMDK interoperability tests and the disk benchmark peer
PKGS="$PKGS libglib2.0-dev dbus-daemon"  # VMDB: GLib loop adapter; D-Bus peer in bench_vmdb
PKGS="$PKGS liblzma-dev"  # direct boot: unpack an XZ bzImage on the host instead of in the guest
PKGS="$PKGS libvncserver-dev libpng-dev"  # vnc: MKS VNC back end (optional) and PNG screenshots
PKGS="$PKGS xvfb tigervnc-viewer tigervnc-tools vncsnapshot xdotool libjpeg-turbo-progs"  # vnc: real VNC clients in tests (vncpasswd, djpeg)
PKGS="$PKGS xorriso"  # storage: the CD-ROM guest test builds an ISO (also grub-mkrescue)
PKGS="$PKGS seabios"  # vga: vgabios-vmware.bin for the VGA BIOS guest test (tests/vga), and the default firmware
PKGS="$PKGS binutils"  # tools-guest: readelf resolves open-vm-tools' library closure (tools/guest/image/build-ovt.sh)
PKGS="$PKGS grub-pc-bin mtools"  # firmware: the ISO install guest tier (grub-mkrescue, GRUB for the installed disk); seabios is the default firmware
PKGS="$PKGS novnc chromium"  # vnc2: noVNC in headless Chromium (tests/vnc; npm puts playwright-core in ~/.cache/vireo/npm)
# Node and npm: Debian's, unless the machine already has them (NodeSource's
# nodejs carries its own npm and conflicts with Debian's npm package).
command -v node >/dev/null 2>&1 || PKGS="$PKGS nodejs"
command -v npm >/dev/null 2>&1 || PKGS="$PKGS npm"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done
if [ -z "$missing" ]; then
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "vireo: missing Debian packages. Run as root:" >&2
	echo "  apt-get update && apt-get install -y$missing" >&2
	exit 1
fi
echo "vireo: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
# Lists may be absent on a fresh machine; refresh them once if an install fails.
if ! apt-get install -y -q --no-install-recommends $missing; then
	apt-get update -q
	apt-get install -y -q --no-install-recommends $missing
fi
