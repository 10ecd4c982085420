"""rtl/ holds the Verilog of the reference configurations, and the Verilator lint waivers beside each,
exactly as the generator emits them today."""

from pathlib import Path

import pytest

from lmul_hw.reference import reference_configs
from lmul_hw.verilog import lint_waivers, verilog_text

RTL = Path(__file__).resolve().parent.parent / "rtl"
CONFIGS = reference_configs()


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: c.name)
def test_rtl_matches_generator(cfg):
    path = RTL / f"{cfg.name}.v"
    assert path.exists(), f"{path} is missing: run `python -m lmul_hw.reference`"
    assert path.read_text() == verilog_text(cfg), f"{path} is stale: run `python -m lmul_hw.reference`"


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: c.name)
def test_rtl_lint_waivers_match_generator(cfg):
    path = RTL / f"{cfg.name}.vlt"
    assert path.exists(), f"{path} is missing: run `python -m lmul_hw.reference`"
    assert path.read_text() == lint_waivers(cfg), f"{path} is stale: run `python -m lmul_hw.reference`"


def test_rtl_has_no_stray_files():
    expected = {f"{cfg.name}.v" for cfg in CONFIGS}
    assert {p.name for p in RTL.glob("*.v")} == expected
    assert {p.name for p in RTL.glob("*.vlt")} == {f"{cfg.name}.vlt" for cfg in CONFIGS}


def test_verilog_is_reproducible_and_location_free():
    cfg = CONFIGS[0]
    text = verilog_text(cfg)
    assert text == verilog_text(cfg)
    assert str(Path.cwd()) not in text and "src =" not in text and ".py:" not in text
