#!/bin/sh
# run-demo.sh BUILD_DIR VM_DIR — create (once) and boot the demo VM with its
# serial console on this terminal.  Ctrl-A x powers it off; so does `poweroff`.
set -eu
build=$1
vmdir=$2
# The demo ships Vireo's guest tools (vireo-toolsd starts at boot) once they are built.
if [ -x "$build/tools/guest/vireo-toolsd" ]; then
	img=$(tools/guest/image/build-demo.sh --tools "$build/tools/guest")
else
	img=$(tools/guest/image/build-demo.sh)
fi
name=Demo
vmx="$vmdir/$name/$name.vmx"
if [ ! -f "$vmx" ]; then
	mkdir -p "$vmdir"
	"$build/app/vireoctl" create "$name" --dir "$vmdir" --memsize 512 \
		--kernel "$img/vmlinuz" --initrd "$img/initrd.img" --cmdline "console=ttyS0" >/dev/null
fi
# The image path changes when the image is rebuilt: keep the VM pointing at it.
echo "Booting the demo guest ($(cat "$img/VERSION")); Ctrl-A x or 'poweroff' ends it."
echo "Where KVM cannot run guest kernels at hardware speed Vireo uses its software engine (bt):"
echo "the kernel then takes about a minute to boot on a 2-core machine."
exec "$build/app/vireoctl" run "$vmx" -s linux.kernel="$img/vmlinuz" -s linux.initrd="$img/initrd.img"
