"""Layer 1: lmul and fpmul of the numpy model against the slow exact-rational reference
(tests/reference.py), written independently from SPEC §2/§3.

- every pair of 8-bit codes, for several configurations, in both overflow modes (the reference is
  computed once per configuration as a 256x256 table and cached for the session);
- seeded random bf16/fp16/fp32 pairs drawn so that every class of operand appears;
- directed edge cases: rounding ties, results at the smallest normal and the largest finite value,
  the L-Mul mantissa carry, underflow and overflow edges.
"""

from __future__ import annotations

import zlib
from fractions import Fraction
from functools import lru_cache

import numpy as np
import pytest

import reference as R
from lmul_hw.formats import FpClass, classify, get_format
from lmul_hw.model import fpmul, lmul

CODES = np.arange(256, dtype=np.uint8)
A8, B8 = CODES[:, None], CODES[None, :]


# -- the reference, cached per configuration ----------------------------------------------------

@lru_cache(maxsize=None)
def lmul_table(fmt, k, offset_exp, offset, out_fmt, overflow):
    f = get_format(fmt)
    kk = f.man_bits if k is None else k
    c = R.resolve_offset(kk, offset_exp, offset)
    return R.table(lambda a, b: R.lmul_ref(a, b, f, kk, c, out_fmt, overflow), CODES, CODES, np.uint64)


@lru_cache(maxsize=None)
def fpmul_table(fmt, out_fmt, subnormals, overflow):
    return R.table(lambda a, b: R.fpmul_ref(a, b, fmt, out_fmt, subnormals, overflow), CODES, CODES, np.uint64)


def lmul_desc(fmt, k=None, offset_exp=None, offset=None, out_fmt=None, overflow="ieee"):
    return (f"lmul fmt={fmt} k={k} offset_exp={offset_exp} offset={offset} out_fmt={out_fmt or fmt} "
            f"overflow={overflow}")


# -- all 8-bit pairs -----------------------------------------------------------------------------

LMUL_8BIT = [
    # fmt, k, offset_exp, offset, out_fmt
    ("e4m3", None, None, None, None),
    ("e4m3", 2, None, None, None),
    ("e4m3", 1, 0, None, None),
    ("e4m3", 3, 0, None, None),          # c = 2^k: every product carries at least once
    ("e4m3", 3, None, 0, None),          # c = 0: equation (1) without the offset
    ("e4m3", 3, None, 5, None),          # a calibrated offset
    ("e4m3", None, None, None, "e6m3"),  # the core's product format
    ("e4m3", None, None, None, "e3m4"),  # a narrow G: overflow and underflow everywhere
    ("e4m3", 2, None, None, "e5m2"),     # fn F into an ieee G
    ("e4m3", 3, 1, None, "fp16"),
    ("e5m2", None, None, None, None),
    ("e5m2", 1, None, None, None),
    ("e5m2", 2, None, 4, None),
    ("e5m2", 2, None, 0, "e7m2"),
    ("e5m2", None, None, None, "e3m2"),
    ("e5m2", None, None, None, "e4m3"),  # an fn G: overflow is NaN in ieee mode
    ("e5m2", 1, 0, None, "bf16"),
]


@pytest.mark.parametrize("overflow", ["ieee", "saturate"])
@pytest.mark.parametrize("fmt,k,offset_exp,offset,out_fmt", LMUL_8BIT)
def test_lmul_all_8bit_pairs(fmt, k, offset_exp, offset, out_fmt, overflow):
    want = lmul_table(fmt, k, offset_exp, offset, out_fmt, overflow)
    got = lmul(A8, B8, fmt=fmt, k=k, offset_exp=offset_exp, offset=offset, out_fmt=out_fmt, overflow=overflow)
    g = get_format(out_fmt or fmt)
    assert got.dtype == g.dtype and got.shape == (256, 256)
    R.assert_bits_equal(got, want, out_fmt=g, what=lmul_desc(fmt, k, offset_exp, offset, out_fmt, overflow),
                        inputs=[("a", A8, fmt), ("b", B8, fmt)])


