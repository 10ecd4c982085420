"""Area targets of the synthesized designs, each a ratio or count measured in this run with the
pinned flows (synth/cmos.ys; yosys synth_xilinx LUT-only):

  1. L-Mul e4m3 (default options) <= 1.9x the transistors of a bare 7-bit adder (`p = a + b`, 8-bit sum)
  2. the exact e4m3 ftz multiplier <= 1,150 transistors
  3. L-Mul e4m3 on Xilinx 7-series, LUT-only, <= 24 LUTs (26 before the offset's row went into
     the operands; docs/luts.md)
  4. transistors per PE of an 8x8 core within 10% of a 4x4 core's (e4m3, lmul, exact, K_max 256)

    python benchmarks/bench_synth.py [--skip-cores]

Synthesis results are cached (``lmul-hw cache info`` shows where); the first 8x8 core run
takes a few minutes.  Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lmul_hw.config import CoreConfig, FPMulConfig, LMulConfig  # noqa: E402
from lmul_hw.fpga import synthesize_fpga  # noqa: E402
from lmul_hw.synthesis import synthesize_cmos, yosys_version  # noqa: E402
from lmul_hw.verilog import verilog_text  # noqa: E402

ADDER = "module add7(input [6:0] a, input [6:0] b, output [7:0] p);\n  assign p = a + b;\nendmodule\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-cores", action="store_true", help="skip target 4 (the 4x4 and 8x8 cores)")
    args = parser.parse_args()
    print(f"yosys: {yosys_version()}")
    rows = []

    def cmos(cfg):
        start = time.monotonic()
        result = synthesize_cmos(verilog_text(cfg), cfg.name)
        print(f"  {cfg.name}: {result.transistors:,} transistors ({time.monotonic() - start:.1f} s)", flush=True)
        return result

    adder = synthesize_cmos(ADDER, "add7").transistors
    lmul = cmos(LMulConfig("e4m3")).transistors
    rows.append(("L-Mul e4m3 / 7-bit adder, transistors", lmul / adder, "<= 1.9", lmul / adder <= 1.9,
                 f"{lmul} / {adder}"))
    ftz = cmos(FPMulConfig("e4m3", subnormals="ftz")).transistors
    rows.append(("exact e4m3 ftz multiplier, transistors", ftz, "<= 1150", ftz <= 1150, ""))
    luts = synthesize_fpga(verilog_text(LMulConfig("e4m3")), "lmul_e4m3_k3_c1", "xilinx").luts
    rows.append(("L-Mul e4m3, Xilinx 7-series LUTs (LUT-only)", luts, "<= 24", luts <= 24, ""))
    if not args.skip_cores:
        per_pe = {}
        for n in (4, 8):
            cfg = CoreConfig(n, n, "lmul", "e4m3", "exact", 256)
            per_pe[n] = cmos(cfg).transistors / (n * n)
        ratio = per_pe[8] / per_pe[4]
        rows.append(("transistors per PE, 8x8 core / 4x4 core", ratio, "0.9 .. 1.1", 0.9 <= ratio <= 1.1,
                     f"{per_pe[8]:,.0f} / {per_pe[4]:,.0f}"))

    print(f"\n{'target':48} {'measured':>10} {'goal':>12}  result  detail")
    for name, value, goal, ok, detail in rows:
        shown = f"{value:.3f}" if isinstance(value, float) else f"{value:,}"
        print(f"{name:48} {shown:>10} {goal:>12}  {'PASS' if ok else 'FAIL':6}  {detail}")
    return 0 if all(r[3] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
