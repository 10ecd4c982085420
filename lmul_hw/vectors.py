"""Test vectors for the multiplier units: the operand pairs that the cocotb testbenches
(``sim/``), ``lmul-hw verify`` and ``lmul-hw vectors`` all use.

- formats of at most 8 bits: every pair (65,536 for an fp8 format), nothing else is needed;
- wider formats: every pair of special values (signed zeros, smallest and largest subnormal,
  smallest and largest normal, 1.0, infinities, NaN variants), directed edges that depend on the
  unit (see :func:`edge_pairs`) and seeded uniformly random bit patterns.

Everything here is deterministic for a given configuration and seed.  Expected products come from
``lmul_hw.model``; this module only chooses operands.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .config import FPMulConfig, LMulConfig, kind_of
from .formats import FpClass, Format, classify, decode, encode

__all__ = ["Vectors", "unit_vectors", "special_values", "special_pairs", "edge_pairs", "random_pairs",
           "exhaustive_pairs", "is_exhaustive", "expected_bits", "describe_pair", "golden_text", "DEFAULT_RANDOM", "EXHAUSTIVE_MAX_WIDTH",
           "BYTES_PER_VECTOR"]

#: Seeded random pairs checked for a format too wide for the exhaustive set.
DEFAULT_RANDOM = 100_000
#: Operand formats up to this width are checked on every pair.
EXHAUSTIVE_MAX_WIDTH = 8
#: Peak memory per random pair, for the largest use (``golden_text``: operands, products, Python
#: integers and text lines; measured about 300 bytes for fp32, with margin): bounds ``count``.
BYTES_PER_VECTOR = 600


@dataclass
class Vectors:
    """Operand pairs (arrays of bit patterns in the operand format's dtype) and where they came from."""
    a: np.ndarray
    b: np.ndarray
    sections: dict = field(default_factory=dict)    # name -> number of pairs, in order

    def __len__(self) -> int:
        return len(self.a)

    @property
    def exhaustive(self) -> bool:
        return "exhaustive" in self.sections

    def describe(self) -> str:
        return ", ".join(f"{n} {name}" for name, n in self.sections.items())


def is_exhaustive(fmt: Format) -> bool:
    return fmt.width <= EXHAUSTIVE_MAX_WIDTH


def _pack(values, fmt: Format) -> np.ndarray:
    return np.asarray(values, dtype=np.uint64).astype(fmt.dtype)


def exhaustive_pairs(fmt: Format):
    """All 2^(2W) pairs; pair i is (i >> W, i & (2^W - 1))."""
    n = 1 << fmt.width
    idx = np.arange(n * n, dtype=np.uint64)
    return _pack(idx >> np.uint64(fmt.width), fmt), _pack(idx & np.uint64(n - 1), fmt)


def special_values(fmt: Format) -> np.ndarray:
    """Both signs of: zero, smallest and largest subnormal, smallest normal, 1.0, largest finite,
    infinity (ieee) and the NaN variants (canonical, smallest and largest mantissa; fn: its one NaN)."""
    m = fmt.man_bits
    mags = [0, 1, fmt.man_mask, 1 << m, fmt.bias << m, fmt.max_finite_code]
    if fmt.kind == "ieee":
        top = fmt.exp_all_ones << m
        mags += [top, fmt.nan_code, top | 1, top | fmt.man_mask]
    else:
        mags += [fmt.nan_code]
    seen = []
    for v in mags:
        if v not in seen:
            seen.append(v)
    mags = np.array(seen, dtype=np.uint64)
    return _pack(np.concatenate([mags, mags | np.uint64(fmt.sign_bit)]), fmt)


def special_pairs(fmt: Format):
    s = special_values(fmt)
    a, b = np.meshgrid(s, s, indexing="ij")
    return a.ravel(), b.ravel()


def random_pairs(fmt: Format, count: int, rng: np.random.Generator):
    """Uniformly random bit patterns (every class appears in proportion to its codes)."""
    hi = np.uint64((1 << fmt.width) - 1)
    a = rng.integers(0, hi, size=count, dtype=np.uint64, endpoint=True)
    b = rng.integers(0, hi, size=count, dtype=np.uint64, endpoint=True)
    return _pack(a, fmt), _pack(b, fmt)


# -- directed edges ------------------------------------------------------------------------------

def edge_pairs(cfg, rng: np.random.Generator, per_case: int = 24):
    """Unit-specific edges.

    L-Mul: sums R of the one adder (SPEC §2 step 3) just below, at and above the underflow edge
    (e = 0 / 1, the smallest normal), the overflow edge (the largest finite value, and an fn
    format's NaN code), and the mantissa carry edge in the normal range, each reached once with and
    once without a carry out of the mantissa sum, with random truncated bits below k.

    Exact multiplier: rounding ties (to even, up and down), half an ulp plus or minus a sticky bit,
    in the normal and the subnormal range of the product format, and products around its smallest
    normal, largest finite value and half its smallest subnormal.
    """
    kind_of(cfg, "unit")
    edges = _EDGES.get(cfg.mul)
    if edges is None:                   # a unit type without hand-made edge cases
        return _pack([], cfg.fmt), _pack([], cfg.fmt)
    a, b = edges(cfg, rng, per_case)
    return _pack(a, cfg.fmt), _pack(b, cfg.fmt)


def _normal_exp_range(f: Format) -> tuple[int, int]:
    return 1, f.max_exp_field


def _random_signs(n, f: Format, rng):
    return rng.integers(0, 2, size=n, dtype=np.uint64) << np.uint64(f.sign_shift)


def _lmul_edges(cfg: LMulConfig, rng, per_case: int):
    f, g, k, c = cfg.fmt, cfg.out_fmt, cfg.k, cfg.offset
    lo_e, hi_e = _normal_exp_range(f)
    shift_e = g.bias - 2 * f.bias                     # R = (ea+eb+shift_e) * 2^k + (ma+mb+c)
    one = 1 << k
    top = (g.max_exp_field + 1) << k                  # first R whose e is beyond the finite range
    targets = [one + d for d in (-2, -1, 0, 1)] + [top + d for d in (-2, -1, 0, 1)]
    if g.kind == "fn":
        nan_r = (g.max_exp_field << k) | (one - 1)    # the NaN code if M_G == k
        targets += [nan_r - 1, nan_r]
    mid = (shift_e + 2 * ((lo_e + hi_e) // 2)) << k   # a product near 1 * 2^(middle exponent)
    for s_low in (one - 2, one - 1, 0, 1):
        targets += [mid + s_low, mid + (2 << k) + s_low]
    av, bv = [], []
    for r in targets:
        for carry in (0, 1):
            s = (r & (one - 1)) + carry * one         # mantissa sum including c
            if not c <= s <= 2 * (one - 1) + c:
                continue
            esum = (r >> k) - carry - shift_e         # ea + eb
            ea_lo, ea_hi = max(lo_e, esum - hi_e), min(hi_e, esum - lo_e)
            ms = s - c                                # ma + mb
            ma_lo, ma_hi = max(0, ms - (one - 1)), min(one - 1, ms)
            if ea_lo > ea_hi or ma_lo > ma_hi:
                continue
            ea = rng.integers(ea_lo, ea_hi, size=per_case, endpoint=True)
            ma = rng.integers(ma_lo, ma_hi, size=per_case, endpoint=True)
            eb, mb = esum - ea, ms - ma
            drop = f.man_bits - k
            low_a = rng.integers(0, 1 << drop, size=per_case) if drop else np.zeros(per_case, np.int64)
            low_b = rng.integers(0, 1 << drop, size=per_case) if drop else np.zeros(per_case, np.int64)
            av.append((ea << f.man_bits) | (ma << drop) | low_a)
            bv.append((eb << f.man_bits) | (mb << drop) | low_b)
    if not av:
        return np.zeros(0, np.uint64), np.zeros(0, np.uint64)
    a = np.concatenate(av).astype(np.uint64)
    b = np.concatenate(bv).astype(np.uint64)
    keep = (classify(a, f) == FpClass.NORMAL) & (classify(b, f) == FpClass.NORMAL)   # fn: not its NaN
    a, b = a[keep], b[keep]
    return a | _random_signs(len(a), f, rng), b | _random_signs(len(b), f, rng)


def _sig_exp(bits, f: Format):
    """Integer significand and exponent of its last bit (value = sig * 2^exp) of finite patterns."""
    x = np.asarray(bits, dtype=np.uint64).astype(np.int64)
    e = (x >> f.man_bits) & f.exp_all_ones
    m = x & f.man_mask
    sig = np.where(e == 0, m, m | (1 << f.man_bits))
    return sig, np.maximum(e, 1) - f.bias - f.man_bits


def _bit_length(n):
    out = np.zeros(n.shape, np.int64)
    v = n.copy()
    for s in (32, 16, 8, 4, 2, 1):
        big = v >= (np.int64(1) << s)
        out += np.where(big, s, 0)
        v = np.where(big, v >> s, v)
    return out + (v > 0)


def rounding_case(a, b, cfg: FPMulConfig) -> np.ndarray:
    """How the exact product of finite nonzero operands rounds into the product format:
    0 exact, 1 below half an ulp, 2 a tie, 3 above half an ulp (the remainder's class)."""
    f, g = cfg.fmt, cfg.out_fmt
    sa, xa = _sig_exp(a, f)
    sb, xb = _sig_exp(b, f)
    sig, exp = sa * sb, xa + xb
    lead = _bit_length(sig) - 1 + exp
    e = lead if cfg.subnormals == "ftz" else np.maximum(lead, 1 - g.bias)
    drop = np.clip((e - g.man_bits) - exp, 0, 62)
    rem = sig & ((np.int64(1) << drop) - 1)
    half = (np.int64(1) << drop) >> 1
    return np.select([drop == 0, rem == 0, rem < half, rem == half], [0, 0, 1, 2], 3)


def _fpmul_edges(cfg: FPMulConfig, rng, per_case: int):
    f, g = cfg.fmt, cfg.out_fmt
    lo_e, hi_e = _normal_exp_range(f)
    av, bv = [], []
    # rounding: odd significands of p and q bits give an odd product of p+q-1 or p+q bits, so
    # p + q near M_G + 2 yields ties and half-ulp +- sticky cases for a product normal in G
    n = 64 * per_case
    p = rng.integers(1, f.man_bits + 2, size=n)
    q = np.clip(g.man_bits + 2 + rng.integers(0, 2, size=n) - p, 1, f.man_bits + 1)
    odd_a = (rng.integers(0, 1 << 62, size=n) & ((np.int64(1) << p) - 1)) | 1 | (np.int64(1) << (p - 1))
    odd_b = (rng.integers(0, 1 << 62, size=n) & ((np.int64(1) << q) - 1)) | 1 | (np.int64(1) << (q - 1))
    ma = (odd_a << (f.man_bits + 1 - p)) & f.man_mask
    mb = (odd_b << (f.man_bits + 1 - q)) & f.man_mask
    # exponents: mostly a normal product in G, some near the bottom of G's range (subnormal results)
    target = rng.integers(1, g.max_exp_field + 1, size=n) - g.bias      # unbiased exponent of the product
    low = rng.random(n) < 0.3
    target = np.where(low, 1 - g.bias - rng.integers(0, g.man_bits + 2, size=n), target)
    ea = rng.integers(lo_e, hi_e, size=n, endpoint=True)
    eb = target + 2 * f.bias - ea
    ok = (eb >= lo_e) & (eb <= hi_e)
    a = (ea << f.man_bits) | ma
    b = (np.clip(eb, 0, f.exp_all_ones) << f.man_bits) | mb
    a, b = a[ok].astype(np.uint64), b[ok].astype(np.uint64)
    keep = (classify(a, f) == FpClass.NORMAL) & (classify(b, f) == FpClass.NORMAL)
    a, b = a[keep], b[keep]
    case = rounding_case(a, b, cfg)
    for cls in (1, 2, 3):              # ties round both ways, depending on the kept bit's parity
        idx = np.flatnonzero(case == cls)[:2 * per_case]
        av.append(a[idx])
        bv.append(b[idx])
    # products around thresholds of G: b near target/a for a few a, stepping b's code by -3..3
    ops = [1 << f.man_bits, f.bias << f.man_bits, f.max_finite_code]
    if cfg.subnormals == "full":
        ops += [1, f.man_mask]
    ea = rng.integers(lo_e, hi_e, size=per_case, endpoint=True)
    ops += list((ea << f.man_bits) | rng.integers(0, 1 << f.man_bits, size=per_case))
    ops = np.array(ops, dtype=np.uint64)
    ops = ops[classify(ops, f) != FpClass.NAN]
    aval = decode(ops, f)
    for t in (g.min_normal, g.max_finite, g.min_subnormal / 2, g.min_subnormal, g.min_normal - g.min_subnormal):
        with np.errstate(over="ignore", divide="ignore"):
            bc = encode(t / aval, f).astype(np.int64) & f.mag_mask
        for d in range(-3, 4):
            bb = bc + d
            ok = (bb > 0) & (bb <= f.max_finite_code)
            av.append(ops[ok])
            bv.append(bb[ok].astype(np.uint64))
    a = np.concatenate(av).astype(np.uint64)
    b = np.concatenate(bv).astype(np.uint64)
    keep = (classify(a, f) != FpClass.NAN) & (classify(b, f) != FpClass.NAN)
    a, b = a[keep], b[keep]
    return a | _random_signs(len(a), f, rng), b | _random_signs(len(b), f, rng)


#: Hand-made edge cases per multiplier type (``cfg.mul``).
_EDGES = {"lmul": _lmul_edges, "fpmul": _fpmul_edges}


# -- the whole set -------------------------------------------------------------------------------

def unit_vectors(cfg, count: int = DEFAULT_RANDOM, seed: int = 0) -> Vectors:
    """The operand pairs a unit is checked on: exhaustive for formats of at most 8 bits, otherwise
    special pairs, edges and ``count`` seeded random pairs (in this order)."""
    kind_of(cfg, "unit")
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
        raise ValueError(f"the number of random vectors must be a non-negative integer, not {count!r}")
    from .limits import check_count
    count = check_count("count", int(count), BYTES_PER_VECTOR)
    f = cfg.fmt
    if is_exhaustive(f):
        a, b = exhaustive_pairs(f)
        return Vectors(a, b, {"exhaustive": len(a)})
    rng = np.random.default_rng([int(seed), f.width, 0x4C4D554C])
    parts = {"special": special_pairs(f), "edge": edge_pairs(cfg, rng), "random": random_pairs(f, int(count), rng)}
    a = np.concatenate([p[0] for p in parts.values()])
    b = np.concatenate([p[1] for p in parts.values()])
    return Vectors(a, b, {name: len(p[0]) for name, p in parts.items()})


def expected_bits(cfg, a, b) -> np.ndarray:
    """The model's products (the golden values) for a unit configuration."""
    return kind_of(cfg, "unit").load("model")(a, b, cfg)


def describe_pair(cfg, a: int, b: int, expected: int, actual: int | None) -> str:
    """One checked case, bits in hex and decoded values: ``a=0x.. (v) b=0x.. (v): expected .., got ..``
    (``actual`` None: the output had X/Z bits)."""
    f, g = cfg.fmt, cfg.out_fmt
    wf, wg = (f.width + 3) // 4, (g.width + 3) // 4

    def val(x, fmt):
        return repr(float(decode(np.array([x], dtype=np.uint64), fmt)[0]))

    got = "X/Z" if actual is None else f"0x{actual:0{wg}x} ({val(actual, g)})"
    return (f"a=0x{a:0{wf}x} ({val(a, f)}) b=0x{b:0{wf}x} ({val(b, f)}): "
            f"expected 0x{expected:0{wg}x} ({val(expected, g)}), got {got}")


def golden_text(cfg, count: int = DEFAULT_RANDOM, seed: int = 0) -> tuple[str, int]:
    """The vectors of :func:`unit_vectors` with the model's products as text: a short ``#`` header
    naming the configuration, then one ``a b p`` line of zero-padded hex bit patterns per pair."""
    from . import __version__
    v = unit_vectors(cfg, count, seed)
    p = expected_bits(cfg, v.a, v.b)
    wf, wg = (cfg.fmt.width + 3) // 4, (cfg.out_fmt.width + 3) // 4
    head = [f"# lmul-hw {__version__} golden vectors of {cfg.name}",
            f"# config: {cfg.to_json()}",
            f"# {len(v)} pairs ({v.describe()}; seed {seed}); columns: a b (operand format {cfg.fmt.name}) "
            f"p (product format {cfg.out_fmt.name}), hex bit patterns"]
    fmt = f"{{:0{wf}x}} {{:0{wf}x}} {{:0{wg}x}}"
    lines = [fmt.format(x, y, z) for x, y, z in zip(v.a.tolist(), v.b.tolist(), p.tolist())]
    return "\n".join(head + lines) + "\n", len(v)
