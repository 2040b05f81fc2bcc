#!/usr/bin/env python3
"""Guest tier for the disk controllers: ONE boot of the demo guest (Debian's
kernel, direct boot) with
  sata0:0  a sparse VMDK made by vireo-vdisk         (AHCI disk)
  sata0:1  an ISO made here by xorriso               (AHCI ATAPI CD-ROM)
  scsi0:0  a sparse VMDK made by qemu-img            (PVSCSI disk)
The guest loads the stock drivers (ahci, sd_mod, sr_mod, vmw_pvscsi, isofs,
ext4), mounts the ISO and reads a file, writes raw blocks to the PVSCSI disk,
makes an ext2 file system on the SATA disk and writes files.  After poweroff
the host checks both VMDKs with qemu-img check and reads what the guest
wrote through qemu-img convert (raw) and debugfs.

usage: test_storage_guest.py ENGINE
Skips (77) without xorriso or qemu-img.
"""
import hashlib
import os
import random
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.environ.get('VIREO_SRC', '.'), 'tests/boot'))
import vmconsole  # noqa: E402

engine = sys.argv[1] if len(sys.argv) > 1 else 'bt'
for tool in ('xorriso', 'qemu-img'):
    if not shutil.which(tool):
        print(f'{tool} is not installed: skipping')
        sys.exit(77)
vdisk = os.environ.get('VIREO_VDISK') or os.path.join(os.environ['VIREO_BUILD'], 'app/vireo-vdisk')
img = vmconsole.demo_image()

work = tempfile.mkdtemp(prefix='vireo-storage-')
isodir = os.path.join(work, 'isoroot')
os.makedirs(isodir)
rng = random.Random(20261121)
pattern = bytes(rng.getrandbits(8) for _ in range(256 * 1024))
pattern_md5 = hashlib.md5(pattern).hexdigest()
with open(os.path.join(isodir, 'pattern.bin'), 'wb') as f:
    f.write(pattern)
with open(os.path.join(isodir, 'hello.txt'), 'w') as f:
    f.write('vireo-cdrom-ok\n')
subprocess.run(['xorriso', '-as', 'mkisofs', '-quiet', '-V', 'VIREOCD', '-o',
                os.path.join(work, 'cd.iso'), isodir], check=True)
subprocess.run([vdisk, 'create', os.path.join(work, 'sata.vmdk'), '64M'], check=True,
               stdout=subprocess.DEVNULL)
subprocess.run(['qemu-img', 'create', '-q', '-f', 'vmdk', os.path.join(work, 'pv.vmdk'), '48M'],
               check=True)

vm = vmconsole.VM({
    'memsize': '512',
    'monitor.engine': engine,
    'linux.kernel': os.path.join(img, 'vmlinuz'),
    'linux.initrd': os.path.join(img, 'initrd.img'),
    'linux.cmdline': 'console=ttyS0',
    'sata0.present': 'TRUE',
    'sata0:0.present': 'TRUE',
    'sata0:0.fileName': 'sata.vmdk',
    'sata0:1.present': 'TRUE',
    'sata0:1.deviceType': 'cdrom-image',
    'sata0:1.fileName': 'cd.iso',
    'scsi0.present': 'TRUE',
    'scsi0.virtualDev': 'pvscsi',
    'scsi0:0.present': 'TRUE',
    'scsi0:0.fileName': 'pv.vmdk',
}, workdir=work)


def run(cmd, timeout=120, ok=True):
    out, st = vm.run(cmd, timeout=timeout)
    print(f'$ {cmd}\n{out.rstrip()}')
    if ok:
        assert st == '0', f'{cmd!r} exited {st}: {out}'
    return out


