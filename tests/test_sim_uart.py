"""The UART command loop of ``lmul-hw fpga build`` (lmul_hw/hw/uart.py) in simulation: its generated
Verilog on Icarus under cocotb with cocotbext-uart (sim/test_uart_top.py), bytes in, products out,
against the loop's model.  The baud rate is 1/16 of the clock, so a byte takes 160 cycles."""

from __future__ import annotations

import json

import pytest
from amaranth.back import verilog
from cocotb_tools.runner import get_results

from conftest import require
from lmul_hw.config import FPMulConfig, LMulConfig
from lmul_hw.hw import unit_for
from lmul_hw.hw.uart import UartLoop
from lmul_hw.simulate import INSTALL, simulator_available
from lmul_hw.simulate.runner import build_design, run_testbench

CLK_NS, DIVISOR, IDLE = 10, 16, 2000

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.mark.parametrize("cfg, random", [
    (LMulConfig("e4m3"), 200),                               # the default design: 1 + 1 bytes in, 1 out
    (FPMulConfig("bf16", latency=2), 100),                   # 2 + 2 bytes in, 2 out, a pipelined unit
], ids=lambda x: getattr(x, "name", str(x)))
def test_uart_loop_answers_like_its_model(cfg, random, tmp_path):
    require(simulator_available("icarus"), "Icarus Verilog", INSTALL["icarus"])
    (tmp_path / "uart_top.v").write_text(verilog.convert(UartLoop(unit_for(cfg), DIVISOR, IDLE), name="uart_top",
                                                         emit_src=False))
    build_design("icarus", [tmp_path / "uart_top.v"], "uart_top", tmp_path / "build", "the UART loop")
    results = tmp_path / "results.json"
    env = {"UART_TOP_CONFIG": cfg.to_json(), "UART_TOP_CLK_NS": str(CLK_NS), "UART_TOP_DIVISOR": str(DIVISOR),
           "UART_TOP_IDLE": str(IDLE), "UART_TOP_RANDOM": str(random), "UART_TOP_RESULTS": str(results)}
    failed = run_testbench("icarus", tmp_path / "build", tmp_path, ["test_uart_top"], "uart_top", env, seed=1)
    outcome = json.loads(results.read_text()) if results.exists() else {}
    log = (tmp_path / "sim.log").read_text()[-3000:]
    assert failed is None, (failed, outcome, log)
    assert get_results(tmp_path / "results.xml") == (2, 0), (outcome, log)
    assert set(outcome) == {"stream", "idle"}
    assert outcome["stream"]["mismatches"] == [] and outcome["stream"]["checked"] > random
    assert outcome["idle"] == {"checked": 2, "mismatches": []}
