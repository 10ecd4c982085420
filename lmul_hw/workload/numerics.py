"""A workload's matrix products through a core's numerics (SPEC §6), and the record of what the core saw.

``Y = X @ W`` under a configuration: scale each operand (fp8: by the largest power of two that keeps
its largest magnitude within the format; bf16, fp16: none), encode it RNE to the format, multiply on
bit patterns with ``model.matmul`` and divide the fp32 result by the scales.  The operand is the
matrix handed to that one product, so the scale is per sentence and weight matrix for the linear
layers and per sentence and head for the attention products.  The finer scalings of SPEC §6 are
options (``Numerics.scale``): one scale per row of X and column of W (``row``), or per row and column
within each block of 32 along K (``block32``: each block's fp32 sum is unscaled and added to the
result in float32, block after block, as a block-scaled core with an fp32 accumulator does)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..config import FPMulConfig, LMulConfig, PEConfig, check_exact_accumulator, core_unit
from ..formats import Format, encode, get_format
from .streams import PRODUCT_KINDS, ProductSample

__all__ = ["ATTENTION_KINDS", "LINEAR_KINDS", "WHERE", "SCALES", "BLOCK", "MAX_DEPTH", "Numerics",
           "scale_exponent", "encode_operand", "CoreProducts"]

#: The per-head products of attention (Q·Kᵀ and softmax·V); the rest are the linear layers.
ATTENTION_KINDS = ("scores", "context")
LINEAR_KINDS = tuple(k for k in PRODUCT_KINDS if k not in ATTENTION_KINDS)
WHERE = {"all": PRODUCT_KINDS, "attention": ATTENTION_KINDS, "linear": LINEAR_KINDS}
#: The scalings of fp8 operands (SPEC §6): the whole operand, per row of X / column of W, or per row /
#: column within blocks of BLOCK along K.
SCALES = ("tensor", "row", "block32")
BLOCK = 32
#: PE streams sampled per product kind and configuration (uniform over the run's output elements);
#: docs/workload-energy.md measures how far the estimate from 512 can be from every stream's.
STREAMS_PER_KIND = 512
#: The deepest product of MiniLM: the second feed-forward layer (K = 1536; attention's K is <= 256 tokens).
MAX_DEPTH = 1536


@dataclass(frozen=True)
class Numerics:
    """One workload configuration: a unit in ``generate``'s terms (its default module name names the
    output), the core's accumulation, which products go through the core and how fp8 operands are
    scaled (bf16 and fp16 take no scale, so ``scale`` applies to the 8-bit formats only)."""
    unit: LMulConfig | FPMulConfig
    acc: str = "fp32"
    where: str = "all"
    scale: str = "tensor"

    def __post_init__(self):
        if self.acc not in ("fp32", "exact"):
            raise ValueError(f"acc must be fp32 or exact, not {self.acc!r}")
        if self.where not in WHERE:
            raise ValueError(f"where must be one of {', '.join(WHERE)}, not {self.where!r}")
        if self.scale not in SCALES:
            raise ValueError(f"scale must be one of {', '.join(SCALES)}, not {self.scale!r}")
        if self.scale != "tensor" and self.unit.fmt.width > 8:
            raise ValueError(f"{self.unit.name}: {self.unit.fmt.name} operands take no scale (SPEC §6); "
                             f"--scale {self.scale} applies to 8-bit formats")
        if self.unit.out_fmt != self.unit.fmt:
            raise ValueError(f"{self.unit.name}: a product format does not apply to a core (SPEC §4 fixes it)")
        if self.unit.overflow != "ieee":
            raise ValueError(f"{self.unit.name}: an overflow mode does not apply to a core (SPEC §4: no overflow)")
        unit = core_unit(self.unit.mul, self.unit.fmt, **self.options)   # ValueError for formats a core lacks
        if self.acc == "exact":
            check_exact_accumulator(unit, MAX_DEPTH)

    @property
    def options(self) -> dict:
        """The unit options of ``model.matmul`` and the core: k and offset (lmul) or subnormals (fpmul)."""
        if self.unit.mul == "lmul":
            return {"k": self.unit.k, "offset": self.unit.offset}
        return {"subnormals": self.unit.subnormals}

    @property
    def fmt(self) -> Format:
        return self.unit.fmt

    @property
    def name(self) -> str:
        """``<unit name>[_exact][_attention|_linear][_row|_block32]``, as the output files are named."""
        return (self.unit.name + ("_exact" if self.acc == "exact" else "") + ("" if self.where == "all" else "_" + self.where)
                + ("" if self.scale == "tensor" else "_" + self.scale))

    @property
    def pe(self) -> PEConfig:
        """The processing element that runs these products (for the energy estimate)."""
        return PEConfig(self.unit.mul, self.fmt, self.acc, MAX_DEPTH, **self.options)

    def exact_allowed(self) -> bool:
        """Whether Kulisch accumulation of this unit's products fits a core (SPEC §4: <= 128 bits)."""
        try:
            check_exact_accumulator(core_unit(self.unit.mul, self.fmt, **self.options), MAX_DEPTH)
        except ValueError:
            return False
        return True


def scale_exponent(amax: float, fmt) -> int:
    """SPEC §6: the largest integer s with amax * 2**s <= max_finite of ``fmt`` (0 for amax = 0)."""
    f = get_format(fmt)
    amax = float(amax)
    if not math.isfinite(amax) or amax < 0:
        raise ValueError(f"amax must be finite and >= 0, not {amax}")
    if amax == 0.0:
        return 0
    s = math.frexp(f.max_finite)[1] - math.frexp(amax)[1]    # within one of the answer
    while math.ldexp(amax, s) > f.max_finite:
        s -= 1
    while math.ldexp(amax, s + 1) <= f.max_finite:
        s += 1
    return s


