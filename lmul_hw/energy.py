"""Energy per operation from switching activity (docs/energy.md).

The generic CMOS gate netlist of a design (``lmul_hw.synthesis.synthesize_cmos``) is simulated on an
operand stream (``lmul_hw.netlist``); every toggle of a cell output between one operation and the
next is weighted by that cell's transistor count, a proxy for the capacitance it switches, and every
flip-flop costs its transistor count once per clock cycle for the clock load:

    E/op = PJ_PER_UNIT * ( sum over toggles of T(cell) + 24 * flip-flops * clock cycles ) / operations

with T = yosys's CMOS transistor counts (NOT 2, NAND/NOR 4, AND/OR/ANDNOT/ORNOT/AOI3/OAI3 6,
AOI4/OAI4 8, NMUX 10, XOR/XNOR/MUX 12, BUF 1) and 24 for a D flip-flop.

The scale PJ_PER_UNIT is calibrated to 45 nm: a 32-bit integer adder (``assign s = a + b;`` through
the same flow) on uniform random operands costs 0.1 pJ per addition, Horowitz's figure (M. Horowitz,
"Computing's energy problem (and what we can do about it)", ISSCC 2014, p. 10-14: 45 nm, 0.9 V:
8-bit add 0.03 pJ, 32-bit add 0.1 pJ, 8-bit multiply 0.2 pJ, 32-bit multiply 3.1 pJ).
``horowitz_check`` compares the model's ratios with the rest of that table.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np

from .netlist import CMOS_TRANSISTORS, Netlist, Simulator, ints_to_bits, pack

__all__ = ["EnergyResult", "PJ_PER_UNIT", "CLOCK_WEIGHT", "HOROWITZ_PJ", "DISTRIBUTIONS",
           "net_weights", "combinational_energy", "clocked_energy", "part_energy", "unit_energy", "pe_energy",
           "pe_energy_parts", "core_energy",
           "verilog_energy", "estimate_file", "integer_verilog", "horowitz_check", "load_netlist"]

#: Weighted toggle units charged per flip-flop per clock cycle (clock load), = its transistors.
CLOCK_WEIGHT = 24
#: Reset cycles (rst high) at the start of a clocked simulation, and settling cycles after them
#: before toggles are counted.
RESET_CYCLES = 2
SETTLE_CYCLES = 6

#: Horowitz, ISSCC 2014 (45 nm): integer operations in pJ.
HOROWITZ_PJ = {"add8": 0.03, "add32": 0.1, "mul8": 0.2, "mul32": 3.1}

#: pJ per weighted toggle unit (one transistor's worth of switched capacitance), chosen so that the
#: synthesized 32-bit adder costs HOROWITZ_PJ["add32"] on uniform random operands; one value for the
#: zero-delay model and one for the unit-delay (glitch-counting) model.  Recompute with
#: ``calibrate()``; tests/test_energy.py checks that they still hold for the pinned yosys.
PJ_PER_UNIT = {False: 1.534e-4, True: 1.066e-4}

DISTRIBUTIONS = ("gaussian", "uniform")

#: Seconds between progress lines of a long step (synthesis, netlist load, simulation).
PROGRESS_PERIOD = 5.0
#: Input vectors of a combinational netlist simulated at once (bit-parallel lanes): bounds the memory
#: of the simulation whatever the number of vectors; the toggle counts do not depend on it.
COMBINATIONAL_CHUNK = 1 << 15
#: Bytes kept per measured vector and input port (the random inputs, drawn up front) by
#: ``verilog_energy``; ports wider than 64 bits hold Python integers instead.
BYTES_PER_INPUT = 16
BYTES_PER_WIDE_INPUT = 96


class _Ticker:
    """Calls ``say(message())`` at most once every ``period`` seconds (for loops with steps)."""

    def __init__(self, say, period: float | None = None):
        self.say, self.period = say, PROGRESS_PERIOD if period is None else period
        self.next = time.monotonic() + self.period

    def __call__(self, message) -> None:
        if self.say is not None and time.monotonic() >= self.next:
            self.say(message())
            self.next = time.monotonic() + self.period


@contextlib.contextmanager
def _heartbeat(say, what: str, period: float | None = None):
    """While the block runs (a step with no progress of its own: yosys, loading a netlist), tell
    ``say`` every ``period`` seconds that ``what`` is still running."""
    if say is None:
        yield
        return
    stop = threading.Event()
    start = time.monotonic()
    period = max(PROGRESS_PERIOD if period is None else period, 0.01)     # never a busy loop

    def beat():
        while not stop.wait(period):
            say(f"{what}: still running ({time.monotonic() - start:.0f} s)")

    thread = threading.Thread(target=beat, name="lmul-hw-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@dataclass(frozen=True)
class EnergyResult:
    """Energy of one design on one operand stream."""
    top: str
    pj_per_op: float            # calibrated energy per operation (per MAC for a core)
    units_per_op: float         # weighted toggle units per operation (incl. clock load)
    toggles_per_op: float       # cell-output toggles per operation (unweighted)
    toggle_rate: float          # toggles per cell output per operation
    clock_units_per_op: float   # of units_per_op: the flip-flops' clock load
    transistors: int
    cells: int
    flip_flops: int
    operations: int             # operations measured
    operation: str              # "operation", "cycle" or "MAC"
    dist: str
    glitches: bool

    @property
    def clock_pj_per_op(self) -> float:
        """The part of ``pj_per_op`` that is the flip-flops' clock load."""
        return self.pj_per_op * self.clock_units_per_op / self.units_per_op if self.units_per_op else 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["energy_pj_per_op"] = d.pop("pj_per_op")
        d["clock_pj_per_op"] = self.clock_pj_per_op
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def net_weights(netlist: Netlist) -> np.ndarray:
    """Weighted units per toggle of each net: the transistor count of the cell driving it (0 for
    primary inputs and constants: their drivers are outside the design)."""
    w = np.zeros(netlist.n_nets, dtype=np.float64)
    for n, kind in enumerate(netlist.net_kind):
        if kind is not None:
            w[n] = CMOS_TRANSISTORS[kind]
    return w


