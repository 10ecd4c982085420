"""L-Mul against exact multipliers, side by side: area (CMOS and FPGA), speed, energy and accuracy
for units, a processing element and tensor cores, and the paper's claims checked with these numbers.

Every number belongs to a design that the same run generated from a configuration and that is
verified elsewhere (the equivalence column says how its netlist was checked)."""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .config import CoreConfig, FPMulConfig, LMulConfig, kind_of
from .reference import REFERENCE_FORMATS
from .verilog import verilog_text

FAMILIES = ("ice40", "ecp5", "xilinx")
FMAX_FAMILIES = ("ice40", "ecp5")
DEFAULT_FORMATS = ("e4m3", "e5m2", "bf16")


@dataclass(frozen=True)
class Design:
    """One design of the comparison: what it is, and the configuration it is generated from."""
    group: str          # "e4m3", "PE e4m3", "core 4x4 e4m3", ...
    variant: str        # "L-Mul k=3", "exact ftz", "exact full"
    cfg: object         # LMulConfig, FPMulConfig, PEConfig or CoreConfig

    @property
    def kind(self) -> str:
        """"unit", "pe" or "core" (lmul_hw.config.Kind.role)."""
        return kind_of(self.cfg).role

    @property
    def top(self) -> str:
        return self.cfg.name

    @property
    def pes(self) -> int:
        """Processing elements (multiply-accumulates per cycle): R x C of a core, 1 otherwise."""
        return self.cfg.rows * self.cfg.cols if self.kind == "core" else 1

    def verilog(self) -> str:
        return verilog_text(self.cfg)

    def registered(self) -> Design:
        """The clocked twin that place and route can time (units: latency 2)."""
        if self.kind != "unit":
            return self
        cfg = type(self.cfg)(**{**_fields(self.cfg), "latency": 2, "name": None})
        return Design(self.group, self.variant, cfg)

    @property
    def label(self) -> str:
        return f"{self.group} {self.variant}"


def _fields(cfg) -> dict:
    d = cfg.to_dict()
    d.pop("type")
    return d


def unit_designs(formats=DEFAULT_FORMATS) -> list[Design]:
    ks = dict(REFERENCE_FORMATS)
    out = []
    for fmt in formats:
        k = ks.get(fmt)
        out.append(Design(fmt, f"L-Mul k={k}" if k else "L-Mul", LMulConfig(fmt, k=k)))
        out.append(Design(fmt, "exact ftz", FPMulConfig(fmt, subnormals="ftz")))
        out.append(Design(fmt, "exact full", FPMulConfig(fmt, subnormals="full")))
    return out


def array_designs(sizes=(4,), fmt: str = "e4m3", depth: int = 256) -> list[Design]:
    """A PE and R x R cores, L-Mul against the exact ftz multiplier, exact accumulation."""
    out = []
    for mul, variant, options in (("lmul", "L-Mul", {}), ("fpmul", "exact ftz", {"subnormals": "ftz"})):
        pe = CoreConfig(1, 1, mul, fmt, "exact", depth, **options).pe
        out.append(Design(f"PE {fmt}", variant, pe))
        for n in sizes:
            out.append(Design(f"core {n}x{n} {fmt}", variant, CoreConfig(n, n, mul, fmt, "exact", depth, **options)))
    return out


@dataclass
class Row:
    """The measured numbers of one design (None: not measured in this run)."""
    design: Design
    values: dict = field(default_factory=dict)

    def get(self, key):
        return self.values.get(key)


def _progress(progress, message):
    if progress:
        progress(message)


def measure(designs, *, fpga=True, dsp=False, fmax=True, energy=True, accuracy=True, equivalence=True,
            energy_vectors=8192, core_cycles=96, jobs=None, progress=None) -> list[Row]:
    """Run every requested flow on every design, ``jobs`` designs at a time (default: one per core;
    the tools run as separate processes and their cache is safe for concurrent use)."""
    options = dict(fpga=fpga, dsp=dsp, fmax=fmax, energy=energy, accuracy=accuracy, equivalence=equivalence,
                   energy_vectors=energy_vectors, core_cycles=core_cycles, progress=progress)
    tagged = [(f"[{n}/{len(designs)}] {d.label}", d) for n, d in enumerate(designs, 1)]
    workers = max(1, min(jobs or os.cpu_count() or 1, len(designs)))
    if workers == 1:
        return [_measure_one(d, tag, **options) for tag, d in tagged]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda item: _measure_one(item[1], item[0], **options), tagged))