FPMUL_8BIT = [
    # fmt, out_fmt, subnormals
    ("e4m3", None, "full"),
    ("e4m3", None, "ftz"),
    ("e4m3", "e6m7", "full"),            # the core's exact product format
    ("e4m3", "e6m7", "ftz"),
    ("e4m3", "e3m2", "full"),            # heavy rounding, overflow and underflow
    ("e4m3", "e3m2", "ftz"),
    ("e4m3", "e5m2", "full"),
    ("e5m2", None, "full"),
    ("e5m2", None, "ftz"),
    ("e5m2", "e7m5", "full"),
    ("e5m2", "e4m3", "full"),            # an fn G: overflow and the NaN code
    ("e5m2", "e4m3", "ftz"),
    ("e5m2", "e3m1", "ftz"),
]


@pytest.mark.parametrize("overflow", ["ieee", "saturate"])
@pytest.mark.parametrize("fmt,out_fmt,subnormals", FPMUL_8BIT)
def test_fpmul_all_8bit_pairs(fmt, out_fmt, subnormals, overflow):
    want = fpmul_table(fmt, out_fmt, subnormals, overflow)
    got = fpmul(A8, B8, fmt=fmt, out_fmt=out_fmt, subnormals=subnormals, overflow=overflow)
    g = get_format(out_fmt or fmt)
    assert got.dtype == g.dtype and got.shape == (256, 256)
    R.assert_bits_equal(got, want, out_fmt=g, inputs=[("a", A8, fmt), ("b", B8, fmt)],
                        what=f"fpmul fmt={fmt} out_fmt={g.name} subnormals={subnormals} overflow={overflow}")


def test_exhaustive_tables_cover_every_outcome():
    """The 8-bit tables above reach every class of result, and overflow really differs by mode."""
    seen = set()
    differ = 0
    tables = [("lmul", fmt, g, lambda ov, a=(fmt, k, l, c, g): lmul_table(*a, ov)) for fmt, k, l, c, g in LMUL_8BIT]
    tables += [("fpmul", fmt, g, lambda ov, a=(fmt, g, sub): fpmul_table(*a, ov)) for fmt, g, sub in FPMUL_8BIT]
    for mul, fmt, g, tab in tables:
        g = get_format(g or fmt)
        ieee, sat = tab("ieee"), tab("saturate")
        for t in (ieee, sat):
            seen |= {(mul, g.name, R.classify(int(x), g)) for x in np.unique(t)}
        # the modes differ exactly where ieee overflowed: saturate has the signed max finite there
        diff = ieee != sat
        assert np.array_equal(np.unique(sat[diff] & np.uint64(g.mag_mask)), [R.max_finite_bits(g)][:int(diff.any())])
        differ += bool(diff.any())
    assert differ >= len(tables) - 3      # only wide G (e6m3, e7m5, e6m7 from e4m3 ...) never overflow
    for mul in ("lmul", "fpmul"):
        for cls in (R.ZERO, R.NORMAL, R.INFINITY, R.NOTANUMBER):
            assert any(m == mul and c == cls for m, _, c in seen), (mul, cls)
    assert ("fpmul", "e5m2", R.SUBNORMAL) in seen and ("fpmul", "e4m3", R.SUBNORMAL) in seen


# -- hand-worked values (they check the reference as much as the model) -------------------------

