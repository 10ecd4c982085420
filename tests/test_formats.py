"""Layer 1: the formats of SPEC §1 and the product formats / accumulator widths of SPEC §4."""

from __future__ import annotations

import math
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

import reference as R
from lmul_hw.config import CoreConfig, core_unit
from lmul_hw.formats import (NAMED_FORMATS, Format, FpClass, accumulator_width, classify, decode, encode,
                             get_format, product_format)

# (name, E, M, kind, max finite, dtype)
NAMED = [
    ("e4m3", 4, 3, "fn", 448.0, np.uint8),
    ("e5m2", 5, 2, "ieee", 57344.0, np.uint8),
    ("bf16", 8, 7, "ieee", float((2 - Fraction(1, 2 ** 7)) * 2 ** 127), np.uint16),
    ("fp16", 5, 10, "ieee", 65504.0, np.uint16),
    ("fp32", 8, 23, "ieee", float(np.finfo(np.float32).max), np.uint32),
]

ORACLE_DTYPES = {
    "e4m3": ml_dtypes.float8_e4m3fn,
    "e5m2": ml_dtypes.float8_e5m2,
    "bf16": ml_dtypes.bfloat16,
    "fp16": np.float16,
}

CLASS_OF = {R.ZERO: FpClass.ZERO, R.SUBNORMAL: FpClass.SUBNORMAL, R.NORMAL: FpClass.NORMAL,
            R.INFINITY: FpClass.INF, R.NOTANUMBER: FpClass.NAN}


def all_codes(fmt) -> np.ndarray:
    f = get_format(fmt)
    return np.arange(1 << f.width, dtype=np.uint64).astype(f.dtype)


# -- named and custom formats ----------------------------------------------------------------

@pytest.mark.parametrize("name,E,M,kind,maxval,dtype", NAMED)
def test_named_format(name, E, M, kind, maxval, dtype):
    f = get_format(name)
    assert (f.name, f.exp_bits, f.man_bits, f.kind) == (name, E, M, kind)
    assert f.width == 1 + E + M
    assert f.bias == 2 ** (E - 1) - 1
    assert f.dtype is dtype
    assert f.max_finite == maxval
    assert f.min_normal == 2.0 ** (1 - f.bias)
    assert f.min_subnormal == 2.0 ** (1 - f.bias - M)
    assert f.has_inf == (kind == "ieee")
    assert get_format(name.upper()) is f and get_format(f) is f and NAMED_FORMATS[name] is f
    # special codes as SPEC §1 spells them
    top = (1 << E) - 1
    if kind == "ieee":
        assert f.nan_code == (top << M) | (1 << (M - 1))
        assert f.inf_code == top << M
        assert f.max_finite_code == ((top - 1) << M) | ((1 << M) - 1)
    else:
        assert f.nan_code == (top << M) | ((1 << M) - 1)
        assert f.max_finite_code == (top << M) | ((1 << M) - 2)
        with pytest.raises(ValueError):
            f.inf_code
    assert f.overflow_code("saturate") == f.max_finite_code
    assert f.overflow_code("ieee") == (f.inf_code if kind == "ieee" else f.nan_code)


def test_special_codes_of_the_8bit_formats():
    e4m3, e5m2 = get_format("e4m3"), get_format("e5m2")
    assert (e4m3.nan_code, e4m3.max_finite_code) == (0x7F, 0x7E)
    assert (e5m2.nan_code, e5m2.inf_code, e5m2.max_finite_code) == (0x7E, 0x7C, 0x7B)
    assert get_format("bf16").nan_code == 0x7FC0 and get_format("fp16").nan_code == 0x7E00
    assert get_format("fp32").nan_code == 0x7FC00000


