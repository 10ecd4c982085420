"""Bit-exact model of the tensor core's tile computation (SPEC §4); the hardware twin is
``lmul_hw/hw/core.py``.

Products are formed exactly in the product format G and accumulated either exactly (a Kulisch
accumulator, read out once with RNE to fp32) or in IEEE binary32, in k order.  The binary32 mode
runs in the compiled kernels of ``_jit`` (numba); docs/matmul.md says why they are bit-exact.

The exact mode runs on float64 BLAS without giving up exactness: every product is a dyadic number
and, within a band of operand exponents, the products and all their partial sums are integer
multiples of one lsb below 2**53, so BLAS sums them exactly in any order.  L-Mul is not bilinear
(the mantissa carry depends on both operands), but for a fixed truncated mantissa v of ``a`` it is
``2**(e_a - B_F) * g_v(b)``: one matmul per value of v.  The band results are summed exactly as
double-doubles and rounded once to fp32 through round-to-odd.
"""

from __future__ import annotations

import itertools
import os
import threading
from functools import lru_cache

import numpy as np

from ..config import check_exact_accumulator, core_unit
from ..errors import ToolError
from ..files import cache_root
from ..formats import decode
from ._bits import Operand, check_bits
from .fpmul import fpmul_bits
from .lmul import lmul_bits

__all__ = ["matmul", "products", "FP32_NAN"]

FP32_NAN = np.uint32(0x7FC00000)
_BLAS_BITS = 53
_MAX_SPLIT_K = 5        # L-Mul with up to 2^5 mantissa classes uses the blocked BLAS path


def matmul(A, B, cfg=None, *, mul="lmul", fmt=None, acc="exact", **unit_options):
    """C = A @ B on bit patterns: A (MxK), B (KxN) in ``fmt``; returns MxN fp32 bit patterns (always a
    uint32 array, never a scalar: A and B are 2-D).  ValueError for operands that are not integer bit
    patterns of ``fmt`` (negative, too wide, float arrays).

    The numerics come either from keywords (``mul``, ``fmt``, ``acc`` and the unit options) or from a
    core or PE configuration ``cfg`` (then a tile deeper than its ``depth`` is a ValueError, as it is
    for the core)."""
    if cfg is not None:
        if fmt is not None or unit_options or mul != "lmul" or acc != "exact":
            raise ValueError("give either a configuration or the mul/fmt/acc/unit-option keywords, not both")
        if not hasattr(cfg, "depth") or not hasattr(cfg, "unit"):
            raise ValueError(f"matmul takes a core or PE configuration, not {cfg!r}")
        A = np.asarray(A)
        if A.ndim == 2 and A.shape[1] > cfg.depth:
            raise ValueError(f"a tile of K = {A.shape[1]} is deeper than {cfg.name}'s K_max = {cfg.depth}")
        options = {"k": cfg.k, "offset": cfg.offset} if cfg.mul == "lmul" else {"subnormals": cfg.subnormals}
        return matmul(A, B, mul=cfg.mul, fmt=cfg.fmt, acc=cfg.acc, **options)
    if fmt is None:
        raise ValueError("matmul needs fmt (or a configuration)")
    if acc not in ("exact", "fp32"):
        raise ValueError(f"acc must be 'exact' or 'fp32', not {acc!r}")
    unknown = set(unit_options) - {"k", "offset_exp", "offset", "subnormals"}
    if unknown:
        raise ValueError(f"unknown unit option(s) {', '.join(sorted(unknown))}: "
                         "use k, offset_exp or offset (lmul) or subnormals (fpmul)")
    unit = core_unit(mul, fmt, **unit_options)
    A, B = check_bits(A, unit.fmt, "A"), check_bits(B, unit.fmt, "B")
    if A.ndim != 2 or B.ndim != 2:
        raise ValueError(f"A and B must be 2-D, got shapes {A.shape} and {B.shape}")
    if A.shape[1] != B.shape[0]:
        raise ValueError(f"inner dimensions differ: A is {A.shape}, B is {B.shape}")
    if min(A.shape + B.shape) < 1:
        raise ValueError(f"sizes must be at least 1, got A {A.shape} and B {B.shape}")
    if A.shape[1] > 65536:
        raise ValueError(f"K = {A.shape[1]} exceeds the core's largest depth 65536")
    if acc == "exact":
        check_exact_accumulator(unit, A.shape[1])
        return _matmul_exact(A, B, unit)
    return _matmul_fp32(A, B, unit)


