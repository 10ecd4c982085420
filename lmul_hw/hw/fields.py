"""The fields and value classes of an operand (SPEC §1), as Amaranth signals."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal

from ..formats import Format


class Fields:
    """Sign, exponent, mantissa and the class flags of one operand's bit pattern."""

    def __init__(self, m: Module, bits, fmt: Format, name: str):
        self.fmt = fmt
        self.sign = bits[fmt.sign_shift]
        self.exp = bits[fmt.man_bits:fmt.sign_shift]
        self.man = bits[:fmt.man_bits]
        self.zero_or_sub = Signal(name=f"{name}_zero_or_sub")
        self.is_zero = Signal(name=f"{name}_zero")
        self.inf = Signal(name=f"{name}_inf")
        self.nan = Signal(name=f"{name}_nan")
        exp_top = self.exp == fmt.exp_all_ones
        m.d.comb += [
            self.zero_or_sub.eq(self.exp == 0),
            self.is_zero.eq(bits[:fmt.sign_shift] == 0),
        ]
        if fmt.kind == "ieee":
            m.d.comb += [self.inf.eq(exp_top & (self.man == 0)), self.nan.eq(exp_top & (self.man != 0))]
        else:
            m.d.comb += [self.inf.eq(0), self.nan.eq(bits[:fmt.sign_shift] == fmt.mag_mask)]

    def exp_man(self, k: int):
        """The exponent field followed by the top k mantissa bits, as one unsigned integer."""
        return Cat(self.man[self.fmt.man_bits - k:], self.exp)
