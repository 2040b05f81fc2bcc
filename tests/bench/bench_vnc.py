#!/usr/bin/env python3
"""bench_vnc.py — the VNC remote console: latency from a guest framebuffer
write to the client having decoded the update, the frame rate that gives,
and bytes per frame per encoding; Vireo against QEMU's VNC server on the
same guest workload, in the same run, with the same client.

The guest workload (both servers): one 512-byte boot sector,
tests/bench/bench_vnc_boot.S, in a raw disk image.  It switches to
protected mode, sets Bochs dispi 1920x1080x32 and fills rectangles in the
linear framebuffer with rep stosl on commands from COM1 ('F' colour x y w h,
answered 'K').  It takes the framebuffer from BAR1 of a VMware SVGA II at
00:0f.0 when there is one, else from BAR0 of the std VGA at 00:02.0.
  Vireo guest: vireo-vmx, bt engine (--engine hv to compare), SeaBIOS
         (bios-256k.bin) booting the image from an AHCI disk (a
         monolithicFlat VMDK descriptor over the same raw file), SVGA II
         with its VGA/VBE side; the MKS finds the changes itself (VBE mode
         has no damage reports): on hv, like QEMU with KVM, it compares
         only the pages KVM's dirty log reports; on bt it compares the
         whole screen each refresh.  COM1 on
         vireo-vmx's stdin/stdout (Ctrl-A bytes doubled: the console escape).
  QEMU guest: qemu-system-x86_64 -accel tcg -vga std (-accel kvm with
         --engine hv), the same image as its IDE disk, COM1 on a Unix
         socket.
  Vireo device (extra rows, --servers): tests/vnc/vnc-testserver, the MKS +
         mks_vnc.c with a 1920x1080 buffer standing in for SVGA VRAM; "fill"
         writes the pixels and reports the damage, as SVGA's UPDATE does.
         No guest: it shows what the MKS + VNC path costs by itself.
The clock starts when the write command is sent and stops when the client
(vnc-benchclient, libvncclient, the same for all) has decoded an update
showing the new colour at the rectangle's last pixel (bottom right: the
guest writes it last, so the client has the whole frame); the write
(command, guest fill, 'K' back) is also given on its own.

Workloads: "full" = the whole 1920x1080 screen in a new solid colour per
frame; "small" = one 64x64 rectangle per frame, moving over the screen.
Encodings: raw, hextile, zrle, tight (lossless), tight with JPEG quality 6.
Each case runs twice over: N frames back to back with one frame in flight
(frames/s, bytes per frame, server CPU), then N frames each written after a
random pause of 0-50 ms (latency median and p95, write time), so that the
writes fall at random phases of the servers' display refresh; back to back,
every write would follow just after a refresh and wait almost a whole
period.  A frame the client did not see within 20 s counts as lost.
Server CPU = CPU time of the server process (all threads) during the case,
per frame, and the part of it not spent by the vCPU thread (display refresh,
change detection, VNC encoding; for the device server all of it); idle CPU =
the same as a percentage with the guest waiting and no client.  Both guests
spin on COM1's status register while waiting, so the vCPU part is ~100 % of
whatever core the host gives them.

usage: bench_vnc.py [--frames-full N] [--frames-small N] [--engine bt|hv]
                    [--servers vireo,qemu,device]  (default: all three)
env: VIREO_VMX, VNC_TESTSERVER, VNC_BENCHCLIENT (meson sets them)"""
import argparse
import ctypes
import os
import random
import select
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'vnc'))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'boot'))
import bootsector  # noqa: E402
import vncpeers as vp  # noqa: E402

