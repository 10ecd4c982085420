"""Mutation score of the testbenches: how many single-bit mutants of the generated Verilog does
`verify --verilog` catch?

For each design: yosys `mutate -list N -seed S -ctrl mutsel W 1` puts N mutants into ONE netlist behind
an input `mutsel` (lmul_hw.mutation.make_mutants); the netlist is read, checked and built ONCE as a
user's design (lmul_hw.simulate.user.load_user_rtl, the machinery of `verify --verilog`), and each
mutant is one run of the same testbench with `mutsel` tied to its number (`--tie mutsel=i`).  A mutant
the run reports (mismatch, X/Z output, protocol error) is killed; each survivor goes to a yosys SAT
miter against the original (lmul_hw.mutation.mutant_equivalence: a proof for the units, temporal
induction with a bounded fallback for the core).

    score = killed / (killed + survivors not proven equivalent)

    python benchmarks/mutation.py                           # all designs, 100 mutants each, Verilator
    python benchmarks/mutation.py --designs e4m3,e5m2,core --mutants 100 --sim icarus
    python benchmarks/mutation.py --designs core --core-mutants 60 --markdown out.md

Designs: the latency-0 reference units of lmul_hw.reference (L-Mul, exact full and ftz of e4m3, e5m2,
bf16; --designs selects formats and/or `core`) and a 2x2 e4m3 L-Mul core with exact accumulation
(depth 16).  Exit status 1 if a score misses its target (100% for e4m3/e5m2 units, 99% bf16, 95% core).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lmul_hw.config import CoreConfig  # noqa: E402
from lmul_hw.mutation import BOUNDED, DIFFERENT, EQUIVALENT, make_mutants, mutant_equivalence  # noqa: E402
from lmul_hw.reference import reference_units  # noqa: E402
from lmul_hw.simulate import build, build_core, load_user_rtl, make_tiles, run, run_core  # noqa: E402
from lmul_hw.simulate.core import default_depths  # noqa: E402
from lmul_hw.vectors import DEFAULT_RANDOM, unit_vectors  # noqa: E402
from lmul_hw.verilog import verilog_text  # noqa: E402

CORE = CoreConfig(2, 2, "lmul", "e4m3", "exact", 16)
TARGET = {"e4m3": 1.0, "e5m2": 1.0, "bf16": 0.99, "core": 0.95}
#: The core's stimulus: runs of CORE_TILES random tiles each (operand distribution, rate of zeros,
#: subnormals, NaN and inf, and whether rst comes in the middle of a tile), as `verify core` makes them.
CORE_TILES = 24
CORE_RUNS = (("gaussian", 0.04, False), ("heavy", 0.15, False), ("gaussian", 0.04, True))


def designs(selected: list[str]):
    out = []
    for cfg in reference_units():
        if cfg.latency == 0 and cfg.fmt.name in selected:
            out.append((cfg.fmt.name, cfg))
    if "core" in selected:
        out.append(("core", CORE))
    return out


def say(msg: str) -> None:
    print(msg, flush=True)


def score_design(group: str, cfg, count: int, seed: int, simulator: str, sat_timeout: float, seq: int,
                 workdir: Path) -> dict:
    t0 = time.perf_counter()
    original = verilog_text(cfg)
    ms = make_mutants(original, cfg.name, count, seed)
    path = workdir / f"{cfg.name}_mutants.v"
    path.write_text(ms.verilog)
    user = load_user_rtl(cfg, [path], cfg.name, simulator, ties={"mutsel": 0})
    is_core = isinstance(cfg, CoreConfig)
    if is_core:
        design = build_core(cfg, simulator, user=user, progress=say)
        rng = np.random.default_rng(0)
        runs = []
        for dist, rate, reset in CORE_RUNS:
            depths = default_depths(cfg, CORE_TILES, rng)
            options = {}
            if reset:                           # rst halfway through the middle tile
                mid = len(depths) // 2
                depths[mid] = max(depths[mid], 2)
                options = {"reset_tile": mid, "reset_beats": depths[mid] // 2}
            runs.append((make_tiles(cfg, depths, rng, dist, rate), dist, options))

        def check(i):
            for n, (tiles, dist, options) in enumerate(runs):
                res = run_core(design, tiles, seed=n, dist=dist, ties={"mutsel": i}, **options)
                if not res.ok:
                    return False, f"{res.mismatch_count} values, {res.protocol_error_count} protocol errors"
            return True, ""
    else:
        design = build([cfg], simulator, user={cfg.name: user}, progress=say)
        vectors = {cfg.name: unit_vectors(cfg, DEFAULT_RANDOM, 0)}

        def check(i):
            res = run(design, vectors, ties={cfg.name: {"mutsel": i}})
            u = res.units[0]
            return u.ok, (f"{u.mismatch_count} mismatches" if not u.ok else "")

    build_s = time.perf_counter() - t0
    ok0, _ = check(0)
    if not ok0:
        raise SystemExit(f"{cfg.name}: the mutant netlist with mutsel=0 (the original) fails its testbench")
    killed, survivors = [], []
    t1 = time.perf_counter()
    for n, m in enumerate(ms.mutations, 1):
        ok, why = check(m.index)
        (survivors if ok else killed).append(m)
        if n % 10 == 0 or n == len(ms.mutations):
            say(f"  {cfg.name}: {n}/{len(ms.mutations)} mutants run, {len(killed)} killed "
                f"({time.perf_counter() - t1:.0f} s)")
    sim_s = time.perf_counter() - t1
    t2 = time.perf_counter()
    verdicts = []
    for m in survivors:
        verdict, detail = mutant_equivalence(original, ms, m.index, timeout=sat_timeout, seq=seq)
        verdicts.append((m, verdict, detail))
        say(f"  survivor {m.describe()}: {verdict} ({detail})")
    sat_s = time.perf_counter() - t2
    equivalent = sum(1 for _, v, _ in verdicts if v == EQUIVALENT)
    bounded = sum(1 for _, v, _ in verdicts if v == BOUNDED)
    open_ = [(m, v, d) for m, v, d in verdicts if v not in (EQUIVALENT, BOUNDED)]
    denominator = len(killed) + len(open_)
    score = len(killed) / denominator if denominator else 1.0
    row = {"group": group, "design": cfg.name, "mutants": len(ms.mutations), "killed": len(killed),
           "equivalent": equivalent, "bounded": bounded, "open": len(open_),
           "different": sum(1 for _, v, _ in open_ if v == DIFFERENT), "score": score,
           "target": TARGET[group], "build_s": build_s, "sim_s": sim_s, "sat_s": sat_s,
           "wall_s": time.perf_counter() - t0, "survivors": verdicts}
    say(f"{cfg.name}: {len(killed)}/{len(ms.mutations)} killed, {equivalent} proven equivalent, "
        f"{bounded} bounded-equivalent, {len(open_)} open -> score {score:.1%} (target {TARGET[group]:.0%}); "
        f"{row['wall_s']:.0f} s")
    return row


def markdown(rows: list[dict], simulator: str, wall: float) -> str:
    lines = [f"Simulator: {simulator}; total wall time {wall / 60:.1f} min.", "",
             "| design | mutants | killed | proven equivalent | bounded equiv. | survivors not proven | score | target "
             "| build + run + SAT (s) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| `{r['design']}` | {r['mutants']} | {r['killed']} | {r['equivalent']} | {r['bounded']} | "
                     f"{r['open']} | {r['score']:.1%} | {r['target']:.0%} | "
                     f"{r['build_s']:.0f} + {r['sim_s']:.0f} + {r['sat_s']:.0f} |")
    surv = [(r["design"], m, v, d) for r in rows for m, v, d in r["survivors"]]
    if surv:
        lines += ["", "Survivors:", ""]
        for name, m, v, d in surv:
            lines.append(f"- `{name}` {m.describe()}: **{v}** ({d})")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--designs", default="e4m3,e5m2,bf16,core", help="formats of the units and/or 'core'")
    p.add_argument("--mutants", type=int, default=100, help="mutants per unit (default 100)")
    p.add_argument("--core-mutants", type=int, default=100, help="mutants of the core (default 100)")
    p.add_argument("--seed", type=int, default=1, help="yosys mutate -seed (default 1)")
    p.add_argument("--sim", choices=("verilator", "icarus"), default="verilator")
    p.add_argument("--sat-timeout", type=float, default=120.0, help="seconds per SAT miter (default 120)")
    p.add_argument("--seq", type=int, default=24, help="core: cycles of the bounded/inductive proof (default 24)")
    p.add_argument("--markdown", help="also write the table and the survivors to this file")
    args = p.parse_args(argv)
    selected = [d.strip() for d in args.designs.split(",") if d.strip()]
    start = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory(prefix="lmul-hw-mutation-") as tmp:
        for group, cfg in designs(selected):
            count = args.core_mutants if group == "core" else args.mutants
            say(f"== {cfg.name}: {count} mutants on {args.sim}")
            rows.append(score_design(group, cfg, count, args.seed, args.sim, args.sat_timeout, args.seq, Path(tmp)))
    wall = time.perf_counter() - start
    text = markdown(rows, args.sim, wall)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text)
    return 0 if all(r["score"] >= r["target"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
