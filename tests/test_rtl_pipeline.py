"""Every pipelined netlist in rtl/ is its combinational twin in rtl/, N cycles later: a bounded sequential
equivalence over all operands and start states (lmul_hw.equivalence.prove_pipeline, yosys sat -seq).
A pipeline one register short, or a product one bit off, is refuted with a counterexample."""

from pathlib import Path

import pytest

from lmul_hw.config import LMulConfig
from lmul_hw.equivalence import prove_pipeline
from lmul_hw.reference import reference_units
from lmul_hw.verilog import verilog_text

RTL = Path(__file__).resolve().parent.parent / "rtl"
PIPELINED = [cfg for cfg in reference_units() if cfg.latency]


def _prove(cfg, comb_name: str, comb: str, piped_name: str, piped: str, latency: int):
    return prove_pipeline(comb, comb_name, piped, piped_name, latency, cfg.fmt.width, cfg.out_fmt.width,
                          timeout=300)


@pytest.mark.parametrize("cfg", PIPELINED, ids=lambda c: c.name)
def test_pipelined_rtl_equals_combinational_rtl_n_cycles_later(cfg):
    comb = cfg.name.removesuffix(f"_l{cfg.latency}")
    result = _prove(cfg, comb, (RTL / f"{comb}.v").read_text(), cfg.name, (RTL / f"{cfg.name}.v").read_text(),
                    cfg.latency)
    assert result.proven and result.equivalent, f"{cfg.name} against {comb}: {result.detail}"


@pytest.mark.parametrize("latency, offset", [(2, None), (2, 2)], ids=["one-register-short", "wrong-offset"])
def test_broken_pipelines_are_refuted(latency, offset):
    comb = LMulConfig("e4m3")
    name = "broken_lmul"
    # claimed latency 2: a latency-1 netlist (one register short), or the right latency with a wrong offset
    built = LMulConfig("e4m3", latency=1 if offset is None else 2, name=name,
                       **({} if offset is None else {"offset": offset}))
    result = _prove(comb, comb.name, verilog_text(comb), name, verilog_text(built), latency)
    assert not result.proven and result.mismatches == 1 and result.equivalent is False
    assert "counterexample" in result.detail and "\\a" in result.detail and "\\ok" in result.detail, result.detail


def test_latency_zero_is_bad_input():
    cfg = LMulConfig("e4m3")
    with pytest.raises(ValueError, match="latency >= 1"):
        prove_pipeline("", cfg.name, "", cfg.name, 0, 8, 8)
