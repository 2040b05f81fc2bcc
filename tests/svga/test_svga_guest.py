#!/usr/bin/env python3
"""Guest tier for the SVGA II device: the demo guest (Debian's 6.1 kernel)
loads vmwgfx, which binds to the device; fbcon runs on it; the connector
offers 1920x1080 and a KMS mode set to it (dumb buffer) shows the guest's
pattern in the MKS shadow; a pattern written into /dev/fb0 shows too.
The MKS shadow is read with mks.screenshotOnSignal (SIGUSR2 -> PNG).

usage: test_svga_guest.py ENGINE DRMTEST_BINARY
"""
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'boot'))
import vmconsole  # noqa: E402


def drmtest_px(x, y):
    return (x & 0xFF) << 16 | (y & 0xFF) << 8 | (((x >> 8) + (y >> 8) * 16 + 0x40) & 0xFF)


def read_png(path):
    """8-bit RGB, non-interlaced (what mks_png_write writes): (w, h, rows of bytes)."""
    data = open(path, 'rb').read()
    assert data[:8] == b'\x89PNG\r\n\x1a\n', f'{path}: not a PNG'
    pos, idat, w = 8, b'', 0
    while pos < len(data):
        n, kind = struct.unpack('>I4s', data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b'IHDR':
            w, h, depth, ctype, _, _, interlace = struct.unpack('>IIBBBBB', body)
            assert depth == 8 and ctype == 2 and interlace == 0, 'unexpected PNG format'
        elif kind == b'IDAT':
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride, rows, prev = w * 3, [], bytearray(w * 3)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - 3] if i >= 3 else 0
            b = prev[i]
            c = prev[i - 3] if i >= 3 else 0
            if f == 1:
                line[i] = (line[i] + a) & 0xFF
            elif f == 2:
                line[i] = (line[i] + b) & 0xFF
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pr = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pr) & 0xFF
        rows.append(bytes(line))
        prev = line
    return w, h, rows


def px(rows, x, y):
    r = rows[y]
    return r[3 * x] << 16 | r[3 * x + 1] << 8 | r[3 * x + 2]


def mismatches(rows, x0, y0, w, h, step):
    bad = []
    for y in range(y0, y0 + h, step):
        for x in range(x0, x0 + w, step):
            got, want = px(rows, x, y), drmtest_px(x, y)
            if got != want:
                bad.append((x, y, hex(got), hex(want)))
    return bad


