#!/usr/bin/env python3
"""bench_vnc.py — the VNC remote console: latency from a framebuffer write to
the client having decoded the update, the frame rate that gives, and bytes
per frame per encoding; Vireo against QEMU's VNC server in the same run.

Driver (device level, both sides; a guest on bt is too slow to be the
bottleneck-free workload this needs):
  Vireo: tests/vnc/vnc-testserver, the MKS + mks_vnc.c with a 1920x1080
         buffer standing in for the SVGA's VRAM: "fill" writes the pixels and
         reports the damage, as the SVGA's UPDATE command does.
  QEMU:  qemu-system-x86_64 -accel tcg, its std VGA (bochs dispi) in
         1920x1080x32 (set by a 512-byte boot sector), pixels written into
         the VGA's linear framebuffer through QEMU's gdb stub (its dirty
         tracking then finds them, as for a guest write).
The clock starts when the write has completed (the gdb stub acknowledged
the last packet / the test server answered) and stops when the client
(vnc-benchclient, libvncclient, the same for both) has decoded the update
showing the new colour at the rectangle's centre.

Workloads: "full" = the whole 1920x1080 screen in a new solid colour per
frame; "small" = one 64x64 rectangle per frame, moving over the screen.
Encodings: raw, hextile, zrle, tight (lossless), tight with JPEG quality 6.
Frame rate here = 1 / mean latency (closed loop: one frame in flight).

usage: bench_vnc.py [--frames-full N] [--frames-small N] [--only vireo|qemu]
env: VNC_TESTSERVER, VNC_BENCHCLIENT (meson sets them)"""
import argparse
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'vnc'))
import vncpeers as vp  # noqa: E402

