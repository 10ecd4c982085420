"""A slow scalar reference of SPEC.md §1-§4, written straight from the text with Python ints and
``fractions.Fraction``.

It is deliberately independent of ``lmul_hw.model`` and of the numeric helpers of
``lmul_hw.formats``: from there it takes only the field widths and the kind of a format
(``Format``/``get_format``).  Bias, special codes, classes, decoding and rounding are all derived
here again from SPEC §1.

Values are returned as ``Fraction`` (finite, a zero is ``Fraction(0)``), ``INF``/``-INF`` or ``NAN``
(Python floats); where the sign of a zero matters, use :func:`decode_parts`.

The module also holds :func:`assert_bits_equal`, the one mismatch reporter of the test suite:
it names the inputs, the expected and the actual bit patterns (hex) and their decoded values.
"""

from __future__ import annotations

import math
from fractions import Fraction
from functools import lru_cache

import numpy as np

from lmul_hw.formats import Format, get_format

INF = math.inf
NAN = math.nan

ZERO, SUBNORMAL, NORMAL, INFINITY, NOTANUMBER = "zero", "subnormal", "normal", "inf", "nan"


# ---------------------------------------------------------------------------------------------
# §1 formats, from the widths only

def fmt_of(fmt) -> Format:
    return get_format(fmt)


def bias(f: Format) -> int:
    return 2 ** (f.exp_bits - 1) - 1


def width(f: Format) -> int:
    return 1 + f.exp_bits + f.man_bits


def exp_ones(f: Format) -> int:
    return 2 ** f.exp_bits - 1


def man_ones(f: Format) -> int:
    return 2 ** f.man_bits - 1


def pack(f: Format, sign: int, exp_field: int, man: int) -> int:
    assert 0 <= exp_field <= exp_ones(f) and 0 <= man <= man_ones(f) and sign in (0, 1)
    return (sign << (f.exp_bits + f.man_bits)) | (exp_field << f.man_bits) | man


def fields(bits: int, f: Format) -> tuple[int, int, int]:
    bits = int(bits)
    assert 0 <= bits < 2 ** width(f), (bits, f)
    return bits >> (f.exp_bits + f.man_bits), (bits >> f.man_bits) & exp_ones(f), bits & man_ones(f)


def largest_finite_exp(f: Format) -> int:
    """SPEC §1: ieee -> the all-ones field holds inf/NaN; fn -> the all-ones field is an ordinary binade."""
    return exp_ones(f) if f.kind == "fn" else exp_ones(f) - 1


def max_finite_bits(f: Format, sign: int = 0) -> int:
    man = man_ones(f) - 1 if f.kind == "fn" else man_ones(f)   # fn: S.1..1.1..1 is NaN
    return pack(f, sign, largest_finite_exp(f), man)


def nan_bits(f: Format, sign: int = 0) -> int:
    """The canonical NaN: ieee sign|1..1|10..0, fn sign|1..1|1..1."""
    man = man_ones(f) if f.kind == "fn" else 2 ** (f.man_bits - 1)
    return pack(f, sign, exp_ones(f), man)


def inf_bits(f: Format, sign: int = 0) -> int:
    assert f.kind == "ieee"
    return pack(f, sign, exp_ones(f), 0)


def overflow_bits(f: Format, sign: int, overflow: str) -> int:
    """SPEC §2 step 6: saturate -> signed max finite; ieee -> signed inf (ieee G) or NaN (fn G)."""
    assert overflow in ("ieee", "saturate")
    if overflow == "saturate":
        return max_finite_bits(f, sign)
    return inf_bits(f, sign) if f.kind == "ieee" else nan_bits(f, sign)


def classify(bits: int, fmt) -> str:
    f = fmt_of(fmt)
    _, e, m = fields(bits, f)
    if e == 0:
        return ZERO if m == 0 else SUBNORMAL
    if e == exp_ones(f):
        if f.kind == "ieee":
            return INFINITY if m == 0 else NOTANUMBER
        if m == man_ones(f):
            return NOTANUMBER
    return NORMAL


def decode_parts(bits: int, fmt) -> tuple[int, str, Fraction | None]:
    """(sign, class, magnitude as a Fraction; None for inf and NaN)."""
    return _decode_parts(int(bits), fmt_of(fmt))


