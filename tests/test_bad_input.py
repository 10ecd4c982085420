"""Bad input found by an adversarial run: each case is exit status 2 (bad input) from the command line,
one line on stderr naming the problem, no traceback and no half-written file; a ValueError from Python."""

from __future__ import annotations

import numpy as np
import pytest

from lmul_hw import energy
from lmul_hw.cli import main
from lmul_hw.config import CoreConfig, FPMulConfig, LMulConfig, check_name
from lmul_hw.files import atomic_write, output_dir
from lmul_hw.limits import max_count
from lmul_hw.model import fpmul, lmul, matmul

HUGE = str(10 ** 12)


def run(argv) -> int:
    """The exit status of the command line, whether it returns or (argparse) exits."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def bad_input(capsys, argv, *words) -> str:
    """Run ``argv``: exit status 2, stderr one line starting with lmul-hw and containing ``words``."""
    assert run(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("lmul-hw") and "error:" in lines[0], err
    assert "Traceback" not in err
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMUL_HW_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


# -- 1: huge counts are refused up front, naming the limit ----------------------------------------

@pytest.mark.parametrize("argv, option", [
    (["accuracy", "--samples", HUGE], "--samples"),
    (["vectors", "lmul", "--format", "bf16", "--count", HUGE, "-o", "OUT"], "--count"),
    (["verify", "lmul", "--format", "bf16", "--vectors", HUGE], "--vectors"),
    (["verify", "fpmul", "--format", "fp16", "--vectors", HUGE], "--vectors"),
    (["estimate", "--verilog", "DESIGN", "--top", "add8", "--vectors", HUGE], "--vectors"),
])
def test_huge_counts_exit_2_naming_the_limit(tmp_path, capsys, argv, option):
    design = tmp_path / "d.v"
    design.write_text("module add8(input [7:0] a, input [7:0] b, output [8:0] y);\n  assign y = a + b;\nendmodule\n")
    argv = [str(tmp_path / "v.txt") if a == "OUT" else str(design) if a == "DESIGN" else a for a in argv]
    line = bad_input(capsys, argv, option, "too large", "the limit here is")
    assert "1,000,000,000,000" in line
    assert not (tmp_path / "v.txt").exists()


def test_huge_counts_from_python_are_value_errors():
    from lmul_hw.accuracy import Settings
    from lmul_hw.vectors import BYTES_PER_VECTOR, unit_vectors
    with pytest.raises(ValueError, match="samples .* too large"):
        Settings(samples=10 ** 12)
    with pytest.raises(ValueError, match="count .* too large"):
        unit_vectors(LMulConfig("bf16"), 10 ** 12)
    assert max_count(BYTES_PER_VECTOR) > 1_000_000          # ordinary counts stay allowed


# -- 2: an -o name too long or a symbolic-link loop ------------------------------------------------

def test_output_name_too_long_and_link_loop_exit_2(tmp_path, capsys):
    long_name = tmp_path / ("x" * 300 + ".v")
    bad_input(capsys, ["generate", "lmul", "--format", "e4m3", "-o", str(long_name)], "cannot write",
              "File name too long")
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    bad_input(capsys, ["vectors", "lmul", "--format", "e4m3", "-o", str(loop)], "cannot write", "symbolic links")
    bad_input(capsys, ["accuracy", "--out", str(loop / "sub")], "cannot create output directory")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loop"]


def test_path_inspection_errors_are_value_errors(tmp_path):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    for call in (lambda: atomic_write(tmp_path / ("y" * 300), "x"), lambda: atomic_write(loop, "x"),
                 lambda: output_dir(tmp_path / ("z" * 300)), lambda: output_dir(loop / "d")):
        with pytest.raises(ValueError, match="cannot"):
            call()
    assert [p.name for p in tmp_path.iterdir()] == ["loop"]


# -- 3 and 4: an unusable LMUL_HW_CACHE (exit 2) or cache home (exit 3), a read-only HOME for the
# YoWASP and wasmtime compile caches (exit 3 naming the tool and the directory): tests/test_cache.py
# (test_an_unusable_cache_variable_is_bad_input, test_an_unusable_default_cache_is_exit_3) and
# tests/test_tools.py (test_a_yowasp_cache_under_a_file_is_exit_3_naming_tool_and_directory,
# test_a_home_without_a_usable_cache_is_exit_3), beside the cache and tool layers they exercise.


# -- 5: module names are Verilog identifiers everywhere --------------------------------------------

PE = ["--mul", "lmul", "--format", "e4m3", "--acc", "exact", "--depth", "4"]


@pytest.mark.parametrize("name", ["#x", "a;", "../evil", "a b", "x" * 300])
def test_synth_pe_name_must_be_an_identifier(cache, capsys, name):
    bad_input(capsys, ["synth", "pe", *PE, "--name", name, "--target", "cmos"], "module name")
    assert not cache.exists()                          # refused before yosys ran


def test_check_name_is_used_by_every_path():
    from lmul_hw.config import PEConfig
    from lmul_hw.synthesis import synthesize_cmos
    for call in (lambda: PEConfig("lmul", "e4m3", "exact", 4, name="a;"),
                 lambda: CoreConfig(rows=1, cols=1, mul="lmul", fmt="e4m3", acc="exact", depth=4, name="#x"),
                 lambda: synthesize_cmos("module m; endmodule", "m; shell"), lambda: check_name("../evil"),
                 lambda: LMulConfig("e4m3", name="a;")):
        with pytest.raises(ValueError, match="not a Verilog identifier"):
            call()
    assert check_name("pe_ok_1") == "pe_ok_1" and check_name("a$b", dollar=True) == "a$b"


def test_estimate_top_must_be_an_identifier(tmp_path, capsys):
    design = tmp_path / "d.v"
    design.write_text("module m(input a, output y);\n  assign y = a;\nendmodule\n")
    bad_input(capsys, ["estimate", "--verilog", str(design), "--top", "m;x"], "top module name",
              "not a Verilog identifier")


# -- 6: the Python model refuses operands it cannot read ---------------------------------------------

@pytest.mark.parametrize("call, name", [
    (lambda: lmul(np.int8(-1), 0x38, fmt="e4m3"), "a"),
    (lambda: lmul(0x38, np.array([0x38, 256]), fmt="e4m3"), "b"),
    (lambda: fpmul(-200, 0x38, fmt="e4m3"), "a"),
    (lambda: fpmul(0x3F80, 1 << 16, fmt="bf16"), "b"),
    (lambda: lmul(np.array([1.0]), 1, fmt="bf16"), "a"),
    (lambda: fpmul(1, np.array([0.5]), fmt="e5m2"), "b"),
    (lambda: matmul(np.array([[-1]]), np.array([[0x38]]), fmt="e4m3", acc="fp32"), "A"),
    (lambda: matmul(np.array([[0x38]]), np.array([[1.5]]), fmt="e4m3"), "B"),
])
def test_model_operands_out_of_range_or_not_integers(call, name):
    with pytest.raises(ValueError) as info:
        call()
    message = str(info.value)
    assert message.startswith(f"{name} ")
    assert "integer" in message or "0..0x" in message


def test_numpy_integers_are_accepted_as_options():
    assert lmul(0x38, 0x38, fmt="e4m3", k=np.int64(2)) == lmul(0x38, 0x38, fmt="e4m3", k=2)
    cfg = LMulConfig("e4m3", k=np.int32(2), offset=np.uint8(1), latency=np.int64(1))
    assert cfg.to_json() == LMulConfig("e4m3", k=2, offset=1, latency=1).to_json()
    assert type(cfg.k) is int and type(cfg.latency) is int
    core = CoreConfig(rows=np.int64(2), cols=np.int8(2), mul="fpmul", fmt="e4m3", acc="fp32", depth=np.int16(8))
    assert core.to_json() == CoreConfig(rows=2, cols=2, mul="fpmul", fmt="e4m3", acc="fp32", depth=8).to_json()
    assert FPMulConfig("bf16", latency=np.uint8(2)).latency == 2
    with pytest.raises(ValueError, match="integer"):
        LMulConfig("e4m3", k=True)
    with pytest.raises(ValueError, match="integer"):
        LMulConfig("e4m3", k=np.bool_(True))


@pytest.mark.parametrize("fmt", ["e4m3", "bf16", "fp32"])
def test_scalar_results_are_numpy_scalars_of_the_unsigned_dtype(fmt):
    from lmul_hw.formats import get_format
    dtype = get_format(fmt).dtype
    results = [f(np.uint32(0x1), 0x1, fmt=fmt) for f in (lmul, fpmul)]
    results += [f(1, np.int64(1), fmt=fmt) for f in (lmul, fpmul)]
    for r in results:
        assert isinstance(r, np.generic) and not isinstance(r, np.ndarray) and r.dtype == dtype
    for f in (lmul, fpmul):
        r = f(np.array([1]), 1, fmt=fmt)
        assert isinstance(r, np.ndarray) and r.shape == (1,) and r.dtype == dtype
    m = matmul(np.array([[0x38]]), np.array([[0x38]]), fmt="e4m3")
    assert isinstance(m, np.ndarray) and m.shape == (1, 1) and m.dtype == np.uint32


# -- 7: latches and $display are unsupported designs, not tool failures ------------------------------

UNSUPPORTED = """module latchy(input en, input [3:0] d, output reg [3:0] q);
  always @* if (en) q = d;
