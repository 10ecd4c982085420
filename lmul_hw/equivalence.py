"""Is a synthesized gate netlist its RTL?  A formal proof first (a yosys miter, ABC SAT sweeping,
then ``sat -prove``: ``synth/equiv.ys``); where it does not finish in time, simulation of the netlist
against the bit-exact model (exhaustive for 8-bit formats)."""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import cache, tools
from .errors import ToolError
from .files import data_dir
from .synthesis import run_yosys, synthesize_cmos, yosys_slot
from .vectors import expected_bits

__all__ = ["EquivalenceResult", "prove_equivalence", "prove_pipeline", "simulate_equivalence", "equivalence", "equivalence_vectors",
           "PROOF_TIMEOUT", "RANDOM_VECTORS"]

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
    keys = ("proven", "mismatches", "detail")
    with yosys_slot("equiv", f"sat-{top}", verilog, top, gate, template, repr(float(timeout)), keys=keys) as s:
        if not s.cached:
            run = s.path
            (run / "gold.v").write_text(verilog)
            (run / "gate.json").write_text(gate)
            script = template.format(gold="gold.v", gate="gate.json", top=top, result="sat.txt")
            payload = _sat_verdict(script, run, timeout, "proved: miter trigger = 0 for all inputs",
                                   r"\s*\\(in_|gold_|gate_|trigger)", "counterexample: ", 8)
            for name in ("gold.v", "gate.json"):
                (run / name).unlink()
            s.publish(payload)
    return EquivalenceResult(method="sat", **s.payload)


def _sat_verdict(script: str, run: Path, timeout, proved: str, row: str, prefix: str, rows: int) -> dict:
    """Run a yosys script whose ``sat`` writes ``sat.txt`` in ``run`` and read its verdict: proven,
    not proven within ``timeout``, or a counterexample of the first ``rows`` table lines matching ``row``."""
    try:
        run_yosys(script, run, timeout=timeout)
        log = (run / "sat.txt").read_text(errors="replace")
        if "SAT proof finished - no model found: SUCCESS" not in log:
            raise ToolError("yosys", f"sat gave no verdict in {run}", log)
        return {"proven": True, "mismatches": 0, "detail": proved}
    except tools.ToolTimeout:
        return {"proven": False, "mismatches": 0, "detail": f"not proven within {timeout:g} s"}
    except ToolError:
        log = "".join(path.read_text(errors="replace") for path in (run / "yosys.log", run / "sat.txt")
                      if path.exists())
        if "model found: FAIL" not in log:
            raise
        table = [" ".join(ln.split()) for ln in log.split("model found: FAIL", 1)[1].splitlines()
                 if re.match(row, ln)]
        return {"proven": False, "mismatches": 1, "detail": prefix + "; ".join(table[:rows])}


def pipeline_miter(comb_top: str, piped_top: str, latency: int, width: int, out_width: int) -> str:
    """Verilog of a miter: the combinational unit's product delayed ``latency`` cycles beside the pipelined
    unit's (``rst`` a free input too: pipeline registers have none); ``ok`` is 1 where they agree."""
    if latency < 1:
        raise ValueError(f"a pipelined unit has latency >= 1, not {latency}")
    delay = "".join(f"    d{i} <= d{i - 1};\n" for i in range(1, latency + 1))
    regs = ", ".join(f"d{i}" for i in range(1, latency + 1))
    return (f"module pipeline_miter(input clk, input rst, input [{width - 1}:0] a, input [{width - 1}:0] b,\n"
            f"                      output ok);\n"
            f"  wire [{out_width - 1}:0] d0, piped;\n"
            f"  reg [{out_width - 1}:0] {regs};\n"
            f"  {comb_top} comb(.a(a), .b(b), .p(d0));\n"
            f"  {piped_top} pipe(.clk(clk), .rst(rst), .a(a), .b(b), .p(piped));\n"
            f"  always @(posedge clk) begin\n{delay}  end\n"
            f"  assign ok = d{latency} == piped;\n"
            f"endmodule\n")