@pytest.mark.parametrize("mul,fmt,a,b,kwargs,want", [
    ("lmul", "e4m3", 0x38, 0x38, {}, 0x39),                         # 1 * 1 = 1 + 2^-3 (c = 1, l = 3)
    ("lmul", "e4m3", 0x38, 0xB8, {}, 0xB9),
    ("lmul", "e4m3", 0x7E, 0x38, {}, 0x7F),                         # 448 * 1 -> 1.111 * 2^8: the NaN code
    ("lmul", "e4m3", 0x7E, 0x38, dict(overflow="saturate"), 0x7E),
    ("lmul", "e4m3", 0x7D, 0x38, {}, 0x7E),                         # 416 * 1 -> 448
    ("lmul", "e4m3", 0x08, 0x08, {}, 0x00),                         # 2^-6 * 2^-6 underflows to zero
    ("lmul", "e4m3", 0x08, 0x88, {}, 0x80),
    ("lmul", "e4m3", 0x01, 0x38, {}, 0x00),                         # subnormal operands flush
    ("lmul", "e4m3", 0x7F, 0x00, {}, 0x7F),
    ("lmul", "e4m3", 0x3E, 0x3E, {}, 0x45),                         # 1.75^2: 6+6+1 = 13 carries: 2 * 1.625
    ("lmul", "e5m2", 0x7C, 0x3C, {}, 0x7C),                         # inf * 1 = inf
    ("lmul", "e5m2", 0x7C, 0x3C, dict(overflow="saturate"), 0x7B),
    ("lmul", "e5m2", 0x7C, 0x01, {}, 0x7E),                         # inf * subnormal = NaN
    ("lmul", "e5m2", 0xFC, 0x00, {}, 0xFE),                         # canonical NaN, sign 1 ^ 0
    ("lmul", "e5m2", 0xFD, 0x80, {}, 0x7E),
    ("lmul", "e5m2", 0xFF, 0x3C, {}, 0xFE),
    ("lmul", "fp32", 0x3F800000, 0x3F800000, {}, 0x3F880000),       # 1 + 2^-4
    ("lmul", "bf16", 0x3F80, 0x3F80, dict(offset=0), 0x3F80),
    ("fpmul", "fp16", 0x0400, 0x3BFF, {}, 0x0400),                  # 2^-14 - 2^-25: tie, up to even min normal
    ("fpmul", "fp16", 0x0400, 0x3BFF, dict(subnormals="ftz"), 0x0000),
    ("fpmul", "fp16", 0x0401, 0x3BFE, dict(subnormals="ftz"), 0x0400),  # 2^-14 (1 - 2^-20) rounds up: kept
    ("fpmul", "fp16", 0x0001, 0x3800, {}, 0x0000),                  # 2^-25: tie to even zero
    ("fpmul", "fp16", 0x0003, 0x3800, {}, 0x0002),                  # 1.5 quanta: tie to even 2
    ("fpmul", "fp16", 0x0001, 0x3C00, dict(subnormals="ftz"), 0x0000),
    ("fpmul", "fp16", 0x7C00, 0x0001, dict(subnormals="ftz"), 0x7E00),  # inf * (subnormal read as 0)
    ("fpmul", "fp16", 0x7C00, 0x0001, {}, 0x7C00),
    ("fpmul", "fp16", 0x7BFF, 0x3C01, {}, 0x7C00),                  # 65504 * (1 + 2^-10) overflows
    ("fpmul", "fp16", 0x7BFF, 0x3C01, dict(overflow="saturate"), 0x7BFF),
    ("fpmul", "e4m3", 0x7E, 0x39, {}, 0x7F),                        # 448 * 1.125 = 504 -> NaN code
    ("fpmul", "e4m3", 0x77, 0x39, {}, 0x78),                        # 240 * 1.125 = 270 -> 256
    ("fpmul", "bf16", 0x3FC0, 0x3F81, {}, 0x3FC2),                  # 1.5 * (1 + 2^-7) = 1.5 + 1.5*2^-7: tie, up
    ("fpmul", "bf16", 0x3FC0, 0x3F83, {}, 0x3FC4),                  # 1.5 * (1 + 3*2^-7): tie, down to even
])
def test_hand_worked_values(mul, fmt, a, b, kwargs, want):
    f = get_format(fmt)
    fn = lmul if mul == "lmul" else fpmul
    got = fn(np.array([a], dtype=f.dtype), np.array([b], dtype=f.dtype), fmt=fmt, **kwargs)
    assert int(got[0]) == want, f"{mul}({R.describe(a, fmt)}, {R.describe(b, fmt)}) = {R.describe(int(got[0]), fmt)}"
    if mul == "lmul":
        kk = kwargs.get("k", f.man_bits)
        c = R.resolve_offset(kk, kwargs.get("offset_exp"), kwargs.get("offset"))
        ref = R.lmul_ref(a, b, f, kk, c, overflow=kwargs.get("overflow", "ieee"))
    else:
        ref = R.fpmul_ref(a, b, f, subnormals=kwargs.get("subnormals", "full"),
                          overflow=kwargs.get("overflow", "ieee"))
    assert ref == want, f"reference: {R.describe(ref, fmt)}"


