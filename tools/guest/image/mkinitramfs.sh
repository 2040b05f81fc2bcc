#!/bin/sh
# mkinitramfs.sh BUSYBOX INIT OUT [EXTRA_DIR]
# A newc cpio (uncompressed: the bt engine boots faster without an inflate)
# holding busybox, its applet links, INIT as /init, and EXTRA_DIR's files.
set -eu
bb=$1 init=$2 out=$3 extra=${4:-}
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/sbin" "$root/usr/bin" "$root/usr/sbin" "$root/proc" "$root/sys" \
	"$root/dev" "$root/tmp" "$root/root" "$root/etc" "$root/mnt"
cp "$bb" "$root/bin/busybox"
chmod 755 "$root/bin/busybox"
for a in $("$bb" --list-full); do
	[ "$a" = bin/busybox ] && continue
	ln -sf /bin/busybox "$root/$a"
done
cp "$init" "$root/init"
chmod 755 "$root/init"
if [ -n "$extra" ] && [ -d "$extra" ]; then
	# --remove-destination: a file in EXTRA named like an applet replaces the
	# link instead of being written through it (the link's target, resolved on
	# the host, would be the host's own /bin/busybox).
	cp -a --remove-destination "$extra"/. "$root"/
fi
echo "root:x:0:0:root:/root:/bin/sh" > "$root/etc/passwd"
echo "vireo" > "$root/etc/hostname"
(cd "$root" && find . | sort | cpio -o -H newc --quiet -R 0:0) > "$out"
