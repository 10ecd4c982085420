"""Shared test plumbing: optional outside tools are a visible skip on a user's machine and a
failure in CI (CI=true), where every tool must be present."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
_OWN_CACHE = "LMUL_HW_TEST_OWN_CACHE"


def pytest_configure(config):
    """One lmul-hw cache for the whole session, shared by the xdist workers (they inherit the
    environment), so builds and synthesis results are made once per session and never land in the
    user's own cache.  A cache the user named with $LMUL_HW_CACHE is used as it is."""
    if hasattr(config, "workerinput") or os.environ.get("LMUL_HW_CACHE"):
        return
    os.environ["LMUL_HW_CACHE"] = tempfile.mkdtemp(prefix="lmul-hw-test-cache-")
    os.environ[_OWN_CACHE] = os.environ["LMUL_HW_CACHE"]


def pytest_unconfigure(config):
    own = os.environ.pop(_OWN_CACHE, None)
    if own and not hasattr(config, "workerinput"):
        shutil.rmtree(own, ignore_errors=True)
        os.environ.pop("LMUL_HW_CACHE", None)


def tool_available(name: str) -> bool:
    """Whether lmul-hw finds the outside program ``name`` (lmul_hw.tools.find)."""
    from lmul_hw.tools import find
    try:
        find(name)
        return True
    except ValueError:
        return False


def require(available: bool, what: str, install: str) -> None:
    """Skip (or, in CI, fail) when an outside tool is missing."""
    if available:
        return
    message = f"{what} is not available; install it with: {install}"
    if IN_CI:
        pytest.fail(f"CI needs every tool: {message}")
    pytest.skip(message)


def default_sigint() -> None:
    """``preexec_fn`` of a child that a test interrupts: SIGINT back to its default, so that Python
    installs its KeyboardInterrupt handler even when the test run itself was started with SIGINT
    ignored (as a shell does for a command run in the background with ``&``)."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_DFL)