failed = True
vm.start()
try:
    vm.expect('VIREO-INIT-READY', 900)
    vm.expect('# ', 120)
    run('for m in ahci sd_mod sr_mod vmw_pvscsi isofs ext4; do modprobe $m || echo no-$m; done',
        timeout=600)
    out = run('for i in $(seq 120); do [ -b /dev/sr0 ] && [ -b /dev/sda ] && [ -b /dev/sdb ] && break;'
              ' sleep 1; done; cat /proc/partitions; for d in /sys/block/sd*; do'
              ' echo "DISK ${d##*/} $(cat $d/size) $(cat $d/device/vendor)"; done', timeout=300)
    disks = {}
    for line in out.splitlines():
        p = line.split()
        if len(p) >= 4 and p[0] == 'DISK':
            disks[p[3]] = (p[1], int(p[2]))
    assert 'ATA' in disks and 'VMware' in disks, f'expected an ATA and a VMware disk: {disks}'
    sata, sata_sectors = disks['ATA']
    pv, pv_sectors = disks['VMware']
    assert sata_sectors == 64 * 2048, f'SATA disk has {sata_sectors} sectors'
    assert pv_sectors == 48 * 2048, f'PVSCSI disk has {pv_sectors} sectors'

    # CD-ROM: mount the ISO, read a file, check a larger one.
    out = run('mkdir -p /mnt/cd && mount -t iso9660 -o ro /dev/sr0 /mnt/cd && cat /mnt/cd/hello.txt'
              ' && md5sum /mnt/cd/pattern.bin')
    assert 'vireo-cdrom-ok' in out, out
    assert pattern_md5 in out, f'pattern.bin on the CD reads wrong: {out}'

    # PVSCSI: raw blocks at 400 KiB, flushed, read back past the page cache.
    out = run(f'dd if=/mnt/cd/pattern.bin of=/dev/{pv} bs=4096 seek=100 conv=fsync 2>&1 &&'
              f' echo 3 > /proc/sys/vm/drop_caches &&'
              f' dd if=/dev/{pv} bs=4096 skip=100 count=64 2>/dev/null | md5sum', timeout=300)
    assert pattern_md5 in out, f'PVSCSI read-back differs: {out}'

    # SATA: ext2 with files, unmounted and mounted again.
    out = run(f'mke2fs -q /dev/{sata} && mkdir -p /mnt/d && mount -t ext2 /dev/{sata} /mnt/d &&'
              f' cp /mnt/cd/pattern.bin /mnt/d/p.bin && echo hello-sata > /mnt/d/hello &&'
              f' sync && umount /mnt/d && echo 3 > /proc/sys/vm/drop_caches &&'
              f' mount -t ext2 /dev/{sata} /mnt/d && md5sum /mnt/d/p.bin && cat /mnt/d/hello &&'
              f' umount /mnt/d && umount /mnt/cd', timeout=600)
    assert pattern_md5 in out and 'hello-sata' in out, out
    run('dmesg | grep -iE "ahci|ata[0-9]|pvscsi|sd [0-9]|sr [0-9]" | tail -30', ok=False)
    vm.send('poweroff')
    status = vm.wait(300)
    assert status == 0, f'vireo-vmx exited {status} after poweroff; log:\n{vm.log_tail()}'

    # Host side: the peer accepts both images and sees what the guest wrote.
    for name in ('sata.vmdk', 'pv.vmdk'):
        subprocess.run(['qemu-img', 'check', '-q', '-f', 'vmdk', os.path.join(work, name)],
                       check=True)
        subprocess.run(['qemu-img', 'convert', '-f', 'vmdk', '-O', 'raw', os.path.join(work, name),
                        os.path.join(work, name + '.raw')], check=True)
    with open(os.path.join(work, 'pv.vmdk.raw'), 'rb') as f:
        f.seek(100 * 4096)
        assert f.read(len(pattern)) == pattern, 'pv.vmdk (via qemu-img) lacks the blocks the guest wrote'
    if shutil.which('debugfs'):
        got = subprocess.run(['debugfs', '-R', 'cat /p.bin', os.path.join(work, 'sata.vmdk.raw')],
                             capture_output=True, check=True).stdout
        assert got == pattern, 'sata.vmdk (via qemu-img + debugfs) lacks /p.bin as written'
    if shutil.which('e2fsck'):
        subprocess.run(['e2fsck', '-fn', os.path.join(work, 'sata.vmdk.raw')], check=True,
                       stdout=subprocess.DEVNULL)
    print(f'storage guest test on {engine}: SATA disk, CD-ROM and PVSCSI disk work; '
          'images pass qemu-img check and hold what the guest wrote')
    failed = False
finally:
    vm.kill()
    if failed:
        print(f'vmware.log tail:\n{vm.log_tail(80)}')
    if failed and os.environ.get('VIREO_KEEP_TMP'):
        print(f'kept {work}')
    else:
        shutil.rmtree(work, ignore_errors=True)