endmodule
module talky(input clk, input [3:0] d, output reg [3:0] q);
  always @(posedge clk) begin q <= d; $display("q=%d", q); end
endmodule
"""


@pytest.mark.parametrize("top, words", [("latchy", ("latches", "$_DLATCH")), ("talky", ("$display", "$print"))])
def test_estimate_of_a_latch_or_display_exits_2_saying_what(tmp_path, cache, capsys, top, words):
    design = tmp_path / "u.v"
    design.write_text(UNSUPPORTED)
    assert run(["estimate", "--verilog", str(design), "--top", top, "--vectors", "64"]) == 2
    err = capsys.readouterr().err
    errors = [ln for ln in err.splitlines() if "error" in ln]
    assert len(errors) == 1 and errors[0].startswith("lmul-hw: error:") and "Traceback" not in err
    assert top in errors[0] and all(w in errors[0] for w in words)
    assert all(ln.startswith(f"{top}: ") for ln in err.splitlines() if ln not in errors)   # progress lines


# -- 8: output directories are checked before the work starts -----------------------------------------

@pytest.mark.parametrize("command", [["compare"], ["flow", "--no-cores"], ["accuracy"]])
def test_out_that_is_a_file_fails_before_the_work(tmp_path, capsys, monkeypatch, command):
    import lmul_hw.compare
    blocker = tmp_path / "file"
    blocker.write_text("in the way")

    def no_work(*args, **kwargs):
        raise AssertionError("the work started before the output directory was checked")

    monkeypatch.setattr(lmul_hw.compare, "measure", no_work)
    monkeypatch.setattr(lmul_hw.compare, "unit_designs", no_work)
    bad_input(capsys, [*command, "--out", str(blocker)], "cannot create output directory", str(blocker))
    assert blocker.read_text() == "in the way"


# -- 9: empty names, negative seeds, de-duplicated module lists ---------------------------------------

@pytest.mark.parametrize("argv", [
    ["generate", "lmul", "--format", "e4m3", "--name", "", "-o", "OUT"],
    ["generate", "fpmul", "--format", "e4m3", "--name", "", "-o", "OUT"],
    ["generate", "core", "--rows", "2", "--cols", "2", "--mul", "lmul", "--format", "e4m3", "--acc", "exact",
     "--depth", "4", "--name", "", "-o", "OUT"],
    ["synth", "lmul", "--format", "e4m3", "--name", "", "--target", "cmos"],
    ["synth", "pe", *PE, "--name", "", "--target", "cmos"],
])
def test_empty_name_exits_2(tmp_path, cache, capsys, argv):
    argv = [str(tmp_path / "x.v") if a == "OUT" else a for a in argv]
    bad_input(capsys, argv, "module name ''", "not a Verilog identifier")
    assert not (tmp_path / "x.v").exists()


def test_empty_name_from_python():
    with pytest.raises(ValueError, match="module name ''"):
        LMulConfig("e4m3", name="")
    with pytest.raises(ValueError, match="module name ''"):
        FPMulConfig("e4m3", name="")


@pytest.mark.parametrize("argv", [
    ["verify", "lmul", "--format", "bf16"],
    ["verify", "core", "--rows", "1", "--cols", "1", "--mul", "lmul", "--format", "e4m3", "--acc", "exact",
     "--depth", "2"],
    ["vectors", "fpmul", "--format", "bf16", "-o", "OUT"],
    ["accuracy"],
    ["estimate", "--verilog", "x.v", "--top", "x"],
    ["synth", "lmul", "--format", "e4m3"],
])
def test_negative_seed_names_the_option(tmp_path, capsys, argv):
    argv = [str(tmp_path / "v.txt") if a == "OUT" else a for a in argv]
    bad_input(capsys, [*argv, "--seed", "-1"], "--seed", "non-negative")


def test_wrong_top_lists_each_module_once(tmp_path, capsys):
    design = tmp_path / "d.v"
    design.write_text("module lane(input a, output y);\n  assign y = a;\nendmodule\n" * 32
                      + "module other(input a, output y);\n  assign y = a;\nendmodule\n")
    line = bad_input(capsys, ["estimate", "--verilog", str(design), "--top", "WRONG"], "no module 'WRONG'")
    assert line.count("lane") == 1 and line.endswith("(it defines lane, other)")


# -- 10: lmul-hw estimate reports its steps --------------------------------------------------------------

ADDER = "module add8(input [7:0] a, input [7:0] b, output [8:0] y);\n  assign y = a + b;\nendmodule\n"
COUNTER = """module acc8(input clk, input rst, input [7:0] d, output reg [7:0] q);
  always @(posedge clk) if (rst) q <= 0; else q <= q + d;
