"""A processing element of the output-stationary tensor core (SPEC §4): multiply into the exact
product format, accumulate (Kulisch or fp32), and hold the finished sum for the drain.
Its reference is the per-element accumulation of ``lmul_hw.model.matmul``."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..config import SPECIAL_FLAGS, CoreConfig, PEConfig
from ..formats import get_format, product_span
from . import unit_for
from .fields import fit
from .fp32add import FP32, fp32_add
from .rounding import normalise_round

#: What travels with each operand beat: a valid bit and the tile's first/last marks.
Control = data.StructLayout({"valid": 1, "first": 1, "last": 1})

class ProcessingElement(wiring.Component):
    """One PE: ``a`` moves right, ``b`` moves down, the control beat travels with ``a``.

    Stage 1 multiplies ``a_in * b_in`` into the product format and registers it; stage 2 adds it
    to the accumulator (restarted by ``first``).  On ``last`` the new sum goes to ``result`` and
    ``done`` is high for one cycle afterwards.  The operands leave one cycle after they arrive.
    """

    def __init__(self, cfg: CoreConfig | PEConfig):
        self.cfg = cfg
        w = cfg.fmt.width
        super().__init__({
            "a_in": In(w), "b_in": In(w), "ctl_in": In(Control),
            "a_out": Out(w), "b_out": Out(w), "ctl_out": Out(Control),
            "result": Out(cfg.result_width), "done": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        g = cfg.product_fmt
        m.submodules.mul = mul = unit_for(cfg.unit)
        m.d.comb += [mul.a.eq(self.a_in), mul.b.eq(self.b_in)]
        m.d.sync += [self.a_out.eq(self.a_in), self.b_out.eq(self.b_in), self.ctl_out.eq(self.ctl_in)]

        product = Signal(g.width, name="product_q", reset_less=True)
        ctl = Signal(Control, name="ctl_q")
        m.d.sync += [product.eq(mul.p), ctl.eq(self.ctl_in)]

        if cfg.acc == "exact":
            state, new_state = _kulisch_step(m, cfg, product, ctl.first)
        else:
            state = Signal(32, name="acc", reset_less=True)
            new_state = fp32_add(m, Mux(ctl.first, 0, state), _to_fp32(m, product, g), name="acc_add")
        result = Signal(len(self.result), name="result_q", reset_less=True)
        with m.If(ctl.valid):
            m.d.sync += state.eq(new_state)
            with m.If(ctl.last):
                m.d.sync += result.eq(new_state)
        m.d.sync += self.done.eq(ctl.valid & ctl.last)
        m.d.comb += self.result.eq(result)
        return m


def _kulisch_step(m: Module, cfg: CoreConfig, product, first):
    """The exact accumulator: {flags, sum} and its next value with ``product`` added."""
    g = cfg.product_fmt
    width = cfg.acc_width
    lsb, _ = product_span(cfg.fmt, cfg.mul, cfg.k, cfg.offset)
    sign, exp, man = product[g.width - 1], product[g.man_bits:g.width - 1], product[:g.man_bits]
    is_special = exp == g.exp_all_ones
    nonzero = (exp != 0) & ~is_special
    # value = 1.man * 2^(exp - B_G) = {1, man} * 2^(exp - B_G - M_G); in units of the lsb, shifted by
    # exp - e_zero.  Exact products of subnormals have trailing zeros below the lsb: shift `pad` more
    # and drop them.
    e_zero = g.bias + g.man_bits + lsb
    smallest = _smallest_product_exp(cfg)
    pad = max(0, e_zero - smallest)
    amount = fit(m, exp - (e_zero - pad), range(width + pad), "align")
    aligned = fit(m, Cat(man, Const(1, 1)) << amount, width + pad, "aligned")
    # +-magnitude as (magnitude XOR sign) + sign: the negation rides on the accumulator adder's carry-in
    term = Signal(width, name="term")
    m.d.comb += term.eq(Mux(nonzero, aligned[pad:], 0) ^ sign.replicate(width))

    total = Signal(signed(width), name="acc", reset_less=True)
    flags = Signal(len(SPECIAL_FLAGS), name="acc_flags", reset_less=True)
    nan = is_special & (man != 0)
    inf = is_special & ~man.any()
    seen = Mux(first, 0, flags) | Cat(nan, inf & ~sign, inf & sign)
    state = Cat(total, flags)
    new_state = Cat((Mux(first, 0, total) + term + sign)[:width], seen)
    return state, new_state


def _smallest_product_exp(cfg: CoreConfig) -> int:
    """The smallest exponent field of a nonzero finite product in the product format."""
    f, g = cfg.fmt, cfg.product_fmt
    if cfg.mul == "lmul":
        return 2 + g.bias - 2 * f.bias
    low = 1 - f.bias - (f.man_bits if cfg.subnormals == "full" else 0)
    return 2 * low + g.bias


def _to_fp32(m: Module, product, g):
    """A product-format value as fp32: rebiased where every value fits, else rounded RNE."""
    f = FP32
    sign, exp, man = product[g.width - 1], product[g.man_bits:g.width - 1], product[:g.man_bits]
    is_special = exp == g.exp_all_ones
    out = Signal(32, name="product_fp32")
    exact = g.man_bits <= f.man_bits and g.max_exp_field - g.bias <= f.bias and 1 - g.bias >= 1 - f.bias
    if exact:
        value = Cat(Const(0, f.man_bits - g.man_bits), man, (exp + (f.bias - g.bias))[:f.exp_bits])
        overflow = Const(0)
    else:
        exp_top = fit(m, exp - g.bias, signed(g.exp_bits + 2), "product_exp")
        value, overflow, _ = normalise_round(m, Cat(man, Const(1, 1)), exp_top, f, subnormals="full",
                                             max_lz=0, name="to_fp32")
    with m.If(is_special):
        m.d.comb += out.eq(Mux(man != 0, 0x7FC00000, Cat(Const(f.inf_code, 31), sign)))
    with m.Elif(~exp.any()):
        m.d.comb += out.eq(Cat(Const(0, 31), sign))
    with m.Elif(overflow):
        m.d.comb += out.eq(Cat(Const(f.inf_code, 31), sign))
    with m.Else():
        m.d.comb += out.eq(Cat(value, sign))
    return out


def kulisch_to_fp32(m: Module, cfg: CoreConfig, state, name: str = "readout"):
    """Read an exact accumulator out once: RNE to fp32, an exact zero as +0, flags as SPEC §4.

    The magnitude (a negation) is registered before the normalise-and-round step, so the result
    follows ``state`` by one cycle and neither half is longer than the accumulator's own adder."""
    width = cfg.acc_width
    lsb, _ = product_span(cfg.fmt, cfg.mul, cfg.k, cfg.offset)
    total = state[:width].as_signed()
    magnitude = Signal(width, name=f"{name}_mag", reset_less=True)
    negative = Signal(name=f"{name}_negative", reset_less=True)
    flags = Signal(len(SPECIAL_FLAGS), name=f"{name}_flags", reset_less=True)
    m.d.sync += [magnitude.eq((total.as_unsigned() ^ (total < 0).replicate(width)) + (total < 0)),
                 negative.eq(total < 0), flags.eq(state[width:width + len(SPECIAL_FLAGS)])]
    nan, pos_inf, neg_inf = flags[0], flags[1], flags[2]
    exp_top = Const(width - 1 + lsb, signed(max(8, (abs(width + lsb) + 1).bit_length() + 2)))
    value, overflow, zero = normalise_round(m, magnitude, exp_top, get_format("fp32"), subnormals="full",
                                            name=name)
    out = Signal(32, name=f"{name}_fp32")
    with m.If(nan | (pos_inf & neg_inf)):
        m.d.comb += out.eq(0x7FC00000)
    with m.Elif(pos_inf | neg_inf):
        m.d.comb += out.eq(Cat(Const(FP32.inf_code, 31), neg_inf))
    with m.Elif(zero):
        m.d.comb += out.eq(0)
    with m.Elif(overflow):
        m.d.comb += out.eq(Cat(Const(FP32.inf_code, 31), negative))
    with m.Else():
        m.d.comb += out.eq(Cat(value, negative))
    return out
