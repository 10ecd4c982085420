"""Layer 1: the bit-exact model against outside oracles.

- fpmul (G = F, subnormals full, overflow ieee) against ml_dtypes: cast(float32(x) * float32(y)),
  for all 65,536 pairs of e4m3 and e5m2 (SPEC §3), NaN by class; likewise numpy / ml_dtypes for
  seeded random pairs of the 16- and 32-bit formats (their products are exact in float32/float64,
  so one cast is the single RNE rounding).
- lmul fp32 with k = 23 against the paper's PTX emulation: on the magnitudes x + y - 0x3F780000,
  sign XOR, wherever that result is normal (SPEC §2).
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

import reference as R
from lmul_hw.formats import FpClass, classify, get_format
from lmul_hw.model import fpmul, lmul

ML = {"e4m3": ml_dtypes.float8_e4m3fn, "e5m2": ml_dtypes.float8_e5m2, "bf16": ml_dtypes.bfloat16,
      "fp16": np.float16, "fp32": np.float32}


@pytest.mark.parametrize("fmt", ["e4m3", "e5m2"])
def test_fpmul_all_pairs_match_ml_dtypes(fmt):
    f = get_format(fmt)
    codes = np.arange(256, dtype=np.uint8)
    a, b = np.meshgrid(codes, codes, indexing="ij")
    vals = codes.view(ML[fmt]).astype(np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        want = (vals[:, None] * vals[None, :]).astype(ML[fmt]).view(np.uint8)
    got = fpmul(a, b, fmt=fmt)
    assert got.dtype == np.uint8 and got.shape == (256, 256)
    R.assert_bits_equal(got, want, out_fmt=fmt, nan_by_class=True, what=f"fpmul {fmt} vs ml_dtypes",
                        inputs=[("a", a, fmt), ("b", b, fmt)])
    # the model's NaNs are the canonical ones with sign XOR (SPEC §1), which ml_dtypes does not promise
    nan = classify(got, f) == FpClass.NAN
    sign = ((a ^ b) >> 7).astype(np.uint64)
    assert np.array_equal(got[nan].astype(np.uint64), (sign[nan] << 7) | f.nan_code)
    # the comparison covered every class of result
    assert set(np.unique(classify(got, f))) == ({0, 1, 2, 4} if fmt == "e4m3" else {0, 1, 2, 3, 4})


def _random_codes(fmt, n, rng):
    """Random bit patterns with every class well represented: uniform codes, plus small and large
    exponents so that products underflow and overflow."""
    f = get_format(fmt)
    codes = rng.integers(0, 1 << f.width, n, dtype=np.uint64)
    e = rng.integers(0, f.exp_all_ones + 1, n, dtype=np.uint64)
    e = np.where(rng.random(n) < 0.5, np.minimum(e, rng.integers(0, 4, n, dtype=np.uint64)), e)
    shaped = (codes & np.uint64(f.sign_bit | f.man_mask)) | (e << np.uint64(f.man_bits))
    return np.where(rng.random(n) < 0.5, codes, shaped).astype(f.dtype)


@pytest.mark.parametrize("fmt", ["bf16", "fp16", "fp32"])
def test_fpmul_random_pairs_match_numpy(fmt):
    f = get_format(fmt)
    rng = np.random.default_rng(2024)
    n = 200_000
    a, b = _random_codes(fmt, n, rng), _random_codes(fmt, n, rng)
    with np.errstate(invalid="ignore", over="ignore"):
        x, y = a.view(ML[fmt]).astype(np.float64), b.view(ML[fmt]).astype(np.float64)
        # the product of two <= 24-bit significands is exact in float64; one cast rounds it once
        # (bf16: float64 -> float32 is exact here, then float32 -> bf16 is the one rounding)
        prod = x * y
        want = (prod.astype(np.float32) if fmt == "bf16" else prod).astype(ML[fmt]).view(f.dtype)
    got = fpmul(a, b, fmt=fmt)
    R.assert_bits_equal(got, want, out_fmt=fmt, nan_by_class=True, what=f"fpmul {fmt} vs numpy",
                        inputs=[("a", a, fmt), ("b", b, fmt)])
    cls = classify(got, f)
    for c in FpClass:
        assert (cls == c).sum() > 100, f"random {fmt} pairs gave too few {c.name} results"


def test_lmul_fp32_matches_ptx_emulation():
    """The paper's PTX: L-Mul on fp32 is the integer x + y - 0x3F780000 of the magnitudes, sign XOR."""
    rng = np.random.default_rng(410_00907)
    n = 600_000
    sign_a = rng.integers(0, 2, n, dtype=np.int64)
    sign_b = rng.integers(0, 2, n, dtype=np.int64)
    # normal operands: exponent fields 1..254, any mantissa; bias the exponents towards results in range
    ea = rng.integers(1, 255, n, dtype=np.int64)
    eb = np.clip(254 - ea + rng.integers(-127, 128, n), 1, 254).astype(np.int64)   # result exponent ~127 +- 127
    eb = np.where(rng.random(n) < 0.3, rng.integers(1, 255, n, dtype=np.int64), eb)
    ma = rng.integers(0, 1 << 23, n, dtype=np.int64)
    mb = rng.integers(0, 1 << 23, n, dtype=np.int64)
    # include the mantissa carry edge: m_a + m_b + 2^19 at and around 2^23
    edge = rng.random(n) < 0.2
    mb = np.where(edge, np.clip((1 << 23) - (1 << 19) - ma + rng.integers(-2, 3, n), 0, (1 << 23) - 1), mb)
    xa, xb = (ea << 23) | ma, (eb << 23) | mb
    r = xa + xb - 0x3F780000
    normal = (r >= 0x00800000) & (r < 0x7F800000)
    a = ((sign_a << 31) | xa)[normal].astype(np.uint32)
    b = ((sign_b << 31) | xb)[normal].astype(np.uint32)
    want = (((sign_a ^ sign_b) << 31) | r)[normal].astype(np.uint32)
    assert len(a) >= 200_000
    assert (((ma + mb + (1 << 19)) >= (1 << 23))[normal]).sum() > 20_000      # plenty of carries
    got = lmul(a, b, fmt="fp32", k=23)
    assert got.dtype == np.uint32
    R.assert_bits_equal(got, want, out_fmt="fp32", what="lmul fp32 k=23 vs PTX x + y - 0x3F780000",
                        inputs=[("a", a, "fp32"), ("b", b, "fp32")])
    # and the same pairs through float32 arithmetic: the bit-level trick is an approximation of a*b
    with np.errstate(over="ignore", under="ignore"):
        exact = a.view(np.float32).astype(np.float64) * b.view(np.float32).astype(np.float64)
    rel = np.abs(got.view(np.float32).astype(np.float64) / exact - 1)
    assert rel.max() < 0.125


def test_lmul_paper_examples():
    """A few hand-worked L-Mul products (fp32, k = 23, c = 2^19: (1 + x + y + 2^-4) * 2^(e_x + e_y))."""
    def f32(v):
        return np.array([v], dtype=np.float32).view(np.uint32)

    def run(x, y):
        return float(lmul(f32(x), f32(y), fmt="fp32").view(np.float32)[0])

    assert run(1.0, 1.0) == 1.0625
    assert run(1.5, 1.25) == (1 + 0.5 + 0.25 + 0.0625)
    assert run(-2.0, 3.0) == -2 * 2 * (1 + 0.5 + 0.0625)
    # the mantissas carry: 0.75 + 0.75 + 0.0625 = 1.5625 -> exponent + 1, mantissa 0.5625 (the adder,
    # not the paper's equation (1), which would give 2.5625)
    assert run(1.75, 1.75) == 2 * (1 + 0.75 + 0.75 + 0.0625 - 1)
