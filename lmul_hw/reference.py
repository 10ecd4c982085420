"""The reference configurations whose Verilog (and its Verilator lint waivers, ``.vlt``) is kept in
``rtl/`` (and checked against the generator by ``tests/test_rtl_reference.py``).  Regenerate with ``python -m lmul_hw.reference``."""

from __future__ import annotations

import sys
from pathlib import Path

from .config import CoreConfig, FPMulConfig, LMulConfig

#: (format, L-Mul k) of the reference units: the paper's fp8 formats and bf16.
REFERENCE_FORMATS = (("e4m3", 3), ("e5m2", 2), ("bf16", 7))


#: formats whose exact multiplier (full subnormals) is also kept at latency 3, the pipelining target's depth
PIPELINE_FORMATS = ("e4m3", "bf16")


def reference_units():
    """L-Mul and its exact twins (full and ftz subnormals), combinational and with latency 2; the exact
    multipliers of ``PIPELINE_FORMATS`` also with latency 3."""
    out = []
    for fmt, k in REFERENCE_FORMATS:
        for latency in (0, 2):
            out.append(LMulConfig(fmt, k=k, latency=latency))
            out.append(FPMulConfig(fmt, subnormals="full", latency=latency))
            out.append(FPMulConfig(fmt, subnormals="ftz", latency=latency))
        if fmt in PIPELINE_FORMATS:
            out.append(FPMulConfig(fmt, subnormals="full", latency=3))
    return out


def reference_configs():
    """The units and a 4x4 e4m3 L-Mul core with exact accumulation for tiles of up to 256 beats."""
    return reference_units() + [CoreConfig(rows=4, cols=4, mul="lmul", fmt="e4m3", acc="exact", depth=256)]


def write_all(directory) -> list[Path]:
    """Write each reference configuration's ``NAME.v`` and its lint waivers ``NAME.vlt``."""
    from .verilog import lint_waiver_path, write_verilog
    directory = Path(directory)
    out = []
    for cfg in reference_configs():
        path = write_verilog(cfg, directory / f"{cfg.name}.v")
        out += [path, lint_waiver_path(path)]
    return out


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "rtl"
    for path in write_all(target):
        print(path)
