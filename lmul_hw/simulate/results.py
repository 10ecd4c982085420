"""What every simulation returns: one result type and one mismatch type for units and cores alike,
so that the command line, the flow and the mutation benchmark read any run the same way."""

from __future__ import annotations

__all__ = ["Mismatch", "Result"]


class Mismatch:
    """One output that differs from the model: ``expected`` and ``actual`` bit patterns (``actual`` None
    when the output had X/Z bits) and :meth:`describe`, the inputs, expected and got with values decoded."""
    expected: int
    actual: int | None

    def describe(self) -> str:
        raise NotImplementedError


class Result:
    """One simulation run: the ``simulator``, whether it is ``ok``, how many outputs differ
    (``mismatch_count``), the first few as :class:`Mismatch` (``mismatches``), and a text
    :meth:`report` that shows them in full."""
    simulator: str

    @property
    def ok(self) -> bool:
        raise NotImplementedError

    def report(self, max_cases: int = 5) -> str:
        raise NotImplementedError