@lru_cache(maxsize=1 << 18)
def _decode_parts(bits: int, f: Format) -> tuple[int, str, Fraction | None]:
    s, e, m = fields(bits, f)
    cls = classify(bits, f)
    if cls in (INFINITY, NOTANUMBER):
        return s, cls, None
    B, M = bias(f), f.man_bits
    if e == 0:                                   # zero or subnormal: 0.m * 2^(1-B)
        mag = Fraction(m, 2 ** M) * Fraction(2) ** (1 - B)
    else:                                        # 1.m * 2^(e-B)
        mag = Fraction(2 ** M + m, 2 ** M) * Fraction(2) ** (e - B)
    return s, cls, mag


@lru_cache(maxsize=1 << 16)
def _decode_cached(bits: int, f: Format):
    s, cls, mag = decode_parts(bits, f)
    if cls == NOTANUMBER:
        return NAN
    if cls == INFINITY:
        return -INF if s else INF
    return -mag if s else mag


def decode(bits: int, fmt):
    """A bit pattern -> Fraction, +-INF or NAN (the sign of a zero is lost; see decode_parts)."""
    return _decode_cached(int(bits), fmt_of(fmt))


def describe(bits: int, fmt) -> str:
    """'0x3c00 (+1)' style text for a bit pattern, the value written exactly."""
    f = fmt_of(fmt)
    digits = (width(f) + 3) // 4
    s, cls, mag = decode_parts(int(bits), f)
    sign = "-" if s else "+"
    if cls == NOTANUMBER:
        val = f"{sign}NaN"
    elif cls == INFINITY:
        val = f"{sign}inf"
    else:
        val = f"{sign}{_fraction_text(mag)}"
        if cls == SUBNORMAL:
            val += " subnormal"
    return f"0x{int(bits):0{digits}x} ({val})"


def _fraction_text(q: Fraction) -> str:
    if q == 0:
        return "0"
    if q.denominator == 1 or q.denominator <= 1 << 12:
        exact = str(q)
    else:
        exact = f"{q.numerator}*2^-{q.denominator.bit_length() - 1}" if q.denominator & (q.denominator - 1) == 0 \
            else str(q)
    return f"{float(q):.9g} = {exact}" if q.denominator != 1 else exact


# ---------------------------------------------------------------------------------------------
# rounding a rational once, to nearest even

def floor_log2(q: Fraction) -> int:
    """e with 2^e <= q < 2^(e+1), for q > 0."""
    n, d = q.numerator, q.denominator
    e = n.bit_length() - d.bit_length()
    if e >= 0:
        if n < d << e:
            e -= 1
    elif n << -e < d:
        e -= 1
    return e


def round_half_even(num: int, den: int) -> int:
    """num/den (>= 0) rounded to the nearest integer, ties to even."""
    q, r = divmod(num, den)
    if 2 * r > den or (2 * r == den and q % 2 == 1):
        q += 1
    return q


def scaled_round(q: Fraction, exp: int) -> int:
    """q / 2^exp rounded to the nearest integer, ties to even."""
    n, d = q.numerator, q.denominator
    if exp >= 0:
        return round_half_even(n, d << exp)
    return round_half_even(n << -exp, d)


OVERFLOW = "overflow"


def round_magnitude(q: Fraction, fmt, subnormals: str = "full"):
    """Round a magnitude q >= 0 once (RNE) into ``fmt``.

    Returns the magnitude bit pattern, or OVERFLOW when the rounded value is beyond the largest
    finite value (or is the NaN code of an fn format).  ``full``: gradual underflow.  ``ftz``
    (SPEC §3): rounded to M fraction bits as if the exponent range were unbounded; a rounded
    result below the smallest normal becomes zero."""
    f = fmt_of(fmt)
    assert subnormals in ("full", "ftz")
    B, M = bias(f), f.man_bits
    if q == 0:
        return 0
    e = floor_log2(q)
    if subnormals == "full":
        e = max(e, 1 - B)                     # the binade, or the subnormal range
    n = scaled_round(q, e - M)                # significand in units of the last mantissa bit
    if n == 2 ** (M + 1):                     # rounding carried into the next binade
        n, e = 2 ** M, e + 1
    if n == 0:
        return 0
    if n >= 2 ** M:
        if e < 1 - B:                         # only possible with ftz
            return 0
        field = e + B
        man = n - 2 ** M
    else:                                     # subnormal (full only)
        assert subnormals == "full" and e == 1 - B
        field, man = 0, n
    if field > largest_finite_exp(f):
        return OVERFLOW
    if f.kind == "fn" and field == exp_ones(f) and man == man_ones(f):
        return OVERFLOW
    return (field << M) | man


