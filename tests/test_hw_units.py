"""Layer 2: the Amaranth units against the model in Amaranth's own simulator (no outside tools).

Exhaustive and long random runs belong to the cocotb layer (tests/test_sim_units.py); here a
few thousand special, edge and random pairs per configuration catch a broken datapath fast."""

import numpy as np
import pytest
from amaranth.back import rtlil
from amaranth.sim import Simulator

from lmul_hw.config import FPMulConfig, LMulConfig
from lmul_hw.formats import decode
from lmul_hw.hw import unit_for
from lmul_hw.hw.unit import balanced_cuts
from lmul_hw.model.fpmul import fpmul_bits
from lmul_hw.model.lmul import lmul_bits

UNITS = [
    LMulConfig("e4m3"), LMulConfig("e4m3", overflow="saturate"), LMulConfig("e4m3", k=1, offset_exp=0),
    LMulConfig("e4m3", k=2, offset=3, out_fmt="e6m3"), LMulConfig("e5m2"), LMulConfig("e5m2", k=1, offset=0),
    LMulConfig("bf16"), LMulConfig("bf16", k=4, overflow="saturate"), LMulConfig("fp16", k=10),
    LMulConfig("fp32"), LMulConfig("fp16", k=5, out_fmt="fp32"),
    FPMulConfig("e4m3"), FPMulConfig("e4m3", subnormals="ftz"), FPMulConfig("e4m3", overflow="saturate"),
    FPMulConfig("e5m2"), FPMulConfig("e5m2", subnormals="ftz", overflow="saturate"),
    FPMulConfig("e4m3", out_fmt="e6m7"), FPMulConfig("bf16"), FPMulConfig("bf16", subnormals="ftz"),
    FPMulConfig("fp16"), FPMulConfig("fp16", subnormals="ftz"), FPMulConfig("fp32"),
    FPMulConfig("fp32", subnormals="ftz"), FPMulConfig("bf16", out_fmt="e4m3"), FPMulConfig("fp16", out_fmt="e5m2"),
]


def _model(cfg):
    return lmul_bits if isinstance(cfg, LMulConfig) else fpmul_bits


