"""Amaranth hardware: each component is built from a configuration object (lmul_hw.config) and
mirrors a model function of lmul_hw.model by name.  The hardware never imports the model."""

from .fpmul import FPMul
from .lmul import LMul

__all__ = ["LMul", "FPMul", "unit_for"]


def unit_for(cfg):
    """The unit component of a unit configuration."""
    from ..config import kind_of
    return kind_of(cfg, "unit").load("component")(cfg)
