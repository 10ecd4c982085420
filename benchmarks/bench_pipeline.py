"""Fmax of the pipelined units on ECP5 LFE5U-85F (nextpnr, LUT-only), latency 1..4, against the targets
of issue 12 §4:

  1. exact multipliers (fpmul, subnormals full), e4m3 and bf16: latency 3 >= 2x the latency-1 Fmax
  2. L-Mul, e4m3 and bf16: latency 2 >= 1.3x the latency-1 Fmax

    python benchmarks/bench_pipeline.py [--seeds 1 2 3] [--latencies 1 2 3 4] [--formats e4m3 bf16]

Each Fmax is the median over the placement seeds (``lmul_hw.fpga.fmax``: the unit inside the register
harness, every seed cached).  One nextpnr runs at a time.  Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lmul_hw.config import FPMulConfig, LMulConfig  # noqa: E402
from lmul_hw.fpga import fmax, nextpnr_version  # noqa: E402
from lmul_hw.verilog import verilog_text  # noqa: E402

#: (kind, latency, minimum ratio to latency 1) of issue 12 §4
TARGETS = {("fpmul", 3): 2.0, ("lmul", 2): 1.3}
KINDS = ("lmul", "fpmul")


def unit(kind: str, fmt: str, latency: int):
    return LMulConfig(fmt, latency=latency) if kind == "lmul" else FPMulConfig(fmt, subnormals="full",
                                                                               latency=latency)


def median_fmax(cfg, seeds) -> float:
    values = []
    for seed in seeds:
        start = time.monotonic()
        result = fmax(verilog_text(cfg), cfg.name, "ecp5", seed=seed)
        if result.fmax_mhz is None:
            raise SystemExit(f"{cfg.name}: {result.detail}")
        values.append(result.fmax_mhz)
        print(f"  {cfg.name} seed {seed}: {result.fmax_mhz:.1f} MHz ({time.monotonic() - start:.0f} s)", flush=True)
    return statistics.median(values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--latencies", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--formats", nargs="+", default=["e4m3", "bf16"])
    args = parser.parse_args()
    print(f"{nextpnr_version('ecp5')}, seeds {args.seeds}", flush=True)
    table = {}
    for fmt in args.formats:
        for kind in KINDS:
            for latency in args.latencies:
                table[kind, fmt, latency] = median_fmax(unit(kind, fmt, latency), args.seeds)

    ok = True
    print(f"\n| unit | format | latency | Fmax (MHz, median of {len(args.seeds)}) | x latency 1 | target |")
    print("|---|---|---:|---:|---:|---|")
    for (kind, fmt, latency), mhz in table.items():
        base = table.get((kind, fmt, 1))
        ratio = mhz / base if base else None
        goal = TARGETS.get((kind, latency))
        verdict = ""
        if goal is not None and ratio is not None:
            met = ratio >= goal
            ok &= met
            verdict = f">= {goal}x: {'PASS' if met else 'FAIL'}"
        shown = f"{ratio:.2f}" if ratio is not None else ""
        name = "L-Mul" if kind == "lmul" else "exact (full)"
        print(f"| {name} | {fmt} | {latency} | {mhz:.1f} | {shown} | {verdict} |")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
