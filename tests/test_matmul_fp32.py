"""The compiled fp32-accumulation kernels of lmul_hw.model.matmul (SPEC §4 `fp32`) against the numpy
loop that computed it before them (the oracle below), for every operand format of the core and both
multipliers; sums that an FMA or a reassociated sum would change; the JIT cache's place and a
failing compile."""

from __future__ import annotations

import os
import subprocess
import sys
import zlib
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

import reference as R
from lmul_hw.config import ARRAY_FORMATS, core_unit
from lmul_hw.errors import ToolError
from lmul_hw.formats import encode, get_format
from lmul_hw.model import matmul
from lmul_hw.model.matmul import fp32_kernel, products

ROOT = Path(__file__).resolve().parent.parent


def oracle(A, B, unit):
    """SPEC §4 fp32 mode as numpy computed it before the kernels: all M x N products of step k
    exactly (float64), each rounded to fp32, added to the fp32 accumulators, k = 0..K-1."""
    acc = np.zeros((A.shape[0], B.shape[1]), dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(A.shape[1]):
            acc = acc + products(A[:, k, None], B[None, k, :], unit).astype(np.float32)
    bits = acc.view(np.uint32).copy()
    bits[np.isnan(acc)] = 0x7FC00000
    return bits


def seed_of(*parts) -> int:
    return zlib.crc32(repr(parts).encode())


def check(A, B, mul, fmt, **opts):
    got = matmul(A, B, mul=mul, fmt=fmt, acc="fp32", **opts)
    want = oracle(np.asarray(A), np.asarray(B), core_unit(mul, fmt, **opts))
    assert got.dtype == np.uint32 and got.shape == want.shape
    bad = np.argwhere(got != want)
    if bad.size:
        i, j = bad[0]
        f = get_format(fmt)
        head = min(A.shape[1], 6)
        raise AssertionError(
            f"fp32 matmul mul={mul} fmt={fmt} {opts} shape {A.shape}x{B.shape}: {len(bad)} of {got.size} "
            f"outputs differ; first at [{i}, {j}]: expected 0x{int(want[i, j]):08x}, got 0x{int(got[i, j]):08x}\n"
            f"  A[{i}, :{head}] = {[R.describe(int(v), f) for v in A[i, :head]]}\n"
            f"  B[:{head}, {j}] = {[R.describe(int(v), f) for v in B[:head, j]]}")
    return got


# -- operands ------------------------------------------------------------------------------------

def special_codes(fmt):
    """Every kind of value, both signs: zeros, the smallest and largest subnormals, the smallest
    normal, 1, values around the square root of fp32's range, the largest finite value, inf, NaN."""
    f = get_format(fmt)
    mags = {0, 1, f.man_mask, 1 << f.man_bits, f.bias << f.man_bits, (f.bias << f.man_bits) | f.man_mask,
            f.max_finite_code, f.nan_code, (f.max_exp_field // 2 + f.bias // 2) << f.man_bits}
    if f.has_inf:
        mags.add(f.inf_code)
    mags = sorted(m & f.mag_mask for m in mags)
    return np.array(mags + [m | f.sign_bit for m in mags], dtype=f.dtype)


def random_operands(fmt, shape, rng, mix):
    """``uniform``: every bit pattern equally likely (all exponents, specials included); ``normal``:
    values near 1 (where sums round in the low bits), 5% zeros; ``dense``: the same without zeros
    (the kernels' path for steps whose operands are all normal numbers); ``special``: drawn from
    special_codes."""
    f = get_format(fmt)
    if mix == "uniform":
        return rng.integers(0, 1 << f.width, shape, dtype=np.uint64).astype(f.dtype)
    if mix == "special":
        return rng.choice(special_codes(fmt), shape)
    x = rng.standard_normal(shape) * np.exp2(rng.integers(-3, 4, shape))
    if mix == "dense":
        x = np.where(np.abs(x) < 0.1, 0.5, x)        # nothing near e4m3's subnormals
    else:
        x[rng.random(shape) < 0.05] = 0.0
    return encode(x, fmt)


def cancelling(fmt, M, K, N, rng):
    """Rows of A and columns of B whose products cancel in pairs (x*y and x*(-y)) in a random order,
    with a few small products among them: fp32 sums that depend on every rounding and on the order."""
    f = get_format(fmt)
    half = K // 2
    a = random_operands(fmt, (M, half), rng, "normal")
    b = random_operands(fmt, (half, N), rng, "normal")
    A = np.concatenate([a, a], axis=1)
    B = np.concatenate([b, b ^ np.array(f.sign_bit, dtype=f.dtype)], axis=0)
    if K % 2:
        A = np.concatenate([A, encode(np.full((M, 1), 2.0 ** -6), fmt)], axis=1)
        B = np.concatenate([B, random_operands(fmt, (1, N), rng, "normal")], axis=0)
    p = rng.permutation(K)
    return A[:, p].copy(), B[p].copy()


def unit_options(fmt):
    """Every multiplier variant worth telling apart: L-Mul at full k and k = 1 and 3 with the
    default, zero and largest offsets; the exact multiplier with and without subnormals."""
    m = get_format(fmt).man_bits
    k3 = min(m, 3)
    lmul = [{}, dict(k=1), dict(k=1, offset=2), dict(k=k3, offset=0), dict(k=k3, offset_exp=0),
            dict(k=m, offset=1 << m), dict(k=m, offset=0)]
    return [("lmul", o) for o in lmul] + [("fpmul", {}), ("fpmul", dict(subnormals="ftz"))]


CASES = [(fmt, mul, opts) for fmt in ARRAY_FORMATS for mul, opts in unit_options(fmt)]
IDS = [f"{fmt}-{mul}-{'-'.join(f'{k}{v}' for k, v in o.items()) or 'default'}" for fmt, mul, o in CASES]


@pytest.mark.parametrize("fmt,mul,opts", CASES, ids=IDS)
def test_kernel_matches_the_numpy_loop(fmt, mul, opts):
    rng = np.random.default_rng(seed_of(fmt, mul, opts))
    for mix in ("uniform", "normal", "dense", "special"):
        check(random_operands(fmt, (9, 41), rng, mix), random_operands(fmt, (41, 23), rng, mix), mul, fmt, **opts)
    check(*cancelling(fmt, 5, 57, 270, rng), mul, fmt, **opts)       # N > one 256-column block
    specials = special_codes(fmt)
    check(specials[:, None], specials[None, :], mul, fmt, **opts)      # every pair of special values


@pytest.mark.parametrize("fmt", ARRAY_FORMATS)
@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 7, 1), (7, 1, 1), (1, 1, 7), (33, 1, 300), (1, 300, 1),
                                   (17, 5, 1), (1, 5, 257)])