def _measure_one(d: Design, tag: str, *, fpga, dsp, fmax, energy, accuracy, equivalence, energy_vectors,
                 core_cycles, progress) -> Row:
    from . import energy as energy_mod
    from .fpga import fmax as run_fmax
    from .fpga import synthesize_fpga
    from .equivalence import equivalence as check_equivalence
    from .synthesis import synthesize_cmos
    v, top = d.verilog(), d.top
    row = Row(d)
    _progress(progress, f"{tag}: CMOS synthesis")
    cmos = synthesize_cmos(v, top)
    macs = d.pes
    row.values.update(transistors=cmos.transistors, nand2=cmos.nand2_equivalents, depth=cmos.depth,
                      cells=cmos.cell_count, flip_flops=cmos.flip_flops, macs=macs)
    if equivalence and d.kind == "unit":
        _progress(progress, f"{tag}: netlist equivalence")
        eq = check_equivalence(d.cfg)
        row.values["equivalence"] = eq.method if eq.equivalent else f"{eq.method}: FAILED"
        if eq.equivalent is False:
            from .errors import VerificationFailed
            raise VerificationFailed(f"{top}: CMOS netlist differs from its RTL ({eq.detail})")
    if fpga:
        for fam in FAMILIES:
            if d.kind == "core" and fam == "ice40" and d.cfg.rows > 2:
                continue        # a 4x4 core is far beyond an iCE40 UP5K; synthesis alone takes minutes
            _progress(progress, f"{tag}: {fam} LUT-only")
            row.values[f"{fam}_luts"] = synthesize_fpga(v, top, fam, dsp=False).luts
            if dsp:
                r = synthesize_fpga(v, top, fam, dsp=True)
                row.values[f"{fam}_dsp_luts"] = r.luts
                row.values[f"{fam}_dsp_blocks"] = r.dsp_blocks
    if fmax and d.kind != "core":
        reg = d.registered()
        for fam in FMAX_FAMILIES:
            _progress(progress, f"{tag}: {fam} place and route")
            result = run_fmax(reg.verilog(), reg.top, fam)
            row.values[f"{fam}_fmax"] = result.fmax_mhz
    if energy:
        _progress(progress, f"{tag}: switching energy")
        if d.kind == "unit":
            e = energy_mod.unit_energy(d.cfg, dist="gaussian", vectors=energy_vectors)
        elif d.kind == "pe":
            e = energy_mod.pe_energy(d.cfg, dist="gaussian", vectors=energy_vectors)
        else:
            e = energy_mod.core_energy(d.cfg, dist="gaussian", cycles=core_cycles, lanes=16)
        row.values["clock_pj"] = e.clock_pj_per_op
        row.values["energy_pj"] = e.pj_per_op
    if accuracy and d.kind == "unit":
        from .accuracy import unit_error
        row.values["mean_rel_err"] = unit_error(d.cfg, "gaussian", samples=1 << 18).mean_abs
    return row


# -- the paper's claims ------------------------------------------------------------------------

@dataclass(frozen=True)
class Claim:
    source: str
    claim: str
    paper: str
    ours: str
    verdict: str


def _ratio(a, b):
    return a / b if a is not None and b else math.nan


