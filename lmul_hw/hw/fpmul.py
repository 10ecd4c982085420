"""The exact multiplier (SPEC §3): significand product, normalise, round to nearest even once.
Its bit-exact reference is ``lmul_hw.model.fpmul``."""

from __future__ import annotations

from functools import partial

from amaranth.hdl import Cat, Module, Mux, Signal

from ..config import FPMulConfig
from .fields import Fields, fit
from .rounding import normalise_round
from .unit import Unit


class FPMul(Unit):
    """An exact floating-point multiplier with one RNE rounding into the product format.

    With ``ftz`` the significands of both operands are normal, so their product needs at most a
    one-bit normalisation and the rounding has no denormalising shift: the lean variant.  With
    ``full`` a leading-zero count normalises products of subnormals and results below the
    smallest normal are denormalised before the same rounding.
    """

    def __init__(self, cfg: FPMulConfig):
        super().__init__(cfg)

    def datapath(self, m: Module, a, b):
        cfg = self.cfg
        f, g = cfg.fmt, cfg.out_fmt
        x, y = Fields(m, a, f, "a"), Fields(m, b, f, "b")
        ftz = cfg.subnormals == "ftz"
        # hidden bits; with ftz every operand that is not flushed is normal: a constant 1
        hidden_x, hidden_y = (1, 1) if ftz else (x.exp.any(), y.exp.any())
        sig_x, sig_y = Cat(x.man, hidden_x), Cat(y.man, hidden_y)
        # unbiased exponent of the product's top bit: (e_a - B) + (e_b - B) + 1, subnormals at e = 1
        exp_x = x.exp if ftz else Mux(hidden_x, x.exp, 1)
        exp_y = y.exp if ftz else Mux(hidden_y, y.exp, 1)
        sig_x, sig_y, exp_x, exp_y = self.stage(m, "decode", 0 if ftz else 1 + f.exp_bits / 4,
                                                sig_x=sig_x, sig_y=sig_y, exp_x=exp_x, exp_y=exp_y)
        product = Signal(2 * f.man_bits + 2, name="sig_product")
        m.d.comb += product.eq(sig_x * sig_y)
        low, high = 2 - 2 * f.bias + 1, 2 * f.max_exp_field - 2 * f.bias + 1
        exp_top = fit(m, exp_x + exp_y - (2 * f.bias - 1), range(low, high + 1), "exp_top")
        product, exp_top = self.stage(m, "multiply", 2 + len(sig_x), product=product, exp_top=exp_top)
        mag, overflow, underflow = normalise_round(
            m, product, exp_top, g, subnormals=cfg.subnormals, max_lz=1 if ftz else None,
            stage=partial(self.stage, m))
        x, y = Fields(m, self.ops[0], f, "a"), Fields(m, self.ops[1], f, "b")

        zx = x.zero_or_sub if ftz else x.is_zero
        zy = y.zero_or_sub if ftz else y.is_zero
        flushed = zx | zy
        inf = x.inf | y.inf
        nan = x.nan | y.nan | (inf & flushed)
        ovf = inf | (overflow & ~flushed)
        zero = flushed | underflow
        out = Mux(nan, g.nan_code, Mux(ovf, g.overflow_code(cfg.overflow), Mux(zero, 0, mag)))
        return self.stage(m, "out", 3, p=Cat(out[:g.width - 1], x.sign ^ y.sign))
