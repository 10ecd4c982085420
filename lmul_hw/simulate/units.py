"""Simulation glue: pick a simulator, generate the units' Verilog and a lane harness, build it
through cocotb's runner, run the testbenches of ``sim/`` and collect their results.

The harness instantiates each unit module many times ("lanes") side by side on wide concatenated
buses, so that one clock step of the simulation checks many operand pairs: cocotb costs
10-20 microseconds per step, the simulated logic of a lane almost nothing.  Several units (different
configurations) may share one harness and so one build; each run then checks any subset of them.

Builds are cached by the hash of everything that goes into them (Verilog, harness, simulator and
its version, cocotb's version) in the project's cache (``lmul_hw.cache``, kind ``sim``).

The testbench (``sim/test_lmul.py``, ``sim/test_fpmul.py``, shared code in ``sim/harness.py``)
receives through environment variables:

- ``LMUL_HW_UNITS``: JSON list of ``{"port": "u0", "config": <config JSON>, "lanes": L}``,
  the units of the harness to check in this run;
- ``LMUL_HW_VECTORS``: a ``.npz`` file with ``<port>_a``, ``<port>_b`` operand arrays (optional:
  without it the testbench generates ``lmul_hw.vectors.unit_vectors`` from ``LMUL_HW_COUNT`` and
  ``LMUL_HW_SEED`` itself);
- ``LMUL_HW_RESULTS``: where it writes its results (``.npz``, see :func:`_read_results`).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..config import config_from_json, kind_of
from ..verilog import verilog_text
from ..vectors import DEFAULT_RANDOM, describe_pair, expected_bits, unit_vectors
from .results import Mismatch, Result
from .runner import (SIMULATORS, build_design, build_slot, check_simulator, log_tail, run_directory,
                     run_testbench)
from ..errors import ToolError

__all__ = ["harness_text", "Design", "build", "run", "verify", "SimResult", "UnitResult", "Mismatch",
           "HARNESS_NAME", "DEFAULT_LANES", "default_lanes"]

HARNESS_NAME = "lmul_hw_harness"

Progress = Callable[[str], None]


def _quiet(_msg: str) -> None:
    pass


# -- the harness ---------------------------------------------------------------------------------

#: Lanes per unit.  A step costs ~10-20 us of cocotb, so 32 lanes check the 65,536 pairs of an fp8
#: unit in 2,048 steps (well under a second); more lanes mostly lengthen Verilator's C++ build.
DEFAULT_LANES = 32


def default_lanes(cfg) -> int:
    return DEFAULT_LANES


def _port(i: int) -> str:
    return f"u{i}"


def harness_text(units: Sequence[tuple], name: str = HARNESS_NAME, user: dict | None = None) -> str:
    """Verilog-2005 wrapper: for unit i with L lanes, input buses ``u<i>_a``/``u<i>_b`` (L*W bits)
    and output ``u<i>_p`` (L*W_G bits), lane j at bits [j*W, j*W+W); ``clk`` and ``rst`` when a
    unit is pipelined.  ``units`` holds (config, lanes) pairs; the unit modules come separately.

    ``user`` (config name -> :class:`lmul_hw.simulate.user.UserRTL`) puts a user's module in place of
    a unit: instantiated under its own name with its own port names (a missing ``rst`` is left
    unconnected; a combinational unit's ``clk``/``rst``, if it has them, are held low), and each of
    its tied inputs becomes a harness input ``u<i>_tie_<name>`` shared by its lanes."""
    user = user or {}
    clocked = any(cfg.latency for cfg, _ in units)
    ports, body = [], []
    if clocked:
        ports += ["input wire clk", "input wire rst"]
    for i, (cfg, lanes) in enumerate(units):
        w, g, u = cfg.fmt.width, cfg.out_fmt.width, _port(i)
        ports += [f"input wire [{lanes * w - 1}:0] {u}_a", f"input wire [{lanes * w - 1}:0] {u}_b",
                  f"output wire [{lanes * g - 1}:0] {u}_p"]
        mine = user.get(cfg.name)
        module, names, extra = cfg.name, {x: x for x in ("a", "b", "p", "clk", "rst")}, ""
        if mine is not None:
            module, names = mine.top, mine.ports
            for tied, width in mine.ties.items():
                port = tie_port(i, tied)
                ports.append(f"input wire [{width - 1}:0] {port}")
                extra += f", .{tied}({port})"
        conns = [".clk(clk)", ".rst(rst)"] if cfg.latency else []
        if mine is not None:
            low = "1'b0"
            conns = [f".{names[sig]}({sig if cfg.latency else low})" for sig in ("clk", "rst") if sig in names]
        clk = "".join(c + ", " for c in conns)
        body += [f"  // {u}: {lanes} lanes of {module} (latency {cfg.latency})",
                 f"  generate for (i{i} = 0; i{i} < {lanes}; i{i} = i{i} + 1) begin : g_{u}",
                 f"    {module} lane ({clk}.{names['a']}({u}_a[i{i}*{w} +: {w}]), .{names['b']}({u}_b[i{i}*{w} +: {w}]), "
                 f".{names['p']}({u}_p[i{i}*{g} +: {g}]){extra});",
                 "  end endgenerate"]
    genvars = ", ".join(f"i{i}" for i in range(len(units)))
    lines = ["// lmul-hw simulation harness: lanes of unit modules on wide buses (generated).",
             f"module {name} (", ",\n".join("  " + p for p in ports), ");", f"  genvar {genvars};", *body,
             "endmodule", ""]
    return "\n".join(lines)


def tie_port(i: int, name: str) -> str:
    """The harness input that holds the tied input ``name`` of unit ``i``."""
    from .user import plain_name
    return f"{_port(i)}_tie_{plain_name(name)}"


@dataclass
class Design:
    """A built harness: its units (config, lanes) in port order, the simulator and the build dir."""
    simulator: str
    units: list
    build_dir: Path
    build_seconds: float
    cached: bool
    user: dict = field(default_factory=dict)     # config name -> UserRTL (a user's module in its place)

    @property
    def clocked(self) -> bool:
        return any(cfg.latency for cfg, _ in self.units)

    def port_of(self, cfg) -> str:
        for i, (c, _) in enumerate(self.units):
            if c == cfg:
                return _port(i)
        raise ValueError(f"{cfg.name} is not part of this harness")


def _normalise_units(configs, lanes) -> list:
    units, seen = [], set()
    for item in configs:
        cfg, n = item if isinstance(item, tuple) else (item, None)
        kind_of(cfg, "unit")
        if cfg.name in seen:
            continue
        seen.add(cfg.name)
        n = n or lanes or default_lanes(cfg)
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 4096:
            raise ValueError(f"lanes must be an integer 1..4096, not {n!r}")
        units.append((cfg, n))
    if not units:
        raise ValueError("no unit configuration to simulate")
    return units


def build(configs, simulator: str = "verilator", *, lanes: int | None = None, progress: Progress = _quiet,
          verilog: dict | None = None, user: dict | None = None) -> Design:
    """Generate and build (once: cached by content) a harness holding the given unit configurations
    (configs or (config, lanes) pairs).  ``verilog`` may replace the generated text of some units
    (config name -> Verilog; the tests use it to plant bugs); ``user`` (config name ->
    :class:`lmul_hw.simulate.user.UserRTL`, see :func:`lmul_hw.simulate.user.load_user_rtl`) puts a
    user's own module and files in place of a unit.  ValueError for a missing simulator,
    ToolError when the build fails (with the last lines of its log)."""
    check_simulator(simulator)
    units = _normalise_units(configs, lanes)
    verilog, user = verilog or {}, user or {}
    for name, rtl in user.items():
        if rtl.top == HARNESS_NAME:
            raise ValueError(f"top module name {rtl.top!r} is reserved for lmul-hw's harness; rename your module")
    sources = []                 # (file name, text)
    for i, (cfg, _) in enumerate(units):
        if cfg.name in user:
            sources += [(f"{_port(i)}_{name}", text) for name, text in user[cfg.name].source_files()]
        else:
            sources.append((f"{cfg.name}.v", verilog.get(cfg.name) or verilog_text(cfg)))
    harness = harness_text(units, user=user)
    start = time.perf_counter()
    key = [harness, [text for _, text in sources]]
    with build_slot(simulator, "units", HARNESS_NAME, key) as (build_dir, cached):
        if cached:
            progress(f"using the cached {simulator} build {build_dir}")
            return Design(simulator, units, build_dir, 0.0, True, dict(user))
        src_dir = build_dir / "src"
        src_dir.mkdir(parents=True)
        files = []
        for fname, text in sources:
            files.append(src_dir / fname)
            files[-1].write_text(text)
        files.append(src_dir / f"{HARNESS_NAME}.v")
        files[-1].write_text(harness)
        names = ", ".join(user[cfg.name].top if cfg.name in user else cfg.name for cfg, _ in units)
        progress(f"building {simulator} harness ({len(units)} unit(s): {names}) in {build_dir}")
        build_design(simulator, files, HARNESS_NAME, build_dir, names)
    seconds = time.perf_counter() - start
    progress(f"built in {seconds:.1f} s")
    return Design(simulator, units, build_dir, seconds, False, dict(user))


# -- results -------------------------------------------------------------------------------------

@dataclass
class UnitMismatch(Mismatch):
    """One operand pair whose simulated product differs from the model's."""
    cfg: object
    a: int
    b: int
    expected: int
    actual: int | None          # None: the output had X/Z bits
    step: int
    lane: int

    def describe(self) -> str:
        return describe_pair(self.cfg, self.a, self.b, self.expected, self.actual) + f" [step {self.step}, lane {self.lane}]"


@dataclass
class UnitResult:
    cfg: object
    checked: int = 0
    mismatch_count: int = 0
    mismatches: list = field(default_factory=list)   # the first few, as Mismatch
    unresolved: int = 0          # output reads with X or Z bits (after the pipeline filled)
    early: int = 0               # products already visible one edge too soon (pipelined units)
    transitions: int = 0         # back-to-back operand pairs whose products differ (pipelined units):
                                 # where a design one edge too early or late is caught
    vectors: str = ""

    @property
    def ok(self) -> bool:
        return self.checked > 0 and self.mismatch_count == 0 and self.unresolved == 0 and self.early == 0

    def report(self, max_cases: int = 5) -> str:
        lat = f", latency {self.cfg.latency}" if self.cfg.latency else ""
        head = f"{self.cfg.name}: {self.checked} vectors checked{lat}"
        if self.vectors:
            head += f" ({self.vectors})"
        if self.ok:
            return head + ", all match"
        lines = [head + f", {self.mismatch_count} mismatches"]
        if self.unresolved:
            lines.append(f"  {self.unresolved} output reads had X/Z bits")
        if self.early:
            lines.append(f"  {self.early} products appeared one clock edge early (latency below {self.cfg.latency})")
        lines += ["  " + m.describe() for m in self.mismatches[:max_cases]]
        if self.mismatch_count > max_cases:
            lines.append(f"  ... and {self.mismatch_count - max_cases} more")
        return "\n".join(lines)


@dataclass
class SimResult(Result):
    """A run of a lane harness: one :class:`UnitResult` per unit checked."""
    simulator: str
    units: list                  # UnitResult per checked configuration
    build_seconds: float = 0.0
    sim_seconds: float = 0.0     # the testbenches' stepping loops (no build, no start-up)
    wall_seconds: float = 0.0    # the whole simulator run
    steps: int = 0

    @property
    def checked(self) -> int:
        return sum(u.checked for u in self.units)

    @property
    def mismatches(self) -> list:
        """The first few mismatches of every unit."""
        return [m for u in self.units for m in u.mismatches]

    @property
    def mismatch_count(self) -> int:
        return sum(u.mismatch_count for u in self.units)

    @property
    def ok(self) -> bool:
        return all(u.ok for u in self.units)

    def unit(self, cfg) -> UnitResult:
        for u in self.units:
            if u.cfg == cfg:
                return u
        raise KeyError(cfg.name)

    def report(self, max_cases: int = 5) -> str:
        return "\n".join(u.report(max_cases) for u in self.units)


def _read_results(path: Path, checks: list, vectors: dict) -> tuple[list, float, int]:
    """The testbench's results file: per port ``<port>_checked``, ``<port>_bad`` (indices into the
    vectors), ``<port>_actual`` (their products, -1 for X/Z), ``<port>_unresolved``, ``<port>_early``,
    ``<port>_lanes``; plus ``sim_seconds`` and ``steps``."""
    data = np.load(path)
    out = []
    for port, cfg in checks:
        if f"{port}_checked" not in data:
            raise KeyError(port)
        res = UnitResult(cfg, checked=int(data[f"{port}_checked"]), unresolved=int(data[f"{port}_unresolved"]),
                         early=int(data[f"{port}_early"]), transitions=int(data[f"{port}_transitions"]))
        bad = data[f"{port}_bad"].astype(np.int64)
        actual = data[f"{port}_actual"].astype(np.int64)
        lanes = int(data[f"{port}_lanes"])
        res.mismatch_count = len(bad)
        v = vectors[port]
        res.vectors = v.describe()
        exp = expected_bits(cfg, v.a[bad[:20]], v.b[bad[:20]])
        for j, idx in enumerate(bad[:20]):
            res.mismatches.append(UnitMismatch(cfg, int(v.a[idx]), int(v.b[idx]), int(exp[j]),
                                           None if actual[j] < 0 else int(actual[j]), int(idx // lanes),
                                           int(idx % lanes)))
        out.append(res)
    return out, float(data["sim_seconds"]), int(data["steps"])


def _tie_values(design: Design, ties: dict) -> dict:
    """Harness port -> value of every tied input of the design's users' modules."""
    out = {}
    for i, (cfg, _) in enumerate(design.units):
        rtl = design.user.get(cfg.name)
        given = dict(ties.get(cfg.name, {}))
        widths = rtl.ties if rtl is not None else {}
        for name in given:
            if name not in widths:
                raise ValueError(f"{name!r} is not a tied input of {cfg.name} in this build")
        for name, width in widths.items():
            value = int(given.get(name, 0))
            if not 0 <= value < 1 << width:
                raise ValueError(f"tied input {name}={value} does not fit its {width} bit(s)")
            out[tie_port(i, name)] = value
    return out


def run(design: Design, vectors: dict | None = None, *, configs=None, count: int | None = None, seed: int = 0,
        progress: Progress = _quiet, keep: bool = False, ties: dict | None = None) -> SimResult:
    """Simulate a built harness: check ``configs`` (default: all of its units) on ``vectors``
    (config name -> lmul_hw.vectors.Vectors; default: ``unit_vectors(cfg, count, seed)``).  ``ties``
    (config name -> {input: value}) holds the tied inputs of users' modules (default 0) for this run."""
    check_simulator(design.simulator)
    tie_values = _tie_values(design, ties or {})
    configs = [c for c, _ in design.units] if configs is None else list(configs)
    checks = [(design.port_of(cfg), cfg) for cfg in configs]
    lanes = {design.port_of(c): n for c, n in design.units}
    vecs = {}
    for port, cfg in checks:
        v = (vectors or {}).get(cfg.name)
        vecs[port] = v if v is not None else unit_vectors(cfg, DEFAULT_RANDOM if count is None else count, seed)
    with run_directory(keep, progress) as work:
        vec_file, res_file, log = work / "vectors.npz", work / "results.npz", work / "sim.log"
        np.savez(vec_file, **{f"{p}_{x}": getattr(vecs[p], x) for p, _ in checks for x in ("a", "b")})
        units = [{"port": p, "config": cfg.to_json(), "lanes": lanes[p]} for p, cfg in checks]
        testbenches = sorted({kind_of(cfg).testbench for _, cfg in checks})
        env = {"LMUL_HW_UNITS": json.dumps(units), "LMUL_HW_VECTORS": str(vec_file),
               "LMUL_HW_RESULTS": str(res_file), "LMUL_HW_CLOCKED": "1" if design.clocked else "0",
               "LMUL_HW_SIMULATOR": design.simulator, "LMUL_HW_TIES": json.dumps(tie_values)}
        total = sum(len(v) for v in vecs.values())
        progress(f"simulating {total} vectors of {len(checks)} unit(s) on {design.simulator}")
        start = time.perf_counter()
        failed = run_testbench(design.simulator, design.build_dir, work, testbenches,
                               HARNESS_NAME, env, seed)
        wall = time.perf_counter() - start
        try:
            units_res, sim_seconds, steps = _read_results(res_file, checks, vecs)
        except (OSError, KeyError, ValueError) as exc:
            raise ToolError(design.simulator, f"the simulation ended without results ({failed or exc})",
                            log_tail(log)) from None
    result = SimResult(design.simulator, units_res, design.build_seconds, sim_seconds, wall, steps)
    progress(f"simulated {result.checked} vectors in {sim_seconds:.2f} s ({steps} steps; {wall:.1f} s with start-up)")
    return result


def verify(cfg, simulator: str = "verilator", *, count: int | None = None, seed: int = 0, lanes: int | None = None,
           progress: Progress = _quiet, verilog_files: Sequence | None = None, top: str | None = None,
           ports: dict | None = None, ties: dict | None = None) -> SimResult:
    """Build (or reuse) the harness of one unit, simulate its vectors and return the result.

    With ``verilog_files`` the unit under test is the user's module ``top`` from those files instead of
    the generated Verilog (same testbench, same vectors, same model): ``ports`` maps our port names
    (a, b, p, clk, rst) to the module's where they differ, ``ties`` holds other inputs at constants
    ({name: value}; the build does not depend on the values).  ``cfg`` says what the module should
    compute (its latency included).  ValueError (one line) for a parse error, a missing top module or a
    missing or wrongly sized port; see :func:`lmul_hw.simulate.user.load_user_rtl`."""
    kind_of(cfg, "unit")
    if simulator not in SIMULATORS:
        raise ValueError(f"unknown simulator {simulator!r}: use one of {', '.join(SIMULATORS)}")
    user = None
    if verilog_files is not None:
        from .user import load_user_rtl
        if not top:
            raise ValueError("a user's Verilog needs its top module name (--top NAME)")
        user = load_user_rtl(cfg, verilog_files, top, simulator, ports=ports, ties=ties)
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", top) and len(top) <= 200:
            cfg = config_from_json(json.dumps({**json.loads(cfg.to_json()), "name": top}))   # reports name it
    elif top or ports or ties:
        raise ValueError("--top, --port and --tie need --verilog FILE")
    vectors = unit_vectors(cfg, DEFAULT_RANDOM if count is None else count, seed)
    design = build([cfg], simulator, lanes=lanes, progress=progress,
                   user={cfg.name: user} if user is not None else None)
    return run(design, {cfg.name: vectors}, seed=seed, progress=progress,
               ties={cfg.name: dict(ties or {})} if user is not None else None)
