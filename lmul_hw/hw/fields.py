"""The fields and value classes of an operand (SPEC §1), as Amaranth signals."""

from __future__ import annotations

from functools import cached_property

from amaranth.hdl import Cat, Const, Module, Shape, Signal, Value

from ..formats import Format


def fit(m: Module, value, shape, name: str):
    """``value`` truncated or extended to ``shape``, exactly as a ``Signal(shape)`` assigned from it
    would hold it, computed once into a signal ``name`` as wide as ``value`` itself.

    A signal narrower than the operation that drives it would be an unread alias in the Verilog
    (the readers use the operation's own wire); one exactly as wide is that wire, named.  Bits the
    value cannot reach (an adder's carry-out) are then left unread, which is intended."""
    shape, value = Shape.cast(shape), Value.cast(value)
    full = Signal(value.shape(), name=name)
    m.d.comb += full.eq(value)
    extra = shape.width - len(full)
    if extra <= 0:
        out = full[:shape.width]
    elif full.shape().signed:
        out = Cat(full, full[-1].replicate(extra))
    else:
        out = Cat(full, Const(0, extra))
    return out.as_signed() if shape.signed else out


class Fields:
    """Sign, exponent, mantissa and the class flags of one operand's bit pattern.

    A flag becomes logic (a named signal) only when the datapath reads it, so that the Verilog has
    no unused wires; a flag that is constant for the format (``inf`` of an ``fn`` format) is a
    constant."""

    def __init__(self, m: Module, bits, fmt: Format, name: str):
        self.fmt = fmt
        self._m, self._bits, self._name = m, bits, name
        self.sign = bits[fmt.sign_shift]
        self.exp = bits[fmt.man_bits:fmt.sign_shift]
        self.man = bits[:fmt.man_bits]

    def _flag(self, suffix: str, value):
        sig = Signal(name=f"{self._name}_{suffix}")
        self._m.d.comb += sig.eq(value)
        return sig

    @cached_property
    def zero_or_sub(self):
        return self._flag("zero_or_sub", ~self.exp.any())

    @cached_property
    def is_zero(self):
        return self._flag("zero", ~self._bits[:self.fmt.sign_shift].any())

    @cached_property
    def _exp_top(self):
        return self.exp == self.fmt.exp_all_ones

    @cached_property
    def inf(self):
        if self.fmt.kind != "ieee":
            return Const(0, 1)
        return self._flag("inf", self._exp_top & ~self.man.any())

    @cached_property
    def nan(self):
        if self.fmt.kind != "ieee":
            return self._flag("nan", self._bits[:self.fmt.sign_shift] == self.fmt.mag_mask)
        return self._flag("nan", self._exp_top & self.man.any())

    def exp_man(self, k: int):
        """The exponent field followed by the top k mantissa bits, as one unsigned integer."""
        return Cat(self.man[self.fmt.man_bits - k:], self.exp)
