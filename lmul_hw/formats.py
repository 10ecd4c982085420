"""Floating-point bit formats (SPEC §1) and the product formats of the tensor core (SPEC §4).

A :class:`Format` knows only integers: widths, bias, field positions and the codes of its special
values.  Both the numpy model and the Amaranth hardware build on it, so nothing here assumes numpy
except the vectorised ``encode``/``decode``/``classify`` helpers at the bottom.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

__all__ = [
    "Format", "FpClass", "get_format", "product_format", "product_span", "accumulator_width",
    "encode", "decode", "classify", "NAMED_FORMATS", "UNIT_MAX_WIDTH",
]

#: Operand formats of the units are at most this wide (SPEC §1); product formats may be up to 64 bits.
UNIT_MAX_WIDTH = 32


class FpClass(IntEnum):
    """Value classes, in the order used by :func:`classify`."""
    ZERO = 0
    SUBNORMAL = 1
    NORMAL = 2
    INF = 3
    NAN = 4


@dataclass(frozen=True)
class Format:
    """A binary floating-point format: sign | exponent field | mantissa field, MSB first.

    ``kind`` is ``"ieee"`` (all-ones exponent: inf or NaN) or ``"fn"`` (no infinities; only the
    all-ones exponent with an all-ones mantissa is NaN, as in OCP E4M3).
    """
    name: str
    exp_bits: int
    man_bits: int
    kind: str = "ieee"

    def __post_init__(self):
        if self.kind not in ("ieee", "fn"):
            raise ValueError(f"format {self.name!r}: kind must be 'ieee' or 'fn', not {self.kind!r}")
        if not 2 <= self.exp_bits <= 11:
            raise ValueError(f"format {self.name!r}: exponent bits must be 2..11, got {self.exp_bits}")
        if not 1 <= self.man_bits <= 52:
            raise ValueError(f"format {self.name!r}: mantissa bits must be 1..52, got {self.man_bits}")
        if self.width > 64:
            raise ValueError(f"format {self.name!r}: 1+E+M = {self.width} exceeds 64 bits")

    # -- widths and fields -------------------------------------------------------------------
    @property
    def width(self) -> int:
        return 1 + self.exp_bits + self.man_bits

    @property
    def bias(self) -> int:
        return (1 << (self.exp_bits - 1)) - 1

    @property
    def sign_shift(self) -> int:
        return self.exp_bits + self.man_bits

    @property
    def exp_all_ones(self) -> int:
        return (1 << self.exp_bits) - 1

    @property
    def man_mask(self) -> int:
        return (1 << self.man_bits) - 1

    @property
    def mag_mask(self) -> int:
        return (1 << self.sign_shift) - 1

    @property
    def sign_bit(self) -> int:
        return 1 << self.sign_shift

    @property
    def max_exp_field(self) -> int:
        """Largest exponent field that holds finite values."""
        return self.exp_all_ones if self.kind == "fn" else self.exp_all_ones - 1

    @property
    def has_inf(self) -> bool:
        return self.kind == "ieee"

    # -- special codes (magnitudes; OR in the sign bit) ---------------------------------------
    @property
    def max_finite_code(self) -> int:
        man = self.man_mask - 1 if self.kind == "fn" else self.man_mask
        return (self.max_exp_field << self.man_bits) | man

    @property
    def nan_code(self) -> int:
        """The canonical NaN magnitude: ieee 1..1|10..0, fn 1..1|1..1."""
        man = self.man_mask if self.kind == "fn" else 1 << (self.man_bits - 1)
        return (self.exp_all_ones << self.man_bits) | man

    @property
    def inf_code(self) -> int:
        if not self.has_inf:
            raise ValueError(f"format {self.name} has no infinity")
        return self.exp_all_ones << self.man_bits

    def overflow_code(self, overflow: str) -> int:
        """Magnitude that an overflowing result takes (SPEC §2 step 6)."""
        if overflow == "saturate":
            return self.max_finite_code
        return self.inf_code if self.has_inf else self.nan_code

    # -- values (exact Python floats; fine for every format here) -----------------------------
    @property
    def max_finite(self) -> float:
        return float(decode(np.array([self.max_finite_code], dtype=np.uint64), self)[0])

    @property
    def min_normal(self) -> float:
        return 2.0 ** (1 - self.bias)

    @property
    def min_subnormal(self) -> float:
        return 2.0 ** (1 - self.bias - self.man_bits)

    @property
    def dtype(self) -> type:
        """The smallest unsigned numpy integer type that holds a bit pattern."""
        for bits, dt in ((8, np.uint8), (16, np.uint16), (32, np.uint32)):
            if self.width <= bits:
                return dt
        return np.uint64

    def __str__(self) -> str:
        return self.name


NAMED_FORMATS = {
    "e4m3": Format("e4m3", 4, 3, "fn"),
    "e5m2": Format("e5m2", 5, 2, "ieee"),
    "bf16": Format("bf16", 8, 7, "ieee"),
    "fp16": Format("fp16", 5, 10, "ieee"),
    "fp32": Format("fp32", 8, 23, "ieee"),
}

_CUSTOM = re.compile(r"e(\d+)m(\d+)")


def get_format(fmt: str | Format) -> Format:
    """A format by name (``"e4m3"``, ``"bf16"``, custom ``"e6m3"``) or the object itself."""
    if isinstance(fmt, Format):
        return fmt
    if not isinstance(fmt, str):
        raise ValueError(f"format must be a name or a Format, not {type(fmt).__name__}")
    key = fmt.strip().lower()
    if key in NAMED_FORMATS:
        return NAMED_FORMATS[key]
    m = _CUSTOM.fullmatch(key)
    if m is None:
        known = ", ".join(NAMED_FORMATS)
        raise ValueError(f"unknown format {fmt!r}: use one of {known} or eXmY (2<=X<=11, 1<=Y<=52)")
    return Format(key, int(m.group(1)), int(m.group(2)), "ieee")


def product_format(fmt: str | Format, mul: str, k: int | None = None) -> Format:
    """The exact product format of the tensor core (SPEC §4): ieee, E_F + 2 exponent bits and
    k mantissa bits for ``lmul`` or 2*M_F + 1 for ``fpmul``."""
    f = get_format(fmt)
    if mul == "lmul":
        man = f.man_bits if k is None else k
    elif mul == "fpmul":
        man = 2 * f.man_bits + 1
    else:
        raise ValueError(f"unknown multiplier {mul!r}: use 'lmul' or 'fpmul'")
    e = f.exp_bits + 2
    return get_format(f"e{e}m{man}")


def product_span(fmt: str | Format, mul: str, k: int | None = None, offset: int | None = None) -> tuple[int, int]:
    """(lsb, msb): every finite product the tensor core can form (SPEC §4) is an integer multiple
    of 2**lsb with magnitude below 2**msb."""
    f = get_format(fmt)
    emax = f.max_exp_field
    if mul == "lmul":
        # value = (2^k + m) * 2^(e - B_G - k) with e = ea + eb + (B_G - 2 B_F) + carry, ea, eb >= 1
        kk = f.man_bits if k is None else k
        c = (1 << kk) if offset is None else offset
        carry = (2 * ((1 << kk) - 1) + c) >> kk
        return 2 - 2 * f.bias - kk, 2 * emax + carry - 2 * f.bias + 1
    if mul == "fpmul":
        # significands below 2^(M+1); every value is a multiple of the subnormal quantum 2^(1-B-M)
        return 2 * (1 - f.bias - f.man_bits), 2 * (emax - f.bias + 1)
    raise ValueError(f"unknown multiplier {mul!r}: use 'lmul' or 'fpmul'")


def accumulator_width(fmt: str | Format, mul: str, depth: int, *, k: int | None = None,
                      offset: int | None = None) -> int:
    """Bits of the exact (Kulisch) accumulator of SPEC §4: every product that can occur,
    ceil(log2 depth) guard bits and a sign."""
    lsb, msb = product_span(fmt, mul, k, offset)
    return (msb - lsb) + max(depth - 1, 0).bit_length() + 1


# ---------------------------------------------------------------------------------------------
# numpy helpers

def classify(bits, fmt: str | Format) -> np.ndarray:
    """FpClass codes (uint8 array) of bit patterns."""
    f = get_format(fmt)
    x = np.asarray(bits).astype(np.uint64)
    e = (x >> np.uint64(f.man_bits)) & np.uint64(f.exp_all_ones)
    m = x & np.uint64(f.man_mask)
    out = np.full(x.shape, FpClass.NORMAL, dtype=np.uint8)
    out[(e == 0) & (m == 0)] = FpClass.ZERO
    out[(e == 0) & (m != 0)] = FpClass.SUBNORMAL
    top = e == f.exp_all_ones
    if f.kind == "ieee":
        out[top & (m == 0)] = FpClass.INF
        out[top & (m != 0)] = FpClass.NAN
    else:
        out[top & (m == f.man_mask)] = FpClass.NAN
    return out


def decode(bits, fmt: str | Format) -> np.ndarray:
    """Bit patterns -> float64 values (exact for every format whose values fit float64)."""
    f = get_format(fmt)
    x = np.asarray(bits).astype(np.uint64)
    e = ((x >> np.uint64(f.man_bits)) & np.uint64(f.exp_all_ones)).astype(np.int64)
    m = (x & np.uint64(f.man_mask)).astype(np.float64)
    neg = (x >> np.uint64(f.sign_shift)) & np.uint64(1)
    sig = np.where(e == 0, m, m + float(1 << f.man_bits))
    scale = np.where(e == 0, 1 - f.bias, e - f.bias) - f.man_bits
    with np.errstate(over="ignore"):
        val = np.ldexp(sig, scale.astype(np.int32))
    cls = classify(x, f)
    val = np.where(cls == FpClass.INF, np.inf, val)
    val = np.where(cls == FpClass.NAN, np.nan, val)
    return np.where(neg == 1, -val, val)


def encode(values, fmt: str | Format, overflow: str = "ieee") -> np.ndarray:
    """float64 values -> bit patterns, rounded to nearest even once.

    Overflow (a rounded magnitude beyond the largest finite value, or onto an fn format's NaN
    code) gives inf for ieee formats and NaN for fn formats, or max finite with ``saturate``.
    Infinities follow the same rule; NaN gives the canonical NaN.
    """
    f = get_format(fmt)
    if overflow not in ("ieee", "saturate"):
        raise ValueError(f"overflow must be 'ieee' or 'saturate', not {overflow!r}")
    v = np.asarray(values, dtype=np.float64)
    neg = np.signbit(v)
    a = np.abs(v)
    finite = np.isfinite(a)
    a_f = np.where(finite, a, 0.0)
    _, ex = np.frexp(a_f)                      # a = frac * 2**ex, frac in [0.5, 1)
    e = np.maximum(ex.astype(np.int64) - 1, 1 - f.bias)   # unbiased exponent of the binade (or subnormal)
    q = e - f.man_bits                         # exponent of the last mantissa bit
    n = np.rint(np.ldexp(a_f, (-q).astype(np.int32))).astype(np.int64)   # RNE in numpy
    carry = n >> (f.man_bits + 1)
    e = e + carry
    n = n >> carry
    normal = n >= (1 << f.man_bits)
    exp_field = np.where(normal, e + f.bias, 0)
    mag = (exp_field << f.man_bits) | (n & f.man_mask)
    over = (exp_field > f.max_exp_field) | ~finite
    if f.kind == "fn":
        over |= mag.astype(np.uint64) == np.uint64(f.nan_code)
    mag = np.where(over, f.overflow_code(overflow), mag).astype(np.uint64)
    mag = np.where(np.isnan(v), np.uint64(f.nan_code), mag)
    out = mag | np.where(neg, np.uint64(f.sign_bit), np.uint64(0))
    return out.astype(f.dtype)
