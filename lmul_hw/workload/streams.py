"""The operand streams of one inference, as a tensor core's processing elements see them.

A forward pass under a core configuration records, for each kind of matrix product, how many
multiply-accumulates one inference takes and a sample of the PE streams: for a sampled output
element (i, j) of a product ``A @ B`` (already encoded to the configuration's format), the PE
receives ``A[i, k]`` and ``B[k, j]`` for k = 0..K-1 in that order, then the next tile.  The energy
estimate (``lmul_hw.workload.energy``) replays these streams through the gate-level PE."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PRODUCT_KINDS", "ProductSample"]

#: The matrix products of one BERT encoder layer, in the order the forward pass runs them.
PRODUCT_KINDS = ("query", "key", "value", "attention_output", "ffn_in", "ffn_out", "scores", "context")


@dataclass
class ProductSample:
    """One kind of product in one inference: its MAC count and a sample of PE operand streams."""
    kind: str          #: one of PRODUCT_KINDS
    macs: int          #: multiply-accumulates of this kind in the whole inference (all texts, layers, heads)
    a: np.ndarray      #: unsigned bit patterns: row i of A for each sampled output, streams back to back
    b: np.ndarray      #: unsigned bit patterns: column j of B for the same outputs, aligned with ``a``
    lengths: np.ndarray  #: K of each sampled output's stream (K varies: the context product's K is the text's length)

    def __post_init__(self):
        if self.kind not in PRODUCT_KINDS:
            raise ValueError(f"unknown product kind {self.kind!r}: use one of {', '.join(PRODUCT_KINDS)}")
        self.a, self.b, self.lengths = np.asarray(self.a), np.asarray(self.b), np.asarray(self.lengths, dtype=np.int64)
        if self.a.shape != self.b.shape or self.a.ndim != 1 or self.lengths.ndim != 1:
            raise ValueError(f"a and b must be 1-D arrays of one shape, got {self.a.shape} and {self.b.shape}")
        if (self.lengths < 1).any() or int(self.lengths.sum()) != self.a.size:
            raise ValueError(f"the stream lengths must be >= 1 and add up to {self.a.size}")

    def streams(self):
        """The sampled (a, b) streams one by one, each in k order."""
        ends = np.cumsum(self.lengths)
        for start, end in zip(ends - self.lengths, ends):
            yield self.a[start:end], self.b[start:end]
