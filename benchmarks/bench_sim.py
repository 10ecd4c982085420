"""Speed of the cocotb verification: the exhaustive 65,536-pair check of one 8-bit unit on
Verilator must take at most 5 s of simulation (the build excluded).

Absolute times mean little on a shared machine, so the run also measures, in the same process and
on the same simulator, the naive way of doing it (one operand pair per clock step: the same
testbench on a 1-lane harness, timed on a sample and extrapolated to 65,536 pairs) and the
numpy model computing the same 65,536 expected products.  Builds are cached by content
in the project's cache (``lmul-hw cache info``), so a second run skips them.

    python benchmarks/bench_sim.py [--unit lmul|fpmul] [--format e4m3] [--sim verilator] [--lanes 32]

Exit status 1 when the check misses the limit.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

LIMIT_SECONDS = 5.0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--unit", choices=("lmul", "fpmul"), default="lmul")
    p.add_argument("--format", default="e4m3", help="an 8-bit format (default e4m3)")
    p.add_argument("--sim", choices=("verilator", "icarus"), default="verilator")
    p.add_argument("--lanes", type=int, default=None, help="lanes of the harness (default: lmul_hw.simulate's)")
    p.add_argument("--sample", type=int, default=4096, help="pairs timed one per step (default 4096)")
    p.add_argument("--repeats", type=int, default=3, help="simulation runs, best taken (default 3)")
    args = p.parse_args(argv)

    import numpy as np
    import cocotb
    from lmul_hw.config import FPMulConfig, LMulConfig
    from lmul_hw.simulate import DEFAULT_LANES, build, run, simulator_version
    from lmul_hw.vectors import Vectors, expected_bits, unit_vectors

    cfg = LMulConfig(args.format) if args.unit == "lmul" else FPMulConfig(args.format)
    if cfg.fmt.width > 8:
        p.error("the benchmark is the exhaustive check of an 8-bit format")
    lanes = args.lanes or DEFAULT_LANES
    say = lambda m: print(m, flush=True)   # noqa: E731
    say(f"lmul-hw simulation benchmark: {cfg.name} on {args.sim} ({simulator_version(args.sim)}), cocotb "
        f"{cocotb.__version__}, load average {os.getloadavg()[0]:.2f}")

    full = unit_vectors(cfg)
    assert full.exhaustive and len(full) == 65_536

    design = build([cfg], args.sim, lanes=lanes, progress=lambda m: None)
    say(f"build ({lanes} lanes): {'cached' if design.cached else f'{design.build_seconds:.1f} s'} (excluded)")
    best = None
    for _ in range(args.repeats):
        res = run(design, {cfg.name: full})
        if not res.ok:
            say(res.report())
            return 1
        best = res if best is None or res.sim_seconds < best.sim_seconds else best
    sim = best.sim_seconds
    say(f"exhaustive check: {best.checked} pairs in {best.steps} steps: {sim:.3f} s simulation "
        f"({best.wall_seconds:.1f} s with simulator start-up, best of {args.repeats}); "
        f"limit {LIMIT_SECONDS:.0f} s: {'PASS' if sim <= LIMIT_SECONDS else 'FAIL'}")

    # baseline 1: one pair per clock step (the same testbench on a 1-lane harness), on a sample
    naive_design = build([cfg], args.sim, lanes=1, progress=lambda m: None)
    rng = np.random.default_rng(1)
    pick = rng.choice(len(full), size=min(args.sample, len(full)), replace=False)
    sample = Vectors(full.a[pick], full.b[pick], {"sample": len(pick)})
    naive = min((run(naive_design, {cfg.name: sample}) for _ in range(args.repeats)), key=lambda r: r.sim_seconds)
    if not naive.ok:
        say(naive.report())
        return 1
    per_pair = naive.sim_seconds / naive.checked
    extrapolated = per_pair * len(full)
    say(f"baseline, one pair per step (1-lane harness{', cached' if naive_design.cached else ''}): "
        f"{naive.checked} pairs in {naive.sim_seconds:.3f} s = {per_pair * 1e6:.1f} us per pair, "
        f"{extrapolated:.2f} s for 65,536 pairs extrapolated; the {lanes}-lane harness is "
        f"{extrapolated / sim:.1f}x faster")

    # baseline 2: the numpy model computing the same expected products
    times = []
    for _ in range(max(args.repeats, 5)):
        t0 = time.perf_counter()
        expected_bits(cfg, full.a, full.b)
        times.append(time.perf_counter() - t0)
    model = min(times)
    say(f"baseline, the numpy model computing the 65,536 expected products: {model * 1e3:.2f} ms; "
        f"simulation / model = {sim / model:.0f}x")
    return 0 if sim <= LIMIT_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
