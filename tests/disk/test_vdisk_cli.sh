#!/bin/bash
# test_vdisk_cli.sh — vireo-vdisk from the command line: every subcommand,
# sizes with suffixes, exit codes and messages on bad input.
set -u
V=${VIREO_VDISK:?VIREO_VDISK is not set (run through meson test)}
T=$(mktemp -d /tmp/vireo-vdisk-cli.XXXXXX) || exit 1
trap 'rm -rf "$T"' EXIT
fails=0
cases=0

# expect STATUS PATTERN CMD...: exit status and a fixed string in stdout+stderr.
expect() {
	local want=$1 pat=$2 out st
	shift 2
	out=$("$@" 2>&1)
	st=$?
	cases=$((cases + 1))
	if [ "$st" -ne "$want" ] || { [ -n "$pat" ] && ! grep -qF -- "$pat" <<<"$out"; }; then
		echo "FAIL: $* -> status $st (want $want), output: $out (want '$pat')"
		fails=$((fails + 1))
	fi
}
have_qemu=0
qemu-img --version >/dev/null 2>&1 && have_qemu=1

expect 0 "" "$V" create "$T/a.vmdk" 10G
expect 0 "virtual size: 10737418240 bytes" "$V" info "$T/a.vmdk"
expect 0 "monolithicSparse" "$V" info "$T/a.vmdk"
expect 0 "no errors found" "$V" check "$T/a.vmdk"
expect 1 "File exists" "$V" create "$T/a.vmdk" 10G
expect 0 "" "$V" create -t flat "$T/f.vmdk" 512M
expect 0 "monolithicFlat" "$V" info "$T/f.vmdk"
[ -f "$T/f-flat.vmdk" ] || { echo "FAIL: no f-flat.vmdk"; fails=$((fails + 1)); }
expect 0 "" "$V" create -t raw "$T/r.img" 1M
expect 0 "virtual size: 1048576 bytes" "$V" info "$T/r.img"
expect 0 "" "$V" resize "$T/a.vmdk" 20G
expect 0 "virtual size: 21474836480 bytes" "$V" info "$T/a.vmdk"
expect 1 "shrinking" "$V" resize "$T/a.vmdk" 1G
expect 0 "" "$V" resize "$T/f.vmdk" 1G
expect 0 "virtual size: 1073741824 bytes" "$V" info "$T/f.vmdk"
expect 0 "" "$V" convert -O sparse "$T/r.img" "$T/c.vmdk"
expect 0 "" "$V" convert -O raw "$T/c.vmdk" "$T/c.img"
cmp -s "$T/r.img" "$T/c.img" || { echo "FAIL: raw -> vmdk -> raw differs"; fails=$((fails + 1)); }
expect 2 "bad size" "$V" create "$T/b.vmdk" 10X
expect 2 "unknown type" "$V" create -t qcow2 "$T/b.vmdk" 1G
expect 2 "usage" "$V" frobnicate
expect 1 "No such file" "$V" info "$T/missing.vmdk"
# A corrupt image: check names the problem, info still shows it (read-only).
cp "$T/c.vmdk" "$T/bad.vmdk"
printf 'XXXX' | dd of="$T/bad.vmdk" conv=notrunc status=none
expect 1 "bad magic" "$V" check "$T/bad.vmdk"
expect 1 "bad magic" "$V" info "$T/bad.vmdk"
if [ $have_qemu = 1 ]; then
	for f in a c f; do
		expect 0 "No errors" qemu-img check "$T/$f.vmdk"
	done
	expect 0 "21474836480" qemu-img info "$T/a.vmdk"
	qemu-img create -q -f vmdk "$T/q.vmdk" 3G
	expect 0 "virtual size: 3221225472" "$V" info "$T/q.vmdk"
	expect 0 "" "$V" resize "$T/q.vmdk" 5G
	expect 0 "No errors" qemu-img check "$T/q.vmdk"
	expect 0 "5 GiB" qemu-img info "$T/q.vmdk"
fi
echo "test_vdisk_cli: $cases cases, $fails failed"
[ "$fails" -eq 0 ]
