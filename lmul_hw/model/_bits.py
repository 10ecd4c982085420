"""Shared plumbing of the unit models: operand fields and the special-value outcomes of SPEC §2/§3."""

from __future__ import annotations

import numpy as np

from ..formats import Format


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