# -- seeded random pairs of the wide formats, every class represented ----------------------------

def class_pool(fmt, n, rng):
    """n random bit patterns, an equal share of each kind: +-0, subnormals (incl. the smallest and
    largest), the smallest normal, the largest finite, +-inf, NaNs with any payload, exponents
    near the bottom and the top of the range, values near 1 and uniformly random normals."""
    f = get_format(fmt)
    M, top = f.man_bits, f.exp_all_ones
    u64 = np.uint64
    man = rng.integers(0, 1 << M, n, dtype=u64)
    exp = rng.integers(1, f.max_exp_field + 1, n, dtype=u64)
    kinds = rng.integers(0, 11, n)
    e = np.select([kinds == 0, kinds <= 2, kinds == 3, kinds == 4, kinds == 5, kinds == 6, kinds == 7, kinds == 8,
                   kinds == 9],
                  [u64(0), u64(0), u64(1), u64(f.max_exp_field), u64(top), u64(top),
                   rng.integers(1, 4, n, dtype=u64),
                   rng.integers(f.max_exp_field - 2, f.max_exp_field + 1, n, dtype=u64),
                   rng.integers(f.bias - 2, f.bias + 3, n, dtype=u64)], exp)
    m = np.select([kinds == 0, kinds == 1, kinds == 2, kinds == 3, kinds == 4, kinds == 5, kinds == 6],
                  [u64(0), np.maximum(man, u64(1)), rng.choice(np.array([1, f.man_mask], dtype=u64), n), u64(0),
                   u64(f.max_finite_code & f.man_mask), u64(0), np.maximum(man, u64(1))], man)
    if f.kind == "fn":
        m = np.where((e == top) & (kinds != 6), np.minimum(m, u64(f.man_mask - 1)), m)
    sign = rng.integers(0, 2, n, dtype=u64)
    return ((sign << u64(f.sign_shift)) | (e << u64(M)) | m).astype(f.dtype)


def seed_of(*parts) -> int:
    """A seed that is stable across processes (str hashes are not)."""
    return zlib.crc32(repr(parts).encode())


def _random_pairs(fmt, n, seed):
    rng = np.random.default_rng(seed)
    return class_pool(fmt, n, rng), class_pool(fmt, n, rng)


def test_class_pool_covers_every_class():
    for fmt in ("bf16", "fp16", "fp32"):
        a, _ = _random_pairs(fmt, 4000, 1)
        cls = classify(a, fmt)
        assert all((cls == c).sum() > 100 for c in FpClass), fmt
        f = get_format(fmt)
        mags = set((a & f.mag_mask).tolist())
        assert {0, 1, f.man_mask, 1 << f.man_bits, f.max_finite_code, f.inf_code} <= mags


N_RANDOM = 6000

LMUL_WIDE = [
    ("bf16", None, None, None, None),
    ("bf16", 3, None, None, None),
    ("bf16", 7, 0, None, None),
    ("bf16", None, None, 100, "e10m7"),
    ("bf16", 5, None, None, "fp32"),
    ("fp16", None, None, None, None),
    ("fp16", 5, None, 17, None),
    ("fp16", None, 2, None, "e7m10"),
    ("fp16", 7, None, None, "bf16"),
    ("fp16", 3, None, None, "e4m3"),
    ("fp32", None, None, None, None),
    ("fp32", 7, None, None, "bf16"),
    ("fp32", 23, None, 0, "e11m52"),
    ("fp32", 4, None, None, "fp16"),
]