def prove_pipeline(comb: str, comb_top: str, piped: str, piped_top: str, latency: int, width: int,
                   out_width: int, timeout: float | None = None) -> EquivalenceResult:
    """Bounded sequential equivalence of a pipelined unit with its combinational twin: for all operands
    and every start state, ``p`` of the pipelined unit in cycle t + N is the combinational product of the
    operands of cycle t (yosys ``sat -seq N+1 -prove-skip N`` on ``pipeline_miter``, after ``opt``, whose
    merging of the logic both sides compute alike from the same operands turns the bf16 multipliers'
    two-minute proof into seconds).  A feed-forward pipeline is then equal for every cycle: its output
    N cycles on depends on nothing else."""
    miter = pipeline_miter(comb_top, piped_top, latency, width, out_width)
    keys = ("proven", "mismatches", "detail")
    with yosys_slot("equiv", f"seq-{piped_top}", comb, piped, miter, repr(timeout), keys=keys) as s:
        if not s.cached:
            run = s.path
            for name, text in (("comb.v", comb), ("piped.v", piped), ("miter.v", miter)):
                (run / name).write_text(text)
            script = ("read_verilog comb.v piped.v miter.v; hierarchy -top pipeline_miter; proc; flatten; "
                      f"opt; tee -q -o sat.txt sat -verify -seq {latency + 1} -prove-skip {latency} "
                      "-prove ok 1 -show-inputs -show-outputs pipeline_miter")
            payload = _sat_verdict(script, run, timeout,
                                   f"proved: p(t + {latency}) = comb(a(t), b(t)) for all operands and states",
                                   r"\s*\d+\s+\\(a|b|rst|ok)\b", "counterexample (step signal value): ",
                                   4 * (latency + 1))
            for name in ("comb.v", "piped.v"):
                (run / name).unlink()
            s.publish(payload)
    return EquivalenceResult(method="sat-seq", **s.payload)


def equivalence_vectors(cfg, count: int = RANDOM_VECTORS, seed: int = 2410):
    """Operand pairs (a, b) for simulating a unit: all pairs for formats up to 8 bits; otherwise every pair
    of special and boundary values, then uniformly random bit patterns up to ``count`` pairs."""
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
    with yosys_slot("equiv", f"gate-{top}", Path(netlist).read_text(), top, keys=(),
                    check=cache.needs("gate.v")) as s:
        if not s.cached:
            (s.path / "netlist.json").write_text(Path(netlist).read_text())
            template = (data_dir("synth") / "gate_verilog.ys").read_text()
            run_yosys(template.format(netlist="netlist.json", top=top, output="gate.v"), s.path)
            (s.path / "netlist.json").unlink()
            s.publish({})
    gate_v = s.path / "gate.v"
    with tempfile.TemporaryDirectory(prefix="lmul-hw-gatesim-") as tmp:
        work = Path(tmp)
        shutil.copy(gate_v, work / "gate.v")
        digits = (2 * width + 3) // 4
        words = (a.astype(np.uint64) << np.uint64(width)) | b.astype(np.uint64)
        (work / "in.hex").write_text("\n".join(f"{int(w):0{digits}x}" for w in words) + "\n")
        (work / "tb.v").write_text(_TESTBENCH.format(wa=width - 1, wp=out_width - 1, wab=2 * width - 1,
                                                     last=len(a) - 1, top=top))
        tools.run(["iverilog", "-g2005", "-o", "sim.vvp", "tb.v", "gate.v"], cwd=work)
        tools.run(["vvp", "-n", "sim.vvp"], cwd=work)
        text = (work / "out.hex").read_text().split()
    if any("x" in t or "z" in t for t in text):
        raise ToolError("vvp", "the gate netlist produced x or z outputs", "\n".join(text[:5]))
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
    if simulator not in ("auto", "netlist", "iverilog"):
        raise ValueError(f"simulator must be auto, netlist or iverilog, not {simulator!r}")
    a, b, which = equivalence_vectors(cfg, count)
    expected = expected_bits(cfg, a, b).astype(np.uint64)
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
    from .verilog import verilog_text
    if getattr(cfg, "latency", None) != 0:
        raise ValueError("the equivalence check is for combinational units (latency 0)")
    verilog = verilog_text(cfg)
    cmos = synthesize_cmos(verilog, cfg.name)
    proof = prove_equivalence(verilog, cfg.name, cmos.netlist, timeout)
    if proof.proven or proof.mismatches or not simulate:
        return proof
    sim = simulate_equivalence(cfg, cmos.netlist, count, simulator)
    return EquivalenceResult(method=sim.method, proven=False, detail=f"{proof.detail}; {sim.detail}",
                             mismatches=sim.mismatches, vectors=sim.vectors)


