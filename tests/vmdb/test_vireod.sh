#!/bin/sh
# test_vireod.sh — vireoctl's VMDB commands against a real vireod that
# spawns VMs (fake_vmx: the real vmx_link code, no guest).  Covers on-demand
# start of vireod, register/list/status, start/stop/reset, get/set/watch,
# read-only refusal, a vmx crash (state off with the reason), a vireod
# restart that finds the running VM again, and unregister.
set -u
: "${VCTL:?}" "${VIREOD:?}" "${FAKE_VMX:?}"
T=$(mktemp -d /tmp/vireod-test-XXXXXX)
export XDG_RUNTIME_DIR="$T/run" XDG_CONFIG_HOME="$T/cfg" VIREOD VIREO_VMX="$FAKE_VMX"
mkdir -p "$XDG_RUNTIME_DIR"; chmod 700 "$XDG_RUNTIME_DIR"
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
vireod_pid() { "$VCTL" get /vireod/pid 2>/dev/null; }
cleanup() {
	p=$(cat "$XDG_RUNTIME_DIR/vireo/running" 2>/dev/null | awk '{print $2}')
	[ -n "$p" ] && kill -9 $p 2>/dev/null
	d=$(vireod_pid); [ -n "$d" ] && kill "$d" 2>/dev/null
	sleep 0.2; rm -rf "$T"
}
trap cleanup EXIT
expect() { # expect "what" "needle" command...
	what=$1; needle=$2; shift 2
	out=$("$@" 2>&1); rc=$?
	case "$out" in *"$needle"*) ;; *) fail "$what: wanted '$needle', got (rc $rc): $out";; esac
}
wait_for() { # wait_for PATH VALUE  (up to 10 s)
	i=0
	while [ $i -lt 100 ]; do
		[ "$("$VCTL" get "$1" 2>/dev/null)" = "$2" ] && return 0
		sleep 0.1; i=$((i + 1))
	done
	fail "$1 never became $2 (is $("$VCTL" get "$1" 2>&1))"
}

printf 'displayName = "demo"\nmemsize = "256"\nnumvcpus = "2"\n' > "$T/demo.vmx"

expect "register starts vireod" "0" "$VCTL" register "$T/demo.vmx"
expect "register twice" "already registered" "$VCTL" register "$T/demo.vmx"
expect "register junk" "not an absolute path to a .vmx" "$VCTL" set /vireod/request/register /etc/passwd
grep -q "^0	$T/demo.vmx\$" "$XDG_CONFIG_HOME/vireo/inventory" || fail "inventory file"
expect "list" "demo" "$VCTL" list
expect "status off" "power: off" "$VCTL" status 0
expect "config from the .vmx" "256" "$VCTL" get /vm/0/config/memsize

expect "start" "VM 0 is on" "$VCTL" start 0
expect "start again" "already on" "$VCTL" start "$T/demo.vmx"
expect "get power" "on" "$VCTL" get /vm/0/state/power
wait_for /vm/0/state/connected true
expect "get subtree" "/vm/0/state/power = on" "$VCTL" get /vm/0
expect "ro refused" "permission denied" "$VCTL" set /vm/0/state/power off
expect "not in schema" "invalid path" "$VCTL" set /vm/0/nothing 1
"$VCTL" set /vm/0/request/seq 5 || fail "set rw"
expect "get rw" "5" "$VCTL" get /vm/0/request/seq

"$VCTL" watch /vm/0/stats --count 2 --timeout 10 > "$T/watch.out" &
wpid=$!
sleep 0.5
expect "reset" "reset requested" "$VCTL" reset 0
sleep 0.3
expect "reset 2" "reset requested" "$VCTL" reset 0
wait $wpid || fail "watch exit status"
grep -q "^/vm/0/stats/exits = 1\$" "$T/watch.out" || fail "watch saw first reset: $(cat "$T/watch.out")"
grep -q "^/vm/0/stats/exits = 2\$" "$T/watch.out" || fail "watch saw second reset: $(cat "$T/watch.out")"

expect "stop" "VM 0 is off (guest powered off)" "$VCTL" stop 0
expect "status after stop" "exitstatus: 0" "$VCTL" status 0

# A vmx that crashes: state off, with the reason.
expect "start 2" "VM 0 is on" "$VCTL" start 0
pid=$("$VCTL" get /vm/0/state/pid)
kill -9 "$pid"
wait_for /vm/0/state/power off
expect "crash reason" "killed by signal 9" "$VCTL" get /vm/0/state/reason

# vireod restarts: the running VM is found again and reconnects.
expect "start 3" "VM 0 is on" "$VCTL" start 0
pid=$("$VCTL" get /vm/0/state/pid)
old=$(vireod_pid)
kill "$old"
i=0; while kill -0 "$old" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
expect "vireod restarted on demand" "power: on" "$VCTL" status 0
[ "$(vireod_pid)" != "$old" ] || fail "vireod did not restart"
wait_for /vm/0/state/connected true
expect "same vmx" "$pid" "$VCTL" get /vm/0/state/pid
expect "hard stop after restart" "VM 0 is off" "$VCTL" stop --hard 0
# Gone, or a zombie left to whoever adopted it after the first vireod exited.
# The vmx publishes "off" just before it exits: give it a moment to finish.
i=0
while st=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) && [ -n "$st" ] && [ "$st" != Z ] && [ $i -lt 50 ]; do
	sleep 0.1; i=$((i + 1))
done
[ -n "$st" ] && [ "$st" != Z ] && fail "vmx $pid still running 5 s after stop --hard ($st)"

expect "unregister" "" "$VCTL" unregister 0
expect "list empty" "ID" "$VCTL" list
"$VCTL" status 0 >/dev/null 2>&1 && fail "status of an unregistered VM succeeded"
[ -s "$XDG_CONFIG_HOME/vireo/inventory" ] && fail "inventory not emptied"

if [ $fails -ne 0 ]; then
	echo "test_vireod: $fails failures"; echo "--- vireod.log"; cat "$XDG_RUNTIME_DIR/vireo/vireod.log"
	exit 1
fi
echo "test_vireod: all passed"