def products(a, b, unit):
    """Exact products of ``a`` and ``b`` (broadcast) as float64 (inf and NaN included)."""
    if unit.fmt.width == 8:   # a table of all 65,536 products
        return _product_table(unit)[(np.asarray(a).astype(np.intp) << 8) | np.asarray(b).astype(np.intp)]
    mul = lmul_bits if unit.mul == "lmul" else fpmul_bits
    return decode(mul(a, b, unit), unit.out_fmt)


@lru_cache(maxsize=16)
def _product_table(unit):
    codes = np.arange(256, dtype=np.uint8)
    mul = lmul_bits if unit.mul == "lmul" else fpmul_bits
    return decode(mul(codes[:, None], codes[None, :], unit), unit.out_fmt).reshape(-1)


# -- fp32 accumulation -------------------------------------------------------------------------

_THREADED_MACS = 1 << 22     # below this many multiply-adds one thread is quicker than starting more
_ROWS = 32                   # rows handed to a thread at least (the kernels' own row block)


def _matmul_fp32(A, B, unit):
    """SPEC §4 fp32 mode through the compiled kernels of ``_jit`` (docs/matmul.md), spread over
    the machine's cores by blocks of output rows; each output element is one thread's, in k order."""
    f = unit.fmt
    # the kernels take C-contiguous, writable arrays of the format's own dtype (the signatures compiled)
    A = np.require(A, dtype=f.dtype, requirements=["C", "W"])
    B = np.require(B, dtype=f.dtype, requirements=["C", "W"])
    fields = (f.sign_shift, f.man_bits, f.exp_all_ones, int(f.kind == "fn"))
    if unit.mul == "lmul":
        k = unit.k
        base = 1023 - 2 * f.bias                    # odd: float64's bias minus both operands'
        zero_field = (-((base - 1) // 2) << k) % (1 << 64)   # Z of _jit._lmul_operand, modulo 2^64
        params = fields + (f.man_bits - k, 52 - k, f.bias << k, zero_field)
        # K0: SPEC §2 step 3's constant with float64's exponent bias in place of G's
        extra = (np.uint64(((base << k) + unit.offset) << (52 - k)),)
    else:
        params = fields + (int(unit.subnormals == "ftz"), f.bias)
        extra = ()
    kernel = fp32_kernel(unit.mul, f.dtype, len(params))
    params = tuple(np.uint64(v) for v in params)
    M, N = A.shape[0], B.shape[1]
    out = np.empty((M, N), dtype=np.uint32)
    _run_rows(lambda first, last: kernel(A, B, out, first, last, params, *extra), M, M * A.shape[1] * N)
    return out


def _run_rows(work, M, macs):
    """``work(first, last)`` over all M rows: inline for a small product, else on one thread per
    available core taking blocks of rows in turn (threads, not a pool kept across calls, so that a
    forked child never inherits workers that do not exist)."""
    threads = min(len(os.sched_getaffinity(0)), -(-M // _ROWS))
    if macs < _THREADED_MACS or threads < 2:
        work(0, M)
        return
    step = _ROWS * max(1, -(-M // _ROWS) // (4 * threads))
    starts = itertools.count(0, step)     # next() is atomic under the GIL
    errors = []

    def worker():
        try:
            for first in starts:
                if first >= M:
                    return
                work(first, min(M, first + step))
        except BaseException as exc:          # re-raised in the calling thread
            errors.append(exc)

    pool = [threading.Thread(target=worker, name=f"lmul-hw-matmul-{n}") for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if errors:
        raise errors[0]


@lru_cache(maxsize=None)
def fp32_kernel(mul, dtype, n_params):
    """The compiled kernel of ``mul`` for operands of ``dtype``, from numba's cache under the
    project's cache root (``jit``) or compiled now; ToolError (exit 3) with numba's reason if it
    cannot be compiled: never a slow fallback."""
    kernels = _jit_kernels()
    from numba import types
    from numba.np.numpy_support import from_dtype

    codes = types.Array(from_dtype(np.dtype(dtype)), 2, "C")
    sig = (codes, codes, types.Array(types.uint32, 2, "C"), types.int64, types.int64,
           types.UniTuple(types.uint64, n_params)) + ((types.uint64,) if mul == "lmul" else ())
    dispatcher = kernels[mul]
    try:
        dispatcher.compile(sig)
    except Exception as exc:
        raise ToolError("numba", f"cannot compile the fp32 matmul kernel {dispatcher.__name__} for "
                                 f"{np.dtype(dtype)} operands: {type(exc).__name__}: {exc}") from exc
    return dispatcher


_JIT_IMPORT = threading.Lock()


@lru_cache(maxsize=1)
def _jit_kernels():
    """Import the kernels with numba's cache pointed at ``<cache root>/jit``.  Numba fixes a function's
    cache directory when it is decorated, so its setting is changed only around that import (under a
    lock: two threads must not save each other's value) and restored; numba's own default would be
    ``__pycache__`` inside the installed package."""
    jit_dir = cache_root() / "jit"
    with _JIT_IMPORT:
        try:
            import numba.core.config as numba_config
        except Exception as exc:
            raise ToolError("numba", f"cannot import numba for the fp32 matmul kernels: {exc}") from exc
        numba_config.reload_config()
        saved = numba_config.CACHE_DIR
        numba_config.CACHE_DIR = str(jit_dir)
        try:
            from ._jit import fpmul_rows, lmul_rows
        finally:
            numba_config.CACHE_DIR = saved
    return {"lmul": lmul_rows, "fpmul": fpmul_rows}


# -- exact accumulation ------------------------------------------------------------------------

def _matmul_exact(A, B, unit):
    f = unit.fmt
    x, y = Operand(A, f), Operand(B, f)
    if unit.mul == "lmul" or unit.subnormals == "ftz":
        zx, zy = x.zero_or_sub, y.zero_or_sub
    else:
        zx, zy = x.is_zero, y.is_zero
    finite_x = ~(zx | x.inf | x.nan)
    finite_y = ~(zy | y.inf | y.nan)
    if unit.mul == "lmul" and unit.k > _MAX_SPLIT_K:
        hi, lo = _exact_sum_by_k(A, B, finite_x, finite_y, unit)
    else:
        hi, lo = _exact_finite_sum(A, B, x, y, finite_x, finite_y, unit)
    out = _round_double_double_to_fp32(hi, lo)
    if (x.inf | x.nan).any() or (y.inf | y.nan).any():
        out = _apply_special_products(out, x, y, zx, zy, finite_x, finite_y)
    return out


def _exact_finite_sum(A, B, x, y, finite_x, finite_y, unit):
    """The exact sum of all finite nonzero products, as a double-double (hi, lo).

    The products are written as U @ W with U (M x nK) and W (nK x N): for L-Mul one block of K
    columns per truncated mantissa v of ``a`` (only one of them nonzero for each (i, k), so the
    guard bits stay those of K), for the exact multiplier simply the decoded operands."""
    f = unit.fmt
    M, K = A.shape
    if unit.mul == "lmul":
        # a = +-2**(e_a - B_F) * 1.v and L-Mul(a, b) = +-2**(e_a - B_F) * L-Mul(1.v, b): G never over/underflows
        k = unit.k
        v = x.man >> (f.man_bits - k)
        scale = np.ldexp(np.where(x.sign == 1, -1.0, 1.0), (np.maximum(x.exp, 1) - f.bias).astype(np.int32))
        U = np.zeros((M, 1 << k, K))
        rows, cols = np.indices((M, K), sparse=True)
        U[rows, v, cols] = np.where(finite_x, scale, 0.0)
        U = U.reshape(M, -1)
        one_v = (f.bias << f.man_bits) | (np.arange(1 << k) << (f.man_bits - k))
        W = np.where(finite_y, products(one_v[:, None, None], B[None, :, :], unit), 0.0).reshape(-1, B.shape[1])
        extra_a, extra_b, blocks = 0, k + 2, 1 << k
    else:
        U = np.where(finite_x, decode(A, f), 0.0)
        W = np.where(finite_y, decode(B, f), 0.0)
        extra_a = extra_b = f.man_bits
        blocks = 1
    bands_a, bands_b = _exponent_bands(f.max_exp_field, extra_a, extra_b, K)
    if len(bands_a) == len(bands_b) == 1:
        hi = U @ W
        return hi, np.zeros_like(hi)
    ex_a = np.tile(np.maximum(x.exp, 1), (1, blocks))
    ex_b = np.tile(np.maximum(y.exp, 1), (blocks, 1))
    hi = np.zeros((M, B.shape[1]))
    lo = np.zeros_like(hi)
    for lo_a, hi_a in bands_a:
        ua = np.where((ex_a >= lo_a) & (ex_a <= hi_a), U, 0.0)
        for lo_b, hi_b in bands_b:
            wb = np.where((ex_b >= lo_b) & (ex_b <= hi_b), W, 0.0)
            hi, lo = _two_sum_accumulate(hi, lo, ua @ wb)
    return hi, lo


def _exact_sum_by_k(A, B, finite_x, finite_y, unit):
    """The same sum one k at a time (for L-Mul with many mantissa classes, where the split into
    2^k blocks would cost more than it saves): each product is exact in float64 and each
    double-double addition is exact."""
    hi = np.zeros((A.shape[0], B.shape[1]))
    lo = np.zeros_like(hi)
    for k in range(A.shape[1]):
        p = products(A[:, k, None], B[None, k, :], unit)
        p = np.where(finite_x[:, k, None] & finite_y[None, k, :], p, 0.0)
        hi, lo = _two_sum_accumulate(hi, lo, p)
    return hi, lo


def _exponent_bands(emax, extra_a, extra_b, depth):
    """Split the exponent fields 1..emax of A and B into bands whose products sum exactly in float64.

    The values of a band of w exponent fields span w + extra bits from lsb to msb (L-Mul's
    ``2**(e_a - B)``: 0 extra; its ``g_v(b)``: k + 2; an exact operand: M).  A pair of bands is
    exact when both spans plus the guard bits of the depth fit in 53 bits."""
    guard = max(depth - 1, 0).bit_length()
    budget = _BLAS_BITS - guard - extra_a - extra_b
    if budget < 2:
        raise AssertionError("operand significands too wide for the BLAS path")
    best = None
    for n_a in range(1, emax + 1):
        w_b = budget - -(-emax // n_a)
        if w_b >= 1:
            n_b = -(-emax // w_b)
            if best is None or n_a * n_b < best[0] * best[1]:
                best = (n_a, n_b)

    def split(n):
        w = -(-emax // n)
        return [(lo, min(lo + w - 1, emax)) for lo in range(1, emax + 1, w)]

    return split(best[0]), split(best[1])


def _two_sum(a, b):
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _two_sum_accumulate(hi, lo, x):
    """(hi, lo) += x exactly while the total spans at most ~105 bits (SPEC's accumulators: <= 97)."""
    s, e = _two_sum(hi, x)
    return _two_sum(s, lo + e)


def _round_double_double_to_fp32(hi, lo):
    """Round hi + lo (|lo| <= ulp(hi)/2) once, RNE, to fp32 bits: round-to-odd to float64 first,
    which is exact enough (53 >= 24 + 2) for the second rounding to be correct."""
    inexact = lo != 0
    toward_zero = inexact & ((lo < 0) != (hi < 0))
    t = np.where(toward_zero, np.nextafter(hi, 0.0), hi)
    t = (t.view(np.int64) | inexact.astype(np.int64)).view(np.float64)
    with np.errstate(over="ignore"):
        out = t.astype(np.float32).view(np.uint32).copy()
    out[(hi == 0) & ~inexact] = 0                       # an exact zero reads out as +0
    return out


def _apply_special_products(out, x, y, zx, zy, finite_x, finite_y):
    """SPEC §4 flags: any NaN product, or both +inf and -inf products -> NaN; else inf products -> inf."""
    def ind(mask):
        return mask.astype(np.float64)

    ones_x = np.ones((x.sign.shape[1], y.sign.shape[1]))
    ones_y = np.ones((x.sign.shape[0], x.sign.shape[1]))
    nan = (ind(x.nan) @ ones_x + ones_y @ ind(y.nan) + ind(x.inf) @ ind(zy) + ind(zx) @ ind(y.inf)) > 0
    nonzero_y = (finite_y | y.inf) & ~y.nan
    pos_x, neg_x = x.sign == 0, x.sign == 1
    pos_y, neg_y = y.sign == 0, y.sign == 1
    plus = (ind(x.inf & pos_x) @ ind(nonzero_y & pos_y) + ind(x.inf & neg_x) @ ind(nonzero_y & neg_y)
            + ind(finite_x & pos_x) @ ind(y.inf & pos_y) + ind(finite_x & neg_x) @ ind(y.inf & neg_y)) > 0
    minus = (ind(x.inf & pos_x) @ ind(nonzero_y & neg_y) + ind(x.inf & neg_x) @ ind(nonzero_y & pos_y)
             + ind(finite_x & pos_x) @ ind(y.inf & neg_y) + ind(finite_x & neg_x) @ ind(y.inf & pos_y)) > 0
    out = np.where(plus, np.uint32(0x7F800000), out)
    out = np.where(minus, np.uint32(0xFF800000), out)
    return np.where(nan | (plus & minus), FP32_NAN, out).astype(np.uint32)