@pytest.mark.parametrize("overflow", ["ieee", "saturate"])
@pytest.mark.parametrize("fmt,k,offset_exp,offset,out_fmt", LMUL_WIDE)
def test_lmul_random_wide_pairs(fmt, k, offset_exp, offset, out_fmt, overflow):
    f = get_format(fmt)
    a, b = _random_pairs(fmt, N_RANDOM, seed_of(fmt, k, offset_exp, offset, out_fmt))
    kk = f.man_bits if k is None else k
    c = R.resolve_offset(kk, offset_exp, offset)
    want = R.pairwise(lambda x, y: R.lmul_ref(x, y, f, kk, c, out_fmt, overflow), a, b, np.uint64)
    got = lmul(a, b, fmt=fmt, k=k, offset_exp=offset_exp, offset=offset, out_fmt=out_fmt, overflow=overflow)
    R.assert_bits_equal(got, want, out_fmt=out_fmt or fmt, inputs=[("a", a, fmt), ("b", b, fmt)],
                        what=lmul_desc(fmt, k, offset_exp, offset, out_fmt, overflow))


FPMUL_WIDE = [
    ("bf16", None, "full"), ("bf16", None, "ftz"), ("bf16", "e10m15", "full"), ("bf16", "fp16", "full"),
    ("fp16", None, "full"), ("fp16", None, "ftz"), ("fp16", "e7m21", "ftz"), ("fp16", "e4m3", "full"),
    ("fp16", "e5m2", "ftz"),
    ("fp32", None, "full"), ("fp32", None, "ftz"), ("fp32", "e11m52", "full"), ("fp32", "bf16", "full"),
    ("fp32", "fp16", "ftz"),
]


@pytest.mark.parametrize("overflow", ["ieee", "saturate"])
@pytest.mark.parametrize("fmt,out_fmt,subnormals", FPMUL_WIDE)
def test_fpmul_random_wide_pairs(fmt, out_fmt, subnormals, overflow):
    a, b = _random_pairs(fmt, N_RANDOM, seed_of(fmt, out_fmt, subnormals))
    want = R.pairwise(lambda x, y: R.fpmul_ref(x, y, fmt, out_fmt, subnormals, overflow), a, b, np.uint64)
    got = fpmul(a, b, fmt=fmt, out_fmt=out_fmt, subnormals=subnormals, overflow=overflow)
    R.assert_bits_equal(got, want, out_fmt=out_fmt or fmt, inputs=[("a", a, fmt), ("b", b, fmt)],
                        what=f"fpmul fmt={fmt} out_fmt={out_fmt or fmt} subnormals={subnormals} overflow={overflow}")


# -- directed edge cases ---------------------------------------------------------------------------

def _pack(f, sign, e, m):
    u64 = np.uint64
    return ((np.asarray(sign).astype(u64) << u64(f.sign_shift)) | (np.asarray(e).astype(u64) << u64(f.man_bits))
            | np.asarray(m).astype(u64)).astype(f.dtype)


def fpmul_edge_pairs(fmt, out_fmt, rng, n=3000):
    """Pairs whose exact product lies at the edges of G: around its smallest normal, in its
    subnormal range, around its largest finite value, and on RNE ties.

    Operands are normal with exponent fields chosen so that the product lands at the target
    binade; mantissas are all ones (products just below a power of two, which round up across
    the binade), 1.1000 (with an odd partner: ties) or random."""
    f, g = get_format(fmt), get_format(out_fmt or fmt)
    M, B = f.man_bits, f.bias
    targets = [1 - g.bias - 1, 1 - g.bias, 1 - g.bias - g.man_bits // 2, -g.bias - g.man_bits,
               g.max_exp_field - g.bias, g.max_exp_field - g.bias + 1, 0]
    t = rng.choice(np.array(targets), n)
    ea = rng.integers(1, f.max_exp_field + 1, n)
    eb = t + 2 * B - ea + rng.integers(-1, 1, n)
    ok = (eb >= 1) & (eb <= f.max_exp_field)
    kind = rng.integers(0, 6, n)
    rand_a, rand_b = rng.integers(0, 1 << M, n), rng.integers(0, 1 << M, n)
    x = rng.integers(1, 4, n)
    g_top = (g.max_finite_code & g.man_mask) << max(M - g.man_bits, 0) if M >= g.man_bits else f.man_mask
    d = M - g.man_bits
    if d > 0:   # G narrower than F: 1.0 times a G significand plus half its ulp is a tie
        tie_a, tie_b = 0, ((rand_b >> d) << d) | (1 << (d - 1))
    else:       # 1.1 times an odd significand
        tie_a, tie_b = 1 << (M - 1), rand_b | 1
    ma = np.select([kind == 0, kind == 1, kind == 2, kind == 3, kind == 4],
                   [f.man_mask, tie_a, x, 0, 0], rand_a)
    mb = np.select([kind == 0, kind == 1, kind == 2, kind == 3, kind == 4],
                   [f.man_mask - rng.integers(0, 3, n),   # (2 - u)(2 - yu): just below 4
                    tie_b,                                # ties
                    (1 << M) - 2 * x,                     # (1 + xu)(2 - 2xu) = 2(1 - x^2 u^2): rounds up a binade
                    f.man_mask,                           # 2^e * (2 - u): G's largest mantissa when G = F
                    g_top], rand_b)                       # 2^e * (G's largest significand)
    if f.kind == "fn":
        ok &= ~((ea == f.exp_all_ones) & (ma == f.man_mask)) & ~((eb == f.exp_all_ones) & (mb == f.man_mask))
    s = rng.integers(0, 2, (2, n))
    return _pack(f, s[0][ok], ea[ok], ma[ok]), _pack(f, s[1][ok], eb[ok], mb[ok])


