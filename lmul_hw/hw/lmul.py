"""The L-Mul unit (SPEC §2): ONE integer adder; its bit-exact reference is ``lmul_hw.model.lmul``."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal

from ..config import LMulConfig
from .unit import Unit
from .fields import Fields, fit


def at_least(r, t: int):
    """``r >= t`` for an unsigned signal ``r`` and a constant ``t``, as an AND/OR chain from the
    LSB up: a set bit of ``t`` needs the bit of ``r`` (AND), a clear one is passed by it (OR).
    No subtraction, so no second carry chain; the threshold's trailing zero bits drop out."""
    if t <= 0:
        return Const(1, 1)
    if t >> len(r):
        return Const(0, 1)
    out = Const(1, 1)
    for i in range((t & -t).bit_length() - 1, len(r)):
        out = (r[i] & out) if (t >> i) & 1 else (r[i] | out)
    return out


def plus_const(v, c: int):
    """``v + c`` for a constant ``c`` (``v`` wide enough to hold it), as XOR/AND/OR gates rippling
    up from ``c``'s lowest one bit: no adder cell, so synthesis merges each bit into its reader."""
    low = (c & -c).bit_length() - 1
    bits, carry = [v[i] for i in range(low)], Const(0, 1)
    for i in range(low, len(v)):
        if (c >> i) & 1:
            bits.append(~(v[i] ^ carry))
            carry = v[i] | carry
        else:
            bits.append(v[i] ^ carry)
            carry = v[i] & carry
    return Cat(*bits)


class LMul(Unit):
    """``p = s | e | m`` with ``{e, m} = {e_a, m_a} + {e_b, m_b} + (B_G - 2 B_F) 2^k + c``.

    The exponent and truncated-mantissa fields of each operand are read as one integer; their sum
    with the injected constant is the product's exponent and mantissa, the mantissa carry running
    into the exponent by itself (the paper's offset injection).  The constant is folded into the
    ONE carry-propagate adder: its bit 0 is the adder's carry-in; its other one bits (the row)
    either form a constant carry-save row (XOR/XNOR and AND/OR with the operand bits, no carries of
    their own) or, when they span at most ``ROW_INTO_OPERANDS_SPAN`` bits, are added to the operands
    by short increments of gates: the row's lowest one bit to b, the others to a.  On a LUT FPGA an
    increment merges into the adder's propagate LUTs, where a carry-save row costs a second LUT per
    bit for the carry chain's generate input (docs/luts.md).
    Around the adder sit only the special cases: NaN, infinity, zero/subnormal inputs (flushed),
    underflow and overflow, the last two read off the sum by comparing it with constants.
    """

    #: widest row added to the operands: an adder bit's propagate then reads at most 5 operand bits
    #: (one LUT); wider, the increments outgrow a LUT and the carry-save row is smaller
    ROW_INTO_OPERANDS_SPAN = 4

    def __init__(self, cfg: LMulConfig):
        super().__init__(cfg)

    def datapath(self, m: Module, a, b):
        cfg = self.cfg
        f, g, k = cfg.fmt, cfg.out_fmt, cfg.k
        x, y = Fields(m, a, f, "a"), Fields(m, b, f, "b")
        field = f.exp_bits + k                      # {e, m} of an operand
        width = g.exp_bits + k                      # {e, m} of the product
        lo, hi = cfg.bias_offset, 2 * ((1 << field) - 1) + cfg.bias_offset
        # The adder computes R + D: D, a multiple of 2^width, keeps the sum non-negative and leaves
        # its low `width` bits, the product's {e, m}, those of R.
        shift = -(lo >> width) << width if lo < 0 else 0
        inject = cfg.bias_offset + shift            # the constant the adder injects (>= 0)
        carry_in, row = inject & 1, inject & ~1
        ea_ma, eb_mb = x.exp_man(k), y.exp_man(k)
        n = max(field, row.bit_length())
        j = (row & -row).bit_length() - 1
        if row and n - j <= self.ROW_INTO_OPERANDS_SPAN:
            # b + the row's lowest one bit and a + the rest, n + 1 bits each (split so that neither
            # increment is long; CMOS 536 transistors for e4m3 against 566 with the whole row on b)
            if row != 1 << j:
                ea_ma = plus_const(Cat(ea_ma, Const(0, n + 1 - field)), row - (1 << j))
            eb_mb = plus_const(Cat(eb_mb, Const(0, n + 1 - field)), 1 << j)
        elif row:
            # carry-save row of the constant: bit by bit, sum = x ^ y ^ row and carry =
            # majority(x, y, row) one place up; below the row's lowest one bit the operands pass
            ea_ma, eb_mb = Cat(ea_ma, Const(0, n - field)), Cat(eb_mb, Const(0, n - field))
            csa_sum, csa_carry = Signal(n - j, name="csa_sum"), Signal(n - j, name="csa_carry")
            m.d.comb += [
                csa_sum.eq(ea_ma[j:] ^ eb_mb[j:] ^ (row >> j)),
                csa_carry.eq((ea_ma[j:] & eb_mb[j:]) | ((ea_ma[j:] | eb_mb[j:]) & (row >> j))),
            ]
            ea_ma, eb_mb = Cat(ea_ma[:j], csa_sum), Cat(eb_mb[:j], Const(0, 1), csa_carry)
        ea_ma, eb_mb = self.stage(m, "decode", 1 if row else 0, ea_ma=ea_ma, eb_mb=eb_mb)
        # the one addition: = {e_a, m_a} + {e_b, m_b} + bias_offset + shift, kept to the bits it can reach
        r = fit(m, ea_ma + eb_mb + carry_in, range(hi + shift + 1), "sum")
        r = self.stage(m, "add", 1 + len(r) / 8, r=r)

        code = g.overflow_code(cfg.overflow)
        top = (g.max_exp_field + 1) << k                 # e beyond the largest finite exponent
        if g.kind == "fn" and g.man_bits == k and code != (1 << width) - 1:
            top -= 1    # e all ones with an all-ones mantissa is NaN (no need when it is the code)
        overflow = at_least(r, top + shift)
        underflow = ~at_least(r, (1 << k) + shift)      # e <= 0
        r, overflow, underflow = self.stage(m, "normalise", 1 + len(r) / 8, r=r, overflow=overflow,
                                            underflow=underflow)
        x, y = Fields(m, self.ops[0], f, "a"), Fields(m, self.ops[1], f, "b")

        flushed = x.zero_or_sub | y.zero_or_sub
        inf = x.inf | y.inf
        nan = x.nan | y.nan | (inf & flushed)
        if (1 << k) - 1 + (1 << field) - 1 + cfg.bias_offset >= top:
            overflow = overflow & ~flushed               # only if a flushed operand can reach it
        ovf = inf | overflow
        zero = flushed | underflow
        exp_man = Signal(width, name="exp_man")          # {e, m} of the product, 0 when zero
        m.d.comb += exp_man.eq(r[:width] & ~zero.replicate(width))
        result = Cat(Const(0, g.man_bits - k), exp_man)
        if code == g.nan_code:
            mag = Mux(nan | ovf, code, result)
        else:
            mag = Mux(nan, g.nan_code, Mux(ovf, code, result))
        return self.stage(m, "out", 3, p=Cat(mag[:g.width - 1], x.sign ^ y.sign))
