"""The sweep specification (SPEC §7): a TOML file read, checked and expanded into points.

Every problem with the file is a ValueError whose one line names the key and the reason (the command
line turns it into exit status 2).  A point is one combination of the axes' values; an axis that does
not apply to a point (``k`` for an exact multiplier) is dropped for it, identical points collapse,
and ``[[exclude]]`` tables remove the points they match.  Each point becomes the project's own
validated configuration (lmul_hw.config); a combination that configuration refuses (k above the
format's mantissa width, an accumulator too wide) is a point with status ``invalid`` and the reason."""

from __future__ import annotations

import itertools
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ..config import CoreConfig, FPMulConfig, LMulConfig
from ..formats import get_format

__all__ = ["STAGES", "SWEEP_KINDS", "FAMILIES", "FMAX_FAMILIES", "DISTRIBUTIONS", "WORKLOADS", "Axis", "AXES",
           "Spec", "Point", "load_spec", "parse_spec", "expand"]

#: Every stage SPEC §7 names, in the order a point runs them.
STAGES = ("verify", "cmos", "fpga", "fmax", "energy", "accuracy", "workload")
SWEEP_KINDS = ("unit", "core")
#: FPGA families of the fpga stage (lmul_hw.fpga); the fmax stage places and routes on those with nextpnr.
FAMILIES = ("ice40", "ecp5", "xilinx")
FMAX_FAMILIES = ("ice40", "ecp5")
#: Operand distributions of the accuracy stage (lmul_hw.accuracy.DISTRIBUTIONS).
DISTRIBUTIONS = ("gaussian", "uniform", "heavy")
WORKLOADS = ("minilm",)
_SWEEP_KEYS = ("kind", "stages", "targets", "distribution", "workload")
_TOP_KEYS = ("sweep", "axes", "exclude")
_RANGE_KEYS = ("start", "stop", "step")
#: Most points one spec may expand to: a typo in a range should not queue a million syntheses.
MAX_POINTS = 100_000


@dataclass(frozen=True)
class Axis:
    """One axis: ``kind`` of its values (``int``, ``format``, ``size`` or ``choice`` among ``choices``),
    ``muls``: the multipliers it applies to, ``required``: a sweep of its ``sweeps`` cannot do without it."""
    name: str
    kind: str
    sweeps: tuple
    muls: tuple = ("lmul", "fpmul")
    choices: tuple = ()
    required: bool = False


#: The axes, named after generate's options (SPEC §5) without dashes, '-' as '_'; their order is the
#: order of the columns of points.csv.
AXES = (
    Axis("size", "size", ("core",)),
    Axis("rows", "int", ("core",)),
    Axis("cols", "int", ("core",)),
    Axis("mul", "choice", ("unit", "core"), choices=("lmul", "fpmul"), required=True),
    Axis("format", "format", ("unit", "core"), required=True),
    Axis("acc", "choice", ("core",), choices=("exact", "fp32"), required=True),
    Axis("depth", "int", ("core",), required=True),
    Axis("k", "int", ("unit", "core"), muls=("lmul",)),
    Axis("offset_exp", "int", ("unit", "core"), muls=("lmul",)),
    Axis("offset", "int", ("unit", "core"), muls=("lmul",)),
    Axis("out_format", "format", ("unit",)),
    Axis("overflow", "choice", ("unit",), choices=("ieee", "saturate")),
    Axis("subnormals", "choice", ("unit", "core"), muls=("fpmul",), choices=("full", "ftz")),
    Axis("latency", "int", ("unit",)),
)
_AXIS = {a.name: a for a in AXES}
_SIZE = re.compile(r"([0-9]+)x([0-9]+)")


@dataclass(frozen=True)
class Spec:
    """A checked sweep specification: ``axes`` maps each axis to its values (in the file's order,
    duplicates removed), ``exclude`` is a list of {axis: values} tables."""
    kind: str
    stages: tuple
    axes: dict
    exclude: tuple = ()
    targets: tuple = FAMILIES
    distribution: str = "gaussian"
    workload: str = "minilm"
    text: str = ""                      # the file as read, echoed in sweep.html

    @property
    def columns(self) -> list[str]:
        """The axis columns of points.csv: the spec's axes in AXES order."""
        return [a.name for a in AXES if a.name in self.axes]

    def options(self, stage: str) -> dict:
        """What a stage's result depends on beyond the point (part of its cache key)."""
        if stage == "fpga":
            return {"targets": list(self.targets)}
        if stage == "fmax":
            return {"targets": [t for t in self.targets if t in FMAX_FAMILIES]}
        if stage == "accuracy":
            return {"distribution": self.distribution}
        if stage == "workload":
            return {"workload": self.workload}
        return {}


