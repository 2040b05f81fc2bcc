#!/usr/bin/env python3
"""test_vgabios.py ENGINE ROM VGABIOS — Debian's SeaVGABIOS for the VMware
SVGA II runs against Vireo's VGA in a real-mode ROM guest (guest_vgabios.s):
its text mode 3 and its VBE mode 0x144 (1024x768x32) are checked pixel by
pixel in PNG screenshots of the MKS (mks.screenshotOnSignal + SIGUSR2).

The text check renders the expected picture from the 8x16 font inside the
VGA BIOS image itself (found by its 'A' glyph), so it is exact, not a guess.
Exits 77 (skip) when the engine cannot run here.
"""
import os
import signal
import struct
import sys
import time
import zlib

sys.path.insert(0, os.path.join(os.environ.get('VIREO_SRC', '.'), 'tests', 'boot'))
import vmconsole  # noqa: E402

MESSAGE = b'VIREO VGA OK'
GREY = 0xAAAAAA          # attribute 07 through the BIOS's default palette


def read_png(path):
    """(width, height, rows of 0xRRGGBB) from an 8-bit RGB/RGBA PNG."""
    with open(path, 'rb') as f:
        data = f.read()
    if data[:8] != b'\x89PNG\r\n\x1a\n':
        raise ValueError('not a PNG')
    pos, idat, hdr = 8, b'', None
    while pos < len(data):
        n, kind = struct.unpack('>I4s', data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b'IHDR':
            hdr = struct.unpack('>IIBBBBB', body)
        elif kind == b'IDAT':
            idat += body
        elif kind == b'IEND':
            break
    w, h, depth, ctype, _, _, interlace = hdr
    if depth != 8 or ctype not in (2, 6) or interlace:
        raise ValueError(f'unsupported PNG depth {depth} type {ctype} interlace {interlace}')
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = w * bpp
    prev = bytearray(stride)
    rows = []
    p = 0
    for _ in range(h):
        ft = raw[p]
        line = bytearray(raw[p + 1:p + 1 + stride])
        p += 1 + stride
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if ft == 1:
                line[i] = (line[i] + a) & 0xff
            elif ft == 2:
                line[i] = (line[i] + b) & 0xff
            elif ft == 3:
                line[i] = (line[i] + ((a + b) >> 1)) & 0xff
            elif ft == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                pr = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pr) & 0xff
        rows.append([(line[x * bpp] << 16) | (line[x * bpp + 1] << 8) | line[x * bpp + 2]
                     for x in range(w)])
        prev = line
    return w, h, rows


def screenshot(vm, path, check, tries=15):
    """SIGUSR2 until the picture passes `check` (the VGA applies changes at
    its next 30 Hz refresh); returns the last failure text or None."""
    why = 'no screenshot written'
    for _ in range(tries):
        if os.path.exists(path):
            os.unlink(path)
        vm.proc.send_signal(signal.SIGUSR2)
        deadline = time.monotonic() + 5 * vmconsole.TIMEOUT_SCALE
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)          # the PNG is written in one go, but be safe
        if os.path.exists(path):
            try:
                why = check(*read_png(path))
            except (ValueError, zlib.error, struct.error) as e:
                why = f'unreadable PNG: {e}'
            if why is None:
                return None
        time.sleep(0.3)
    return why


def find_font(rom):
    """Offset of the 8x16 font (256 glyphs of 16 bytes) inside the VGA BIOS."""
    glyph_a = bytes([0x00, 0x00, 0x10, 0x38, 0x6c, 0xc6, 0xc6, 0xfe,
                     0xc6, 0xc6, 0xc6, 0xc6, 0x00, 0x00, 0x00, 0x00])
    i = rom.find(glyph_a)
    if i < 0x41 * 16:
        raise AssertionError('no 8x16 font with the IBM "A" glyph in the VGA BIOS image')
    return i - 0x41 * 16


def check_text(font):
    def check(w, h, rows):
        if (w, h) != (720, 400):
            return f'text screen is {w}x{h}, want 720x400'
        for ci, ch in enumerate(MESSAGE):
            for line in range(16):
                bits = font[ch * 16 + line]
                for x in range(9):
                    on = x < 8 and (bits >> (7 - x)) & 1
                    want = GREY if on else 0
                    got = rows[line][ci * 9 + x]
                    if got != want:
                        return (f'cell {ci} ({chr(ch)!r}) pixel ({x},{line}): '
                                f'{got:06x}, want {want:06x}')
        # everything else is black except the blinking cursor just after the text
        cur_x0, cur_x1 = len(MESSAGE) * 9, len(MESSAGE) * 9 + 9
        for y in range(h):
            for x in range(w):
                if y < 16 and x < cur_x0:
                    continue
                if y < 16 and cur_x0 <= x < cur_x1:
                    continue
                if rows[y][x] != 0:
                    return f'stray pixel {rows[y][x]:06x} at ({x},{y})'
        return None
    return check


def check_vbe(w, h, rows):
    if (w, h) != (1024, 768):
        return f'VBE screen is {w}x{h}, want 1024x768'
    for y in range(h):
        for x in range(w):
            want = ((y * 4096 + x * 4) & 0xffffff) if y < 64 else 0
            if rows[y][x] != want:
                return f'VBE pixel ({x},{y}) = {rows[y][x]:06x}, want {want:06x}'
    return None


def main():
    engine, rom, vgabios = sys.argv[1], os.path.abspath(sys.argv[2]), sys.argv[3]
    if engine == 'hv' and not os.access('/dev/kvm', os.R_OK | os.W_OK):
        print('SKIP: /dev/kvm is not accessible')
        return 77
    with open(vgabios, 'rb') as f:
        vrom = f.read()
    fo = find_font(vrom)
    font = vrom[fo:fo + 4096]

    vm = vmconsole.VM({}, name='vgabios')
    shot = os.path.join(vm.dir, 'shot.png')
    with open(vm.vmx, 'a') as f:
        f.write(f'bios440.filename = "{rom}"\nmemsize = "32"\nnumvcpus = "1"\n'
                f'monitor.engine = "{engine}"\nsvga.present = "TRUE"\n'
                f'mks.screenshotOnSignal = "{shot}"\n')
    vm.start()
    try:
        vm.expect('VGABIOS-GUEST: VGA BIOS init returned', 120)
        vm.expect('VGA-TEXT-READY', 120)
        why = screenshot(vm, shot, check_text(font))
        if why:
            print(f'FAIL: text mode 3 from SeaVGABIOS: {why}')
            return 1
        print('ok: text mode 3 from SeaVGABIOS matches its font pixel for pixel')
        vm.send('g')
        out = vm.expect('READY', 120)
        if 'VGA-VBE-FAIL' in out:
            print('FAIL: INT 10h 4F02/4F05 for mode 0x144 failed in the guest')
            return 1
        why = screenshot(vm, shot, check_vbe)
        if why:
            print(f'FAIL: VBE mode 0x144: {why}')
            return 1
        print('ok: VBE 1024x768x32 (mode 0x144, banked writes) matches the pattern')
        return 0
    except AssertionError as e:
        print(f'FAIL: {e}')
        return 1
    finally:
        vm.kill()


if __name__ == '__main__':
    sys.exit(main())