@pytest.mark.parametrize("name,E,M,dtype", [
    ("e2m1", 2, 1, np.uint8), ("e3m4", 3, 4, np.uint8), ("e6m3", 6, 3, np.uint16), ("e7m2", 7, 2, np.uint16),
    ("e10m7", 10, 7, np.uint32), ("e6m7", 6, 7, np.uint16), ("e7m5", 7, 5, np.uint16), ("e7m21", 7, 21, np.uint32),
    ("e8m23", 8, 23, np.uint32), ("e8m24", 8, 24, np.uint64), ("e11m52", 11, 52, np.uint64),
    ("e2m52", 2, 52, np.uint64), ("e11m1", 11, 1, np.uint16), ("E5M10", 5, 10, np.uint16),
])
def test_custom_formats(name, E, M, dtype):
    f = get_format(name)
    assert (f.exp_bits, f.man_bits, f.kind, f.width) == (E, M, "ieee", 1 + E + M)
    assert f.dtype is dtype
    assert f.bias == 2 ** (E - 1) - 1


@pytest.mark.parametrize("name", [
    "e1m3", "e12m3", "e0m2", "e4m0", "e5m53", "e11m53", "e2m60", "e4m3fn", "fp8", "bf8", "", "e4", "m3",
    "e-1m3", "e4m-3", "float32", "e 4m3", "e4m3e5m2",
])
def test_bad_format_names_raise(name):
    with pytest.raises(ValueError):
        get_format(name)


@pytest.mark.parametrize("bad", [4, None, 3.5, ("e4m3",)])
def test_format_must_be_name_or_object(bad):
    with pytest.raises(ValueError):
        get_format(bad)


@pytest.mark.parametrize("args", [("x", 1, 3, "ieee"), ("x", 12, 3, "ieee"), ("x", 4, 0, "ieee"),
                                  ("x", 4, 53, "ieee"), ("x", 4, 3, "ocp")])
def test_bad_format_objects_raise(args):
    with pytest.raises(ValueError):
        Format(*args)


# -- decode ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["e4m3", "e5m2", "bf16", "fp16"])
def test_decode_matches_ml_dtypes_for_every_code(name):
    codes = all_codes(name)
    ours = decode(codes, name)
    with np.errstate(invalid="ignore"):
        theirs = codes.view(ORACLE_DTYPES[name]).astype(np.float64)
    assert ours.dtype == np.float64 and ours.shape == codes.shape
    nan_o, nan_t = np.isnan(ours), np.isnan(theirs)
    bad = (nan_o != nan_t) | (~nan_o & ((ours != theirs) | (np.signbit(ours) != np.signbit(theirs))))
    assert not bad.any(), (f"{name}: decode differs from ml_dtypes at codes "
                           f"{[hex(int(c)) for c in codes[bad][:10]]}: ours {ours[bad][:10]}, "
                           f"ml_dtypes {theirs[bad][:10]}")
    assert nan_o.sum() == (2 if name == "e4m3" else 2 * ((1 << get_format(name).man_bits) - 1))


@pytest.mark.parametrize("name", ["e4m3", "e5m2", "e3m4", "e2m1", "e6m3", "e7m2"])
def test_decode_matches_exact_reference(name):
    codes = all_codes(name)
    ours = decode(codes, name)
    for c, v in zip(codes, ours):
        ref = R.decode(int(c), name)
        if isinstance(ref, float) and math.isnan(ref):
            assert math.isnan(v), f"{name} {R.describe(int(c), name)}: decoded {v}"
        else:
            assert Fraction(v) == ref if not math.isinf(v) else v == ref, \
                f"{name} {R.describe(int(c), name)}: decoded {v}"
            if v == 0:
                assert math.copysign(1, v) == (-1 if int(c) >> (get_format(name).width - 1) else 1)


def test_decode_wide_formats():
    x = np.array([1.0, -2.5, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, -0.0, np.inf])
    got = decode(x.view(np.uint64), "e11m52")
    assert np.array_equal(got, x) and np.signbit(got[5])
    y = np.array([1.0, -3.0e-45, 1.1754944e-38, 3.4028235e38, np.inf, -np.inf], dtype=np.float32)
    assert np.array_equal(decode(y.view(np.uint32), "fp32"), y.astype(np.float64))


