"""Speed and memory of the bit-exact model (lmul_hw.model) against numpy float32 doing the same
amount of work, measured in the same run (so that a shared, noisy machine cancels out of the ratios).

    python benchmarks/bench_model.py [--repeats N] [--profile]

Checks (target in brackets; a miss exits with status 1):
  1. lmul_hw.model.lmul on 2^24 e4m3 pairs vs numpy float32 multiply of 2^24 pairs   [<= 5x]
  2. lmul_hw.model.matmul, e4m3 L-Mul, exact accumulation, 1024x1024x1024
     vs numpy float32 matmul of the same shape                                      [<= 30x]
  3. peak memory (ru_maxrss of a fresh process) of that matmul                      [<= 4 GB]
Each timing is the best of --repeats runs after a warm-up.  With --profile (or when check 1
misses) the profile of one lmul call says where its time goes.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lmul_hw.model import lmul, matmul  # noqa: E402

N_ELEMENTWISE = 1 << 24
N_MATMUL = 1024
TARGET_ELEMENTWISE = 5.0
TARGET_MATMUL = 30.0
TARGET_MEMORY_MB = 4096.0

# VmHWM (peak RSS of this process image, in kB) rather than ru_maxrss: Linux carries ru_maxrss over
# from the parent across fork and exec, so a child of a big parent would report the parent's peak
_MEMORY_CHILD = """
import sys
import numpy as np
sys.path.insert(0, {root!r})
from lmul_hw.model import matmul

def hwm():
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))

