"""A processing element of the output-stationary tensor core (SPEC §4): multiply into the exact
product format, accumulate (Kulisch or fp32), and hold the finished sum for the drain.
Its reference is the per-element accumulation of ``lmul_hw.model.matmul``."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..config import SPECIAL_FLAGS, CoreConfig, PEConfig
from ..formats import product_span
from . import unit_for
from .fields import fit
from .fp32add import FP32, fp32_add
from .rounding import normalise_round

#: What travels with each operand beat: a valid bit and the tile's first/last marks.
Control = data.StructLayout({"valid": 1, "first": 1, "last": 1})

class ProcessingElement(wiring.Component):
    """One PE: ``a`` moves right, ``b`` moves down, the control beat travels with ``a``.

    Stage 1 multiplies ``a_in * b_in`` into the product format and registers it; stage 2 turns
    the product into the accumulator's addend (aligned for the Kulisch sum, or fp32) and registers
    that; stage 3 adds it to the accumulator (restarted by ``first``).  Three short stages rather
    than two long ones: each fits one clock of the whole core (``benchmarks/bench_core_fmax.py``).
    On ``last`` the new sum goes to ``result`` and ``done`` is high for one cycle afterwards.  The
    operands leave one cycle after they arrive.
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
        ctl_p = Signal(Control, name="ctl_q")
        ctl = Signal(Control, name="ctl_qq")
        m.d.sync += [product.eq(mul.p), ctl_p.eq(self.ctl_in), ctl.eq(ctl_p)]

        if cfg.acc == "exact":
            addend = _kulisch_addend(m, cfg, product)
            state, new_state = _kulisch_step(m, cfg, addend)
        else:
            addend = Signal(32, name="product_fp32_q", reset_less=True)
            m.d.sync += addend.eq(_to_fp32(m, product, g))
            state = Signal(32, name="acc", reset_less=True)
            new_state = fp32_add(m, Mux(ctl.first, 0, state), addend, name="acc_add")
        result = Signal(len(self.result), name="result_q", reset_less=True)
        with m.If(ctl.valid):
            m.d.sync += state.eq(new_state)
            with m.If(ctl.last):
                m.d.sync += result.eq(new_state)
        if cfg.acc == "exact":
            # a tile's first beat finds the sum cleared: it is cleared while that beat is one stage
            # earlier (the sum then held is finished or unused), so no multiplexer sits in front of
            # the adder
            with m.If(ctl_p.valid & ctl_p.first):
                m.d.sync += state.eq(0)
        m.d.sync += self.done.eq(ctl.valid & ctl.last)
        m.d.comb += self.result.eq(result)
        return m


def _kulisch_addend(m: Module, cfg: CoreConfig, product):
    """The product as the exact accumulator's registered addend: (term, sign, flags) with
    term = aligned magnitude XOR sign, so the adder's carry-in completes the negation."""
    g = cfg.product_fmt
    width = cfg.acc_width
    lsb, _ = product_span(cfg.fmt, cfg.mul, cfg.k, cfg.offset)
    sign, exp, man = product[g.width - 1], product[g.man_bits:g.width - 1], product[:g.man_bits]
    is_special = exp == g.exp_all_ones
    nonzero = (exp != 0) & ~is_special
    # value = 1.man * 2^(exp - B_G) = {1, man} * 2^(exp - e_zero) in units of the lsb.  Shifting by
    # the exponent field itself and slicing from e_zero needs no subtractor in front of the shifter;
    # the trailing zeros of exact subnormal products fall below the slice.
    e_zero = g.bias + g.man_bits + lsb
    shifted = Cat(man, Const(1, 1)) << exp
    shifted = Cat(shifted, Const(0, max(0, e_zero + width - len(shifted))))
    aligned = shifted[e_zero:e_zero + width]
    term = Signal(width, name="term_q", reset_less=True)
    term_sign = Signal(name="term_sign_q", reset_less=True)
    term_flags = Signal(len(SPECIAL_FLAGS), name="term_flags_q", reset_less=True)
    inf = is_special & ~man.any()
    m.d.sync += [term.eq(Mux(nonzero, aligned, 0) ^ sign.replicate(width)), term_sign.eq(sign),
                 term_flags.eq(Cat(is_special & (man != 0), inf & ~sign, inf & sign))]
    return term, term_sign, term_flags


