"""Tiles for the tensor core: random operand matrices with special values mixed in, and the
packing of tiles into stream beats and of output beats into rows (SPEC §5 payload layout).
Shared by the Amaranth tests, the cocotb testbench and ``lmul-hw verify core``."""

from __future__ import annotations

import numpy as np

from .config import CoreConfig
from .formats import Format, encode, get_format

DISTRIBUTIONS = ("gaussian", "heavy")


def random_operands(fmt: str | Format, shape, rng: np.random.Generator, *, dist: str = "gaussian",
                    special_rate: float = 0.04) -> np.ndarray:
    """Bit patterns of values drawn from ``dist`` (unit-variance Gaussian, or Student-t with 3
    degrees of freedom like LLM weights) rounded RNE to ``fmt`` (saturating), with zeros,
    subnormals, NaN and (where the format has them) infinities mixed in at ``special_rate``."""
    f = get_format(fmt)
    if dist == "gaussian":
        values = rng.standard_normal(shape)
    elif dist == "heavy":
        values = rng.standard_t(3, shape) / np.sqrt(3.0)
    else:
        raise ValueError(f"unknown distribution {dist!r}: use one of {', '.join(DISTRIBUTIONS)}")
    bits = encode(values, f, overflow="saturate").astype(np.uint64)
    kinds = [np.uint64(0), np.uint64(f.nan_code)]
    if f.has_inf:
        kinds.append(np.uint64(f.inf_code))
    special = rng.random(shape) < special_rate
    choice = rng.integers(0, len(kinds) + 1, shape)
    subnormal = rng.integers(1, 1 << f.man_bits, shape).astype(np.uint64)
    patterns = np.where(choice < len(kinds), np.array(kinds)[np.minimum(choice, len(kinds) - 1)], subnormal)
    patterns |= rng.integers(0, 2, shape).astype(np.uint64) << np.uint64(f.sign_shift)
    return np.where(special, patterns, bits).astype(f.dtype)


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
