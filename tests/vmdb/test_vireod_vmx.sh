#!/bin/sh
# test_vireod_vmx.sh — vireoctl through vireod against a REAL vireo-vmx
# running a real guest (tests/guests/guest_acpi.s: it idles until the ACPI
# power button, then enters S5 itself).  start, status, get, set, watch,
# a graceful stop that the guest carries out, a hard stop, and the exit
# status each leaves in VMDB.
set -u
: "${VIREOCTL:?}" "${VIREOD:?}" "${VIREO_VMX:?}" "${ACPI_ROM:?}"
T=$(mktemp -d /tmp/vireod-vmx-XXXXXX)
export XDG_RUNTIME_DIR="$T/run" XDG_CONFIG_HOME="$T/cfg" VIREOD VIREO_VMX
mkdir -p "$XDG_RUNTIME_DIR"; chmod 700 "$XDG_RUNTIME_DIR"
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
cleanup() {
	p=$("$VIREOCTL" get /vm/0/state/pid 2>/dev/null)
	[ -n "$p" ] && [ "$p" != 0 ] && kill -9 "$p" 2>/dev/null
	d=$("$VIREOCTL" get /vireod/pid 2>/dev/null); [ -n "$d" ] && kill "$d" 2>/dev/null
	sleep 0.2; rm -rf "$T"
}
trap cleanup EXIT
expect() { # expect "what" "needle" command...
	what=$1; needle=$2; shift 2
	out=$("$@" 2>&1); rc=$?
	case "$out" in *"$needle"*) echo "ok: $what";; *) fail "$what: wanted '$needle', got (rc $rc): $out";; esac
}
wait_serial() { # wait_serial TEXT: the guest printed it (up to 60 s)
	i=0
	while [ $i -lt 600 ]; do
		grep -qF "$1" "$T/vm/serial.txt" 2>/dev/null && return 0
		sleep 0.1; i=$((i + 1))
	done
	fail "guest never printed '$1'; serial: $(cat "$T/vm/serial.txt" 2>&1); log: $(tail -5 "$T/vm/vmware.log" 2>&1)"
}

mkdir -p "$T/vm"
cat > "$T/vm/acpi.vmx" <<VMX
displayName = "acpi guest"
memsize = "64"
bios440.filename = "$ACPI_ROM"
monitor.engine = "${ENGINE:-hv}"
vireo.testDevice = "TRUE"
serial0.present = "TRUE"
serial0.fileType = "file"
serial0.fileName = "$T/vm/serial.txt"
VMX

expect "register" "0" "$VIREOCTL" register "$T/vm/acpi.vmx"
expect "status off" "power: off" "$VIREOCTL" status 0
expect "start" "VM 0 is on" "$VIREOCTL" start 0
wait_serial "acpi: waiting for the power button"
expect "power is on" "on" "$VIREOCTL" get /vm/0/state/power
pid=$("$VIREOCTL" get /vm/0/state/pid)
kill -0 "$pid" 2>/dev/null || fail "vmx pid $pid is not running"
"$VIREOCTL" set /vm/0/request/seq 7 || fail "set"
expect "get what was set" "7" "$VIREOCTL" get /vm/0/request/seq

"$VIREOCTL" watch /vm/0/state/power --count 1 --timeout 60 > "$T/watch.out" 2>&1 &
wpid=$!
sleep 0.5
expect "graceful stop" "VM 0 is off" "$VIREOCTL" stop 0
wait $wpid || fail "watch: $(cat "$T/watch.out")"
grep -q "off" "$T/watch.out" || fail "watch did not see power go off: $(cat "$T/watch.out")"
grep -qF "acpi: power button pressed, entering S5" "$T/vm/serial.txt" ||
	fail "the guest did not see the power button: $(cat "$T/vm/serial.txt")"
expect "exit status 0" "exitstatus: 0" "$VIREOCTL" status 0
kill -0 "$pid" 2>/dev/null && fail "vmx $pid still running after stop"

: > "$T/vm/serial.txt"
expect "start again" "VM 0 is on" "$VIREOCTL" start 0
wait_serial "acpi: waiting for the power button"
expect "hard stop" "VM 0 is off" "$VIREOCTL" stop --hard 0
grep -qF "power button pressed" "$T/vm/serial.txt" && fail "hard stop went through the guest"
expect "status after hard stop" "power: off" "$VIREOCTL" status 0

[ $fails -eq 0 ] && echo "PASS: vireoctl through vireod against a real vireo-vmx" && exit 0
echo "$fails failure(s)"; exit 1
