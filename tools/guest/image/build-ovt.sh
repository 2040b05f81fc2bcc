#!/bin/sh
# build-ovt.sh [--tools DIR] — the second guest image: the demo guest's
# kernel and initramfs (busybox, kernel modules) plus Debian's UNMODIFIED
# open-vm-tools with the shared libraries it needs, and an /init that
# starts vmtoolsd and a shell on the serial console.  Prints the folder
# (vmlinuz, initrd.img, VERSION), cached like build-demo.sh's under
# $VIREO_CACHE/images/ovt-KEY.
#
# Packages: open-vm-tools and its dependency closure (apt-cache depends
# --recurse, no recommends/suggests) are fetched with `apt-get download` and
# unpacked with `dpkg -x`; what lands in the initramfs is vmtoolsd, the
# command-line tools, the plugins and the libraries their ELF NEEDED entries
# reach (so ICU, XML, VGAuth and the package tools stay out).
#
# --tools DIR adds Vireo's vireo-iopl (and vireo-rpc) from DIR: on KVM hosts
# where ring-3 backdoor I/O faults, /init starts vmtoolsd through it.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
cache=${VIREO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vireo}
mkdir -p "$cache/images" "$cache/debs"
say() { echo "build-ovt: $*" >&2; }

tools=
while [ $# -gt 0 ]; do
	case $1 in
	--tools) tools=$(cd "$2" && pwd); shift 2 ;;
	*) echo "usage: build-ovt.sh [--tools DIR]" >&2; exit 2 ;;
	esac
done

# Not needed in an initramfs: package management, debconf front ends, and
# the big libraries only VGAuth / the XML tools use.
SKIP="cdebconf debconf dpkg install-info iproute2 lsb-release pci.ids pciutils tar readline-common
libreadline8 libicu72 libnewt0.52 libslang2 libtextwrap1 libdebian-installer4 libxml2 libxmlsec1
libxmlsec1-openssl libxslt1.1 perl perl-base perl-modules-5.36 libperl5.36 usrmerge usr-is-merged
libfile-find-rule-perl libnumber-compare-perl libtext-glob-perl libgdbm6 libgdbm-compat4 init-system-helpers"
# Plugins left out: vix (VGAuth, XML), resolutionKMS (needs vmwgfx + udev).
PLUGIN_SKIP="libvix.so libresolutionKMS.so"
BINS="vmtoolsd vmware-rpctool vmware-checkvm vmware-toolbox-cmd vmware-hgfsclient"

demo=$(sh "$here/build-demo.sh")
if ! pkgs=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
	--no-replaces --no-enhances open-vm-tools 2>/dev/null | grep -v '^ ' | grep -v '^<' | sort -u) ||
	[ -z "$pkgs" ]; then
	say "cannot resolve open-vm-tools in the apt lists (run apt-get update as root)"
	exit 1
fi
want=
for p in $pkgs; do
	case " $(echo $SKIP) " in *" $p "*) continue ;; esac
	want="$want $p=$(apt-cache policy "$p" | awk '/Candidate:/ {print $2}')"
done
tools_sum=
[ -z "$tools" ] || tools_sum=$(cat "$tools/vireo-iopl" "$tools/vireo-rpc" | sha256sum)
key=$( { cat "$0" "$here/ovt-init"; echo "$demo $want $tools_sum"; } | sha256sum | cut -c1-16)
out="$cache/images/ovt-$key"
if [ -f "$out/vmlinuz" ] && [ -f "$out/initrd.img" ]; then
	echo "$out"
	exit 0
