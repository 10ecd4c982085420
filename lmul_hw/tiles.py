"""Tiles for the tensor core: random operand matrices with special values mixed in, and the
packing of tiles into stream beats and of output beats into rows (SPEC §5 payload layout).
Shared by the Amaranth tests, the cocotb testbench and ``lmul-hw verify core``."""

from __future__ import annotations

import math

import numpy as np

from .config import CoreConfig
from .formats import Format, FpClass, classify, encode, get_format

DISTRIBUTIONS = ("gaussian", "heavy", "wide")
#: Share of ``wide`` operands whose magnitude comes from a pool of two per call: products of pooled
#: values repeat, so that sums of them cancel exactly even in fp32.
WIDE_POOLED = 0.25


def random_operands(fmt: str | Format, shape, rng: np.random.Generator, *, dist: str = "gaussian",
                    special_rate: float = 0.04) -> np.ndarray:
    """Bit patterns of values drawn from ``dist`` rounded RNE to ``fmt`` (saturating), with zeros,
    subnormals, NaN and (where the format has them) infinities mixed in at ``special_rate``.

    ``gaussian``: unit variance; ``heavy``: Student-t with 3 degrees of freedom like LLM weights;
    ``wide``: exponents spread over the whole finite range, subnormals included, with random
    mantissas and signs, so that products overflow and underflow fp32 where the format's range
    allows (fp32 and bf16 operands, which Gaussian values never take there); a quarter of the
    values share two magnitudes (products that cancel exactly), and the largest finite value joins
    the special values."""
    f = get_format(fmt)
    kinds = [np.uint64(0), np.uint64(f.nan_code)]
    if f.has_inf:
        kinds.append(np.uint64(f.inf_code))
    if dist == "gaussian":
        bits = encode(rng.standard_normal(shape), f, overflow="saturate").astype(np.uint64)
    elif dist == "heavy":
        bits = encode(rng.standard_t(3, shape) / np.sqrt(3.0), f, overflow="saturate").astype(np.uint64)
    elif dist == "wide":
        bits = _wide_magnitudes(f, shape, rng)
        pool = _wide_magnitudes(f, 2, rng)
        bits = np.where(rng.random(shape) < WIDE_POOLED, pool[rng.integers(0, 2, shape)], bits)
        bits |= rng.integers(0, 2, shape).astype(np.uint64) << np.uint64(f.sign_shift)
        kinds.append(np.uint64(f.max_finite_code))
    else:
        raise ValueError(f"unknown distribution {dist!r}: use one of {', '.join(DISTRIBUTIONS)}")
    special = rng.random(shape) < special_rate
    choice = rng.integers(0, len(kinds) + 1, shape)
    subnormal = rng.integers(1, 1 << f.man_bits, shape).astype(np.uint64)
    patterns = np.where(choice < len(kinds), np.array(kinds)[np.minimum(choice, len(kinds) - 1)], subnormal)
    patterns |= rng.integers(0, 2, shape).astype(np.uint64) << np.uint64(f.sign_shift)
    return np.where(special, patterns, bits).astype(f.dtype)


def _wide_magnitudes(f: Format, shape, rng: np.random.Generator) -> np.ndarray:
    """Finite magnitudes: exponent fields uniform over all finite ones (0: subnormal or zero) for
    a quarter of them, over the middle half of the range for the rest (so that most fp32 products
    stay finite, with sums that span fp32's range); random mantissas cut to a random number of
    leading bits: short ones make exact ties in the roundings."""
    quarter = (f.max_exp_field + 1) // 4
    exp = np.where(rng.random(shape) < 0.25, rng.integers(0, f.max_exp_field + 1, shape),
                   rng.integers(quarter, f.max_exp_field + 1 - quarter, shape)).astype(np.uint64)
    man = rng.integers(0, 1 << f.man_bits, shape, dtype=np.uint64)
    man &= ~((np.uint64(1) << rng.integers(0, f.man_bits + 1, shape).astype(np.uint64)) - np.uint64(1))
    return np.minimum((exp << np.uint64(f.man_bits)) | man, np.uint64(f.max_finite_code))   # not an fn NaN


