"""``lmul-hw synth``: every requested synthesis of one design (generic CMOS, FPGA resources, nextpnr
Fmax, netlist equivalence) as one JSON-ready report, and its plain-text table."""

from __future__ import annotations

from . import fpga
from .equivalence import equivalence
from .synthesis import synthesize_cmos, yosys_version

__all__ = ["TARGETS", "parse_targets", "synthesis_report", "format_report"]

TARGETS = ("cmos", "ice40", "ecp5", "xilinx")


def parse_targets(text: str) -> tuple[str, ...]:
    targets = tuple(t.strip() for t in text.split(",") if t.strip())
    bad = [t for t in targets if t not in TARGETS]
    if bad or not targets:
        raise ValueError(f"unknown target {', '.join(bad) or repr(text)}; choose from {', '.join(TARGETS)}")
    return targets


def synthesis_report(verilog: str, top: str, targets=TARGETS, *, dsp: bool = False, with_fmax: bool = False,
                     seed: int = 1, equiv_cfg=None, progress=None) -> dict:
    """Every requested synthesis of one design as a JSON-ready dict: CMOS numbers, FPGA resources (LUT-only,
    and DSP-mapped beside it with ``dsp``), nextpnr Fmax (``with_fmax``; iCE40 and ECP5), and the
    equivalence check of ``equiv_cfg``'s CMOS netlist (a combinational unit) with its RTL."""
    say = progress or (lambda message: None)
    report = {"design": top, "tools": {"yosys": yosys_version()}, "results": []}
    for target in targets:
        if target == "cmos":
            say(f"{top}: generic CMOS synthesis")
            r = synthesize_cmos(verilog, top)
            report["results"].append({
                "target": "cmos", "flow": "cmos2", "transistors": r.transistors,
                "logic_transistors": r.logic_transistors, "nand2_equivalents": r.nand2_equivalents,
                "cells": r.cell_count, "cell_types": r.cells, "flip_flops": r.flip_flops, "depth": r.depth})
            continue
        for mapped in ((False, True) if dsp else (False,)):
            flow = "dsp" if mapped else "lut"
            say(f"{top}: {target} synthesis ({flow})")
            row = {"target": target, "flow": flow, **fpga.synthesize_fpga(verilog, top, target, mapped).to_dict()}
            if with_fmax and fpga.FAMILIES[target].nextpnr:
                say(f"{top}: {target} place and route ({flow})")
                f = fpga.fmax(verilog, top, target, mapped, seed=seed)
                row["fmax"] = f.to_dict()
                report["tools"][fpga.FAMILIES[target].nextpnr] = f.nextpnr
            report["results"].append(row)
    if equiv_cfg is not None:
        say(f"{top}: equivalence of the CMOS netlist with the RTL")
        report["equivalence"] = equivalence(equiv_cfg).to_dict()
    return report


def format_report(report: dict) -> str:
    """The report as a plain-text table."""
    tools = "; ".join(v if v.lower().startswith(k.lower()) else f"{k} {v}" for k, v in report["tools"].items())
    lines = [f"{report['design']}   ({tools})"]
    fpga_rows = [r for r in report["results"] if r["target"] != "cmos"]
    for r in report["results"]:
        if r["target"] == "cmos":
            lines.append(f"  cmos    transistors {r['transistors']}  NAND2-eq {r['nand2_equivalents']:g}  "
                         f"gates {r['cells'] - r['flip_flops']}  flip-flops {r['flip_flops']}  depth {r['depth']}")
    if fpga_rows:
        head = f"  {'target':<7} {'flow':<4} {'LUTs':>6}  {'by size':<26} {'carry':>5} {'FFs':>5} {'DSP':>4}  " \
               f"{'other':<24} {'Fmax MHz':>9}  harness LUT/FF"
        lines.append(head)
        for r in fpga_rows:
            sizes = " ".join(f"L{k}:{v}" for k, v in r["luts_by_size"].items()) or "-"
            other = " ".join(f"{k}:{v}" for k, v in r["other"].items()) or "-"
            f = r.get("fmax")
            if f is None:
                fmax_text, harness = "-", ""
            else:
                fmax_text = f"{f['fmax_mhz']:.1f}" if f["fmax_mhz"] is not None else "no fit"
                harness = f"{f['harness']['luts']}/{f['harness']['flip_flops']}"
            lines.append(f"  {r['target']:<7} {r['flow']:<4} {r['luts']:>6}  {sizes:<26} {r['carry']:>5} "
                         f"{r['flip_flops']:>5} {r['dsp_blocks']:>4}  {other:<24} {fmax_text:>9}  {harness}")
    if any(r.get("fmax") for r in fpga_rows):
        devices = sorted({r["fmax"]["device"] + f" @ --freq {r['fmax']['target_mhz']:g}, seed {r['fmax']['seed']}"
                          for r in fpga_rows if r.get("fmax")})
        lines.append("  Fmax: nextpnr, design between the harness's registers (5 pins): " + "; ".join(devices))
        lines.extend(f"  {r['target']}: {r['fmax']['detail']}" for r in fpga_rows
                     if r.get("fmax") and r["fmax"]["detail"])
    if "equivalence" in report:
        e = report["equivalence"]
        verdict = {True: "equivalent", False: "NOT equivalent", None: "not checked"}[e["equivalent"]]
        lines.append(f"  equivalence (CMOS netlist vs RTL): {verdict} by {e['method']}"
                     f"{' (proven)' if e['proven'] else ''}: {e['detail']}")
    return "\n".join(lines)
