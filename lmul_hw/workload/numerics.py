"""A workload's matrix products through a core's numerics (SPEC §6), and the record of what the core saw.

``Y = X @ W`` under a configuration: scale each operand (fp8: by the largest power of two that keeps
its largest magnitude within the format; bf16, fp16: none), encode it RNE to the format, multiply on
bit patterns with ``model.matmul`` and divide the fp32 result by the scales.  The operand is the
matrix handed to that one product, so the scale is per sentence and weight matrix for the linear
layers and per sentence and head for the attention products."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..config import FPMulConfig, LMulConfig, PEConfig, check_exact_accumulator, core_unit
from ..formats import Format, encode, get_format
from .streams import PRODUCT_KINDS, ProductSample

__all__ = ["ATTENTION_KINDS", "LINEAR_KINDS", "WHERE", "MAX_DEPTH", "Numerics", "scale_exponent",
           "encode_operand", "CoreProducts"]

#: The per-head products of attention (Q·Kᵀ and softmax·V); the rest are the linear layers.
ATTENTION_KINDS = ("scores", "context")
LINEAR_KINDS = tuple(k for k in PRODUCT_KINDS if k not in ATTENTION_KINDS)
WHERE = {"all": PRODUCT_KINDS, "attention": ATTENTION_KINDS, "linear": LINEAR_KINDS}
#: The deepest product of MiniLM: the second feed-forward layer (K = 1536; attention's K is <= 256 tokens).
MAX_DEPTH = 1536


@dataclass(frozen=True)
class Numerics:
    """One workload configuration: a unit in ``generate``'s terms (its default module name names the
    output), the core's accumulation and which products go through the core."""
    unit: LMulConfig | FPMulConfig
    acc: str = "fp32"
    where: str = "all"

    def __post_init__(self):
        if self.acc not in ("fp32", "exact"):
            raise ValueError(f"acc must be fp32 or exact, not {self.acc!r}")
        if self.where not in WHERE:
            raise ValueError(f"where must be one of {', '.join(WHERE)}, not {self.where!r}")
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
        """``<unit name>[_exact][_attention|_linear]``, as the output files are named."""
        return self.unit.name + ("_exact" if self.acc == "exact" else "") + ("" if self.where == "all" else "_" + self.where)

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


def encode_operand(x, fmt) -> tuple[np.ndarray, int]:
    """(bit patterns, s) of one operand (SPEC §6): fp8 scaled by 2**s and rounded RNE with saturation;
    wider formats unscaled (s = 0), rounded RNE, overflowing to inf as the format does."""
    f = get_format(fmt)
    x = np.asarray(x, dtype=np.float32)
    if f.width > 8:
        return encode(x, f), 0
    finite = np.abs(x[np.isfinite(x)])
    s = scale_exponent(finite.max() if finite.size else 0.0, f)
    return encode(np.ldexp(x.astype(np.float64), s), f, overflow="saturate"), s


class CoreProducts:
    """``product(kind, X, W)`` for :meth:`MiniLM.encode`: the kinds of ``numerics.where`` through the
    core's numerics, the others in float32.  Records, for every kind it runs on the core, the MACs
    of the inference and a seeded sample of PE streams (see :meth:`samples`)."""

    def __init__(self, numerics: Numerics, *, matmul=None, streams_per_kind: int = 512, seed: int = 0):
        from ..model import matmul as model_matmul
        if isinstance(streams_per_kind, bool) or not isinstance(streams_per_kind, int) or streams_per_kind < 1:
            raise ValueError(f"streams_per_kind must be an integer >= 1, not {streams_per_kind!r}")
        self.numerics = numerics
        self._matmul = matmul or model_matmul
        self._core_kinds = set(WHERE[numerics.where])
        self._weights = {}                       # id(W) -> (W, bits, s): weights are encoded once
        self._rng = np.random.default_rng(seed)
        self._keep = streams_per_kind
        self.macs = dict.fromkeys(PRODUCT_KINDS, 0)
        self.calls = dict.fromkeys(PRODUCT_KINDS, 0)
        self._outputs = dict.fromkeys(PRODUCT_KINDS, 0)
        self._slots = {k: [None] * streams_per_kind for k in PRODUCT_KINDS}

    def __call__(self, kind: str, X, W):
        if kind not in self._core_kinds:
            return X @ W
        a, sa = encode_operand(X, self.numerics.fmt)
        b, sb = self._weight(W) if kind in LINEAR_KINDS else encode_operand(W, self.numerics.fmt)
        c = self._matmul(a, b, mul=self.numerics.unit.mul, fmt=self.numerics.fmt, acc=self.numerics.acc,
                         **self.numerics.options)
        self._record(kind, a, b)
        return np.ldexp(c.view(np.float32), -(sa + sb)).astype(np.float32)

    def _weight(self, W):
        hit = self._weights.get(id(W))
        if hit is None or hit[0] is not W:
            hit = self._weights[id(W)] = (W, *encode_operand(W, self.numerics.fmt))
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