def _result(netlist: Netlist, sim: Simulator, operations: int, *, operation: str, dist: str,
            transistors: int | None = None, cells: int | None = None) -> EnergyResult:
    if operations <= 0:
        raise ValueError("no operations were measured")
    weights = net_weights(netlist)
    driven = weights > 0
    toggles = float(sim.toggles[driven].sum())
    clock = float(CLOCK_WEIGHT * netlist.flip_flops * sim.edges * sim.lanes)   # every lane is a clocked copy
    units = float(sim.toggles @ weights) + clock
    n_cells = int(driven.sum())
    scale = PJ_PER_UNIT[sim.glitches]
    return EnergyResult(
        top=netlist.name, pj_per_op=scale * units / operations, units_per_op=units / operations,
        toggles_per_op=toggles / operations,
        toggle_rate=toggles / operations / n_cells if n_cells else 0.0,
        clock_units_per_op=clock / operations,
        transistors=netlist.transistors if transistors is None else transistors,
        cells=sum(netlist.cell_counts.values()) if cells is None else cells,
        flip_flops=netlist.flip_flops, operations=operations, operation=operation, dist=dist,
        glitches=sim.glitches)


# -- stimulus --------------------------------------------------------------------------------------

def operand_stream(fmt, n: int, rng: np.random.Generator, dist: str) -> np.ndarray:
    """``n`` operand bit patterns: ``gaussian`` = N(0,1) values rounded to the format (no special
    values, as LLM weights and activations after scaling), ``uniform`` = uniform random bit patterns."""
    from .formats import get_format
    from .tiles import random_operands
    f = get_format(fmt)
    if dist == "gaussian":
        return random_operands(f, (n,), rng, dist="gaussian", special_rate=0.0).astype(np.uint64)
    if dist == "uniform":
        return rng.integers(0, 1 << f.width, n, dtype=np.uint64)
    raise ValueError(f"unknown operand distribution {dist!r}: use one of {', '.join(DISTRIBUTIONS)}")


