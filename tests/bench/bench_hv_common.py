"""Shared helpers of the hv benchmarks: write a test-guest .vmx, run vireo-vmx."""
import os
import signal
import subprocess
import time


def write_vmx(folder, rom, engine="hv"):
    path = os.path.join(folder, "bench.vmx")
    with open(path, "w") as f:
        f.write('displayName = "hv bench"\n'
                f'bios440.filename = "{rom}"\n'
                'memsize = "64"\n'
                'numvcpus = "1"\n'
                'vireo.testDevice = "TRUE"\n'
                f'monitor.engine = "{engine}"\n'
                'serial0.present = "TRUE"\n'
                'serial0.fileType = "file"\n'
                'serial0.fileName = "serial.txt"\n')
    return path


def run_vmx(vmx_bin, vmx_path, done_marker="exit status", limit_s=120.0):
    """Start vireo-vmx; return (t_start_monotonic_ns, exit_status or None).

    Waits for the process, or, once vmware.log names the exit status, at
    most 5 s more before killing it (a platform teardown hang must not
    stall the benchmark)."""
    folder = os.path.dirname(vmx_path)
    log = os.path.join(folder, "vmware.log")
    for stale in (log, os.path.join(folder, "serial.txt"), vmx_path + ".lck"):
        if os.path.exists(stale):
            os.unlink(stale)
    t0 = time.monotonic_ns()
    p = subprocess.Popen([vmx_bin, vmx_path], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + limit_s
    seen_done = None
    while p.poll() is None:
        now = time.monotonic()
        if seen_done is None and os.path.exists(log):
            with open(log, errors="replace") as f:
                if done_marker in f.read():
                    seen_done = now
        if now > deadline or (seen_done is not None and now - seen_done > 5):
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            break
        time.sleep(0.005)
    status = None
    if os.path.exists(log):
        with open(log, errors="replace") as f:
            for line in f:
                if "info: exit status" in line:
                    status = int(line.rsplit(" ", 1)[1])
    return t0, status


def read(folder, name):
    path = os.path.join(folder, name)
    if not os.path.exists(path):
        return ""
    with open(path, errors="replace") as f:
        return f.read()
