"""`lmul-hw generate lmul|fpmul` per SPEC §5: output, naming, and bad input (exit 2, one line)."""

import pytest

from lmul_hw.cli import main
from lmul_hw.config import FPMulConfig, LMulConfig
from lmul_hw.verilog import verilog_text


def test_generate_lmul_writes_the_generator_output(tmp_path, capsys):
    out = tmp_path / "u.v"
    assert main(["generate", "lmul", "--format", "e4m3", "--latency", "2", "-o", str(out)]) == 0
    assert out.read_text() == verilog_text(LMulConfig("e4m3", latency=2))
    assert "module lmul_e4m3_k3_c1_l2(" in out.read_text()
    assert str(out) in capsys.readouterr().out


def test_generate_fpmul_with_name_and_options(tmp_path):
    out = tmp_path / "m.v"
    assert main(["generate", "fpmul", "--format", "bf16", "--subnormals", "ftz", "--overflow", "saturate",
                 "--out-format", "fp32", "--name", "my_mul", "-o", str(out)]) == 0
    text = out.read_text()
    assert "module my_mul(" in text
    assert text == verilog_text(FPMulConfig("bf16", subnormals="ftz", overflow="saturate", out_fmt="fp32",
                                            name="my_mul"))


@pytest.mark.parametrize("args, words", [
    (["lmul", "--format", "e4m3", "--k", "5"], "k = 5"),
    (["lmul", "--format", "e4m3", "--out-format", "e5m2"], "fewer than k"),
    (["lmul", "--format", "e4m3", "--offset", "1", "--offset-exp", "2"], "not allowed with"),
    (["lmul", "--format", "e4m3", "--offset", "9"], "offset = 9"),
    (["lmul", "--format", "e9m9x"], "unknown format"),
    (["fpmul", "--format", "fp64"], "unknown format"),
    (["fpmul", "--format", "e11m52"], "at most 32"),
    (["fpmul", "--format", "e4m3", "--latency", "5"], "latency = 5"),
    (["fpmul", "--format", "e4m3", "--subnormals", "maybe"], "invalid choice"),
    (["lmul", "--format", "e4m3", "--name", "1bad"], "not a Verilog identifier"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, args, words):
    out = tmp_path / "x.v"
    assert run(["generate", *args, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def run(argv):
    """The exit status of the command line, whether it returns or (argparse) exits."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def test_unwritable_output_leaves_no_file(tmp_path, capsys):
    missing = tmp_path / "no_such_dir" / "u.v"
    assert main(["generate", "lmul", "--format", "e4m3", "-o", str(missing)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not missing.parent.exists()
    assert main(["generate", "lmul", "--format", "e4m3", "-o", str(tmp_path)]) == 2
    assert list(tmp_path.iterdir()) == []


def test_generate_core_has_the_stream_ports_of_spec(tmp_path):
    out = tmp_path / "core.v"
    assert main(["generate", "core", "--rows", "2", "--cols", "3", "--mul", "lmul", "--format", "e4m3",
                 "--acc", "exact", "--depth", "16", "-o", str(out)]) == 0
    text = out.read_text()
    assert "module core_2x3_e4m3_lmul_k3_c1_exact_d16(" in text
    for port in ("input clk;", "input rst;", "input i__valid;", "output i__ready;", "input [40:0] i__payload;",
                 "output o__valid;", "input o__ready;", "output [96:0] o__payload;"):
        assert port in text, port


@pytest.mark.parametrize("args, words", [
    (["--rows", "0", "--cols", "2", "--mul", "lmul", "--format", "e4m3", "--acc", "exact", "--depth", "4"], "rows = 0"),
    (["--rows", "2", "--cols", "33", "--mul", "lmul", "--format", "e4m3", "--acc", "exact", "--depth", "4"], "cols = 33"),
    (["--rows", "2", "--cols", "2", "--mul", "lmul", "--format", "bf16", "--acc", "exact", "--depth", "4"],
     "use fp32 accumulation"),
    (["--rows", "2", "--cols", "2", "--mul", "lmul", "--format", "e4m3", "--acc", "exact", "--depth", "70000"],
     "depth = 70000"),
    (["--rows", "2", "--cols", "2", "--mul", "fpmul", "--format", "e4m3", "--acc", "exact", "--depth", "4",
      "--k", "2"], "L-Mul options"),
    (["--rows", "2", "--cols", "2", "--mul", "lmul", "--format", "e3m4", "--acc", "fp32", "--depth", "4"],
     "core format"),
    (["--rows", "2", "--cols", "2", "--mul", "fpmul", "--format", "fp32", "--acc", "exact", "--depth", "4"],
     "use fp32 accumulation"),
    (["--rows", "2", "--cols", "2", "--mul", "lmul", "--format", "e4m3", "--acc", "exact", "--depth", "4",
      "--subnormals", "ftz"], "fpmul option"),
])
def test_bad_core_input_exits_2_with_the_reason(tmp_path, capsys, args, words):
    out = tmp_path / "c.v"
    assert run(["generate", "core", *args, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1
    assert not out.exists()