rng = np.random.default_rng(1)
n = {n}
A = rng.integers(0, 256, (n, n), dtype=np.uint8)
B = rng.integers(0, 256, (n, n), dtype=np.uint8)
A[(A & 0x7F) == 0x7F] = 0
B[(B & 0x7F) == 0x7F] = 0
before = hwm()
matmul(A, B, mul="lmul", fmt="e4m3", acc="exact")
print(before, hwm())
"""


def best_of(fn, repeats: int) -> float:
    fn()                                      # warm-up (caches, page faults, BLAS threads)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def e4m3_operands(rng, shape):
    """Random e4m3 bit patterns without NaN (all other codes, zeros and subnormals included)."""
    x = rng.integers(0, 256, shape, dtype=np.uint8)
    x[(x & 0x7F) == 0x7F] = 0
    return x


def profile_lmul(a, b) -> str:
    prof = cProfile.Profile()
    prof.enable()
    lmul(a, b, fmt="e4m3")
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(12)
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    start = next(i for i, line in enumerate(lines) if "ncalls" in line)
    return "\n".join(lines[start:start + 13])


def peak_memory_mb() -> tuple[float, float]:
    """(RSS before the matmul, peak RSS) in MB, of a fresh Python process that runs it once."""
    code = _MEMORY_CHILD.format(root=str(ROOT), n=N_MATMUL)
    env = dict(os.environ)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"memory measurement failed:\n{done.stderr[-2000:]}")
    before, after = (int(v) / 1024 for v in done.stdout.split())     # kB -> MB
    return before, after


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (best is kept)")
    p.add_argument("--profile", action="store_true", help="always print the profile of one lmul call")
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)

    # 3. memory first, while this process is still small
    print("3. peak memory of the 1024^3 matmul in a fresh process ...", flush=True)
    rss_before, rss_peak = peak_memory_mb()

    # 1. element-wise
    a = e4m3_operands(rng, N_ELEMENTWISE)
    b = e4m3_operands(rng, N_ELEMENTWISE)
    x = rng.standard_normal(N_ELEMENTWISE).astype(np.float32)
    y = rng.standard_normal(N_ELEMENTWISE).astype(np.float32)
    print(f"1. lmul on 2^24 e4m3 pairs vs float32 multiply ({args.repeats} repeats, best kept) ...", flush=True)
    t_lmul = best_of(lambda: lmul(a, b, fmt="e4m3"), args.repeats)
    t_mul = best_of(lambda: np.multiply(x, y), max(args.repeats, 5))
    table = _table_lookup_reference(a, b, args.repeats)
    chunk = 1 << 16
    chunked = best_of(lambda: [lmul(a[i:i + chunk], b[i:i + chunk], fmt="e4m3") for i in range(0, a.size, chunk)],
                      args.repeats)

    # 2. matmul
    A = e4m3_operands(rng, (N_MATMUL, N_MATMUL))
    B = e4m3_operands(rng, (N_MATMUL, N_MATMUL))
    X = rng.standard_normal((N_MATMUL, N_MATMUL)).astype(np.float32)
    Y = rng.standard_normal((N_MATMUL, N_MATMUL)).astype(np.float32)
    print("2. matmul e4m3 L-Mul exact 1024^3 vs float32 matmul ...", flush=True)
    t_mm = best_of(lambda: matmul(A, B, mul="lmul", fmt="e4m3", acc="exact"), args.repeats)
    t_f32 = best_of(lambda: X @ Y, max(args.repeats, 5))

    results = [
        ("lmul e4m3, 2^24 pairs / float32 multiply", t_lmul / t_mul, TARGET_ELEMENTWISE, "x",
         f"{t_lmul * 1e3:.0f} ms / {t_mul * 1e3:.1f} ms"),
        ("matmul e4m3 lmul exact 1024^3 / float32 matmul", t_mm / t_f32, TARGET_MATMUL, "x",
         f"{t_mm * 1e3:.0f} ms / {t_f32 * 1e3:.1f} ms"),
        ("peak RSS of that matmul (fresh process)", rss_peak, TARGET_MEMORY_MB, "MB",
         f"{rss_before:.0f} MB before the call"),
    ]
    print()
    print(f"{'check':<48}{'measured':>11}{'target':>12}  result   detail")
    failed = 0
    for name, value, target, unit, detail in results:
        ok = value <= target
        failed += not ok
        print(f"{name:<48}{value:>9.1f} {unit:<2}{'<= ' + format(target, 'g'):>9} {unit:<2} "
              f"{'PASS' if ok else 'FAIL':<8} {detail}")
    print("\nfor reference (not checks), the same 2^24 element-wise L-Mul products:")
    print(f"  lmul called on 2^16-element slices: {chunked * 1e3:.0f} ms = {chunked / t_mul:.1f}x the float32 multiply "
          "(the full-size int64 temporaries cost memory traffic and page faults)")
    print(f"  one gather from a 65,536-entry table of lmul's results: {table * 1e3:.0f} ms = {table / t_mul:.1f}x "
          "(what an 8-bit fast path could do)")
    print(f"machine: {os.cpu_count()} CPUs, load average {', '.join(f'{v:.2f}' for v in os.getloadavg())}; "
          f"numpy {np.__version__}")
    if args.profile or t_lmul / t_mul > TARGET_ELEMENTWISE:
        print("\nwhere one lmul call on 2^24 e4m3 pairs spends its time (cProfile, sorted by own time):")
        print(profile_lmul(a, b))
    return 1 if failed else 0


def _table_lookup_reference(a, b, repeats) -> float:
    """Time of the same element-wise L-Mul done as one gather from a table of all 65,536 results
    (what an 8-bit fast path could do); the table comes from the model itself."""
    codes = np.arange(256, dtype=np.uint8)
    table = lmul(codes[:, None], codes[None, :], fmt="e4m3").reshape(-1)
    ai, bi = a.astype(np.intp), b.astype(np.intp)
    out = table[(ai << 8) | bi]
    assert np.array_equal(out[:4096], lmul(a[:4096], b[:4096], fmt="e4m3"))
    return best_of(lambda: table[(a.astype(np.intp) << 8) | b], repeats)


if __name__ == "__main__":
    sys.exit(main())