# -- classify ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["e4m3", "e5m2", "bf16", "fp16", "e3m4", "e2m1"])
def test_classify_every_code(name):
    codes = all_codes(name)
    got = classify(codes, name)
    assert got.shape == codes.shape
    want = np.array([CLASS_OF[R.classify(int(c), name)] for c in codes], dtype=np.uint8)
    bad = got != want
    assert not bad.any(), f"{name}: classify wrong at {[R.describe(int(c), name) for c in codes[bad][:8]]}"
    counts = np.bincount(got, minlength=5)
    f = get_format(name)
    assert counts[FpClass.ZERO] == 2 and counts[FpClass.SUBNORMAL] == 2 * f.man_mask
    assert counts[FpClass.INF] == (2 if f.kind == "ieee" else 0)


def test_classify_named_examples():
    assert list(classify(np.array([0x00, 0x80, 0x01, 0x08, 0x7E, 0x7F, 0xFF, 0x78], np.uint8), "e4m3")) == [
        FpClass.ZERO, FpClass.ZERO, FpClass.SUBNORMAL, FpClass.NORMAL, FpClass.NORMAL, FpClass.NAN, FpClass.NAN,
        FpClass.NORMAL]
    assert list(classify(np.array([0x7C, 0xFC, 0x7D, 0x7E, 0x7F, 0x7B, 0x03], np.uint8), "e5m2")) == [
        FpClass.INF, FpClass.INF, FpClass.NAN, FpClass.NAN, FpClass.NAN, FpClass.NORMAL, FpClass.SUBNORMAL]


# -- encode ------------------------------------------------------------------------------------

def encode_probe_values(fmt, rng) -> np.ndarray:
    """Finite values, the midpoints between neighbours (the RNE ties), values a hair either side
    of them, the region beyond max finite, tiny values, specials and random values.  8-bit formats:
    every code; wider ones: a sample of codes plus the edges (subnormal/normal, max finite)."""
    f = get_format(fmt)
    top = int(f.max_finite_code)
    if f.width <= 8:
        codes = np.arange(top, dtype=np.uint64)
    else:
        edges = [0, 1, 2, f.man_mask - 1, f.man_mask, f.man_mask + 1, top - 2, top - 1]
        codes = np.unique(np.concatenate([rng.integers(0, top, 3000, dtype=np.uint64), edges]).astype(np.uint64))
    lo, hi = decode(codes, f), decode(codes + np.uint64(1), f)    # neighbours (all finite: codes < max finite)
    step = hi - lo
    maxv, ulp_max = f.max_finite, f.max_finite - float(decode(np.array([top - 1], np.uint64), f)[0])
    beyond = maxv + ulp_max * np.array([0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 4.0])
    mids = np.concatenate([lo + step / 2, beyond, lo[:1] + step[:1] * np.array([0.25, 0.75])])
    vals = np.concatenate([lo, hi, mids, np.nextafter(mids, np.inf), np.nextafter(mids, -np.inf),
                           2.0 ** rng.uniform(-2 * f.bias - f.man_bits - 4, f.bias + 3, 2000),
                           [0.0, np.inf, np.nan, f.max_finite * 1e10, 1e300, 1e-300, 5e-324]])
    return np.concatenate([vals, -vals])


ENCODE_FORMATS = ["e4m3", "e5m2", "bf16", "fp16", "fp32", "e3m4", "e2m1", "e6m3", "e7m21", "e10m7"]


@pytest.mark.parametrize("name", ENCODE_FORMATS)
@pytest.mark.parametrize("overflow", ["ieee", "saturate"])
def test_encode_matches_exact_rne_reference(name, overflow):
    rng = np.random.default_rng(1234)
    vals = encode_probe_values(name, rng)
    got = encode(vals, name, overflow)
    assert got.dtype == get_format(name).dtype
    want = np.array([R.round_value(float(v), name, overflow) for v in vals], dtype=np.uint64)
    R.assert_bits_equal(got, want, out_fmt=name, what=f"encode to {name} ({overflow})",
                        inputs=[("value", vals.view(np.uint64), "e11m52")])
    # the probe must have hit ties and both kinds of overflow
    assert (np.abs(vals) > get_format(name).max_finite).any()