def _random_words(rng: np.random.Generator, width: int, nwords: int) -> np.ndarray:
    return rng.integers(0, 1 << 64, (width, nwords), dtype=np.uint64, endpoint=False) if width else \
        np.zeros((0, nwords), dtype=np.uint64)


# -- simulations -----------------------------------------------------------------------------------

def combinational_energy(netlist: Netlist, inputs: dict, *, glitches: bool = False, dist: str = "custom",
                         transistors: int | None = None, cells: int | None = None,
                         progress=None) -> EnergyResult:
    """Energy per operation of a combinational netlist over consecutive input vectors: ``inputs`` maps
    every input port to N+1 integers; the N transitions from vector i to i+1 are the N operations.
    They are simulated COMBINATIONAL_CHUNK at a time (independent lanes: the counts are the same);
    ``progress(message)``, if given, hears how many are done every PROGRESS_PERIOD seconds."""
    if netlist.flip_flops:
        raise ValueError(f"{netlist.name} has flip-flops; use clocked_energy")
    lengths = {len(v) for v in inputs.values()}
    if len(lengths) != 1 or lengths.pop() < 2:
        raise ValueError("give every input port the same number (>= 2) of vectors")
    n = len(next(iter(inputs.values()))) - 1
    inputs = {p: np.asarray(v) for p, v in inputs.items()}
    tick = _Ticker(progress)
    toggles = None
    chunk = COMBINATIONAL_CHUNK
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        sim = Simulator(netlist, stop - start, glitches=glitches)
        sim.set({p: v[start:stop] for p, v in inputs.items()})
        sim.settle()
        sim.start_counting()
        sim.set({p: v[start + 1:stop + 1] for p, v in inputs.items()})
        sim.settle()
        toggles = sim.toggles if toggles is None else toggles + sim.toggles
        tick(lambda: f"{netlist.name}: simulated {stop:,} of {n:,} input vectors")
    sim.toggles = toggles
    return _result(netlist, sim, n, operation="operation", dist=dist, transistors=transistors, cells=cells)


def clocked_energy(netlist: Netlist, stimulus, cycles: int, *, lanes: int = 64, warmup: int = SETTLE_CYCLES,
                   reset: str | None = "rst", observe=None, ops_per_cycle: float = 1, glitches: bool = False,
                   dist: str = "custom", transistors: int | None = None, cells: int | None = None,
                   progress=None) -> EnergyResult:
    """Energy per cycle of a clocked netlist on ``lanes`` independent streams: ``stimulus(cycle, sim)``
    drives the inputs of one cycle (the clock is implicit), ``observe(cycle, sim)`` (optional) reads
    the settled outputs before the clock edge; ``reset`` (if the design has that port) is high for
    the first RESET_CYCLES cycles, low afterwards; toggles are counted over the last ``cycles``
    cycles, after ``warmup`` more.  Operations = cycles x lanes x ``ops_per_cycle`` (e.g. the MACs a
    PE or core completes per cycle; 1: one operation per cycle).  ``progress(message)``, if given,
    hears the cycles done every PROGRESS_PERIOD seconds."""
    sim = _run_clocked(netlist, stimulus, cycles, lanes=lanes, warmup=warmup, reset=reset, observe=observe,
                       glitches=glitches, progress=progress)
    return _result(netlist, sim, round(cycles * lanes * ops_per_cycle), operation="cycle" if ops_per_cycle == 1
                   else "operation", dist=dist, transistors=transistors, cells=cells)


