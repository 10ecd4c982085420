"""Operands for the accuracy analysis: LLM-like value distributions rounded to a format, and the
exhaustive set of finite pairs of an 8-bit format."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..formats import FpClass, Format, classify, decode, encode, get_format

__all__ = ["DISTRIBUTIONS", "DIST_TEXT", "EXHAUSTIVE", "rng_for", "sample_operands", "sample_pairs", "finite_pairs",
           "exact_products", "fast_decode", "convert"]

#: formats up to this width are decoded and converted through cached tables of every code
_TABLE_BITS = 18

#: Distributions of operand values (each operand drawn independently).
DISTRIBUTIONS = ("gaussian", "uniform", "heavy")
#: The population "every finite pair" of an 8-bit format.
EXHAUSTIVE = "exhaustive"
DIST_TEXT = {
    "gaussian": "standard normal N(0, 1)",
    "uniform": "uniform mantissa field, random sign, exponent uniform in -4..4",
    "heavy": "Student-t, 3 degrees of freedom, scaled to unit variance (t/sqrt(3))",
    EXHAUSTIVE: "all pairs of finite values (zeros and subnormals included)",
}
_STREAMS = {"gaussian": 1, "uniform": 2, "heavy": 3}
_PURPOSES = {"elementwise": 1, "calibration": 2, "dot": 3}


def rng_for(seed: int, dist: str, purpose: str, extra: int = 0) -> np.random.Generator:
    """An independent, reproducible random stream per (seed, distribution, purpose): a result does
    not depend on which other distributions or formats were analysed in the same run."""
    if dist not in _STREAMS:
        raise ValueError(f"unknown distribution {dist!r}: use one of {', '.join(DISTRIBUTIONS)}")
    return np.random.default_rng([int(seed), _STREAMS[dist], _PURPOSES[purpose], int(extra)])


def sample_operands(dist: str, shape, fmt: str | Format, rng: np.random.Generator) -> np.ndarray:
    """Bit patterns in ``fmt`` of values drawn from ``dist``: gaussian and heavy values are rounded
    to ``fmt`` once (RNE, saturating to max finite); uniform ones are built from their fields."""
    f = get_format(fmt)
    if dist == "gaussian":
        return _encode_chunked(rng.standard_normal(shape), f)
    if dist == "heavy":
        return _encode_chunked(rng.standard_t(3, size=shape) / np.sqrt(3.0), f)
    if dist == "uniform":
        if f.bias - 4 < 1 or f.bias + 4 > f.max_exp_field:
            raise ValueError(f"format {f.name} cannot hold exponents -4..4 as normal numbers")
        sign = rng.integers(0, 2, size=shape, dtype=np.uint64)
        exp = rng.integers(-4, 5, size=shape).astype(np.uint64) + np.uint64(f.bias)
        man = rng.integers(0, 1 << f.man_bits, size=shape, dtype=np.uint64)
        bits = (sign << np.uint64(f.sign_shift)) | (exp << np.uint64(f.man_bits)) | man
        return bits.astype(f.dtype)
    raise ValueError(f"unknown distribution {dist!r}: use one of {', '.join(DISTRIBUTIONS)}")


#: pairs are drawn in blocks of this many, each from its own stream, so that the first n pairs of a
#: stream are the same whatever n is
BLOCK = 1 << 16


def sample_pairs(dist: str, n: int, fmt: str | Format, seed: int, purpose: str = "elementwise",
                 stream: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(a, b): the first ``n`` independent operand pairs of a reproducible stream (seed, dist, purpose,
    stream); a prefix of a longer draw is the shorter draw."""
    f = get_format(fmt)
    a = np.empty(int(n), dtype=f.dtype)
    b = np.empty(int(n), dtype=f.dtype)
    for j, i in enumerate(range(0, int(n), BLOCK)):
        m = min(BLOCK, int(n) - i)
        ab = sample_operands(dist, (2, BLOCK), f, rng_for(seed, dist, purpose, stream * 1_000_000 + j))
        a[i:i + m], b[i:i + m] = ab[0, :m], ab[1, :m]
    return a, b


def _encode_chunked(values, f: Format, chunk: int = 1 << 14) -> np.ndarray:
    """``encode(values, f, "saturate")`` in pieces: the same bits, several times faster on large arrays
    (its many full-size temporaries otherwise cost a page fault per 4 KiB)."""
    flat = values.reshape(-1)
    out = np.empty(flat.size, dtype=f.dtype)
    for i in range(0, flat.size, chunk):
        out[i:i + chunk] = encode(flat[i:i + chunk], f, overflow="saturate")
    return out.reshape(values.shape)


def finite_pairs(fmt: str | Format) -> tuple[np.ndarray, np.ndarray]:
    """(a, b): every ordered pair of finite bit patterns of an 8-bit format (zeros, subnormals included)."""
    f = get_format(fmt)
    if f.width > 8:
        raise ValueError(f"exhaustive pairs need an 8-bit format, not {f.name} ({f.width} bits)")
    codes = np.arange(1 << f.width, dtype=np.uint64)
    cls = classify(codes, f)
    finite = codes[(cls != FpClass.INF) & (cls != FpClass.NAN)].astype(f.dtype)
    a, b = np.meshgrid(finite, finite, indexing="ij")
    return a.reshape(-1), b.reshape(-1)


def exact_products(a, b, fmt: str | Format) -> np.ndarray:
    """Exact products of bit patterns as float64 (exact: significands of at most 26 bits)."""
    f = get_format(fmt)
    if 2 * (f.man_bits + 1) > 53:
        raise ValueError(f"products of {f.name} values are not exact in float64")
    return fast_decode(a, f) * fast_decode(b, f)


@lru_cache(maxsize=32)
def _decode_table(f: Format) -> np.ndarray:
    return decode(np.arange(1 << f.width, dtype=np.uint64), f)


def fast_decode(bits, fmt: str | Format) -> np.ndarray:
    """:func:`lmul_hw.formats.decode` through a cached table of every code (formats up to 18 bits)."""
    f = get_format(fmt)
    if f.width > _TABLE_BITS:
        return decode(bits, f)
    return _decode_table(f)[np.asarray(bits).astype(np.intp)]


@lru_cache(maxsize=32)
def _convert_table(src: Format, dst: Format, overflow: str) -> np.ndarray:
    return encode(_decode_table(src), dst, overflow=overflow)


def convert(bits, src: str | Format, dst: str | Format, overflow: str = "saturate") -> np.ndarray:
    """Round bit patterns of ``src`` once (RNE) to ``dst``: ``encode(decode(bits, src), dst, overflow)``,
    through a cached table for sources up to 18 bits."""
    s, d = get_format(src), get_format(dst)
    if s.width > _TABLE_BITS:
        return encode(decode(bits, s), d, overflow=overflow)
    return _convert_table(s, d, overflow)[np.asarray(bits).astype(np.intp)]