W, H = 1920, 1080
BIOS = '/usr/share/seabios/bios-256k.bin'
# 27 colours, every channel 0x20, 0x90 or 0xF0: two different ones differ by
# more than the JPEG tolerance (48) in some channel.
LEVELS = (0x20, 0x90, 0xF0)
COLOURS = [LEVELS[i // 9] << 16 | LEVELS[i // 3 % 3] << 8 | LEVELS[i % 3] for i in range(27)]
ENCODINGS = [('raw', []), ('hextile', []), ('zrle', []), ('tight', []), ('tight-jpeg6', ['6'])]
CLK_TCK = os.sysconf('SC_CLK_TCK')


def colour(i):
    # Consecutive frames 11 palette steps apart; the low bits make a colour
    # unique for lossless encodings over 27 * 8 frames.
    return COLOURS[(i * 11) % 27] ^ ((i // 27) % 8)


def rect_of(workload, i):
    if workload == 'full':
        return 0, 0, W, H
    return (i * 197) % (W - 64), (i * 131) % (H - 64), 64, 64


def _stat_cpu(path):
    with open(path) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def thread_cpu(pid):
    """{tid: (name, user + system seconds)} for every thread of a process."""
    out = {}
    for tid in os.listdir(f'/proc/{pid}/task'):
        try:
            with open(f'/proc/{pid}/task/{tid}/comm') as f:
                name = f.read().strip()
            out[int(tid)] = (name, _stat_cpu(f'/proc/{pid}/task/{tid}/stat'))
        except OSError:
            pass            # a thread that just ended
    return out


def cpu_split(server, before, after):
    """(all threads, all but the vCPU thread) seconds between two thread_cpu()s."""
    total = rest = 0.0
    for tid, (_, t1) in after.items():
        d = t1 - before.get(tid, ('', 0.0))[1]
        total += d
        if tid != server.vcpu_tid:
            rest += d
    return total, rest


def _die_with_parent():
    # A benchmark killed by its timeout must not leave a VM running.
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class SerialGuest:
    """The boot sector's protocol on COM1; subclasses move the bytes."""
    kind = b'?'

    def _recv(self, timeout):
        raise NotImplementedError

    def _send(self, data):
        raise NotImplementedError

    def _until(self, want, timeout):
        end = time.monotonic() + timeout
        while True:
            i = self.rx.find(want)
            if i >= 0:
                self.rx = self.rx[i + len(want):]
                return
            left = end - time.monotonic()
            assert left > 0, f'{self.name}: no {want!r} from the guest within {timeout} s'
            self.rx += self._recv(left)

    def wait_ready(self, timeout):
        self._until(b'VB', timeout)
        while len(self.rx) < 2:
            self.rx += self._recv(5)
        # 's': it found the SVGA II, 'q': QEMU's std VGA; anything else is the wrong device.
        got, self.rx = self.rx[:1], self.rx[1:]
        self._until(b'R', 5)
        assert got == self.kind, f'{self.name}: boot sector found framebuffer {got!r}, not {self.kind!r}'

    def write(self, x, y, w, h, c):
        self._send(b'F' + struct.pack('<IIIII', c, x, y, w, h))
        self._until(b'K', 120)


class VireoGuestServer(SerialGuest):
    name = 'Vireo guest'
    long_name = 'Vireo (SVGA II in dispi mode, MKS + libvncserver 0.9.14)'
    kind = b's'

    engine = 'bt'

    def __init__(self, img, work):
        self.rx = b''
        self.port = vp.free_port()
        desc = bootsector.vmdk(img, work)
        self.dir = os.path.join(work, 'vireo')
        os.mkdir(self.dir)
        vmx = os.path.join(self.dir, 'benchvnc.vmx')
        keys = {
            'displayName': 'benchvnc', 'memsize': '64', 'monitor.engine': self.engine,
            'svga.present': 'TRUE', 'sata0.present': 'TRUE', 'sata0:0.present': 'TRUE',
            'sata0:0.fileName': desc, 'RemoteDisplay.vnc.enabled': 'TRUE',
            'RemoteDisplay.vnc.port': str(self.port),
        }
        with open(vmx, 'w') as f:
            f.write('.encoding = "UTF-8"\nconfig.version = "8"\n')
            for k, v in keys.items():
                f.write(f'{k} = "{v}"\n')
        exe = os.environ.get('VIREO_VMX') or os.path.join(
            os.environ.get('VIREO_BUILD', 'build'), 'app/vireo-vmx')
        self.t0 = time.monotonic()
        self.p = subprocess.Popen([exe, '-s', 'serial0.present=TRUE', '-s', 'serial0.fileType=stdio', vmx],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        self.pid = self.p.pid
        self.vcpu_tid = None
        os.set_blocking(self.p.stdout.fileno(), False)
        try:
            self.wait_ready(120)
            self.ready_s = time.monotonic() - self.t0
            assert vp.wait_port(self.port, 30), 'Vireo VNC port not open'
        except BaseException:
            print('vmware.log tail:\n' + self.log_tail(), file=sys.stderr)
            self.close()
            raise

    def vram_path(self):
        """How the guest's framebuffer writes reach VRAM, from vmware.log."""
        try:
            with open(os.path.join(self.dir, 'vmware.log'), errors='replace') as f:
                text = f.read()
        except OSError:
            return 'unknown'
        return 'guest RAM' if 'svga: BAR1 at' in text and 'is guest RAM' in text else 'MMIO exits'

    def log_tail(self):
        try:
            with open(os.path.join(self.dir, 'vmware.log'), errors='replace') as f:
                return ''.join(f.readlines()[-30:])
        except OSError:
            return '(no vmware.log)'

    def _recv(self, timeout):
        assert self.p.poll() is None, f'vireo-vmx exited ({self.p.returncode})'
        r, _, _ = select.select([self.p.stdout], [], [], min(timeout, 1.0))
        return (self.p.stdout.read() or b'') if r else b''

    def _send(self, data):
        # COM1 on stdio is a console: Ctrl-A is its escape (Ctrl-A x powers
        # the VM off) and Ctrl-A Ctrl-A sends one Ctrl-A.
        self.p.stdin.write(data.replace(b'\x01', b'\x01\x01'))
        self.p.stdin.flush()

    def close(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()


class QemuServer(SerialGuest):
    name = 'QEMU guest'
    long_name = 'QEMU 7.2 (TCG, -vga std, its VNC server)'
    kind = b'q'
    accel = 'tcg'      # kvm against Vireo's hv engine (--engine hv)

    def __init__(self, img, work):
        self.rx = b''
        self.port = vp.free_port()
        ser = os.path.join(work, 'com1.sock')
        self.t0 = time.monotonic()
        self.p = subprocess.Popen(
            ['qemu-system-x86_64', '-accel', self.accel, '-m', '64', '-vga', 'std', '-display', 'none',
             '-vnc', f'127.0.0.1:{self.port - 5900}', '-drive', f'file={img},format=raw,if=ide,snapshot=on',
             '-chardev', f'socket,id=com1,path={ser},server=on,wait=on', '-serial', 'chardev:com1',
             '-name', 'benchvnc,debug-threads=on', '-nodefaults', '-no-user-config'],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        self.pid = self.p.pid
        self.vcpu_tid = None
        try:
            # wait=on: QEMU starts the guest once COM1 is connected, so
            # nothing the boot sector prints is lost.
            end = time.monotonic() + 30
            while True:
                try:
                    self.com = socket.socket(socket.AF_UNIX)
                    self.com.connect(ser)
                    break
                except OSError:
                    self.com.close()
                    assert time.monotonic() < end and self.p.poll() is None, 'QEMU serial socket missing'
                    time.sleep(0.1)
            self.wait_ready(120)
            self.ready_s = time.monotonic() - self.t0
            assert vp.wait_port(self.port, 30), 'QEMU VNC port not open'
        except BaseException:
            self.close()
            raise

    def _recv(self, timeout):
        self.com.settimeout(timeout)
        try:
            c = self.com.recv(4096)
        except socket.timeout:
            return b''
        assert c, 'QEMU serial closed'
        return c

    def _send(self, data):
        self.com.sendall(data)

    def close(self):
        if getattr(self, 'com', None):
            self.com.close()
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()


class VireoDeviceServer:
    name = 'Vireo device'
    long_name = 'Vireo MKS + libvncserver, no guest (vnc-testserver)'

    def __init__(self, img, work):
        del img, work
        self.port = vp.free_port()
        exe = os.environ.get('VNC_TESTSERVER') or os.path.join(
            os.environ.get('VIREO_BUILD', 'build'), 'tests/vnc/vnc-testserver')
        self.t0 = time.monotonic()
        self.p = subprocess.Popen([exe, str(self.port), '--size', f'{W}x{H}'], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                  preexec_fn=_die_with_parent)
        self.pid = self.p.pid
        self.vcpu_tid = -1        # no vCPU: all of it is MKS + VNC
        assert self.p.stdout.readline().strip() == 'READY', 'vnc-testserver did not start'
        self.ready_s = time.monotonic() - self.t0

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
            self.p.wait()


SERVERS = {'vireo': VireoGuestServer, 'qemu': QemuServer, 'device': VireoDeviceServer}
_frame_no = [0]


def start_client(server):
    exe = os.environ.get('VNC_BENCHCLIENT') or os.path.join(
        os.environ.get('VIREO_BUILD', 'build'), 'tests/bench/vnc-benchclient')
    # A guest's mode set reaches the VNC server on its next display refresh:
    # until then a client may see the firmware's text mode.  Retry briefly.
    for _ in range(20):
        cl = subprocess.Popen([exe, str(server.port)] + server.client_args,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        ready = cl.stdout.readline().split()
        if ready and ready[0] == 'READY' and ready[1:] == [str(W), str(H)]:
            return cl
        cl.kill()
        cl.wait()
        time.sleep(0.25)
    raise AssertionError(f'{server.name}: client never saw a {W}x{H} screen (last: {ready})')


def run_case(server, enc, quality, workload, frames):
    server.client_args = [enc.split('-')[0]] + quality
    cl = start_client(server)
    lost = [0]

    def frame(i):
        x, y, w, h = rect_of(workload, i)
        c = colour(i)
        # The client watches before the write starts, at the last pixel the
        # guest writes: a frame counts once the client has all of it.
        cl.stdin.write(f'wait {x + w - 1} {y + h - 1} {c:06x}\n')
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

    next_frame()                      # warm-up: the first full update is done
    # Throughput: frames back to back, one in flight.  Each write then
    # follows the display refresh that showed the previous frame, so it
    # waits for nearly a whole refresh period: what a closed loop gets.
    base = next_frame()[1]
    prev = base
    cpu0, t_run = thread_cpu(server.pid), time.monotonic()
    for _ in range(frames):
        prev = next_frame()[1]
    t_run = time.monotonic() - t_run
    cpu, rest = cpu_split(server, cpu0, thread_cpu(server.pid))
    # Latency: each write at a random moment (0-50 ms after the previous
    # frame was seen, longer than both refresh periods), so it lands at
    # a random phase of the display refresh as a guest's writes do.
    rnd = random.Random(frames)       # the same pauses for every server
    lat, wr = [], []
    for _ in range(frames):
        time.sleep(rnd.uniform(0, 0.05))
        t, _, wt = next_frame()
        if t is not None:
            lat.append(max(t, 0.0))
        wr.append(wt)
    cl.stdin.write('quit\n')
    cl.stdin.flush()
    cl.wait(10)
    return {
        'median_ms': statistics.median(lat) * 1e3 if lat else float('nan'),
        'p95_ms': sorted(lat)[max(0, int(len(lat) * 0.95) - 1)] * 1e3 if lat else float('nan'),
        'fps': frames / t_run,
        'bytes_per_frame': (prev - base) / frames,
        'write_ms': statistics.median(wr) * 1e3,
        'cpu_ms': cpu / frames * 1e3,
        'rest_ms': rest / frames * 1e3,
        'lost': lost[0],
    }


def idle_cpu(server, seconds=3.0):
    """CPU use (%) of the server with the guest waiting for a command and no
    client: (all threads, all but the vCPU).  Both guests spin on COM1's
    line status register, so their vCPU thread is the busiest one: that is
    how the Vireo vCPU thread (unnamed) is found; QEMU names its own."""
    c0, t0 = thread_cpu(server.pid), time.monotonic()
    time.sleep(seconds)
    c1, dt = thread_cpu(server.pid), time.monotonic() - t0
    if server.vcpu_tid is None:
        named = [t for t, (n, _) in c1.items() if n.startswith('CPU ')]
        busiest = max(c1, key=lambda t: c1[t][1] - c0.get(t, ('', 0.0))[1])
        server.vcpu_tid = named[0] if named else busiest
    total, rest = cpu_split(server, c0, c1)
    return total / dt * 100, rest / dt * 100


def diagnose(server):
    """A server that stopped answering: its log and its threads' stacks."""
    if hasattr(server, 'log_tail'):
        print('vmware.log tail:\n' + server.log_tail(), file=sys.stderr)
        keep = os.environ.get('VNC_BENCH_KEEP_LOG')
        if keep:
            shutil.copy(os.path.join(server.dir, 'vmware.log'), keep)
    if server.p.poll() is None and shutil.which('gdb'):
        r = subprocess.run(['gdb', '-p', str(server.pid), '-batch', '-ex', 'thread apply all bt 8'],
                           capture_output=True, text=True, timeout=60)
        print(f'{server.name} threads:\n' + r.stdout, file=sys.stderr)


def fmt_int(v):
    return f'{v:,.0f}'.replace(',', ' ')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--frames-full', type=int, default=20)
    ap.add_argument('--frames-small', type=int, default=60)
    ap.add_argument('--servers', default='vireo,qemu,device',
                    help='comma-separated, in run order: vireo (guest), qemu (guest), device')
    ap.add_argument('--engine', choices=['bt', 'hv'], default='bt',
                    help='the Vireo guest\'s engine (default bt: QEMU runs TCG)')
    a = ap.parse_args()
    VireoGuestServer.engine = a.engine
    VireoGuestServer.long_name += f', engine {a.engine}'
    if a.engine == 'hv':
        # hardware against hardware: both keep the frame buffer as guest RAM
        # with the kernel's dirty log telling the display what changed
        QemuServer.accel = 'kvm'
        QemuServer.long_name = QemuServer.long_name.replace('TCG', 'KVM')
    names = [s for s in a.servers.split(',') if s]
    for s in names:
        assert s in SERVERS, f'unknown server {s!r} (vireo, qemu, device)'
    if 'qemu' in names and not shutil.which('qemu-system-x86_64'):
        print('qemu-system-x86_64 missing: QEMU rows skipped (Debian package qemu-system-x86)')
        names.remove('qemu')
    if 'vireo' in names and not os.path.exists(BIOS):
        print(f'{BIOS} missing: Vireo guest rows skipped (Debian package seabios)')
        names.remove('vireo')
    work = tempfile.mkdtemp(prefix='vireo-benchvnc-')
    results, info = [], {}
    try:
        img = bootsector.raw_image(work)
        for key in names:
            kind = SERVERS[key]
            srv = kind(img, work)
            try:
                time.sleep(0.5)       # let the first display refresh pass
                info[kind.name] = (srv.ready_s,) + idle_cpu(srv)
                print(f'{kind.long_name}: ready in {srv.ready_s:.2f} s, idle CPU '
                      f'{info[kind.name][1]:.1f} % (without the vCPU {info[kind.name][2]:.1f} %)',
                      flush=True)
                if hasattr(srv, 'vram_path'):
                    print(f'{kind.name}: SVGA VRAM (BAR1) reached through {srv.vram_path()}', flush=True)
                for workload, frames in (('full', a.frames_full), ('small', a.frames_small)):
                    for enc, q in ENCODINGS:
                        r = run_case(srv, enc, q, workload, frames)
                        results.append((kind.name, workload, enc, r))
                        print(f'{kind.name:13s} {workload:5s} {enc:12s} latency median '
                              f'{r["median_ms"]:8.2f} ms p95 {r["p95_ms"]:8.2f} ms  {r["fps"]:7.1f} fps  '
                              f'{r["bytes_per_frame"]:10.0f} B/frame  write {r["write_ms"]:.2f} ms  '
                              f'server CPU {r["cpu_ms"]:.1f} ms/frame ({r["rest_ms"]:.1f} without the vCPU)  '
                              f'lost {r["lost"]}', flush=True)
            except BaseException:
                diagnose(srv)
                raise
            finally:
                srv.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print('\n| server | workload | encoding | latency median (ms) | p95 (ms) | frames/s | bytes/frame '
          '| write (ms) | server CPU (ms/frame) | of it not vCPU | lost |')
    print('|---|---|---|---|---|---|---|---|---|---|---|')
    for name, workload, enc, r in results:
        print(f'| {name} | {workload} | {enc} | {r["median_ms"]:.2f} | {r["p95_ms"]:.2f} | '
              f'{r["fps"]:.1f} | {fmt_int(r["bytes_per_frame"])} | {r["write_ms"]:.2f} | '
              f'{r["cpu_ms"]:.1f} | {r["rest_ms"]:.1f} | {r["lost"]} |')
    print('\n| server | ready after start (s) | idle CPU (%) | of it not vCPU (%) |')
    print('|---|---|---|---|')
    for name, (ready_s, idle, rest) in info.items():
        print(f'| {name} | {ready_s:.2f} | {idle:.1f} | {rest:.1f} |')

    by = {(n, w, e): r for n, w, e, r in results}
    if VireoGuestServer.name in info and QemuServer.name in info:
        print('\nGuest vs guest (same boot sector, same client): QEMU / Vireo latency (>1: Vireo '
              'faster), Vireo / QEMU frames/s, Vireo / QEMU bytes per frame')
        print('| workload | encoding | latency QEMU/Vireo | frames/s Vireo/QEMU | bytes Vireo/QEMU |')
        print('|---|---|---|---|---|')
        for workload in ('full', 'small'):
            for enc, _ in ENCODINGS:
                v = by.get((VireoGuestServer.name, workload, enc))
                q = by.get((QemuServer.name, workload, enc))
                if not v or not q:
                    continue
                br = v['bytes_per_frame'] / q['bytes_per_frame'] if q['bytes_per_frame'] else float('nan')
                print(f'| {workload} | {enc} | {q["median_ms"] / v["median_ms"]:.2f} | '
                      f'{v["fps"] / q["fps"]:.2f} | {br:.2f} |')


if __name__ == '__main__':
    main()
