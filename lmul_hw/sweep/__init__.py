"""``lmul-hw sweep``: design-space sweeps over formats, k, offsets and sizes, on Dask (docs/sweeps.md).

- :mod:`.spec`: the TOML specification (SPEC §7), checked, and its points as configurations;
- :mod:`.stages`: each stage of a point as a function returning measures, cached per (point, stage);
- :mod:`.engine`: the tasks on a Dask cluster (local or remote), progress, resumption;
- :mod:`.output`: points.csv/json, the Pareto fronts (pareto.md, PNGs) and sweep.html.
"""

from .spec import AXES, STAGES, Point, Spec, expand, load_spec, parse_spec

__all__ = ["AXES", "STAGES", "Point", "Spec", "expand", "load_spec", "parse_spec"]
