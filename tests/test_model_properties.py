"""Layer 1: algebraic and accuracy properties of the model (hypothesis, derandomized for CI).

The L-Mul error bound used below, derived from SPEC §2
------------------------------------------------------
Take normal operands a = +-2^(e_a - B_F) (1 + x), b = +-2^(e_b - B_F) (1 + y), x, y in [0, 1), and
let x', y' be the mantissas truncated to k bits, u = 2^-k, so x - u < x' <= x (same for y).
Step 3 adds x' + y' + c*u =: S (in units of the leading bit) to the exponents; the carry of the
integer addition turns S into the significand
    phi(S) = 1 + S          for S in [0, 1)
           = 2 S            for S in [1, 2)     (one carry: 2 * (1 + (S - 1)))
           = 4 (S - 1)      for S in [2, 3)     (two carries, possible when c >= 2)
(S < 2(1 - u) + 1 < 3 since c <= 2^k), and when the result is normal L = 2^(e_a + e_b - 2 B_F) phi(S)
exactly (G has at least k mantissa bits, so nothing is rounded).  The exact product is
P = 2^(e_a + e_b - 2 B_F) (1 + x)(1 + y).  With S' = x + y in [0, 2):
 (i)  phi(S') / ((1 + x)(1 + y)) lies in [8/9, 1]: for fixed S' the product (1 + x)(1 + y) is at
      least phi(S') (at x = 0 or x -> 1: 1 + S' resp. 2 S') and at most (1 + S'/2)^2, and
      phi(S') / (1 + S'/2)^2 is smallest, 8/9, at S' = 1 (Mitchell's logarithm bound);
 (ii) phi is continuous and increasing, and d/dS log phi(S) = 1/(1+S), 1/S, 1/(S-1) <= 1 on the
      three pieces, so |log phi(S) - log phi(S')| <= |S - S'|, where
      delta = S - S' = (x' - x) + (y' - y) + c u lies in (c u - 2 u, c u]  (= c u exactly when k = M_F).
Together:  (8/9) * exp(min(0, (c - 2) u))  <=  L / P  <=  exp(max(0, c u)),
and for k = M_F and c = 0 the rational bound 8/9 <= L/P <= 1 holds exactly.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import reference as R
from lmul_hw.formats import get_format, product_format
from lmul_hw.model import fpmul, lmul

SETTINGS = settings(deadline=None, max_examples=200, derandomize=True, database=None)

UNIT_FORMATS = ["e4m3", "e5m2", "bf16", "fp16", "fp32"]


def one(fn, a, b, fmt, **kw):
    f = get_format(fmt)
    return int(fn(np.array([a], dtype=f.dtype), np.array([b], dtype=f.dtype), fmt=fmt, **kw)[0])


@st.composite
def lmul_configs(draw, formats=UNIT_FORMATS):
    fmt = draw(st.sampled_from(formats))
    f = get_format(fmt)
    k = draw(st.integers(1, f.man_bits))
    form = draw(st.sampled_from(["default", "offset_exp", "offset"]))
    kw = dict(k=k)
    if form == "offset_exp":
        kw["offset_exp"] = draw(st.integers(0, k))
    elif form == "offset":
        kw["offset"] = draw(st.integers(0, 1 << k))
    out = draw(st.sampled_from([None, "core"]))
    if out == "core":
        kw["out_fmt"] = product_format(f, "lmul", k)
    kw["overflow"] = draw(st.sampled_from(["ieee", "saturate"]))
    return fmt, kw


@st.composite
def fpmul_configs(draw, formats=UNIT_FORMATS):
    fmt = draw(st.sampled_from(formats))
    out = draw(st.sampled_from([None, "core", "e5m2", "bf16", "fp16", "e4m3"]))
    kw = dict(subnormals=draw(st.sampled_from(["full", "ftz"])), overflow=draw(st.sampled_from(["ieee", "saturate"])))
    if out == "core":
        kw["out_fmt"] = product_format(fmt, "fpmul")
    elif out is not None:
        kw["out_fmt"] = out
    return fmt, kw


def any_code(fmt):
    return st.integers(0, (1 << get_format(fmt).width) - 1)


@st.composite
def normal_code(draw, fmt, spread=None):
    """A normal operand; exponent fields within ``spread`` of the bias when given."""
    f = get_format(fmt)
    lo, hi = 1, f.max_exp_field
    if spread is not None:
        lo, hi = max(lo, f.bias - spread), min(hi, f.bias + spread)
    e = draw(st.integers(lo, hi))
    top = f.man_mask - 1 if (f.kind == "fn" and e == f.exp_all_ones) else f.man_mask
    m = draw(st.one_of(st.integers(0, top), st.sampled_from([0, 1, top, top >> 1, (top >> 1) + 1])))
    return (draw(st.integers(0, 1)) << f.sign_shift) | (e << f.man_bits) | m


# -- symmetry --------------------------------------------------------------------------------------

@SETTINGS
@given(st.data())
def test_lmul_commutes(data):
    fmt, kw = data.draw(lmul_configs())
    a, b = data.draw(any_code(fmt)), data.draw(any_code(fmt))
    assert one(lmul, a, b, fmt, **kw) == one(lmul, b, a, fmt, **kw)


@SETTINGS
@given(st.data())
def test_fpmul_commutes(data):
    fmt, kw = data.draw(fpmul_configs())
    a, b = data.draw(any_code(fmt)), data.draw(any_code(fmt))
    assert one(fpmul, a, b, fmt, **kw) == one(fpmul, b, a, fmt, **kw)


@SETTINGS
@given(st.data())
def test_sign_symmetry(data):
    """Negating an operand negates the result, every special value included (zeros are signed,
    overflow is signed, NaNs are canonical with sign XOR)."""
    mul = data.draw(st.sampled_from(["lmul", "fpmul"]))
    fmt, kw = data.draw(lmul_configs() if mul == "lmul" else fpmul_configs())
    fn = lmul if mul == "lmul" else fpmul
    f = get_format(fmt)
    g = get_format(kw.get("out_fmt") or fmt)
    a, b = data.draw(any_code(fmt)), data.draw(any_code(fmt))
    p = one(fn, a, b, fmt, **kw)
    assert one(fn, a ^ f.sign_bit, b, fmt, **kw) == p ^ g.sign_bit
    assert one(fn, a, b ^ f.sign_bit, fmt, **kw) == p ^ g.sign_bit
    assert one(fn, a ^ f.sign_bit, b ^ f.sign_bit, fmt, **kw) == p
    assert p >> g.sign_shift == (a >> f.sign_shift) ^ (b >> f.sign_shift)


# -- L-Mul accuracy --------------------------------------------------------------------------------

def lmul_ratio(fmt, kw, a, b):
    """L / P for normal operands whose L-Mul result is normal (else the example is discarded)."""
    g = get_format(kw.get("out_fmt") or fmt)
    r = one(lmul, a, b, fmt, **kw)
    assume(R.classify(r, g) == R.NORMAL)
    return R.decode(r, g) / (R.decode(a, fmt) * R.decode(b, fmt))


@SETTINGS
@given(st.data())
def test_lmul_relative_error_bound(data):
    fmt, kw = data.draw(lmul_configs())
    f = get_format(fmt)
    a, b = data.draw(normal_code(fmt, spread=f.bias // 2)), data.draw(normal_code(fmt, spread=f.bias // 2))
    ratio = lmul_ratio(fmt, kw, a, b)
    k = kw["k"]
    c = R.resolve_offset(k, kw.get("offset_exp"), kw.get("offset"))
    u = 2.0 ** -k
    lower = (8 / 9) * math.exp(min(0.0, (c - 2) * u))
    upper = math.exp(max(0.0, c * u))
    slack = 1e-12
    assert ratio > 0
    assert lower * (1 - slack) <= float(ratio) <= upper * (1 + slack), (fmt, kw, hex(a), hex(b), float(ratio))
    if k == f.man_bits:   # no truncation: delta = c u >= 0 exactly
        assert ratio >= Fraction(8, 9)


@SETTINGS
@given(st.data())
def test_lmul_without_offset_is_mitchells_bound(data):
    """k = M_F, c = 0: the approximation never overestimates and loses at most 1/9."""
    fmt = data.draw(st.sampled_from(UNIT_FORMATS))
    f = get_format(fmt)
    a, b = data.draw(normal_code(fmt, spread=f.bias // 2)), data.draw(normal_code(fmt, spread=f.bias // 2))
    ratio = lmul_ratio(fmt, dict(offset=0), a, b)
    assert Fraction(8, 9) <= ratio <= 1


@settings(deadline=None, max_examples=50, derandomize=True, database=None)
@given(st.sampled_from(UNIT_FORMATS))
def test_mitchell_bound_is_attained(fmt):
    """x = y = 1/2 (S' = 1) reaches the bound 8/9 exactly, so the property above is tight."""
    f = get_format(fmt)
    half = (f.bias << f.man_bits) | (1 << (f.man_bits - 1))          # 1.5
    assert lmul_ratio(fmt, dict(offset=0), half, half) == Fraction(8, 9)


@SETTINGS
@given(st.data())
def test_lmul_value_does_not_depend_on_g(data):
    """Where both are normal, the L-Mul value is the same in G = F and in the wider core format."""
    fmt, kw = data.draw(lmul_configs())
    kw.pop("out_fmt", None)
    kw["overflow"] = "ieee"        # (saturate turns an overflow into a normal max finite)
    a, b = data.draw(normal_code(fmt)), data.draw(normal_code(fmt))
    g = product_format(fmt, "lmul", kw["k"])
    narrow, wide = one(lmul, a, b, fmt, **kw), one(lmul, a, b, fmt, out_fmt=g, **kw)
    assert R.classify(wide, g) == R.NORMAL          # the core's product format never over/underflows
    if R.classify(narrow, fmt) == R.NORMAL:
        assert R.decode(narrow, fmt) == R.decode(wide, g)


@SETTINGS
@given(st.data())
def test_lmul_is_monotone(data):
    """R grows with the operand's fields, so |L(a, b)| is non-decreasing in |a| (ieee G: overflow is inf)."""
    fmt, kw = data.draw(lmul_configs())
    kw["overflow"] = "ieee"
    assume(get_format(kw.get("out_fmt") or fmt).kind == "ieee")
    f = get_format(fmt)
    g = get_format(kw.get("out_fmt") or fmt)
    a1, a2, b = data.draw(normal_code(fmt)), data.draw(normal_code(fmt)), data.draw(normal_code(fmt))
    a1, a2 = sorted([a1 & f.mag_mask, a2 & f.mag_mask])
    b &= f.mag_mask
    v1, v2 = R.decode(one(lmul, a1, b, fmt, **kw), g), R.decode(one(lmul, a2, b, fmt, **kw), g)
    assert v1 <= v2


# -- exact multiplier accuracy ------------------------------------------------------------------

@st.composite
def finite_nonzero_code(draw, fmt):
    f = get_format(fmt)
    if draw(st.integers(0, 3)) == 0:   # a subnormal
        return (draw(st.integers(0, 1)) << f.sign_shift) | draw(st.integers(1, f.man_mask))
    return draw(normal_code(fmt))


@SETTINGS
@given(st.data())
def test_fpmul_relative_error_is_half_an_ulp(data):
    fmt, kw = data.draw(fpmul_configs())
    kw["overflow"] = "ieee"        # (saturate turns an overflow into a normal max finite)
    g = get_format(kw.get("out_fmt") or fmt)
    a, b = data.draw(finite_nonzero_code(fmt)), data.draw(finite_nonzero_code(fmt))
    r = one(fpmul, a, b, fmt, **kw)
    assume(R.classify(r, g) == R.NORMAL)
    p = R.decode(a, fmt) * R.decode(b, fmt)
    v = R.decode(r, g)
    bound = Fraction(1, 2 ** (g.man_bits + 1))
    assert (v > 0) == (p > 0)
    assert abs(v - p) <= bound * abs(v)
    if abs(p) >= Fraction(2) ** (1 - g.bias):      # relative to the exact product once it is normal
        assert abs(v - p) <= bound * abs(p)


@SETTINGS
@given(st.data())
def test_fpmul_into_the_core_format_is_exact(data):
    """SPEC §4: 2 M_F + 1 mantissa bits and E_F + 2 exponent bits hold every product exactly."""
    fmt = data.draw(st.sampled_from(UNIT_FORMATS))
    g = product_format(fmt, "fpmul")
    a, b = data.draw(finite_nonzero_code(fmt)), data.draw(finite_nonzero_code(fmt))
    r = one(fpmul, a, b, fmt, out_fmt=g)
    assert R.decode(r, g) == R.decode(a, fmt) * R.decode(b, fmt)


@SETTINGS
@given(st.data())
def test_fpmul_is_monotone(data):
    fmt, kw = data.draw(fpmul_configs())
    kw["overflow"] = "ieee"
    g = get_format(kw.get("out_fmt") or fmt)
    assume(g.kind == "ieee")
    f = get_format(fmt)
    a1, a2 = sorted(data.draw(finite_nonzero_code(fmt)) & f.mag_mask for _ in range(2))
    b = data.draw(finite_nonzero_code(fmt)) & f.mag_mask
    assert R.decode(one(fpmul, a1, b, fmt, **kw), g) <= R.decode(one(fpmul, a2, b, fmt, **kw), g)