def _product_value(a, b, f):
    return abs(R.decode(a, f) * R.decode(b, f))


def _is_tie(v, g, subnormals):
    if v == 0:
        return False
    e = R.floor_log2(v)
    if subnormals == "full":
        e = max(e, 1 - R.bias(g))
    return (v / Fraction(2) ** (e - g.man_bits)).denominator == 2


@pytest.mark.parametrize("subnormals", ["full", "ftz"])
@pytest.mark.parametrize("fmt,out_fmt", [("fp16", None), ("bf16", None), ("fp32", None), ("fp16", "e5m2"),
                                         ("bf16", "e4m3"), ("fp32", "fp16")])
def test_fpmul_directed_edges(fmt, out_fmt, subnormals):
    f, g = get_format(fmt), get_format(out_fmt or fmt)
    rng = np.random.default_rng(seed_of(fmt, out_fmt, subnormals))
    a, b = fpmul_edge_pairs(fmt, out_fmt, rng)
    for overflow in ("ieee", "saturate"):
        want = R.pairwise(lambda x, y: R.fpmul_ref(x, y, f, g, subnormals, overflow), a, b, np.uint64)
        got = fpmul(a, b, fmt=fmt, out_fmt=out_fmt, subnormals=subnormals, overflow=overflow)
        R.assert_bits_equal(got, want, out_fmt=g, inputs=[("a", a, f), ("b", b, f)],
                            what=f"fpmul edges fmt={fmt} out_fmt={g.name} subnormals={subnormals} overflow={overflow}")
    # the pairs really reach the edges (classified with the reference)
    want = R.pairwise(lambda x, y: R.fpmul_ref(x, y, f, g, subnormals, "ieee"), a, b, np.uint64)
    min_normal = Fraction(2) ** (1 - R.bias(g))
    max_finite = abs(R.decode(R.max_finite_bits(g), g))
    p = [_product_value(int(x), int(y), f) for x, y in zip(a, b)]
    res = [R.decode(int(w), g) for w in want]
    mags = [abs(r) if not isinstance(r, float) else None for r in res]
    counts = {
        "tie": sum(_is_tie(v, g, subnormals) for v in p),
        "rounded up to the smallest normal": sum(v < min_normal and m == min_normal for v, m in zip(p, mags)),
        "largest finite": sum(m == max_finite for m in mags),
        "overflow": sum(m is None for m in mags),
        "overflow by rounding": sum(v < Fraction(2) ** (g.max_exp_field - R.bias(g) + 1) and m is None
                                    for v, m in zip(p, mags)),
        "underflow to zero": sum(v != 0 and m == 0 for v, m in zip(p, mags)),
    }
    if subnormals == "full":
        counts["subnormal result"] = sum(m is not None and 0 < m < min_normal for m in mags)
    assert all(c >= 5 for c in counts.values()), counts