@pytest.mark.parametrize("name", ENCODE_FORMATS)
def test_encode_decode_round_trip(name):
    f = get_format(name)
    rng = np.random.default_rng(7)
    codes = all_codes(name) if f.width <= 16 else rng.integers(0, 1 << f.width, 50000, dtype=np.uint64)
    codes = codes[classify(codes, f) != FpClass.NAN].astype(f.dtype)
    back = encode(decode(codes, f), f)
    bad = back != codes
    assert not bad.any(), f"{name}: round trip fails at {[R.describe(int(c), f) for c in codes[bad][:8]]}"


def test_encode_e4m3_overflow_edge():
    # 464 is the tie between 448 (1.110 * 2^8, even) and 480 (1.111 * 2^8 = the NaN code): RNE gives 448
    v = np.array([448.0, 464.0, 464.00001, 465.0, 480.0, 1e9, np.inf, -464.0, -465.0, -np.inf])
    assert list(encode(v, "e4m3", "ieee")) == [0x7E, 0x7E, 0x7F, 0x7F, 0x7F, 0x7F, 0x7F, 0xFE, 0xFF, 0xFF]
    assert list(encode(v, "e4m3", "saturate")) == [0x7E] * 7 + [0xFE] * 3


def test_encode_e5m2_overflow_edge():
    # 61440 is the tie between 57344 (1.11 * 2^15, odd) and 65536: RNE rounds up, beyond max -> overflow
    v = np.array([57344.0, 61439.0, 61440.0, np.inf, -61440.0, -np.inf])
    assert list(encode(v, "e5m2", "ieee")) == [0x7B, 0x7B, 0x7C, 0x7C, 0xFC, 0xFC]
    assert list(encode(v, "e5m2", "saturate")) == [0x7B, 0x7B, 0x7B, 0x7B, 0xFB, 0xFB]
    assert list(encode(np.array([65504.0, 65519.99, 65520.0]), "fp16")) == [0x7BFF, 0x7BFF, 0x7C00]


def test_encode_ties_and_subnormals():
    # e4m3: 1 + 1/16 is the tie between 1 (even) and 1.125; 1 + 3/16 between 1.125 and 1.25 (even)
    assert list(encode(np.array([1.0625, 1.1875, 1.0625000001, -1.0625]), "e4m3")) == [0x38, 0x3A, 0x39, 0xB8]
    # e4m3 subnormals are multiples of 2^-9
    q = 2.0 ** -9
    v = np.array([q, q / 2, q * 0.5000001, q * 1.5, q * 2.5, q * 7.5, -q / 2, -q * 0.25])
    assert list(encode(v, "e4m3")) == [0x01, 0x00, 0x01, 0x02, 0x02, 0x08, 0x80, 0x80]
    # fp16: the largest subnormal + half a quantum rounds up to the smallest normal
    assert list(encode(np.array([2.0 ** -14 - 2.0 ** -25, 2.0 ** -25, 2.0 ** -26]), "fp16")) == [0x0400, 0x0000,
                                                                                               0x0000]


def test_encode_specials():
    for name in ["e4m3", "e5m2", "bf16", "fp16", "fp32"]:
        f = get_format(name)
        got = encode(np.array([np.nan, -np.nan, 0.0, -0.0]), f)
        assert [int(x) for x in got] == [f.nan_code, f.sign_bit | f.nan_code, 0, f.sign_bit], name
        if f.has_inf:
            assert [int(x) for x in encode(np.array([np.inf, -np.inf]), f)] == [f.inf_code, f.sign_bit | f.inf_code]
    with pytest.raises(ValueError):
        encode(np.array([1.0]), "e4m3", "clamp")


@pytest.mark.parametrize("name,oracle", [("fp32", np.float32), ("fp16", np.float16), ("e11m52", np.float64)])
def test_encode_matches_numpy_casts(name, oracle):
    rng = np.random.default_rng(99)
    f = get_format(name)
    lo = -2 * f.bias - f.man_bits - 2
    v = np.concatenate([rng.standard_normal(20000) * 2.0 ** rng.integers(lo, min(f.bias + 2, 1023), 20000),
                        [0.0, -0.0, np.inf, -np.inf]])
    with np.errstate(over="ignore"):
        want = v.astype(oracle).view(f.dtype)
    R.assert_bits_equal(encode(v, f), want, out_fmt=f, what=f"encode vs numpy {oracle.__name__}")


