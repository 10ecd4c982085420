"""Text labels for scatter points that overlap neither each other nor the points.

matplotlib's ``annotate`` puts every label at the same offset from its point, so labels of nearby
points pile up.  :func:`place_labels` tries, for each point in turn, offsets at growing distances in
eight directions and keeps the first whose rendered box stays inside the axes and clear of every
placed label and every point; a label placed away from its point gets a thin leader line.  Positions
are in display coordinates, so lay the figure out (``tight_layout``) BEFORE placing the labels and
do not change the layout or the axes limits afterwards."""

from __future__ import annotations

from matplotlib.text import Text
from matplotlib.transforms import Bbox

__all__ = ["place_labels", "label_boxes"]

_DIRECTIONS = ((1, 1), (1, -1), (-1, 1), (-1, -1), (1, 0), (-1, 0), (0, 1), (0, -1))
_RADII = (6, 12, 20, 30, 42, 56, 75)          # offsets tried, in points


def _overlap(a: Bbox, b: Bbox) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > 0 and h > 0 else 0.0


def place_labels(ax, xs, ys, labels, *, fontsize=7, marker_points=6.0, pad_points=1.5):
    """Add ``labels[i]`` near the point (xs[i], ys[i]) of ``ax`` (data coordinates) and return the text
    artists.  ``marker_points``: the size of the points' markers (points), kept clear of every label.
    When no candidate is free, the one with the least overlap is taken (never silently dropped)."""
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    px = fig.dpi / 72.0
    pad = pad_points * px
    frame = ax.get_window_extent(renderer)
    centres = [ax.transData.transform((x, y)) for x, y in zip(xs, ys)]
    half = marker_points * px / 2 + pad
    obstacles = [Bbox.from_extents(cx - half, cy - half, cx + half, cy + half) for cx, cy in centres]
    texts = []
    for (x, y), (cx, cy), label in zip(zip(xs, ys), centres, labels):
        best = None
        for radius in _RADII:
            for dx, dy in _DIRECTIONS:
                ha = "left" if dx > 0 else "right" if dx < 0 else "center"
                va = "bottom" if dy > 0 else "top" if dy < 0 else "center"
                text = ax.annotate(label, (x, y), xytext=(dx * radius, dy * radius), textcoords="offset points",
                                   ha=ha, va=va, fontsize=fontsize)
                box = text.get_window_extent(renderer).padded(pad)
                outside = (max(frame.x0 - box.x0, 0) + max(box.x1 - frame.x1, 0)
                           + max(frame.y0 - box.y0, 0) + max(box.y1 - frame.y1, 0)) * box.height
                cost = outside + sum(_overlap(box, o) for o in obstacles)
                if best is None or cost < best[0]:
                    if best is not None:
                        best[1].remove()
                    best = (cost, text, box, radius)
                else:
                    text.remove()
                if cost == 0:
                    break
            if best[0] == 0:
                break
        _, text, box, radius = best
        if radius > _RADII[0]:
            text.remove()
            text = ax.annotate(label, (x, y), xytext=text.xyann, textcoords="offset points", ha=text.get_ha(),
                               va=text.get_va(), fontsize=fontsize,
                               arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "0.5", "shrinkA": 0, "shrinkB": 3})
        obstacles.append(box)
        texts.append(text)
    return texts


def label_boxes(texts, pad_points=0.0):
    """The rendered boxes (display coordinates) of text artists, without their leader lines, e.g. to check
    that none overlap."""
    fig = texts[0].figure
    renderer = fig.canvas.get_renderer()
    boxes = []
    for t in texts:
        t.update_positions(renderer)             # an annotation's text is placed when drawn
        boxes.append(Text.get_window_extent(t, renderer).padded(pad_points * fig.dpi / 72.0))
    return boxes
