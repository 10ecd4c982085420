"""The operands the core's testbenches draw (lmul_hw.tiles) reach what they must: the ``wide``
distribution and the edge tiles hold every class of value, products that overflow and underflow
fp32, and sums that cancel, for every operand format of a core."""

from __future__ import annotations

import numpy as np
import pytest

from lmul_hw.config import ARRAY_FORMATS, CoreConfig
from lmul_hw.formats import FpClass, classify, decode, get_format
from lmul_hw.model import matmul
from lmul_hw.model.matmul import products
from lmul_hw.tiles import DISTRIBUTIONS, edge_tiles, edge_values, random_operands

FP32_MAX = float(np.finfo(np.float32).max)
FP32_TINY = float(np.finfo(np.float32).tiny)


@pytest.mark.parametrize("fmt", ARRAY_FORMATS)
def test_wide_operands_hold_every_class(fmt):
    f = get_format(fmt)
    x = random_operands(fmt, 20000, np.random.default_rng(1), dist="wide")
    assert x.dtype == f.dtype
    classes = set(classify(x, fmt).tolist())
    want = {FpClass.ZERO, FpClass.SUBNORMAL, FpClass.NORMAL, FpClass.NAN} | ({FpClass.INF} if f.has_inf else set())
    assert classes == want
    signs = x >> f.dtype(f.sign_shift)
    assert signs.any() and not signs.all()
    mags = x & f.dtype(f.mag_mask)
    assert (mags == f.max_finite_code).any()
    exps = set(((mags >> f.dtype(f.man_bits)) & f.dtype(f.exp_all_ones)).tolist())
    assert {0, 1, f.max_exp_field} <= exps        # both ends of the range


def test_wide_operands_repeat_two_magnitudes():
    """A quarter of the values share two magnitudes per call: products of them repeat, so that
    sums can cancel exactly even with fp32 operands, whose other values hardly ever repeat."""
    x = random_operands("fp32", 20000, np.random.default_rng(4), dist="wide", special_rate=0.0)
    _, counts = np.unique(x & np.uint32(0x7FFFFFFF), return_counts=True)
    top = np.sort(counts)[::-1]
    assert 0.2 < (top[0] + top[1]) / x.size < 0.3 and top[2] < 50, top[:4]


def test_wide_fp32_products_leave_fp32_range_where_gaussian_ones_do_not():
    """fp32 operands: wide products overflow fp32 and fall below its smallest normal; Gaussian ones
    (the other distributions) do neither, which is why ``wide`` exists."""
    rng = np.random.default_rng(2)
    unit = CoreConfig(1, 1, "fpmul", "fp32", "fp32", 1).unit
    for dist in DISTRIBUTIONS:
        a = random_operands("fp32", 20000, rng, dist=dist, special_rate=0.0)
        b = random_operands("fp32", 20000, rng, dist=dist, special_rate=0.0)
        p = np.abs(products(a, b, unit))
        big, tiny = np.mean(p > FP32_MAX), np.mean((p > 0) & (p < FP32_TINY))
        if dist == "wide":
            assert 0.01 < big < 0.1 and 0.01 < tiny < 0.1, (big, tiny)
        else:
            assert big == tiny == 0.0


@pytest.mark.parametrize("fmt", ARRAY_FORMATS)
def test_edge_values_are_every_class_with_both_signs(fmt):
    f = get_format(fmt)
    v = edge_values(fmt)
    assert len(set(v.tolist())) == len(v)
    half = len(v) // 2
    assert (v[half:] == v[:half] | f.dtype(f.sign_bit)).all()
    assert set(classify(v, fmt).tolist()) == set(FpClass) - (set() if f.has_inf else {FpClass.INF})
    mags = set(v[:half].tolist())
    assert {0, 1, f.man_mask, 1 << f.man_bits, f.max_finite_code, f.nan_code} <= mags


def test_edge_pairs_round_across_fp32_limits():
    """The fp32 pairs: exact products just below 2^128 and 2^-126 round up to inf and to the
    smallest normal (fpmul); L-Mul, which does not round, stays below both."""
    v = edge_values("fp32")
    near = [x for x in v[:len(v) // 2].tolist() if x & 0x7FFFFF not in (0, 1, 0x7FFFFF)]
    big = np.array([[x] for x in near if x >> 23 == 191], dtype=np.uint32)
    big_b = np.array([[x for x in near if x >> 23 == 190]], dtype=np.uint32)
    small = np.array([[x] for x in near if x >> 23 == 63], dtype=np.uint32)
    small_b = np.array([[x for x in near if x >> 23 == 64]], dtype=np.uint32)
    assert big.shape == big_b.shape[::-1] == small.shape == (1, 1)
    for subnormals in ("full", "ftz"):
        assert matmul(big, big_b, mul="fpmul", fmt="fp32", acc="fp32", subnormals=subnormals)[0, 0] == 0x7F800000
        assert matmul(small, small_b, mul="fpmul", fmt="fp32", acc="fp32", subnormals=subnormals)[0, 0] == 0x00800000
    assert matmul(big, big_b, mul="lmul", fmt="fp32", acc="fp32")[0, 0] < 0x7F800000
    assert matmul(small, small_b, mul="lmul", fmt="fp32", acc="fp32")[0, 0] < 0x00800000


@pytest.mark.parametrize("cfg", [CoreConfig(2, 3, "fpmul", "fp32", "fp32", 6), CoreConfig(3, 2, "lmul", "bf16", "fp32", 5),
                                 CoreConfig(2, 2, "lmul", "e4m3", "exact", 4)], ids=lambda c: c.name)
def test_edge_tiles_cover_every_pair_overflow_and_cancellation(cfg):
    f = cfg.fmt
    tiles = edge_tiles(cfg, np.random.default_rng(3))
    values = edge_values(f)
    pairs = {(int(a), int(b)) for A, B in tiles if A.shape[1] == 1 for a in A[:, 0] for b in B[0]}
    assert pairs == {(int(a), int(b)) for a in values for b in values}
    deep = [(A, B) for A, B in tiles if A.shape[1] == cfg.depth]
    assert len(deep) == 6
    mixed = np.concatenate([x.ravel() for A, B in deep[:4] for x in (A, B)])      # random finite edge values
    assert set(classify(mixed, f).tolist()) <= {FpClass.ZERO, FpClass.SUBNORMAL, FpClass.NORMAL}
    assert len(set(mixed.tolist())) > len(values) // 2
    for A, B in deep[-2:]:                         # products cancel in pairs: their exact sum is 0
        p = products(A[:, :, None], B[None, :, :], cfg.unit)
        assert np.isfinite(p).all() and (np.abs(p) > 0).any()
        s = np.sort(p, axis=1)
        assert (s + s[:, ::-1] == 0).all()
    out = np.concatenate([matmul(A, B, cfg).ravel() for A, B in tiles])
    classes = set(classify(out, "fp32").tolist())
    assert {FpClass.ZERO, FpClass.NORMAL, FpClass.NAN} <= classes
    if f.name in ("bf16", "fp32"):                 # products and sums beyond fp32's range both ways
        assert {FpClass.INF, FpClass.SUBNORMAL} <= classes
        sums = [decode(matmul(A, B, cfg), "fp32") for A, B in deep[:4]]
        assert any(np.isinf(s).any() for s in sums)


def test_unknown_distribution_is_a_value_error():
    with pytest.raises(ValueError, match="unknown distribution 'uniform': use one of gaussian, heavy, wide"):
        random_operands("e4m3", 4, np.random.default_rng(0), dist="uniform")
