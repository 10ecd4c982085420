"""The L-Mul unit (SPEC §2): ONE integer adder; its bit-exact reference is ``lmul_hw.model.lmul``."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal

from ..config import LMulConfig
from .unit import Unit
from .fields import Fields


class LMul(Unit):
    """``p = s | e | m`` with ``{e, m} = {e_a, m_a} + {e_b, m_b} + (B_G - 2 B_F) 2^k + c``.

    The exponent and truncated-mantissa fields of each operand are read as one integer; their sum
    with the injected constant is the product's exponent and mantissa, the mantissa carry running
    into the exponent by itself (the paper's offset injection).  Around the adder sit only the
    special cases: NaN, infinity, zero/subnormal inputs (flushed), underflow and overflow, the last
    two read off the sum by comparing it with constants.
    """

    def __init__(self, cfg: LMulConfig):
        super().__init__(cfg)

    def datapath(self, m: Module, a, b):
        cfg = self.cfg
        f, g, k = cfg.fmt, cfg.out_fmt, cfg.k
        x, y = Fields(m, a, f, "a"), Fields(m, b, f, "b")
        field = f.exp_bits + k
        lo, hi = cfg.bias_offset, 2 * ((1 << field) - 1) + cfg.bias_offset
        r = Signal(range(min(lo, 0), hi + 1), name="sum")
        # the one addition: exponent and truncated mantissa of both operands, bias and offset folded in
        m.d.comb += r.eq(x.exp_man(k) + y.exp_man(k) + Const(cfg.bias_offset))

        underflow = r < (1 << k)                         # e <= 0
        top = (g.max_exp_field + 1) << k                 # e beyond the largest finite exponent
        if g.kind == "fn" and g.man_bits == k:
            top -= 1                                     # e all ones with an all-ones mantissa is NaN
        overflow = r >= top

        flushed = x.zero_or_sub | y.zero_or_sub
        inf = x.inf | y.inf
        nan = x.nan | y.nan | (inf & flushed)
        ovf = inf | (overflow & ~flushed)
        zero = flushed | underflow
        exp_man = Signal(k + g.exp_bits, name="exp_man")     # {e, m} of the product when in range
        m.d.comb += exp_man.eq(r)
        result = Cat(Const(0, g.man_bits - k), exp_man)
        mag = Mux(nan, g.nan_code, Mux(ovf, g.overflow_code(cfg.overflow), Mux(zero, 0, result)))
        p = Signal(g.width, name="product")
        m.d.comb += p.eq(Cat(mag[:g.width - 1], x.sign ^ y.sign))
        return p