def main():
    engine, drmtest = sys.argv[1], sys.argv[2]
    img = vmconsole.demo_image()
    work = tempfile.mkdtemp(prefix='vireo-svga-')
    extra = os.path.join(work, 'extra')
    os.makedirs(os.path.join(extra, 'usr/bin'))
    shutil.copy(drmtest, os.path.join(extra, 'usr/bin/vireo-drmtest'))
    # The image's initramfs (it carries the kernel modules) with a second
    # newc archive appended: the kernel unpacks concatenated archives in turn.
    initrd = os.path.join(work, 'initrd.img')
    files = subprocess.run(['find', '.'], cwd=extra, check=True, capture_output=True).stdout
    cpio = subprocess.run(['cpio', '-o', '-H', 'newc', '--quiet', '-R', '0:0'], cwd=extra,
                          input=files, check=True, capture_output=True).stdout
    with open(initrd, 'wb') as f:
        f.write(open(os.path.join(img, 'initrd.img'), 'rb').read())
        f.write(cpio)
    shot = os.path.join(work, 'shot.png')
    vm = vmconsole.VM({
        'memsize': '512',
        'monitor.engine': engine,
        'linux.kernel': os.path.join(img, 'vmlinuz'),
        'linux.initrd': initrd,
        'linux.cmdline': 'console=ttyS0',
        'mks.screenshotOnSignal': shot,
    }, workdir=work)
    serial_log = os.environ.get('VIREO_SERIAL_LOG')
    if serial_log:
        # Keep a copy of the console for people watching a slow boot.
        pump, logf = vm._pump, open(serial_log, 'wb')

        def tee(timeout):
            n = len(vm.out)
            got = pump(timeout)
            logf.write(vm.out[n:])
            logf.flush()
            return got
        vm._pump = tee
    vm.start()
    try:
        vm.expect('VIREO-INIT-READY', 900)
        vm.expect('# ', 60)
        out, st = vm.run('lspci -n 2>/dev/null | grep -i 15ad:0405 || cat /sys/bus/pci/devices/0000:00:0f.0/device')
        print('svga on PCI:', out.strip())
        out, st = vm.run('modprobe vmwgfx; echo modprobe=$?', timeout=600)
        assert 'modprobe=0' in out, f'modprobe vmwgfx failed: {out}'
        out, st = vm.run('dmesg | grep -iE "vmwgfx|\\[drm\\]|fb0|Console: switching"')
        print(out)
        assert 'Initialized vmwgfx' in out, f'vmwgfx did not bind:\n{out}'
        assert 'probe of' not in out, f'vmwgfx probe failed:\n{out}'
        assert 'Screen Object' in out or 'Screen Objects' in out, f'not the Screen Object unit:\n{out}'
        out, st = vm.run('cat /sys/class/graphics/fb0/name /sys/class/graphics/fb0/virtual_size; '
                         'cat /sys/class/graphics/fbcon/cursor_blink')
        print('fb0:', out.strip())
        assert 'vmwgfx' in out, f'fb0 is not vmwgfx: {out}'
        out, st = vm.run('dmesg | grep -c "frame buffer device\\|switching to colour frame buffer"')
        assert int(out.strip() or '0') >= 1, 'fbcon did not take over the framebuffer'
        vm.run('echo 0 > /sys/class/graphics/fbcon/cursor_blink')
        modes, st = vm.run('cat /sys/class/drm/card0-Virtual-1/modes')
        print('modes:', ' '.join(modes.split()))
        assert '1920x1080' in modes.split(), f'1920x1080 not offered: {modes}'

        # KMS mode set to 1920x1080 with a dumb buffer, held while we look.
        vm.send('vireo-drmtest modeset 1920 1080 60 &')
        vm.expect('VIREO-MODESET-OK 1920 1080', 300)
        time.sleep(3)
        w, h, rows = read_png(vm.screenshot(shot))
        assert (w, h) == (1920, 1080), f'MKS shows {w}x{h} after the 1920x1080 mode set'
        bad = mismatches(rows, 0, 0, 1920, 1080, 37)
        assert not bad, f'{len(bad)} pattern mismatches after modeset, first {bad[:5]}'
        print('modeset 1920x1080: MKS shadow shows the dumb buffer')
        vm.run('wait', timeout=120)

        # Back on fbcon: a pattern written into /dev/fb0.
        out, st = vm.run('vireo-drmtest fb 600 300 200 100')
        assert 'VIREO-FB-OK' in out, f'fb write failed: {out}'
        fw, fh = map(int, out.split('VIREO-FB-OK')[1].split()[:2])
        deadline = time.monotonic() + 60 * vmconsole.TIMEOUT_SCALE
        while True:
            time.sleep(2)
            w, h, rows = read_png(vm.screenshot(shot))
            bad = mismatches(rows, 600, 300, 200, 100, 7) if (w, h) == (fw, fh) else ['size']
            if not bad or time.monotonic() > deadline:
                break
        assert (w, h) == (fw, fh), f'MKS shows {w}x{h}, fbdev is {fw}x{fh}'
        assert not bad, f'{len(bad)} mismatches in the /dev/fb0 pattern, first {bad[:5]}'
        print(f'/dev/fb0 ({fw}x{fh}): pattern arrived in the MKS shadow')
        out, st = vm.run('dmesg | grep -ciE "lockup|vmwgfx.*error" || true')
        print('vmwgfx error lines:', out.strip())
        vm.send('poweroff')
        vm.wait(120)
        print(f'svga guest test on {engine}: passed')
    finally:
        vm.kill()
        shutil.rmtree(work, ignore_errors=True)


main()
