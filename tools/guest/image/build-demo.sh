#!/bin/sh
# build-demo.sh — build the demo guest from Debian packages, cached outside
# the repository, and print the folder holding vmlinuz and initrd.img.
#
# The guest: Debian bookworm's unmodified linux-image-amd64 kernel and an
# initramfs with busybox-static whose /init mounts proc, sys and dev, prints
# a banner and gives a shell on the serial console.  Nothing is taken from
# the host's own /boot: packages are fetched with `apt-get download` and
# unpacked with `dpkg -x`.  The cache key covers this script, the overlay
# files and the package versions, so a change to any of them rebuilds.
#
# Kernel modules: the initramfs carries the drivers for Vireo's virtual
# hardware (MODULES below, with what they depend on) and a modules.dep made
# by busybox's depmod, so `modprobe vmwgfx` works in the guest.  Nothing is
# loaded at boot: tests and users load what they need.
#
# Guest tools: `build-demo.sh --tools DIR` adds Vireo's guest tools from DIR
# (vireo-toolsd, vireo-rpc, vireo-iopl, built by meson in tools/guest/) to
# /usr/bin and starts vireo-toolsd from an /etc/vireo.d hook; the folder is
# then demo-tools-KEY, KEY covering the binaries too.
#
# Environment: VIREO_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/vireo).
set -eu

tools=
while [ $# -gt 0 ]; do
	case $1 in
	--tools) tools=$(cd "$2" && pwd); shift 2 ;;
	*) echo "usage: build-demo.sh [--tools DIR]" >&2; exit 2 ;;
	esac
done
TOOLS_BINS="vireo-toolsd vireo-rpc vireo-iopl"
if [ -n "$tools" ]; then
	for b in $TOOLS_BINS; do
		[ -x "$tools/$b" ] || { echo "build-demo: $tools/$b missing (build tools/guest first)" >&2; exit 1; }
	done
fi

here=$(cd "$(dirname "$0")" && pwd)
cache=${VIREO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vireo}
mkdir -p "$cache/images" "$cache/debs"

say() { echo "build-demo: $*" >&2; }

# Drivers for Vireo's devices (SVGA II, balloon, VMCI/vsock, vmmouse, AHCI,
# PVSCSI, CD-ROM) and the file systems the disk tests use.
MODULES="vmwgfx vmw_balloon vmw_vmci vmw_vsock_vmci_transport vsock psmouse evdev
ahci sd_mod sr_mod vmw_pvscsi ext4 isofs crc32c_generic"

# The kernel package behind the linux-image-amd64 metapackage.
kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
if [ -z "$kpkg" ]; then
	if [ "$(id -u)" = 0 ]; then
		say "apt lists missing; running apt-get update"
		apt-get update -q >&2
		kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
	fi
fi
if [ -z "$kpkg" ]; then
	say "cannot find Debian's linux-image-amd64 in the apt lists (run apt-get update as root)"
	exit 1
fi
kver=$(apt-cache policy "$kpkg" | awk '/Candidate:/ {print $2}')
bver=$(apt-cache policy busybox-static | awk '/Candidate:/ {print $2}')

key=$( { cat "$0" "$here"/demo-init "$here"/mkinitramfs.sh; echo "$kpkg $kver busybox-static $bver $MODULES"
	[ -z "$tools" ] || (cd "$tools" && cat $TOOLS_BINS); } | sha256sum | cut -c1-16)
flavor=demo
[ -z "$tools" ] || flavor=demo-tools
out="$cache/images/$flavor-$key"
if [ -f "$out/vmlinuz" ] && [ -f "$out/initrd.img" ]; then
	echo "$out"
	exit 0
fi

say "building the demo guest ($kpkg $kver, busybox-static $bver) in $out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fetch() {   # fetch PACKAGE VERSION -> path of the .deb in the cache
	# apt names files with the epoch's colon written as %3a
	deb="$cache/debs/$1_$(echo "$2" | sed 's/:/%3a/')_amd64.deb"
	if [ ! -f "$deb" ]; then
		(cd "$work" && apt-get download -q "$1=$2" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2) || true
		mv "$work/$1"_*.deb "$deb" 2>/dev/null || { say "apt-get download $1=$2 failed"; exit 1; }
	fi
	echo "$deb"
}

kdeb=$(fetch "$kpkg" "$kver")
bdeb=$(fetch busybox-static "$bver")
mkdir -p "$work/k" "$work/b"
dpkg -x "$kdeb" "$work/k"
dpkg -x "$bdeb" "$work/b"

mkdir -p "$out.tmp"
cp "$work"/k/boot/vmlinuz-* "$out.tmp/vmlinuz"
cp "$work/b/bin/busybox" "$out.tmp/busybox"   # for tests that build initramfs variants
# The module subset: MODULES and everything modules.dep says they need.
kv=$(ls "$work/k/lib/modules")
"$work/b/bin/busybox" depmod -b "$work/k" "$kv"
mkdir -p "$work/extra/lib/modules/$kv"
awk -v want="$(echo $MODULES)" '
	BEGIN { n = split(want, w, " "); for (i = 1; i <= n; i++) need[w[i]] = 1 }
	{ sub(":", "", $1); name = $1; sub(".*/", "", name); sub("\\.ko$", "", name)
	  gsub("-", "_", name); deps[$1] = ""; for (i = 2; i <= NF; i++) deps[$1] = deps[$1] " " $i
	  path[name] = $1 }
	END { for (m in need) { if (!(m in path)) { print "missing module " m > "/dev/stderr"; exit 1 }
	        print path[m]; k = split(deps[path[m]], d, " "); for (i = 1; i <= k; i++) print d[i] } }
' "$work/k/lib/modules/$kv/modules.dep" | sort -u | while read -r ko; do
	mkdir -p "$work/extra/lib/modules/$kv/$(dirname "$ko")"
	cp "$work/k/lib/modules/$kv/$ko" "$work/extra/lib/modules/$kv/$ko"
done
cp "$work/k/lib/modules/$kv/modules.builtin" "$work/k/lib/modules/$kv/modules.order" \
	"$work/extra/lib/modules/$kv/"
"$work/b/bin/busybox" depmod -b "$work/extra" "$kv"
if [ -n "$tools" ]; then
	mkdir -p "$work/extra/usr/bin" "$work/extra/etc/vireo.d" "$work/extra/var/log"
	for b in $TOOLS_BINS; do cp "$tools/$b" "$work/extra/usr/bin/$b"; done
	# demo-init runs the hooks in /etc/vireo.d before the shell starts.
	cat > "$work/extra/etc/vireo.d/50-vireo-toolsd" <<'HOOK'
#!/bin/sh
vireo-toolsd -b -l /var/log/vireo-toolsd.log && echo "vireo-toolsd started"
HOOK
	chmod 755 "$work/extra/etc/vireo.d/50-vireo-toolsd"
fi
sh "$here/mkinitramfs.sh" "$work/b/bin/busybox" "$here/demo-init" "$out.tmp/initrd.img" "$work/extra"
echo "$kpkg $kver" > "$out.tmp/VERSION"
rm -rf "$out"
mv "$out.tmp" "$out"
# Older builds of this flavour of the demo guest are of no further use.
if [ -z "$tools" ]; then
	find "$cache/images" -maxdepth 1 -name 'demo-*' ! -name 'demo-tools-*' ! -name "demo-$key" -exec rm -rf {} +
else
	find "$cache/images" -maxdepth 1 -name 'demo-tools-*' ! -name "demo-tools-$key" -exec rm -rf {} +
fi
echo "$out"
