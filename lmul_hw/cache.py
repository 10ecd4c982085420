"""The one content-addressed cache of lmul-hw: synthesis results, place and route, equivalence
proofs and simulation builds all live under one root, each entry named by the hash of everything
it depends on and computed under one lock discipline.

Root: ``$LMUL_HW_CACHE`` if set, else the platform's user cache directory (``platformdirs``,
``lmul-hw``).  Layout: ``ROOT/KIND/LABEL-DIGEST/`` with ``ROOT/KIND/LABEL-DIGEST.lock`` beside it.

:func:`slot` locks an entry (``fcntl``, across threads and processes), so one process computes it
while the others wait and then read it.  An entry is complete when its marker file exists (written
last, atomically); a partial entry left by an interrupted run is wiped before the next try, and a
failure or interrupt inside ``slot`` removes what it wrote.  A complete entry that does not read
back (truncated or invalid JSON, missing keys, an empty simulator binary) is reported in one
warning line, removed and rebuilt.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from .files import cache_root

__all__ = ["KINDS", "root", "slot", "Slot", "lookup", "needs", "info", "clear", "digest", "source_digest", "warn"]

#: What the cache holds, one directory each.
KINDS = {
    "synth": "yosys results: generic CMOS and FPGA mappings (netlists, cell counts)",
    "pnr": "nextpnr place-and-route results (Fmax)",
    "equiv": "formal and simulated netlist-vs-RTL checks",
    "sim": "simulator builds (Verilator and Icarus) of harnesses and cores",
    "jit": "numba's compiled kernels of the model's fp32-accumulation matmul (numba's own cache files)",
    "workload": "the flow's short MiniLM workload runs (embeddings, metrics, energy per inference)",
    "energy": "switching-energy estimates of the flow's paper-setting designs (pJ per operation and its parts)",
    "sweep": "the measures of each (point, stage) of lmul-hw sweep",
}


def warn(message: str) -> None:
    print(f"lmul-hw: warning: {message}", file=sys.stderr, flush=True)


def root() -> Path:
    """The cache root, created if needed (:func:`lmul_hw.files.cache_root`: the model's compiled
    kernels find it there too, below this floor)."""
    return cache_root()


def digest(*parts) -> str:
    return hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest()[:20]


def source_digest(*names: str) -> str:
    """A hash of lmul_hw's own source files, for keys of results that its code makes: ``names`` (paths
    relative to the package, e.g. "energy.py"), or every .py and .txt file of the package without them.
    A change to any of them makes new cache entries."""
    package = Path(__file__).resolve().parent
    paths = [package / n for n in names] if names else sorted(
        p for p in package.rglob("*") if p.suffix in (".py", ".txt") and "__pycache__" not in p.parts)
    h = hashlib.sha256()
    for path in paths:
        h.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:20]


def _entry_name(kind: str, label: str, parts) -> str:
    return f"{label}-{digest(kind, label, *parts)}" if label else digest(kind, *parts)


@dataclass
class Slot:
    """A locked cache entry: ``path`` (its directory), ``cached`` (complete before this run) and, for
    JSON entries, ``payload`` (what :meth:`publish` stored)."""
    path: Path
    cached: bool
    marker: str
    payload: dict | None = None
    _done: bool = field(default=False, repr=False)

    def publish(self, payload: dict | None = None) -> None:
        """Mark the entry complete: write ``payload`` as the JSON marker (or an empty marker)."""
        text = json.dumps(payload) if payload is not None else ""
        tmp = self.path / f".{self.marker}.tmp"
        tmp.write_text(text)
        os.replace(tmp, self.path / self.marker)
        self.payload = payload
        self._done = True


def _json_problem(path: Path, keys: Iterable[str]) -> tuple[str | None, dict | None]:
    try:
        payload = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        return f"cannot read {path.name} ({exc})", None
    except ValueError:
        return f"{path.name} is not valid JSON (truncated?)", None
    if not isinstance(payload, dict):
        return f"{path.name} holds no JSON object", None
    missing = sorted(set(keys) - set(payload))
    if missing:
        return f"{path.name} lacks {', '.join(missing)}", None
    return None, payload


@contextlib.contextmanager
def slot(kind: str, label: str, *parts, marker: str = "result.json", keys: Iterable[str] | None = None,
         check: Callable[[Path], str | None] | None = None):
    """Lock the entry of ``kind`` named by ``label`` and the hash of ``parts``; yield a :class:`Slot`.

    ``keys``: the marker is a JSON object that must hold these keys.  ``check(path)``: any further test
    of a complete entry, returning a reason when it is broken.  When ``slot.cached`` is False the body
    computes the entry into ``slot.path`` and calls ``slot.publish``; if it raises (or is interrupted)
    everything it wrote is removed."""
    if kind not in KINDS:
        raise ValueError(f"unknown cache kind {kind!r}")
    base = root() / kind
    base.mkdir(exist_ok=True)
    name = _entry_name(kind, label, parts)
    path = base / name
    with open(base / f"{name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = path / marker
        if done.exists():
            problem, payload = (None, None)
            if keys is not None:
                problem, payload = _json_problem(done, keys)
            if problem is None and check is not None:
                problem = check(path)
            if problem is None:
                yield Slot(path, True, marker, payload, True)
                return
            warn(f"removing the corrupted cache entry {path} ({problem}); rebuilding it")
        if path.exists():
            shutil.rmtree(path, ignore_errors=True)     # corrupted, or left by an interrupted run
        path.mkdir(parents=True)
        entry = Slot(path, False, marker)
        try:
            yield entry
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise
        if not entry._done:
            shutil.rmtree(path, ignore_errors=True)


def lookup(kind: str, label: str, *parts, marker: str = "result.json", keys: Iterable[str] = ()) -> dict | None:
    """The JSON payload of a complete entry of :func:`slot`, or None (absent, unfinished or unreadable),
    without locking or writing anything: a quick look that never waits for a run computing it."""
    if kind not in KINDS:
        raise ValueError(f"unknown cache kind {kind!r}")
    done = root() / kind / _entry_name(kind, label, parts) / marker
    if not done.is_file():
        return None
    problem, payload = _json_problem(done, keys)
    return None if problem else payload


def needs(*names: str) -> Callable[[Path], str | None]:
    """A ``check`` for :func:`slot`: these files of the entry exist and are not empty."""
    def check(path: Path) -> str | None:
        for name in names:
            f = path / name
            if not f.is_file() or f.stat().st_size == 0:
                return f"{name} is missing or empty"
        return None
    return check


def _size(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total


def info() -> dict:
    """{"root": path, "kinds": {kind: {"entries": n, "bytes": size}}}."""
    r = root()
    kinds = {}
    for kind in KINDS:
        base = r / kind
        entries = [p for p in base.iterdir() if p.is_dir()] if base.is_dir() else []
        kinds[kind] = {"entries": len(entries), "bytes": _size(base) if base.is_dir() else 0}
    other = [p.name for p in r.iterdir() if p.name not in KINDS]
    return {"root": str(r), "kinds": kinds, "other": sorted(other)}


def clear(kinds: Iterable[str] | None = None) -> dict:
    """Remove every entry of ``kinds`` (default: all kinds); {kind: entries removed}."""
    r = root()
    chosen = list(KINDS) if kinds is None else list(kinds)
    for kind in chosen:
        if kind not in KINDS:
            raise ValueError(f"unknown cache kind {kind!r}; choose from {', '.join(KINDS)}")
    removed = {}
    for kind in chosen:
        base = r / kind
        removed[kind] = sum(1 for p in base.iterdir() if p.is_dir()) if base.is_dir() else 0
        shutil.rmtree(base, ignore_errors=True)
    return removed