def edge_values(fmt: str | Format) -> np.ndarray:
    """Bit patterns of every class of value, both signs: zero, the smallest and largest subnormals,
    the smallest normal, 1 and its neighbour, values near the square roots of the largest finite
    value and of the smallest normal (a little below: bf16 and fp32 squares of it are fp32
    subnormals), the largest finite value, infinity (where the format has one) and NaN.  Where an
    exact product has more bits than fp32 keeps (fp32 operands), also two pairs whose products
    round up across fp32's largest finite value (to inf) and onto its smallest normal."""
    f = get_format(fmt)
    one = f.bias << f.man_bits
    mags = {0, 1, f.man_mask, 1 << f.man_bits, one, one | 1, f.max_finite_code, f.nan_code,
            (f.max_exp_field // 2 + f.bias // 2) << f.man_bits, (f.bias // 2 - 1) << f.man_bits}
    if f.has_inf:
        mags.add(f.inf_code)
    if 2 * f.man_bits + 2 > 24 and f.bias >= 127:    # products need rounding; 2^+-64 fit
        a, b = _round_up_pair(f.man_bits)
        for e_a, e_b in ((64, 63), (-64, -63)):         # products (2 - 2^-24 .. 2) * 2^127 and * 2^-127
            mags |= {((e_a + f.bias) << f.man_bits) | a, ((e_b + f.bias) << f.man_bits) | b}
    mags = sorted(mags)
    return np.array(mags + [m | f.sign_bit for m in mags], dtype=f.dtype)


def _round_up_pair(man_bits: int) -> tuple[int, int]:
    """Mantissa fields of two significands whose exact product lies in [2 - 2^-24, 2): it rounds up
    to 2 in fp32 (the tie at 2 - 2^-24 too, to even)."""
    top = 1 << (2 * man_bits + 1)
    low = top - (1 << (2 * man_bits - 24))
    a = math.isqrt(top)
    while a * -(-low // a) >= top:
        a -= 1
    return a - (1 << man_bits), -(-low // a) - (1 << man_bits)


def edge_tiles(cfg: CoreConfig, rng: np.random.Generator, mixed: int = 4) -> list:
    """Tiles that reach the corners random operands seldom reach, as (A, B) pairs:

    - tiles of K = 1 whose R*C products together take every ordered pair of ``edge_values``
      (inf times zero, overflowing and underflowing products, NaN, signed zeros);
    - ``mixed`` tiles of K = K_max with random finite edge values: sums that overflow, sink into
      fp32's subnormals or cancel to zero;
    - for K_max >= 2, two tiles of K = K_max whose products cancel in pairs (x*y and x*(-y), in a
      random order, ``wide`` operands), so that each sum depends on every rounding on the way."""
    f = cfg.fmt
    values = edge_values(f)
    n = len(values)
    tiles = []
    for i in range(0, n, cfg.rows):
        for j in range(0, n, cfg.cols):
            a = values[np.arange(i, i + cfg.rows) % n].reshape(cfg.rows, 1)
            b = values[np.arange(j, j + cfg.cols) % n].reshape(1, cfg.cols)
            tiles.append((a, b))
    finite = values[classify(values, f) <= FpClass.NORMAL]
    for _ in range(mixed):
        tiles.append((rng.choice(finite, (cfg.rows, cfg.depth)), rng.choice(finite, (cfg.depth, cfg.cols))))
    half = cfg.depth // 2
    for _ in range(2 if half else 0):
        a = random_operands(f, (cfg.rows, half), rng, dist="wide", special_rate=0.0)
        b = random_operands(f, (half, cfg.cols), rng, dist="wide", special_rate=0.0)
        odd = cfg.depth % 2                            # an odd K_max gets one product a * 0 more
        A = np.concatenate([a, a, a[:, :odd]], axis=1)
        B = np.concatenate([b, b ^ f.dtype(f.sign_bit), np.zeros((odd, cfg.cols), f.dtype)], axis=0)
        order = rng.permutation(cfg.depth)
        tiles.append((A[:, order].copy(), B[order].copy()))
    return tiles


def tile_beats(cfg: CoreConfig, A: np.ndarray, B: np.ndarray) -> list[int]:
    """The input beats of one tile: beat k = {a: column k of A, b: row k of B, last}."""
    rows, cols, w = cfg.rows, cfg.cols, cfg.fmt.width
    A, B = np.asarray(A), np.asarray(B)
    if A.shape[0] != rows or B.shape[1] != cols or A.shape[1] != B.shape[0]:
        raise ValueError(f"a {rows}x{cols} core takes A ({rows}xK) and B (KxN={cols}); got {A.shape}, {B.shape}")
    depth = A.shape[1]
    if not 1 <= depth <= cfg.depth:
        raise ValueError(f"tile depth {depth} is outside 1..{cfg.depth}")
    beats = []
    for k in range(depth):
        a = sum(int(A[r, k]) << (r * w) for r in range(rows))
        b = sum(int(B[k, c]) << (c * w) for c in range(cols))
        beats.append(a | (b << (rows * w)) | (int(k == depth - 1) << (rows * w + cols * w)))
    return beats


def beat_row(cfg: CoreConfig, payload: int) -> tuple[list[int], bool]:
    """An output beat as (fp32 bit patterns of one row, last-row flag)."""
    row = [(payload >> (32 * c)) & 0xFFFFFFFF for c in range(cfg.cols)]
    return row, bool((payload >> (32 * cfg.cols)) & 1)


def model_tile(cfg: CoreConfig, A, B) -> np.ndarray:
    """What the core must output for one tile (SPEC §4), from the model."""
    from .model import matmul
    return matmul(A, B, cfg)
