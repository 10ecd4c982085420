"""Output of the accuracy analysis: terminal tables, CSV and JSON files, PNG plots (all files are
written atomically)."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np

from ..files import atomic_write
from .operands import DIST_TEXT, EXHAUSTIVE
from .paper import ABOUT_AS_ACCURATE, TABLE7_TEXT, table7_reading

__all__ = ["render_text", "write_files", "DEFINITIONS", "RESULT_COLUMNS"]

DEFINITIONS = {
    "r": "signed relative error (approx - exact) / exact of a product or a dot product; the reference is "
         "the exact result of the original operands (exact products, exactly summed)",
    "mean_abs": "mean |r| (the mean relative error)",
    "mse": "mean r^2: the mean squared RELATIVE error (sqrt(mse) is the RMS relative error)",
    "bias": "mean r: the mean signed relative error (> 0 overestimates magnitudes on average)",
    "max_abs": "largest |r|", "median_abs": "median |r|",
    "n_flushed": "results 0 for a nonzero exact value: counted with |r| = 1 (100 % error)",
    "n_excluded": "NaN or infinite results: excluded from the statistics",
    "n_skipped": "pairs (dot products) whose exact value is 0 or not finite: no relative error, skipped",
    "mean_abs_normalised": "dot products only: mean of |dot - exact| / sum_i |a_i b_i|",
    "offset": "L-Mul offset c in units of the last of the k mantissa bits (SPEC §2): paper c = 2^(k - l(k))",
    "rule": "paper: the paper's l(k); min-mean: c minimising mean |r| on an independent calibration sample "
            "(the exhaustive pairs themselves for 'exhaustive'); zero-bias: c whose bias is closest to 0",
}
RESULT_COLUMNS = ["kind", "format", "population", "subset", "method", "label", "mul", "k", "offset", "rule",
                  "length", "n", "mean_abs", "mse", "bias", "max_abs", "median_abs", "n_flushed", "n_excluded",
                  "n_skipped", "mean_abs_normalised"]


def _pct(x, signed=False, width=7):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-".rjust(width)
    return f"{100 * x:+.2f}%".rjust(width) if signed else f"{100 * x:.2f}%".rjust(width)


def _sci(x, width=8):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-".rjust(width)
    return f"{x:.2e}".rjust(width)


def _short(row):
    if row["mul"] == "lmul":
        return f"L-Mul k={row['k']} c={row['offset']}" + ("" if row["rule"] == "paper" else f" {row['rule']}")
    if row["mul"] == "fp8":
        return f"{row['method'][4:]} operands, exact product"
    return "exact product, RNE to M bits"


def _population_block(report, fmt, pop, rule_filter=("paper", None)):
    s = report.settings
    rows = [r for r in report.rows if r["kind"] == "elementwise" and r["format"] == fmt and r["population"] == pop
            and r["subset"] == "all" and r["rule"] in rule_filter]
    paper_c = {r["k"]: r["offset"] for r in rows if r["rule"] == "paper"}
    rows = [r for r in rows if r["rule"] in ("paper", None) or r["offset"] != paper_c.get(r["k"])]
    if not rows:
        return []
    n = rows[0]["n"] + rows[0]["n_excluded"] + rows[0]["n_skipped"]
    lengths = list(s.dot_lengths)
    head = f"{fmt} operands, {pop} ({DIST_TEXT[pop]}): element-wise over {n:,} pairs"
    if rows[0]["n_skipped"]:
        head += f" ({n - rows[0]['n_skipped']:,} with a nonzero exact product)"
    if pop != EXHAUSTIVE and lengths:
        head += "; dot products: median |r| (" + ", ".join(f"{s.dots(K):,} x K={K}" for K in lengths) + ")"
    out = [head]
    dots_head = "".join(f"{'K=' + str(K):>8}" for K in lengths) if pop != EXHAUSTIVE else \
        "   normal pairs: mean|r|    bias"
    out.append(f"  {'method':<30}{'mean|r|':>8}{'MSE':>10}{'bias':>9}{'max|r|':>9}{'flushed':>9} |{dots_head}")
    for r in rows:
        line = (f"  {_short(r):<30}{_pct(r['mean_abs'], width=8)}{_sci(r['mse'], 10)}{_pct(r['bias'], True, 9)}"
                f"{_pct(r['max_abs'], width=9)}{r['n_flushed']:>9,} |")
        if pop == EXHAUSTIVE:
            nr = report.find(format=fmt, population=pop, method=r["method"], subset="normal")
            line += f"{_pct(nr['mean_abs'], width=24)}{_pct(nr['bias'], True, 8)}"
        else:
            for K in lengths:
                d = report.find(kind="dot", format=fmt, population=pop, method=r["method"], length=K)
                line += _pct(d["median_abs"] if d else None, width=8)
        out.append(line)
    return out


def _calibration_block(report):
    longest = max(report.settings.dot_lengths) if report.settings.dot_lengths else None
    out = ["Offset calibration (k where a calibrated offset differs from the paper's): c in 0..2^k chosen on "
           "calibration pairs",
           "with normal operands, independent of the test pairs (the exhaustive pairs calibrate themselves); mean|r| "
           "and bias",
           "measured on the test pairs" + (f"; dot: median |r| of K={longest} dot products, paper / min-mean / "
                                           "zero-bias c" if longest else ""),
           f"  {'format':<7}{'population':<11}{'k':>2} | {'paper c':>7}{'mean|r|':>8}{'bias':>8} | "
           f"{'min-mean c':>10}{'mean|r|':>8}{'bias':>8} | {'zero-bias c':>11}{'mean|r|':>8}{'bias':>8}"
           + (" | dot K=" + str(longest) if longest else "")]
    same = {}
    for cal in report.calibrations:
        if cal.min_mean == cal.paper and cal.zero_bias == cal.paper:
            same.setdefault((cal.fmt, cal.population), []).append(cal.k)
            continue
        cells, dots = [], []
        for rule in ("paper", "min-mean", "zero-bias"):
            c = {"paper": cal.paper, "min-mean": cal.min_mean, "zero-bias": cal.zero_bias}[rule]
            r = report.find(format=cal.fmt, population=cal.population, k=cal.k, offset=c)
            cells.append((c, r))
            if longest and cal.population != EXHAUSTIVE:
                d = report.find(kind="dot", format=cal.fmt, population=cal.population, k=cal.k, offset=c,
                                length=longest)
                dots.append(_pct(d["median_abs"] if d else None, width=6).strip())
        line = f"  {cal.fmt:<7}{cal.population:<11}{cal.k:>2}"
        for (c, r), w in zip(cells, (7, 10, 11)):
            line += f" | {c:>{w}}{_pct(r and r['mean_abs'], width=8)}{_pct(r and r['bias'], True, 8)}"
        out.append(line + (" | " + " / ".join(dots) if dots else ""))
    if same:
        text = "; ".join(f"{f} {p} k={','.join(map(str, ks))}" for (f, p), ks in same.items())
        out += _wrap("The paper's c is both the min-mean and the zero-bias offset for: " + text, "  ")
    return [line for line in out if line]


def _wrap(text, indent, width=110):
    import textwrap
    return textwrap.wrap(text, width=width, initial_indent=indent, subsequent_indent=indent + "  ")


def _table7_block(rows):
    out = ["Paper Table 7 beside SPEC §2: expected |f1| = E|r| for uniform mantissas, exact by enumeration",
           f"  {'k':>2}{'l(k)':>5}{'c':>3} | {'paper |f1|':>10}{'x 2^k':>7} | {'ours k-bit':>10}{'bias':>8} | "
           f"{'ours bf16':>9}{'bias':>8}{'measured':>9} | {'eq.1 k-bit':>10}{'|xy-2^-l|':>10}"]
    for r in rows:
        paper = f"{r['paper_f1']:.3f}" if r["paper_f1"] is not None else "-"
        scaled = f"{r['paper_f1'] * 2 ** r['k']:.2f}" if r["paper_f1"] is not None else "-"
        meas = r.get("measured_uniform")
        out.append(f"  {r['k']:>2}{r['l']:>5}{r['offset']:>3} | {paper:>10}{scaled:>7} | {r['mean_abs_kbit']:>10.4f}"
                   f"{r['bias_kbit']:>+8.4f} | {r['mean_abs_src']:>9.4f}{r['bias_src']:>+8.4f}"
                   f"{(f'{meas:.4f}' if meas is not None else '-'):>9} | {r['mean_abs_eq1_kbit']:>10.4f}"
                   f"{r['dropped_term_kbit']:>10.4f}")
    out += ["  " + line for line in TABLE7_TEXT.splitlines()]
    out += _wrap(table7_reading(rows), "  ")
    return out


def _claims_block(claims):
    if not claims:
        return []
    out = ["Paper claims (Luo & Sun §2.3, Appendix A), bf16 operands, element-wise mean |r|:"]
    for text in dict.fromkeys(c["claim"] for c in claims):
        group = [c for c in claims if c["claim"] == text]
        crit = (f"ratio <= {ABOUT_AS_ACCURATE}" if group[0]["limit"] != 1.0 else "ratio < 1")
        held = sum(c["holds"] for c in group)
        verdict = "HOLDS" if held == len(group) else ("DOES NOT HOLD" if held == 0 else "HOLDS PARTLY")
        out.append(f"  {text} ({crit}): {verdict} here ({held} of {len(group)} distributions)")
        for c in group:
            extra = ""
            if "dot_length" in c:
                extra = (f"; dot products K={c['dot_length']}, median |r|: {_pct(c['dot_lmul_median']).strip()}"
                         f" vs {_pct(c['dot_fp8_median']).strip()}")
            verdict = "holds" if c["holds"] else "fails"
            out.append(f"    {c['dist']:<9} {verdict:<6} L-Mul {_pct(c['lmul_mean_abs']).strip()} vs {c['fp8']} "
                       f"{_pct(c['fp8_mean_abs']).strip()} (ratio {c['ratio']:.2f}, MSE ratio {c['mse_ratio']:.2f})"
                       f"{extra}")
    return out


def render_text(report, table7_rows, claims) -> str:
    s = report.settings
    lines = [f"lmul-hw accuracy: seed {s.seed}, {s.samples:,} pairs per distribution, formats "
             f"{', '.join(s.formats)}, distributions {', '.join(s.dists) or '-'}",
             "r = (approx - exact) / exact; MSE = mean r^2 (squared relative error); bias = mean r; results "
             "flushed to 0 count as |r| = 1.",
             "L-Mul products are formed exactly in the tensor core's product format (SPEC §4); fp8 = operands "
             "rounded RNE (saturating) to fp8, exact product.", ""]
    for fmt in s.formats:
        for pop in s.populations(fmt):
            rules = ("paper", "min-mean", "zero-bias", None) if pop == EXHAUSTIVE else ("paper", None)
            lines += _population_block(report, fmt, pop, rules) + [""]
    lines += _calibration_block(report) + [""]
    if "bf16" in s.formats:
        lines += _table7_block(table7_rows) + [""]
    lines += _claims_block(claims)
    lines.append(f"(analysis took {report.seconds:.1f} s)")
    return "\n".join(lines) + "\n"


# -- files ---------------------------------------------------------------------------------------------

def _clean(x):
    if isinstance(x, float):
        return None if math.isnan(x) or math.isinf(x) else x
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return _clean(float(x))
    return x


def _csv(rows, columns) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for row in rows:
        w.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    return buf.getvalue()


def write_files(report, table7_rows, claims, text: str, out_dir, plots: bool = True, progress=None) -> list[Path]:
    """Write CSV, JSON, the text report and (optionally) PNG plots into ``out_dir``; returns the paths."""
    from .. import __version__
    out = Path(out_dir)
    written = []
    cal_rows = []
    for cal in report.calibrations:
        for c, m, b in zip(cal.offsets.tolist(), cal.mean_abs.tolist(), cal.bias.tolist()):
            cal_rows.append({"format": cal.fmt, "population": cal.population, "k": cal.k, "n": cal.n, "offset": c,
                             "mean_abs": m, "bias": b, "paper": int(c == cal.paper),
                             "min_mean": int(c == cal.min_mean), "zero_bias": int(c == cal.zero_bias)})
    doc = {"tool": "lmul-hw accuracy", "version": __version__, "settings": report.settings.to_dict(),
           "seconds": report.seconds, "definitions": DEFINITIONS, "results": report.rows,
           "calibration": [c.to_dict() for c in report.calibrations], "table7": table7_rows, "claims": claims}
    files = {
        "accuracy.json": json.dumps(_clean(doc), indent=1, allow_nan=False) + "\n",
        "accuracy_results.csv": _csv(report.rows, RESULT_COLUMNS),
        "accuracy_calibration.csv": _csv(cal_rows, ["format", "population", "k", "n", "offset", "mean_abs", "bias",
                                                    "paper", "min_mean", "zero_bias"]),
        "accuracy_table7.csv": _csv(table7_rows, ["k", "l", "offset", "paper_f1", "mean_abs_kbit", "bias_kbit",
                                                  "mean_abs_src", "bias_src", "measured_uniform",
                                                  "mean_abs_eq1_kbit", "dropped_term_kbit"]),
        "accuracy.txt": text,
    }
    for name, data in files.items():
        written.append(atomic_write(out / name, data))
    if plots:
        if progress:
            progress("drawing plots")
        from .plots import draw_all
        for name, data in draw_all(report, table7_rows).items():
            written.append(atomic_write(out / name, data))
    return written