@dataclass
class Point:
    """One distinct point: its axis ``values`` (None where an axis does not apply), the configuration
    (None for an invalid combination, ``reason`` then says why) and the stages that apply to it
    (``skipped``: stage -> why it does not)."""
    values: dict
    cfg: object = None
    reason: str = ""
    stages: tuple = ()
    skipped: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The default module name (empty for an invalid point)."""
        return self.cfg.name if self.cfg is not None else ""

    @property
    def valid(self) -> bool:
        return self.cfg is not None


def _bad(key: str, reason: str) -> ValueError:
    return ValueError(f"{key}: {reason}")


def _type_name(value) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a table"}.get(type(value), type(value).__name__)


def _check_keys(table: dict, allowed, where: str) -> None:
    for key in table:
        if key not in allowed:
            raise _bad(f"{where}.{key}" if where else key,
                       f"unknown key (allowed: {', '.join(allowed)})")


def _strings(value, key: str, choices=None, *, empty_ok: bool = False) -> tuple:
    if not isinstance(value, list):
        raise _bad(key, f"must be a list of strings, not {_type_name(value)}")
    if not value and not empty_ok:
        raise _bad(key, "is empty")
    seen = []
    for item in value:
        if not isinstance(item, str):
            raise _bad(key, f"must be a list of strings; {item!r} is {_type_name(item)}")
        if choices is not None and item not in choices:
            raise _bad(key, f"unknown value {item!r} (choose from {', '.join(choices)})")
        if item in seen:
            raise _bad(key, f"{item!r} is listed twice")
        seen.append(item)
    return tuple(seen)


def _value(axis: Axis, item, key: str):
    """One value of an axis, checked for its type and choices; formats by their canonical name."""
    if axis.kind == "int":
        if isinstance(item, bool) or not isinstance(item, int):
            raise _bad(key, f"values must be integers; {item!r} is {_type_name(item)}")
        return item
    if not isinstance(item, str):
        raise _bad(key, f"values must be strings; {item!r} is {_type_name(item)}")
    if axis.kind == "format":
        try:
            return get_format(item).name
        except ValueError as exc:
            raise _bad(key, str(exc)) from None
    if axis.kind == "size":
        m = _SIZE.fullmatch(item.strip().lower())
        if m is None:
            raise _bad(key, f"{item!r} is not a size ROWSxCOLS such as '4x4'")
        return f"{int(m.group(1))}x{int(m.group(2))}"
    if item not in axis.choices:
        raise _bad(key, f"unknown value {item!r} (choose from {', '.join(axis.choices)})")
    return item


def _axis_values(axis: Axis, raw, key: str) -> tuple:
    """A list, or (integer axes) an inclusive {start, stop, step} range; never empty."""
    if isinstance(raw, dict):
        if axis.kind != "int":
            raise _bad(key, "a {start, stop, step} range needs an integer axis; give a list")
        _check_keys(raw, _RANGE_KEYS, key)
        for part in ("start", "stop"):
            if part not in raw:
                raise _bad(key, f"a range needs {part}")
        start, stop, step = (_value(axis, raw.get(p, 1), f"{key}.{p}") for p in _RANGE_KEYS)
        if step < 1:
            raise _bad(f"{key}.step", f"must be at least 1, not {step}")
        if stop < start:
            raise _bad(key, f"empty range: stop {stop} is below start {start}")
        if (stop - start) // step + 1 > MAX_POINTS:
            raise _bad(key, f"the range has more than {MAX_POINTS:,} values")
        return tuple(range(start, stop + 1, step))
    if not isinstance(raw, list):
        raise _bad(key, f"must be a list or a {{start, stop, step}} range, not {_type_name(raw)}")
    if not raw:
        raise _bad(key, "is empty")
    return tuple(dict.fromkeys(_value(axis, item, key) for item in raw))


def parse_spec(data: dict, text: str = "") -> Spec:
    """A Spec from the parsed TOML ``data``; ValueError naming the key and the reason."""
    _check_keys(data, _TOP_KEYS, "")
    sweep = data.get("sweep")
    if not isinstance(sweep, dict):
        raise _bad("sweep", "missing [sweep] table" if sweep is None else f"must be a table, not {_type_name(sweep)}")
    _check_keys(sweep, _SWEEP_KEYS, "sweep")
    for key in ("kind", "stages"):
        if key not in sweep:
            raise _bad(f"sweep.{key}", "required key is missing")
    kind = sweep["kind"]
    if not isinstance(kind, str):
        raise _bad("sweep.kind", f"must be a string, not {_type_name(kind)}")
    if kind not in SWEEP_KINDS:
        raise _bad("sweep.kind", f"unknown kind {kind!r} (choose from {', '.join(SWEEP_KINDS)})")
    stages = _strings(sweep["stages"], "sweep.stages", STAGES)
    stages = tuple(s for s in STAGES if s in stages)
    options = {}
    if "targets" in sweep:
        options["targets"] = _strings(sweep["targets"], "sweep.targets", FAMILIES)
    for key, choices in (("distribution", DISTRIBUTIONS), ("workload", WORKLOADS)):
        if key in sweep:
            value = sweep[key]
            if not isinstance(value, str):
                raise _bad(f"sweep.{key}", f"must be a string, not {_type_name(value)}")
            if value not in choices:
                raise _bad(f"sweep.{key}", f"unknown value {value!r} (choose from {', '.join(choices)})")
            options[key] = value
    if "fmax" in stages and not set(options.get("targets", FAMILIES)) & set(FMAX_FAMILIES):
        raise _bad("sweep.targets", f"the fmax stage places and routes on {' or '.join(FMAX_FAMILIES)}; "
                                    "name at least one of them")

    axes_table = data.get("axes")
    if not isinstance(axes_table, dict):
        raise _bad("axes", "missing [axes] table" if axes_table is None else
                   f"must be a table, not {_type_name(axes_table)}")
    if not axes_table:
        raise _bad("axes", "names no axis")
    allowed = [a.name for a in AXES if kind in a.sweeps]
    _check_keys(axes_table, allowed, "axes")
    axes = {name: _axis_values(_AXIS[name], raw, f"axes.{name}") for name, raw in axes_table.items()}
    for a in AXES:
        if a.required and kind in a.sweeps and a.name not in axes:
            raise _bad(f"axes.{a.name}", f"required for {kind} sweeps")
    if kind == "core":
        if "size" in axes and ("rows" in axes or "cols" in axes):
            raise _bad("axes.size", "give size or rows and cols, not both")
        if "size" not in axes and not ("rows" in axes and "cols" in axes):
            missing = "cols" if "rows" in axes else "rows" if "cols" in axes else "size"
            raise _bad(f"axes.{missing}", "a core sweep needs size, or rows and cols")

    exclude = data.get("exclude", [])
    if not isinstance(exclude, list) or not all(isinstance(t, dict) for t in exclude):
        raise _bad("exclude", "must be [[exclude]] tables")
    tables = []
    for n, table in enumerate(exclude, 1):
        where = f"exclude[{n}]"
        if not table:
            raise _bad(where, "is empty (it would exclude every point)")
        _check_keys(table, list(axes), where)
        tables.append({key: tuple(_value(_AXIS[key], v, f"{where}.{key}")
                                  for v in (raw if isinstance(raw, list) else [raw]))
                       for key, raw in table.items()})
    return Spec(kind, stages, axes, tuple(tables), text=text, **options)


def load_spec(path) -> Spec:
    """Read and check a spec file; ValueError naming the file, the key and the reason."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read sweep spec {p}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{p}: not valid TOML: {exc}") from None
    try:
        return parse_spec(data, text)
    except ValueError as exc:
        raise ValueError(f"{p}: {exc}") from None


