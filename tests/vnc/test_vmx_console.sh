#!/bin/sh
# test_vmx_console.sh — the MKS inside a real vireo-vmx running a real guest
# (tests/guests/guest_acpi.s, idle until the power button):
#   - RemoteDisplay.vnc.* keys: vncsnapshot connects to the vmx and gets the screen;
#     a bad port is refused with an error naming the key;
#   - mks.screenshotOnSignal: SIGUSR2 writes a PNG of the same size;
#   - `vireoctl screenshot VM FILE.png` through vireod and VMDB.
set -u
: "${VIREOCTL:?}" "${VIREOD:?}" "${VIREO_VMX:?}" "${ACPI_ROM:?}"
command -v vncsnapshot >/dev/null && command -v djpeg >/dev/null || { echo "SKIP: vncsnapshot/djpeg"; exit 77; }
T=$(mktemp -d /tmp/vireo-console-XXXXXX)
export XDG_RUNTIME_DIR="$T/run" XDG_CONFIG_HOME="$T/cfg" VIREOD VIREO_VMX
mkdir -p "$XDG_RUNTIME_DIR" "$T/vm"; chmod 700 "$XDG_RUNTIME_DIR"
fails=0
vpid=""
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
cleanup() {
	[ -n "$vpid" ] && kill -9 "$vpid" 2>/dev/null
	p=$("$VIREOCTL" get /vm/0/state/pid 2>/dev/null)
	[ -n "$p" ] && [ "$p" != 0 ] && kill -9 "$p" 2>/dev/null
	d=$("$VIREOCTL" get /vireod/pid 2>/dev/null); [ -n "$d" ] && kill "$d" 2>/dev/null
	sleep 0.2; rm -rf "$T"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
png_size() { # width x height from a PNG's IHDR
	python3 -c 'import struct,sys; d=open(sys.argv[1],"rb").read(24); assert d[:8]==b"\x89PNG\r\n\x1a\n"; print("%dx%d" % struct.unpack(">II", d[16:24]))' "$1"
}
jpg_size() {
	djpeg -pnm "$1" | head -c 20 | python3 -c 'import sys; t=sys.stdin.buffer.read().split(); print("%sx%s" % (t[1].decode(), t[2].decode()))'
}
wait_serial() {
	i=0
	while [ $i -lt 600 ]; do
		grep -qF "$1" "$T/vm/serial.txt" 2>/dev/null && return 0
		sleep 0.1; i=$((i + 1))
	done
	fail "guest never printed '$1'; log: $(tail -5 "$T/vm/vmware.log" 2>&1)"
}
engine=${ENGINE:-}
[ -z "$engine" ] && { [ -r /dev/kvm ] && [ -w /dev/kvm ] && engine=hv || engine=bt; }

write_vmx() { # write_vmx FILE EXTRA-LINES
	cat > "$1" <<VMX
displayName = "console guest"
memsize = "64"
bios440.filename = "$ACPI_ROM"
monitor.engine = "$engine"
serial0.present = "TRUE"
serial0.fileType = "file"
serial0.fileName = "$T/vm/serial.txt"
$2
VMX
}

# A bad key is refused with its name.
write_vmx "$T/vm/bad.vmx" 'RemoteDisplay.vnc.enabled = "TRUE"
RemoteDisplay.vnc.port = "99999"'
out=$("$VIREO_VMX" "$T/vm/bad.vmx" 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "RemoteDisplay.vnc.port" && echo "ok: bad port refused" ||
	fail "bad RemoteDisplay.vnc.port: rc $rc: $out"

# Directly: VNC and the signal screenshot.
write_vmx "$T/vm/direct.vmx" "RemoteDisplay.vnc.enabled = \"TRUE\"
RemoteDisplay.vnc.port = \"$port\"
mks.screenshotOnSignal = \"$T/sig.png\""
"$VIREO_VMX" "$T/vm/direct.vmx" > "$T/vmx.out" 2>&1 &
vpid=$!
wait_serial "acpi: waiting for the power button"
if vncsnapshot -quiet -allowblank -encodings raw "127.0.0.1::$port" "$T/vnc.jpg" >/dev/null 2>&1; then
	echo "ok: vncsnapshot from the vmx ($(jpg_size "$T/vnc.jpg"))"
else
	fail "vncsnapshot could not read the vmx's screen: $(tail -5 "$T/vmx.out")"
fi
kill -USR2 "$vpid"
i=0; while [ ! -s "$T/sig.png" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
if [ -s "$T/sig.png" ]; then
	a=$(png_size "$T/sig.png"); b=$(jpg_size "$T/vnc.jpg" 2>/dev/null)
	[ "$a" = "$b" ] && echo "ok: SIGUSR2 screenshot $a" || fail "screenshot $a, VNC $b"
else
	fail "no screenshot after SIGUSR2"
fi
kill -0 "$vpid" 2>/dev/null || fail "the vmx died: $(tail -5 "$T/vmx.out")"
kill -9 "$vpid"; wait "$vpid" 2>/dev/null; vpid=""

# Through vireod.
write_vmx "$T/vm/vm.vmx" ""
rm -f "$T/vm/serial.txt"
"$VIREOCTL" register "$T/vm/vm.vmx" >/dev/null || fail "register"
"$VIREOCTL" start 0 >/dev/null || fail "start"
wait_serial "acpi: waiting for the power button"
out=$("$VIREOCTL" screenshot 0 "$T/ctl.png" 2>&1) || fail "vireoctl screenshot: $out"
[ -s "$T/ctl.png" ] && echo "ok: vireoctl screenshot $(png_size "$T/ctl.png")" || fail "no file from vireoctl screenshot: $out"
out=$("$VIREOCTL" screenshot 0 "$T/ctl.png" 2>&1) || fail "second screenshot to the same path: $out"
out=$("$VIREOCTL" screenshot 0 "/nonexistent/x.png" 2>&1) && fail "screenshot into a missing folder succeeded"
echo "$out" | grep -q "nonexistent" && echo "ok: error names the path" || fail "error: $out"
"$VIREOCTL" stop --hard 0 >/dev/null 2>&1

[ $fails -eq 0 ] && echo "test_vmx_console: all passed" && exit 0
exit 1
