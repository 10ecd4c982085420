"""What a sweep writes: ``points.csv`` and ``points.json`` (one row per distinct point, SPEC §7's
columns), ``pareto.md`` with the non-dominated points of accuracy against transistors, energy and LUTs,
one PNG per front, and ``sweep.html`` with the tables, the pictures and the spec.  The directory is
built beside its destination and renamed into place, so an existing one is replaced only by a
complete new one."""

from __future__ import annotations

import csv
import html
import io
import json
import math
from pathlib import Path

from ..files import replaced_dir
from .spec import Spec
from .stages import measure_columns

__all__ = ["rows", "columns", "fronts", "write", "plan_text", "exit_status", "FRONTS"]

#: The fronts: (x measure, its label); the y measure is always the accuracy stage's mean_rel_error.
FRONTS = (("transistors", "transistors (generic CMOS)"), ("energy_pj_per_op", "energy per operation (pJ, 45 nm scale)"))
ACCURACY = "mean_rel_error"


def columns(spec: Spec) -> list[str]:
    return ["name", *spec.columns, "status", "message", *measure_columns(spec)]


def rows(spec: Spec, outcome) -> list[dict]:
    """One row per point: its axes (None where one does not apply), status, message and measures."""
    measures = measure_columns(spec)
    out = []
    for i, point in enumerate(outcome.points):
        row = {"name": point.name, **{c: point.values.get(c) for c in spec.columns}}
        values = dict.fromkeys(measures)
        if not point.valid:
            status, messages = "invalid", [point.reason]
        else:
            results = [outcome.results[(i, s)] for s in point.stages]
            for r in results:
                values.update({k: v for k, v in r.get("measures", {}).items() if k in values})
            failed = [r["message"] for r in results if r["status"] == "failed"]
            found = [r["mismatch"] for r in results if r.get("mismatch")]
            refused = [r["message"] for r in results if r["status"] == "invalid"]
            messages = failed + found + refused
            status = "failed" if failed or found else "invalid" if refused else "ok"
        row.update(status=status, message="; ".join(messages), **values)
        out.append(row)
    return out


def exit_status(outcome) -> int:
    """1 when a verify stage found mismatches (it wins), 3 when a tool died, else 0 (SPEC §5)."""
    results = outcome.results.values()
    if any(r.get("mismatch") for r in results):
        return 1
    if any(r["status"] == "failed" for r in results):
        return 3
    return 0


# -- Pareto fronts -------------------------------------------------------------------------------

def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def front_axes(spec: Spec) -> list[tuple[str, str]]:
    """(x measure, label) of each front the spec's stages allow: accuracy needs the accuracy stage."""
    if "accuracy" not in spec.stages:
        return []
    cols = measure_columns(spec)
    axes = [(x, label) for x, label in FRONTS if x in cols]
    axes += [(c, f"{c.split('_')[0]} LUTs (LUT-only)") for c in cols if c.endswith("_luts")]
    return axes


