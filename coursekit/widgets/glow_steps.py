"""Lesson 03 playgrounds: walk a trained 2-D Glow layer by layer, and sample MNIST at
temperature T. Plus the architecture figure drawn from a ``Glow`` model itself.

Taught in: notebook 03.
"""

from __future__ import annotations

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import Tensor

from .. import viz
from ..core.checks import positive_int
from ..flows.base import Bijection, Compose, Flow, StandardNormal
from ..flows.dequantize import sample_at_temperature
from ..flows.glow import Glow
from ..viz.images import tile_images
from .core import Playground


def flat_layers(flow: Compose) -> list[Bijection]:
    """The individual layers of a (possibly nested) ``Compose``, in the order ``x = f(z)``."""
    out: list[Bijection] = []
    for b in flow.bijections:
        out.extend(flat_layers(b) if isinstance(b, Compose) else [b])
    return out


def layer_name(layer: Bijection) -> str:
    name = type(layer).__name__
    if name == "InvConv1x1":
        return "conv 1×1 (LU)" if layer.lu else "conv 1×1"
    if name == "Permutation":
        return f"permutación ({layer.kind})"
    return {"AffineCoupling": "acoplamiento afín", "ActNorm": "actnorm"}.get(name, name)


@torch.no_grad()
def layer_states(flow: Compose, z: Tensor, x: Tensor, grid: viz.Grid) -> list[dict]:
    """For k = 0..L: samples ``h_k = f_k∘…∘f_1(z)``, data pulled back ``f_{k+1}⁻¹∘…∘f_L⁻¹(x)``
    and the density of ``h_k`` on ``grid``, ``p_k(h) = p_z(g_k⁻¹(h))·|det J_{g_k⁻¹}(h)|``."""
    layers = flat_layers(flow)
    base = StandardNormal(2).to(z)
    pushed = [z]
    for f in layers:
        pushed.append(f(pushed[-1])[0])
    pulled = [x]
    for f in reversed(layers):
        pulled.append(f.inverse(pulled[-1])[0])
    pulled = pulled[::-1]  # pulled[k]: data after undoing layers L..k+1
    states = []
    for k in range(len(layers) + 1):
        h = grid.points.to(z)
        logdet = torch.zeros(h.shape[0], dtype=z.dtype, device=z.device)
        for f in reversed(layers[:k]):
            h, ld = f.inverse(h)
            logdet = logdet + ld
        dens = grid.image((base.log_prob(h) + logdet).exp())
        states.append({"samples": pushed[k].cpu().numpy(), "data": pulled[k].cpu().numpy(), "density": dens,
                       "name": "z ~ N(0, I)" if k == 0 else f"capa {k}: {layer_name(layers[k - 1])}"})
    return states


def glow_steps_playground(flow: Compose, data: Tensor, n_points: int = 600, bounds: float = 4.0,
                          grid_size: int = 90, seed: int = 0) -> Playground:
    """Slider ``capa`` k = 0 … L: samples of ``N(0, I)`` pushed through the first k layers
    (latent → data), data points pulled back through the last L − k (data → latent) and
    the density of the intermediate variable. Every state is computed once, up front."""
    if not isinstance(flow, Compose):
        raise TypeError(f"flow must be a Compose of 2-D layers, got {type(flow).__name__}")
    gen = torch.Generator().manual_seed(seed)
    anchor = next(flow.parameters())
    z = torch.randn(n_points, 2, generator=gen, dtype=anchor.dtype).to(anchor.device)
    x = data[torch.randperm(len(data), generator=gen)[:n_points]].to(anchor)
    grid = viz.make_grid(bounds, grid_size, dtype=anchor.dtype)
    states = layer_states(flow, z, x, grid)
    b = viz.as_bounds(bounds)
    fig, axes = viz.new_figure(2, size=3.6)
    ax_pts, ax_den = axes[0]
    for ax in (ax_pts, ax_den):
        ax.set_xlim(b[0], b[1])
        ax.set_ylim(b[2], b[3])
        ax.set_aspect("equal")
    ax_pts.set_title("muestras (azul) y datos (naranja)")
    sc_z = ax_pts.scatter(*states[0]["samples"].T, s=3, alpha=0.5, color="tab:blue", animated=True)
    sc_x = ax_pts.scatter(*states[0]["data"].T, s=3, alpha=0.5, color="tab:orange", animated=True)
    img = viz.show_density(ax_den, states[0]["density"], b, "densidad de la variable intermedia", animated=True)
    label = ax_pts.text(0.02, 0.97, "", transform=ax_pts.transAxes, va="top", fontsize=9, animated=True,
                        bbox=dict(facecolor="white", alpha=0.8, lw=0))
    fig.tight_layout()
    controls = {"layer": W.IntSlider(0, min=0, max=len(states) - 1, description="capa")}

    def draw(p: dict) -> str:
        s = states[p["layer"]]
        sc_z.set_offsets(s["samples"])
        sc_x.set_offsets(s["data"])
        img.set_data(s["density"])
        img.set_clim(0, float(s["density"].max()))
        label.set_text(s["name"])
        mass = float(s["density"].sum() * grid.cell_area)
        return (f"<b>{s['name']}</b><br>k = 0: espacio latente; k = {len(states) - 1}: espacio de datos"
                f"<br>Comprobación: ∫p<sub>k</sub> ≈ {mass:.3f} en la ventana")

    return Playground(fig, controls, draw)


