"""Lesson 07 playground: the probability path p_t, the conditional paths and the marginal field.

Data: a mixture of eight Gaussians, so p_t(x) and u_t(x) are exact (``MixtureTarget``).
Left: p_t (or p_t(x | x₁)) with its field as arrows. Right: straight conditional paths
x₀ → x₁ (independent or minibatch-OT pairs) and the curved trajectories of the marginal
ODE dx/dt = u_t(x), with their positions at time t. Taught in: notebook 07.
"""

from __future__ import annotations

from contextlib import contextmanager

import ipywidgets as W
import numpy as np
import torch
from matplotlib.collections import LineCollection

from .. import viz
from ..matching.couplings import ot_coupling
from ..matching.marginal import MixtureTarget, eight_gaussians_target
from ..matching.paths import GaussianPath
from ..matching.sampling import euler_sample
from .core import Playground


@contextmanager
def single_thread():
    """Run small tensor ops on one thread: on a busy 2-core machine, torch's thread pool
    makes an (8100 × 8) logsumexp ~100× slower than a single thread."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def flow_matching_playground(grid_size: int = 90, n_arrows: int = 15, n_pairs: int = 60,
                             bounds: float = 4.0, sigma_min: float = 0.1, seed: int = 0) -> Playground:
    """Sliders: t, marginal / conditional field, which x₁, independent / OT pairs."""
    # Lipman's Gaussian path; σ_min = 0.1 keeps p_t(x | x₁) visible on the grid at t = 1
    target, path = eight_gaussians_target(), GaussianPath(sigma_min=sigma_min)
    grid = viz.make_grid(bounds, grid_size, dtype=torch.float64)
    arrows = viz.make_grid(bounds * 0.9, n_arrows, dtype=torch.float64).points
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(n_pairs, 2, generator=g, dtype=torch.float64)
    x1 = target.sample(n_pairs, g)
    pairs = {False: (x0, x1), True: ot_coupling(x0, x1)}
    n_steps = 100
    with torch.no_grad(), single_thread():  # trajectories of the exact marginal ODE, computed once
        _, traj = euler_sample(lambda t, x: target.marginal_field(path, t, x), x0, n_steps,
                               return_trajectory=True)
    traj_np = traj.numpy()

    fig, axes = viz.new_figure(2, size=3.8)
    ax_p, ax_c = axes[0]
    img = viz.show_density(ax_p, np.zeros((grid_size, grid_size)), grid.bounds, "", animated=True)
    quiv = ax_p.quiver(arrows[:, 0], arrows[:, 1], np.zeros(len(arrows)), np.zeros(len(arrows)),
                       color="white", angles="xy", scale_units="xy", scale=2.5, width=0.005, animated=True)
    title_p = ax_p.set_title("", animated=True, fontsize=9)
    ax_c.set(xlim=(-bounds, bounds), ylim=(-bounds, bounds), aspect="equal",
             title="caminos x₀ → x₁ (gris), trayectorias de uₜ (azul)")
    ax_c.title.set_fontsize(9)
    chords = LineCollection([], colors="0.6", linewidths=0.6, animated=True)
    ax_c.add_collection(chords)
    ax_c.add_collection(LineCollection(list(traj_np.transpose(1, 0, 2)), colors="tab:blue", linewidths=0.6,
                                       alpha=0.5))
    dots_c = ax_c.scatter([], [], s=10, c="tab:red", zorder=3, animated=True, label=r"$x_t$ condicional")
    dots_m = ax_c.scatter([], [], s=10, c="tab:blue", zorder=3, animated=True, label=r"$x_t$ marginal")
    ax_c.legend(loc="lower right", fontsize=8)
    fig.tight_layout()

    controls = {
        "t": W.FloatSlider(0.5, min=0.0, max=1.0, step=0.02, description="t"),
        "campo": W.ToggleButtons(options=["marginal", "condicional"], value="marginal", description="campo"),
        "k": W.IntSlider(0, min=0, max=7, description="x₁ = centro"),
        "ot": W.Checkbox(False, description="parejas OT (minibatch)"),
    }

    def enable_k(_change=None) -> None:  # x₁ only matters for the conditional field
        controls["k"].disabled = controls["campo"].value == "marginal"

    controls["campo"].observe(enable_k, names="value")
    enable_k()

    def draw(p: dict) -> str:
        with single_thread():
            return _draw(p)

    def _draw(p: dict) -> str:
        t = p["t"]
        if p["campo"] == "marginal":
            logp = target.log_prob_t(path, t, grid.points)
            u = target.marginal_field(path, t, arrows)
            title_p.set_text(f"pₜ(x) y uₜ(x) (marginal), t = {p['t']:.2f}")
        else:
            point = MixtureTarget(target.means[p["k"]: p["k"] + 1])
            logp = point.log_prob_t(path, t, grid.points)
            u = path.conditional_field(t, arrows, target.means[p["k"]].expand_as(arrows))
            title_p.set_text(f"pₜ(x | x₁) y uₜ(x | x₁), t = {p['t']:.2f}")
        dens = grid.image(logp.exp())
        img.set_data(dens)
        img.set_clim(0, dens.max())
        # near t = 1 the conditional field grows like 1/σ_t: cap the drawn length at 1.2
        u = u * (1.2 / u.norm(dim=1, keepdim=True).clamp(min=1.2))
        quiv.set_UVC(u[:, 0].numpy(), u[:, 1].numpy())
        a, b = pairs[p["ot"]]
        chords.set_segments(list(torch.stack([a, b], 1).numpy()))
        dots_c.set_offsets(path.interpolate(p["t"], a, b).numpy())
        dots_m.set_offsets(traj_np[round(p["t"] * n_steps)])
        cost = float((a - b).pow(2).sum(1).mean())
        # the FM/CFM gap at this t: E‖u_t(x|x₁) − u_t(x)‖² (θ-free), by the exact posterior
        xs = target.sample_t(path, torch.full((1000,), t, dtype=torch.float64), torch.Generator().manual_seed(1))
        gap = float(target.conditional_variance(path, t, xs).mean())
        mass = float(dens.sum() * grid.cell_area)
        return (f"<b>Comprobación:</b> ∫p<sub>t</sub> ≈ {mass:.3f} en la ventana"
                f"<br>coste medio ‖x₀ − x₁‖² de las parejas: {cost:.2f}"
                f"<br>L<sub>CFM</sub> − L<sub>FM</sub> en este t (no depende de θ): {gap:.3f}")

    return Playground(fig, controls, draw)


__all__ = ["flow_matching_playground"]