endmodule
"""


def test_estimate_reports_each_step_and_periodic_simulation_lines(tmp_path, cache, capsys, monkeypatch):
    design = tmp_path / "d.v"
    design.write_text(ADDER + COUNTER)
    monkeypatch.setattr(energy, "PROGRESS_PERIOD", 0.0)          # every loop step is "over 5 s"
    monkeypatch.setattr(energy, "COMBINATIONAL_CHUNK", 64)
    for top, sim_words in (("add8", "input vectors"), ("acc8", "cycles")):
        assert run(["estimate", "--verilog", str(design), "--top", top, "--vectors", "512"]) == 0
        err = capsys.readouterr().err
        assert "Traceback" not in err
        lines = err.splitlines()
        assert any("synthesis with yosys" in ln for ln in lines), err
        assert any("loading the gate netlist" in ln for ln in lines), err
        assert any("simulating the gate netlist" in ln for ln in lines), err
        assert any("simulated" in ln and sim_words in ln and " of " in ln for ln in lines), err
    # a second run: the synthesis is cached, and says so
    assert run(["estimate", "--verilog", str(design), "--top", "add8", "--vectors", "512"]) == 0
    assert "generic CMOS synthesis (cached)" in capsys.readouterr().err


def test_verilog_energy_progress_api_and_chunking_keep_the_numbers(cache, monkeypatch):
    heard = []
    whole = energy.verilog_energy(ADDER, "add8", vectors=300, seed=5)
    monkeypatch.setattr(energy, "COMBINATIONAL_CHUNK", 64)
    monkeypatch.setattr(energy, "PROGRESS_PERIOD", 0.0)
    chunked = energy.verilog_energy(ADDER, "add8", vectors=300, seed=5, progress=heard.append)
    assert chunked == whole                                        # chunks change nothing measured
    assert any("cached" in m for m in heard) and any("300 of 300 input vectors" in m for m in heard)


def test_heartbeat_reports_a_long_silent_step():
    import time
    heard = []
    with energy._heartbeat(heard.append, "add8: netlist load", period=0.02):
        time.sleep(0.2)
    assert heard and all(m.startswith("add8: netlist load: still running") for m in heard)
