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
    a: np.ndarray      #: (S, K) unsigned bit patterns: row i of A for each of the S sampled outputs
    b: np.ndarray      #: (S, K) unsigned bit patterns: column j of B for the same outputs

    def __post_init__(self):
        if self.kind not in PRODUCT_KINDS:
            raise ValueError(f"unknown product kind {self.kind!r}: use one of {', '.join(PRODUCT_KINDS)}")
        if self.a.shape != self.b.shape or self.a.ndim != 2:
            raise ValueError(f"a and b must be (S, K) arrays of one shape, got {self.a.shape} and {self.b.shape}")