def _run_clocked(netlist: Netlist, stimulus, cycles: int, *, lanes: int, warmup: int, reset: str | None, observe,
                 glitches: bool, progress) -> Simulator:
    """The simulation of ``clocked_energy``; the Simulator holds the toggles of every net."""
    has_reset = reset is not None and reset in netlist.inputs
    total = (RESET_CYCLES if has_reset else 0) + warmup + cycles
    sim = Simulator(netlist, lanes, glitches=glitches)
    tick = _Ticker(progress)
    for t in range(total):
        tick(lambda: f"{netlist.name}: simulated {t:,} of {total:,} cycles ({lanes} lanes)")
        if t == total - cycles:
            sim.start_counting()
        if has_reset:
            sim.set({reset: int(t < RESET_CYCLES)})
        stimulus(t, sim)
        sim.settle()
        if observe is not None:
            observe(t, sim)
        sim.tick()
    return sim


def part_energy(netlist: Netlist, sim: Simulator, operations: int, logic: dict) -> dict[str, float]:
    """pJ per operation of the parts of a clocked netlist, which add up to its whole energy (the
    ``EnergyResult`` of the same simulation): for each ``logic`` part (name -> names of registers, as
    in the design), the gates in the fan-in cone of those registers' D inputs, back to the inputs and
    the other registers (a gate in two cones counts in the first); ``other logic``, every other gate;
    ``registers``, the toggles of every flip-flop output; ``clock``, the flip-flops' clock load.
    ValueError if a register name is not a flip-flop of the netlist."""
    if operations <= 0:
        raise ValueError("no operations were measured")
    weights = net_weights(netlist)
    units = sim.toggles * weights
    ff_nets = np.arange(netlist.ff_q.start, netlist.ff_q.stop)
    owner = np.full(netlist.n_nets, -1)
    for i, (part, registers) in enumerate(logic.items()):
        nets = [n for r in registers for n in netlist.names.get(r, ())]
        flops = np.flatnonzero(np.isin(ff_nets, nets))
        if not flops.size:
            raise ValueError(f"{netlist.name}: no flip-flop is named {' or '.join(registers)} (part {part!r})")
        owner[netlist.fan_in(netlist.ff_d[flops]) & (owner < 0)] = i
    gates = np.zeros(netlist.n_nets, dtype=bool)
    gates[netlist.gate_start:] = True
    parts = {part: float(units[owner == i].sum()) for i, part in enumerate(logic)}
    parts["other logic"] = float(units[gates & (owner < 0)].sum())
    parts["registers"] = float(units[netlist.ff_q].sum())
    parts["clock"] = float(CLOCK_WEIGHT * netlist.flip_flops * sim.edges * sim.lanes)
    scale = PJ_PER_UNIT[sim.glitches] / operations
    return {part: value * scale for part, value in parts.items()}


# -- designs ---------------------------------------------------------------------------------------

@lru_cache(maxsize=8)
def _load(path: str) -> Netlist:
    return Netlist.load(path)


def load_netlist(verilog: str, top: str, progress=None):
    """Synthesize (cached) and load: (CmosResult, Netlist).  ``progress(message)``, if given, hears
    each step (whether the synthesis was cached) and, every PROGRESS_PERIOD seconds, that a long
    netlist load is still running (a long yosys run reports itself: lmul_hw.tools)."""
    from .synthesis import synthesize_cmos
    result = synthesize_cmos(verilog, top, progress=progress)
    if progress is not None:
        progress(f"{top}: loading the gate netlist ({result.cell_count:,} cells)")
    with _heartbeat(progress, f"{top}: netlist load"):
        return result, _load(str(result.netlist))


def _check_vectors(nl: Netlist, ports: dict, vectors: int) -> None:
    """ValueError when the random inputs of ``vectors`` vectors would not fit in memory."""
    from .limits import check_count
    each = sum(BYTES_PER_INPUT if w <= 64 else BYTES_PER_WIDE_INPUT for w in ports.values()) or 1
    check_count("vectors", vectors, each, per=f" for the {len(ports)} input port(s) of {nl.name}")