fi
say "building the open-vm-tools guest in $out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/debs" "$work/stage" "$work/root"
for pv in $want; do
	p=${pv%%=*} v=${pv#*=}
	deb="$cache/debs/${p}_$(echo "$v" | sed 's/:/%3a/')_amd64.deb"
	[ -f "$deb" ] || deb="$cache/debs/${p}_$(echo "$v" | sed 's/:/%3a/')_all.deb"
	if [ ! -f "$deb" ]; then
		(cd "$work/debs" && apt-get download -q "$pv" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2) || true
		f=$(ls "$work/debs/${p}_"*.deb 2>/dev/null | head -1)
		[ -n "$f" ] || { say "apt-get download $pv failed"; exit 1; }
		deb="$cache/debs/$(basename "$f")"
		mv "$f" "$deb"
	fi
	dpkg -x "$deb" "$work/stage"
done

# The demo initramfs (busybox, modules, passwd, hostname) is the base.
(cd "$work/root" && cpio -id --quiet < "$demo/initrd.img")
r=$work/root s=$work/stage
mkdir -p "$r/usr/bin" "$r/sbin" "$r/var/log" "$r/var/run" "$r/run" "$r/etc/vmware-tools"
for b in $BINS; do cp "$s/usr/bin/$b" "$r/usr/bin/$b"; done
plugdir=usr/lib/x86_64-linux-gnu/open-vm-tools/plugins
for d in common vmsvc; do
	mkdir -p "$r/$plugdir/$d"
	for so in "$s/$plugdir/$d"/*.so; do
		case " $PLUGIN_SKIP " in *" $(basename "$so") "*) continue ;; esac
		cp "$so" "$r/$plugdir/$d/"
	done
done
cp -a "$s/etc/vmware-tools/." "$r/etc/vmware-tools/"
rm -rf "$r/etc/vmware-tools/vgauth" "$r/etc/vmware-tools/vgauth.conf"
# The network script brings interfaces down and up around suspend and
# power-off with tools this initramfs lacks; its failure would veto the
# guest's graceful power-off.
rm -f "$r/etc/vmware-tools/scripts/vmware/network"
cat > "$r/etc/vmware-tools/tools.conf" <<'CONF'
[logging]
log = true
vmsvc.level = message
vmsvc.handler = file
vmsvc.data = /var/log/vmtoolsd.log
CONF
# vmtoolsd powers off with system("/sbin/shutdown -h now"); busybox has no
# shutdown applet, so map it onto busybox's poweroff/reboot (which signal init).
cat > "$r/sbin/shutdown" <<'SH'
#!/bin/sh
for a in "$@"; do case $a in -r) exec /bin/busybox reboot ;; esac; done
exec /bin/busybox poweroff
SH
chmod 755 "$r/sbin/shutdown"

# The library closure from ELF NEEDED entries, resolved inside the stage.
libpath="lib/x86_64-linux-gnu usr/lib/x86_64-linux-gnu"
find_lib() {
	for d in $libpath; do [ -e "$s/$d/$1" ] && { echo "$d/$1"; return 0; }; done
	return 1
}
todo=$(find "$r/usr/bin" "$r/$plugdir" -type f \( -name 'vm*' -o -name '*.so' \))
seen=" "
while [ -n "$todo" ]; do
	next=
	for f in $todo; do
		for n in $(readelf -d "$f" 2>/dev/null | awk '/NEEDED/ {gsub(/[][]/, "", $5); print $5}'); do
			case "$seen" in *" $n "*) continue ;; esac
			seen="$seen$n "
			rel=$(find_lib "$n") || { say "library $n (needed by $(basename "$f")) is in no package"; exit 1; }
			mkdir -p "$r/$(dirname "$rel")"
			cp -L "$s/$rel" "$r/$rel"
			next="$next $r/$rel"
		done
	done
	todo=$next
done
mkdir -p "$r/lib64"
cp -L "$s/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" "$r/lib64/ld-linux-x86-64.so.2"
if [ -n "$tools" ]; then
	cp "$tools/vireo-iopl" "$tools/vireo-rpc" "$r/usr/bin/"
fi
cp "$here/ovt-init" "$r/init"
chmod 755 "$r/init"
mkdir -p "$out.tmp"
(cd "$r" && find . | sort | cpio -o -H newc --quiet -R 0:0) > "$out.tmp/initrd.img"
cp "$demo/vmlinuz" "$demo/busybox" "$out.tmp/"
{ cat "$demo/VERSION"; apt-cache policy open-vm-tools | awk '/Candidate:/ {print "open-vm-tools " $2}'; } > "$out.tmp/VERSION"
rm -rf "$out"
mv "$out.tmp" "$out"
find "$cache/images" -maxdepth 1 -name 'ovt-*' ! -name "ovt-$key" -exec rm -rf {} +
echo "$out"
