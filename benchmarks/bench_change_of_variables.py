"""Lesson 01: update latency of the change-of-variables playground (figure render included)."""

from __future__ import annotations

import numpy as np

from coursekit.widgets import change_of_variables_playground, measure_latency


def run(quick: bool = False) -> str:
    n_updates = 20 if quick else 60
    lines = ["### Lesson 01 playground latency", "",
             "| grid | updates | median (ms) | p95 (ms) |", "|---|---|---|---|"]
    for grid in (100, 200):
        pg = change_of_variables_playground(grid_size=grid)
        settings = [dict(angle=float(a), warp=float(w), shear=float(s))
                    for a, w, s in zip(np.linspace(-3, 3, n_updates), np.linspace(-0.8, 2.4, n_updates),
                                       np.sin(np.arange(n_updates)))]
        lat = measure_latency(pg.update, settings)
        lines.append(f"| {grid}×{grid} | {lat.n} | {lat.median_ms:.1f} | {lat.p95_ms:.1f} |")
    lines += ["", "Target: median ≤ 50 ms per update (compute + blit + PNG encode), 200×200 grid."]
    return "\n".join(lines)
