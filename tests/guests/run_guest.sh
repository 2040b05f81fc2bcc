#!/bin/sh
# run_guest.sh ENGINE ROM EXPECTED-LINE... — boot a test guest ROM in
# vireo-vmx on ENGINE, then check the exit status (42 = the guest's own
# checks passed) and that the serial output holds every EXPECTED-LINE.
# Exits 77 (meson's skip) when the engine cannot run here.
set -u
engine=$1; rom=$2; shift 2
vmx=${VIREO_VMX:?VIREO_VMX must name vireo-vmx}
name=$(basename "$rom" .rom)

if [ "$engine" = hv ] && ! { [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; }; then
	echo "SKIP: /dev/kvm is missing or not accessible; the hv engine cannot run"
	exit 77
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/vireo-guest-$name.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
cat > "$dir/$name.vmx" <<VMX
displayName = "test guest $name"
bios440.filename = "$rom"
memsize = "64"
numvcpus = "1"
vireo.testDevice = "TRUE"
monitor.engine = "$engine"
serial0.present = "TRUE"
serial0.fileType = "file"
serial0.fileName = "serial.txt"
VMX
timeout -k 5 ${VIREO_GUEST_TIMEOUT:-90} "$vmx" "$dir/$name.vmx" > "$dir/stdout.txt" 2>&1
status=$?
fail=0
if [ "$status" -ne 42 ]; then
	echo "FAIL: $name on $engine: exit status $status, expected 42 (the guest's success)"
	fail=1
fi
serial="$dir/serial.txt"
[ -f "$serial" ] || : > "$serial"
for line in "$@"; do
	if ! grep -qF -- "$line" "$serial"; then
		echo "FAIL: $name on $engine: serial output lacks \"$line\""
		fail=1
	fi
done
echo "--- serial ($name on $engine)"; cat "$serial"
if [ "$fail" -ne 0 ]; then
	echo "--- vireo-vmx output"; cat "$dir/stdout.txt"
	[ -f "$dir/vmware.log" ] && { echo "--- vmware.log"; tail -n 40 "$dir/vmware.log"; }
	exit 1
fi
echo "PASS: $name on $engine (status 42)"
exit 0
