"""Bounds on the sizes a user asks for (samples, vectors, counts), checked before the work starts.

Each kind of work keeps about a fixed number of bytes per item in memory at once; a request is bad
input (ValueError) when that would exceed MEMORY_FRACTION of the machine's physical memory, so that a
count like 10**12 gives one clear line naming the limit instead of a MemoryError after minutes.
"""

from __future__ import annotations

import os

__all__ = ["physical_memory", "max_count", "check_count", "MEMORY_FRACTION"]

#: Share of physical memory one request may plan to use.
MEMORY_FRACTION = 0.5
#: Assumed when the operating system does not say (os.sysconf unavailable).
FALLBACK_MEMORY = 8 << 30


def physical_memory() -> int:
    """Bytes of physical memory of this machine (os.sysconf), FALLBACK_MEMORY if unknown."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return FALLBACK_MEMORY
    return total if total > 0 else FALLBACK_MEMORY


def max_count(bytes_each: float) -> int:
    """The largest count whose items, at ``bytes_each`` bytes each, fit in MEMORY_FRACTION of memory."""
    return int(physical_memory() * MEMORY_FRACTION // max(bytes_each, 1))


def _size(nbytes: float) -> str:
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20)):
        if nbytes >= scale:
            return f"{nbytes / scale:.3g} {unit}"
    return f"{nbytes / 1024:.3g} KiB"


def check_count(what: str, n: int, bytes_each: float, *, per: str = "") -> int:
    """``n`` if ``n`` items of ``bytes_each`` bytes fit (see ``max_count``); otherwise ValueError naming
    ``what`` (e.g. "--samples"), the memory it would need and the largest count allowed here."""
    limit = max_count(bytes_each)
    if n > limit:
        raise ValueError(
            f"{what} = {n:,} is too large: it needs about {_size(n * bytes_each)} of memory "
            f"({bytes_each:,.0f} bytes each{per}), over {MEMORY_FRACTION:.0%} of this machine's "
            f"{_size(physical_memory())}; the limit here is {limit:,}")
    return n
