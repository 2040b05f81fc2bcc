#!/bin/sh
# test_tools_vmx.sh — the tools host side end to end: vireod + vireoctl +
# a real vireo-vmx running tests/tools/guest_tools.s on $ENGINE.  The guest
# reads guestinfo set in the .vmx, sets one, inflates the balloon to the
# .vmx target, and runs a TCLO loop; vireoctl reads and sets guestinfo,
# changes the balloon target, and `stop` powers off through TCLO OS_Halt
# (not the ACPI button).  Usage: test_tools_vmx.sh [hv|bt] (default $ENGINE,
# else hv).  Exits 77 (skip) when the engine cannot run here.
set -u
: "${VIREOCTL:?}" "${VIREOD:?}" "${VIREO_VMX:?}" "${TOOLS_ROM:?}"
ENGINE=${1:-${ENGINE:-hv}}
if [ "$ENGINE" = hv ] && ! { [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; }; then
	echo "SKIP: no usable /dev/kvm"; exit 77
fi
T=$(mktemp -d /tmp/vireo-tools-XXXXXX)
export XDG_RUNTIME_DIR="$T/run" XDG_CONFIG_HOME="$T/cfg" VIREOD VIREO_VMX
mkdir -p "$XDG_RUNTIME_DIR"; chmod 700 "$XDG_RUNTIME_DIR"
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
cleanup() {
	p=$("$VIREOCTL" get /vm/0/state/pid 2>/dev/null)
	[ -n "$p" ] && [ "$p" != 0 ] && kill -9 "$p" 2>/dev/null
	d=$("$VIREOCTL" get /vireod/pid 2>/dev/null); [ -n "$d" ] && kill "$d" 2>/dev/null
	sleep 0.2; [ -n "${KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
expect() { # expect "what" "needle" command...
	what=$1; needle=$2; shift 2
	out=$("$@" 2>&1); rc=$?
	case "$out" in *"$needle"*) echo "ok: $what";; *) fail "$what: wanted '$needle', got (rc $rc): $out";; esac
}
wait_serial() { # wait_serial TEXT (up to 90 s)
	i=0
	while [ $i -lt 900 ]; do
		grep -qF "$1" "$T/vm/serial.txt" 2>/dev/null && { echo "ok: guest printed '$1'"; return 0; }
		sleep 0.1; i=$((i + 1))
	done
	fail "guest never printed '$1'; serial: $(cat "$T/vm/serial.txt" 2>&1); log: $(tail -5 "$T/vm/vmware.log" 2>&1)"
}
wait_get() { # wait_get PATH VALUE (up to 10 s)
	i=0
	while [ $i -lt 100 ]; do
		[ "$("$VIREOCTL" get "$1" 2>/dev/null)" = "$2" ] && { echo "ok: $1 = $2"; return 0; }
		sleep 0.1; i=$((i + 1))
	done
	fail "$1 never became '$2' (it is '$("$VIREOCTL" get "$1" 2>&1)')"
}

mkdir -p "$T/vm"
cat > "$T/vm/tools.vmx" <<VMX
displayName = "tools guest"
memsize = "64"
bios440.filename = "$TOOLS_ROM"
monitor.engine = "$ENGINE"
vireo.testDevice = "TRUE"
serial0.present = "TRUE"
serial0.fileType = "file"
serial0.fileName = "$T/vm/serial.txt"
guestinfo.greeting = "hello from the host"
sched.mem.balloonTarget = "8"
VMX

expect "register" "0" "$VIREOCTL" register "$T/vm/tools.vmx"
expect "start" "VM 0 is on" "$VIREOCTL" start 0
wait_serial "tools: reply=1 hello from the host"
wait_serial "tools: set=1 "
wait_serial "balloon: caps=46"
wait_serial "balloon: locked=2048"
wait_serial "tools: got reset"
wait_serial "tools: got Set_Option synctime 1"
wait_get /vm/0/guest/state running
wait_get /vm/0/guest/balloon/size_mb 8
wait_get /vm/0/guest/balloon/target_mb 8
expect "guestinfo set by the guest" "set by the guest" "$VIREOCTL" guestinfo 0 fromguest
expect "guestinfo from the vmx" "hello from the host" "$VIREOCTL" guestinfo 0 guestinfo.greeting
"$VIREOCTL" guestinfo 0 newkey "a value with spaces" || fail "guestinfo set"
expect "guestinfo set by the host" "a value with spaces" "$VIREOCTL" guestinfo 0 newkey
expect "guestinfo list" "guestinfo.newkey = a value with spaces" "$VIREOCTL" guestinfo 0
expect "guestinfo missing" "No value found" "$VIREOCTL" guestinfo 0 nosuchkey
expect "balloon target" "balloon target 16 MB" "$VIREOCTL" balloon 0 16
wait_get /vm/0/guest/balloon/target_mb 16
expect "balloon bad size" "not a size" "$VIREOCTL" balloon 0 lots

start=$(date +%s)
expect "graceful stop through the tools" "VM 0 is off" "$VIREOCTL" stop 0
echo "stop took $(( $(date +%s) - start )) s"
grep -qF "tools: got OS_Halt" "$T/vm/serial.txt" || fail "the guest never got OS_Halt: $(cat "$T/vm/serial.txt")"
grep -qF "tools: halting" "$T/vm/serial.txt" || fail "the guest did not halt itself"
grep -q "tools: asked the guest to halt" "$T/vm/vmware.log" || fail "vmware.log does not show the tools halt"

[ $fails -eq 0 ] && echo "PASS: tools host side end to end on $ENGINE" && exit 0
echo "$fails failure(s)"; exit 1
