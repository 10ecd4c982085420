"""Writing output files atomically: a temporary file beside the target, then a rename, so that no
half-written file is ever left behind."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def data_dir(name: str) -> Path:
    """``sim/`` or ``synth/``: beside the package in a checkout, inside it in an installed wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / name, here / "_data" / name):
        if candidate.is_dir():
            return candidate
    raise ValueError(f"lmul-hw installation is incomplete: no {name}/ directory next to {here}")


def _target(path) -> Path:
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if p.is_dir():
        raise ValueError(f"cannot write {p}: it is a directory")
    if not parent.is_dir():
        raise ValueError(f"cannot write {p}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise ValueError(f"cannot write {p}: directory {parent} is not writable")
    return p


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file and a rename; ValueError if it cannot."""
    p = _target(path)
    mode = "wb" if isinstance(data, bytes) else "w"
    if p.exists() and not p.is_file():           # follows links: a device or pipe (e.g. /dev/stdout)
        return _write_special(p, data, mode)      # is written in place, never replaced
    p = p.resolve() if p.is_symlink() else p      # replace the file a link points to, not the link
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent or ".")
        with os.fdopen(fd, mode) as fh:
            fh.write(data)
        os.chmod(tmp, 0o666 & ~_umask())          # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, p)
    except OSError as exc:
        if "tmp" in locals() and os.path.exists(tmp):
            os.unlink(tmp)
        raise ValueError(f"cannot write {p}: {exc.strerror or exc}") from None
    return p


def _write_special(p: Path, data, mode: str) -> Path:
    try:
        with open(p, mode) as fh:
            fh.write(data)
    except BrokenPipeError:
        raise                                     # the reader left: the command line ends quietly
    except OSError as exc:
        raise ValueError(f"cannot write {p}: {exc.strerror or exc}") from None
    return p


def output_dir(path) -> Path:
    """Create (if needed) and return an output directory; ValueError if that is impossible."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"cannot create output directory {p}: {exc.strerror or exc}") from None
    if not os.access(p, os.W_OK):
        raise ValueError(f"output directory {p} is not writable")
    return p