@pytest.mark.parametrize("name", ["e4m3", "e5m2", "bf16"])
def test_encode_matches_ml_dtypes_from_float32(name):
    rng = np.random.default_rng(5)
    f = get_format(name)
    with np.errstate(over="ignore"):
        v = (rng.standard_normal(20000) * 2.0 ** rng.integers(-2 * f.bias - 5, f.bias + 3, 20000)).astype(np.float32)
    want = v.astype(ORACLE_DTYPES[name]).view(f.dtype)
    R.assert_bits_equal(encode(v.astype(np.float64), f), want, out_fmt=f, nan_by_class=True,
                        what=f"encode vs ml_dtypes {name}")


# -- SPEC §4: product formats and accumulator widths -------------------------------------------

@pytest.mark.parametrize("fmt,mul,k,want", [
    ("e4m3", "lmul", None, "e6m3"), ("e5m2", "lmul", None, "e7m2"), ("bf16", "lmul", None, "e10m7"),
    ("fp16", "lmul", None, "e7m10"), ("e4m3", "lmul", 2, "e6m2"), ("bf16", "lmul", 3, "e10m3"),
    ("e4m3", "fpmul", None, "e6m7"), ("e5m2", "fpmul", None, "e7m5"), ("fp16", "fpmul", None, "e7m21"),
    ("bf16", "fpmul", None, "e10m15"),
])
def test_product_format(fmt, mul, k, want):
    g = product_format(fmt, mul, k)
    assert g.name == want and g.kind == "ieee"
    assert (g.exp_bits, g.man_bits) == (get_format(want).exp_bits, get_format(want).man_bits)


def test_product_format_rejects_unknown_multiplier():
    with pytest.raises(ValueError):
        product_format("e4m3", "mitchell")
    with pytest.raises(ValueError):
        accumulator_width("e4m3", "mitchell", 16)


def _tight_span(fmt, mul, k=None, c=None):
    """(lsb, msb) from the reference multiplier at the extreme operands: every finite product is
    a multiple of 2^lsb and below 2^msb in magnitude (and the bounds are attained)."""
    f = get_format(fmt)
    g = R.core_product_format(f, mul, k)
    mx = R.max_finite_bits(f)
    mn_normal = 1 << f.man_bits
    if mul == "lmul":
        kk = f.man_bits if k is None else k
        cc = R.resolve_offset(kk) if c is None else c
        big = max(abs(R.decode(R.lmul_ref(a, b, f, kk, cc, g), g))
                  for a in (mx, mx - 1, mx - 2) for b in (mx, mx - 1, mx - 2))
        small = R.decode(R.lmul_ref(mn_normal, mn_normal, f, kk, cc, g), g)
        lsb = R.floor_log2(small) - kk          # L-Mul products are 1.m (k bits) * 2^e, e >= that of small
    else:
        big = R.decode(R.fpmul_ref(mx, mx, f, g), g)
        lsb = 2 * (1 - R.bias(f) - f.man_bits)  # the smallest subnormal squared
        assert R.decode(R.fpmul_ref(1, 1, f, g), g) == Fraction(2) ** lsb
    return lsb, R.floor_log2(big) + 1


