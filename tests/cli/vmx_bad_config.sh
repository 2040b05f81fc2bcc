#!/bin/bash
# vireo-vmx on bad .vmx files: exit status 1 (never a crash or a hang) and a
# message on stderr naming the file and the line or key.  VMs are made with
# vireoctl, then one bad line is appended (the last duplicate wins).
. "$(dirname "$0")/lib.sh"
X=$VIREO_VMX

# mkcase NAME LINE...: a VM folder $T/NAME from vireoctl plus the given lines;
# sets V (the .vmx) and L (the number of the last line).
mkcase() {
	local name=$1 line
	shift
	"$VIREOCTL" create "$name" --dir "$T" --memsize 16 >/dev/null || {
		echo "FAIL: vireoctl create $name"; exit 1; }
	V=$T/$name/$name.vmx
	for line in "$@"; do printf '%s\n' "$line" >>"$V"; done
	L=$(wc -l <"$V")
}

mkcase syntax 'memsize 512'
expect 1 "syntax error: missing '='" "$V:$L: missing '=' after key \"memsize\"" -- "$X" "$V"
mkcase quote 'displayName = "unterminated'
expect 1 "syntax error: unterminated quote" "$V:$L: unterminated quote" -- "$X" "$V"
mkcase badkey 'ethernet0$present = "TRUE"'
expect 1 "syntax error: invalid key" "$V:$L: invalid character '\$' in key" -- "$X" "$V"

mkcase memabc 'memsize = "abc"'
expect 1 "memsize not a number" "$V:$L: memsize = \"abc\" is not a number (expected 4..1048576 MB)" -- "$X" "$V"
mkcase memsmall 'memsize = "2"'
expect 1 "memsize below range" "$V:$L: memsize = \"2\" is out of range" -- "$X" "$V"
mkcase membig 'memsize = "2000000"'
expect 1 "memsize above range" "$V:$L: memsize = \"2000000\" is out of range" -- "$X" "$V"
mkcase cpu0 'numvcpus = "0"'
expect 1 "numvcpus 0" "$V:$L: numvcpus = \"0\" is out of range" -- "$X" "$V"
mkcase cpu1000 'numvcpus = "1000"'
expect 1 "numvcpus 1000" "$V:$L: numvcpus = \"1000\" is out of range" -- "$X" "$V"
mkcase warp 'monitor.engine = "warp"'
expect 1 "monitor.engine warp" "$V:$L: monitor.engine = \"warp\" is not one of" -- "$X" "$V"

# An override has no line, but the message still names the file and key.
mkcase override
expect 1 "-s memsize=abc" "$V: memsize = \"abc\" is not a number" -- "$X" -s memsize=abc "$V"
expect 1 "vireoctl run passes the failure through" "memsize = \"abc\" is not a number" -- "$VIREOCTL" run "$V" -s memsize=abc

# The kernel is checked after the engine is chosen: name one that exists
# in every build, so these cases reach the check on any host.
E='monitor.engine = "hv"'
mkcase nokernel "$E" "linux.kernel = \"$T/no-such-bzImage\""
expect 1 "missing kernel" "$V" "linux.kernel" "$T/no-such-bzImage" -- "$X" "$V"
mkdir "$T/kdir"
mkcase dirkernel "$E" "linux.kernel = \"$T/kdir\""
expect 1 "kernel is a directory" "$V" "linux.kernel" "$T/kdir" -- "$X" "$V"
head -c 8192 /dev/urandom >"$T/random.bin"
mkcase notbz "$E" "linux.kernel = \"$T/random.bin\""
expect 1 "kernel is not a bzImage" "$V" "linux.kernel" "not a bzImage" -- "$X" "$V"
fake_bzimage "$T/bz"
mkcase noinitrd "$E" "linux.kernel = \"$T/bz\"" "linux.initrd = \"$T/no-such-initrd\""
expect nonzero "missing initrd" "$T/no-such-initrd" -- "$X" "$V"

mkcase baddec "$E" "linux.kernel = \"$T/bz\"" 'linux.decompress = "maybe"'
expect 1 "linux.decompress maybe" "$V" 'linux.decompress = "maybe"' -- "$X" "$V"
# A bzImage whose payload starts like XZ but is damaged: refused, named.
fake_bzimage "$T/bzxz"
printf '\x10\x00\x00\x00\x40\x00\x00\x00' | dd of="$T/bzxz" bs=1 seek=$((0x248)) conv=notrunc status=none
printf '\xfd7zXZ\x00garbage' | dd of="$T/bzxz" bs=1 seek=$((2560 + 0x10)) conv=notrunc status=none
printf '\x00\x10\x00\x00' | dd of="$T/bzxz" bs=1 seek=$((2560 + 0x10 + 0x40 - 4)) conv=notrunc status=none
if [ -e /dev/kvm ]; then
	mkcase badxz "$E" "linux.kernel = \"$T/bzxz\""
	expect 1 "damaged XZ kernel payload" "$V" "$T/bzxz" "damaged XZ payload" -- "$X" "$V"
fi

expect 1 "a .vmx that does not exist" "$T/none.vmx" -- "$X" "$T/none.vmx"
expect 1 "a .vmx that is a folder" "$T/kdir" -- "$X" "$T/kdir"

# Already running: the lock on NAME.vmx.lck is held (here by this shell,
# exactly as a running vireo-vmx holds it), so a second one must refuse.
mkcase running "bios440.filename = \"$T/no-such.rom\""
exec 9>"$V.lck"
if flock -n 9; then
	expect 1 "VM already running" "already running" "$V.lck" -- "$X" "$V"
	check "the refused vireo-vmx left the .vmx alone" grep -qxF 'memsize = "16"' "$V"
	exec 9>&-
	expect 1 "after the lock is released it gets past the lock (to the missing ROM)" "no-such.rom" -- "$X" "$V"
	check "... and does not claim the VM is running" sh -c "! grep -q 'already running' '$IO/err'"
else
	check "flock on $V.lck" false
fi

# The same with a real running VM, when the demo guest is built
# (tools/guest/image/build-demo.sh): it need only get as far as the lock.
K=$(ls "$HOME"/.cache/vireo/images/demo-*/vmlinuz 2>/dev/null | head -n 1)
if [ -n "$K" ] && [ -e /dev/kvm ]; then
	"$VIREOCTL" create live --dir "$T" --memsize 128 --engine hv --kernel "$K" \
		--initrd "${K%vmlinuz}initrd.img" --cmdline console=ttyS0 >/dev/null
	V=$T/live/live.vmx
	"$X" "$V" >"$IO/live.out" 2>&1 </dev/null &
	pid=$!
	# It writes its pid into the lock file once it holds the lock.
	for _ in $(seq 200); do
		grep -qx "$pid" "$V.lck" 2>/dev/null && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if grep -qx "$pid" "$V.lck" 2>/dev/null && kill -0 "$pid" 2>/dev/null; then
		expect 1 "a second vireo-vmx on a running VM" "already running" "$V.lck" "pid $pid" -- "$X" "$V"
	else
		check "the first vireo-vmx runs and takes the lock" false
		sed 's/^/  first vmx: /' "$IO/live.out"
	fi
	kill -TERM "$pid" 2>/dev/null
	for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
else
	echo "note: no demo guest in ~/.cache/vireo/images (or no /dev/kvm): live already-running case skipped"
fi

finish