def _kulisch_step(m: Module, cfg: CoreConfig, addend):
    """The exact accumulator: {flags, sum} and its next value with the addend added.  The addend's
    sign enters as the carry-in of one adder ({sum, 1} + {term, sign}, its low bit dropped)."""
    width = cfg.acc_width
    term, sign, term_flags = addend
    total = Signal(signed(width), name="acc", reset_less=True)
    flags = Signal(len(SPECIAL_FLAGS), name="acc_flags", reset_less=True)
    new_total = fit(m, Cat(Const(1, 1), total) + Cat(sign, term), width + 2, "acc_sum")[1:width + 1]
    return Cat(total, flags), Cat(new_total, flags | term_flags)


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

    Pipelined so that no step is longer than the accumulator's own adder: (1) the magnitude, a
    negation; (2) which nibble holds the leading one (one-hot); (3) the shift by whole nibbles;
    (4) the last 0..3 bits of the shift, with the guard and sticky bits, or the fields of a special
    result.  The rounding comes after register (4), so the result follows ``state`` by
    ``KULISCH_READOUT_STAGES - 1`` cycles; the caller registers it once more."""
    width = cfg.acc_width
    lsb, _ = product_span(cfg.fmt, cfg.mul, cfg.k, cfg.offset)
    f = FP32
    exp_top = width - 1 + lsb                   # unbiased exponent of the magnitude's top bit
    if exp_top - (width - 1) + f.bias < 1 or exp_top + f.bias >= (f.inf_code >> f.man_bits) - 1:
        raise ValueError(f"a {width}-bit accumulator with lsb 2^{lsb} can hold values outside fp32's normal range")

    def stage(value, label):
        reg = Signal(len(value), name=f"{name}_{label}", reset_less=True)
        m.d.sync += reg.eq(value)
        return reg

    # (1) magnitude and sign
    total = state[:width].as_signed()
    negative = total < 0
    magnitude = stage((total.as_unsigned() ^ negative.replicate(width)) + negative, "mag")
    neg1, flags1 = stage(negative, "negative_s1"), stage(state[width:width + len(SPECIAL_FLAGS)], "flags_s1")
    # zero-pad below to whole nibbles and at least fp32's significand, guard and three more bits:
    # the value and its top bit's exponent stay the same
    padded = max(width, f.man_bits + 5)
    padded += -padded % 4
    sig = Cat(Const(0, padded - width), magnitude)
    nibbles = padded // 4
    # (2) the nibble holding the leading one, one-hot from the top (all zero: the value is zero)
    nonzero = [sig[4 * (nibbles - 1 - i):4 * (nibbles - i)].any() for i in range(nibbles)]
    lead = stage(Cat(*(nz & ~Cat(*nonzero[:i]).any() if i else nz for i, nz in enumerate(nonzero))), "lead")
    sig2 = stage(sig, "sig_s2")
    neg2, flags2 = stage(neg1, "negative_s2"), stage(flags1, "flags_s2")
    # (3) shift left by whole nibbles; the exponent of the new top bit, biased
    # an AND-OR of the one-hot selection, not a priority chain
    coarse = fit(m, _or_all([lead[i].replicate(padded) & (sig2 << 4 * i)[:padded] for i in range(nibbles)]),
                 padded, f"{name}_coarse")
    e_bits = f.exp_bits                         # every biased exponent here is 1..253 (checked above)
    e_coarse = fit(m, _or_all([Mux(lead[i], (exp_top + f.bias - 4 * i) % (1 << e_bits), 0) for i in range(nibbles)]),
                   e_bits, f"{name}_e_coarse")
    sig3, e3 = stage(coarse, "sig_s3"), stage(e_coarse, "e_s3")
    zero3 = stage(~lead.any(), "zero_s3")
    neg3, flags3 = stage(neg2, "negative_s3"), stage(flags2, "flags_s3")
    # (4) the last 0..3 bits of the shift: the leading one is now in the top nibble
    top = sig3[padded - 4:]
    fine = Signal(2, name=f"{name}_fine")
    m.d.comb += fine.eq(Mux(top[3], 0, Mux(top[2], 1, Mux(top[1], 2, 3))))
    aligned = fit(m, sig3 << fine, padded, f"{name}_aligned")
    cut = padded - 1 - f.man_bits              # aligned[cut:padded-1] is the stored significand
    # the bits below cut - 4 are sticky for every fine shift: OR them beside the shift
    sticky = Cat(sig3[:cut - 4].any(), aligned[cut - 4:cut - 1]).any()
    # the special cases replace the fields here, with nothing to round, so that the rounding adder
    # drives the result register directly: NaN (also +inf + -inf), then an infinity, then zero (+0)
    nan, pos_inf, neg_inf = flags3[0], flags3[1], flags3[2]
    is_nan = nan | (pos_inf & neg_inf)
    is_inf = pos_inf | neg_inf
    forced = is_nan | is_inf | zero3
    mant4 = stage(Mux(is_nan, 1 << (f.man_bits - 1), Mux(forced, 0, aligned[cut:padded - 1])), "mant_s4")
    e4 = stage(Mux(is_nan | is_inf, f.inf_code >> f.man_bits, Mux(zero3, 0, e3 - fine)), "e_s4")
    guard4, sticky4 = stage(aligned[cut - 1] & ~forced, "guard_s4"), stage(sticky & ~forced, "sticky_s4")
    neg4 = stage(Mux(is_nan, 0, Mux(is_inf, neg_inf, neg3)), "negative_s4")
    # round to nearest even: the carry of the significand moves into the exponent by itself (it
    # never reaches the infinity code: the accumulator holds no value that large)
    round_up = guard4 & (sticky4 | mant4[0])
    rounded = fit(m, Cat(mant4, e4) + round_up, 31, f"{name}_rounded")
    return Cat(rounded, neg4)


def _or_all(values):
    """The bitwise OR of ``values`` as a balanced tree."""
    while len(values) > 1:
        values = [a | b for a, b in zip(values[::2], values[1::2])] + values[len(values) - len(values) % 2:]
    return values[0]