def test_odd_shapes(fmt, shape):
    M, K, N = shape
    rng = np.random.default_rng(seed_of(fmt, shape))
    A = random_operands(fmt, (M, K), rng, "uniform")
    B = random_operands(fmt, (K, N), rng, "normal")
    for mul in ("lmul", "fpmul"):
        check(A, B, mul, fmt)


@pytest.mark.parametrize("fmt,mul", [("bf16", "lmul"), ("e4m3", "fpmul"), ("fp32", "lmul")])
def test_threaded_rows(fmt, mul):
    """A product big enough to be spread over threads (blocks of rows) gives the same bits."""
    rng = np.random.default_rng(seed_of(fmt, mul, "threads"))
    A, B = cancelling(fmt, 70, 501, 130, rng)         # 4.6 M multiply-adds: over the threading threshold
    A[3, 7] = special_codes(fmt)[-1]                  # a negative special value in one row
    check(A, B, mul, fmt)


def test_operand_layouts_and_dtypes():
    """Views, read-only arrays and wider integer dtypes of the same codes give the same result."""
    rng = np.random.default_rng(5)
    A = random_operands("bf16", (20, 30), rng, "normal")
    B = random_operands("bf16", (30, 40), rng, "normal")
    want = check(A, B, "lmul", "bf16")
    ro = B.copy()
    ro.flags.writeable = False
    spaced = np.zeros((30, 80), dtype=B.dtype)
    spaced[:, ::2] = B
    for A2, B2 in ((np.asfortranarray(A), spaced[:, ::2]), (A.astype(np.int64), ro), (A.astype(np.uint32), B)):
        assert np.array_equal(matmul(A2, B2, mul="lmul", fmt="bf16", acc="fp32"), want)


