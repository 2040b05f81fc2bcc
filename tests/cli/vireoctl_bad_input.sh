#!/bin/bash
# vireoctl: usage errors exit 2 naming the culprit; failures exit 1 naming
# the file; create writes the documented .vmx; run execs vireo-vmx.
. "$(dirname "$0")/lib.sh"
C=$VIREOCTL

# --- usage errors: one line naming it, then usage, exit 2 ---
expect 2 "no arguments" "usage: vireoctl" -- "$C"
expect 2 "unknown command" 'unknown command "frobnicate"' "usage: vireoctl" -- "$C" frobnicate
expect 2 "unknown global option" 'unknown option "--bogus"' -- "$C" --bogus
expect 2 "help for an unknown command" 'unknown command "nope"' -- "$C" help nope
expect 2 "create: unknown option" 'unknown option "--colour"' "usage: vireoctl create" -- "$C" create vm --dir "$T" --colour red
expect 2 "create: missing NAME" "missing NAME" -- "$C" create --dir "$T"
expect 2 "create: two names" 'unexpected argument "b"' -- "$C" create a b --dir "$T"
expect 2 "create: --memsize abc" '--memsize "abc": not a number' -- "$C" create vm --dir "$T" --memsize abc
expect 2 "create: --memsize 2 (too small)" '--memsize "2": out of range' -- "$C" create vm --dir "$T" --memsize 2
expect 2 "create: --memsize 6 (not a multiple of 4)" '--memsize "6": not a multiple of 4 MB' -- "$C" create vm --dir "$T" --memsize 6
expect 2 "create: --memsize huge" '--memsize "99999999999999999999999"' -- "$C" create vm --dir "$T" --memsize 99999999999999999999999
expect 2 "create: --cpus 0" '--cpus "0": out of range' -- "$C" create vm --dir "$T" --cpus 0
expect 2 "create: --cpus 1000" '--cpus "1000": out of range' -- "$C" create vm --dir "$T" --cpus 1000
expect 2 "create: --cpus -1" '--cpus "-1": not a number' -- "$C" create vm --dir "$T" --cpus=-1
expect 2 "create: --engine warp" '--engine "warp"' -- "$C" create vm --dir "$T" --engine warp
expect 2 "create: --memsize without a value" "--memsize needs a value" -- "$C" create vm --dir "$T" --memsize
expect 2 "create: NAME with a slash" 'contains' -- "$C" create a/b --dir "$T"
expect 2 "create: NAME .." 'not a usable folder name' -- "$C" create .. --dir "$T"
expect 2 "run: missing PATH" "missing PATH.vmx" -- "$C" run
expect 2 "run: -s without =" '-s "novalue": expected key=value' -- "$C" run x.vmx -s novalue
expect 2 "run: -s without argument" "-s needs key=value" -- "$C" run x.vmx -s
expect 2 "run: unknown option" 'unknown option "--fast"' -- "$C" run x.vmx --fast
check "nothing was created by the usage errors" [ -z "$(ls -A "$T")" ]

# --- help and version: exit 0 on stdout ---
expect 0 "--help" -- "$C" --help
check "--help lists create and run" grep -q "create.*run\|run" "$IO/out"
expect 0 "help create" -- "$C" help create
check "help create shows its usage" grep -qF -- "--memsize MB" "$IO/out"
expect 0 "create --help" -- "$C" create --help
expect 0 "--version" -- "$C" --version
check "--version names vireoctl" grep -q "^vireoctl [0-9]" "$IO/out"

