"""Fmax of the whole 4x4 e4m3 L-Mul core with exact accumulation (K_max 256) on ECP5 LFE5U-85F
(issue 12, section 4): target >= 165 MHz, the median over nextpnr placement seeds 1, 2, 3.

    python benchmarks/bench_core_fmax.py [--seeds 1,2,3]

Each seed is one nextpnr-ecp5 run of the core inside the 5-pin harness (``lmul_hw.fpga.fmax``,
about 1-2 min each on the project machine); results are cached (``lmul-hw cache info``).  The
ratio is against the design before the core was pipelined for Fmax (commit c0a684e: two-stage PE,
two-stage Kulisch readout), measured with the same flow and seeds: 58.41, 56.37, 58.20 MHz,
median 58.20 MHz.  Exits 1 when the target is missed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lmul_hw import fpga  # noqa: E402
from lmul_hw.config import CoreConfig  # noqa: E402
from lmul_hw.verilog import verilog_text  # noqa: E402

TARGET_MHZ = 165.0
#: The same core at commit c0a684e (before this pipelining), seeds 1, 2, 3, measured 2026-12-03.
BEFORE_MHZ = {1: 58.41, 2: 56.37, 3: 58.20}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1,2,3", help="nextpnr placement seeds (default 1,2,3)")
    args = parser.parse_args()
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        parser.error(f"--seeds: not a comma-separated list of integers: {args.seeds!r}")
    cfg = CoreConfig(4, 4, "lmul", "e4m3", "exact", 256)
    verilog = verilog_text(cfg)
    design = fpga.synthesize_fpga(verilog, cfg.name, "ecp5")
    print(f"{cfg.name} on {fpga.FAMILIES['ecp5'].device_name}: {design.luts} LUT4, {design.carry} CCU2C, "
          f"{design.flip_flops} FFs ({fpga.nextpnr_version('ecp5')})")
    print("| seed | Fmax MHz | before MHz | ratio |\n|---:|---:|---:|---:|")
    got = []
    for seed in seeds:
        start = time.monotonic()
        r = fpga.fmax(verilog, cfg.name, "ecp5", seed=seed)
        if r.fmax_mhz is None:
            print(f"seed {seed}: {r.detail}")
            return 1
        got.append(r.fmax_mhz)
        before = BEFORE_MHZ.get(seed)
        ratio = f"{r.fmax_mhz / before:.2f}x" if before else "-"
        print(f"| {seed} | {r.fmax_mhz:.1f} | {before if before else '-'} | {ratio} |"
              f"   ({time.monotonic() - start:.0f} s)", flush=True)
    median = statistics.median(got)
    before = statistics.median(BEFORE_MHZ[s] for s in seeds if s in BEFORE_MHZ) if set(seeds) <= set(BEFORE_MHZ) else None
    ratio = f"{median / before:.2f}x" if before else "-"
    ok = median >= TARGET_MHZ
    print(f"| median | **{median:.1f}** | {before if before else '-'} | {ratio} |")
    print(f"target: median >= {TARGET_MHZ:g} MHz: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
