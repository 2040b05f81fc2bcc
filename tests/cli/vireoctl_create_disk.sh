#!/bin/bash
# vireoctl create --disk SIZE --iso PATH: a sparse VMDK next to the .vmx and
# the sata keys; bad sizes and missing ISOs are usage errors or failures
# naming the option; a VM whose VMDK is corrupt does not start and says which
# file and key, unless the user asked for the disk read-only.
. "$(dirname "$0")/lib.sh"
C=$VIREOCTL

head -c 1048576 /dev/zero >"$T/cd.iso"
expect 2 "create: --disk junk" '--disk "lots"' -- "$C" create v --dir "$T" --disk lots
expect 2 "create: --disk too small" '--disk "1K"' -- "$C" create v --dir "$T" --disk 1K
expect 2 "create: --disk 0" '--disk "0"' -- "$C" create v --dir "$T" --disk 0
expect 1 "create: --iso missing" '--iso' 'nothing.iso' -- "$C" create v --dir "$T" --iso "$T/nothing.iso"
expect 1 "create: --iso a folder" '--iso' -- "$C" create v --dir "$T" --iso "$T"
check "nothing was created by the errors" [ ! -e "$T/v" ]

expect 0 "create --disk 64M --iso" -- "$C" create v --dir "$T" --disk 64M --iso "$T/cd.iso"
V=$T/v/v.vmx
check "the VMDK exists" [ -f "$T/v/v.vmdk" ]
check "sata0.present" grep -qx 'sata0.present = "TRUE"' "$V"
check "sata0:0 is the new disk, relative" grep -qx 'sata0:0.fileName = "v.vmdk"' "$V"
check "sata0:1 is a CD-ROM" grep -qx 'sata0:1.deviceType = "cdrom-image"' "$V"
check "sata0:1 names the ISO by absolute path" grep -qx "sata0:1.fileName = \"$T/cd.iso\"" "$V"
check "the VMDK is monolithic sparse" grep -qa 'createType="monolithicSparse"' "$T/v/v.vmdk"
if command -v qemu-img >/dev/null; then
	check "qemu-img check accepts the VMDK" qemu-img check -q -f vmdk "$T/v/v.vmdk"
	check "qemu-img sees 64 MiB" sh -c "qemu-img info --output=json '$T/v/v.vmdk' | grep -q '\"virtual-size\": 67108864'"
fi
expect 1 "create: the same name again" 'already exists' -- "$C" create v --dir "$T" --disk 64M

# A corrupt VMDK: vireo-vmx refuses to start and names the file and the key.
printf 'XXXX' | dd of="$T/v/v.vmdk" bs=1 conv=notrunc status=none
cp "$T/v/v.vmdk" "$T/v/corrupt-copy"
expect nonzero "vmx: corrupt VMDK" "v.vmdk" "sata0:0.fileName" -- "$VIREO_VMX" "$V"
check "the corrupt VMDK was not written to" cmp -s "$T/v/v.vmdk" "$T/v/corrupt-copy"
finish
