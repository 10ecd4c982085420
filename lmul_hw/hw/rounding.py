"""Normalise and round once to nearest even into a format: the hardware twin of
``lmul_hw.model.fpmul.round_to_format``, shared by the exact multiplier and the core's fp32 paths."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed

from ..formats import Format
from .fields import fit


def leading_zeros(m: Module, value, name: str, limit: int | None = None):
    """Number of leading zeros of ``value`` (its width when zero); with ``limit`` counted only up
    to that many (the caller knows the leading one is among the top ``limit + 1`` bits)."""
    width = len(value)
    top = width if limit is None else limit
    if top == 0:
        # the leading one is the top bit: no logic (a process assigning only a constant would be an
        # `always @*` that some simulators never run)
        return Const(0, 1)
    count = Signal(range(top + 1), name=name)
    m.d.comb += count.eq(top)
    for i in range(width - top - (0 if limit is None else 1), width):
        with m.If(value[i]):
            m.d.comb += count.eq(width - 1 - i)
    return count


def _no_stage(name, depth, **values):
    out = tuple(values.values())
    return out[0] if len(out) == 1 else out


def normalise_round(m: Module, sig, exp_top, g: Format, *, subnormals: str, max_lz: int | None = None,
                    name: str = "rnd", stage=_no_stage):
    """Round ``sig * 2**(exp_top - len(sig) + 1)`` (``exp_top``: signed unbiased exponent of sig's
    top bit) to format ``g``, RNE.

    Returns ``(magnitude, overflow, zero)``: ``overflow`` when the rounded value exceeds the largest
    finite value (or lands on an fn format's NaN code), ``zero`` when it is zero (with ``ftz``: below
    the smallest normal after rounding with an unbounded exponent).  ``max_lz`` bounds the leading
    zeros of ``sig`` when known (1 for a product of two normal significands).  ``stage(name, depth,
    **values)`` marks the pipeline boundaries "normalise" (shift amount known), "align" (significand
    shifted) and "round" (``lmul_hw.hw.unit.Unit.stage``); by default they are no registers.
    """
    nonzero = sig.any()
    if max_lz is not None and max_lz <= 1 and subnormals == "ftz":
        mant, guard, sticky, exp_field = _normalise_one_bit(m, sig, exp_top, g, name)
        mant, guard, sticky, exp_field, nonzero = stage("align", 2 + len(sig) / 8, mant=mant, guard=guard,
                                                        sticky=sticky, exp_field=exp_field, nonzero=nonzero)
    elif subnormals == "ftz" or not _can_be_tiny(sig, exp_top, g):
        mant, guard, sticky, exp_field, nonzero = _normalise_left(m, sig, exp_top, g, max_lz, name, stage, nonzero)
    else:
        mant, guard, sticky, exp_field, nonzero = _normalise_shift(m, sig, exp_top, g, subnormals, max_lz, name,
                                                                   stage, nonzero)
    round_up = guard & (sticky | mant[0])
    # exponent and mantissa as one integer: the rounding carry moves into the exponent by itself
    mag = fit(m, (exp_field << g.man_bits) + mant + round_up, signed(len(exp_field) + g.man_bits + 1), f"{name}_mag")
    limit = g.nan_code if g.kind == "fn" else g.inf_code
    overflow = mag >= limit
    zero = ~nonzero | ((mag < (1 << g.man_bits)) if subnormals == "ftz" else ~mag.any())
    return stage("round", 3 + len(mag) / 8, mag=mag[:g.width - 1], overflow=overflow & ~zero, zero=zero)


def _exponent_width(exp_top, g: Format) -> int:
    """Bits of a signed biased exponent derived from ``exp_top``: room for the bias and a carry."""
    return max(len(exp_top), g.exp_bits + 1) + 2


def _normalise_one_bit(m: Module, sig, exp_top, g: Format, name: str):
    """The leading one is in the top two bits (a product of normal significands): a 2:1 mux."""
    if len(sig) < g.man_bits + 3:
        sig = Cat(Const(0, g.man_bits + 3 - len(sig)), sig)
    width = len(sig)
    top = sig[width - 1]
    aligned = fit(m, Mux(top, sig, sig << 1), width, f"{name}_aligned")
    exp_field = fit(m, exp_top + (g.bias - 1) + top, signed(_exponent_width(exp_top, g)), f"{name}_e_lead")
    cut = width - 1 - g.man_bits
    return aligned[cut:width - 1], aligned[cut - 1], aligned[:cut - 1].any(), exp_field


def _can_be_tiny(sig, exp_top, g: Format) -> bool:
    """Can the value fall below the smallest normal?  Not when its exponent is a constant that keeps
    even the lowest bit of ``sig`` in the normal range (e.g. a Kulisch accumulator read out to fp32)."""
    if isinstance(exp_top, Const):
        return exp_top.value - (len(sig) - 1) + g.bias < 1
    return True


def _normalise_left(m: Module, sig, exp_top, g: Format, max_lz, name: str, stage, nonzero):
    """Normalisation by a left shift only (no denormalising): for ftz, or where nothing is tiny."""
    if len(sig) < g.man_bits + 3:
        sig = Cat(Const(0, g.man_bits + 3 - len(sig)), sig)
    width = len(sig)
    lz = leading_zeros(m, sig, f"{name}_lz", max_lz)
    exp_field = fit(m, exp_top - lz + g.bias, signed(_exponent_width(exp_top, g) + (width - 1).bit_length()),
                    f"{name}_e_lead")
    sig, lz, exp_field, nonzero = stage("normalise", 3 + width.bit_length(), sig=sig, lz=lz, exp_field=exp_field,
                                        nonzero=nonzero)
    aligned = fit(m, sig << lz, width, f"{name}_aligned")
    cut = width - 1 - g.man_bits
    return stage("align", 2 + len(lz) + width / 8, mant=aligned[cut:width - 1], guard=aligned[cut - 1],
                 sticky=aligned[:cut - 1].any(), exp_field=exp_field, nonzero=nonzero)


def _normalise_shift(m: Module, sig, exp_top, g: Format, subnormals: str, max_lz, name: str, stage, nonzero):
    """General normalisation: count leading zeros, and below the smallest normal (``full``)
    denormalise, in one left shift of a zero-extended significand."""
    width = len(sig)
    base = g.man_bits + 2                                  # right shifts beyond this leave only sticky
    lz = leading_zeros(m, sig, f"{name}_lz", max_lz)
    # biased exponent of the leading one
    e_lead = fit(m, exp_top - lz + g.bias, signed(_exponent_width(exp_top, g) + (len(sig) - 1).bit_length()),
                 f"{name}_e_lead")
    if subnormals == "full":
        # below the smallest normal the result is denormalised: the shift puts 2**(1 - B_G) on top
        tiny = e_lead < 1
        shift = Mux(tiny, exp_top + (g.bias - 1), lz)
        exp_field = Mux(tiny, 0, e_lead)
    else:
        shift, exp_field = lz, e_lead
    amount = fit(m, Mux(shift < -base, 0, shift + base), range(width + 2 * base + 1), f"{name}_shift")
    sig, amount, exp_field, nonzero = stage("normalise", 6 + width.bit_length(), sig=sig, amount=amount,
                                            exp_field=exp_field, nonzero=nonzero)
    aligned = fit(m, Cat(Const(0, base), sig) << amount, 2 * width + 2 * base, f"{name}_aligned")
    top = width - 1 + 2 * base                             # where the hidden bit lands
    return stage("align", 2 + len(amount), mant=aligned[top - g.man_bits:top], guard=aligned[top - g.man_bits - 1],
                 sticky=aligned[:top - g.man_bits - 1].any(), exp_field=exp_field, nonzero=nonzero)