def verilog_energy(verilog: str, top: str, *, vectors: int = 4096, seed: int = 0, glitches: bool = False,
                   lanes: int = 64, ops_per_cycle: float = 1, progress=None) -> EnergyResult:
    """Any module: every input except ``clk`` and ``rst`` uniform random each cycle/vector.
    Combinational: ``vectors`` transitions between consecutive random vectors.  Clocked: ``rst`` high
    for the first cycles, then ``lanes`` independent random streams for ceil(vectors/lanes) cycles;
    ``ops_per_cycle`` (e.g. MACs per cycle of a PE) divides the energy per cycle.  ``progress(message)``,
    if given, hears each step (synthesis, cached or not; netlist load; simulation) and, every
    PROGRESS_PERIOD seconds, how far a long one is."""
    if ops_per_cycle <= 0:
        raise ValueError("ops_per_cycle must be positive")
    if isinstance(vectors, bool) or not isinstance(vectors, (int, np.integer)) or vectors < 1:
        raise ValueError(f"vectors must be an integer >= 1, not {vectors!r}")
    vectors = int(vectors)
    synth, nl = load_netlist(verilog, top, progress)
    rng = np.random.default_rng(seed)
    ports = {p: w for p, w in nl.data_inputs().items() if p not in ("clk", "rst")}
    _check_vectors(nl, ports, vectors)
    if progress is not None:
        kind = f"{-(-vectors // min(lanes, vectors)):,} cycles on {min(lanes, vectors)} lanes" if nl.flip_flops \
            else f"{vectors:,} input vectors"
        progress(f"{top}: simulating the gate netlist ({nl.n_nets:,} nets): {kind}")
    if not nl.flip_flops:
        inputs = {p: (_random_ints(rng, w, vectors + 1)) for p, w in ports.items()}
        if not inputs:
            raise ValueError(f"{top} has no data inputs to drive")
        if "rst" in nl.inputs:
            inputs["rst"] = np.zeros(vectors + 1, dtype=np.uint64)
        if "clk" in nl.inputs:
            inputs["clk"] = np.zeros(vectors + 1, dtype=np.uint64)
        res = combinational_energy(nl, inputs, glitches=glitches, dist="uniform",
                                   transistors=synth.transistors, cells=synth.cell_count, progress=progress)
        return res if ops_per_cycle == 1 else _per(res, round(res.operations * ops_per_cycle), "operation")
    lanes = min(lanes, vectors)
    cycles = -(-vectors // lanes)

    def stimulus(t, sim):
        for p, w in ports.items():
            sim.set_words(p, _random_words(rng, w, sim.nwords))

    return clocked_energy(nl, stimulus, cycles, lanes=lanes, ops_per_cycle=ops_per_cycle, glitches=glitches,
                          dist="uniform", transistors=synth.transistors, cells=synth.cell_count, progress=progress)


def estimate_file(path, top: str, *, vectors: int = 4096, seed: int = 0, glitches: bool = False,
                  progress=None) -> EnergyResult:
    """``verilog_energy`` of a Verilog file (``lmul-hw estimate``); ValueError if the file cannot be
    read, ``top`` is not a Verilog identifier or the file defines no module ``top``."""
    import re
    from pathlib import Path

    from .config import check_name
    check_name(top, "top module name", dollar=True)
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    modules = list(dict.fromkeys(re.findall(r"^\s*module\s+\\?([A-Za-z_$][\w$]*)", text, flags=re.M)))
    if top not in modules:
        listed = ", ".join(modules[:20]) + (f" and {len(modules) - 20} more" if len(modules) > 20 else "")
        raise ValueError(f"{path} defines no module {top!r}" + (f" (it defines {listed})" if modules else ""))
    return verilog_energy(text, top, vectors=vectors, seed=seed, glitches=glitches, progress=progress)


def _random_ints(rng: np.random.Generator, width: int, n: int) -> np.ndarray:
    if width <= 64:
        return rng.integers(0, 1 << width, n, dtype=np.uint64) if width < 64 else \
            rng.integers(0, 1 << 64, n, dtype=np.uint64, endpoint=False)
    return np.array([int.from_bytes(rng.bytes(-(-width // 8)), "little") & ((1 << width) - 1)
                     for _ in range(n)], dtype=object)


def unit_energy(cfg, *, dist: str = "gaussian", vectors: int = 16384, seed: int = 0,
                glitches: bool = False) -> EnergyResult:
    """Energy per multiplication of an L-Mul or exact multiplier unit (LMulConfig / FPMulConfig):
    ``vectors`` consecutive operand pairs (a, b independent, drawn from ``dist``).  A pipelined unit
    (latency >= 1) takes one pair per cycle; its clock load and registers are included."""
    from .verilog import verilog_text
    if dist not in DISTRIBUTIONS:
        raise ValueError(f"unknown operand distribution {dist!r}: use one of {', '.join(DISTRIBUTIONS)}")
    if vectors < 1:
        raise ValueError("vectors must be >= 1")
    synth, nl = load_netlist(verilog_text(cfg), cfg.name)
    rng = np.random.default_rng(seed)
    if not cfg.latency:
        a = operand_stream(cfg.fmt, vectors + 1, rng, dist)
        b = operand_stream(cfg.fmt, vectors + 1, rng, dist)
        return combinational_energy(nl, {"a": a, "b": b}, glitches=glitches, dist=dist,
                                    transistors=synth.transistors, cells=synth.cell_count)
    lanes = min(256, vectors)
    cycles = -(-vectors // lanes)
    width = cfg.fmt.width

    def stimulus(t, sim):
        for port in ("a", "b"):
            bits = ints_to_bits(operand_stream(cfg.fmt, lanes, rng, dist), width, lanes)
            sim.set_words(port, pack(bits))

    res = clocked_energy(nl, stimulus, cycles, lanes=lanes, warmup=cfg.latency + 1, glitches=glitches,
                         dist=dist, transistors=synth.transistors, cells=synth.cell_count)
    return _replace(res, operation="operation")


def _replace(res: EnergyResult, **changes) -> EnergyResult:
    return EnergyResult(**{**asdict(res), **changes})


def pe_energy(pe_cfg, *, dist: str = "gaussian", vectors: int = 16384, seed: int = 0,
              tile_depth: int | None = None, glitches: bool = False) -> EnergyResult:
    """Energy per multiply-accumulate of one processing element (a PEConfig, e.g. ``CoreConfig.pe``): a
    new operand pair from ``dist`` and a valid control beat every cycle, tiles of ``tile_depth`` beats (default min(depth, 32)) marked first/last; one MAC per cycle, over
    ``vectors`` MACs on up to 256 independent lanes.  The PE's operand forwarding registers are included."""
    return _pe_run(pe_cfg, dist=dist, vectors=vectors, seed=seed, tile_depth=tile_depth, glitches=glitches)[0]


def pe_energy_parts(pe_cfg, logic: dict, **options) -> tuple[EnergyResult, dict[str, float]]:
    """``pe_energy`` (same ``options``) and, from the same simulation, the ``part_energy`` of its
    ``logic`` parts (e.g. {"multiplier": ("product_q",)}, register names of lmul_hw.hw.pe), pJ per MAC."""
    res, nl, sim = _pe_run(pe_cfg, **options)
    return res, part_energy(nl, sim, res.operations, logic)


def _pe_run(pe_cfg, *, dist: str = "gaussian", vectors: int = 16384, seed: int = 0, tile_depth: int | None = None,
            glitches: bool = False):
    from .verilog import verilog_text
    if dist not in DISTRIBUTIONS:
        raise ValueError(f"unknown operand distribution {dist!r}: use one of {', '.join(DISTRIBUTIONS)}")
    if vectors < 1:
        raise ValueError("vectors must be >= 1")
    depth = min(pe_cfg.depth, 32) if tile_depth is None else tile_depth
    if not 1 <= depth <= pe_cfg.depth:
        raise ValueError(f"tile depth {depth} is outside 1..{pe_cfg.depth}")
    synth, nl = load_netlist(verilog_text(pe_cfg), pe_cfg.name)
    rng = np.random.default_rng(seed)
    lanes = min(256, vectors)
    cycles = -(-vectors // lanes)
    w = pe_cfg.fmt.width
    start = rng.integers(0, depth, lanes)          # lanes start at different points of a tile

    def stimulus(t, sim):
        for port in ("a_in", "b_in"):
            sim.set_words(port, pack(ints_to_bits(operand_stream(pe_cfg.fmt, lanes, rng, dist), w, lanes)))
        k = (start + t) % depth
        ctl = 1 | ((k == 0) << 1) | ((k == depth - 1) << 2)           # valid, first, last
        sim.set({"ctl_in": ctl.astype(np.uint64)})

    sim = _run_clocked(nl, stimulus, cycles, lanes=lanes, warmup=SETTLE_CYCLES + depth, reset="rst", observe=None,
                       glitches=glitches, progress=None)
    res = _result(nl, sim, cycles * lanes, operation="MAC", dist=dist, transistors=synth.transistors,
                  cells=synth.cell_count)
    return res, nl, sim


def core_energy(core_cfg, *, dist: str = "gaussian", cycles: int = 256, lanes: int = 64, seed: int = 0,
                tile_depth: int | None = None, glitches: bool = False) -> EnergyResult:
    """Energy per multiply-accumulate of a tensor core (CoreConfig) streaming random tiles:
    ``i__valid`` always high with a new beat (R operands of A, C of B from ``dist``) whenever the last
    one moved, tiles of ``tile_depth`` beats (default min(depth, 32); K >= R streams without bubbles),
    ``o__ready`` always high.  Counted over ``cycles`` cycles of ``lanes`` independent streams after
    the pipeline has filled; MACs = beats accepted in that window x R x C."""
    from .verilog import verilog_text
    if dist not in DISTRIBUTIONS:
        raise ValueError(f"unknown operand distribution {dist!r}: use one of {', '.join(DISTRIBUTIONS)}")
    rows, cols, w = core_cfg.rows, core_cfg.cols, core_cfg.fmt.width
    depth = min(core_cfg.depth, 32) if tile_depth is None else tile_depth
    if not 1 <= depth <= core_cfg.depth:
        raise ValueError(f"tile depth {depth} is outside 1..{core_cfg.depth}")
    synth, nl = load_netlist(verilog_text(core_cfg), core_cfg.name)
    warmup = core_cfg.latency(depth) + rows + cols + 8
    total_beats = SETTLE_CYCLES + warmup + cycles + 1     # beats a lane can take after reset
    rng = np.random.default_rng(seed)
    A = operand_stream(core_cfg.fmt, total_beats * rows * lanes, rng, dist).reshape(total_beats, rows, lanes)
    B = operand_stream(core_cfg.fmt, total_beats * cols * lanes, rng, dist).reshape(total_beats, cols, lanes)
    ptr = np.zeros(lanes, dtype=np.int64)           # beats accepted so far, per lane
    accepted = [0]                                  # beats accepted while counting
    lane = np.arange(lanes)

    def stimulus(t, sim):
        # each lane offers the next beat of its stream, held until it moves
        idx = np.minimum(ptr, total_beats - 1)
        bits = np.concatenate(
            [ints_to_bits(A[idx, r, lane], w, lanes) for r in range(rows)]
            + [ints_to_bits(B[idx, c, lane], w, lanes) for c in range(cols)]
            + [((idx % depth) == depth - 1)[None, :]])
        sim.set_words("i__payload", pack(bits))
        sim.set({"i__valid": int(t >= RESET_CYCLES), "o__ready": 1})

    def observe(t, sim):
        moved = sim.get_bits("i__ready")[0] & sim.get_bits("i__valid")[0]
        if t >= RESET_CYCLES:
            ptr[:] += moved
            if sim.counting:
                accepted[0] += int(moved.sum())

    res = clocked_energy(nl, stimulus, cycles, lanes=lanes, warmup=SETTLE_CYCLES + warmup, observe=observe,
                         glitches=glitches, dist=dist, transistors=synth.transistors, cells=synth.cell_count)
    macs = accepted[0] * rows * cols
    if macs == 0:
        raise ValueError(f"{core_cfg.name} accepted no beats while its energy was measured")
    return _per(res, macs, "MAC")


def _per(res: EnergyResult, operations: int, operation: str) -> EnergyResult:
    """The same measurement divided among ``operations`` operations instead."""
    scale = res.operations / operations
    return _replace(res, pj_per_op=res.pj_per_op * scale, units_per_op=res.units_per_op * scale,
                    toggles_per_op=res.toggles_per_op * scale,
                    clock_units_per_op=res.clock_units_per_op * scale, operations=operations, operation=operation)


# -- calibration against Horowitz (ISSCC 2014) -----------------------------------------------------

def integer_verilog(op: str, bits: int) -> tuple[str, str]:
    """(Verilog, top) of a plain integer adder (n+n -> n bits) or multiplier (n x n -> 2n bits)."""
    if op == "add":
        top, out, expr = f"int_add{bits}", bits, "a + b"
    elif op == "mul":
        top, out, expr = f"int_mul{bits}", 2 * bits, "a * b"
    else:
        raise ValueError(f"unknown integer operation {op!r}")
    text = (f"module {top}(input [{bits - 1}:0] a, input [{bits - 1}:0] b, output [{out - 1}:0] p);\n"
            f"  assign p = {expr};\nendmodule\n")
    return text, top


def integer_energy(op: str, bits: int, *, vectors: int = 16384, seed: int = 0,
                   glitches: bool = False) -> EnergyResult:
    text, top = integer_verilog(op, bits)
    return verilog_energy(text, top, vectors=vectors, seed=seed, glitches=glitches)


def calibrate(*, glitches: bool = False, vectors: int = 16384, seed: int = 0) -> float:
    """The PJ_PER_UNIT that makes the synthesized 32-bit adder cost Horowitz's 0.1 pJ."""
    res = integer_energy("add", 32, vectors=vectors, seed=seed, glitches=glitches)
    return HOROWITZ_PJ["add32"] / res.units_per_op


def horowitz_check(*, glitches: bool = False, vectors: int = 16384, seed: int = 0) -> dict:
    """Energies (pJ) of the synthesized 8/32-bit adders and multipliers and their ratios beside
    Horowitz's: {"energy": {name: (ours, horowitz)}, "ratios": {name: (ours, horowitz)}}."""
    energy = {}
    for name in HOROWITZ_PJ:
        res = integer_energy(name[:3], int(name[3:]), vectors=vectors, seed=seed, glitches=glitches)
        energy[name] = (res.pj_per_op, HOROWITZ_PJ[name])
    pairs = {"mul8/add8": ("mul8", "add8"), "mul32/add32": ("mul32", "add32"),
             "add32/add8": ("add32", "add8"), "mul32/mul8": ("mul32", "mul8")}
    ratios = {k: (energy[a][0] / energy[b][0], HOROWITZ_PJ[a] / HOROWITZ_PJ[b]) for k, (a, b) in pairs.items()}
    return {"energy": energy, "ratios": ratios}
