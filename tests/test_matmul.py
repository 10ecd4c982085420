"""Layer 1: the tile computation of the tensor core (SPEC §4), lmul_hw.model.matmul, against the
slow reference (Python-int Kulisch accumulation; the numpy fp32 recipe) of tests/reference.py."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

import reference as R
from lmul_hw.formats import accumulator_width, encode, get_format
from lmul_hw.model import matmul

FP32 = "fp32"


def seed_of(*parts) -> int:
    return zlib.crc32(repr(parts).encode())


def operands(fmt, shape, rng, mix="finite"):
    """Random bit patterns of ``fmt``.

    ``finite``: normals around 1 with zeros and subnormals mixed in; ``wide``: exponent fields
    uniform over the whole range (plus zeros and subnormals); ``special``: like ``wide`` with a few
    infinities and NaNs (where the format has them); ``signed_zeros``: only +-0 and subnormals."""
    f = get_format(fmt)
    n = int(np.prod(shape))
    u = np.uint64
    man = rng.integers(0, 1 << f.man_bits, n, dtype=u)
    if mix == "finite":
        exp = rng.integers(max(1, f.bias - 4), f.bias + 4, n, dtype=u)
    else:
        exp = rng.integers(1, f.max_exp_field + 1, n, dtype=u)
    r = rng.random(n)
    exp = np.where(r < 0.2, u(0), exp)                                  # zeros and subnormals
    man = np.where(r < 0.1, u(0), man)
    if mix == "signed_zeros":
        exp[:] = 0
    if f.kind == "fn":   # keep e4m3's NaN code out of the finite mixes
        man = np.where((exp == f.exp_all_ones) & (man == f.man_mask), u(f.man_mask - 1), man)
    codes = (rng.integers(0, 2, n, dtype=u) << u(f.sign_shift)) | (exp << u(f.man_bits)) | man
    if mix == "special":
        s = rng.random(n)
        codes = np.where(s < 0.02, u(f.nan_code) | (codes & u(f.sign_bit)), codes)
        if f.has_inf:
            codes = np.where((s >= 0.02) & (s < 0.05), u(f.inf_code) | (codes & u(f.sign_bit)), codes)
    return codes.astype(f.dtype).reshape(shape)


def check(A, B, mul, fmt, acc, **opts):
    got = matmul(A, B, mul=mul, fmt=fmt, acc=acc, **opts)
    want = R.matmul_ref(A, B, mul, fmt, acc, **opts)
    assert got.dtype == np.uint32 and got.shape == (A.shape[0], B.shape[1])
    M, K = A.shape
    what = f"matmul mul={mul} fmt={fmt} acc={acc} {opts} M={M} K={K} N={B.shape[1]}"
    f = get_format(fmt)

    def operands_of(pos):
        i, j = pos
        show = (lambda v: R.describe(int(v), f)) if K <= 8 else (lambda v: f"0x{int(v):x}")
        head = 8 if K > 8 else K
        more = f" ... ({K} in all)" if K > 8 else ""
        return (f"A[{i}, :] = [{', '.join(show(v) for v in A[i, :head])}{more}]\n"
                f"      B[:, {j}] = [{', '.join(show(v) for v in B[:head, j])}{more}]")

    R.assert_bits_equal(got, want, out_fmt=FP32, what=what, detail=operands_of)
    return got


SHAPES = [(1, 1, 1), (1, 1, 6), (5, 1, 1), (3, 1, 4), (1, 9, 1), (1, 12, 7), (6, 5, 1), (4, 16, 3), (2, 33, 5)]
MIXES = ["finite", "wide", "special", "signed_zeros"]
CASES = [(mix, shape) for mix in MIXES for shape in SHAPES if mix != "signed_zeros" or shape[1] > 1]


@pytest.mark.parametrize("mix,shape", CASES, ids=[f"{m}-{s[0]}x{s[1]}x{s[2]}" for m, s in CASES])
@pytest.mark.parametrize("fmt,acc", [("e4m3", "exact"), ("e4m3", "fp32"), ("e5m2", "exact"), ("e5m2", "fp32"),
                                     ("fp16", "exact"), ("fp16", "fp32"), ("bf16", "fp32"), ("fp32", "fp32")])
@pytest.mark.parametrize("mul", ["lmul", "fpmul"])
def test_matmul_matches_reference(mul, fmt, acc, mix, shape):
    M, K, N = shape
    rng = np.random.default_rng(seed_of(mul, fmt, acc, mix, shape))
    A = operands(fmt, (M, K), rng, mix)
    B = operands(fmt, (K, N), rng, mix)
    check(A, B, mul, fmt, acc)


@pytest.mark.parametrize("mul,fmt,acc,opts", [
    ("lmul", "e4m3", "exact", dict(k=2)),
    ("lmul", "e4m3", "fp32", dict(k=1, offset=0)),
    ("lmul", "e4m3", "exact", dict(k=3, offset=8)),
    ("lmul", "e4m3", "exact", dict(offset_exp=0)),
    ("lmul", "e5m2", "exact", dict(k=1)),
    ("lmul", "e5m2", "fp32", dict(offset=3)),
    ("lmul", "fp16", "exact", dict(k=4, offset=5)),
    ("lmul", "fp16", "exact", dict(k=10, offset=1024)),
    ("lmul", "fp16", "fp32", dict(k=7, offset_exp=1)),
    ("lmul", "bf16", "fp32", dict(k=3)),
    ("lmul", "bf16", "fp32", dict(offset=0)),
    ("fpmul", "e4m3", "exact", dict(subnormals="ftz")),
    ("fpmul", "e5m2", "exact", dict(subnormals="ftz")),
    ("fpmul", "e5m2", "fp32", dict(subnormals="ftz")),
    ("fpmul", "fp16", "exact", dict(subnormals="ftz")),
    ("fpmul", "bf16", "fp32", dict(subnormals="ftz")),
    ("lmul", "fp32", "fp32", dict(k=4)),
    ("fpmul", "fp32", "fp32", dict(subnormals="ftz")),
])
@pytest.mark.parametrize("mix", ["wide", "special"])
def test_matmul_unit_options(mul, fmt, acc, opts, mix):
    rng = np.random.default_rng(seed_of(mul, fmt, acc, opts, mix))
    A = operands(fmt, (3, 24), rng, mix)
    B = operands(fmt, (24, 4), rng, mix)
    check(A, B, mul, fmt, acc, **opts)


# -- the exponent bands and the double-double of the exact path -------------------------------

@pytest.mark.parametrize("mul,fmt,opts", [("fpmul", "fp16", {}), ("lmul", "fp16", {}), ("lmul", "e5m2", {}),
                                          ("fpmul", "e5m2", {}), ("lmul", "e5m2", dict(k=1)),
                                          ("fpmul", "fp16", dict(subnormals="ftz")), ("lmul", "fp16", dict(k=2))])
def test_exact_whole_exponent_range(mul, fmt, opts):
    """Operands with every exponent field (and subnormals): products span the whole accumulator."""
    f = get_format(fmt)
    rng = np.random.default_rng(seed_of(mul, fmt, opts))
    K = 2 * f.max_exp_field + 2
    A = operands(fmt, (3, K), rng, "wide")
    B = operands(fmt, (K, 4), rng, "wide")
    # make sure each row / column really runs through every exponent field
    A[0] = ((np.arange(K) % (f.exp_all_ones)) << f.man_bits).astype(f.dtype) | A[0] & f.man_mask
    B[:, 0] = ((np.arange(K)[::-1] % (f.exp_all_ones)) << f.man_bits).astype(f.dtype) | B[:, 0] & f.man_mask
    check(A, B, mul, fmt, "exact", **opts)


def cancelling_operands(fmt, K, rng, tail_a, tail_b):
    """A (2 x K), B (K x 2): K-1 products that cancel in pairs (every magnitude, placed at random
    positions) and, at the last position, the pair (tail_a, tail_b)."""
    f = get_format(fmt)
    half = (K - 1) // 2
    x = operands(fmt, (half,), rng, "wide")
    y = operands(fmt, (half,), rng, "wide")
    # x * y and x * (-y) cancel exactly for both multipliers (sign symmetry)
    xs = np.concatenate([x, x])
    ys = np.concatenate([y, y ^ np.array(f.sign_bit, dtype=f.dtype)])
    if len(xs) < K - 1:
        xs, ys = np.append(xs, 0).astype(f.dtype), np.append(ys, 0).astype(f.dtype)
    perm = rng.permutation(K - 1)
    a = np.append(xs[perm], tail_a).astype(f.dtype)
    b = np.append(ys[perm], tail_b).astype(f.dtype)
    A = np.stack([a, a[::-1]])
    B = np.stack([b, b[::-1]], axis=1)
    return A, B


# (the model's exact L-Mul path expands fp16 operands by 2^k = 1024 blocks: K = 1024 keeps it quick)
@pytest.mark.parametrize("mul,fmt,K", [("fpmul", "fp16", 4096), ("lmul", "fp16", 1024), ("lmul", "e5m2", 4096),
                                       ("fpmul", "e5m2", 4096), ("lmul", "e4m3", 4096), ("fpmul", "e4m3", 4096)])
def test_exact_large_k_with_cancellation(mul, fmt, K):
    """Huge products cancel exactly and a tiny one remains; fp32 accumulation may lose it."""
    f = get_format(fmt)
    rng = np.random.default_rng(seed_of(mul, fmt, "cancel"))
    tiny = (1 << f.man_bits) | 1                                   # the smallest normal, odd mantissa
    A, B = cancelling_operands(fmt, K, rng, tiny, tiny)
    got = check(A, B, mul, fmt, "exact")
    # the cancelling pairs leave exactly the tiny product (a normal fp32 for these formats)
    unit_opts = {}
    tiny_product = R.core_product_fn(mul, fmt, **unit_opts)[0](tiny, tiny)
    assert got[0, 0] == R.round_to_fp32(tiny_product) and tiny_product != 0
    if f.width == 8:     # (the model's fp32 path loops over k; the 8-bit formats take its table path)
        check(A, B, mul, fmt, "fp32")


@pytest.mark.parametrize("tail,want", [(0x0000, 0x47800000),      # 2^16 + 2^-8: a tie, to even 2^16
                                       (0x0010, 0x47800001),      # + 2^-40 (sticky): up
                                       (0x8010, 0x47800000)])     # - 2^-40: down
def test_exact_readout_sticky_bit_through_cancellation(tail, want):
    """fp16 fpmul: 256 * 256 + 2^-4 * 2^-4 (+- 2^-20 * 2^-20) among 4093 cancelling products (and a 0).
    The sum's rounding to fp32 is decided by a bit 2^-40, 56 bits below the leading one: the
    exponent bands and the double-double must keep it."""
    f = get_format("fp16")
    rng = np.random.default_rng(7)
    two_m20 = 0x0010                                               # 2^-20, subnormal
    A, B = cancelling_operands("fp16", 4094, rng, 0x5C00, 0x5C00)  # ... + 256 * 256
    A = np.concatenate([A, np.array([[0x2C00, two_m20], [0x2C00, two_m20]], dtype=f.dtype)], axis=1)
    B = np.concatenate([B, np.array([[0x2C00, 0x2C00], [tail, tail]], dtype=f.dtype)], axis=0)
    assert A.shape == (2, 4096) and B.shape == (4096, 2)
    got = check(A, B, "fpmul", "fp16", "exact")
    assert got[0, 0] == want


def test_exact_sticky_bit_within_close_exponents():
    """fp16 fpmul, K = 4096: 4093 * 2^30 + 2^17 + 2^7 (1 + 2^-9 + 2^-20) - 2^7 (1 + 2^-9).
    The sum is 2^42 - 3 * 2^30 + 2^17 + 2^-13: an fp32 tie (2^17 is half an ulp at 2^41) broken by a
    bit 55 bits below the leading one.  The operands' exponents are close enough that one float64
    dot product over too wide an exponent band would round that bit away (and round to even)."""
    f = get_format("fp16")
    a = [0x7800] * 4093 + [0x4400, 0x4001, 0x4002]                # 2^15 ..., 2^2, 2(1+2^-10), 2(1+2^-9)
    b = [0x7800] * 4093 + [0x7800, 0x5401, 0xD400]                # 2^15 ..., 2^15, 2^6(1+2^-10), -2^6
    rng = np.random.default_rng(3)
    p = rng.permutation(4096)
    A = np.array([a, list(reversed(a))], dtype=f.dtype)[:, p]
    B = np.array([b, list(reversed(b))], dtype=f.dtype).T[p]
    got = check(A, B, "fpmul", "fp16", "exact")
    assert got[0, 0] == np.float32(2.0 ** 42 - 3 * 2.0 ** 30 + 2.0 ** 18).view(np.uint32)
    assert got[1, 1] == got[0, 0]


@pytest.mark.parametrize("mul,fmt", [("fpmul", "fp16"), ("lmul", "e5m2"), ("lmul", "fp16"), ("fpmul", "e4m3")])
def test_exact_is_order_independent(mul, fmt):
    rng = np.random.default_rng(seed_of(mul, fmt, "perm"))
    K = 200
    A = operands(fmt, (4, K), rng, "wide")
    B = operands(fmt, (K, 3), rng, "wide")
    base = matmul(A, B, mul=mul, fmt=fmt, acc="exact")
    for _ in range(3):
        p = rng.permutation(K)
        assert np.array_equal(matmul(A[:, p], B[p], mul=mul, fmt=fmt, acc="exact"), base)
    assert np.array_equal(base, R.matmul_ref(A, B, mul, fmt, "exact"))


# -- special values and zeros ------------------------------------------------------------------

def _codes(fmt, values):
    return encode(np.array(values, dtype=np.float64), fmt)


@pytest.mark.parametrize("acc", ["exact", "fp32"])
@pytest.mark.parametrize("mul", ["lmul", "fpmul"])
def test_special_value_flags(mul, acc):
    fmt = "e5m2"
    inf, nan = np.inf, np.nan
    A = _codes(fmt, [[inf, 1.0, 2.0], [inf, -inf, 1.0], [nan, 1.0, 1.0], [inf, 1.0, 0.0], [-inf, 2.0, 1.0],
                     [inf, 0.0, 0.0], [1.0, 1.0, 1.0]])
    B = _codes(fmt, [[1.0, 0.0], [1.0, 1.0], [-4.0, 1.0]])
    got = check(A, B, mul, fmt, acc)
    want = np.array([[0x7F800000, 0x7FC00000],      # +inf; inf * 0 -> NaN
                     [0x7FC00000, 0x7FC00000],      # +inf and -inf products -> NaN
                     [0x7FC00000, 0x7FC00000],      # NaN operand
                     [0x7F800000, 0x7FC00000],
                     [0xFF800000, 0x7FC00000],
                     [0x7F800000, 0x7FC00000]], dtype=np.uint32)
    assert np.array_equal(got[:6], want), [[hex(int(v)) for v in row] for row in got]
    assert (got[6] & 0x7F800000 != 0x7F800000).all()    # an ordinary row stays finite


def test_inf_times_subnormal():
    """L-Mul flushes subnormals, so inf * subnormal is NaN; the full exact multiplier gives inf,
    the ftz one NaN (SPEC §2 step 1, §3)."""
    fmt = "fp16"
    A = np.array([[0x7C00]], dtype=np.uint16)
    B = np.array([[0x0001]], dtype=np.uint16)
    for acc in ("exact", "fp32"):
        assert check(A, B, "lmul", fmt, acc)[0, 0] == 0x7FC00000
        assert check(A, B, "fpmul", fmt, acc)[0, 0] == 0x7F800000
        assert check(A, B, "fpmul", fmt, acc, subnormals="ftz")[0, 0] == 0x7FC00000


@pytest.mark.parametrize("fmt", ["e4m3", "e5m2", "fp16"])
@pytest.mark.parametrize("acc", ["exact", "fp32"])
def test_zero_results_are_positive(fmt, acc):
    """An exact zero reads out as +0: -0 products, products that cancel, flushed subnormals."""
    f = get_format(fmt)
    one, neg = _codes(fmt, [1.0])[0], _codes(fmt, [-1.0])[0]
    sub = 1                                                        # the smallest subnormal
    # rows: (-0, +0), (1, 1), (sub, sub); column (1, -1): products -0 - 0, p - p, s - s (or flushed)
    A = np.array([[f.sign_bit, 0], [one, one], [sub, sub]], dtype=f.dtype)
    B = np.array([[one], [neg]], dtype=f.dtype)
    for mul in ("lmul", "fpmul"):
        got = check(A, B, mul, fmt, acc)
        assert list(got[:, 0]) == [0, 0, 0], [hex(int(v)) for v in got[:, 0]]
        # nonzero finite operands times +-0: every product is -0 (or the tile is 1x1x1)
        for A2, B2 in (([[neg, neg]], [[0], [0]]), ([[neg]], [[0]]), ([[one]], [[f.sign_bit]]),
                       ([[neg, one]], [[0], [f.sign_bit]])):
            got = check(np.array(A2, dtype=f.dtype), np.array(B2, dtype=f.dtype), mul, fmt, acc)
            assert got[0, 0] == 0, hex(int(got[0, 0]))


def test_e4m3_nan_only():
    f = get_format("e4m3")
    A = np.array([[0x7F, 0x38], [0x38, 0x38], [0xFF, 0x00]], dtype=np.uint8)
    B = np.array([[0x38], [0x7E]], dtype=np.uint8)
    for mul in ("lmul", "fpmul"):
        for acc in ("exact", "fp32"):
            got = check(A, B, mul, "e4m3", acc)
            assert got[0, 0] == got[2, 0] == 0x7FC00000 and got[1, 0] != 0x7FC00000
            assert got[1, 0] < 0x7F800000          # 448 * 1 does not overflow in the product format
    assert f.kind == "fn"


def test_hand_worked_tile():
    """e4m3, K = 3: the products of 1, 1.5, -2 by 1, 1, 0.5 under each multiplier."""
    A = _codes("e4m3", [[1.0, 1.5, -2.0]])
    B = _codes("e4m3", [[1.0], [1.0], [0.5]])
    # L-Mul with c = 1 (l = 3) adds 2^-3 to each significand: 1.125 + 1.625 - 1.125 = 1.625
    assert matmul(A, B, mul="lmul", fmt="e4m3", acc="exact")[0, 0] == np.float32(1.625).view(np.uint32)
    assert matmul(A, B, mul="fpmul", fmt="e4m3", acc="exact")[0, 0] == np.float32(1.5).view(np.uint32)
    assert matmul(A, B, mul="lmul", fmt="e4m3", acc="fp32", offset=0)[0, 0] == np.float32(1.5).view(np.uint32)


def test_fp32_accumulation_order_and_rounding():
    """fp32 accumulation rounds after every product in k order: 2^24 + 1 + 1 stays 2^24, while
    1 + 1 + 2^24 is 2^24 + 2; the exact accumulator gives 2^24 + 2 either way."""
    fmt = "fp16"
    big = _codes(fmt, [4096.0])[0]                 # 4096 * 4096 = 2^24
    one = _codes(fmt, [1.0])[0]
    for order, fp32_want in (([big, one, one], 2.0 ** 24), ([one, one, big], 2.0 ** 24 + 2)):
        A = np.array([order], dtype=np.uint16)
        B = np.array([[v] for v in order], dtype=np.uint16)
        got = check(A, B, "fpmul", fmt, "fp32")
        assert got[0, 0] == np.float32(fp32_want).view(np.uint32)
        assert check(A, B, "fpmul", fmt, "exact")[0, 0] == np.float32(2.0 ** 24 + 2).view(np.uint32)


def test_fp32_overflow_of_products_and_sums():
    """bf16 products beyond fp32 become inf in fp32 accumulation; with opposite signs NaN."""
    big = _codes("bf16", [2.0 ** 100, -(2.0 ** 100), 2.0 ** 64])
    A = np.array([[big[0], big[2]], [big[0], big[1]], [big[2], big[2]]], dtype=np.uint16)
    B = np.array([[big[0], big[2]], [big[0], big[2]]], dtype=np.uint16).T.copy()
    for mul in ("lmul", "fpmul"):
        got = check(A, B, mul, "bf16", "fp32")
        assert got[0, 0] == 0x7F800000 and got[1, 0] == 0x7FC00000


# -- bad parameters ----------------------------------------------------------------------------

E4 = np.zeros((2, 3), dtype=np.uint8)
E4B = np.zeros((3, 2), dtype=np.uint8)


@pytest.mark.parametrize("A,B,kwargs,match", [
    (E4, E4, dict(mul="lmul", fmt="e4m3"), "inner|shape"),
    (E4, np.zeros((4, 2), np.uint8), dict(mul="lmul", fmt="e4m3"), "inner|shape"),
    (np.zeros((0, 3), np.uint8), E4B, dict(mul="lmul", fmt="e4m3"), "size|least"),
    (np.zeros((2, 0), np.uint8), np.zeros((0, 2), np.uint8), dict(mul="lmul", fmt="e4m3"), "size|least"),
    (E4, np.zeros((3, 0), np.uint8), dict(mul="fpmul", fmt="e4m3"), "size|least"),
    (np.zeros(3, np.uint8), E4B, dict(mul="lmul", fmt="e4m3"), "2-D"),
    (E4, E4B, dict(mul="mitchell", fmt="e4m3"), "mul"),
    (E4, E4B, dict(mul="lmul", fmt="e4m3", acc="fp16"), "acc"),
    (E4, E4B, dict(mul="lmul", fmt="e3m3"), "format"),
    (E4, E4B, dict(mul="lmul", fmt="fp32"), "accumulator"),          # fp32 operands: fp32 accumulation only
    (E4, E4B, dict(mul="lmul", fmt="nonsense"), "format"),
    (E4, E4B, dict(mul="lmul", fmt="e4m3", offset=1, offset_exp=1), "both"),
    (E4, E4B, dict(mul="lmul", fmt="e4m3", k=0), "k"),
    (E4, E4B, dict(mul="lmul", fmt="e4m3", k=4), "k"),
    (E4, E4B, dict(mul="lmul", fmt="e4m3", offset=9), "offset"),
    (E4, E4B, dict(mul="lmul", fmt="e4m3", offset_exp=4), "offset_exp"),
    (E4, E4B, dict(mul="lmul", fmt="e4m3", subnormals="ftz"), "subnormals"),
    (E4, E4B, dict(mul="fpmul", fmt="e4m3", k=2), "L-Mul"),
    (E4, E4B, dict(mul="fpmul", fmt="e4m3", subnormals="daz"), "subnormals"),
    (E4.astype(np.float32), E4B, dict(mul="lmul", fmt="e4m3"), "integer"),
    (E4.astype(np.uint16) + 256, E4B, dict(mul="lmul", fmt="e4m3"), "range"),
    (E4.astype(np.int16) - 1, E4B, dict(mul="fpmul", fmt="e4m3"), "range"),
    (np.zeros((1, 65537), np.uint8), np.zeros((65537, 1), np.uint8), dict(mul="lmul", fmt="e4m3", acc="fp32"), "65536"),
])
def test_bad_parameters_raise(A, B, kwargs, match):
    with pytest.raises(ValueError, match=match):
        matmul(A, B, **kwargs)


@pytest.mark.parametrize("mul", ["lmul", "fpmul"])
@pytest.mark.parametrize("K", [1, 16, 4096])
def test_bf16_exact_is_rejected_with_the_width(mul, K):
    A = np.zeros((2, K), np.uint16)
    B = np.zeros((K, 2), np.uint16)
    opts = {"offset": 8} if mul == "lmul" else {}
    width = accumulator_width("bf16", mul, K, **opts)
    assert width > 128
    with pytest.raises(ValueError, match=f"{width}-bit"):
        matmul(A, B, mul=mul, fmt="bf16", acc="exact")
    if K <= 16:
        assert matmul(A, B, mul=mul, fmt="bf16", acc="fp32").shape == (2, 2)     # fp32 is fine


def test_unknown_unit_option_is_a_value_error():
    A = np.zeros((2, 2), dtype=np.uint8)
    with pytest.raises(ValueError, match="unknown unit option"):
        matmul(A, A, mul="lmul", fmt="e4m3", acc="exact", overflow="ieee")
