"""Inline SVG plots for report.html. Geometry is computed here and drawn by the template, so every
label goes through Jinja2's autoescape and the page needs no plotting library or external file."""
from __future__ import annotations

from typing import Any

import numpy as np

WIDTH, HEIGHT, MARGIN = 320, 120, 28


def latency_histogram(samples_ms: list[float], bins: int = 40) -> dict[str, Any]:
    """Bars of a latency histogram in SVG units, with the p50 and p99 marks."""
    samples = np.asarray(samples_ms)
    counts, edges = np.histogram(samples, bins=bins)
    scale_x = _scale(edges[0], edges[-1], MARGIN, WIDTH - 4)
    tallest = counts.max() or 1
    plot_height = HEIGHT - MARGIN
    bars = [{"x": scale_x(low), "width": max(scale_x(high) - scale_x(low) - 0.5, 0.5),
             "y": plot_height - count / tallest * (plot_height - 6), "height": count / tallest * (plot_height - 6)}
            for count, low, high in zip(counts, edges[:-1], edges[1:], strict=True)]
    p50, p99 = np.percentile(samples, [50, 99])
    return {"bars": bars, "low_ms": float(edges[0]), "high_ms": float(edges[-1]), "n": int(samples.size),
            "marks": [{"label": "p50", "x": scale_x(p50)}, {"label": "p99", "x": scale_x(p99)}],
            "width": WIDTH, "height": HEIGHT, "axis_y": plot_height}


def accuracy_vs_latency(points: list[dict[str, Any]]) -> dict[str, Any]:
    """Points (label, p50_ms, accuracy) placed on latency (x) against top-1 (y) axes."""
    latencies = [p["p50_ms"] for p in points]
    accuracies = [p["accuracy"] * 100 for p in points]
    scale_x = _scale(0, max(latencies) * 1.1, MARGIN, WIDTH - 100)  # room for the labels
    low, high = min(accuracies), max(accuracies)
    scale_y = _scale(low - 1, high + 1, HEIGHT - MARGIN, 8)
    placed = [{"label": p["label"], "x": scale_x(p["p50_ms"]), "y": scale_y(p["accuracy"] * 100),
               "p50_ms": p["p50_ms"], "accuracy": p["accuracy"] * 100} for p in points]
    _keep_labels_apart(placed)
    return {"points": placed, "max_ms": max(latencies) * 1.1, "low_pct": low - 1, "high_pct": high + 1,
            "width": WIDTH, "height": HEIGHT, "axis_y": HEIGHT - MARGIN}


def _keep_labels_apart(points: list[dict[str, Any]], char_width: float = 5.5, line: float = 11) -> None:
    """Give each point a label_y clear of the labels placed before it and of every other point: the
    precisions of one model often sit close together. A label is text at (x + 6, label_y), 10 px high."""
    def box(point: dict[str, Any], label_y: float) -> tuple[float, float, float, float]:
        return point["x"] + 6, label_y - 9, point["x"] + 6 + char_width * len(point["label"]), label_y + 2

    def overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
        return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]

    dots = [(p["x"] - 4, p["y"] - 4, p["x"] + 4, p["y"] + 4) for p in points]
    labels: list[tuple[float, float, float, float]] = []
    for point in sorted(points, key=lambda p: p["x"]):
        label_y = point["y"] + 3
        while any(overlap(box(point, label_y), other) for other in labels + dots):
            label_y += line
        point["label_y"] = label_y
        labels.append(box(point, label_y))


def _scale(low: float, high: float, start: float, end: float):
    span = (high - low) or 1.0
    return lambda value: round(start + (value - low) / span * (end - start), 1)
