"""Bit-exact model of the exact multiplier, rounded once to nearest even (SPEC §3); the hardware
twin is ``lmul_hw/hw/fpmul.py``."""

from __future__ import annotations

import numpy as np

from ..config import FPMulConfig
from ._bits import Operand, as_result, check_bits, finish
from ._table import lookup

__all__ = ["fpmul", "fpmul_bits", "round_to_format"]


def fpmul(a, b, *, fmt, out_fmt=None, subnormals="full", overflow="ieee"):
    """Exact product of bit-pattern arrays ``a`` and ``b`` (broadcast), rounded RNE to the product format;
    returned in its unsigned dtype: an array, or a numpy scalar (e.g. ``np.uint8``) when both operands
    are scalars.  ValueError for operands that are not integer bit patterns of ``fmt`` (negative, too
    wide, float arrays)."""
    cfg = FPMulConfig(fmt, out_fmt=out_fmt, subnormals=subnormals, overflow=overflow)
    a, b = check_bits(a, cfg.fmt, "a"), check_bits(b, cfg.fmt, "b")
    fast = lookup(a, b, cfg, fpmul_bits)
    return as_result(fpmul_bits(a, b, cfg) if fast is None else fast)


def _bit_length(n):
    """Bit length of non-negative int64 values below 2**62, vectorised."""
    _, ex = np.frexp(n.astype(np.float64))    # exact: frexp only looks at the leading bit...
    # ...except where rounding to float64 carried into a new binade: correct downward
    ex = ex.astype(np.int64)
    too_big = (ex > 0) & (ex < 63) & ((np.int64(1) << np.clip(ex - 1, 0, 62)) > n)
    return np.where(n == 0, 0, ex - too_big)


def round_to_format(sig, exp, g, *, subnormals="full"):
    """Round sig * 2**exp (sig >= 0 int64 below 2**62) to nearest even in format ``g``.

    Returns (magnitude code, overflow mask, zero mask) before special-value handling: with
    ``full`` gradual underflow; with ``ftz`` rounded as if the exponent were unbounded and then
    flushed to zero below the smallest normal.
    """
    nbits = _bit_length(sig)
    lead = nbits - 1 + exp                      # unbiased exponent of the leading bit
    e = lead if subnormals == "ftz" else np.maximum(lead, 1 - g.bias)
    shift = (e - g.man_bits) - exp              # bits to drop (<= 0: exact, shift left)
    left = np.clip(-shift, 0, 62)
    right = np.clip(shift, 0, 63)
    kept = np.where(shift <= 0, sig << left, sig >> np.minimum(right, 62))
    kept = np.where(right >= 63, 0, kept)
    rem_mask = (np.int64(1) << np.minimum(right, 62)) - 1
    rem = np.where(right >= 63, sig, sig & rem_mask)
    half = np.where(right >= 63, np.int64(1) << 62, (rem_mask + 1) >> 1)   # 2**(right-1)
    up = (right > 0) & ((rem > half) | ((rem == half) & ((kept & 1) == 1)))
    n = kept + up
    carry = n >> (g.man_bits + 1)               # rounding overflowed the significand
    n = n >> carry
    e = e + carry
    normal = n >> g.man_bits
    exp_field = np.where(normal == 1, e + g.bias, 0)
    mag = (exp_field << g.man_bits) | (n & g.man_mask)
    over = exp_field > g.max_exp_field
    if g.kind == "fn":
        over |= mag == g.nan_code
    zero = n == 0
    if subnormals == "ftz":
        zero |= e < 1 - g.bias
    return mag, over, zero


def fpmul_bits(a, b, cfg: FPMulConfig):
    f, g = cfg.fmt, cfg.out_fmt
    x, y = Operand(a, f), Operand(b, f)
    sign = x.sign ^ y.sign
    if cfg.subnormals == "ftz":
        zx, zy = x.zero_or_sub, y.zero_or_sub
    else:
        zx, zy = x.is_zero, y.is_zero
    hidden = 1 << f.man_bits
    sig_x = np.where(x.exp == 0, x.man, x.man | hidden)
    sig_y = np.where(y.exp == 0, y.man, y.man | hidden)
    exp_x = np.maximum(x.exp, 1) - f.bias - f.man_bits
    exp_y = np.maximum(y.exp, 1) - f.bias - f.man_bits
    sig = np.where(zx | zy, 0, sig_x * sig_y)
    mag, over, zero = round_to_format(sig, exp_x + exp_y, g, subnormals=cfg.subnormals)
    inf = x.inf | y.inf
    flushed = zx | zy
    return finish(mag, sign, nan=x.nan | y.nan | (inf & flushed), overflow=inf | (over & ~flushed),
                  zero=flushed | zero, out_fmt=g, overflow_mode=cfg.overflow)
