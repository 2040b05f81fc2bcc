#!/usr/bin/env python3
"""test_install.py ENGINE — install a guest from an ISO through SeaBIOS.

1. An ISO made by grub-mkrescue (install/mkinstall.sh, cached) holding the
   stock Debian kernel and an installer initramfs boots through SeaBIOS from
   the SATA CD-ROM, GRUB on the serial console.
2. The installer partitions the empty VMDK, makes an ext4 file system,
   copies a root file system and writes GRUB (boot.img + core.img); the VM
   then boots from the disk alone, with the ISO removed from the .vmx.
3. A write-heavy workload, kill -9 of the vmx, `qemu-img check` of the
   VMDK, a new boot: the guest's forced e2fsck is clean and a file written
   and synced before the kill is there.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

src = os.environ['VIREO_SRC']
sys.path.insert(0, os.path.join(src, 'tests', 'boot'))
import vmconsole  # noqa: E402

engine = sys.argv[1] if len(sys.argv) > 1 else 'bt'
if engine == 'hv' and not os.access('/dev/kvm', os.R_OK | os.W_OK):
    print('SKIP: no /dev/kvm')
    sys.exit(77)
for tool in ('qemu-img',):
    if not shutil.which(tool):
        print(f'SKIP: {tool} missing')
        sys.exit(77)
mk = subprocess.run(['sh', os.path.join(src, 'tests/firmware/install/mkinstall.sh')],
                    capture_output=True, text=True)
if mk.returncode == 77:
    print('SKIP: ' + mk.stderr.strip())
    sys.exit(77)
if mk.returncode != 0:
    print('mkinstall.sh failed:\n' + mk.stderr)
    sys.exit(1)
iso = os.path.join(mk.stdout.strip().splitlines()[-1], 'install.iso')

# Kernel boots decompress in the guest: minutes on bt.
BOOT = 600 if engine == 'bt' else 120
work = tempfile.mkdtemp(prefix='vireo-install-')
disk = os.path.join(work, 'disk.vmdk')
subprocess.run(['qemu-img', 'create', '-q', '-f', 'vmdk', disk, '256M'], check=True)

base = {
    'memsize': '512',
    'monitor.engine': engine,
    'sata0.present': 'TRUE',
    'sata0:0.present': 'TRUE',
    'sata0:0.fileName': disk,
}
with_cd = dict(base, **{
    'sata0:1.present': 'TRUE',
    'sata0:1.deviceType': 'cdrom-image',
    'sata0:1.fileName': iso,
    'bios.bootOrder': 'cdrom,hdd',
})


def qemu_img_check():
    r = subprocess.run(['qemu-img', 'check', disk], capture_output=True, text=True)
    assert r.returncode == 0, f'qemu-img check failed ({r.returncode}):\n{r.stdout}{r.stderr}'


vm = None
ok = False
stage = 'install'
try:
    # 1 + 2a: the ISO boots through SeaBIOS and GRUB, the installer runs.
    vm = vmconsole.VM(with_cd, name='install', workdir=work).start()
    vm.expect('SeaBIOS (version', 60)
    vm.expect('Booting from DVD/CD', 120)
    vm.expect('Vireo installer', 120)            # GRUB's menu on the serial console
    vm.expect('VIREO-INSTALLER-START', BOOT)
    before = vm.expect('VIREO-INSTALL', BOOT)
    rest = vm.expect('\n', 30)
    assert rest.startswith('-DONE'), f'installer failed: {rest!r}\n{before[-3000:]}'
    status = vm.wait(120)
    assert status == 0, f'vireo-vmx exited {status} after the installer powered off'
    qemu_img_check()

    # 2b: the disk alone (no CD in the .vmx): GRUB from the MBR, the installed system.
    stage = 'first disk boot'
    vm = vmconsole.VM(base, name='installed', workdir=work).start()
    vm.expect('SeaBIOS (version', 60)
    vm.expect('Booting from Hard Disk', 120)
    vm.expect('Vireo installed system', 120)
    vm.expect('VIREO-FSCK-FORCED=0', BOOT)
    vm.expect('VIREO-DISK-READY root=/dev/sda1', 120)
    out, st = vm.run('cat /etc/vireo-installed')
    assert out.startswith('installed'), f'/etc/vireo-installed: {out!r}'

    # 3: a flushed file, then writes in flight, then kill -9.
    stage = 'crash'
    out, st = vm.run('echo vireo-persist > /persist && sync && cat /persist')
    assert out.strip() == 'vireo-persist', out
    vm.send('(i=0; while :; do dd if=/dev/urandom of=/w$((i % 6)) bs=64k count=16 2>/dev/null;'
            ' i=$((i + 1)); [ $((i % 3)) = 0 ] && sync; done) &')
    time.sleep(8 if engine == 'hv' else 20)
    vm.proc.kill()
    vm.proc.wait()
    qemu_img_check()

    stage = 'boot after the crash'
    vm = vmconsole.VM(base, name='installed', workdir=work).start()
    vm.expect('Vireo installed system', 180)
    pre = vm.expect('VIREO-FSCK-FORCED=', BOOT)
    fsck = vm.expect('\n', 30).strip()
    assert fsck == '0', f'forced e2fsck after the crash exited {fsck}:\n{pre[-3000:]}'
    m = re.search(r'VIREO-FSCK-PREEN=(\d+)', pre)
    assert m and int(m.group(1)) <= 1, f'e2fsck -p: {pre[-2000:]}'
    vm.expect('VIREO-DISK-READY root=/dev/sda1', 120)
    out, st = vm.run('cat /persist')
    assert out.strip() == 'vireo-persist', f'/persist after the crash: {out!r}'
    vm.send('poweroff')
    vm.wait(120)
    qemu_img_check()
    ok = True
    print(f'PASS: ISO install through SeaBIOS on {engine}: CD boot, install, disk boot, crash + fsck clean')
finally:
    if not ok:
        print(f'FAILED during: {stage}')
        if vm is not None:
            print('serial output (last):\n' + vm.out.decode(errors='replace')[-3000:])
            print('vmware.log tail:\n' + vm.log_tail(60))
    if vm is not None:
        vm.kill()
    if ok:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f'(kept {work})')
sys.exit(0 if ok else 1)
