"""The accuracy analysis: element-wise and dot-product errors of every method on every population,
offset calibration, and the comparison with the paper.  The building blocks (``unit_error``,
``method_error``, ``dot_error``) are meant to be reused by other reports."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..config import FPMulConfig, LMulConfig
from ..formats import Format, FpClass, classify, get_format
from .calibrate import Calibration, calibrate
from .methods import (FP8_FORMATS, Method, check_source_format, fp8_method, lmul_method,
                      rne_method)
from .operands import DISTRIBUTIONS, EXHAUSTIVE, exact_products, finite_pairs, sample_pairs
from .stats import ErrorStats, error_stats, exact_sum, relative_errors

__all__ = ["Settings", "Report", "analyse", "operand_pairs", "method_error", "unit_error", "dot_error",
           "methods_for", "normalised_error", "DOT_LENGTHS", "DEFAULT_SAMPLES", "CALIBRATION_SAMPLES", "MIN_DOTS"]

DOT_LENGTHS = (64, 512, 4096)
DEFAULT_SAMPLES = 1 << 20
CALIBRATION_SAMPLES = 1 << 18
MIN_DOTS = 16
#: Peak memory per operand pair of ``samples`` (measured about 150 bytes for bf16 and e4m3 at 2**19
#: pairs: operands, exact products, one product array per unit, the dot-product pool; with margin).
BYTES_PER_SAMPLE = 400
_FORMAT_IDS = {"bf16": 1, "fp16": 2, "e4m3": 3, "e5m2": 4}
#: methods whose signed errors are kept (subsampled) for the histogram plot
_HIST_KEEP = 100_000


def operand_pairs(population: str, fmt, samples: int, seed: int = 0, purpose: str = "elementwise"):
    """(a, b) bit patterns of ``fmt``: ``samples`` independent pairs from a distribution, or every
    finite pair of an 8-bit format for ``population == "exhaustive"``."""
    f = get_format(fmt)
    if population == EXHAUSTIVE:
        return finite_pairs(f)
    return sample_pairs(population, samples, f, seed, purpose, _FORMAT_IDS.get(f.name, 0))


#: numpy work is done in pieces of about this many elements: large temporaries cost page faults
CHUNK = 1 << 15


def products_chunked(method: Method, a, b, fmt) -> np.ndarray:
    """``method.products(a, b, fmt)`` for 1-D operand arrays, computed piecewise."""
    out = np.empty(np.shape(a), dtype=np.float64)
    for i in range(0, out.size, CHUNK):
        out[i:i + CHUNK] = method.products(a[i:i + CHUNK], b[i:i + CHUNK], fmt)
    return out


def dots_chunked(method: Method | None, A, B, fmt) -> np.ndarray:
    """Exactly summed dot products of the rows of A and B (exact products when ``method`` is None)."""
    out = np.empty(A.shape[0], dtype=np.float64)
    rows = max(1, CHUNK // A.shape[1])
    for i in range(0, A.shape[0], rows):
        a, b = A[i:i + rows], B[i:i + rows]
        out[i:i + rows] = exact_sum(exact_products(a, b, fmt) if method is None else method.products(a, b, fmt))
    return out


def _normal_mask(a, b, fmt):
    return (classify(a, fmt) == FpClass.NORMAL) & (classify(b, fmt) == FpClass.NORMAL)


def method_error(method: Method, population: str = "gaussian", fmt="bf16", *, samples: int = DEFAULT_SAMPLES,
                 seed: int = 0) -> ErrorStats:
    """Element-wise error of ``method`` on source-format operands from ``population``, against the
    exact product of the source operands."""
    a, b = operand_pairs(population, fmt, samples, seed)
    return error_stats(products_chunked(method, a, b, fmt), exact_products(a, b, fmt))


def unit_error(unit: LMulConfig | FPMulConfig, population: str = "gaussian", *, samples: int = DEFAULT_SAMPLES,
               seed: int = 0) -> ErrorStats:
    """Element-wise error of a unit configuration (as built, product format included) on operands of
    its own format drawn from ``population`` (values rounded RNE to the format, saturating), against
    the exact product of those operands.  ``stats.mean_abs`` is the mean relative error."""
    a, b = operand_pairs(population, unit.fmt, samples, seed)
    method = Method(f"unit_{unit.name}", unit.name, "lmul" if isinstance(unit, LMulConfig) else "fpmul", unit)
    return error_stats(products_chunked(method, a, b, unit.fmt), exact_products(a, b, unit.fmt))


def dot_error(method: Method, population: str = "gaussian", fmt="bf16", *, length: int = 512, dots: int = 256,
              seed: int = 0) -> ErrorStats:
    """Relative error of ``dots`` dot products of ``length`` terms: the method's products summed
    exactly, against the exact dot product of the source operands."""
    A, B = _dot_operands(population, fmt, length, dots, seed)
    return error_stats(dots_chunked(method, A, B, fmt), dots_chunked(None, A, B, fmt))


def _magnitudes(A, B, fmt):
    """sum_i |a_i b_i| of each row, exactly summed."""
    out = np.empty(A.shape[0])
    rows = max(1, CHUNK // A.shape[1])
    for i in range(0, A.shape[0], rows):
        out[i:i + rows] = exact_sum(np.abs(exact_products(A[i:i + rows], B[i:i + rows], fmt)))
    return out


def normalised_error(dots, exact_dots, magnitudes) -> float:
    """Mean of |dot - exact| / sum_i |a_i b_i| over the dot products with a finite result and a
    nonzero magnitude sum: the error relative to the size of the terms, which, unlike the relative
    error, does not blow up when the exact dot product happens to be near zero."""
    ok = np.isfinite(dots) & (magnitudes > 0)
    return float(np.mean(np.abs(dots[ok] - exact_dots[ok]) / magnitudes[ok])) if ok.any() else float("nan")


def _dot_operands(population, fmt, length, dots, seed):
    """(A, B), each dots x length: the first dots * length pairs of the dot-product stream (so dot
    products of every length are drawn from one pool of pairs)."""
    if population == EXHAUSTIVE:
        raise ValueError("dot products need a distribution, not the exhaustive pairs")
    a, b = operand_pairs(population, fmt, int(dots) * int(length), seed, purpose="dot")
    return a.reshape(int(dots), int(length)), b.reshape(int(dots), int(length))


def methods_for(fmt, calibrations: dict[int, Calibration] | None = None) -> list[Method]:
    """The methods compared for source format ``fmt``: L-Mul k = 1..M with the paper's offset and,
    given calibrations, with the min-mean and zero-bias offsets; fp8 e4m3/e5m2 for wider formats; and
    the exact product rounded to M bits."""
    f = check_source_format(fmt)
    out = [lmul_method(f, k) for k in range(1, f.man_bits + 1)]
    if calibrations:
        for rule in ("min-mean", "zero-bias"):
            for k in range(1, f.man_bits + 1):
                cal = calibrations[k]
                out.append(lmul_method(f, k, cal.min_mean if rule == "min-mean" else cal.zero_bias, rule=rule))
    if f.width > 8:
        out += [fp8_method(t) for t in FP8_FORMATS]
    out.append(rne_method(f))
    return out


# -- the whole analysis ------------------------------------------------------------------------------

@dataclass
class Settings:
    formats: tuple = ("bf16", "e4m3", "e5m2")
    dists: tuple = DISTRIBUTIONS
    samples: int = DEFAULT_SAMPLES
    seed: int = 0
    dot_lengths: tuple = DOT_LENGTHS

    def __post_init__(self):
        self.formats = tuple(check_source_format(f).name for f in self.formats)
        for d in self.dists:
            if d not in DISTRIBUTIONS:
                raise ValueError(f"unknown distribution {d!r}: use one of {', '.join(DISTRIBUTIONS)}")
        if not self.formats:
            raise ValueError("no format to analyse")
        if not self.dists and all(get_format(f).width > 8 for f in self.formats):
            raise ValueError("no distribution to analyse")
        if isinstance(self.samples, (bool, np.bool_)) or not isinstance(self.samples, (int, np.integer)) \
                or self.samples < 1:
            raise ValueError(f"samples must be a positive integer, not {self.samples!r}")
        if isinstance(self.seed, (bool, np.bool_)) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, not {self.seed!r}")
        from ..limits import check_count
        self.samples, self.seed = check_count("samples", int(self.samples), BYTES_PER_SAMPLE), int(self.seed)
        if any(not isinstance(K, int) or K < 1 for K in self.dot_lengths):
            raise ValueError(f"dot-product lengths must be positive integers, not {self.dot_lengths!r}")

    def populations(self, fmt) -> list[str]:
        pops = list(self.dists)
        if get_format(fmt).width == 8:
            pops.append(EXHAUSTIVE)
        return pops

    def dots(self, length: int) -> int:
        """Dot products of ``length`` terms per distribution: 2 * ``samples`` terms in all, at least MIN_DOTS."""
        return max(MIN_DOTS, 2 * self.samples // length)

    def to_dict(self) -> dict:
        return {"formats": list(self.formats), "dists": list(self.dists), "samples": self.samples,
                "seed": self.seed, "dot_lengths": list(self.dot_lengths),
                "calibration_samples": min(self.samples, CALIBRATION_SAMPLES),
                "dots": {str(K): self.dots(K) for K in self.dot_lengths}}


@dataclass
class Report:
    settings: Settings
    rows: list = field(default_factory=list)            # element-wise and dot-product statistics
    calibrations: list = field(default_factory=list)    # Calibration objects
    hist: dict = field(default_factory=dict)            # (fmt, population, method id) -> signed r sample
    seconds: float = 0.0

    def find(self, *, kind="elementwise", subset="all", **match) -> dict | None:
        for row in self.rows:
            if row["kind"] == kind and row["subset"] == subset and all(row.get(k) == v for k, v in match.items()):
                return row
        return None


def _row(kind, fmt, population, method: Method, stats: ErrorStats, *, subset="all", length=None):
    d = {"kind": kind, "format": get_format(fmt).name, "population": population, "subset": subset,
         "method": method.id, "label": method.label, "mul": method.kind, "k": method.k,
         "offset": method.offset, "rule": method.rule, "length": length}
    d.update(stats.to_dict())
    return d


def analyse(settings: Settings, progress=None) -> Report:
    """Run the analysis of ``settings``; ``progress(message)`` is told about each step."""
    say = progress or (lambda message: None)
    start = time.perf_counter()
    report = Report(settings)
    for fmt in settings.formats:
        f = get_format(fmt)
        for pop in settings.populations(f):
            _analyse_population(report, f, pop, say, start)
    report.seconds = time.perf_counter() - start
    return report


def _analyse_population(report: Report, f: Format, pop: str, say, start):
    s = settings = report.settings
    t0 = time.perf_counter()
    # calibration: on an independent sample of the distribution, or on the exhaustive pairs themselves
    if pop == EXHAUSTIVE:
        ca, cb = finite_pairs(f)
    else:
        ca, cb = operand_pairs(pop, f, min(s.samples, CALIBRATION_SAMPLES), s.seed, purpose="calibration")
    cexact = exact_products(ca, cb, f)
    cals = {k: calibrate(ca, cb, f, k, pop, exact=cexact) for k in range(1, f.man_bits + 1)}
    report.calibrations.extend(cals.values())
    methods = methods_for(f, cals)
    # element-wise
    a, b = operand_pairs(pop, f, s.samples, s.seed)
    exact = exact_products(a, b, f)
    normal = _normal_mask(a, b, f) if pop == EXHAUSTIVE else None
    cache = {}
    for m in methods:
        if m.unit not in cache:
            cache[m.unit] = products_chunked(m, a, b, f)
        q = cache[m.unit]
        r, flushed, excluded, skipped = relative_errors(q, exact)
        report.rows.append(_row("elementwise", f, pop, m, error_stats(r=r, n_flushed=flushed, n_excluded=excluded,
                                                                        n_skipped=skipped)))
        if normal is not None:
            report.rows.append(_row("elementwise", f, pop, m, error_stats(q[normal], exact[normal]), subset="normal"))
        if m.rule in ("paper", None) and r.size:
            report.hist[(f.name, pop, m.id)] = r[:_HIST_KEEP].astype(np.float32)
    del cache
    say(f"{f.name} x {f.name}, {pop}: offsets calibrated, {len(methods)} methods on {a.size:,} pairs "
        f"({time.perf_counter() - t0:.1f} s, total {time.perf_counter() - start:.1f} s)")
    if pop == EXHAUSTIVE:
        return
    pool = max((settings.dots(K) * K for K in settings.dot_lengths), default=0)
    pa, pb = operand_pairs(pop, f, pool, settings.seed, purpose="dot")
    for length in settings.dot_lengths:
        t0 = time.perf_counter()
        dots = settings.dots(length)
        A = pa[:dots * length].reshape(dots, length)
        B = pb[:dots * length].reshape(dots, length)
        exact_dot = dots_chunked(None, A, B, f)
        magnitude = _magnitudes(A, B, f)
        cache = {}
        for m in methods:
            if m.unit not in cache:
                cache[m.unit] = dots_chunked(m, A, B, f)
            row = _row("dot", f, pop, m, error_stats(cache[m.unit], exact_dot), length=length)
            row["mean_abs_normalised"] = normalised_error(cache[m.unit], exact_dot, magnitude)
            report.rows.append(row)
        say(f"{f.name} x {f.name}, {pop}: {dots:,} dot products of length {length} "
            f"({time.perf_counter() - t0:.1f} s, total {time.perf_counter() - start:.1f} s)")
