"""Offset calibration: the integer offset c (SPEC §2 ``offset``, 0..2**k) that minimises the mean
relative error of L-Mul on a population of operand pairs, and the one whose bias is closest to zero.

Scanning all 2**k + 1 offsets with the full model would repeat the same field extraction 2**k + 1
times; :func:`lmul_values` evaluates SPEC §2 directly for every offset from one precomputed sum of
the fields (it is checked bit for bit against ``lmul_hw.model.lmul`` in the tests), and the chosen
offsets are then measured with the model itself."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..formats import get_format
from .methods import paper_offset

__all__ = ["Calibration", "lmul_values", "scan_offsets", "calibrate"]


class _Fields:
    """Precomputed sign, flush mask and the offset-free adder sum of SPEC §2 step 3 for k bits."""

    def __init__(self, a, b, fmt, k):
        f = get_format(fmt)
        if not 1 <= k <= f.man_bits:
            raise ValueError(f"k = {k} is out of range 1..{f.man_bits} for {f.name}")
        x = np.asarray(a).astype(np.int64)
        y = np.asarray(b).astype(np.int64)
        ex, ey = (x >> f.man_bits) & f.exp_all_ones, (y >> f.man_bits) & f.exp_all_ones
        drop = f.man_bits - k
        mx, my = (x & f.man_mask) >> drop, (y & f.man_mask) >> drop
        self.k, self.fmt = k, f
        self.sum = ((ex << k) + mx) + ((ey << k) + my)
        self.sign = np.where(((x ^ y) >> f.sign_shift) & 1, -1.0, 1.0)
        self.flushed = (ex == 0) | (ey == 0)
        top = f.exp_all_ones
        self.special = (ex == top) | (ey == top) if f.kind == "ieee" else \
            ((ex == top) & ((x & f.man_mask) == f.man_mask)) | ((ey == top) & ((y & f.man_mask) == f.man_mask))

    def values(self, c):
        """L-Mul values with offset c, formed exactly (no product-format range limits, as in the tensor
        core); NaN where an operand is inf or NaN."""
        k, f = self.k, self.fmt
        r = self.sum + c
        v = self.sign * np.ldexp(((1 << k) + (r & ((1 << k) - 1))).astype(np.float64),
                                 ((r >> k) - 2 * f.bias - k).astype(np.int32))
        v = np.where(self.flushed, 0.0 * self.sign, v)
        return np.where(self.special, np.nan, v)


def lmul_values(a, b, fmt, k, offset):
    """L-Mul of bit patterns ``a``, ``b`` in ``fmt`` with k bits and integer offset c as float64 values,
    exactly as the tensor core forms them (SPEC §2 with the §4 product format): operands that are
    zero or subnormal give zero, inf/NaN operands give NaN."""
    return _Fields(a, b, fmt, k).values(offset)


@dataclass
class Calibration:
    """The offset scan of one (format, population, k): mean |r| and bias for every c in 0..2**k, over
    the calibration pairs with normal operands (see :func:`scan_offsets`)."""
    fmt: str
    population: str
    k: int
    n: int
    offsets: np.ndarray = field(repr=False)
    mean_abs: np.ndarray = field(repr=False)
    bias: np.ndarray = field(repr=False)

    @property
    def paper(self) -> int:
        return paper_offset(self.k)

    @property
    def min_mean(self) -> int:
        """The offset with the smallest mean |r| (the smallest such c on a tie)."""
        return int(self.offsets[int(np.argmin(self.mean_abs))])

    @property
    def zero_bias(self) -> int:
        """The offset whose bias is closest to zero (on a tie, the one with the smaller mean |r|)."""
        order = np.lexsort((self.mean_abs, np.abs(self.bias)))
        return int(self.offsets[order[0]])

    def at(self, c: int) -> tuple[float, float]:
        """(mean |r|, bias) of offset c on the calibration pairs."""
        i = int(np.searchsorted(self.offsets, c))
        return float(self.mean_abs[i]), float(self.bias[i])

    def to_dict(self) -> dict:
        return {"format": self.fmt, "population": self.population, "k": self.k, "n": self.n,
                "offset_paper": self.paper, "offset_min_mean": self.min_mean, "offset_zero_bias": self.zero_bias,
                "scan": {"offset": self.offsets.tolist(), "mean_abs": self.mean_abs.tolist(),
                         "bias": self.bias.tolist()}}


def scan_offsets(a, b, fmt, k, exact=None, offsets=None):
    """(offsets, mean |r|, bias, n) of L-Mul with k bits for each offset c (default all of 0..2**k) over
    the n pairs that an offset can affect: exact product finite and nonzero, and both operands normal
    (L-Mul flushes zero and subnormal operands whatever c is; counting those -100 % errors would only
    shift every bias by the same amount and push the zero-bias offset to compensate for them)."""
    f = get_format(fmt)
    fields = _Fields(a, b, f, k)
    if exact is None:
        from .operands import exact_products
        exact = exact_products(a, b, f)
    keep = np.isfinite(exact) & (exact != 0) & ~fields.special & ~fields.flushed
    fields.sum, fields.sign = fields.sum[keep], fields.sign[keep]
    fields.flushed, fields.special = fields.flushed[keep], fields.special[keep]
    inv = 1.0 / exact[keep]
    offsets = np.arange((1 << k) + 1) if offsets is None else np.asarray(offsets)
    mean_abs = np.empty(len(offsets))
    bias = np.empty(len(offsets))
    for i, c in enumerate(offsets.tolist()):
        if not 0 <= c <= 1 << k:
            raise ValueError(f"offset = {c} is out of range 0..{1 << k}")
        r = fields.values(c) * inv - 1.0
        mean_abs[i] = np.abs(r).mean() if r.size else np.nan
        bias[i] = r.mean() if r.size else np.nan
    return offsets, mean_abs, bias, int(inv.size)


def calibrate(a, b, fmt, k, population: str = "", exact=None) -> Calibration:
    """Scan every offset 0..2**k on the pairs (a, b) and return the :class:`Calibration`."""
    offsets, mean_abs, bias, n = scan_offsets(a, b, fmt, k, exact)
    return Calibration(get_format(fmt).name, population, k, n, offsets, mean_abs, bias)
