"""Bit-exact model of the L-Mul unit (SPEC §2); the hardware twin is ``lmul_hw/hw/lmul.py``."""

from __future__ import annotations


from ..config import LMulConfig
from ._bits import Operand, as_result, check_bits, finish
from ._table import lookup

__all__ = ["lmul", "lmul_bits"]


def lmul(a, b, *, fmt, k=None, offset_exp=None, offset=None, out_fmt=None, overflow="ieee"):
    """L-Mul of bit-pattern arrays ``a`` and ``b`` (broadcast), returned in the product format's unsigned
    dtype: an array, or a numpy scalar (e.g. ``np.uint8``) when both operands are scalars.  ValueError
    for operands that are not integer bit patterns of ``fmt`` (negative, too wide, float arrays)."""
    cfg = LMulConfig(fmt, k=k, offset_exp=offset_exp, offset=offset, out_fmt=out_fmt, overflow=overflow)
    a, b = check_bits(a, cfg.fmt, "a"), check_bits(b, cfg.fmt, "b")
    fast = lookup(a, b, cfg, lmul_bits)
    return as_result(lmul_bits(a, b, cfg) if fast is None else fast)


def lmul_bits(a, b, cfg: LMulConfig):
    f, g, k = cfg.fmt, cfg.out_fmt, cfg.k
    x, y = Operand(a, f), Operand(b, f)
    sign = x.sign ^ y.sign
    drop = f.man_bits - k
    # the whole multiplier: ONE addition of the (exponent, truncated mantissa) fields and a constant
    r = ((x.exp << k) + (x.man >> drop)) + ((y.exp << k) + (y.man >> drop)) + cfg.bias_offset
    e = r >> k
    m = r & ((1 << k) - 1)
    mag = (e << g.man_bits) | (m << (g.man_bits - k))
    over = e > g.max_exp_field
    if g.kind == "fn":
        over |= (e == g.exp_all_ones) & ((m << (g.man_bits - k)) == g.man_mask)
    flushed = x.zero_or_sub | y.zero_or_sub
    inf = x.inf | y.inf
    return finish(mag, sign, nan=x.nan | y.nan | (inf & flushed), overflow=inf | (over & ~flushed),
                  zero=flushed | (e <= 0), out_fmt=g, overflow_mode=cfg.overflow)