@pytest.mark.parametrize("fmt,mul,k,c", [
    ("e4m3", "lmul", None, None), ("e4m3", "lmul", 2, None), ("e4m3", "lmul", 1, None),
    ("e5m2", "lmul", None, None), ("e5m2", "lmul", 1, None), ("fp16", "lmul", None, None),
    ("fp16", "lmul", 4, None), ("bf16", "lmul", None, None),
    ("e4m3", "fpmul", None, None), ("e5m2", "fpmul", None, None), ("fp16", "fpmul", None, None),
    ("bf16", "fpmul", None, None),
    # non-default offsets
    ("e4m3", "lmul", 1, 0), ("e4m3", "lmul", 3, 5), ("e4m3", "lmul", 3, 2), ("e4m3", "lmul", 3, 8),
    ("e5m2", "lmul", 2, 4), ("fp16", "lmul", 10, 1024), ("fp16", "lmul", 4, 0),
])
@pytest.mark.parametrize("depth", [1, 2, 3, 16, 1000, 4096, 65536])
def test_accumulator_width_is_every_product_plus_guard_and_sign(fmt, mul, k, c, depth):
    f = get_format(fmt)
    default = c is None
    if mul == "lmul" and c is None:   # the core always passes its resolved offset
        c = R.resolve_offset(f.man_bits if k is None else k)
    lsb, msb = _tight_span(fmt, mul, k, c)
    tight = (msb - lsb) + math.ceil(math.log2(depth)) + 1
    width = accumulator_width(fmt, mul, depth, k=k, offset=c)
    if default:
        assert width == tight
    else:
        # sound (holds every product) and at most one bit over: with c = 2^k no product reaches
        # the lowest lsb, and for e4m3 the NaN mantissa 111 is counted in the largest carry
        assert tight <= width <= tight + 1


def test_accumulator_width_exhaustive_8bit_products():
    """Every finite product of all 65,536 pairs is a multiple of 2^lsb below 2^msb (e4m3/e5m2)."""
    for fmt in ("e4m3", "e5m2"):
        f = get_format(fmt)
        for mul in ("lmul", "fpmul"):
            g = R.core_product_format(f, mul)
            fn = (lambda a, b: R.lmul_ref(a, b, f, out_fmt=g)) if mul == "lmul" else \
                (lambda a, b: R.fpmul_ref(a, b, f, out_fmt=g))
            codes = range(0, 1 << (f.width - 1), 1)
            vals = {R.decode(fn(a, b), g) for a in codes for b in codes}
            finite = [v for v in vals if not isinstance(v, float) and v != 0]
            lsb, msb = _tight_span(fmt, mul)
            assert all((v / Fraction(2) ** lsb).denominator == 1 for v in finite)
            assert max(finite) < Fraction(2) ** msb <= 2 * max(finite)
            assert min(finite) == Fraction(2) ** lsb if mul == "fpmul" else min(finite) >= Fraction(2) ** lsb


@pytest.mark.parametrize("fmt,mul,depth,want", [
    # SPEC §4 numbers of the cores (default k and offset): (msb - lsb) + ceil(log2 K) + 1
    ("e4m3", "lmul", 65536, (18 + 15) + 16 + 1),       # lsb 2^-6 * 2^-6 / 2^3; max 1.75 * 2^17 < 2^18
    ("e5m2", "lmul", 65536, (32 + 30) + 16 + 1),
    ("fp16", "lmul", 65536, (33 + 38) + 16 + 1),       # fp16's default c = 2^6 makes max products carry twice
    ("e4m3", "fpmul", 65536, (18 + 18) + 16 + 1),
    ("e5m2", "fpmul", 65536, (32 + 32) + 16 + 1),
    ("fp16", "fpmul", 65536, (32 + 48) + 16 + 1),      # 97 bits, the widest accepted
    ("fp16", "fpmul", 1, 80 + 1),
    ("e4m3", "lmul", 1000, 33 + 10 + 1),
    ("bf16", "lmul", 1, (257 + 259) + 1),
    ("bf16", "fpmul", 1, (256 + 266) + 1),
])
def test_accumulator_width_numbers(fmt, mul, depth, want):
    unit = core_unit(mul, fmt)
    width = accumulator_width(fmt, mul, depth, offset=getattr(unit, "offset", None))
    assert width == want
    if fmt == "bf16":
        with pytest.raises(ValueError, match=f"{want}-bit"):
            CoreConfig(1, 1, mul, fmt, "exact", depth)
    else:
        assert want <= 128
        assert CoreConfig(4, 4, mul, fmt, "exact", depth).acc_width == want