def temperature_playground(flow: Flow, n: int = 36, seed: int = 0, n_temperatures: int = 21) -> Playground:
    """Slider T ∈ [0, 1]: the same ε, samples ``x = f(T·ε)``. The ``n_temperatures`` temperatures are
    sampled once, up front, so moving the slider only swaps images."""
    temps = np.linspace(0.0, 1.0, positive_int(n_temperatures, "n_temperatures"))
    ncols = -(-n // int(np.sqrt(n)))  # about square: √n rows
    mosaics = []
    for t in temps:
        gen = torch.Generator().manual_seed(seed)  # same ε for every T
        mosaics.append(tile_images(sample_at_temperature(flow, n, float(t), generator=gen), ncols))
    fig, ax = plt.subplots(figsize=(4.2, 4.4))
    ax.set_axis_off()
    ax.set_title("muestras x = f(T·ε) con el mismo ε")
    img = ax.imshow(mosaics[-1], cmap="gray", vmin=0, vmax=1, animated=True)
    fig.tight_layout()
    controls = {"temperature": W.SelectionSlider(options=[round(float(t), 2) for t in temps], value=1.0,
                                                 description="T")}

    def draw(p: dict) -> str:
        i = int(np.argmin(np.abs(temps - p["temperature"])))
        img.set_data(mosaics[i])
        return f"T = {temps[i]:.2f}: z = T·ε, desviación típica del prior ×{temps[i]:.2f}"

    return Playground(fig, controls, draw)


def draw_architecture(model: Glow, ax=None):
    """The multi-scale architecture as boxes, read from ``model.blocks()`` (data at the top)."""
    if not isinstance(model, Glow):
        raise TypeError(f"model must be a Glow, got {type(model).__name__}")
    rows = model.blocks()
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 0.55 * len(rows) + 0.5))
    ax.set_axis_off()
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.5, len(rows) - 0.5)
    colors = {"x": "#cfe8ff", "sq": "#ffe7b3", "st": "#d7f5d0", "sp": "#f9d0d0", "z": "#e6d9ff"}
    for i, (name, shape) in enumerate(rows):
        y = len(rows) - 1 - i
        key = ("x" if i == 0 else "z" if i == len(rows) - 1 else "sq" if name.startswith("squeeze")
               else "sp" if name.startswith("split") else "st")
        ax.text(0.38, y, name, ha="center", va="center", fontsize=9,
                bbox=dict(boxstyle="round", facecolor=colors.get(key, "#eeeeee"), lw=0.8))
        ax.text(0.86, y, "×".join(map(str, shape)), ha="center", va="center", fontsize=9, family="monospace")
        if i:
            ax.annotate("", (0.38, y + 0.28), (0.38, y + 0.72), arrowprops=dict(arrowstyle="->", lw=0.8))
    ax.set_title("Glow multiescala (de los datos al latente)")
    return ax


__all__ = ["draw_architecture", "flat_layers", "glow_steps_playground", "layer_states", "temperature_playground"]