# --- failures naming the file: exit 1 ---
expect 1 "create: missing kernel" "$T/no-such-kernel" "No such file" -- "$C" create vm --dir "$T" --kernel "$T/no-such-kernel"
mkdir "$T/kdir"
expect 1 "create: kernel is a directory" "$T/kdir" "is a directory" -- "$C" create vm --dir "$T" --kernel "$T/kdir"
echo "just text" >"$T/notbz"
expect 1 "create: kernel is not a bzImage" "$T/notbz" "not a bzImage" -- "$C" create vm --dir "$T" --kernel "$T/notbz"
fake_bzimage "$T/bzImage"
expect 1 "create: missing initrd" "$T/no-initrd" -- "$C" create vm --dir "$T" --kernel "$T/bzImage" --initrd "$T/no-initrd"
expect 1 "create: --dir that does not exist" "$T/nowhere" -- "$C" create vm --dir "$T/nowhere"
check "failed creates left no VM folder" [ ! -e "$T/vm" ]

# --- a good create, then create over it ---
expect 0 "create a VM" -- "$C" create vm --dir "$T" --memsize 64 --cpus 2 --engine bt --kernel "$T/../$(basename "$T")/bzImage" --cmdline 'console=ttyS0 quote="x" bar|y'
check "create prints the .vmx path" grep -qxF "$T/vm/vm.vmx" "$IO/out"
V=$T/vm/vm.vmx
for kv in '.encoding = "UTF-8"' 'config.version = "8"' 'virtualHW.version = "19"' \
          'displayName = "vm"' 'guestOS = "other6xlinux-64"' 'memsize = "64"' \
          'numvcpus = "2"' 'monitor.engine = "bt"' 'serial0.present = "TRUE"' \
          'serial0.fileType = "file"' 'serial0.fileName = "serial0.log"' \
          "linux.kernel = \"$T/bzImage\"" \
          'linux.cmdline = "console=ttyS0 quote=|22x|22 bar|7Cy"'; do
	check "vm.vmx has $kv" grep -qxF "$kv" "$V"
done
check "no linux.initrd without --initrd" sh -c "! grep -q initrd '$V'"
cp "$V" "$T/vm.vmx.before"
expect 1 "create over an existing VM folder" "$T/vm" "already exists" -- "$C" create vm --dir "$T"
check "the existing .vmx is untouched" cmp -s "$V" "$T/vm.vmx.before"
expect 0 "create with defaults" -- "$C" create plain --dir "$T"
check "defaults: memsize 512" grep -qxF 'memsize = "512"' "$T/plain/plain.vmx"
check "defaults: numvcpus 1" grep -qxF 'numvcpus = "1"' "$T/plain/plain.vmx"
check "defaults: engine auto" grep -qxF 'monitor.engine = "auto"' "$T/plain/plain.vmx"
mkdir "$T/home"
expect 0 "create in \$HOME/vireo by default" -- env HOME="$T/home" "$C" create homevm
check "default parent is \$HOME/vireo" [ -f "$T/home/vireo/homevm/homevm.vmx" ]

# --- run: execs the vireo-vmx beside it, else $VIREO_VMX; status passes through ---
mkdir "$T/bin" "$T/bin2"
cp "$C" "$T/bin/vireoctl"
cp "$C" "$T/bin2/vireoctl"
cat >"$T/bin/vireo-vmx" <<'FAKE'
#!/bin/sh
printf '%s\n' "$@" >"$(dirname "$0")/args"
exit 7
FAKE
chmod +x "$T/bin/vireo-vmx"
expect 7 "run: exit status is vireo-vmx's" -- "$T/bin/vireoctl" run "$V" -s memsize=128 -s a.b=x=y
printf '%s\n' -s serial0.present=TRUE -s serial0.fileType=stdio -s memsize=128 -s a.b=x=y "$V" >"$T/want"
check "run: vireo-vmx got serial0 on stdio, the -s options, then the path" cmp -s "$T/bin/args" "$T/want"
rm -f "$T/bin/args"
expect 7 "run: \$VIREO_VMX when none is beside vireoctl" -- env VIREO_VMX="$T/bin/vireo-vmx" "$T/bin2/vireoctl" run "$V"
check "run: \$VIREO_VMX got the path last" sh -c "tail -n 1 '$T/bin/args' | grep -qxF '$V'"
expect 1 "run: a .vmx that does not exist" "$T/none.vmx" -- "$C" run "$T/none.vmx"

finish