# -- sums that FMA or reassociation would change -------------------------------------------------

def _bits(x: float) -> int:
    return int(np.float32(x).view(np.uint32))


def _tile(fmt, a_row, b_col, rows=3, cols=300):
    """``rows`` copies of the row a and ``cols`` copies of the column b (wide enough for the
    vectorised loops)."""
    A = np.tile(encode(np.array(a_row, dtype=np.float64), fmt), (rows, 1))
    B = np.tile(encode(np.array(b_col, dtype=np.float64), fmt)[:, None], (1, cols))
    return A, B


# K = 2 goes through the kernels' one-step loops, K = 4 (two zero products first) through the
# four-step ones
PADS = pytest.mark.parametrize("pad", [0, 2], ids=["K2", "K4"])


def _padded_tile(fmt, a_row, b_col, pad):
    return _tile(fmt, [0.0] * pad + a_row, [0.0] * pad + b_col)


@PADS
@pytest.mark.parametrize("fmt", ["fp32", "bf16"])
def test_no_fma_contraction_fpmul(fmt, pad):
    """-1 * 1 + (1 + 2^-u)^2: the second product is 1 + 2^(1-u) + 2^-2u, rounded to fp32 before the
    addition.  fp32 (u = 12): 2^-24 is a tie and goes to even, so the sum is 2^-11; an FMA would keep
    it (2^-11 + 2^-24).  bf16 (u = 7): the product is exact in fp32 and both agree on 2^-6 + 2^-14."""
    u = 12 if fmt == "fp32" else 7
    t = 1 + 2.0 ** -u
    A, B = _padded_tile(fmt, [-1.0, t], [1.0, t], pad)
    got = matmul(A, B, mul="fpmul", fmt=fmt, acc="fp32")
    p = Fraction(t) ** 2
    want = float(Fraction(float(np.float32(float(p)))) - 1)           # SPEC: round p, then add
    fused = float(p - 1)                                                # what an FMA would give
    assert (got == _bits(want)).all(), f"expected 0x{_bits(want):08x}, got 0x{int(got[0, 0]):08x}"
    assert (fmt == "bf16") == (want == fused)


@PADS
@pytest.mark.parametrize("fmt", ["fp32", "bf16"])
@pytest.mark.parametrize("mul", ["lmul", "fpmul"])
def test_no_fma_contraction_at_underflow(fmt, mul, pad):
    """2^-126 * 2^-23 + 2^-126 * 2^-24: the second product, 2^-150, rounds to +0 (a tie, to even)
    before it is added, so the sum is the smallest subnormal 0x00000001; adding it unrounded (an
    FMA) would give the tie 1.5 * 2^-149 and round to 0x00000002."""
    opts = dict(offset=0) if mul == "lmul" else {}          # L-Mul of powers of two is exact with c = 0
    A, B = _padded_tile(fmt, [2.0 ** -126, 2.0 ** -126], [2.0 ** -23, 2.0 ** -24], pad)
    got = matmul(A, B, mul=mul, fmt=fmt, acc="fp32", **opts)
    assert (got == 0x00000001).all(), f"expected 0x00000001, got 0x{int(got[0, 0]):08x}"


