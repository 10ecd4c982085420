"""Writing output files atomically: a temporary file beside the target, then a rename, so that no
half-written file is ever left behind; and where the package's data and its cache root are."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path


def data_dir(name: str) -> Path:
    """``sim/`` or ``synth/``: beside the package in a checkout, inside it in an installed wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / name, here / "_data" / name):
        if candidate.is_dir():
            return candidate
    raise ValueError(f"lmul-hw installation is incomplete: no {name}/ directory next to {here}")


def cache_root() -> Path:
    """The root of lmul-hw's cache (``lmul_hw.cache`` and the model's compiled kernels), created if
    needed: ``$LMUL_HW_CACHE`` if set, else the platform's user cache directory (``platformdirs``).
    ValueError if ``$LMUL_HW_CACHE`` names something unusable (the user's setting: bad input);
    ToolError if the default location cannot be used (the machine)."""
    from .errors import ToolError
    explicit = os.environ.get("LMUL_HW_CACHE")
    if explicit:
        path = Path(explicit).expanduser()
    else:
        import platformdirs
        path = Path(platformdirs.user_cache_dir("lmul-hw", appauthor=False))
    problem = None
    try:
        if path.exists() and not path.is_dir():
            raise NotADirectoryError(0, "it is not a directory")
        path.mkdir(parents=True, exist_ok=True)
        if not os.access(path, os.W_OK | os.X_OK):
            problem = "it is not writable"
    except OSError as exc:
        problem = exc.strerror or str(exc)
    if problem is None:
        return path.resolve()
    if explicit:
        raise ValueError(f"LMUL_HW_CACHE={explicit} cannot hold the cache: {problem}")
    raise ToolError("lmul-hw cache", f"cannot use the cache directory {path}: {problem} "
                                     "(set LMUL_HW_CACHE to a writable directory)")


def _inspect_error(p, exc) -> ValueError:
    """Path inspection failed (a name longer than the system allows, a symbolic-link loop, ...)."""
    return ValueError(f"cannot write {_short(p)}: {_reason(exc)}")


def _reason(exc) -> str:
    if isinstance(exc, RuntimeError):           # pathlib reports a link loop so (before Python 3.13)
        return "too many levels of symbolic links"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _short(p) -> str:
    """A path for a one-line message: very long names are shortened in the middle."""
    text = str(p)
    return text if len(text) <= 120 else f"{text[:60]}...{text[-40:]} ({len(text)} characters)"


def _target(path) -> Path:
    try:
        return _check_target(Path(path))
    except (OSError, RuntimeError) as exc:      # ENAMETOOLONG, ELOOP (RuntimeError: pathlib's link loop)
        raise _inspect_error(path, exc) from None


def _check_target(p: Path) -> Path:
    parent = p.parent if str(p.parent) else Path(".")
    if p.is_dir():
        raise ValueError(f"cannot write {p}: it is a directory")
    if not parent.is_dir():
        raise ValueError(f"cannot write {p}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise ValueError(f"cannot write {p}: directory {parent} is not writable")
    return p


def output_file(path) -> Path:
    """Check, before any work, that ``path`` can be written (its directory exists and is writable, it
    is no directory); ValueError naming the path if not.  Nothing is created."""
    return _target(path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file and a rename; ValueError if it cannot."""
    p = _target(path)
    mode = "wb" if isinstance(data, bytes) else "w"
    try:
        special = p.exists() and not p.is_file()  # follows links: a device or pipe (e.g. /dev/stdout)
        if not special:
            p = p.resolve(strict=False) if p.is_symlink() else p   # replace the file a link points to
    except (OSError, RuntimeError) as exc:
        raise _inspect_error(p, exc) from None
    if special:
        return _write_special(p, data, mode)      # is written in place, never replaced
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent or ".")
        with os.fdopen(fd, mode) as fh:
            fh.write(data)
        os.chmod(tmp, 0o666 & ~_umask())          # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, p)
    except OSError as exc:
        if "tmp" in locals() and os.path.exists(tmp):
            os.unlink(tmp)
        raise ValueError(f"cannot write {_short(p)}: {exc.strerror or exc}") from None
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
        writable = os.access(p, os.W_OK)
    except (OSError, RuntimeError) as exc:      # also ENAMETOOLONG, ELOOP
        raise ValueError(f"cannot create output directory {_short(p)}: {_reason(exc)}") from None
    if not writable:
        raise ValueError(f"output directory {_short(p)} is not writable")
    return p


@contextlib.contextmanager
def replaced_dir(path):
    """Yield a new temporary directory beside ``path`` to write a whole output into; when the body
    ends, it is renamed to ``path``, an existing ``path`` being replaced only then.  If the body fails,
    nothing is left behind.  ValueError (naming the path) if it cannot be done."""
    out = Path(path)
    parent = out.parent if str(out.parent) else Path(".")
    if out.exists() and not out.is_dir():
        raise ValueError(f"cannot write {out}: it exists and is not a directory")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=parent))
    except OSError as exc:
        raise ValueError(f"cannot create output directory {out}: {exc.strerror or exc}") from None
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())           # mkdtemp makes 0700; give the usual permissions
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=parent))
            os.replace(out, old / out.name)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ValueError(f"cannot write {out}: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