def round_value(v, fmt, overflow: str = "ieee", subnormals: str = "full") -> int:
    """A Fraction / +-INF / NAN (or a float) -> bit pattern in ``fmt``; ``sign`` of a zero from a
    float's sign bit.  inf takes the overflow result of §2 step 6, NaN the canonical NaN."""
    f = fmt_of(fmt)
    if isinstance(v, float):
        sign = 1 if math.copysign(1.0, v) < 0 else 0
        if math.isnan(v):
            return nan_bits(f, sign)
        if math.isinf(v):
            return overflow_bits(f, sign, overflow)
        v = Fraction(v)
    else:
        sign = 1 if v < 0 else 0
    mag = round_magnitude(abs(Fraction(v)), f, subnormals)
    if mag == OVERFLOW:
        return overflow_bits(f, sign, overflow)
    return (sign << (f.exp_bits + f.man_bits)) | mag


FP32 = Format("fp32", 8, 23, "ieee")
FP32_NAN = 0x7FC00000


def round_to_fp32(v) -> int:
    """A Fraction (or +-INF / NAN) -> fp32 bits, RNE, beyond fp32 -> inf, tiny -> subnormal or zero
    (zero keeps the sign of v; an exact zero is +0).  NaN -> the canonical 0x7FC00000."""
    if isinstance(v, float) and math.isnan(v):
        return FP32_NAN
    return round_value(v, FP32, "ieee", "full")


# ---------------------------------------------------------------------------------------------
# §2 L-Mul

def default_offset_exp(k: int) -> int:
    """The paper's l(k): k if k <= 3, 3 if k == 4, 4 if k > 4."""
    if k <= 3:
        return k
    return 3 if k == 4 else 4


def resolve_offset(k: int, offset_exp=None, offset=None) -> int:
    assert offset_exp is None or offset is None
    if offset is not None:
        assert 0 <= offset <= 2 ** k
        return offset
    l = default_offset_exp(k) if offset_exp is None else offset_exp
    assert 0 <= l <= k
    return 2 ** (k - l)


def lmul_ref(a: int, b: int, fmt, k=None, c=None, out_fmt=None, overflow: str = "ieee") -> int:
    """SPEC §2 steps 1-7 for one pair of bit patterns; ``c`` is the offset (default 2^(k-l(k)))."""
    f = fmt_of(fmt)
    g = f if out_fmt is None else fmt_of(out_fmt)
    k = f.man_bits if k is None else k
    assert 1 <= k <= f.man_bits and g.man_bits >= k
    c = resolve_offset(k) if c is None else c
    assert 0 <= c <= 2 ** k
    sa, ea, ma = fields(a, f)
    sb, eb, mb = fields(b, f)
    s = sa ^ sb
    ca, cb = classify(a, f), classify(b, f)
    # 1. NaN; inf times zero or subnormal; inf times anything else overflows
    if NOTANUMBER in (ca, cb):
        return nan_bits(g, s)
    if INFINITY in (ca, cb):
        if {ca, cb} & {ZERO, SUBNORMAL}:
            return nan_bits(g, s)
        return overflow_bits(g, s, overflow)
    # 2. zero or subnormal operands flush to zero
    if {ca, cb} & {ZERO, SUBNORMAL}:
        return pack(g, s, 0, 0)
    # 3. one integer addition on (exponent, truncated mantissa)
    drop = f.man_bits - k
    ma_k, mb_k = ma >> drop, mb >> drop
    R = (ea * 2 ** k + ma_k) + (eb * 2 ** k + mb_k) + (bias(g) - 2 * bias(f)) * 2 ** k + c
    # 4.
    e, m = R // 2 ** k, R % 2 ** k
    # 5. underflow flushes to zero
    if e <= 0:
        return pack(g, s, 0, 0)
    man = m * 2 ** (g.man_bits - k)           # 7. followed by M_G - k zero bits
    # 6. overflow
    if e > largest_finite_exp(g) or (g.kind == "fn" and e == exp_ones(g) and man == man_ones(g)):
        return overflow_bits(g, s, overflow)
    return pack(g, s, e, man)


