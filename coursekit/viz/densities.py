"""Pictures of flows: densities on grids, deformed lattices, samples, |det J_f|.

Plot titles and labels are Spanish (the student reads them); everything else is English.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import Tensor

Bounds = tuple[float, float, float, float]


def as_bounds(bounds: float | Sequence[float]) -> Bounds:
    """``4`` → ``(-4, 4, -4, 4)``; a 4-tuple ``(xmin, xmax, ymin, ymax)`` passes through."""
    if isinstance(bounds, (int, float)):
        return (-float(bounds), float(bounds), -float(bounds), float(bounds))
    b = tuple(float(v) for v in bounds)
    if len(b) != 4 or b[0] >= b[1] or b[2] >= b[3]:
        raise ValueError(f"bounds must be a number or (xmin, xmax, ymin, ymax), got {bounds!r}")
    return b  # type: ignore[return-value]


@dataclass
class Grid:
    """A regular ``n × n`` grid over ``bounds``; ``points`` is ``(n*n, 2)``, row-major in y."""

    bounds: Bounds
    n: int
    points: Tensor

    @property
    def cell_area(self) -> float:
        x0, x1, y0, y1 = self.bounds
        return (x1 - x0) / (self.n - 1) * (y1 - y0) / (self.n - 1)

    def image(self, values: Tensor) -> np.ndarray:
        """Values at ``points`` as an ``(n, n)`` array for ``imshow(origin="lower")``."""
        return values.detach().cpu().reshape(self.n, self.n).numpy()


def make_grid(bounds: float | Sequence[float] = 4.0, n: int = 200, dtype=None, device=None) -> Grid:
    b = as_bounds(bounds)
    xs = torch.linspace(b[0], b[1], n, dtype=dtype, device=device)
    ys = torch.linspace(b[2], b[3], n, dtype=dtype, device=device)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return Grid(b, n, torch.stack([xx.reshape(-1), yy.reshape(-1)], 1))


@torch.no_grad()
def density_on_grid(log_prob: Callable[[Tensor], Tensor], grid: Grid) -> np.ndarray:
    """``exp(log_prob)`` on the grid as an ``(n, n)`` image."""
    return grid.image(log_prob(grid.points).exp())


def show_density(ax, image: np.ndarray, bounds: Bounds, title: str | None = None, cmap: str = "viridis", **kw):
    """``imshow`` with the right orientation; returns the artist (update it with ``set_data``)."""
    art = ax.imshow(image, origin="lower", extent=bounds, cmap=cmap, aspect="equal", **kw)
    ax.set_xlim(bounds[0], bounds[1])
    ax.set_ylim(bounds[2], bounds[3])
    if title:
        ax.set_title(title)
    return art


def lattice(bounds: float | Sequence[float] = 3.0, n_lines: int = 13, n_points: int = 100) -> Tensor:
    """A square lattice as ``(2 * n_lines, n_points, 2)`` polylines (vertical then horizontal)."""
    x0, x1, y0, y1 = as_bounds(bounds)
    t = torch.linspace(0, 1, n_points)
    lines = []
    for c in torch.linspace(x0, x1, n_lines):
        lines.append(torch.stack([c.expand(n_points), y0 + (y1 - y0) * t], 1))
    for c in torch.linspace(y0, y1, n_lines):
        lines.append(torch.stack([x0 + (x1 - x0) * t, c.expand(n_points)], 1))
    return torch.stack(lines)


@torch.no_grad()
def push_lattice(f: Callable[[Tensor], tuple[Tensor, Tensor]], lines: Tensor) -> Tensor:
    """Where the lattice goes under the bijection ``f`` (same shape as ``lines``)."""
    x, _ = f(lines.reshape(-1, 2))
    return x.reshape(lines.shape)


def draw_lattice(ax, lines: Tensor, color: str = "white", lw: float = 0.6, alpha: float = 0.8, **kw) -> list:
    """Draw polylines; returns the ``Line2D`` list (update with ``set_data``)."""
    return [ax.plot(*ln.T.numpy(), color=color, lw=lw, alpha=alpha, **kw)[0] for ln in lines.cpu()]


def update_lattice(artists: list, lines: Tensor) -> None:
    for art, ln in zip(artists, lines.cpu()):
        art.set_data(ln[:, 0].numpy(), ln[:, 1].numpy())


def scatter(ax, x: Tensor, title: str | None = None, s: float = 2.0, alpha: float = 0.5, **kw):
    pts = x.detach().cpu().numpy()
    art = ax.scatter(pts[:, 0], pts[:, 1], s=s, alpha=alpha, **kw)
    if title:
        ax.set_title(title)
    ax.set_aspect("equal")
    return art


@torch.no_grad()
def abs_det_on_grid(f: Callable[[Tensor], tuple[Tensor, Tensor]], grid: Grid) -> np.ndarray:
    """``|det J_f(z)|`` at every grid point ``z`` (how much f stretches area there)."""
    _, logdet = f(grid.points)
    return grid.image(logdet.exp())


def new_figure(ncols: int = 1, nrows: int = 1, size: float = 3.2, **kw):
    """A figure with ``nrows × ncols`` square-ish panels."""
    return plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False, **kw)
