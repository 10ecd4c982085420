"""Error statistics and exact summation.

The relative error of an approximation ``q`` of an exact value ``p`` is ``r = (q - p) / p``: positive
when the magnitude is overestimated (the sign of every method here is exact), -1 when the result was
flushed to zero (100 % error), and undefined when ``p`` is zero or not finite (such pairs are skipped).
Results that are NaN or infinite are excluded from the statistics and counted.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["ErrorStats", "error_stats", "relative_errors", "exact_sum"]


@dataclass(frozen=True)
class ErrorStats:
    """Statistics of the signed relative error r over the pairs (or dot products) that count.

    - ``n``: how many entered the statistics (results flushed to zero included, at |r| = 1);
    - ``mean_abs``: mean |r| (the "mean relative error");
    - ``mse``: mean r**2, the mean squared *relative* error (its square root is the RMS relative error);
    - ``bias``: mean r, the mean signed relative error (> 0: magnitudes overestimated on average);
    - ``max_abs``, ``median_abs``: largest and median |r|;
    - ``n_flushed``: results that are zero although the exact value is not (counted in the statistics);
    - ``n_excluded``: NaN or infinite results (not in the statistics);
    - ``n_skipped``: exact value zero or not finite (no relative error defined; not in the statistics).
    """
    n: int
    mean_abs: float
    mse: float
    bias: float
    max_abs: float
    median_abs: float
    n_flushed: int = 0
    n_excluded: int = 0
    n_skipped: int = 0

    @property
    def rms(self) -> float:
        return math.sqrt(self.mse) if self.n else math.nan

    def to_dict(self) -> dict:
        return asdict(self)


def relative_errors(approx, exact):
    """(r, n_flushed, n_excluded, n_skipped): the signed relative errors of ``approx`` against ``exact``
    (same shape, float64) over the entries where ``exact`` is finite and nonzero and ``approx`` finite."""
    q = np.asarray(approx, dtype=np.float64)
    p = np.asarray(exact, dtype=np.float64)
    q, p = np.broadcast_arrays(q, p)
    defined = np.isfinite(p) & (p != 0)
    finite = np.isfinite(q)
    used = defined & finite
    pu, qu = p[used], q[used]
    r = (qu - pu) / pu
    return r, int(np.count_nonzero(qu == 0)), int(np.count_nonzero(defined & ~finite)), \
        int(np.count_nonzero(~defined))


def error_stats(approx=None, exact=None, *, r=None, n_flushed=None, n_excluded=0, n_skipped=0) -> ErrorStats:
    """ErrorStats of ``approx`` against ``exact``, or of given signed relative errors ``r``."""
    if r is None:
        r, n_flushed, n_excluded, n_skipped = relative_errors(approx, exact)
    r = np.asarray(r, dtype=np.float64).reshape(-1)
    if n_flushed is None:
        n_flushed = int(np.count_nonzero(r == -1.0))
    if r.size == 0:
        nan = math.nan
        return ErrorStats(0, nan, nan, nan, nan, nan, n_flushed, n_excluded, n_skipped)
    a = np.abs(r)
    return ErrorStats(n=int(r.size), mean_abs=float(a.mean()), mse=float(np.mean(r * r)), bias=float(r.mean()),
                      max_abs=float(a.max()), median_abs=float(np.median(a)), n_flushed=int(n_flushed),
                      n_excluded=int(n_excluded), n_skipped=int(n_skipped))


# -- exact summation -----------------------------------------------------------------------------

def exact_sum(x, axis=-1):
    """Sum float64 values along ``axis`` exactly and round once to the nearest float64 (ties to even),
    like :func:`math.fsum` but vectorised over the other axes.

    Every finite float64 x with 2**(e-1) <= |x| < 2**e is an integer multiple of 2**(e-53) (and every
    float64 one of 2**-1074), so the whole array consists of multiples of 2**lsb, lsb = max(min e - 53,
    -1074).  The integers x / 2**lsb are split into limbs of W = 53 - ceil(log2 K) bits; each limb sums
    exactly in float64 in any order (K terms below 2**W stay below 2**53).  The few limb sums of a row
    are added as a double-double and rounded once; a row whose double-double lies too close to a
    rounding boundary to be sure (a tie, or nearly one) is rounded by :func:`math.fsum` instead.
    Rows holding NaN or inf give what :func:`numpy.sum` gives them.
    """
    x = np.asarray(x, dtype=np.float64)
    x = np.moveaxis(x, axis, -1)
    shape = x.shape[:-1]
    K = x.shape[-1]
    if K == 0 or x.size == 0:
        return np.zeros(shape)
    x = x.reshape(-1, K)
    out = np.zeros(x.shape[0])
    finite_rows = np.isfinite(x).all(axis=1)
    if not finite_rows.all():
        out[~finite_rows] = x[~finite_rows].sum(axis=1)
        x = np.where(finite_rows[:, None], x, 0.0)
    nonzero = x != 0
    if not nonzero.any():
        return out.reshape(shape)
    ex = np.frexp(x)[1]
    top = int(ex.max())                               # every |x| < 2**top (zeros have e = 0)
    lsb = max(int(np.where(nonzero, ex, 1 << 20).min()) - 53, -1074)
    if top - lsb > 1000 or top > 1000:                # beyond float64's range once scaled: slow path
        for i in np.flatnonzero(finite_rows):
            out[i] = _fsum(x[i].tolist())
        return out.reshape(shape)
    width = 53 - max(K - 1, 0).bit_length()
    y = np.ldexp(x, -lsb)                             # integers below 2**(top - lsb), exact
    radix = float(2 ** width)
    limb_sums = []
    while True:
        q = np.trunc(y / radix)                       # exact: division by a power of two, then truncation
        limb_sums.append((y - q * radix).sum(axis=1))  # |limb| < 2**width: exact in any order
        if not q.any():
            break
        y = q
    terms = [np.ldexp(t, lsb + j * width) for j, t in enumerate(limb_sums)]   # exact (integers < 2**53)
    risky, rounded = _round_terms(terms)
    sure = finite_rows & ~risky
    out[sure] = rounded[sure]
    for i in np.flatnonzero(finite_rows & risky).tolist():
        out[i] = _fsum([t[i] for t in terms])
    return out.reshape(shape)


def _fsum(values) -> float:
    try:
        return math.fsum(values)
    except OverflowError:                            # the exact sum is beyond float64
        return math.copysign(math.inf, sum(math.copysign(1.0, v) * min(abs(v), 1e300) for v in values))


def _round_terms(terms):
    """Round the exact sum of a few float64 arrays once to nearest: (risky, value).  A double-double
    sum gives hi + lo within about n**3 * 2**-106 * max|term| of the exact sum, so hi = fl(hi + lo) is
    the correctly rounded sum unless lo lies that close to half an ulp of hi (a tie, or nearly one);
    those rows are flagged ``risky`` for math.fsum."""
    hi = np.zeros_like(terms[0])
    lo = np.zeros_like(hi)
    big = np.zeros_like(hi)
    for t in terms:
        s = hi + t
        bb = s - hi
        lo = lo + ((hi - (s - bb)) + (t - bb))          # TwoSum error, exact
        hi = s
        big = np.maximum(big, np.maximum(np.abs(t), np.abs(hi)))
    s = hi + lo                                          # the rounding of hi + lo
    rest = lo - (s - hi)                                 # its error (exact when |hi| >= |lo|)
    n = len(terms)
    bound = big * (n ** 3 * 2.0 ** -100)
    half = np.spacing(np.abs(s)) / 2
    risky = (np.abs(np.abs(rest) - half) <= bound) | (np.abs(np.abs(rest) - half / 2) <= bound) \
        | (np.abs(lo) > np.abs(hi)) | ((s == 0) & (big > 0))
    return risky, s
