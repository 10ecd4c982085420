"""IEEE binary32 addition, RNE, subnormals kept: the tensor core's ``fp32`` accumulation step
(SPEC §4).  Its reference is numpy's ``np.float32(x + y)``, used by ``lmul_hw.model.matmul``."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed

from ..formats import get_format
from .fields import Fields, fit
from .rounding import normalise_round

FP32 = get_format("fp32")
FP32_NAN = 0x7FC00000
_GRS = 3        # guard, round and sticky bits below the significand: enough for one correct rounding


def fp32_add(m: Module, x, y, name: str = "add"):
    """The fp32 bit pattern of x + y, rounded once to nearest even.

    The operands are ordered by magnitude, the smaller is aligned with its shifted-out bits
    jammed into a sticky bit, the significands are added or subtracted, and the shared rounder
    normalises and rounds.  Exact cancellation gives +0 (-0 only for -0 + -0)."""
    f = FP32
    fx, fy = Fields(m, x, f, f"{name}_x"), Fields(m, y, f, f"{name}_y")
    swap = y[:31] > x[:31]
    big = Mux(swap, y, x)
    small = Mux(swap, x, y)
    e_big = Signal(8, name=f"{name}_e_big")
    e_small = Signal(8, name=f"{name}_e_small")
    m.d.comb += [e_big.eq(Mux(big[23:31].any(), big[23:31], 1)),
                 e_small.eq(Mux(small[23:31].any(), small[23:31], 1))]
    sig_big = Cat(Const(0, _GRS), big[:23], big[23:31] != 0)
    sig_small = Cat(Const(0, _GRS), small[:23], small[23:31] != 0)
    width = len(sig_big)
    diff = fit(m, e_big - e_small, 8, f"{name}_diff")
    dist = Mux(diff > width, width, diff)
    aligned = Signal(width, name=f"{name}_aligned")
    lost = Signal(name=f"{name}_lost")
    m.d.comb += [aligned.eq(sig_small >> dist),
                 lost.eq((sig_small & ((Const(1, width + 1) << dist) - 1)[:width]).any())]
    jammed = aligned | lost
    subtract = big[31] ^ small[31]
    total = fit(m, Mux(subtract, sig_big - jammed, sig_big + jammed), width + 1, f"{name}_total")
    exp_top = Signal(signed(10), name=f"{name}_exp_top")
    m.d.comb += exp_top.eq(e_big - (f.bias + f.man_bits + _GRS) + width)   # top bit of total
    mag, overflow, zero = normalise_round(m, total, exp_top, f, subnormals="full", name=f"{name}_rnd")

    inf_sign = Mux(fx.inf, x[31], y[31])
    nan = fx.nan | fy.nan | (fx.inf & fy.inf & (x[31] != y[31]))
    out = Signal(32, name=f"{name}_sum")
    with m.If(nan):
        m.d.comb += out.eq(FP32_NAN)
    with m.Elif(fx.inf | fy.inf):
        m.d.comb += out.eq(Cat(Const(f.inf_code, 31), inf_sign))
    with m.Elif(overflow):
        m.d.comb += out.eq(Cat(Const(f.inf_code, 31), big[31]))
    with m.Elif(zero):
        m.d.comb += out.eq(Cat(Const(0, 31), x[31] & y[31]))
    with m.Else():
        m.d.comb += out.eq(Cat(mag, big[31]))
    return out
