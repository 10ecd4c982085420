"""The one cache (lmul_hw.cache): its root, corrupted entries found, removed and rebuilt with one
warning line, failed and interrupted runs leaving nothing behind, `lmul-hw cache info|clear`, and
nothing written into the working directory."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from lmul_hw import cache, synthesis
from lmul_hw.cli import main
from lmul_hw.config import LMulConfig
from lmul_hw.errors import ToolError
from lmul_hw.simulate import build, simulator_available

from conftest import default_sigint, require

ADDER = "module add(input [3:0] a, input [3:0] b, output [4:0] p);\n  assign p = a + b;\nendmodule\n"


@pytest.fixture
def fresh(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("LMUL_HW_CACHE", str(root))
    return root


def _entry(root: Path, kind: str, prefix: str) -> Path:
    (entry,) = [p for p in (root / kind).iterdir() if p.is_dir() and p.name.startswith(prefix)]
    return entry


def test_root_is_the_environment_variable_else_the_user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMUL_HW_CACHE", str(tmp_path / "mine"))
    assert cache.root() == (tmp_path / "mine").resolve() and (tmp_path / "mine").is_dir()
    monkeypatch.delenv("LMUL_HW_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.root() == (tmp_path / "xdg" / "lmul-hw").resolve()


def test_an_unusable_cache_variable_is_bad_input(tmp_path, monkeypatch, capsys):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("LMUL_HW_CACHE", str(tmp_path / "file"))
    with pytest.raises(ValueError, match="LMUL_HW_CACHE="):
        cache.root()
    assert main(["synth", "lmul", "--format", "e4m3", "--target", "cmos"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("lmul-hw")]
    assert len(errors) == 1 and errors[0].startswith("lmul-hw: error: LMUL_HW_CACHE=")
    assert "not a directory" in errors[0]
    monkeypatch.setenv("LMUL_HW_CACHE", str(tmp_path / "file" / "below"))
    assert main(["estimate", "--verilog", str(tmp_path / "file"), "--top", "x"]) == 2


def test_an_unusable_default_cache_is_exit_3(tmp_path, monkeypatch, capsys):
    from lmul_hw import tools
    monkeypatch.setenv("YOWASP_CACHE_DIR", str(tools.yowasp_cache_dir()))     # YoWASP's own cache is fine
    (tmp_path / "file").write_text("")
    (tmp_path / "add.v").write_text(ADDER)
    monkeypatch.delenv("LMUL_HW_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file"))
    assert main(["estimate", "--verilog", str(tmp_path / "add.v"), "--top", "add"]) == 3
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("lmul-hw")]
    assert len(errors) == 1 and str(tmp_path / "file") in errors[0] and "LMUL_HW_CACHE" in errors[0]


@pytest.mark.parametrize("damage", [
    lambda p: p.write_text(p.read_text()[:10]),                         # truncated
    lambda p: p.write_text("not json at all"),                          # invalid
    lambda p: p.write_text(json.dumps({"cells": {}})),                  # wrong keys
    lambda p: p.write_text("[1, 2]"),                                   # not an object
], ids=["truncated", "invalid", "wrong-keys", "not-an-object"])
def test_a_corrupted_synthesis_entry_is_named_removed_and_rebuilt(fresh, damage, capsys):
    good = synthesis.synthesize_cmos(ADDER, "add")
    entry = _entry(fresh, "synth", "cmos-add")
    damage(entry / "result.json")
    capsys.readouterr()
    again = synthesis.synthesize_cmos(ADDER, "add")
    err = capsys.readouterr().err
    assert again.transistors == good.transistors and again.depth == good.depth
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and str(entry) in warnings[0] and "rebuilding" in warnings[0]
    assert json.loads((entry / "result.json").read_text())["logic_transistors"] == good.logic_transistors


def test_an_empty_netlist_beside_a_result_is_rebuilt(fresh, capsys):
    synthesis.synthesize_cmos(ADDER, "add")
    entry = _entry(fresh, "synth", "cmos-add")
    (entry / "netlist.json").write_text("")
    assert synthesis.synthesize_cmos(ADDER, "add").netlist.stat().st_size > 0
    assert "netlist.json is missing or empty" in capsys.readouterr().err


def test_an_empty_simulator_binary_beside_its_built_marker_is_rebuilt(fresh, capsys):
    require(simulator_available("icarus"), "Icarus Verilog", "apt-get install -y iverilog")
    cfg = LMulConfig("e4m3")
    first = build([cfg], "icarus", lanes=2)
    assert (first.build_dir / "BUILD_OK").exists()
    (first.build_dir / "sim.vvp").write_text("")
    second = build([cfg], "icarus", lanes=2)
    assert not second.cached and (second.build_dir / "sim.vvp").stat().st_size > 0
    assert "sim.vvp is missing or empty" in capsys.readouterr().err


def test_a_failed_run_leaves_nothing_behind(fresh):
    with pytest.raises(ToolError):
        synthesis.synthesize_cmos("module broken(input a, output p);\n  assign p = a +;\nendmodule\n", "broken")
    leftovers = [p for p in (fresh / "synth").iterdir() if not p.name.endswith(".lock")]
    assert leftovers == []


def test_an_interrupted_slot_leaves_nothing_and_the_next_one_computes(fresh):
    with pytest.raises(KeyboardInterrupt):
        with cache.slot("synth", "t", "x") as s:
            (s.path / "half-written").write_text("...")
            raise KeyboardInterrupt
    assert [p for p in (fresh / "synth").iterdir() if p.is_dir()] == []
    with cache.slot("synth", "t", "x", keys=("v",)) as s:
        assert not s.cached
        s.publish({"v": 1})
    with cache.slot("synth", "t", "x", keys=("v",)) as s:
        assert s.cached and s.payload == {"v": 1}


def test_a_leftover_of_a_killed_run_is_wiped_before_the_next_try(fresh):
    with cache.slot("synth", "t", "y") as s:
        path = s.path
        s.publish({})
    (path / "result.json").unlink()                  # as if killed before the marker was written
    (path / "stale").write_text("old")
    with cache.slot("synth", "t", "y") as s:
        assert not s.cached and not (s.path / "stale").exists()
        s.publish({})


def test_cache_info_and_clear(fresh, capsys):
    synthesis.synthesize_cmos(ADDER, "add")
    assert main(["cache", "info"]) == 0
    out = capsys.readouterr().out
    assert f"cache root: {fresh.resolve()}" in out
    synth_line = next(line for line in out.splitlines() if line.strip().startswith("synth"))
    assert synth_line.split()[1] == "1"
    assert main(["cache", "clear", "--kind", "sim"]) == 0
    assert (fresh / "synth").is_dir()
    assert main(["cache", "clear"]) == 0
    assert "removed 1 synth entries" in capsys.readouterr().out
    assert not (fresh / "synth").exists()
    with pytest.raises(SystemExit) as exit_info:
        main(["cache", "clear", "--kind", "nope"])
    assert exit_info.value.code == 2


def test_nothing_is_written_into_the_working_directory(fresh, tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert main(["synth", "lmul", "--format", "e4m3", "--target", "cmos"]) == 0
    if simulator_available("icarus"):
        assert main(["verify", "lmul", "--format", "e4m3", "--sim", "icarus"]) == 0
    assert os.listdir(work) == []


def test_sigint_during_synthesis_is_exit_130_with_nothing_left_and_a_clean_rerun(fresh, tmp_path):
    """Ctrl-C while yosys runs: exit 130, no half-made entry in the cache, and the rerun succeeds."""
    import signal
    import subprocess
    import sys
    import time
    work = tmp_path / "work"
    work.mkdir()
    design = work / "mul.v"
    design.write_text("module mul(input [23:0] a, input [23:0] b, output [47:0] p);\n  assign p = a * b;\nendmodule\n")
    env = {**os.environ, "LMUL_HW_CACHE": str(fresh)}
    argv = [sys.executable, "-m", "lmul_hw.cli", "estimate", "--verilog", str(design), "--top", "mul"]
    proc = subprocess.Popen(argv, env=env, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_sigint)
    deadline = time.monotonic() + 120
    while not any((fresh / "synth").glob("cmos-mul-*/design.v")):    # yosys is at work
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    assert [p for p in (fresh / "synth").iterdir() if p.is_dir()] == []
    rerun = subprocess.run(argv, env=env, cwd=work, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert sorted(os.listdir(work)) == ["mul.v"]
