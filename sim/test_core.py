"""cocotb testbench of the tensor core (SPEC §4, §5): the generated Verilog of
``lmul_hw/hw/core.py`` against the bit-exact model, through its two streams.

Run through ``lmul_hw.simulate_core`` (``verify_core`` / ``lmul-hw verify core`` or
``tests/test_sim_core.py``), which generates the Verilog, builds it and passes the run through
environment variables:

- ``LMUL_HW_CORE_RUN``: a JSON file with ``config`` (the core's configuration JSON), ``beats``
  (hex input payloads in the order they are sent), ``expected`` (two lists of hex output payloads,
  row and ``last`` bit: the rows expected before a reset and after it; without a reset the first is
  empty), ``reset_before`` (the index of the beat before which ``rst`` is asserted, or null),
  ``gaps`` and ``stall`` (the probabilities of a cycle without input beat and of ``o__ready`` low),
  ``seed``, ``max_idle`` (cycles without any handshake after which the core counts as stuck) and
  ``tail`` (cycles run after the last expected row, to catch extra rows);
- ``LMUL_HW_CORE_RESULTS``: the JSON file written back: ``rows`` ([epoch, cycle, hex payload or
  null for X/Z] per row taken from ``o``), ``in_cycles`` (the cycle each input beat moved),
  ``protocol_errors``, ``ready_low`` (cycles ``i__valid`` waited for ``i__ready``), ``cycles``,
  ``reset_cycle`` and ``sim_seconds``;
- ``LMUL_HW_TIES`` (optional): JSON ``{input: value}``, inputs of the wrapper around a user's core
  held at constants for the whole run (``lmul-hw verify core --verilog ... --tie``).

Timing: everything happens at the falling clock edge in the middle of a cycle.  The core's
``i__ready``, ``o__valid`` and ``o__payload`` depend on its state only (SPEC §5), so they are
settled there; the testbench reads them, then drives ``i__valid``/``i__payload``/``o__ready`` for
the rising edge that ends the cycle, and so knows at once which beats move on that edge.
Cycle 0 is the first cycle after the initial reset; a beat "moves in cycle t" when valid and ready
are both high in cycle t (on the edge that ends it).

The protocol monitor checks every cycle: ``i__ready`` and ``o__valid`` are 0 or 1 (never X/Z)
after the initial reset; once ``o__valid`` is high it stays high until its row moves and
``o__payload`` holds still meanwhile; ``o__valid`` is low in the cycle after a reset; and at the
end, the rows and their ``last`` flags (no row lost, duplicated or reordered) and values.
"""

from __future__ import annotations

import json
import os
import random
import time

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge

MAX_ERRORS = 20          # protocol errors recorded in full; the rest are only counted


def _hex(bits: str):
    """A binary string read from the simulator as hex, or None when it has X/Z (or other) bits."""
    try:
        return format(int(bits, 2), "x")
    except ValueError:
        return None


class Monitor:
    def __init__(self):
        self.errors: list[str] = []
        self.count = 0

    def error(self, text: str) -> None:
        self.count += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(text)


def check_rows(rows, expected, reset, mon: Monitor, row_width: int) -> int:
    """Compare the rows taken from ``o`` with the expected ones (payloads as ints); protocol
    errors for lost, extra or misflagged rows; returns the number of rows whose values differ."""
    last_bit = 1 << (row_width - 1)
    bad = 0
    for epoch in (0, 1):
        got = [p for e, _, p in rows if e == epoch]
        exp = expected[epoch]
        when = (" before the reset" if epoch == 0 else " after the reset") if reset else ""
        if epoch == 0 and not reset:
            if got:
                mon.error(f"{len(got)} rows appeared before the first beat")
            continue
        if len(got) > len(exp):
            bound = "at most " if epoch == 0 else ""
            mon.error(f"{len(got) - len(exp)} extra rows{when}: got {len(got)}, expected {bound}{len(exp)} "
                      "(a row was duplicated or invented)")
        elif len(got) < len(exp) and epoch == 1:
            mon.error(f"{len(exp) - len(got)} rows missing{when}: got {len(got)} of {len(exp)}")
        for i, (g, e) in enumerate(zip(got, exp)):
            if g is None:
                bad += 1
                continue
            if (g ^ e) & last_bit:
                mon.error(f"row {i}{when}: last flag {int(bool(g & last_bit))}, expected {int(bool(e & last_bit))}")
            if (g ^ e) & (last_bit - 1):
                bad += 1
    return bad


