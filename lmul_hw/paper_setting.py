"""The paper's 80% claim, tested where the paper makes it (issue 10 §4; docs/energy.md).

Luo & Sun (arXiv 2410.00907, abstract): "applying the L-Mul operation in tensor processing hardware
can potentially reduce 95% energy cost by element-wise floating point tensor multiplications and 80%
energy cost of dot products."  Their setting is fp32 arithmetic: the multiplier they replace is an
fp32 one (3.7 pJ against 0.1 pJ for an int32 add: Horowitz, ISSCC 2014, 45 nm, the source of their
Table 1), and their L-Mul of two fp32 numbers works on the int32 bit patterns with the whole
mantissa (their Fig. 2), i.e. k = 23.  Here the same comparison runs on generated hardware with fp32
accumulation, for fp32 operands (L-Mul k = 23) and for bf16 operands (k = 7, again the whole
mantissa), each against the exact multiplier that flushes subnormals as L-Mul does
(``subnormals="ftz"``), on Gaussian operands, at four levels:

1. the multiplier alone (element-wise multiplication: the exact product, unrounded);
2. the multiplier, the product's rounding to fp32 and the fp32 adder, without registers
   (an element-wise multiply-add);
3. a processing element per MAC (a dot product: registers and their clock load included);
4. an R x R tensor core per MAC.

Levels 1 and 2 are parts of level 3, from the same gate-level simulation of the PE: every gate is
counted with the register it feeds (``energy.part_energy``): the product register's fan-in cone is
the multiplier, the accumulator's and the result register's the rounding and the adder.  So the
element-wise and the dot-product figures differ by exactly the registers, their clock and a few
control gates.  Every measurement is kept in the result cache (kind ``energy``)."""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

#: The abstract's words (arXiv 2410.00907v2, 2 Oct 2024).
PAPER_WORDS = ("applying the L-Mul operation in tensor processing hardware can potentially reduce 95% energy cost "
               "by element-wise floating point tensor multiplications and 80% energy cost of dot products")
#: A level "holds" the claim when it saves at least this much: 80% less ten points, the threshold the
#: e4m3 check of the claim uses (lmul_hw.compare.dot_product_claim); element-wise, the paper's 95% less
#: five (lmul_hw.compare.paper_claims).
HOLDS_FROM = 0.70
HOLDS_FROM_ELEMENTWISE = 0.90
#: Horowitz, ISSCC 2014 (45 nm, 0.9 V), the source of the paper's Table 1: fp32 multiply and add, int32 add (pJ).
PAPER_PJ = {"fp32 mul": 3.7, "fp32 add": 0.9, "int32 add": 0.1}

FORMATS = ("fp32", "bf16")
DEPTH = 256
MULS = ("lmul", "fpmul")
LEVELS = ("multiplier", "datapath", "pe", "core")
ADDER = "fp32 rounding + adder"
#: Register names of lmul_hw.hw.pe whose fan-in logic is each part of the PE (the product register
#: separates the first two cones, the product's conversion to fp32 being the adder's; the third is
#: the operand forwarding's reset gating and the control).
PE_LOGIC = {"multiplier": ("product_q",), ADDER: ("acc", "result", "product_fp32_q"),
            "forwarding + control": ("a_out", "b_out", "ctl_q", "ctl_qq", "ctl_out", "done")}
PE_PARTS = tuple(PE_LOGIC) + ("other logic", "registers", "clock")
#: Beats of a dot product (tile) in every level's stimulus: pe_energy's and core_energy's default.
TILE = 32
#: Independent streams of the core's simulation (as lmul_hw.compare measures cores).
CORE_LANES = 16

#: The modules whose code makes a measurement (stimuli, simulator, energy model); what this module
#: decides (designs, parts, stimulus sizes) is in each cache key as Verilog and parameters.
_SOURCES = ("energy.py", "netlist.py", "tiles.py", "formats.py")


def core_config(fmt: str, mul: str, size: int = 1):
    """The paper-setting core: fp32 accumulation, L-Mul with the whole mantissa or the exact ftz multiplier."""
    from .config import CoreConfig
    return CoreConfig(size, size, mul, fmt, "fp32", DEPTH, **({"subnormals": "ftz"} if mul == "fpmul" else {}))


def variant(fmt: str, mul: str) -> str:
    """A multiplier's name in the tables: L-Mul with its k, or the exact one."""
    cfg = core_config(fmt, mul)
    return f"L-Mul k={cfg.k}" if mul == "lmul" else "exact (ftz)"


@dataclass(frozen=True)
class Measurement:
    """One design (a PE or a core) of one configuration: pJ per MAC, its clock part, and for a PE its
    PE_PARTS (pJ per MAC, adding up to ``pj``)."""
    fmt: str
    mul: str
    design: str                                    # "pe" or "core"
    top: str
    pj: float
    clock_pj: float
    transistors: int
    parts: dict = field(default_factory=dict)


