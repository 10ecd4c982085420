"""The multiplication methods compared: L-Mul with k mantissa bits and an offset, fp8 (operands
rounded to e4m3 or e5m2, then multiplied exactly) and, as a yardstick, the exact product rounded once
to the operand format's precision.  Each is a unit configuration of ``lmul_hw.config`` plus, for fp8,
the conversion of the operands; products come from the bit-exact model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import CORE_FORMATS, FPMulConfig, LMulConfig, core_unit, default_offset_exp
from ..formats import Format, get_format
from ..model.fpmul import fpmul_bits
from ..model.lmul import lmul_bits
from ..model.matmul import products as model_products
from .operands import convert, fast_decode

__all__ = ["Method", "lmul_method", "fp8_method", "rne_method", "paper_offset", "check_source_format",
           "FP8_FORMATS"]

FP8_FORMATS = ("e4m3", "e5m2")


def paper_offset(k: int) -> int:
    """The paper's offset c = 2**(k - l(k)) in units of the last of the k mantissa bits."""
    return 1 << (k - default_offset_exp(k))


def check_source_format(fmt) -> Format:
    f = get_format(fmt)
    if f.name not in CORE_FORMATS:
        raise ValueError(f"accuracy analyses operand formats {', '.join(CORE_FORMATS)}, not {f.name}")
    return f


@dataclass(frozen=True)
class Method:
    """A way of multiplying operands given in a source format.

    ``unit`` computes the products (in its product format, decoded exactly to float64); operands are
    first rounded from the source format to ``unit.fmt`` (RNE, saturating) when the two differ.
    ``rule`` says where an L-Mul offset came from: ``paper``, ``min-mean`` or ``zero-bias``.
    """
    id: str
    label: str
    kind: str                      # "lmul", "fp8", "rne" (or "fpmul" for a bare unit)
    unit: LMulConfig | FPMulConfig
    rule: str | None = None

    @property
    def k(self) -> int | None:
        return self.unit.k if isinstance(self.unit, LMulConfig) else None

    @property
    def offset(self) -> int | None:
        return self.unit.offset if isinstance(self.unit, LMulConfig) else None

    def operands(self, a, b, src_fmt):
        src = get_format(src_fmt)
        if self.unit.fmt == src:
            return a, b
        return (convert(a, src, self.unit.fmt, overflow="saturate"),
                convert(b, src, self.unit.fmt, overflow="saturate"))

    def products(self, a, b, src_fmt) -> np.ndarray:
        """The method's products of source-format bit patterns ``a``, ``b`` as float64: what
        ``lmul_hw.model.matmul.products`` gives (8-bit formats go through it; wider ones through the
        model's unit and a cached decoding table, which is faster than ``formats.decode``)."""
        x, y = self.operands(a, b, src_fmt)
        if self.unit.fmt.width == 8:
            return model_products(x, y, self.unit)
        mul = lmul_bits if isinstance(self.unit, LMulConfig) else fpmul_bits
        return fast_decode(mul(x, y, self.unit), self.unit.out_fmt)


def lmul_method(fmt, k: int, offset: int | None = None, rule: str | None = None) -> Method:
    """L-Mul in ``fmt`` with k bits and offset c (default: the paper's), forming its products exactly
    in the tensor core's product format (SPEC §4: E+2 exponent bits, so no overflow or underflow)."""
    f = check_source_format(fmt)
    if offset is None:
        c, rule = paper_offset(k), "paper"
    else:
        c = offset
        rule = rule or ("paper" if c == paper_offset(k) else "given")
    unit = core_unit("lmul", f, k=k, offset=c)
    return Method(f"lmul_{f.name}_k{k}_c{c}_{rule}", f"L-Mul k={k} c={c} ({rule})", "lmul", unit, rule)


def fp8_method(target: str) -> Method:
    """Operands rounded RNE (saturating) to fp8 ``target``, then multiplied exactly (SPEC §4 product)."""
    t = get_format(target)
    if t.name not in FP8_FORMATS:
        raise ValueError(f"fp8 method needs e4m3 or e5m2, not {t.name}")
    return Method(f"fp8_{t.name}", f"{t.name} (operands RNE, exact product)", "fp8", core_unit("fpmul", t))


def rne_method(fmt) -> Method:
    """Yardstick: the exact product rounded once (RNE) to the operand format's mantissa width, with
    the exponent range widened so that it neither overflows nor underflows."""
    f = check_source_format(fmt)
    g = get_format(f"e{f.exp_bits + 2}m{f.man_bits}")
    return Method(f"rne_{f.name}", f"exact product RNE to {f.man_bits} bits", "rne", FPMulConfig(f, out_fmt=g))
