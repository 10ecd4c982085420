"""The label placer (lmul_hw.plotlabels) and the plots that use it: rendered label boxes overlap
neither each other nor the points."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.transforms import Bbox  # noqa: E402

from lmul_hw import plotlabels  # noqa: E402
from lmul_hw.plotlabels import label_boxes, place_labels  # noqa: E402


def _clashes(ax, xs, ys, texts, marker_points=6.0):
    """(label i, label j) pairs whose boxes intersect, and (label, point) pairs where a label covers a point."""
    boxes = label_boxes(texts)
    half = marker_points * ax.figure.dpi / 72.0 / 2
    points = [ax.transData.transform((x, y)) for x, y in zip(xs, ys)]
    marks = [Bbox.from_extents(cx - half, cy - half, cx + half, cy + half) for cx, cy in points]
    labels = [(i, j) for i in range(len(boxes)) for j in range(i) if boxes[i].overlaps(boxes[j])]
    covered = [(i, j) for i, b in enumerate(boxes) for j, m in enumerate(marks) if b.overlaps(m)]
    return labels, covered


@pytest.mark.parametrize("log", [False, True])
def test_labels_of_clustered_points_do_not_overlap(log):
    rng = np.random.default_rng(7)
    xs = np.r_[rng.uniform(1, 10, 8), [5.0, 5.0, 5.1, 5.05]]
    ys = np.r_[rng.uniform(1, 10, 8), [5.0, 5.0, 5.0, 5.1]]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.scatter(xs, ys, s=25)
    if log:
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.margins(0.25)
    fig.tight_layout()
    texts = place_labels(ax, xs, ys, [f"lmul_bf16_k{i}_c8" for i in range(len(xs))])
    labels, covered = _clashes(ax, xs, ys, texts)
    plt.close(fig)
    assert len(texts) == len(xs)
    assert not labels, f"overlapping labels: {labels}"
    assert not covered, f"labels covering points (label, point): {covered}"


def test_accuracy_vs_area_plot_labels_do_not_overlap(monkeypatch):
    """The flow report's accuracy-vs-area chart (lmul_hw.report) places its labels with the placer."""
    from lmul_hw import report
    from lmul_hw.compare import Row, unit_designs
    rows = [Row(d, {"transistors": 300.0 + 40 * i, "mean_rel_err": 0.02 + 0.001 * (i % 3)})
            for i, d in enumerate(unit_designs())]
    seen = []

    def spy(ax, xs, ys, labels, **options):
        texts = place_labels(ax, xs, ys, labels, **options)
        seen.append((labels, _clashes(ax, xs, ys, texts)))
        return texts

    monkeypatch.setattr(plotlabels, "place_labels", spy)
    charts = report._charts(rows)
    assert "accuracy_vs_area.png" in charts and len(seen) == 1
    labels, (overlaps, covered) = seen[0]
    assert len(labels) == len(rows)
    assert not overlaps and not covered, f"overlaps {overlaps}, covered points {covered}"
