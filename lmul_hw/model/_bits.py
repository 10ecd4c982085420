"""Shared plumbing of the unit models: operand fields and the special-value outcomes of SPEC §2/§3."""

from __future__ import annotations

import numpy as np

from ..formats import Format


def check_bits(bits, fmt: Format, name: str) -> np.ndarray:
    """``bits`` as an integer array of bit patterns of ``fmt``; ValueError naming the argument ``name``
    for non-integer dtypes (floats, bools, objects) or values outside 0..2**width - 1."""
    try:
        x = np.asarray(bits)
    except (ValueError, TypeError, OverflowError) as exc:
        raise ValueError(f"{name} must be integer bit patterns: {exc}") from None
    if x.dtype.kind not in "ui":
        raise ValueError(f"{name} must be integer bit patterns of {fmt.name}, not an array of {x.dtype}")
    if x.size:
        lo, hi = int(x.min()), int(x.max())
        top = (1 << fmt.width) - 1
        if lo < 0 or hi > top:
            bad = lo if lo < 0 else hi
            raise ValueError(f"{name} holds {bad}, out of range for {fmt.name}: its bit patterns are "
                             f"0..{top:#x} ({fmt.width} bits, unsigned)")
    return x


def as_result(out: np.ndarray):
    """The results' common shape: a numpy array, or for 0-d (scalar) operands a numpy scalar of the
    product format's unsigned dtype (e.g. ``np.uint8``), as numpy's own ufuncs return."""
    out = np.asarray(out)
    return out[()] if out.ndim == 0 else out


class Operand:
    """The fields of an array of bit patterns, as int64 arrays."""

    def __init__(self, bits, fmt: Format):
        x = np.asarray(bits)
        if x.dtype.kind not in "ui":
            raise ValueError(f"bit patterns must be integer arrays, not {x.dtype}")
        x = x.astype(np.int64)
        if x.size and (x.min() < 0 or x.max() >> fmt.width):
            raise ValueError(f"bit patterns out of range for {fmt.name} ({fmt.width} bits)")
        self.sign = x >> fmt.sign_shift
        self.exp = (x >> fmt.man_bits) & fmt.exp_all_ones
        self.man = x & fmt.man_mask
        self.zero_or_sub = self.exp == 0
        self.is_zero = self.zero_or_sub & (self.man == 0)
        top = self.exp == fmt.exp_all_ones
        if fmt.kind == "ieee":
            self.inf = top & (self.man == 0)
            self.nan = top & (self.man != 0)
        else:
            self.inf = np.zeros_like(top)
            self.nan = top & (self.man == fmt.man_mask)


def finish(mag, sign, *, nan, overflow, zero, out_fmt: Format, overflow_mode: str):
    """Apply the special outcomes (priority NaN > overflow > zero) and attach the sign."""
    mag = np.where(zero, 0, mag)
    mag = np.where(overflow, out_fmt.overflow_code(overflow_mode), mag)
    mag = np.where(nan, out_fmt.nan_code, mag)
    out = (sign << out_fmt.sign_shift) | mag
    return out.astype(np.uint64).astype(out_fmt.dtype)
