"""`lmul-hw verify core`: random tiles through the generated core, exit statuses of SPEC §5."""

import pytest

from lmul_hw.cli import main
from lmul_hw.simulate import simulator_available

from conftest import require

CORE = ["--rows", "2", "--cols", "3", "--mul", "lmul", "--format", "e4m3", "--acc", "exact", "--depth", "8"]


def run(argv):
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def test_verify_core_passes_on_icarus(capsys):
    require(simulator_available("icarus"), "Icarus Verilog", "apt-get install -y iverilog")
    assert run(["verify", "core", *CORE, "--tiles", "5", "--seed", "3", "--sim", "icarus"]) == 0
    out = capsys.readouterr().out
    assert "all match the model; no protocol error" in out and "5 tiles" in out


def test_verify_core_fp32_operands_wide_on_icarus(capsys):
    """The paper's setting (fp32 operands, fp32 accumulation) on wide-range operands."""
    require(simulator_available("icarus"), "Icarus Verilog", "apt-get install -y iverilog")
    fp32 = ["--rows", "1", "--cols", "2", "--mul", "fpmul", "--format", "fp32", "--acc", "fp32", "--depth", "4"]
    assert run(["verify", "core", *fp32, "--tiles", "6", "--dist", "wide", "--sim", "icarus"]) == 0
    out = capsys.readouterr().out
    assert "wide operands" in out and "ok: core_1x2_fp32_fpmul_full_fp32_d4 matches the model on 6 tiles, 12 outputs" in out


@pytest.mark.parametrize("args, words", [
    (["--tiles", "0"], "--tiles must be at least 1"),
    (["--dist", "cauchy"], "invalid choice"),
    (["--sim", "modelsim"], "invalid choice"),
])
def test_verify_core_bad_input_exits_2(capsys, args, words):
    assert run(["verify", "core", *CORE, *args]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1


@pytest.mark.parametrize("fmt", ["bf16", "fp32"])
def test_verify_core_rejects_exact_accumulation_too_wide_with_the_reason(capsys, fmt):
    bad = ["--rows", "2", "--cols", "2", "--mul", "lmul", "--format", fmt, "--acc", "exact", "--depth", "8"]
    assert run(["verify", "core", *bad]) == 2
    err = capsys.readouterr().err
    assert "use fp32 accumulation" in err and err.count("\n") == 1