# ---------------------------------------------------------------------------------------------
# §3 the exact multiplier

def fpmul_ref(a: int, b: int, fmt, out_fmt=None, subnormals: str = "full", overflow: str = "ieee") -> int:
    """SPEC §3: the exact rational product rounded once (RNE) to G."""
    f = fmt_of(fmt)
    g = f if out_fmt is None else fmt_of(out_fmt)
    sa, ca, va = decode_parts(a, f)
    sb, cb, vb = decode_parts(b, f)
    s = sa ^ sb
    if subnormals == "ftz":                   # subnormal inputs read as zero
        if ca == SUBNORMAL:
            ca, va = ZERO, Fraction(0)
        if cb == SUBNORMAL:
            cb, vb = ZERO, Fraction(0)
    if NOTANUMBER in (ca, cb):
        return nan_bits(g, s)
    if INFINITY in (ca, cb):
        if ZERO in (ca, cb):
            return nan_bits(g, s)
        return overflow_bits(g, s, overflow)
    mag = round_magnitude(va * vb, g, subnormals)
    if mag == OVERFLOW:
        return overflow_bits(g, s, overflow)
    return (s << (g.exp_bits + g.man_bits)) | mag


# ---------------------------------------------------------------------------------------------
# §4 the tensor core's tile

def core_product_format(fmt, mul: str, k=None) -> Format:
    """ieee, E_F + 2 exponent bits; k mantissa bits (lmul) or 2*M_F + 1 (fpmul)."""
    f = fmt_of(fmt)
    if mul == "lmul":
        man = f.man_bits if k is None else k
    else:
        assert mul == "fpmul"
        man = 2 * f.man_bits + 1
    return Format(f"e{f.exp_bits + 2}m{man}", f.exp_bits + 2, man, "ieee")


@lru_cache(maxsize=64)
def core_product_fn(mul: str, fmt, k=None, offset_exp=None, offset=None, subnormals="full"):
    """The exact product of the core's unit as a function of two bit patterns, returning a
    Fraction / +-INF / NAN (cached: the same pairs recur)."""
    f = fmt_of(fmt)
    g = core_product_format(f, mul, k)
    if mul == "lmul":
        kk = f.man_bits if k is None else k
        c = resolve_offset(kk, offset_exp, offset)

        @lru_cache(maxsize=None)
        def product(a, b):
            return decode(lmul_ref(a, b, f, kk, c, g, "ieee"), g)
    else:
        @lru_cache(maxsize=None)
        def product(a, b):
            return decode(fpmul_ref(a, b, f, g, subnormals, "ieee"), g)
    return product, g


def matmul_ref(A, B, mul: str, fmt, acc: str, **opts) -> np.ndarray:
    """SPEC §4 for one tile, element by element in k order; returns MxN uint32 fp32 bit patterns.

    ``exact``: Python-int Kulisch accumulation of every finite product (integer multiples of the
    product format's smallest subnormal), NaN/+inf/-inf flags beside it, read out once RNE.
    ``fp32``: acc = np.float32(acc + np.float32(p_k)) from +0, p_k the exact product as float64."""
    A = np.asarray(A)
    B = np.asarray(B)
    M, K = A.shape
    K2, N = B.shape
    assert K == K2
    product, g = core_product_fn(mul, fmt, **opts)
    lsb = Fraction(2) ** (1 - bias(g) - g.man_bits)
    out = np.zeros((M, N), dtype=np.uint32)
    for i in range(M):
        for j in range(N):
            ps = [product(int(A[i, kk]), int(B[kk, j])) for kk in range(K)]
            if acc == "exact":
                out[i, j] = _kulisch(ps, lsb)
            else:
                assert acc == "fp32"
                out[i, j] = _fp32_recipe(ps)
    return out


