"""What the unit testbenches share: drive a lane harness (see ``lmul_hw.simulate.harness_text``)
with many operand pairs per clock step, read the products back, compare them with the bit-exact
model ``lmul_hw.model`` and report.

The run is described by environment variables (set by ``lmul_hw.simulate.run``):
``LMUL_HW_UNITS`` (JSON list of ``{"port", "config", "lanes"}``), ``LMUL_HW_VECTORS`` (``.npz`` of
``<port>_a``/``<port>_b``; without it the vectors are generated here from ``LMUL_HW_COUNT`` and
``LMUL_HW_SEED``), ``LMUL_HW_RESULTS`` (the ``.npz`` written back) and ``LMUL_HW_TIES`` (JSON
``{harness input: value}``: tied inputs of a user's module, held for the whole run).

Timing: operand set j of a unit goes on its buses at falling edge j.  A unit of latency N >= 1
must show product j after exactly N rising edges, i.e. at falling edge j + N, which is where it
is read; since the operands change every cycle, a product that appears one edge early (or late)
is a mismatch.  A combinational unit (or a harness without clock, stepped by a timer) is read one
step after its operands were applied.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, Timer

from lmul_hw.config import config_from_json
from lmul_hw.vectors import DEFAULT_RANDOM, describe_pair, expected_bits, unit_vectors

REPORT_CASES = 5
_results: dict = {"sim_seconds": 0.0, "steps": 0}    # shared by both test modules of one run


def _kind(cfg) -> str:
    return "lmul" if type(cfg).__name__ == "LMulConfig" else "fpmul"


class UnitRun:
    """One unit of the harness: its buses, vectors laid out as (steps, lanes) and the reads."""

    def __init__(self, dut, port: str, cfg, lanes: int, a, b):
        self.port, self.cfg, self.lanes = port, cfg, lanes
        self.a_h, self.b_h, self.p_h = (getattr(dut, f"{port}_{x}") for x in "abp")
        self.n = len(a)
        self.steps = -(-self.n // lanes)
        self.a, self.b = np.asarray(a), np.asarray(b)
        w = cfg.fmt.width
        self.a_rows = to_binstr_rows(self.a, lanes, w, self.steps)
        self.b_rows = to_binstr_rows(self.b, lanes, w, self.steps)
        self.lag = max(cfg.latency, 1)       # reads of operand set j happen at step j + lag
        self.reads: list[str] = []

    @property
    def last_step(self) -> int:
        return self.steps + self.lag


def to_binstr_rows(values, lanes: int, width: int, steps: int) -> list[str]:
    """Bus values as binary strings (MSB first; lane j at bits [j*width, j*width+width)), one per step."""
    v = np.zeros(steps * lanes, dtype=np.uint64)
    v[:len(values)] = np.asarray(values, dtype=np.uint64)
    bits = (v.reshape(steps, lanes, 1) >> np.arange(width, dtype=np.uint64)) & np.uint64(1)
    chars = (bits[:, ::-1, ::-1].reshape(steps, lanes * width) + ord("0")).astype(np.uint8)
    return [row.tobytes().decode("ascii") for row in chars]


def from_binstr_rows(rows: list[str], lanes: int, width: int):
    """Inverse of to_binstr_rows for the reads: (values (steps, lanes) uint64, X/Z mask (steps, lanes))."""
    raw = np.frombuffer("".join(rows).encode("ascii"), dtype=np.uint8).reshape(len(rows), lanes, width)
    raw = raw[:, ::-1, ::-1]                                 # lane 0 first, bit 0 first
    unresolved = ~np.isin(raw, np.frombuffer(b"01", dtype=np.uint8)).all(axis=2)
    bits = (raw == ord("1")).astype(np.uint64)
    values = (bits << np.arange(width, dtype=np.uint64)).sum(axis=2, dtype=np.uint64)
    return values, unresolved


def _units_from_env(dut, kind: str) -> list[UnitRun]:
    spec = json.loads(os.environ.get("LMUL_HW_UNITS", "[]"))
    vec_file = os.environ.get("LMUL_HW_VECTORS")
    vectors = np.load(vec_file) if vec_file else None
    count = int(os.environ.get("LMUL_HW_COUNT", DEFAULT_RANDOM))
    seed = int(os.environ.get("LMUL_HW_SEED", "0"))
    runs = []
    for entry in spec:
        cfg = config_from_json(entry["config"])
        if _kind(cfg) != kind:
            continue
        port = entry["port"]
        if vectors is not None:
            a, b = vectors[f"{port}_a"], vectors[f"{port}_b"]
        else:
            v = unit_vectors(cfg, count, seed)
            a, b = v.a, v.b
        runs.append(UnitRun(dut, port, cfg, int(entry["lanes"]), a, b))
    return runs


async def _drive(dut, runs: list[UnitRun], clocked: bool) -> tuple[float, int]:
    """Step all units together: at each step read every product bus, then apply the next operands."""
    clock = None
    for port, value in json.loads(os.environ.get("LMUL_HW_TIES", "{}")).items():
        getattr(dut, port).value = int(value)           # tied inputs of a user's module, held all run
    if clocked:
        dut.rst.value = 0
        clock = Clock(dut.clk, 10, unit="ns")
        clock.start()
        step = FallingEdge(dut.clk)
    else:
        step = Timer(10, unit="ns")
    total = max(r.last_step for r in runs)
    active = [(r, r.lag, r.steps, r.last_step, r.a_h, r.b_h, r.p_h, r.a_rows, r.b_rows, r.reads) for r in runs]
    start = time.perf_counter()
    for c in range(total):
        await step
        for r, lag, steps, last, a_h, b_h, p_h, a_rows, b_rows, reads in active:
            if lag <= c < last:
                reads.append(str(p_h.value))
            if c < steps:
                a_h.value = a_rows[c]
                b_h.value = b_rows[c]
    seconds = time.perf_counter() - start
    if clock is not None:
        clock.stop()
    return seconds, total


def _compare(r: UnitRun, log) -> dict:
    cfg = r.cfg
    got, unresolved = from_binstr_rows(r.reads, r.lanes, cfg.out_fmt.width)
    got, unresolved = got.reshape(-1)[:r.n], unresolved.reshape(-1)[:r.n]
    exp = expected_bits(cfg, r.a, r.b).astype(np.uint64)
    bad = np.flatnonzero((got != exp) | unresolved)
    early, transitions = 0, 0
    if cfg.latency:
        # operand set j's product must not be on p one edge before its time: there (same lane) the
        # product of set j - 1 is expected; count where a one-edge-early design would be caught
        idx = np.arange(r.lanes, r.n)
        changed = exp[idx] != exp[idx - r.lanes]
        transitions = int(changed.sum())
        early = int(((got[idx - r.lanes] == exp[idx]) & changed & ~unresolved[idx - r.lanes]).sum())
    actual = np.where(unresolved[bad], -1, got[bad].astype(np.int64))
    lines = [f"{cfg.name}: {r.n} vectors checked on {r.lanes} lanes in {r.steps} steps "
             f"(latency {cfg.latency}), {len(bad)} mismatches, {int(unresolved.sum())} X/Z reads"]
    if cfg.latency:
        lines[0] += f", {transitions} product changes between back-to-back operands, {early} seen one edge early"
    for i in bad[:REPORT_CASES]:
        lines.append("  " + describe_pair(cfg, int(r.a[i]), int(r.b[i]), int(exp[i]),
                                          None if unresolved[i] else int(got[i]))
                     + f" [step {i // r.lanes}, lane {i % r.lanes}]")
    if len(bad) > REPORT_CASES:
        lines.append(f"  ... and {len(bad) - REPORT_CASES} more")
    report = "\n".join(lines)
    (log.error if len(bad) else log.info)(report)
    return {"checked": r.n, "bad": bad, "actual": actual, "unresolved": int(unresolved.sum()), "early": early,
            "transitions": transitions, "lanes": r.lanes, "report": report}


def _write_results() -> None:
    path = os.environ.get("LMUL_HW_RESULTS")
    if path:
        np.savez(path, **{k: np.asarray(v) for k, v in _results.items()})


async def check_units(dut, kind: str) -> None:
    """The whole check for the units of one kind in this run; fails the cocotb test on any mismatch."""
    log = cocotb.log
    runs = _units_from_env(dut, kind)
    if not runs:
        log.info(f"no {kind} units in this run")
        return
    clocked = os.environ.get("LMUL_HW_CLOCKED", "1" if hasattr(dut, "clk") else "0") == "1"
    if any(r.cfg.latency for r in runs) and not clocked:
        raise AssertionError("a pipelined unit needs a clocked harness")
    seconds, steps = await _drive(dut, runs, clocked)
    log.info(f"{sum(r.n for r in runs)} vectors driven in {steps} steps, {seconds:.3f} s")
    _results["sim_seconds"] += seconds
    _results["steps"] += steps
    failures = []
    for r in runs:
        res = _compare(r, log)
        for key in ("checked", "bad", "actual", "unresolved", "early", "transitions", "lanes"):
            _results[f"{r.port}_{key}"] = res[key]
        if len(res["bad"]) or res["unresolved"] or res["early"]:
            failures.append(res["report"])
        elif r.cfg.latency and r.n > r.lanes and not res["transitions"]:
            failures.append(f"{r.cfg.name}: the vectors never change the product between cycles: "
                            "the latency check has no power")
    _write_results()
    assert not failures, "\n".join(failures)
