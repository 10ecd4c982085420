"""PNG plots of the accuracy analysis (matplotlib, Agg backend); each is returned as PNG bytes."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..formats import get_format  # noqa: E402

__all__ = ["draw_all"]

_RULE_STYLE = {"paper": ("o-", "paper l(k)"), "min-mean": ("s--", "min-mean c"), "zero-bias": ("^:", "zero-bias c")}


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def _layout(fig):
    """Fixed margins: much cheaper than tight_layout, which renders every figure an extra time."""
    fig.subplots_adjust(left=0.05, right=0.98, bottom=0.07, top=0.92, wspace=0.3, hspace=0.45)


def _grid(report, with_exhaustive=True):
    s = report.settings
    cells = []
    for fmt in s.formats:
        pops = s.populations(fmt) if with_exhaustive else list(s.dists)
        cells.append((fmt, pops))
    ncols = max((len(p) for _, p in cells), default=1)
    return cells, max(ncols, 1)


def _subplots(nrows, ncols, w=4.2, h=3.2):
    fig, axes = plt.subplots(nrows, ncols, figsize=(w * ncols, h * nrows), squeeze=False)
    for ax in axes.flat:
        ax.set_visible(False)
    return fig, axes


def _vs_k(report):
    cells, ncols = _grid(report)
    fig, axes = _subplots(len(cells), ncols)
    for i, (fmt, pops) in enumerate(cells):
        for j, pop in enumerate(pops):
            ax = axes[i][j]
            ax.set_visible(True)
            rows = [r for r in report.rows if r["kind"] == "elementwise" and r["format"] == fmt
                    and r["population"] == pop and r["subset"] == "all"]
            for rule, (style, label) in _RULE_STYLE.items():
                pts = sorted((r["k"], r["mean_abs"]) for r in rows if r["rule"] == rule)
                if pts:
                    ax.plot(*zip(*pts), style, label=f"L-Mul, {label}", ms=4)
            for r in rows:
                if r["mul"] in ("fp8", "rne"):
                    name = r["method"][4:] if r["mul"] == "fp8" else "RNE to M bits"
                    ax.axhline(r["mean_abs"], ls="-." if r["mul"] == "fp8" else ":", lw=1,
                               color="C3" if "e4m3" in name else "C4" if "e5m2" in name else "grey",
                               label=name)
            ax.set_yscale("log")
            ax.set_xticks(sorted({r["k"] for r in rows if r["k"]}))
            ax.set_xlabel("k (mantissa bits kept)")
            ax.set_ylabel("mean |r|")
            ax.set_title(f"{fmt}, {pop}", fontsize=10)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=6)
    fig.suptitle("Element-wise mean relative error")
    _layout(fig)
    return _png(fig)


def _calibration(report, key):
    cells, ncols = _grid(report)
    fig, axes = _subplots(len(cells), ncols)
    for i, (fmt, pops) in enumerate(cells):
        for j, pop in enumerate(pops):
            ax = axes[i][j]
            ax.set_visible(True)
            for cal in report.calibrations:
                if cal.fmt == fmt and cal.population == pop:
                    x = cal.offsets / (1 << cal.k)
                    y = getattr(cal, key)
                    ax.plot(x, y, "-", lw=1, label=f"k={cal.k}")
                    best = cal.min_mean if key == "mean_abs" else cal.zero_bias
                    ax.plot([best / (1 << cal.k)], [cal.at(best)[0 if key == "mean_abs" else 1]], "k.", ms=5)
                    ax.plot([cal.paper / (1 << cal.k)], [cal.at(cal.paper)[0 if key == "mean_abs" else 1]], "rx", ms=5)
            if key == "mean_abs":
                ax.set_yscale("log")
            else:
                ax.axhline(0, color="grey", lw=0.8)
            ax.set_xlabel("offset c / 2^k")
            ax.set_ylabel("mean |r|" if key == "mean_abs" else "bias (mean r)")
            ax.set_title(f"{fmt}, {pop}", fontsize=10)
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=6, ncol=2)
    fig.suptitle("Offset scan: " + ("mean |r|" if key == "mean_abs" else "bias") +
                 " (x: paper's c, dot: " + ("min-mean" if key == "mean_abs" else "zero-bias") + " c)")
    _layout(fig)
    return _png(fig)


def _hist(report):
    cells, ncols = _grid(report)
    cells = [(fmt, pops) for fmt, pops in cells if get_format(fmt).width > 8]   # fp8 errors are a few spikes
    if not cells:
        return None
    fig, axes = _subplots(len(cells), ncols)
    for i, (fmt, pops) in enumerate(cells):
        for j, pop in enumerate(pops):
            ax = axes[i][j]
            ax.set_visible(True)
            for (f, p, mid), r in report.hist.items():
                if f != fmt or p != pop:
                    continue
                k = next((row["k"] for row in report.rows if row["method"] == mid), None)
                if mid.startswith("lmul") and k not in (3, 4, 2):
                    continue
                name = mid[4:] if mid.startswith("fp8") else ("RNE" if mid.startswith("rne") else f"L-Mul k={k}")
                ax.hist(r.clip(-0.2, 0.2), bins=160, range=(-0.2, 0.2), histtype="step", density=True, label=name)
            ax.set_xlabel("signed relative error r (clipped to +-0.2)")
            ax.set_title(f"{fmt}, {pop}", fontsize=10)
            ax.set_yscale("log")
            ax.legend(fontsize=6)
    fig.suptitle("Distribution of the element-wise relative error (paper offsets)")
    _layout(fig)
    return _png(fig)


def _dots(report):
    s = report.settings
    cells, ncols = _grid(report, with_exhaustive=False)
    if not s.dists or not s.dot_lengths:
        return None
    fig, axes = _subplots(len(cells), ncols)
    for i, (fmt, pops) in enumerate(cells):
        for j, pop in enumerate(pops):
            ax = axes[i][j]
            ax.set_visible(True)
            ids = dict.fromkeys(r["method"] for r in report.rows if r["kind"] == "dot" and r["format"] == fmt
                                and r["population"] == pop and r["rule"] in ("paper", None))
            for mid in ids:
                pts = sorted((r["length"], r["median_abs"]) for r in report.rows if r["kind"] == "dot"
                             and r["method"] == mid and r["population"] == pop and r["format"] == fmt)
                row = report.find(kind="dot", method=mid, population=pop, format=fmt)
                name = _name(row)
                ax.plot(*zip(*pts), "o-" if row["mul"] == "lmul" else "s--", ms=3, lw=1, label=name)
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("dot-product length K")
            ax.set_ylabel("median |r|")
            ax.set_title(f"{fmt}, {pop}", fontsize=10)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=6, ncol=2)
    fig.suptitle("Dot products with exact accumulation: median relative error")
    _layout(fig)
    return _png(fig)


def _name(row):
    if row["mul"] == "lmul":
        return f"L-Mul k={row['k']}"
    return row["method"][4:] if row["mul"] == "fp8" else "RNE to M bits"


def _table7(rows):
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ks = [r["k"] for r in rows]
    pk = [r["k"] for r in rows if r["paper_f1"] is not None]
    ax.plot(pk, [r["paper_f1"] for r in rows if r["paper_f1"] is not None], "ko-", label="paper Table 7 |f1|")
    ax.plot(ks, [r["mean_abs_kbit"] for r in rows], "s-", label="ours, k-bit mantissas")
    ax.plot(ks, [r["mean_abs_src"] for r in rows], "^-", label="ours, bf16 mantissas truncated to k")
    ax.plot(ks, [r["mean_abs_eq1_kbit"] for r in rows], "v:", label="paper eq. 1, k-bit mantissas")
    meas = [(r["k"], r["measured_uniform"]) for r in rows if r.get("measured_uniform") is not None]
    if meas:
        ax.plot(*zip(*meas), "r+", ms=10, label="measured, uniform distribution")
    ax.set_yscale("log")
    ax.set_xlabel("k")
    ax.set_ylabel("E|r| (uniform mantissas)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("Expected L-Mul error: paper Table 7 vs SPEC §2", fontsize=10)
    fig.tight_layout()
    return _png(fig)


def draw_all(report, table7_rows) -> dict[str, bytes]:
    out = {"accuracy_vs_k.png": _vs_k(report),
           "accuracy_calibration_mean.png": _calibration(report, "mean_abs"),
           "accuracy_calibration_bias.png": _calibration(report, "bias"),
           "accuracy_histograms.png": _hist(report),
           "accuracy_dot.png": _dots(report)}
    out = {name: png for name, png in out.items() if png is not None}
    if table7_rows:
        out["accuracy_table7.png"] = _table7(table7_rows)
    return out
