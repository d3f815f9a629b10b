"""Lesson 01 playground: deform N(0, I) through x = f(z) = warp(A z) and watch p_x.

Taught in: notebook 01.
"""

from __future__ import annotations

import math

import ipywidgets as W
import torch

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
    viz.show_density(ax_z, pz, grid.bounds, r"$p_z(z)$ y la retícula en $z$")
    viz.draw_lattice(ax_z, lines_z)
    # the moving parts are animated: the Playground blits only them on every update
    img_x = viz.show_density(ax_x, pz, grid.bounds, r"$p_x(x)=p_z(z)\,|\det J_f(z)|^{-1}$", animated=True)
    lat_x = viz.draw_lattice(ax_x, lines_z, animated=True)
    img_det = viz.show_density(ax_det, pz, grid.bounds, r"$|\det J_f(z)|$ (en $z$)", cmap="magma",
                               animated=True)
    fig.tight_layout()

    controls = {
        "angle": W.FloatSlider(0.0, min=-math.pi, max=math.pi, step=0.05, description="ángulo"),
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
        img_x.set_data(px)
        img_x.set_clim(0, px.max())
        img_det.set_data(det)
        img_det.set_clim(det.min(), det.max() + 1e-12)
        mass = px.sum() * grid.cell_area
        return (
            f"<b>Comprobación:</b> ∫p<sub>x</sub> dx ≈ {mass:.3f} en la ventana"
            f"<br>|det J<sub>f</sub>| entre {det.min():.2f} y {det.max():.2f}"
        )

    return Playground(fig, controls, draw)
