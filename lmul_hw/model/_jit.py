"""Compiled kernels of SPEC §4's fp32 accumulation (numba); loaded only through
``matmul.fp32_kernel``, which points numba's cache at the project's cache root first.

Bit-exactness rests on three things (docs/matmul.md): every product is formed exactly (as float64,
or, for the exact multiplier, as IEEE float32 multiplication, which *is* the exact product rounded
RNE to fp32); each output keeps its own float32 accumulator, updated in k order; and numba compiles
without fast-math, so LLVM neither reassociates the sums nor contracts a multiply and an add into
an FMA.  The loops are vectorised over the output columns j only.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

__all__ = ["lmul_rows", "fpmul_rows"]

#: Output rows and columns of one accumulator block (32 x 256 float32 = 32 KiB, in L1 or L2 beside
#: the decoded slices of B's rows k..k+3); measured best among 16..128 x 128..512 on the benchmark.
ROW_BLOCK = 32
COL_BLOCK = 256
STEPS = 4        # k steps per pass over an accumulator row

_NAN32 = np.uint32(0x7FC00000)
_ZERO = np.uint64(0)
_ONE = np.uint64(1)


@intrinsic
def _u64_as_f64(typingctx, x):
    """The float64 whose bit pattern is the uint64 ``x``."""
    if x != types.uint64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())
    return types.float64(types.uint64), codegen


@intrinsic
def _f32_bits(typingctx, x):
    """The bit pattern of the float32 ``x``, as uint32."""
    if x != types.float32:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))
    return types.uint32(types.float32), codegen


@njit(cache=True, inline="always")
def _pow2(n):
    """2**n as float64, for -1022 <= n <= 1023 (built from its exponent field: exact)."""
    return _u64_as_f64(np.uint64(n + 1023) << np.uint64(52))


@njit(cache=True, inline="always")
def _fields(code, p):
    """(sign, magnitude, exponent field, mantissa, special: zero or subnormal, inf, NaN) of a code;
    p[0..3] = sign position, mantissa bits, all-ones exponent, 1 for an fn format (no inf)."""
    sign_shift, man_bits, exp_ones, fn = p[0], p[1], p[2], p[3]
    man_mask = (_ONE << man_bits) - _ONE
    c = np.uint64(code)
    mag = c & ((_ONE << sign_shift) - _ONE)
    e = mag >> man_bits
    m = mag & man_mask
    top = e == exp_ones
    nan = top & ((m == man_mask) if fn != _ZERO else (m != _ZERO))
    inf = top & (fn == _ZERO) & (m == _ZERO)
    return c >> sign_shift, mag, e, m, e == _ZERO, inf, nan


# The operand decoders are written with selects, not branches, so that the loops over a row of B
# vectorise.

@njit(cache=True, inline="always")
def _lmul_operand(code, p):
    """(X, s, special) for one L-Mul operand, special meaning inf or NaN.

    X = sign * 2^63 + field * 2^(52 - k), modulo 2^64, where field is the operand's exponent field
    and top k mantissa bits.  Then X_a + X_b + K0 (one uint64 addition: SPEC §2 step 3, with
    float64's exponent bias folded into K0 and the sign bits adding modulo 2) is the float64
    pattern of the product in G.
    - Zero and subnormal operands (flushed, §2 step 2) take the field Z (p[7], negative: an
      exponent of -(B_0 - 1) / 2 with B_0 = 1023 - 2 B_F).  A product with one such operand then
      lands below 2^-370 and a product of two at 2^-1022..2^-1020: still positive normal float64
      numbers, but far below fp32's smallest subnormal, so they round to the signed zero that
      SPEC's product is.
    - inf and NaN take the field of 1.0 and carry s = inf or NaN (zeros s = 0, normal numbers
      s = 1).  Multiplying by s_a * s_b then gives §2 step 1: inf * zero is NaN.
    p[4..7] = mantissa bits dropped (M - k), the shift to float64's field (52 - k), the field of
    1.0, Z."""
    sign, mag, e, m, zero, inf, nan = _fields(code, p)
    drop, shift, one_field, zero_field = p[4], p[5], p[6], p[7]
    special = inf | nan
    field = one_field if special else (zero_field if zero else mag >> drop)
    s = 0.0 if zero else (np.nan if nan else (np.inf if inf else 1.0))
    return (sign << np.uint64(63)) + (field << shift), s, special


@njit(cache=True, inline="always")
def _fp_operand(code, p):
    """The value of one operand of the exact multiplier, as float32 (exact: every operand format of
    the core is a subset of fp32); p[4] = 1 for ``ftz`` (subnormals read as zero), p[5] the bias."""
    sign, mag, e, m, zero, inf, nan = _fields(code, p)
    man_bits, ftz, bias = p[1], p[4], p[5]
    sig = (_ZERO if ftz != _ZERO else m) if zero else m | (_ONE << man_bits)
    scale = np.int64(max(e, _ONE)) - np.int64(bias) - np.int64(man_bits)
    v = np.float64(np.int32(sig)) * _pow2(scale)
    v = np.nan if nan else (np.inf if inf else v)
    return np.float32(v * (-1.0 if sign != _ZERO else 1.0))   # (0.0 - v would turn -0 into +0)


@njit(cache=True)
def _lmul_decode(codes, xb, sb, p):
    """A row slice of B: X and s of each code; True if none is inf or NaN."""
    any_special = False
    for j in range(codes.shape[0]):
        x, s, special = _lmul_operand(codes[j], p)
        xb[j] = x
        sb[j] = s
        any_special |= special
    return not any_special


@njit(cache=True)
def _fp_decode(codes, vb, p):
    for j in range(codes.shape[0]):
        vb[j] = _fp_operand(codes[j], p)


@njit(cache=True, nogil=True)
def lmul_rows(A, B, out, first, last, params, k0):
    """Rows first..last-1 of C = A @ B with L-Mul products and fp32 accumulation, into ``out`` as
    fp32 bit patterns (NaN canonical).  ``params``: the operand fields of :func:`_lmul_operand`;
    ``k0``: ((1023 - 2 B_F) * 2^k + c) << (52 - k)."""
    K = A.shape[1]
    N = B.shape[1]
    xb = np.empty((STEPS, COL_BLOCK), np.uint64)
    sb = np.empty((STEPS, COL_BLOCK), np.float64)
    xa = np.empty(STEPS, np.uint64)
    sa = np.empty(STEPS, np.float64)
    acc = np.empty((ROW_BLOCK, COL_BLOCK), np.float32)
    for i0 in range(first, last, ROW_BLOCK):
        rows = min(ROW_BLOCK, last - i0)
        for j0 in range(0, N, COL_BLOCK):
            w = min(COL_BLOCK, N - j0)
            acc[:, :] = 0.0
            for kb in range(0, K, STEPS):
                n = min(STEPS, K - kb)
                plain_b = True
                for t in range(n):
                    plain_b &= _lmul_decode(B[kb + t, j0:j0 + w], xb[t], sb[t], params)
                for r in range(rows):
                    plain = plain_b
                    for t in range(n):
                        x, s, special = _lmul_operand(A[i0 + r, kb + t], params)
                        xa[t] = x + k0
                        sa[t] = s
                        plain &= not special
                    if n < STEPS:
                        for t in range(n):
                            _lmul_add(acc[r], xb[t], sb[t], xa[t], sa[t], w)
                    elif plain:
                        _lmul_add4(acc[r], xb[0], xb[1], xb[2], xb[3], xa[0], xa[1], xa[2], xa[3], w)
                    else:
                        _lmul_add4_scaled(acc[r], xb, sb, xa, sa, w)
            _store(acc, out, i0, rows, j0, w)


@njit(cache=True, nogil=True)
def fpmul_rows(A, B, out, first, last, params):
    """As :func:`lmul_rows` for the exact multiplier: fp32(a * b) is IEEE float32 multiplication of
    the operands' values (exact product, rounded once RNE; overflow inf; gradual underflow)."""
    K = A.shape[1]
    N = B.shape[1]
    vb = np.empty((STEPS, COL_BLOCK), np.float32)
    va = np.empty(STEPS, np.float32)
    acc = np.empty((ROW_BLOCK, COL_BLOCK), np.float32)
    for i0 in range(first, last, ROW_BLOCK):
        rows = min(ROW_BLOCK, last - i0)
        for j0 in range(0, N, COL_BLOCK):
            w = min(COL_BLOCK, N - j0)
            acc[:, :] = 0.0
            for kb in range(0, K, STEPS):
                n = min(STEPS, K - kb)
                for t in range(n):
                    _fp_decode(B[kb + t, j0:j0 + w], vb[t], params)
                for r in range(rows):
                    for t in range(n):
                        va[t] = _fp_operand(A[i0 + r, kb + t], params)
                    if n == STEPS:
                        _fpmul_add4(acc[r], vb[0], vb[1], vb[2], vb[3], va[0], va[1], va[2], va[3], w)
                    else:
                        for t in range(n):
                            _fpmul_add(acc[r], vb[t], va[t], w)
            _store(acc, out, i0, rows, j0, w)


# The innermost loops, in functions of their own: LLVM vectorises them there (inside the kernels'
# bodies it did not).  The four-step forms keep the accumulator in a register across four k steps,
# still adding in k order: ((acc + p0) + p1) + ..., each addition rounded (no fast-math, so LLVM may
# not reorder them).

@njit(cache=True)
def _lmul_add(row, xb, sb, xa, sa, w):
    for j in range(w):
        row[j] = row[j] + np.float32(_u64_as_f64(xa + xb[j]) * (sb[j] * sa))


@njit(cache=True)
def _lmul_add4(row, x0, x1, x2, x3, a0, a1, a2, a3, w):
    """Four k steps without inf or NaN operands (no scale factors needed)."""
    for j in range(w):
        v = row[j] + np.float32(_u64_as_f64(a0 + x0[j]))
        v = v + np.float32(_u64_as_f64(a1 + x1[j]))
        v = v + np.float32(_u64_as_f64(a2 + x2[j]))
        row[j] = v + np.float32(_u64_as_f64(a3 + x3[j]))


@njit(cache=True)
def _lmul_add4_scaled(row, xb, sb, xa, sa, w):
    """Four k steps with inf or NaN among the operands (scale factors s)."""
    x0, x1, x2, x3 = xb[0], xb[1], xb[2], xb[3]
    s0, s1, s2, s3 = sb[0], sb[1], sb[2], sb[3]
    a0, a1, a2, a3 = xa[0], xa[1], xa[2], xa[3]
    t0, t1, t2, t3 = sa[0], sa[1], sa[2], sa[3]
    for j in range(w):
        v = row[j] + np.float32(_u64_as_f64(a0 + x0[j]) * (s0[j] * t0))
        v = v + np.float32(_u64_as_f64(a1 + x1[j]) * (s1[j] * t1))
        v = v + np.float32(_u64_as_f64(a2 + x2[j]) * (s2[j] * t2))
        row[j] = v + np.float32(_u64_as_f64(a3 + x3[j]) * (s3[j] * t3))


@njit(cache=True)
def _fpmul_add(row, vb, va, w):
    for j in range(w):
        row[j] = row[j] + va * vb[j]


@njit(cache=True)
def _fpmul_add4(row, b0, b1, b2, b3, a0, a1, a2, a3, w):
    for j in range(w):
        v = row[j] + a0 * b0[j]
        v = v + a1 * b1[j]
        v = v + a2 * b2[j]
        row[j] = v + a3 * b3[j]


@njit(cache=True, inline="always")
def _store(acc, out, i0, rows, j0, w):
    for r in range(rows):
        for j in range(w):
            v = acc[r, j]
            out[i0 + r, j0 + j] = _f32_bits(v) if v == v else _NAN32
