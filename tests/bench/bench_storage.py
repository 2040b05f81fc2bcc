#!/usr/bin/env python3
"""In-guest disk I/O through AHCI and PVSCSI: Vireo (bt) against QEMU TCG,
same kernel, same initrd, same kind of images (sparse VMDKs made by
qemu-img), measured in the same run.  (owner: storage)

Workloads per controller, all with O_DIRECT so the guest page cache is out:
  seq-write   dd 32 MiB in 1 MiB blocks
  seq-read    dd 32 MiB in 1 MiB blocks
  rand-read   128 x 4 KiB at pseudo-random offsets (one dd each)
  rand-write  128 x 4 KiB at pseudo-random offsets
Times are host wall clock around each console command (the shell loop and
console round trip are included, for both VMs alike).  The random loops
spawn a dd per I/O, so under a software CPU they measure the engine's
process start as much as the disk: the "net" columns subtract a baseline
measured in the same VM (the console round trip for seq, the same loop
without a disk for rand).

usage: bench_storage.py [--no-tcg]
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.environ.get('VIREO_SRC', '.'), 'tests/boot'))
sys.path.insert(0, os.path.dirname(__file__))
import vmconsole  # noqa: E402
from bench_bt import QemuVM  # noqa: E402

# Baselines, once per VM: the console round trip alone, and the same dd loop
# without a disk.  The table subtracts them ("net") so the ratios compare
# the disk path rather than the CPU engine's process start.
BASELINES = [
    ('console', 'true'),
    ('spawn', 'i=0; while [ $i -lt 128 ]; do dd if=/dev/zero of=/dev/null bs=4096 count=1 '
              '2>/dev/null; i=$((i+1)); done'),
]
NET_OF = {'seq-write': 'console', 'seq-read': 'console', 'rand-read': 'spawn', 'rand-write': 'spawn'}
WORKLOADS = [
    ('seq-write', 'dd if=/dev/zero of=/dev/{d} bs=1048576 count=32 oflag=direct 2>/dev/null'),
    ('seq-read', 'dd if=/dev/{d} of=/dev/null bs=1048576 count=32 iflag=direct 2>/dev/null'),
    ('rand-read', 'i=0; while [ $i -lt 128 ]; do dd if=/dev/{d} of=/dev/null bs=4096 count=1 '
                  'skip=$(( (i * 7919) % 8192 )) iflag=direct 2>/dev/null; i=$((i+1)); done'),
    ('rand-write', 'i=0; while [ $i -lt 128 ]; do dd if=/dev/zero of=/dev/{d} bs=4096 count=1 '
                   'seek=$(( (i * 6151) % 8192 )) oflag=direct 2>/dev/null; i=$((i+1)); done'),
]


def log(msg):
    print(msg, flush=True)


def find_disks(vm):
    out, _ = vm.run('for m in ahci sd_mod vmw_pvscsi; do modprobe $m; done; '
                    'for i in $(seq 120); do [ -b /dev/sdb ] && break; sleep 1; done; '
                    'for d in /sys/block/sd*; do echo "DISK ${d##*/} $(cat $d/device/vendor)"; done',
                    timeout=900)
    disks = {}
    for line in out.splitlines():
        p = line.split()
        if len(p) >= 3 and p[0] == 'DISK':
            disks['ahci' if p[2] == 'ATA' else 'pvscsi'] = p[1]
    if set(disks) != {'ahci', 'pvscsi'}:
        raise AssertionError(f'disks not found: {out}')
    return disks


def measure(vm, name, results):
    vm.expect('VIREO-INIT-READY', 1200)
    vm.expect('# ', 120)
    disks = find_disks(vm)
    for bl, cmd in BASELINES:
        t0 = time.monotonic()
        vm.run(cmd, timeout=1200)
        results[(name, 'base', bl)] = time.monotonic() - t0
        log(f'{name}: baseline {bl}: {results[(name, "base", bl)]:.2f} s')
    for ctl in ('ahci', 'pvscsi'):
        for wl, cmd in WORKLOADS:
            t0 = time.monotonic()
            _, st = vm.run(cmd.format(d=disks[ctl]), timeout=1200)
            secs = time.monotonic() - t0
            if st != '0':
                raise AssertionError(f'{name} {ctl} {wl}: exit status {st}')
            results[(name, ctl, wl)] = secs
            log(f'{name}: {ctl} {wl}: {secs:.2f} s')
    vm.send('poweroff')
    try:
        vm.wait(300)
    except AssertionError:
        vm.kill()


def main():
    img = vmconsole.demo_image()
    kernel, initrd = os.path.join(img, 'vmlinuz'), os.path.join(img, 'initrd.img')
    work = tempfile.mkdtemp(prefix='vireo-bench-storage-')
    results = {}
    try:
        for tag in ('vireo', 'qemu'):
            for d in ('sata', 'pv'):
                subprocess.run(['qemu-img', 'create', '-q', '-f', 'vmdk',
                                os.path.join(work, f'{tag}-{d}.vmdk'), '64M'], check=True)
        vm = vmconsole.VM({
            'memsize': '512', 'monitor.engine': 'bt', 'linux.kernel': kernel,
            'linux.initrd': initrd, 'linux.cmdline': 'console=ttyS0',
            'sata0.present': 'TRUE', 'sata0:0.present': 'TRUE', 'sata0:0.fileName': 'vireo-sata.vmdk',
            'scsi0.present': 'TRUE', 'scsi0.virtualDev': 'pvscsi',
            'scsi0:0.present': 'TRUE', 'scsi0:0.fileName': 'vireo-pv.vmdk',
        }, name='bench-storage', workdir=work)
        vm.start()
        try:
            measure(vm, 'vireo-bt', results)
        finally:
            vm.kill()
        qemu = shutil.which('qemu-system-x86_64')
        if qemu and '--no-tcg' not in sys.argv:
            q = QemuVM([qemu, '-accel', 'tcg', '-m', '512', '-kernel', kernel, '-initrd', initrd,
                        '-append', 'console=ttyS0', '-nographic', '-no-reboot',
                        '-device', 'ich9-ahci,id=ahci',
                        '-drive', f'if=none,id=d0,format=vmdk,cache=none,file={work}/qemu-sata.vmdk',
                        '-device', 'ide-hd,drive=d0,bus=ahci.0',
                        '-device', 'pvscsi,id=pv',
                        '-drive', f'if=none,id=d1,format=vmdk,cache=none,file={work}/qemu-pv.vmdk',
                        '-device', 'scsi-hd,drive=d1,bus=pv.0'], work)
            q.start()
            try:
                measure(q, 'qemu-tcg', results)
            finally:
                q.kill()
        log('\n| controller | workload | Vireo bt (s) | QEMU TCG (s) | Vireo net (s) | QEMU net (s) '
            '| ratio net (QEMU/Vireo) |')
        log('|---|---|---|---|---|---|---|')
        for ctl in ('ahci', 'pvscsi'):
            for wl, _ in WORKLOADS:
                v = results.get(('vireo-bt', ctl, wl))
                q = results.get(('qemu-tcg', ctl, wl))
                vn = v - results[('vireo-bt', 'base', NET_OF[wl])]
                qn = q - results[('qemu-tcg', 'base', NET_OF[wl])] if q is not None else None
                cells = [f'{v:.2f}', f'{q:.2f}' if q is not None else '-', f'{vn:.2f}',
                         f'{qn:.2f}' if qn is not None else '-',
                         f'{qn / vn:.2f}' if qn is not None and vn > 0.005 else '-']
                log(f'| {ctl} | {wl} | ' + ' | '.join(cells) + ' |')
        for bl, _ in BASELINES:
            v = results[('vireo-bt', 'base', bl)]
            q = results.get(('qemu-tcg', 'base', bl))
            log(f'baseline {bl}: Vireo {v:.2f} s, QEMU ' + (f'{q:.2f} s' if q is not None else '-'))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    main()
