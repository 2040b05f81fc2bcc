#!/usr/bin/env python3
"""bench_hv_cpl3: CPL3 loop throughput in a guest against the same loop native.

The cpl3_bench guest runs cpl3_loop.s at CPL3 and prints the iterations,
the result and the virtual ns it took (test device NS register); the native
peer (cpl3_native) runs the identical instructions on the host in the same
benchmark run.  Prints both rates and the guest/native ratio (1.0 = native
speed; lower is slower).  Native runs before and after the guest; the better
one counts, since the machine is shared.
usage: bench_hv_cpl3.py [ENGINE]
"""
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_hv_common import read, run_vmx, write_vmx  # noqa: E402

PAT = re.compile(r"iterations=(\d+) result=([0-9a-f]{16}) ns=(\d+)")


def native(build, iters):
    out = subprocess.run([os.path.join(build, "tests", "guests", "cpl3_native"), str(iters)],
                         capture_output=True, text=True, check=True).stdout
    m = PAT.search(out)
    return int(m.group(3)), m.group(2)


def main():
    engine = sys.argv[1] if len(sys.argv) > 1 else "hv"
    build = os.environ["VIREO_BUILD"]
    rom = os.path.join(build, "tests", "guests", "cpl3_bench.rom")
    if engine == "hv" and not os.access("/dev/kvm", os.R_OK | os.W_OK):
        print("SKIP: /dev/kvm is not usable here")
        return 77
    with tempfile.TemporaryDirectory(prefix="vireo-bench-cpl3.") as d:
        vmx = write_vmx(d, rom, engine)
        _, status = run_vmx(os.environ["VIREO_VMX"], vmx, limit_s=300)
        serial = read(d, "serial.txt")
    m = PAT.search(serial)
    if not m or status != 42:
        print(f"guest run failed (status {status}); serial:\n{serial}")
        return 1
    iters, g_result, g_ns = int(m.group(1)), m.group(2), int(m.group(3))
    n1, n_result = native(build, iters)
    n2, _ = native(build, iters)
    n_ns = min(n1, n2)
    if n_result != g_result:
        print(f"result mismatch: guest {g_result}, native {n_result}")
        return 1
    print(f"engine {engine}: CPL3 loop, {iters} iterations of cpl3_loop.s (result {g_result})")
    print(f"  guest  {g_ns / 1e6:9.1f} ms  {iters / g_ns * 1e3:8.1f} M iterations/s")
    print(f"  native {n_ns / 1e6:9.1f} ms  {iters / n_ns * 1e3:8.1f} M iterations/s")
    print(f"  guest/native throughput ratio {n_ns / g_ns:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