def _kulisch(ps, lsb: Fraction) -> int:
    total = 0
    nan = pinf = ninf = False
    for p in ps:
        if isinstance(p, float):
            if math.isnan(p):
                nan = True
            elif p > 0:
                pinf = True
            else:
                ninf = True
            continue
        units = p / lsb
        assert units.denominator == 1, "a product is not a multiple of the product format's lsb"
        total += units.numerator
    if nan or (pinf and ninf):
        return FP32_NAN
    if pinf:
        return 0x7F800000
    if ninf:
        return 0xFF800000
    if total == 0:
        return 0                                # an exact zero reads out as +0
    return round_to_fp32(total * lsb)


def _fp32_recipe(ps) -> int:
    acc = np.float32(0.0)
    with np.errstate(over="ignore", invalid="ignore"):
        for p in ps:
            p64 = p if isinstance(p, float) else float(p)
            assert isinstance(p, float) or Fraction(p64) == p, "product not exact in float64"
            acc = np.float32(acc + np.float32(p64))
    if np.isnan(acc):
        return FP32_NAN
    return int(np.array(acc, dtype=np.float32).view(np.uint32))


# ---------------------------------------------------------------------------------------------
# tables and the mismatch reporter

def table(fn, codes_a, codes_b, dtype) -> np.ndarray:
    """fn(a, b) for every a in codes_a (rows) and b in codes_b (columns)."""
    out = np.empty((len(codes_a), len(codes_b)), dtype=dtype)
    for i, a in enumerate(codes_a):
        a = int(a)
        row = out[i]
        for j, b in enumerate(codes_b):
            row[j] = fn(a, int(b))
    return out


def pairwise(fn, a, b, dtype) -> np.ndarray:
    """fn over matching elements of two 1-D arrays of bit patterns."""
    return np.array([fn(int(x), int(y)) for x, y in zip(a, b)], dtype=dtype)


def assert_bits_equal(actual, expected, *, out_fmt, inputs=(), what="", nan_by_class=False, limit=12,
                      detail=None):
    """Assert two arrays of bit patterns are equal, bit for bit (or NaN by class only).

    ``inputs``: (name, array, format) triples broadcastable against ``expected``; the message
    lists the first ``limit`` mismatches with every input, the expected and the actual pattern in
    hex and decoded, and the total count.  ``detail(position)`` may add text to each line (e.g. the
    row and column of a matrix product)."""
    g = fmt_of(out_fmt)
    act = np.asarray(actual).astype(np.uint64)
    exp = np.asarray(expected).astype(np.uint64)
    assert act.shape == exp.shape, f"{what}: shape {act.shape} != expected {exp.shape}"
    bad = act != exp
    if nan_by_class and bad.any():
        both_nan = _is_nan(act, g) & _is_nan(exp, g)
        bad &= ~both_nan
    if not bad.any():
        return
    idx = np.argwhere(bad)
    ins = [(name, np.broadcast_to(np.asarray(arr), exp.shape), fmt_of(f)) for name, arr, f in inputs]
    lines = [f"{what}: {len(idx)} of {exp.size} results differ"
             f"{' (NaN compared by class)' if nan_by_class else ''}:"]
    for pos in idx[:limit]:
        pos = tuple(pos)
        parts = [f"{name}={describe(int(arr[pos]), f)}" for name, arr, f in ins]
        parts.append(f"expected {describe(int(exp[pos]), g)}")
        parts.append(f"got {describe(int(act[pos]), g)}")
        where = f"[{', '.join(map(str, pos))}] " if not ins else ""
        extra = f"\n      {detail(pos)}" if detail is not None else ""
        lines.append("  " + where + ", ".join(parts) + extra)
    if len(idx) > limit:
        lines.append(f"  ... and {len(idx) - limit} more")
    raise AssertionError("\n".join(lines))


def _is_nan(bits: np.ndarray, g: Format) -> np.ndarray:
    e = (bits >> np.uint64(g.man_bits)) & np.uint64(exp_ones(g))
    m = bits & np.uint64(man_ones(g))
    top = e == np.uint64(exp_ones(g))
    if g.kind == "ieee":
        return top & (m != 0)
    return top & (m == np.uint64(man_ones(g)))
