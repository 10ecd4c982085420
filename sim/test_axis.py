"""cocotb testbench of the tensor core behind AXI4-Stream ports (``lmul_hw/hw/axis.py``,
docs/axis.md): tiles go in as packets through cocotbext-axi's ``AxiStreamSource`` with random
idle cycles, results come out as packets into its ``AxiStreamSink`` under random back-pressure,
both from pause generators; every row is compared with the bit-exact model, tile for tile.

It takes the same run file and writes the same results file as ``sim/test_core.py`` (see there:
``LMUL_HW_CORE_RUN``, ``LMUL_HW_CORE_RESULTS``), so that ``lmul_hw.simulate.core.run_core``
checks and reports both alike.  The run's ``beats`` are SPEC §5 payloads: here each becomes
``s_axis_tdata`` (a, b, zero padding) and ``s_axis_tlast`` (``last``), and each output row
``m_axis_tdata`` | ``m_axis_tlast`` << 32 C is recorded as the stream core's ``o__payload``.

A monitor samples the ports at every falling clock edge, where the source, the sink and the core
have settled (they all change right after a rising edge): a beat moves in cycle t when tvalid and
tready are both high there.  It checks that ``s_axis_tready`` and ``m_axis_tvalid`` are never X/Z,
that ``m_axis_tvalid`` stays high until its row moves with ``m_axis_tdata``/``m_axis_tlast``
holding still, that ``s_axis_tready`` and ``m_axis_tvalid`` are low while ``aresetn`` is low (read
after the reset takes effect in its first cycle) and ``m_axis_tvalid`` in the cycle after, and that
every packet the sink received has R beats (one tile's rows, ``tlast`` on the last).

The reset: after ``reset_before`` input beats, ``aresetn`` goes low for ``RESET_CYCLES`` cycles
in the middle of a tile.  The source flushes the packet it was sending (cocotbext-axi drops its
current frame on reset) and sends the queued tiles after it; the sink drops its partial packet.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

from lmul_hw.config import config_from_json
from test_core import Monitor, finish_run

RESET_CYCLES = 2


def _hex(bits: str):
    """A binary string read from the simulator as hex, or None when it has X/Z bits."""
    try:
        return format(int(bits, 2), "x")
    except ValueError:
        return None


def _pauses(rng: random.Random, p: float):
    """A pause generator of cocotbext-axi: paused in each cycle with probability ``p``."""
    return (bool(p) and rng.random() < p for _ in itertools.count())


def _packets(beats: list[int], last_bit: int, reset_before: int | None) -> list[list[int]]:
    """The input beats as packets, one per tile: a packet ends at a beat with ``last``, or where the
    reset cuts its tile (that packet gets one more beat, never sent, so that no beat before the
    cut carries ``tlast``)."""
    packets, cur = [], []
    for i, beat in enumerate(beats):
        if i == reset_before and cur:
            packets.append(cur + [0])
            cur = []
        cur.append(beat)
        if beat & last_bit:
            packets.append(cur)
            cur = []
    return packets


@cocotb.test()
async def test_axis(dut):
    """Tiles through the AXI4-Stream core with random idle cycles and back-pressure: values
    bit-exact with the model, packets tile for tile, AXI4-Stream's rules held every cycle."""
    with open(os.environ["LMUL_HW_CORE_RUN"]) as f:
        spec = json.load(f)
    cfg = config_from_json(spec["config"])
    rows_, cols = cfg.rows, cfg.cols
    ab_bits = (rows_ + cols) * cfg.fmt.width
    in_bytes = len(dut.s_axis_tdata) // 8
    out_bits = 32 * cols
    beats = [int(b, 16) for b in spec["beats"]]
    expected = [[int(r, 16) for r in rows] for rows in spec["expected"]]
    reset_before = spec.get("reset_before")
    rng = random.Random(int(spec.get("seed", 0)))
    max_idle, tail = int(spec["max_idle"]), int(spec["tail"])
    mon = Monitor()

    aresetn = dut.aresetn
    s_valid, s_ready = dut.s_axis_tvalid, dut.s_axis_tready
    m_valid, m_ready, m_data, m_last = dut.m_axis_tvalid, dut.m_axis_tready, dut.m_axis_tdata, dut.m_axis_tlast

    Clock(dut.aclk, 10, unit="ns").start()
    fe = FallingEdge(dut.aclk)
    aresetn.value = 0
    source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.aclk, aresetn, reset_active_level=False)
    sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.aclk, aresetn, reset_active_level=False)
    for _ in range(2):
        await fe
    aresetn.value = 1
    source.set_pause_generator(_pauses(rng, float(spec["gaps"])))
    sink.set_pause_generator(_pauses(rng, float(spec["stall"])))
    for packet in _packets(beats, 1 << ab_bits, reset_before):
        data = b"".join((b & ((1 << ab_bits) - 1)).to_bytes(in_bytes, "little") for b in packet)
        source.send_nowait(AxiStreamFrame(data))

    rows: list = []                 # [epoch, cycle, payload string or None]
    in_cycles: list = []
    epoch = 0 if reset_before is not None else 1
    want = len(expected[1])
    got = n = cycle = idle = ready_low = 0
    held = None                     # m_axis_tlast/tdata (string) of a valid row not yet taken
    done_at = reset_cycle = None
    resetting = 0                   # reset cycles still to go
    packets_at_reset = 0
    start = time.perf_counter()
    await fe
    while True:
        r_in, v_in = str(s_ready.value), str(s_valid.value)
        v_out = str(m_valid.value)
        if r_in not in ("0", "1"):
            mon.error(f"cycle {cycle}: s_axis_tready is {r_in}")
        if v_out not in ("0", "1"):
            mon.error(f"cycle {cycle}: m_axis_tvalid is {v_out}")
        moved = False
        if resetting:
            # aresetn low: nothing moves (the core holds its tready and tvalid low)
            for port in (s_ready, m_valid):
                if str(port.value) != "0":
                    mon.error(f"cycle {cycle}: {port._name} is {port.value} while aresetn is low")
            resetting -= 1
            if not resetting:
                aresetn.value = 1
        elif reset_before is not None and reset_cycle is None and n == reset_before:
            aresetn.value = 0
            reset_cycle, epoch, resetting = cycle, 1, RESET_CYCLES
            packets_at_reset = sink.count()
            held = None
            # the rising edge that ends this cycle is the first in reset: nothing may move on it, and
            # AXI4-Stream wants TVALID low from here on (the first reset edge empties the core, so
            # later cycles would not show an ungated m_axis_tvalid)
            await ReadOnly()
            for port in (s_ready, m_valid):
                if str(port.value) != "0":
                    mon.error(f"cycle {cycle}: {port._name} is {port.value} while aresetn is low")
        else:
            if reset_cycle is not None and cycle == reset_cycle + RESET_CYCLES + 1 and v_out != "0":
                mon.error(f"cycle {cycle}: m_axis_tvalid is {v_out} in the cycle after the reset")
            if v_out == "1":
                payload = str(m_last.value) + str(m_data.value)
                if held is not None and payload != held:
                    mon.error(f"cycle {cycle}: m_axis_tdata/tlast changed while m_axis_tvalid waited for tready")
                held = None
                if str(m_ready.value) == "1":
                    rows.append((epoch, cycle, payload))
                    got += epoch
                    moved = True
                else:
                    held = payload
            elif held is not None:
                mon.error(f"cycle {cycle}: m_axis_tvalid fell before its row moved")
                held = None
            if v_in == "1":
                if r_in == "1":
                    in_cycles.append(cycle)
                    n += 1
                    moved = True
                else:
                    ready_low += 1
        cycle += 1
        idle = 0 if moved or resetting else idle + 1
        if done_at is None:
            if n == len(beats) and epoch == 1 and got >= want:
                done_at = cycle
            elif idle > max_idle:
                mon.error(f"cycle {cycle}: the core is stuck: no beat moved for {idle} cycles "
                          f"({n} of {len(beats)} input beats taken, {len(rows)} rows out)")
                break
        elif cycle - done_at >= tail:
            break
        await fe
    seconds = time.perf_counter() - start

    packets = []
    while not sink.empty():
        packets.append(sink.recv_nowait())
    row_bytes = out_bits // 8
    for i, packet in enumerate(packets):
        if len(packet.tdata) != rows_ * row_bytes:
            when = " before the reset" if i < packets_at_reset else ""
            mon.error(f"output packet {i}{when} has {len(packet.tdata) / row_bytes:g} beats, expected {rows_} "
                      "(one per row of a tile; tlast on the last)")
    if len(packets) - packets_at_reset != want // rows_:
        mon.error(f"{len(packets) - packets_at_reset} output packets{' after the reset' if reset_before else ''}, "
                  f"expected {want // rows_} (one per tile)")

    finish_run(rows, expected, reset_before is not None, mon, out_bits + 1,
               {"in_cycles": in_cycles, "ready_low": ready_low, "cycles": cycle, "reset_cycle": reset_cycle,
                "sim_seconds": seconds},
               f"{n} beats in, {len(rows)} rows in {len(packets)} packets out in {cycle} cycles ({seconds:.2f} s)")
