"""Bitstream builds of ``lmul-hw fpga build`` on both boards: seconds, Fmax, logic used and image size.

    python benchmarks/bench_board.py [--design "lmul --format e4m3"]... [--board icebreaker|ulx3s-85f]...

The iCEBreaker build of the default design also runs in CI (tests/test_board.py); the ULX3S-85F
(ECP5) build runs only here.  Checks (a miss exits with status 1): every build meets its board's
clock, and the iCE40 build takes at most 8 minutes (the issue's CI budget).  The builds run in a
directory under the current one (YoWASP tools see no /tmp), removed at the end.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lmul_hw.board import BOARDS, build_bitstream  # noqa: E402
from lmul_hw.cli import design_config  # noqa: E402
from lmul_hw.errors import VerificationFailed  # noqa: E402

ICE40_BUDGET_S = 8 * 60


def _logic(out: Path, summary: dict) -> str:
    """nextpnr's count of logic cells (iCE40 LCs, ECP5 slices' LUT4s and flip-flops) from its report."""
    used = json.loads((out / f"{summary['top']}.report.json").read_text()).get("utilization", {})
    keys = ("ICESTORM_LC",) if "ICESTORM_LC" in used else ("TRELLIS_COMB", "TRELLIS_FF")
    return ", ".join(f"{k} {used[k]['used']}/{used[k]['available']}" for k in keys if k in used)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--design", action="append", help='unit in generate\'s syntax (default "lmul --format e4m3")')
    parser.add_argument("--board", action="append", choices=tuple(BOARDS), help="board (default: both)")
    args = parser.parse_args()
    designs = args.design or ["lmul --format e4m3"]
    boards = args.board or list(BOARDS)
    work = Path(tempfile.mkdtemp(prefix=".bench-board-", dir="."))
    failed = False
    print("| design | board | seconds | Fmax MHz | clock MHz | logic | image bytes | check |")
    print("|---|---|---|---|---|---|---|---|")
    try:
        for design in designs:
            cfg = design_config(design)
            for name in boards:
                out = work / f"{cfg.name}-{name}"
                started = time.monotonic()
                try:
                    summary = build_bitstream(cfg, design, name, out)
                    ok = True
                except VerificationFailed as exc:
                    summary, ok = json.loads((out / "build.json").read_text()), False
                    print(f"  {exc}", file=sys.stderr)
                seconds = time.monotonic() - started
                if BOARDS[name].family == "ice40" and seconds > ICE40_BUDGET_S:
                    ok = False
                image = out / summary["bitstream"] if summary["bitstream"] else None
                failed |= not ok
                print(f"| `{design}` | {name} | {seconds:.1f} | {summary['fmax_mhz']:.1f} | {summary['clock_mhz']:g} | "
                      f"{_logic(out, summary)} | {image.stat().st_size if image else '-'} | "
                      f"{'PASS' if ok else 'FAIL'} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