def encode_operand(x, fmt, axis=None):
    """(bit patterns, s) of one operand (SPEC §6): fp8 scaled by 2**s and rounded RNE with saturation;
    wider formats unscaled (s = 0), rounded RNE, overflowing to inf as the format does.  ``axis``: one
    scale per slice along it (1: per row, 0: per column), s then an int array broadcastable to x."""
    f = get_format(fmt)
    x = np.asarray(x, dtype=np.float32)
    if f.width > 8:
        return encode(x, f), 0
    magnitude = np.where(np.isfinite(x), np.abs(x), 0.0)
    if axis is None:
        s = scale_exponent(magnitude.max() if magnitude.size else 0.0, f)
    else:
        amax = magnitude.max(axis=axis, keepdims=True, initial=0.0)
        s = np.vectorize(lambda v: scale_exponent(v, f), otypes=[np.int32])(amax)
    return encode(np.ldexp(x.astype(np.float64), s), f, overflow="saturate"), s


class CoreProducts:
    """``product(kind, X, W)`` for :meth:`MiniLM.encode`: the kinds of ``numerics.where`` through the
    core's numerics, the others in float32.  Records, for every kind it runs on the core, the MACs
    of the inference and a seeded sample of PE streams (see :meth:`samples`)."""

    def __init__(self, numerics: Numerics, *, matmul=None, streams_per_kind: int = STREAMS_PER_KIND, seed: int = 0):
        from ..model import matmul as model_matmul
        if isinstance(streams_per_kind, bool) or not isinstance(streams_per_kind, int) or streams_per_kind < 1:
            raise ValueError(f"streams_per_kind must be an integer >= 1, not {streams_per_kind!r}")
        self.numerics = numerics
        self._matmul = matmul or model_matmul
        self._core_kinds = set(WHERE[numerics.where])
        self._weights = {}                       # (id(W), block) -> (W, bits, s): encoded once
        self._rng = np.random.default_rng(seed)
        self._keep = streams_per_kind
        self.macs = dict.fromkeys(PRODUCT_KINDS, 0)
        self.calls = dict.fromkeys(PRODUCT_KINDS, 0)
        self._outputs = dict.fromkeys(PRODUCT_KINDS, 0)
        self._slots = {k: [None] * streams_per_kind for k in PRODUCT_KINDS}

    def __call__(self, kind: str, X, W):
        if kind not in self._core_kinds:
            return X @ W
        if self.numerics.scale == "block32" and self.numerics.fmt.width == 8:
            y = np.zeros((X.shape[0], W.shape[1]), dtype=np.float32)
            for start in range(0, X.shape[1], BLOCK):
                y += self._product(kind, X[:, start:start + BLOCK], W, start)
            return y
        return self._product(kind, X, W, None)

    def _product(self, kind, X, W, start):
        """One core product of X with W (or with W's rows start..start+BLOCK), unscaled to float32."""
        axes = (None, None) if self.numerics.scale == "tensor" else (1, 0)
        a, sa = encode_operand(X, self.numerics.fmt, axes[0])
        if kind in LINEAR_KINDS:
            b, sb = self._weight(W, axes[1], start)
        else:
            b, sb = encode_operand(W if start is None else W[start:start + BLOCK], self.numerics.fmt, axes[1])
        c = self._matmul(a, b, mul=self.numerics.unit.mul, fmt=self.numerics.fmt, acc=self.numerics.acc,
                         **self.numerics.options)
        self._record(kind, a, b)
        return np.ldexp(c.view(np.float32), -(sa + sb)).astype(np.float32)

    def _weight(self, W, axis, start):
        """A weight matrix (or one block of its rows) encoded once per configuration, for every text."""
        key = (id(W), start)
        hit = self._weights.get(key)
        if hit is None or hit[0] is not W:
            block = W if start is None else W[start:start + BLOCK]
            hit = self._weights[key] = (W, *encode_operand(block, self.numerics.fmt, axis))
        return hit[1], hit[2]

    def _record(self, kind, a, b):
        """Count the MACs and update the kind's sample: each of its slots is a reservoir of one output
        element (Vitter's algorithm R with a reservoir of one, per call: the slot takes a uniform
        element of this call with probability this call's outputs / the kind's outputs so far), so
        that every slot holds a uniform draw from all output elements of the run, independently:
        a uniform sample with replacement, however few or unequal the calls."""
        m, k = a.shape
        n = b.shape[1]
        self.macs[kind] += m * k * n
        self.calls[kind] += 1
        self._outputs[kind] += m * n
        take = np.flatnonzero(self._rng.random(self._keep) * self._outputs[kind] < m * n)
        rows, cols = self._rng.integers(m, size=take.size), self._rng.integers(n, size=take.size)
        slots = self._slots[kind]
        for slot, i, j in zip(take, rows, cols):
            slots[slot] = (a[i, :].copy(), b[:, j].copy())

    def samples(self) -> list[ProductSample]:
        """One ProductSample per kind that ran on the core: its MACs in the whole run and the sampled
        streams (``streams_per_kind`` of them, in slot order)."""
        out = []
        for kind in PRODUCT_KINDS:
            if not self.calls[kind]:
                continue
            kept = self._slots[kind]
            out.append(ProductSample(kind, self.macs[kind], np.concatenate([e[0] for e in kept]),
                                     np.concatenate([e[1] for e in kept]), [e[0].size for e in kept]))
        return out
