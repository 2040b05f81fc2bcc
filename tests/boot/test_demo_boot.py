#!/usr/bin/env python3
"""Guest tier: boot the demo guest (Debian's unmodified kernel, busybox
initramfs) on an engine, use its shell on the serial console, power off.

usage: test_demo_boot.py ENGINE PRIMES_BINARY
"""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import vmconsole  # noqa: E402

engine, primes = sys.argv[1], sys.argv[2]
img = vmconsole.demo_image()
kernel_release = open(os.path.join(img, 'VERSION')).read().split()[0].replace('linux-image-', '')

# The demo initramfs plus the static test program.
work = tempfile.mkdtemp(prefix='vireo-boot-')
extra = os.path.join(work, 'extra')
os.makedirs(os.path.join(extra, 'usr/bin'))
shutil.copy(primes, os.path.join(extra, 'usr/bin/vireo-primes'))
src = os.environ['VIREO_SRC']
initrd = os.path.join(work, 'initrd.img')
subprocess.run(['sh', os.path.join(src, 'tools/guest/image/mkinitramfs.sh'), os.path.join(img, 'busybox'),
                os.path.join(src, 'tools/guest/image/demo-init'), initrd, extra], check=True)

vm = vmconsole.VM({
    'memsize': '512',
    'monitor.engine': engine,
    'linux.kernel': os.path.join(img, 'vmlinuz'),
    'linux.initrd': initrd,
    'linux.cmdline': 'console=ttyS0',
}, workdir=work)
vm.start()
try:
    vm.expect('VIREO-INIT-READY', 600)
    vm.expect('# ', 60)
    out, st = vm.run('uname -r')
    assert out.strip() == kernel_release, f'uname -r gave {out!r}, expected {kernel_release}'
    out, st = vm.run('grep -m1 flags /proc/cpuinfo')
    for flag in ('sse2', 'hypervisor', 'lm', 'nx'):
        assert f' {flag}' in out, f'/proc/cpuinfo flags lack {flag}: {out}'
    out, st = vm.run('echo vireo-$((6*7)) > /tmp/f && cat /tmp/f')
    assert out.strip() == 'vireo-42', f'file round trip gave {out!r}'
    out, st = vm.run('vireo-primes', timeout=300)
    assert 'primes below 1000000: 78498' in out, f'vireo-primes gave {out!r}'
    out, st = vm.run('dmesg | grep -ci "ACPI.*error" || true')
    print('ACPI error lines in dmesg:', out.strip())
    vm.send('poweroff')
    status = vm.wait(120)
    assert status == 0, f'vireo-vmx exited {status} after poweroff; log:\n{vm.log_tail()}'
    print(f'demo guest on {engine}: booted, shell commands ok, powered off')
finally:
    vm.kill()
    shutil.rmtree(work, ignore_errors=True)
