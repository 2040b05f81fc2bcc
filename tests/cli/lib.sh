# lib.sh — shared by the tests/cli scripts (bash).  Each script sources it,
# calls expect/expect_ok for each case and ends with `finish`.
#   $VIREOCTL, $VIREO_VMX: the programs under test (set by meson test).
set -u
: "${VIREOCTL:?VIREOCTL is not set (run through meson test)}"
: "${VIREO_VMX:?VIREO_VMX is not set (run through meson test)}"

# $T: the scratch folder the cases use; $IO: the last command's out and err.
T=$(mktemp -d /tmp/vireo-cli-test.XXXXXX) || exit 1
IO=$(mktemp -d /tmp/vireo-cli-io.XXXXXX) || exit 1
trap 'rm -rf "$T" "$IO"' EXIT
fails=0
cases=0

# expect STATUS DESC [PATTERN...] -- CMD [ARGS...]
# STATUS is a number or "nonzero".  Every PATTERN must appear (as a fixed
# string) in the command's stderr.  The command gets 30 s: a hang is a failure.
expect() {
	local want=$1 desc=$2 st ok=1 p
	local -a pats=()
	shift 2
	while [ $# -gt 0 ] && [ "$1" != "--" ]; do pats+=("$1"); shift; done
	shift
	timeout 30 "$@" >"$IO/out" 2>"$IO/err" </dev/null
	st=$?
	cases=$((cases + 1))
	case $want in
	nonzero) [ "$st" -ne 0 ] && [ "$st" -lt 124 ] || ok=0 ;;
	*) [ "$st" -eq "$want" ] || ok=0 ;;
	esac
	for p in "${pats[@]+"${pats[@]}"}"; do
		grep -qF -- "$p" "$IO/err" || { ok=0; echo "  stderr lacks: $p"; }
	done
	if [ $ok = 1 ]; then
		echo "ok: $desc"
	else
		fails=$((fails + 1))
		echo "FAIL: $desc: exit status $st (wanted $want); command: $*"
		sed 's/^/  stderr: /' "$IO/err"
		sed 's/^/  stdout: /' "$IO/out"
	fi
}

# check DESC COMMAND...: a plain assertion (e.g. grep on a file).
check() {
	local desc=$1
	shift
	cases=$((cases + 1))
	if "$@"; then
		echo "ok: $desc"
	else
		fails=$((fails + 1))
		echo "FAIL: $desc: $*"
	fi
}

finish() {
	if [ "$fails" -ne 0 ]; then
		echo "$fails of $cases cases failed"
		exit 1
	fi
	echo "all $cases cases passed"
	exit 0
}

# fake_bzimage PATH: the smallest file that passes a bzImage header check
# (boot flag 0xAA55 at 0x1FE, "HdrS" at 0x202, protocol 2.15, 64-bit entry).
fake_bzimage() {
	head -c 4096 /dev/zero >"$1"
	printf '\x55\xaa' | dd of="$1" bs=1 seek=510 conv=notrunc status=none
	printf 'HdrS\x0f\x02' | dd of="$1" bs=1 seek=514 conv=notrunc status=none
	printf '\x01' | dd of="$1" bs=1 seek=566 conv=notrunc status=none   # XLF_KERNEL_64
}
