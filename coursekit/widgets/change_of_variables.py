"""Lesson 01 playground: deform N(0, I) through x = f(z) = warp(A z) and watch p_x.

Taught in: notebook 01.
"""

from __future__ import annotations

import math

import ipywidgets as W
import numpy as np
import torch
from matplotlib.colors import LogNorm

from .. import viz
from ..flows import Compose, Flow, Linear, StandardNormal, TanhWarp
from .core import Playground


def linear_warp_map(angle: float = 0.0, scale_x: float = 1.0, scale_y: float = 1.0,
                    shear: float = 0.0, warp: float = 0.0) -> Compose:
    """``f(z) = warp(R(angle) · S · z)``: rotation, scales, shear, then ``z + a tanh(z)``."""
    c, s = math.cos(angle), math.sin(angle)
    A = torch.tensor([[c, -s], [s, c]]) @ torch.tensor([[scale_x, shear], [0.0, scale_y]])
    return Compose([Linear(A), TanhWarp(2, a=warp, b=1.0, tol=1e-6)])


def change_of_variables_playground(grid_size: int = 200, bounds: float = 4.0) -> Playground:
    """Sliders for the map's parameters; panels: p_z with its lattice, p_x = p_z·|det J_f|⁻¹
    with the deformed lattice, and |det J_f(z)|. The status line shows ∫p_x on the grid."""
    grid = viz.make_grid(bounds, grid_size)
    base = StandardNormal(2)
    lines_z = viz.lattice(2.5, n_lines=11, n_points=80)
    fig, axes = viz.new_figure(3, size=3.3)
    ax_z, ax_x, ax_det = axes[0]
    pz = viz.density_on_grid(base.log_prob, grid)
    pz_max = float(pz.max())
    scale = dict(vmin=0.0, vmax=1.5 * pz_max)  # one fixed colour scale for p_z and p_x
    viz.show_density(ax_z, pz, grid.bounds, r"$p_z(z)$ y la retícula en $z$", **scale)
    viz.draw_lattice(ax_z, lines_z)
    # the moving parts are animated: the Playground blits only them on every update
    # the colour scale of p_z, fixed: where |det J_f| > 1 the density visibly dilutes, where it
    # is < 1 it concentrates (and saturates beyond 1.5 × the peak of p_z)
    img_x = viz.show_density(ax_x, pz, grid.bounds, r"$p_x(x)=p_z(z)\,|\det J_f(z)|^{-1}$", animated=True,
                             **scale)
    lat_x = viz.draw_lattice(ax_x, lines_z, animated=True)
    # |det J_f| on a fixed logarithmic scale (1 in the middle): < 1 concentrates, > 1 dilutes
    img_det = viz.show_density(ax_det, np.ones_like(pz), grid.bounds, r"$|\det J_f(z)|$ (en $z$)", cmap="PuOr_r",
                               animated=True, norm=LogNorm(vmin=1 / 8, vmax=8))
    ticks = [1 / 8, 1 / 4, 1 / 2, 1, 2, 4, 8]
    bar = fig.colorbar(img_det, ax=ax_det, fraction=0.046, pad=0.04, ticks=ticks)
    bar.ax.set_yticklabels(["1/8", "1/4", "1/2", "1", "2", "4", "8"])
    bar.ax.minorticks_off()
    fig.tight_layout()

    controls = {
        # ±3.15 rather than ±π: the grid min + k·step must hold 0 (values set from code stay on it)
        "angle": W.FloatSlider(0.0, min=-3.15, max=3.15, step=0.05, description="ángulo"),
        "scale_x": W.FloatSlider(1.0, min=0.3, max=2.0, step=0.05, description="escala x"),
        "scale_y": W.FloatSlider(1.0, min=0.3, max=2.0, step=0.05, description="escala y"),
        "shear": W.FloatSlider(0.0, min=-1.5, max=1.5, step=0.05, description="cizalla"),
        "warp": W.FloatSlider(0.0, min=-0.9, max=2.5, step=0.05, description="deformación a"),
    }

    def draw(p: dict) -> str:
        f = linear_warp_map(**p)
        with torch.no_grad():
            px = viz.density_on_grid(Flow(base, f).log_prob, grid)
            det = viz.abs_det_on_grid(f, grid)
            viz.update_lattice(lat_x, viz.push_lattice(f, lines_z))
        img_x.set_data(px)  # fixed colour scale: the dilution stays visible
        img_det.set_data(det)
        mass = px.sum() * grid.cell_area
        return (
            f"<b>Comprobación:</b> ∫p<sub>x</sub> dx ≈ {mass:.3f} en la ventana"
            f"<br>|det J<sub>f</sub>| entre {det.min():.2f} y {det.max():.2f}"
            f"<br>máx p<sub>x</sub> = {px.max():.3f}; escala de color fija para p<sub>z</sub> y p<sub>x</sub>"
            f" (de 0 a {1.5 * pz_max:.3f}: más allá, satura)"
        )

    return Playground(fig, controls, draw)
