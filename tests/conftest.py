"""Shared test plumbing: optional outside tools are a visible skip on a user's machine and a
failure in CI (CI=true), where every tool must be present."""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(available: bool, what: str, install: str) -> None:
    """Skip (or, in CI, fail) when an outside tool is missing."""
    if available:
        return
    message = f"{what} is not available; install it with: {install}"
    if IN_CI:
        pytest.fail(f"CI needs every tool: {message}")
    pytest.skip(message)
