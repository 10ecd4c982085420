"""The bit-exact numpy model of SPEC.md: the reference that the hardware is verified against."""

from .fpmul import fpmul
from .lmul import lmul
from .matmul import matmul

__all__ = ["lmul", "fpmul", "matmul"]