W, H = 1920, 1080
# 27 colours, every channel 0x20, 0x90 or 0xF0: two different ones differ by
# more than the JPEG tolerance (48) in some channel.
LEVELS = (0x20, 0x90, 0xF0)
COLOURS = [LEVELS[i // 9] << 16 | LEVELS[i // 3 % 3] << 8 | LEVELS[i % 3] for i in range(27)]
ENCODINGS = [('raw', []), ('hextile', []), ('zrle', []), ('tight', []), ('tight-jpeg6', ['6'])]


def colour(i):
    # Consecutive frames 11 palette steps apart; the low bits make a colour
    # unique for lossless encodings over 27 * 8 frames.
    return COLOURS[(i * 11) % 27] ^ ((i // 27) % 8)


def rect_of(workload, i):
    if workload == 'full':
        return 0, 0, W, H
    return (i * 197) % (W - 64), (i * 131) % (H - 64), 64, 64


class VireoServer:
    name = 'Vireo (MKS + libvncserver 0.9.14)'

    def __init__(self):
        self.port = vp.free_port()
        exe = os.environ.get('VNC_TESTSERVER') or os.path.join(
            os.environ.get('VIREO_BUILD', 'build'), 'tests/vnc/vnc-testserver')
        self.p = subprocess.Popen([exe, str(self.port), '--size', f'{W}x{H}'], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.p.stdout.readline().strip() == 'READY', 'vnc-testserver did not start'

    def write(self, x, y, w, h, c):
        self.p.stdin.write(f'fill {c:06x} {x} {y} {w} {h}\n')
        self.p.stdin.flush()
        while True:
            line = self.p.stdout.readline()
            assert line, 'vnc-testserver died'
            if line.strip() == 'OK':
                return

    def close(self):
        self.p.stdin.write('quit\n')
        self.p.stdin.flush()
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()


def boot_sector(work):
    """bench_vnc_boot.S: protected mode, bochs dispi 1920x1080x32 with the
    linear framebuffer, then fills rectangles on command from COM1."""
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'bench_vnc_boot.S')
    obj, out = os.path.join(work, 'boot.o'), os.path.join(work, 'boot.bin')
    subprocess.run(['as', '--32', '-o', obj, src], check=True)
    subprocess.run(['ld', '-m', 'elf_i386', '-Ttext=0x7c00', '--oformat=binary', '-o', out, obj],
                   check=True)
    data = open(out, 'rb').read()
    assert len(data) == 512 and data[510:] == b'\x55\xaa', 'boot sector did not assemble to 512 bytes'
    return data


class QemuServer:
    name = 'QEMU 7.2 (TCG, std VGA, its VNC server)'

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix='vireo-benchvnc-')
        disk = os.path.join(self.dir, 'boot.img')
        with open(disk, 'wb') as f:
            f.write(boot_sector(self.dir).ljust(1 << 20, b'\0'))
        self.port = vp.free_port()
        ser = os.path.join(self.dir, 'com1.sock')
        self.p = subprocess.Popen(
            ['qemu-system-x86_64', '-accel', 'tcg', '-m', '256', '-vga', 'std', '-display', 'none',
             '-vnc', f'127.0.0.1:{self.port - 5900}', '-drive', f'file={disk},format=raw,if=ide',
             '-chardev', f'socket,id=com1,path={ser},server=on,wait=off', '-serial', 'chardev:com1',
             '-nodefaults', '-no-user-config'],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        assert vp.wait_port(self.port, 30), 'QEMU VNC port not open'
        end = time.monotonic() + 30
        while not os.path.exists(ser):
            assert time.monotonic() < end, 'QEMU serial socket missing'
            time.sleep(0.1)
        self.com = socket.socket(socket.AF_UNIX)
        self.com.connect(ser)
        self.com.settimeout(120)
        self._until(b'R')   # mode set, LFB found: the boot sector waits for commands

    def _until(self, want):
        while True:
            c = self.com.recv(1)
            assert c, 'QEMU serial closed'
            if c == want:
                return

    def write(self, x, y, w, h, c):
        self.com.sendall(b'F' + struct.pack('<IIIII', c, x, y, w, h))
        self._until(b'K')

    def close(self):
        self.com.close()
        self.p.kill()
        self.p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


_frame_no = [0]


def run_case(server, enc, quality, workload, frames):
    exe = os.environ.get('VNC_BENCHCLIENT') or os.path.join(
        os.environ.get('VIREO_BUILD', 'build'), 'tests/bench/vnc-benchclient')
    cl = subprocess.Popen([exe, str(server.port), enc.split('-')[0]] + quality,
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    ready = cl.stdout.readline().split()
    assert ready and ready[0] == 'READY' and ready[1:] == [str(W), str(H)], f'client: {ready}'

    def frame(i):
        x, y, w, h = rect_of(workload, i)
        c = colour(i)
        # The client watches before the write starts; the clock starts with
        # the write (it includes the write: a buffer fill and a damage call
        # through a pipe for Vireo, a serial command and the guest's rep stosl
        # for QEMU; the write time is reported on its own).
        cl.stdin.write(f'wait {x + w // 2} {y + h // 2} {c:06x}\n')
        cl.stdin.flush()
        time.sleep(0.002)
        t0 = time.monotonic()
        server.write(x, y, w, h, c)
        t1 = time.monotonic()
        line = cl.stdout.readline().split()
        assert line and line[0] in ('seen', 'lost'), f'client: {line}'
        if line[0] == 'lost':
            lost[0] += 1
            return None, int(line[2]), t1 - t0
        return float(line[1]) - t0, int(line[2]), t1 - t0

    # Frame numbers run on over all cases: a frame's colour never already
    # stands at its place from an earlier case.
    def next_frame():
        _frame_no[0] += 1
        return frame(_frame_no[0])

    lost = [0]
    next_frame()                      # warm-up: the first full update is done
    lat, wr, base = [], [], next_frame()[1]
    prev = base
    for _ in range(frames):
        t, b, wt = next_frame()
        if t is not None:
            lat.append(max(t, 0.0))
        wr.append(wt)
        prev = b
    cl.stdin.write('quit\n')
    cl.stdin.flush()
    cl.wait(10)
    return {
        'median_ms': statistics.median(lat) * 1e3 if lat else float('nan'),
        'p95_ms': sorted(lat)[max(0, int(len(lat) * 0.95) - 1)] * 1e3 if lat else float('nan'),
        'fps': len(lat) / sum(lat) if sum(lat) > 0 else float('inf'),
        'bytes_per_frame': (prev - base) / frames,
        'write_ms': statistics.median(wr) * 1e3,
        'lost': lost[0],
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--frames-full', type=int, default=20)
    ap.add_argument('--frames-small', type=int, default=60)
    ap.add_argument('--only', choices=['vireo', 'qemu'])
    a = ap.parse_args()
    kinds = [VireoServer, QemuServer]
    if a.only == 'vireo' or not shutil.which('qemu-system-x86_64'):
        kinds = [VireoServer]
    elif a.only == 'qemu':
        kinds = [QemuServer]
    results = []
    for kind in kinds:
        srv = kind()
        try:
            for workload, frames in (('full', a.frames_full), ('small', a.frames_small)):
                for enc, q in ENCODINGS:
                    r = run_case(srv, enc, q, workload, frames)
                    results.append((kind.name, workload, enc, r))
                    print(f'{kind.name:40s} {workload:5s} {enc:12s} latency median '
                          f'{r["median_ms"]:8.2f} ms p95 {r["p95_ms"]:8.2f} ms  {r["fps"]:7.1f} fps  '
                          f'{r["bytes_per_frame"]:10.0f} B/frame  (write {r["write_ms"]:.2f} ms, lost {r["lost"]})', flush=True)
        finally:
            srv.close()
    print('\n| server | workload | encoding | latency median (ms) | p95 (ms) | frames/s | bytes/frame | write (ms) |')
    print('|---|---|---|---|---|---|---|---|')
    for name, workload, enc, r in results:
        print(f'| {name} | {workload} | {enc} | {r["median_ms"]:.2f} | {r["p95_ms"]:.2f} | '
              f'{r["fps"]:.1f} | {r["bytes_per_frame"]:.0f} | {r["write_ms"]:.2f} |')


main()
