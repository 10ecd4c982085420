"""cocotb testbench of the UART command loop (lmul_hw/hw/uart.py) around one unit: bytes in through
cocotbext-uart's UartSource, products out through its UartSink, against the loop's model
(lmul_hw.board.LoopModel, built on the bit-exact model).

Run by tests/test_sim_uart.py, which generates the Verilog and passes, in the environment:
``UART_TOP_CONFIG`` (the unit's configuration as JSON), ``UART_TOP_CLK_NS`` (clock period),
``UART_TOP_DIVISOR`` (cycles per bit), ``UART_TOP_IDLE`` (the idle timeout in cycles),
``UART_TOP_RANDOM`` (random pairs) and ``UART_TOP_RESULTS`` (a JSON file for the checked pairs and
the mismatches, described with operands, expected and got in bits and values)."""

import json
import logging
import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, Timer
from cocotbext.uart import UartSink, UartSource

from lmul_hw.board import LoopModel
from lmul_hw.config import config_from_json
from lmul_hw.vectors import describe_pair, random_pairs, special_pairs

RESULTS = {}


def _setting():
    cfg = config_from_json(os.environ["UART_TOP_CONFIG"])
    clk_ns, divisor = int(os.environ["UART_TOP_CLK_NS"]), int(os.environ["UART_TOP_DIVISOR"])
    return cfg, clk_ns, divisor, int(os.environ["UART_TOP_IDLE"])


async def _start(dut):
    cfg, clk_ns, divisor, idle = _setting()
    baud = 1e9 / (clk_ns * divisor)
    dut.rx.value = 1
    cocotb.start_soon(Clock(dut.clk, clk_ns, unit="ns").start())
    dut.rst.value = 1
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 4)
    source = UartSource(dut.rx, baud=baud, bits=8, stop_bits=1)
    sink = UartSink(dut.tx, baud=baud, bits=8, stop_bits=1)
    for end in (source, sink):
        end.log.setLevel(logging.WARNING)     # not a line per byte
    return cfg, LoopModel(cfg), source, sink, clk_ns * divisor * 10


async def _read(sink, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:                 # (UartSink.read(n) fails when fewer than n bytes are queued)
        await sink.wait()
        data += sink.read_nowait(min(sink.count(), size - len(data)))
    return bytes(data)


def _check(name, model, a, b, got):
    expected = model.products(model.answer(a, b))
    products = model.products(got)
    bad = [describe_pair(model.cfg, int(a[i]), int(b[i]), int(expected[i]), int(products[i]))
           for i in np.nonzero(products != expected)[0]]
    RESULTS[name] = {"checked": len(products), "mismatches": bad}
    with open(os.environ["UART_TOP_RESULTS"], "w") as fh:
        json.dump(RESULTS, fh)
    assert not bad, f"{len(bad)} of {len(products)} products differ: " + "; ".join(bad[:5])


@cocotb.test(timeout_time=2, timeout_unit="sec")
async def test_stream(dut):
    """Every special pair and seeded random pairs, sent back to back as one stream."""
    cfg, model, source, sink, _ = await _start(dut)
    sa, sb = special_pairs(cfg.fmt)
    ra, rb = random_pairs(cfg.fmt, int(os.environ["UART_TOP_RANDOM"]), np.random.default_rng(12))
    a, b = np.concatenate([sa, ra]), np.concatenate([sb, rb])
    await source.write(model.command(a, b))
    got = await _read(sink, len(a) * model.n_out)
    _check("stream", model, a, b, got)


@cocotb.test(timeout_time=1, timeout_unit="sec")
async def test_idle_drops_half_command(dut):
    """A command cut short is forgotten after the idle timeout; the next one is answered right."""
    cfg, model, source, sink, byte_ns = await _start(dut)
    _, clk_ns, _, idle = _setting()
    a, b = special_pairs(cfg.fmt)
    await source.write(model.command(a[3], b[5])[:-1])           # one byte short
    await source.wait()
    await Timer(idle * clk_ns + 2 * byte_ns, unit="ns")
    assert sink.empty(), "the loop answered a half command"
    await source.write(model.command(a[-2:], b[-2:]))
    got = await _read(sink, 2 * model.n_out)
    _check("idle", model, a[-2:], b[-2:], got)
    await Timer(4 * byte_ns, unit="ns")
    assert sink.empty(), "the loop sent more than one product per command"