@dataclass(frozen=True)
class PaperSetting:
    """All measurements of the paper's setting, and what they say about its claim."""
    measurements: tuple
    core_size: int | None
    vectors: int
    core_cycles: int

    def get(self, fmt: str, mul: str, design: str) -> Measurement | None:
        """The measurement of one PE or core (None if it was not measured)."""
        return next((m for m in self.measurements if (m.fmt, m.mul, m.design) == (fmt, mul, design)), None)

    @property
    def formats(self) -> list[str]:
        return list(dict.fromkeys(m.fmt for m in self.measurements))

    @property
    def levels(self) -> list[str]:
        return [lv for lv in LEVELS if lv != "core" or any(m.design == "core" for m in self.measurements)]

    def pj(self, fmt: str, mul: str, level: str) -> float:
        """Energy per operation of one level: per multiplication, multiply-add or MAC."""
        if level == "core":
            return self.get(fmt, mul, "core").pj
        pe = self.get(fmt, mul, "pe")
        return {"multiplier": pe.parts["multiplier"], "datapath": pe.parts["multiplier"] + pe.parts[ADDER],
                "pe": pe.pj}[level]

    def saving(self, fmt: str, level: str) -> float:
        """1 - L-Mul / exact at one level."""
        return 1 - self.pj(fmt, "lmul", level) / self.pj(fmt, "fpmul", level)

    def label(self, level: str) -> str:
        """A level's name in the tables and the verdict."""
        return {"multiplier": "multiplier alone", "datapath": "multiplier + fp32 adder, no registers",
                "pe": "processing element", "core": f"{self.core_size}x{self.core_size} core"}[level]

    def holds(self, fmt: str, level: str) -> bool:
        """Whether a level saves what the paper says: 95% element-wise (the multiplier alone; at least
        HOLDS_FROM_ELEMENTWISE), 80% for a multiply-add or a MAC (at least HOLDS_FROM)."""
        return self.saving(fmt, level) >= (HOLDS_FROM_ELEMENTWISE if level == "multiplier" else HOLDS_FROM)

    def verdict(self) -> str:
        """The plain answer, computed from the numbers: where the paper's figures hold and where not."""
        sentences = []
        dot = [lv for lv in ("pe", "core") if lv in self.levels]
        per_mac = "; ".join(f"{f}: {self._figures(f, dot)}" for f in self.formats)
        held = [(f, lv) for f in self.formats for lv in dot if self.holds(f, lv)]
        if not held:
            sentences.append(f"The paper's 80% for dot products does not hold per MAC of the hardware that computes "
                             f"them ({per_mac}).")
        elif len(held) == len(dot) * len(self.formats):
            sentences.append(f"The paper's 80% for dot products holds per MAC of the hardware ({per_mac}).")
        else:
            sentences.append("The paper's 80% for dot products holds per MAC only for "
                             + " and ".join(f"{f} {self.label(lv)}" for f, lv in held) + f" ({per_mac}).")
        bare = ", ".join(f"{_pct(self.saving(f, 'datapath'))} ({f})" for f in self.formats)
        if all(self.holds(f, "datapath") for f in self.formats):
            sentences.append(f"The arithmetic alone, multiplier and fp32 adder without registers, does save that "
                             f"much: {bare}.")
        elif any(self.holds(f, "datapath") for f in self.formats):
            ok = [f for f in self.formats if self.holds(f, "datapath")]
            sentences.append(f"The arithmetic alone, multiplier and fp32 adder without registers, saves that much "
                             f"only with {' and '.join(ok)} operands: {bare}.")
        else:
            sentences.append(f"Even the arithmetic alone, multiplier and fp32 adder without registers, falls short: "
                             f"{bare}, where Horowitz's figures give the paper {_pct(paper_multiply_add())}.")
        elementwise = [f for f in self.formats if self.holds(f, "multiplier")]
        figures = ", ".join(f"{_pct(self.saving(f, 'multiplier'))} ({f})" for f in self.formats)
        if len(elementwise) == len(self.formats):
            sentences.append(f"Element-wise, the multiplier alone, the paper's 95% holds: {figures}.")
        elif elementwise:
            sentences.append(f"Element-wise, the multiplier alone, the paper's 95% holds with "
                             f"{' and '.join(elementwise)} operands only: {figures}.")
        else:
            sentences.append(f"Element-wise, the multiplier alone, the paper's 95% does not hold: {figures}.")
        return " ".join(sentences)

    def _figures(self, fmt: str, levels) -> str:
        return ", ".join(f"{self.label(lv)} {_pct(self.saving(fmt, lv))}" for lv in levels)

    def shares(self, fmt: str, mul: str) -> dict[str, float]:
        """Each PE part's share of the PE's energy per MAC."""
        pe = self.get(fmt, mul, "pe")
        return {part: value / pe.pj for part, value in pe.parts.items()}

    def to_dict(self) -> dict:
        return {"claim": PAPER_WORDS, "holds_from": {"elementwise": HOLDS_FROM_ELEMENTWISE, "dot": HOLDS_FROM},
                "core_size": self.core_size, "vectors": self.vectors, "core_cycles": self.core_cycles,
                "measurements": [asdict(m) for m in self.measurements],
                "pj": {f: {m: {lv: self.pj(f, m, lv) for lv in self.levels} for m in MULS} for f in self.formats},
                "savings": {f: {lv: self.saving(f, lv) for lv in self.levels} for f in self.formats},
                "verdict": self.verdict()}

    def markdown(self) -> str:
        """The report section: the claim, the tables, where the energy goes and the verdict."""
        p = PAPER_PJ
        lines = [f"Luo & Sun, arXiv 2410.00907, abstract: \"{PAPER_WORDS}\". Their setting is fp32: Horowitz's 45 nm "
                 f"figures (ISSCC 2014, the source of their Table 1) put an fp32 multiply at {p['fp32 mul']} pJ and an "
                 f"int32 add (their L-Mul of two fp32 numbers, k = 23) at {p['int32 add']} pJ, so with the fp32 add "
                 f"({p['fp32 add']} pJ) that a dot "
                 f"product keeps, a multiply-add saves 1 - ({p['int32 add']} + {p['fp32 add']}) / ({p['fp32 mul']} + "
                 f"{p['fp32 add']}) = {paper_multiply_add():.0%} (our reading of where 80% comes from; registers are not in it).",
                 "",
                 "Here: fp32 accumulation (SPEC §4), L-Mul with the whole mantissa against the exact multiplier that "
                 "flushes subnormals like L-Mul does, Gaussian operands, dot products of "
                 f"{TILE} terms, zero-delay switching energy at the 45 nm scale ({self.vectors:,} MACs of each PE"
                 + (f", {self.core_cycles} cycles of {CORE_LANES} streams of each core" if self.core_size else "")
                 + "). Element-wise: the PE's multiplier alone (the exact product, unrounded) and its multiplier "
                 "with the product's rounding to fp32 and the fp32 adder, without registers, both from the PE's "
                 "own simulation (each gate counted with the register it feeds). Dot product: per MAC of a "
                 "processing element" + (" and of a core" if self.core_size else "")
                 + ", registers and clock included.", ""]
        head = ["level"] + [f"{f} {variant(f, m)} pJ" for f in self.formats for m in MULS] + \
               [f"{f} saved" for f in self.formats]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for lv in self.levels:
            cells = [self.label(lv) + (" (per MAC)" if lv in ("pe", "core") else "")]
            cells += [f"{self.pj(f, m, lv):.4f}" for f in self.formats for m in MULS]
            cells += [f"**{_pct(self.saving(f, lv))}**" for f in self.formats]
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", "Where a PE's energy per MAC goes (pJ, share of the PE in brackets; the product register's "
                      "fan-in is the multiplier, the accumulator's and result register's the rounding to fp32 and the "
                      "adder, the operand and control registers' the forwarding + control logic, other logic any "
                      "gate left; registers = their outputs' toggles, clock = their clock load; the parts add up to "
                      "the PE):", ""]
        head = ["PE"] + list(PE_PARTS) + ["total"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for f in self.formats:
            for m in MULS:
                pe = self.get(f, m, "pe")
                share = self.shares(f, m)
                lines.append("| " + " | ".join([f"{f} {variant(f, m)}"]
                                               + [f"{pe.parts[k]:.4f} ({share[k]:.0%})" for k in PE_PARTS]
                                               + [f"{pe.pj:.4f}"]) + " |")
        lines += ["", self.where_it_goes(), "", "**Verdict:** " + self.verdict()]
        return "\n".join(lines)

    def where_it_goes(self) -> str:
        """Which parts take the energy, from the PE breakdown (and the core's clock share)."""
        out = []
        for f in self.formats:
            ex, lm = self.shares(f, "fpmul"), self.shares(f, "lmul")
            out.append(f"{f}: the multiplier takes {ex['multiplier']:.0%} of the exact PE's energy per MAC and L-Mul "
                       f"removes {self.saving(f, 'multiplier'):.0%} of that; the rounding and fp32 adder take {ex[ADDER]:.0%}, the "
                       f"registers and their clock {ex['registers'] + ex['clock']:.0%}. In the L-Mul PE these two take "
                       f"{lm[ADDER]:.0%} and {lm['registers'] + lm['clock']:.0%}, the multiplier {lm['multiplier']:.0%}.")
        if "core" in self.levels:
            clock = [self.get(f, m, "core").clock_pj / self.get(f, m, "core").pj for f in self.formats for m in MULS]
            out.append(f"In the {self.core_size}x{self.core_size} cores the clock load alone is "
                       f"{min(clock):.0%}-{max(clock):.0%} of the energy per MAC (skew, drain and FIFO registers "
                       "beside the PEs').")
        return " ".join(out)


def paper_multiply_add() -> float:
    """What Horowitz's figures in the paper's Table 1 give for a multiply-add: fp32 multiply + fp32 add
    against int32 add (L-Mul) + fp32 add."""
    p = PAPER_PJ
    return 1 - (p["int32 add"] + p["fp32 add"]) / (p["fp32 mul"] + p["fp32 add"])


def _pct(x: float) -> str:
    return f"{x:.1%}"


def measure(formats=FORMATS, *, core_size: int | None = 2, vectors: int = 8192, core_cycles: int = 96,
            seed: int = 0, jobs: int | None = None, progress=None) -> PaperSetting:
    """Measure the PE and the ``core_size`` x ``core_size`` core (None: no core) of ``formats``, L-Mul
    and exact, ``jobs`` at a time (default one per core).  Cached (kind ``energy``)."""
    from .config import ARRAY_FORMATS
    from .formats import get_format
    formats = [get_format(f).name for f in formats]
    for f in formats:
        if f not in ARRAY_FORMATS:
            raise ValueError(f"{f} is not an operand format of a PE (use {', '.join(ARRAY_FORMATS)})")
    if isinstance(vectors, bool) or not isinstance(vectors, int) or vectors < 1:
        raise ValueError(f"vectors must be an integer >= 1, not {vectors!r}")
    if isinstance(core_cycles, bool) or not isinstance(core_cycles, int) or core_cycles < 1:
        raise ValueError(f"core_cycles must be an integer >= 1, not {core_cycles!r}")
    designs = ("core", "pe") if core_size else ("pe",)          # the longest first
    tasks = [(f, m, d) for d in designs for f in formats for m in MULS]
    options = dict(core_size=core_size, vectors=vectors, core_cycles=core_cycles, seed=seed, progress=progress)
    workers = max(1, min(jobs or os.cpu_count() or 1, len(tasks)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        done = list(pool.map(lambda t: _measure_one(*t, **options), tasks))
    done.sort(key=lambda x: (formats.index(x.fmt), MULS.index(x.mul), x.design != "pe"))
    return PaperSetting(tuple(done), core_size or None, vectors, core_cycles)


def _measure_one(fmt, mul, design, *, core_size, vectors, core_cycles, seed, progress) -> Measurement:
    from . import energy
    from .cache import source_digest
    from .synthesis import yosys_slot
    from .verilog import verilog_text
    core = core_config(fmt, mul, core_size if design == "core" else 1)
    cfg = core if design == "core" else core.pe
    params = {"vectors": vectors, "seed": seed, "dist": "gaussian", "logic": PE_LOGIC} if design == "pe" else \
        {"cycles": core_cycles, "lanes": CORE_LANES, "seed": seed, "dist": "gaussian"}
    with yosys_slot("energy", cfg.name, verilog_text(cfg), json.dumps(params, sort_keys=True), energy.PJ_PER_UNIT,
                    energy.CLOCK_WEIGHT, source_digest(*_SOURCES), keys=("pj", "clock_pj", "transistors", "parts")) as entry:
        if progress is not None:
            progress(f"paper setting: {cfg.name}" + (" (cached)" if entry.cached else ""))
        if not entry.cached:
            parts = {}
            if design == "pe":
                res, parts = energy.pe_energy_parts(cfg, PE_LOGIC, vectors=vectors, seed=seed)
            else:
                res = energy.core_energy(cfg, cycles=core_cycles, lanes=CORE_LANES, seed=seed)
            entry.publish({"pj": res.pj_per_op, "clock_pj": res.clock_pj_per_op, "transistors": res.transistors,
                           "parts": parts})
        d = entry.payload
    return Measurement(fmt, mul, design, cfg.name, d["pj"], d["clock_pj"], d["transistors"], d["parts"])


def flow_section(out_dir, *, formats=FORMATS, core_size: int | None = 2, vectors: int = 8192,
                 core_cycles: int = 96, progress=None) -> str:
    """Measure (or read back) the paper setting, write ``paper_setting.json`` into ``out_dir`` (created if
    needed) and return the report section's Markdown."""
    from .files import atomic_write, output_dir
    result = measure(formats, core_size=core_size, vectors=vectors, core_cycles=core_cycles, progress=progress)
    atomic_write(output_dir(out_dir) / "paper_setting.json", json.dumps(result.to_dict(), indent=2))
    return result.markdown()