# -- points --------------------------------------------------------------------------------------

def _applies(axis: Axis, mul: str) -> bool:
    return mul in axis.muls


def _excluded(values: dict, tables) -> bool:
    """A point matches a table when every key's axis applies to it and has one of the table's values."""
    return any(all(values.get(key) is not None and values[key] in allowed for key, allowed in table.items())
               for table in tables)


def _config(spec: Spec, v: dict):
    options = {name: v[axis] for axis, name in (("k", "k"), ("offset_exp", "offset_exp"), ("offset", "offset"),
                                                ("subnormals", "subnormals")) if v.get(axis) is not None}
    if spec.kind == "unit":
        for axis, name in (("out_format", "out_fmt"), ("overflow", "overflow"), ("latency", "latency")):
            if v.get(axis) is not None:
                options[name] = v[axis]
        cls = LMulConfig if v["mul"] == "lmul" else FPMulConfig
        return cls(v["format"], **options)
    if v.get("size") is not None:
        rows, cols = (int(x) for x in v["size"].split("x"))
    else:
        rows, cols = v["rows"], v["cols"]
    return CoreConfig(rows, cols, v["mul"], v["format"], v["acc"], v["depth"], **options)


def expand(spec: Spec, applicable=None) -> list[Point]:
    """The distinct points of a spec, in the order of its axes' values.  ``applicable(point, stage)``
    (None or the reason a stage does not apply) decides each point's stages (default: all)."""
    names = spec.columns
    total = 1
    for name in names:
        total *= len(spec.axes[name])
    if total > MAX_POINTS:
        raise ValueError(f"axes: the spec expands to {total:,} combinations; at most {MAX_POINTS:,}")
    seen = set()
    points = []
    for combo in itertools.product(*(spec.axes[n] for n in names)):
        values = dict(zip(names, combo))
        values = {n: (x if _applies(_AXIS[n], values["mul"]) else None) for n, x in values.items()}
        key = tuple(values.items())
        if key in seen or _excluded(values, spec.exclude):
            continue
        seen.add(key)
        try:
            point = Point(values, _config(spec, values))
        except ValueError as exc:
            points.append(Point(values, reason=str(exc)))
            continue
        for stage in spec.stages:
            why = applicable(point, stage) if applicable is not None else None
            if why:
                point.skipped[stage] = why
        point.stages = tuple(s for s in spec.stages if s not in point.skipped)
        points.append(point)
    if not points:
        raise ValueError("exclude: every point of the spec is excluded")
    return points