def lmul_edge_pairs(fmt, k, c, out_fmt, rng, n=3000):
    """Pairs at the L-Mul edges: m_a + m_b + c at and around 2^k and 2^(k+1) (the mantissa carry),
    and a result exponent e (step 4) of 0 / 1 (underflow) and of G's largest finite field / one
    above (overflow); lower, truncated mantissa bits are random."""
    f, g = get_format(fmt), get_format(out_fmt or fmt)
    drop = f.man_bits - k
    msum = rng.choice(np.array([(1 << k) - 1, 1 << k, (1 << k) + 1, (2 << k) - 1, 2 << k, c, c + 1]), n)
    ma_k = rng.integers(0, 1 << k, n)
    mb_k = msum - c - ma_k
    carry = msum // (1 << k)
    e_target = rng.choice(np.array([-1, 0, 1, 2, g.max_exp_field - 1, g.max_exp_field, g.max_exp_field + 1]), n)
    ea = rng.integers(1, f.max_exp_field + 1, n)
    eb = e_target - carry - (g.bias - 2 * f.bias) - ea
    ok = (mb_k >= 0) & (mb_k < (1 << k)) & (eb >= 1) & (eb <= f.max_exp_field)
    low_a, low_b = rng.integers(0, 1 << drop, (2, n))
    ma, mb = (ma_k << drop) | low_a, (mb_k << drop) | low_b
    if f.kind == "fn":
        ok &= ~((ea == f.exp_all_ones) & (ma == f.man_mask)) & ~((eb == f.exp_all_ones) & (mb == f.man_mask))
    s = rng.integers(0, 2, (2, n))
    return _pack(f, s[0][ok], ea[ok], ma[ok]), _pack(f, s[1][ok], eb[ok], mb[ok])


@pytest.mark.parametrize("fmt,k,offset,out_fmt", [
    ("fp16", None, None, None), ("fp16", 4, 16, None), ("fp16", 10, 1024, None), ("bf16", None, None, None),
    ("bf16", 2, 0, "fp16"), ("fp32", None, None, None), ("fp32", 12, 4095, "fp32"), ("fp32", 3, None, "e4m3"),
    ("e4m3", None, 3, "e3m4"), ("e5m2", 2, 2, "e4m3"),
])
def test_lmul_directed_edges(fmt, k, offset, out_fmt):
    f, g = get_format(fmt), get_format(out_fmt or fmt)
    kk = f.man_bits if k is None else k
    c = R.resolve_offset(kk, None, offset)
    rng = np.random.default_rng(seed_of(fmt, k, offset, out_fmt))
    a, b = lmul_edge_pairs(fmt, kk, c, out_fmt, rng)
    for overflow in ("ieee", "saturate"):
        want = R.pairwise(lambda x, y: R.lmul_ref(x, y, f, kk, c, g, overflow), a, b, np.uint64)
        got = lmul(a, b, fmt=fmt, k=k, offset=offset, out_fmt=out_fmt, overflow=overflow)
        R.assert_bits_equal(got, want, out_fmt=g, inputs=[("a", a, f), ("b", b, f)],
                            what=lmul_desc(fmt, k, None, offset, out_fmt, overflow) + " (edges)")
    # coverage: recompute step 3/4 and count what was reached
    sa, ea, ma = (np.vectorize(lambda x, i: R.fields(int(x), f)[i])(a, i) for i in range(3))
    _, eb, mb = (np.vectorize(lambda x, i: R.fields(int(x), f)[i])(b, i) for i in range(3))
    drop = f.man_bits - kk
    r = (ea << kk) + (ma >> drop) + (eb << kk) + (mb >> drop) + ((R.bias(g) - 2 * R.bias(f)) << kk) + c
    e = r >> kk
    msum = (ma >> drop) + (mb >> drop) + c
    counts = {
        "underflow e <= 0": (e <= 0).sum(), "e = 1": (e == 1).sum(), "e = largest": (e == g.max_exp_field).sum(),
        "overflow e": (e > g.max_exp_field).sum(),
        "just below a carry": np.isin(msum, [(1 << kk) - 1, (2 << kk) - 1]).sum(),
        "just at a carry": np.isin(msum, [1 << kk, 2 << kk]).sum(),
    }
    if c >= 2:
        assert (msum >= 2 << kk).sum() >= 5, "no double carries"
    assert all(v >= 5 for v in counts.values()), counts