def fronts(table: list[dict], x: str) -> tuple[list[dict], list[dict]]:
    """(candidates, front): the ok points with both measures, and those no other point beats on both
    (lower x and lower error; ties kept), sorted by x."""
    cand = [r for r in table if r["status"] == "ok" and _number(r.get(x)) and _number(r.get(ACCURACY))]
    front = [r for r in cand if not any(o[x] <= r[x] and o[ACCURACY] <= r[ACCURACY]
                                        and (o[x] < r[x] or o[ACCURACY] < r[ACCURACY]) for o in cand)]
    return cand, sorted(front, key=lambda r: (r[x], r[ACCURACY]))


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _shown(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _markdown_table(head, body) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + \
        ["| " + " | ".join(_shown(r.get(c)).replace("|", "\\|") for c in head) + " |" for r in body]


def pareto_markdown(spec: Spec, table: list[dict]) -> str:
    lines = ["# Pareto fronts", ""]
    axes = front_axes(spec)
    if not axes:
        lines.append("No front: they set the accuracy stage's mean_rel_error against transistors (cmos), "
                     "energy or LUTs (fpga); this sweep lacks " +
                     ("the accuracy stage." if "accuracy" not in spec.stages else "cmos, energy and fpga."))
        return "\n".join(lines) + "\n"
    lines += ["Non-dominated points (no other point has both a lower cost and a lower mean relative "
              "error), by increasing cost. Only points with status ok take part.", ""]
    for x, label in axes:
        cand, front = fronts(table, x)
        lines += [f"## mean_rel_error against {x}", "", f"{len(front)} of {len(cand)} points; picture: "
                  f"front_{x}.png", ""]
        lines += _markdown_table(["name", *[c for c in spec.columns if any(r.get(c) is not None for r in front)],
                                  x, ACCURACY], front)
        lines.append("")
    return "\n".join(lines)


def front_png(table: list[dict], x: str, label: str) -> bytes:
    """All ok points in grey, the front highlighted and joined, every front point labelled by name
    (lmul_hw.plotlabels keeps the labels apart)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..plotlabels import place_labels
    cand, front = fronts(table, x)
    fig, ax = plt.subplots(figsize=(8, 5))
    ax.scatter([r[x] for r in cand], [r[ACCURACY] for r in cand], s=18, color="0.65", label="points", zorder=2)
    ax.step([r[x] for r in front], [r[ACCURACY] for r in front], where="post", color="tab:red", lw=1, zorder=3)
    ax.scatter([r[x] for r in front], [r[ACCURACY] for r in front], s=30, color="tab:red", label="front", zorder=4)
    if all(r[ACCURACY] > 0 for r in cand):
        ax.set_yscale("log")
    ax.set_xlabel(label)
    ax.set_ylabel("mean relative error (accuracy stage)")
    ax.set_title(f"Pareto front: accuracy against {x} ({len(front)} of {len(cand)} points)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    ax.margins(x=0.2, y=0.3)
    fig.tight_layout()
    if front:
        place_labels(ax, [r[x] for r in front], [r[ACCURACY] for r in front], [r["name"] for r in front],
                     fontsize=6.5, marker_points=7)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


# -- files ---------------------------------------------------------------------------------------

def _csv(table, cols) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(cols)
    for r in table:
        writer.writerow([_cell(r.get(c)) for c in cols])
    return buf.getvalue()


def _json_value(value):
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _html(spec: Spec, table, cols, pngs, summary: str) -> str:
    esc = html.escape

    def grid(head, body):
        out = ["<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr>"]
        for r in body:
            cls = "" if r.get("status", "ok") == "ok" else f' class="{esc(r["status"])}"'
            out.append(f"<tr{cls}>" + "".join(f"<td>{esc(_shown(r.get(c)))}</td>" for c in head) + "</tr>")
        return "\n".join(out + ["</table>"])

    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>lmul-hw sweep</title><style>",
             "body{font-family:sans-serif;margin:2em} table{border-collapse:collapse;font-size:12px}"
             "td,th{border:1px solid #ccc;padding:2px 6px} tr.failed{background:#fdd} tr.invalid{color:#888}"
             "pre{background:#f4f4f4;padding:1em}",
             "</style></head><body>", f"<h1>lmul-hw sweep: {esc(spec.kind)}</h1>", f"<p>{esc(summary)}</p>"]
    for x, label in front_axes(spec):
        cand, front = fronts(table, x)
        parts += [f"<h2>Pareto front: mean_rel_error against {esc(x)}</h2>",
                  f"<p>{len(front)} of {len(cand)} points are not dominated.</p>"]
        if f"front_{x}.png" in pngs:
            parts.append(f"<img src='front_{esc(x)}.png' alt='front {esc(x)}'>")
        parts.append(grid(["name", x, ACCURACY], front))
    parts += ["<h2>Points</h2>", grid(cols, table), "<h2>Spec</h2>", f"<pre>{html.escape(spec.text, quote=False)}</pre>",
              "</body></html>"]
    return "\n".join(parts) + "\n"


def write(out, spec: Spec, outcome, summary: str) -> list[Path]:
    """Write the sweep's files into a new directory and rename it to ``out`` (replacing an old one only
    then); ValueError if that is impossible."""
    out = Path(out)
    table = rows(spec, outcome)
    cols = columns(spec)
    files = {"points.csv": _csv(table, cols),
             "points.json": json.dumps([{c: _json_value(r.get(c)) for c in cols} for r in table], indent=1) + "\n",
             "pareto.md": pareto_markdown(spec, table)}
    for x, label in front_axes(spec):
        if fronts(table, x)[0]:
            files[f"front_{x}.png"] = front_png(table, x, label)
    files["sweep.html"] = _html(spec, table, cols, files, summary)
    _replace_dir(out, files)
    return [out / name for name in files]


def _replace_dir(out: Path, files: dict) -> None:
    with replaced_dir(out) as tmp:
        for name, data in files.items():
            (tmp / name).write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))


def plan_text(spec: Spec, points) -> str:
    """What --dry-run prints: every point with its axes and its stages (or why it is invalid)."""
    valid = [p for p in points if p.valid]
    lines = [f"{spec.kind} sweep: {len(points)} points ({len(valid)} valid, {len(points) - len(valid)} invalid), "
             f"{sum(len(p.stages) for p in valid)} stage runs; stages: {', '.join(spec.stages)}"]
    width = max((len(p.name) for p in valid), default=0)
    for p in points:
        axes = " ".join(f"{k}={v}" for k, v in p.values.items() if v is not None)
        if not p.valid:
            lines.append(f"  {'(invalid)':<{width}}  {axes}: {p.reason}")
            continue
        skipped = "".join(f"; no {s}: {why}" for s, why in p.skipped.items())
        lines.append(f"  {p.name:<{width}}  {axes}  stages: {', '.join(p.stages) or 'none'}{skipped}")
    return "\n".join(lines)