@cocotb.test()
async def test_core(dut):
    """Tiles through the core with random input gaps and output back-pressure: values bit-exact
    with the model, stream rules held every cycle."""
    spec_file = os.environ["LMUL_HW_CORE_RUN"]
    with open(spec_file) as f:
        spec = json.load(f)
    beats = [int(b, 16) for b in spec["beats"]]
    expected = [[int(r, 16) for r in rows] for rows in spec["expected"]]
    reset_before = spec.get("reset_before")
    gaps, stall = float(spec["gaps"]), float(spec["stall"])
    rng = random.Random(int(spec.get("seed", 0)))
    max_idle = int(spec["max_idle"])
    tail = int(spec["tail"])
    row_width = len(dut.o__payload)
    mon = Monitor()

    i_valid, i_payload, i_ready = dut.i__valid, dut.i__payload, dut.i__ready
    o_valid, o_payload, o_ready = dut.o__valid, dut.o__payload, dut.o__ready
    rst = dut.rst
    for port, value in json.loads(os.environ.get("LMUL_HW_TIES", "{}")).items():
        getattr(dut, port).value = int(value)           # tied inputs of a user's core, held all run

    Clock(dut.clk, 10, unit="ns").start()
    fe = FallingEdge(dut.clk)
    rst.value = 1
    i_valid.value = 0
    i_payload.value = 0
    o_ready.value = 0
    for _ in range(2):
        await fe
    rst.value = 0

    rows: list = []                 # [epoch, cycle, payload int or None]
    in_cycles: list = []
    epoch = 0 if reset_before is not None else 1
    want = len(expected[1])
    got = 0                         # rows taken after the reset (or in a run without one)
    n, nbeats = 0, len(beats)
    driving = False                 # i__valid high with beat n on the bus
    ready = 0                       # o__ready as driven
    held = None                     # o__payload (string) of a valid row not yet taken
    ready_low = 0
    cycle = 0
    idle = 0
    done_at = None
    reset_cycle = None
    after_reset = False
    start = time.perf_counter()
    while True:
        await fe
        r_in = str(i_ready.value)
        v_out = str(o_valid.value)
        if r_in not in ("0", "1"):
            mon.error(f"cycle {cycle}: i__ready is {r_in}")
        if v_out not in ("0", "1"):
            mon.error(f"cycle {cycle}: o__valid is {v_out}")
        if after_reset:
            after_reset = False
            rst.value = 0
            if v_out != "0":
                mon.error(f"cycle {cycle}: o__valid is {v_out} in the cycle after the reset")
        moved = False

        # -- output side ------------------------------------------------------------------------
        if v_out == "1":
            payload = str(o_payload.value)
            if held is not None and payload != held:
                mon.error(f"cycle {cycle}: o__payload changed while o__valid waited for o__ready")
        else:
            payload = None
            if held is not None:
                mon.error(f"cycle {cycle}: o__valid fell before its row moved")
        held = None

        # -- reset in the middle of a tile ------------------------------------------------------
        if reset_before is not None and n == reset_before and reset_cycle is None and not driving:
            rst.value = 1
            i_valid.value = 0
            o_ready.value = ready = 0
            reset_cycle = cycle
            cycle += 1
            epoch = 1
            after_reset = True
            continue

        if stall:
            r = 0 if rng.random() < stall else 1
            if r != ready:
                o_ready.value = ready = r
        elif not ready:
            o_ready.value = ready = 1
        if payload is not None:
            if ready:
                rows.append((epoch, cycle, payload))
                got += epoch
                moved = True
            else:
                held = payload

        # -- input side -------------------------------------------------------------------------
        if not driving and n < nbeats and not (reset_before is not None and n == reset_before and reset_cycle is None):
            if gaps and rng.random() < gaps:
                i_valid.value = 0
            else:
                i_payload.value = beats[n]
                i_valid.value = 1
                driving = True
        elif not driving:
            i_valid.value = 0
        if driving:
            if r_in == "1":
                in_cycles.append(cycle)
                n += 1
                driving = False
                moved = True
            else:
                ready_low += 1

        # -- progress ---------------------------------------------------------------------------
        cycle += 1
        idle = 0 if moved else idle + 1
        if done_at is None:
            if n == nbeats and epoch == 1 and got >= want:
                done_at = cycle
            elif idle > max_idle:
                mon.error(f"cycle {cycle}: the core is stuck: no beat moved for {idle} cycles "
                          f"({n} of {nbeats} input beats taken, {len(rows)} rows out)")
                break
        elif cycle - done_at >= tail:
            break
    seconds = time.perf_counter() - start
    i_valid.value = 0

    finish_run(rows, expected, reset_before is not None, mon, row_width,
               {"in_cycles": in_cycles, "ready_low": ready_low, "cycles": cycle, "reset_cycle": reset_cycle,
                "sim_seconds": seconds},
               f"{n} beats in, {len(rows)} rows out in {cycle} cycles ({seconds:.2f} s)")


def finish_run(rows, expected, reset: bool, mon: Monitor, row_width: int, facts: dict, summary: str) -> None:
    """Check the rows that came out against the model, hand the run's results to the Python side
    (``$LMUL_HW_CORE_RESULTS``), log a summary and fail the test on any mismatch or protocol error."""
    decoded = [(e, c, None if _hex(p) is None else int(p, 2)) for e, c, p in rows]
    bad = check_rows(decoded, expected, reset, mon, row_width)
    result = {"rows": [[e, c, _hex(p)] for e, c, p in rows], "protocol_errors": mon.errors,
              "protocol_error_count": mon.count, **facts}
    out = os.environ.get("LMUL_HW_CORE_RESULTS")
    if out:
        with open(out, "w") as f:
            json.dump(result, f)
    cocotb.log.info(f"{summary}; {bad} rows differ from the model, {mon.count} protocol errors")
    problems = list(mon.errors)
    if bad:
        problems.append(f"{bad} rows differ from the model")
    assert not problems, "\n".join(problems)