def _vectors(cfg, n=1500, seed=1):
    f = cfg.fmt
    rng = np.random.default_rng(seed)
    special = np.array([0, 1, f.man_mask, 1 << f.man_bits, (1 << f.man_bits) | f.man_mask,
                        f.bias << f.man_bits, (f.bias << f.man_bits) | f.man_mask,
                        f.max_finite_code, f.nan_code, f.exp_all_ones << f.man_bits], dtype=np.uint64)
    special = np.concatenate([special, special | np.uint64(f.sign_bit)])
    a = rng.integers(0, 1 << f.width, n, dtype=np.uint64)
    b = rng.integers(0, 1 << f.width, n, dtype=np.uint64)
    # pairs near the unit's interesting edges: exponents summing near the bias and near the top
    e = rng.integers(0, f.exp_all_ones + 1, (2, n // 3), dtype=np.uint64)
    e[1] = np.clip(np.int64(2 * f.bias) - e[0].astype(np.int64) + rng.integers(-2, 3, n // 3), 0, f.exp_all_ones)
    a[: n // 3] = (e[0] << np.uint64(f.man_bits)) | (a[: n // 3] & np.uint64(f.man_mask | f.sign_bit))
    b[: n // 3] = (e[1] << np.uint64(f.man_bits)) | (b[: n // 3] & np.uint64(f.man_mask | f.sign_bit))
    return np.concatenate([np.repeat(special, len(special)), a]), np.concatenate([np.tile(special, len(special)), b])


def _simulate(cfg, a, b):
    dut = unit_for(cfg)
    got = []

    async def bench(ctx):
        for x, y in zip(a.tolist(), b.tolist()):
            ctx.set(dut.a, x)
            ctx.set(dut.b, y)
            got.append(ctx.get(dut.p))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    return np.array(got, dtype=np.uint64)


def _report(cfg, a, b, expected, actual):
    bad = np.nonzero(expected != actual)[0]
    lines = [f"{cfg.name}: {len(bad)} of {len(a)} pairs differ; first ones:"]
    for i in bad[:5]:
        lines.append(
            f"  a={int(a[i]):#x} ({decode(a[i:i+1], cfg.fmt)[0]!r}) b={int(b[i]):#x} ({decode(b[i:i+1], cfg.fmt)[0]!r}): "
            f"expected {int(expected[i]):#x} ({decode(expected[i:i+1], cfg.out_fmt)[0]!r}), "
            f"got {int(actual[i]):#x} ({decode(actual[i:i+1], cfg.out_fmt)[0]!r})")
    return "\n".join(lines)


@pytest.mark.parametrize("cfg", UNITS, ids=lambda c: c.name)
def test_unit_matches_model(cfg):
    a, b = _vectors(cfg)
    expected = _model(cfg)(a, b, cfg).astype(np.uint64)
    actual = _simulate(cfg, a, b)
    assert np.array_equal(expected, actual), _report(cfg, a, b, expected, actual)


@pytest.mark.parametrize("latency", [1, 2, 3, 4])
@pytest.mark.parametrize("fmt", ["e4m3", "e5m2", "bf16"])
@pytest.mark.parametrize("kind", [LMulConfig, FPMulConfig])
def test_latency_is_exact_with_back_to_back_operands(kind, fmt, latency):
    cfg = kind(fmt, latency=latency)
    a, b = _vectors(cfg, n=60, seed=latency)
    a, b = a[-60:], b[-60:]
    expected = _model(cfg)(a, b, cfg).astype(np.uint64)
    dut = unit_for(cfg)
    seen = []

    async def bench(ctx):
        for x, y in zip(a.tolist() + [0] * latency, b.tolist() + [0] * latency):
            ctx.set(dut.a, x)
            ctx.set(dut.b, y)
            await ctx.tick()
            seen.append(ctx.get(dut.p))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    # p after the N-th rising edge following cycle t shows cycle t's product, and not before
    got = np.array(seen[latency - 1: latency - 1 + len(a)], dtype=np.uint64)
    assert np.array_equal(got, expected), _report(cfg, a, b, expected, got)
    early = np.array(seen[latency - 2: latency - 2 + len(a)] if latency >= 2 else [], dtype=np.uint64)
    if latency >= 2:
        assert not np.array_equal(early, expected), "product appears a cycle early"


def _cell_types(cfg):
    text = rtlil.convert(unit_for(cfg), name=cfg.name, emit_src=False)
    return [line.split()[1] for line in text.splitlines() if line.strip().startswith("cell ")]


@pytest.mark.parametrize("cfg", [LMulConfig("e4m3"), LMulConfig("bf16", latency=2), LMulConfig("fp32")],
                         ids=lambda c: c.name)
def test_lmul_has_no_multiplier_and_one_adder(cfg):
    cells = _cell_types(cfg)
    assert "$mul" not in cells, f"L-Mul must not multiply: {sorted(set(cells))}"
    adders = [c for c in cells if c in ("$add", "$sub", "$alu", "$macc")]
    # the operands' fields plus the injected constant: one addition expression (a + b + const)
    assert len(adders) <= 2, f"L-Mul should be one addition, found {adders}"


def test_fpmul_has_one_significand_multiplier():
    assert _cell_types(FPMulConfig("e4m3")).count("$mul") == 1


def test_balanced_cuts_even_out_the_stages():
    plan = [("decode", 1), ("multiply", 6), ("normalise", 10), ("round", 5), ("out", 3)]
    assert balanced_cuts(plan, 0) == ()
    assert balanced_cuts(plan, 1) == ("normalise",)                 # 17 | 8, not 7 | 18
    assert balanced_cuts(plan, 2) == ("multiply", "normalise")      # 7 | 10 | 8
    assert balanced_cuts(plan, 9) == ("decode", "multiply", "normalise", "round")


@pytest.mark.parametrize("cfg, cuts", [
    (LMulConfig("e4m3", latency=1), ()),
    (LMulConfig("bf16", latency=2), ("add",)),
    (LMulConfig("e4m3", latency=4), ("decode", "add", "normalise")),
    (FPMulConfig("bf16", latency=3), ("multiply", "normalise")),
    (FPMulConfig("e4m3", latency=4), ("multiply", "normalise", "align")),
    (FPMulConfig("e4m3", subnormals="ftz", latency=4), ("multiply", "align", "round")),
], ids=lambda c: getattr(c, "name", ""))
def test_latency_registers_inner_stage_boundaries(cfg, cuts):
    """N - 1 registers sit inside the datapath (named after their boundary), one on p; none at the inputs."""
    unit = unit_for(cfg)
    assert unit.cuts() == cuts
    text = rtlil.convert(unit, name=cfg.name, emit_src=False)
    for cut in cuts:
        assert f"_{cut} " in text, f"{cfg.name}: no register at the {cut} boundary"
    assert "p_q0" in text and "p_q1" not in text and "a_q" not in text
