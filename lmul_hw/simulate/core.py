"""Verification of the tensor core under cocotb: the core's generated Verilog is built once
(cached by content, like the units' harnesses of :mod:`lmul_hw.simulate.units`; both use
:mod:`lmul_hw.simulate.runner`), random tiles go through its ``i`` stream with random
gaps while ``o`` sees random back-pressure, and every output row is compared bit for bit with
``lmul_hw.model.matmul`` while a protocol monitor holds SPEC §5's stream rules every cycle.

    from lmul_hw.config import CoreConfig
    from lmul_hw.simulate import verify_core
    res = verify_core(CoreConfig(4, 4, "lmul", "e4m3", "exact", 64), "verilator", tiles=8)
    print(res.report()); assert res.ok

The testbench is the registry's (``sim/test_core.py``; ``sim/test_axis.py`` for a core with AXI4-Stream
ports, :class:`lmul_hw.config.AxisCoreConfig`, driven by cocotbext-axi); this module writes the tiles' beats and expected rows to a
JSON file (``LMUL_HW_CORE_RUN``) and reads back what the testbench saw (``LMUL_HW_CORE_RESULTS``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .. import tools
from ..config import CoreConfig, config_from_json, kind_of
from ..errors import ToolError
from ..formats import decode, get_format
from ..tiles import DISTRIBUTIONS, model_tile, random_operands, tile_beats
from ..verilog import verilog_text
from .results import Mismatch, Result
from .runner import (SIMULATORS, VERILATOR_MAKE, build_design, build_slot, check_simulator, log_tail,
                     run_directory, run_testbench, simulator_version, verilator_root)

__all__ = ["CoreDesign", "CoreMismatch", "CoreVerifyResult", "build_core", "run_core", "verify_core", "make_tiles",
           "default_depths"]

Progress = Callable[[str], None]
#: Python packages a testbench imports besides cocotb (test extras, not dependencies of lmul-hw), with
#: the command that installs them: without them the run would die inside the simulator.
TESTBENCH_NEEDS = {"test_axis": ("cocotbext.axi", "pip install cocotbext-axi==0.1.28")}
FP32 = get_format("fp32")


def _quiet(_msg: str) -> None:
    pass


# -- build ---------------------------------------------------------------------------------------

_VERILOG: dict = {}          # config JSON -> generated Verilog (Amaranth takes seconds for a large core)


def _core_verilog(cfg: CoreConfig) -> str:
    key = cfg.to_json()
    if key not in _VERILOG:
        _VERILOG[key] = verilog_text(cfg)
    return _VERILOG[key]


#: Verilator's run-time library, compiled into every build with the same flags whatever the design:
#: about 20 of the ~25 s a small core's build takes on this kind of machine.  Built once, kept beside
#: the builds and handed to later builds' ``make`` as already made (``make -o``).
RUNTIME_OBJECTS = ("verilated.o", "verilated_vpi.o", "verilated_threads.o")


def _runtime_dir(root: Path) -> Path:
    import cocotb
    try:
        cxx = tools.version("c++")
    except (ToolError, ValueError):
        cxx = "unknown"
    key = json.dumps([simulator_version("verilator"), str(verilator_root()), cocotb.__version__, VERILATOR_MAKE, cxx])
    return root / f"verilator-runtime-{hashlib.sha256(key.encode()).hexdigest()[:20]}"


def _place_runtime(runtime: Path | None, build_dir: Path) -> list[str]:
    """Copy the cached run-time objects into a fresh build directory; the names copied."""
    if runtime is None or not all((runtime / name).is_file() for name in RUNTIME_OBJECTS):
        return []
    for name in RUNTIME_OBJECTS:
        shutil.copy2(runtime / name, build_dir / name)
    return list(RUNTIME_OBJECTS)


def _keep_runtime(runtime: Path, build_dir: Path) -> None:
    if runtime.exists() or not all((build_dir / name).is_file() for name in RUNTIME_OBJECTS):
        return
    tmp = Path(tempfile.mkdtemp(prefix=runtime.name + ".", dir=runtime.parent))
    for name in RUNTIME_OBJECTS:
        shutil.copy2(build_dir / name, tmp / name)
    try:
        tmp.rename(runtime)
    except OSError:                      # another process kept its copy first
        shutil.rmtree(tmp, ignore_errors=True)


@dataclass
class CoreDesign:
    """A built core: its configuration, the simulator, the build directory and what the build cost."""
    cfg: CoreConfig
    simulator: str
    build_dir: Path
    build_seconds: float
    cached: bool
    top: str = ""                # the simulated top module (cfg.name, or the wrapper around a user's core)
    user: object = None          # lmul_hw.simulate.user.UserRTL of a user's core

    def __post_init__(self):
        self.top = self.top or self.cfg.name


def _check_config(cfg) -> None:
    if not isinstance(cfg, CoreConfig):
        raise ValueError(f"not a core configuration: {cfg!r}")


def _testbench(cfg: CoreConfig) -> str:
    """The registry's testbench of ``cfg``; ValueError (with the install command) when a package it
    imports is missing."""
    testbench = kind_of(cfg).testbench
    if testbench in TESTBENCH_NEEDS:
        module, install = TESTBENCH_NEEDS[testbench]
        if importlib.util.find_spec(module.split(".")[0]) is None or importlib.util.find_spec(module) is None:
            raise ValueError(f"the testbench sim/{testbench}.py needs {module}; install it with: {install}")
    return testbench


def build_core(cfg: CoreConfig, simulator: str = "verilator", *, progress: Progress | None = None,
               verilog: str | None = None, user=None) -> CoreDesign:
    """Generate and build (once: cached by the hash of the Verilog, the simulator and its version,
    cocotb's version and the build options) the core's simulation.  ``verilog`` replaces the
    generated text (its top module must be named ``cfg.name``; the tests plant bugs this way);
    ``user`` (a :class:`lmul_hw.simulate.user.UserRTL`) builds a user's core from its own files,
    wrapped in a module with SPEC §5's port names.
    ValueError for a missing simulator, ToolError with the log's tail when the build fails."""
    _check_config(cfg)
    progress = progress or _quiet
    check_simulator(simulator)
    if user is not None:
        from .user import CORE_WRAPPER, core_wrapper_text
        top = CORE_WRAPPER
        sources = [*user.source_files(), (f"{CORE_WRAPPER}.v", core_wrapper_text(cfg, user))]
        what = user.top
    else:
        top = what = cfg.name
        sources = [(f"{cfg.name}.v", verilog if verilog is not None else _core_verilog(cfg))]
    start = time.perf_counter()
    key = [text for _, text in sources] if user is not None else [sources[0][1]]
    with build_slot(simulator, "core", top, key) as (build_dir, cached):
        if cached:
            return CoreDesign(cfg, simulator, build_dir, 0.0, True, top, user)
        files = []
        for name, text in sources:
            files.append(build_dir / "src" / name)
            files[-1].parent.mkdir(parents=True, exist_ok=True)
            files[-1].write_text(text)
        progress(f"building {simulator} simulation of {what} in {build_dir}")
        runtime = _runtime_dir(build_dir.parent) if simulator == "verilator" else None
        with _runtime_lock(runtime):
            _build_with_runtime(top, simulator, files, build_dir, runtime, progress)
    seconds = time.perf_counter() - start
    progress(f"built in {seconds:.1f} s")
    return CoreDesign(cfg, simulator, build_dir, seconds, False, top, user)


@contextlib.contextmanager
def _runtime_lock(runtime: Path | None):
    """While the run-time objects are not cached yet, builds take turns: the first one compiles and
    keeps them, the others wait for it rather than compile them too."""
    if runtime is None or all((runtime / name).is_file() for name in RUNTIME_OBJECTS):
        yield
        return
    with open(str(runtime) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _build_with_runtime(top, simulator, files, build_dir, runtime, progress) -> None:
    """Build, with the cached Verilator run-time objects when there are (and keep them when not)."""
    reused = _place_runtime(runtime, build_dir)
    try:
        build_design(simulator, files, top, build_dir, top, reused)
    except ToolError as exc:
        if not reused or not (build_dir / "Vtop.mk").exists():     # not past Verilator: the design's fault
            raise
        # the C++ build failed: the reused run-time objects may be at fault, so build everything afresh
        progress(f"the build with cached Verilator run-time objects failed ({str(exc).splitlines()[0]}); "
                 "building them too")
        for path in build_dir.iterdir():
            if path.name != "src":
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        reused = []
        build_design(simulator, files, top, build_dir, top)
        shutil.rmtree(runtime, ignore_errors=True)       # they were: replace them below
    if runtime is not None and not reused:
        _keep_runtime(runtime, build_dir)


# -- tiles ---------------------------------------------------------------------------------------

def default_depths(cfg: CoreConfig, tiles: int, rng: np.random.Generator) -> list[int]:
    """Tile depths: K_max first and 1 second (the extremes), then a mix of 1, K_max and uniform 1..K_max."""
    out = []
    for t in range(tiles):
        if t < 2:
            out.append(cfg.depth if t == 0 else 1)
            continue
        u = rng.random()
        out.append(1 if u < 0.2 else cfg.depth if u < 0.4 else int(rng.integers(1, cfg.depth + 1)))
    return out


def make_tiles(cfg: CoreConfig, depths: Sequence[int], rng: np.random.Generator, dist: str = "gaussian",
               special_rate: float = 0.04) -> list:
    """(A, B) operand bit patterns for tiles of the given depths (``lmul_hw.tiles.random_operands``)."""
    return [(random_operands(cfg.fmt, (cfg.rows, k), rng, dist=dist, special_rate=special_rate),
             random_operands(cfg.fmt, (k, cfg.cols), rng, dist=dist, special_rate=special_rate)) for k in depths]


def _row_payloads(cfg: CoreConfig, C: np.ndarray) -> list[int]:
    """The output beats of one tile's result (SPEC §5: c then last)."""
    out = []
    for r in range(cfg.rows):
        word = sum(int(C[r, c]) << (32 * c) for c in range(cfg.cols))
        out.append(word | (int(r == cfg.rows - 1) << (32 * cfg.cols)))
    return out


# -- results -------------------------------------------------------------------------------------

def _value(bits: int, fmt) -> str:
    v = float(decode(np.array([bits], dtype=np.uint64), fmt)[0])
    return repr(v)


@dataclass
class CoreMismatch(Mismatch):
    """One output element that differs from the model, with the operands that produced it."""
    cfg: CoreConfig
    tile: int
    row: int
    col: int
    a_row: list            # row `row` of the tile's A (operand bit patterns, k = 0..K-1)
    b_col: list            # column `col` of the tile's B
    expected: int          # fp32 bit patterns
    actual: int | None     # None: the row had X/Z bits
    cycle: int             # the cycle the row left the core

    def describe(self, max_k: int = 8) -> str:
        f = self.cfg.fmt
        wf = (f.width + 3) // 4
        got = "X/Z" if self.actual is None else f"0x{self.actual:08x} ({_value(self.actual, FP32)})"

        def vec(xs):
            items = [f"0x{x:0{wf}x}={_value(x, f)}" for x in xs[:max_k]]
            if len(xs) > max_k:
                items.append(f"... ({len(xs)} in all)")
            return "[" + ", ".join(items) + "]"

        return (f"tile {self.tile} (K={len(self.a_row)}) row {self.row} column {self.col}: expected "
                f"0x{self.expected:08x} ({_value(self.expected, FP32)}), got {got} [cycle {self.cycle}]\n"
                f"      A row {self.row}: {vec(self.a_row)}\n      B column {self.col}: {vec(self.b_col)}")


@dataclass
class CoreVerifyResult(Result):
    """What one run of the core's testbench found (see :func:`verify_core`)."""
    cfg: CoreConfig
    simulator: str
    depths: list                 # K of every tile sent (the interrupted one included)
    tiles: int = 0               # tiles whose every row came out and was checked
    timed_depths: list = field(default_factory=list)     # K of the tiles that ``cycles`` covers
    elements: int = 0            # output values compared with the model
    mismatch_count: int = 0      # output values that differ (or had X/Z bits)
    mismatches: list = field(default_factory=list)       # the first few, as CoreMismatch
    protocol_errors: list = field(default_factory=list)  # stream-rule violations, lost/extra rows (first few)
    protocol_error_count: int = 0
    rows_expected: int = 0
    rows_received: int = 0
    cycles: int = 0              # first input beat to last output row, both included (after the reset, if any)
    measured_latency: int | None = None     # first input beat of the first checked tile -> its first row
    expected_latency: int | None = None     # lmul_hw.hw.core.latency for that tile's K
    ready_low: int = 0           # cycles i__valid waited for i__ready
    dropped_tiles: int = 0       # tiles in flight at the reset (their rows before it are still checked)
    reset_cycle: int | None = None
    gaps: float = 0.0
    stall: float = 0.0
    dist: str = "gaussian"
    seed: int = 0
    build_seconds: float = 0.0
    cached: bool = False
    sim_seconds: float = 0.0     # the testbench's cycle loop
    wall_seconds: float = 0.0    # the whole simulator run, start-up included
    sim_cycles: int = 0          # cycles the testbench ran

    @property
    def ok(self) -> bool:
        return (self.elements > 0 and self.mismatch_count == 0 and self.protocol_error_count == 0
                and self.rows_received >= self.rows_expected)

    @property
    def macs(self) -> int:
        """Multiply-accumulates of the tiles timed in ``cycles`` (those after the reset, if any)."""
        return sum(self.timed_depths) * self.cfg.rows * self.cfg.cols

    @property
    def utilisation(self) -> float:
        """``macs`` over R*C*``cycles``: 1.0 when every PE does a useful multiply-accumulate in every
        cycle from the first beat to the last row (so the latency counts against it)."""
        return self.macs / (self.cfg.rows * self.cfg.cols * self.cycles) if self.cycles else 0.0

    def report(self, max_cases: int = 5) -> str:
        cfg = self.cfg
        depths = sorted(set(self.depths))
        ks = ", ".join(map(str, depths[:6])) + (", ..." if len(depths) > 6 else "")
        head = (f"{cfg.name} on {self.simulator}: {self.tiles} tiles (K in {{{ks}}}), {self.elements} output values "
                f"checked, {self.rows_received} rows; input gaps {self.gaps:g}, output stalls {self.stall:g}, "
                f"{self.dist} operands, seed {self.seed}")
        lines = [head]
        if self.reset_cycle is not None:
            lines.append(f"  reset in cycle {self.reset_cycle}, in the middle of a tile: {self.dropped_tiles} tile(s) "
                         "in flight dropped, the rows that left before it checked")
        lat = "" if self.measured_latency is None else f"first row after {self.measured_latency} cycles"
        if self.expected_latency is not None and self.measured_latency is not None:
            lat += f" (L = {self.expected_latency} without stalls)"
        if self.cycles:                  # all rows came out
            lines.append(f"  {self.cycles} cycles from first beat to last row, {lat}, utilisation "
                         f"{self.utilisation:.1%}; input beats waited {self.ready_low} cycles for "
                         f"{'s_axis_tready' if cfg.interface == 'axis' else 'i__ready'}")
        timing = f"  simulated in {self.sim_seconds:.2f} s ({self.sim_cycles} cycles; {self.wall_seconds:.1f} s with start-up)"
        timing += ", cached build" if self.cached else f", built in {self.build_seconds:.1f} s"
        lines.append(timing)
        if self.ok:
            lines.append("  all match the model; no protocol error")
            return "\n".join(lines)
        if self.mismatch_count:
            lines.append(f"  {self.mismatch_count} output values differ from the model:")
            lines += ["    " + m.describe() for m in self.mismatches[:max_cases]]
            if self.mismatch_count > max_cases:
                lines.append(f"    ... and {self.mismatch_count - max_cases} more")
        if self.protocol_error_count:
            lines.append(f"  {self.protocol_error_count} protocol errors:")
            lines += ["    " + e for e in self.protocol_errors[:max_cases]]
            if self.protocol_error_count > max_cases:
                lines.append(f"    ... and {self.protocol_error_count - max_cases} more")
        if self.rows_received < self.rows_expected:
            lines.append(f"  only {self.rows_received} of {self.rows_expected} rows came out")
        if not self.elements and not self.mismatch_count:
            lines.append("  no output value was checked")
        return "\n".join(lines)


# -- run -----------------------------------------------------------------------------------------

def run_core(design: CoreDesign, tiles: list, *, seed: int = 0, gaps: float = 0.3, stall: float = 0.3,
             reset_tile: int | None = None, reset_beats: int | None = None, dist: str = "gaussian",
             progress: Progress | None = None, keep: bool = False, ties: dict | None = None) -> CoreVerifyResult:
    """Simulate a built core on ``tiles`` ((A, B) bit-pattern pairs, sent back to back).  With
    ``reset_tile`` = j, only the first ``reset_beats`` beats of tile j are sent, then ``rst`` is
    asserted for one cycle: tiles before j may have left partly (those rows are checked), the
    rest of them and tile j are dropped, and tiles after j must come out whole.  ``ties`` ({input:
    value}) holds the tied inputs of a user's core for this run (default 0)."""
    cfg = design.cfg
    progress = progress or _quiet
    check_simulator(design.simulator)
    testbench = _testbench(cfg)
    for name, p in (("gaps", gaps), ("stall", stall)):
        if not 0.0 <= p < 1.0:
            raise ValueError(f"{name} must be a probability in [0, 1), not {p!r}")
    if not tiles:
        raise ValueError("no tiles to simulate")
    depths = [A.shape[1] for A, _ in tiles]
    beats, starts, expected, where = [], [], [[], []], [[], []]
    reset_before = None
    epoch = 0 if reset_tile is not None else 1
    for t, (A, B) in enumerate(tiles):
        tb = tile_beats(cfg, A, B)
        starts.append(len(beats))
        if t == reset_tile:
            if not 1 <= (reset_beats or 0) < len(tb):
                raise ValueError(f"reset_beats must be 1..{len(tb) - 1} for a tile of {len(tb)} beats")
            beats += tb[:reset_beats]
            reset_before = len(beats)
            epoch = 1
            continue
        beats += tb
        C = model_tile(cfg, A, B)
        expected[epoch] += _row_payloads(cfg, C)
        where[epoch] += [(t, r) for r in range(cfg.rows)]
    first_kept = 0 if reset_tile is None else reset_tile + 1
    if first_kept >= len(tiles):
        raise ValueError("a reset in the middle of the last tile leaves no tile to check after it")
    lat = cfg.latency(depths[first_kept])
    max_idle = 4 * cfg.latency(cfg.depth) + 8 * cfg.rows + 200
    spec = {"config": cfg.to_json(), "beats": [format(b, "x") for b in beats],
            "expected": [[format(r, "x") for r in rows] for rows in expected], "reset_before": reset_before,
            "gaps": gaps, "stall": stall, "seed": seed, "max_idle": max_idle,
            "tail": 2 * cfg.rows + cfg.cols + 16}

    with run_directory(keep, progress) as work:
        run_file, res_file, log = work / "run.json", work / "results.json", work / "sim.log"
        run_file.write_text(json.dumps(spec))
        env = {"LMUL_HW_CORE_RUN": str(run_file), "LMUL_HW_CORE_RESULTS": str(res_file),
               "LMUL_HW_SIMULATOR": design.simulator, "LMUL_HW_TIES": json.dumps(_tie_values(design, ties))}
        progress(f"simulating {len(tiles)} tiles ({len(beats)} beats, {len(expected[0]) + len(expected[1])} rows) "
                 f"of {cfg.name} on {design.simulator}")
        start = time.perf_counter()
        failed = run_testbench(design.simulator, design.build_dir, work, [testbench], design.top, env, seed)
        wall = time.perf_counter() - start
        try:
            data = json.loads(res_file.read_text())
        except (OSError, ValueError) as exc:
            raise ToolError(design.simulator, f"the core simulation ended without results ({failed or exc})",
                            log_tail(log)) from None
        sim_log = log_tail(log)

    res = CoreVerifyResult(cfg, design.simulator, depths, gaps=gaps, stall=stall, dist=dist, seed=seed,
                           build_seconds=design.build_seconds, cached=design.cached, sim_seconds=data["sim_seconds"],
                           wall_seconds=wall, sim_cycles=data["cycles"], ready_low=data["ready_low"],
                           reset_cycle=data["reset_cycle"], protocol_errors=list(data["protocol_errors"]),
                           protocol_error_count=int(data["protocol_error_count"]),
                           rows_expected=len(expected[1]), expected_latency=lat)
    rows = data["rows"]
    res.rows_received = sum(1 for e, _, _ in rows if e == 1)
    for e in (0, 1):
        got = [(c, p) for ep, c, p in rows if ep == e]
        for i, ((cycle, p), exp) in enumerate(zip(got, expected[e])):
            t, r = where[e][i]
            actual = None if p is None else int(p, 16)
            for c in range(cfg.cols):
                want = (exp >> (32 * c)) & 0xFFFFFFFF
                have = None if actual is None else (actual >> (32 * c)) & 0xFFFFFFFF
                res.elements += 1
                if have != want:
                    res.mismatch_count += 1
                    if len(res.mismatches) < 20:
                        A, B = tiles[t]
                        res.mismatches.append(CoreMismatch(cfg, t, r, c, [int(x) for x in A[r]], [int(x) for x in B[:, c]],
                                                           want, have, cycle))
    before = sum(1 for e, _, _ in rows if e == 0)
    if reset_tile is not None:
        res.dropped_tiles = reset_tile + 1 - min(before, len(expected[0])) // cfg.rows
    res.tiles = min(before, len(expected[0])) // cfg.rows + min(res.rows_received, len(expected[1])) // cfg.rows
    res.timed_depths = depths[first_kept:]
    in_cycles = data["in_cycles"]
    kept_rows = [c for e, c, _ in rows if e == 1]
    first_beat = starts[first_kept]
    if kept_rows and first_beat < len(in_cycles):       # cycles only for a complete run
        res.measured_latency = kept_rows[0] - in_cycles[first_beat]
    if res.rows_received >= res.rows_expected and kept_rows and first_beat < len(in_cycles):
        res.cycles = kept_rows[-1] - in_cycles[first_beat] + 1
    if failed is not None and res.ok:
        raise ToolError(design.simulator, f"the core testbench failed although its results are clean ({failed})",
                        sim_log)
    progress(f"simulated {res.sim_cycles} cycles in {res.sim_seconds:.2f} s ({wall:.1f} s with start-up)")
    return res


def verify_core(cfg: CoreConfig, simulator: str = "verilator", *, tiles: int = 8, seed: int = 0,
                depths: Sequence[int] | None = None, gaps: float = 0.3, stall: float = 0.3, dist: str = "gaussian",
                reset_mid_tile: bool = False, progress: Progress | None = None,
                special_rate: float = 0.04, verilog: str | None = None, keep: bool = False,
                verilog_files: Sequence | None = None, top: str | None = None, ports: dict | None = None,
                ties: dict | None = None) -> CoreVerifyResult:
    """Build (or reuse) the core's simulation, send ``tiles`` random tiles (``depths``: their K,
    default a seeded mix of 1, K_max and values between) with input gaps and output stalls of the
    given probabilities, and compare every row with the model.  ``dist`` is ``gaussian``, ``heavy``
    (Student-t) or ``wide`` (exponents over the whole range; ``lmul_hw.tiles.random_operands``);
    zeros, subnormals, NaN and infinities are mixed in at ``special_rate``.
    ``reset_mid_tile`` asserts ``rst`` halfway through the middle tile (``tiles`` >= 2): the tiles
    in flight are dropped and only the ones after it must come out whole.
    With ``verilog_files`` the core under test is the user's module ``top`` from those files (ports
    renamed by ``ports``, our SPEC §5 name -> theirs; other inputs held by ``ties``, name -> value),
    checked by the same testbench against the same model; ``cfg`` says what it should compute.
    ValueError for bad input or a missing simulator, ToolError when a tool fails."""
    _check_config(cfg)
    user = None
    if verilog_files is not None:
        from .user import load_user_rtl
        if not top:
            raise ValueError("a user's Verilog needs its top module name (--top NAME)")
        if verilog is not None:
            raise ValueError("give verilog or verilog_files, not both")
        if cfg.interface != "stream":
            raise ValueError("--verilog checks a core with SPEC §5's stream ports, not --interface axis")
        user = load_user_rtl(cfg, verilog_files, top, simulator, ports=ports, ties=ties)
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", top) and len(top) <= 200:
            cfg = config_from_json(json.dumps({**json.loads(cfg.to_json()), "name": top}))   # reports name it
    elif top or ports or ties:
        raise ValueError("--top, --port and --tie need --verilog FILE")
    if simulator not in SIMULATORS:
        raise ValueError(f"unknown simulator {simulator!r}: use one of {', '.join(SIMULATORS)}")
    if dist not in DISTRIBUTIONS:
        raise ValueError(f"unknown distribution {dist!r}: use one of {', '.join(DISTRIBUTIONS)}")
    rng = np.random.default_rng(seed)
    if depths is None:
        if isinstance(tiles, bool) or not isinstance(tiles, int) or tiles < 1:
            raise ValueError(f"tiles must be a positive integer, not {tiles!r}")
        depths = default_depths(cfg, tiles, rng)
    else:
        depths = [int(k) for k in depths]
        if not depths or any(not 1 <= k <= cfg.depth for k in depths):
            raise ValueError(f"tile depths must be 1..{cfg.depth} (the core's K_max), got {depths}")
    reset_tile = reset_beats = None
    if reset_mid_tile:
        if len(depths) < 2:
            raise ValueError("a reset in the middle of a tile needs at least 2 tiles (one to interrupt, one after)")
        if cfg.depth < 2:
            raise ValueError("a reset in the middle of a tile needs tiles of 2 or more beats (depth >= 2)")
        reset_tile = len(depths) // 2 if len(depths) > 2 else 0
        depths[reset_tile] = max(depths[reset_tile], 2)
        reset_beats = depths[reset_tile] // 2
    check_simulator(simulator)
    _testbench(cfg)
    operands = make_tiles(cfg, depths, rng, dist, special_rate)
    design = build_core(cfg, simulator, progress=progress, verilog=verilog, user=user)
    return run_core(design, operands, seed=seed, gaps=gaps, stall=stall, reset_tile=reset_tile,
                    reset_beats=reset_beats, dist=dist, progress=progress, keep=keep, ties=ties)


def _tie_values(design: CoreDesign, ties: dict | None) -> dict:
    """Wrapper input -> value of every tied input of a user's core."""
    from .user import TIE_PREFIX, plain_name
    widths = design.user.ties if design.user is not None else {}
    given = dict(ties or {})
    for name in given:
        if name not in widths:
            raise ValueError(f"{name!r} is not a tied input of {design.top} in this build")
    out = {}
    for name, width in widths.items():
        value = int(given.get(name, 0))
        if not 0 <= value < 1 << width:
            raise ValueError(f"tied input {name}={value} does not fit its {width} bit(s)")
        out[TIE_PREFIX + plain_name(name)] = value
    return out