@pytest.mark.parametrize("fmt,mul", [("fp16", "fpmul"), ("bf16", "lmul"), ("fp32", "lmul"), ("e5m2", "fpmul")])
def test_sums_are_not_reassociated(fmt, mul):
    """2^24 followed by sixteen 1s stays 2^24 in k order (each 1 is half an ulp, a tie to even);
    summing the ones first, in any tree or in vector lanes, would give 2^24 + 16.  In the other order
    the ones add up exactly first and the sum is 2^24 + 16."""
    opts = dict(offset=0) if mul == "lmul" else {}
    big = 2.0 ** 12
    for a_row, want in (([big] + [1.0] * 16, 2.0 ** 24), ([1.0] * 16 + [big], 2.0 ** 24 + 16)):
        A, B = _tile(fmt, a_row, a_row)
        got = matmul(A, B, mul=mul, fmt=fmt, acc="fp32", **opts)
        assert (got == _bits(want)).all(), f"{a_row[:2]}...: expected 0x{_bits(want):08x}, got 0x{int(got[0, 0]):08x}"


# -- the JIT cache and a failing compile ---------------------------------------------------------

def test_failed_compile_is_a_tool_error(monkeypatch):
    """A compile that fails is a ToolError (exit 3) naming numba and its reason, not a slow fallback."""
    dispatcher = fp32_kernel("fpmul", np.uint8, 6)

    def broken(sig):
        raise RuntimeError("LLVM ERROR: out of registers (simulated)")

    fp32_kernel.cache_clear()
    monkeypatch.setattr(dispatcher, "compile", broken)
    A = np.zeros((2, 2), dtype=np.uint8)
    try:
        with pytest.raises(ToolError, match=r"numba failed: cannot compile .*fpmul_rows.*uint8.*out of registers"):
            matmul(A, A, mul="fpmul", fmt="e4m3", acc="fp32")
    finally:
        monkeypatch.undo()
        fp32_kernel.cache_clear()
    assert matmul(A, A, mul="fpmul", fmt="e4m3", acc="fp32").shape == (2, 2)


def test_calls_use_the_compiled_signatures_only():
    """Every call reaches one of the signatures compiled under ToolError's watch: a call whose
    argument types differed would make numba compile a new one silently, outside that check."""
    A = np.zeros((2, 3), dtype=np.int64)
    for fmt in ARRAY_FORMATS:
        for mul in ("lmul", "fpmul"):
            matmul(A, A.T, mul=mul, fmt=fmt, acc="fp32")
    for mul, n in (("lmul", 8), ("fpmul", 6)):
        dispatcher = fp32_kernel(mul, np.uint8, n)
        dtypes = sorted(str(sig[0].dtype) for sig in dispatcher.signatures)
        assert dtypes == ["uint16", "uint32", "uint8"], dispatcher.signatures


_CHILD = """
import numpy as np
from lmul_hw import cache
from lmul_hw.model import matmul
A = np.full((3, 4), 0x38, dtype=np.uint8)
print(hex(int(matmul(A, A.T.copy(), mul="lmul", fmt="e4m3", acc="fp32", k=2, offset=0)[0, 0])))
print(cache.info()["kinds"]["jit"]["bytes"] > 0)
"""


def test_jit_cache_lives_under_the_cache_root(tmp_path):
    """In a fresh process with LMUL_HW_CACHE set, numba's index and compiled code land in
    ROOT/jit (kind "jit" of `lmul-hw cache`), and nothing is written beside the package's sources."""
    root = tmp_path / "cache"
    package = ROOT / "lmul_hw"
    before = {p for p in package.rglob("*") if p.suffix in (".nbi", ".nbc")}
    env = dict(os.environ, LMUL_HW_CACHE=str(root), PYTHONPATH=str(ROOT))
    env.pop("NUMBA_CACHE_DIR", None)
    done = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == [hex(_bits(4.0)), "True"]            # 1 * 1, four times
    index = list((root / "jit").rglob("*.nbi"))
    code = list((root / "jit").rglob("*.nbc"))
    assert index and code, sorted(p.name for p in (root / "jit").rglob("*"))
    assert {p for p in package.rglob("*") if p.suffix in (".nbi", ".nbc")} == before