def paper_claims(progress=None) -> list[Claim]:
    """Luo & Sun, arXiv 2410.00907: the gate counts of §2.3.2 (eq. 6-8) and the energy savings of
    Table 1 / §1, measured here on our generated designs with the pinned CMOS flow."""
    from . import energy as energy_mod
    from .synthesis import synthesize_cmos

    def nand2(cfg):
        _progress(progress, f"claims: CMOS synthesis of {cfg.name}")
        return synthesize_cmos(verilog_text(cfg), cfg.name).nand2_equivalents

    def pj(cfg):
        _progress(progress, f"claims: switching energy of {cfg.name}")
        return energy_mod.unit_energy(cfg, dist="gaussian", vectors=8192).pj_per_op

    lm8, fm8, fm8_full = LMulConfig("e4m3"), FPMulConfig("e4m3", subnormals="ftz"), FPMulConfig("e4m3")
    lm16, lm12 = LMulConfig("fp16"), LMulConfig("e5m6")
    g = {c.name: nand2(c) for c in (lm8, fm8, fm8_full, lm16, lm12)}
    claims = []
    r = _ratio(g[lm8.name], g[fm8.name])
    claims.append(Claim(
        "§2.3.2 eq. (6)-(7)", "fp8 L-Mul needs about half the gates of an e4m3 multiplier",
        "157 vs 325 gates (0.48)",
        f"{g[lm8.name]:.0f} vs {g[fm8.name]:.0f} NAND2-eq (ftz), {g[fm8_full.name]:.0f} (full): {r:.2f}",
        "holds" if r <= 0.6 else "does not hold"))
    claims.append(Claim(
        "§2.3.2", "fp16 L-Mul needs fewer gates than an fp8 multiplier", "256 vs 325 gates",
        f"{g[lm16.name]:.0f} vs {g[fm8.name]:.0f} NAND2-eq",
        "holds" if g[lm16.name] < g[fm8.name] else "does not hold"))
    claims.append(Claim(
        "§2.3.2 eq. (8)", "12-bit (e5m6) L-Mul needs fewer gates than an fp8 multiplier", "201 vs 300 gates",
        f"{g[lm12.name]:.0f} vs {g[fm8.name]:.0f} NAND2-eq",
        "holds" if g[lm12.name] < g[fm8.name] else "does not hold"))
    e = {c.name: pj(c) for c in (lm8, fm8, LMulConfig("fp32"), FPMulConfig("fp32", subnormals="ftz"))}
    save8 = 1 - _ratio(e[lm8.name], e[fm8.name])
    save32 = 1 - _ratio(e["lmul_fp32_k23_c524288"], e["fpmul_fp32_ftz"])
    claims.append(Claim(
        "Table 1, §1", "L-Mul saves 95% of the energy of element-wise floating-point multiplication",
        "95% (fp32 multiply 3.7 pJ vs int32 add 0.1 pJ, 45 nm)",
        f"fp32: {save32:.0%} saved ({e['lmul_fp32_k23_c524288']:.3f} vs {e['fpmul_fp32_ftz']:.3f} pJ); "
        f"e4m3: {save8:.0%} ({e[lm8.name]:.4f} vs {e[fm8.name]:.4f} pJ)",
        "holds" if save32 >= 0.9 else "does not hold"))
    return claims


def dot_product_claim(rows: list[Row]) -> Claim | None:
    """§1: 80% of the energy of dot products saved: per MAC of our PEs (exact accumulation)."""
    pes = {r.design.variant: r for r in rows if r.design.kind == "pe" and r.get("energy_pj") is not None}
    if "L-Mul" not in pes or "exact ftz" not in pes:
        return None
    lm, ex = pes["L-Mul"], pes["exact ftz"]
    saving = 1 - lm.get("energy_pj") / ex.get("energy_pj")
    logic = 1 - (lm.get("energy_pj") - lm.get("clock_pj")) / (ex.get("energy_pj") - ex.get("clock_pj"))
    return Claim("§1", "L-Mul saves 80% of the energy of dot products", "80%",
                 f"{saving:.0%} per MAC of an e4m3 PE with exact accumulation "
                 f"({lm.get('energy_pj'):.3f} vs {ex.get('energy_pj'):.3f} pJ); {logic:.0%} of the logic "
                 "energy without the registers' clock load",
                 "holds" if saving >= 0.7 else "does not hold")
