"""Lesson 02 playground: N(0, I) and a lattice pushed through 1–8 planar or radial layers.

Sliders edit the selected layer (u, w, b for planar; z₀, α, β for radial). The toggle
switches between the invertible parameterization (û, β ≥ -α) and the raw parameters:
with raw ``wᵀu < -1`` (or ``β < -α``) ``det J_f`` turns negative in a band, the lattice
folds over itself and the change-of-variables formula, evaluated with a single preimage,
no longer accounts for the mass that f(z) really puts in the window.

Taught in: notebook 02.
"""

from __future__ import annotations

import contextlib

import ipywidgets as W
import numpy as np
import torch
from matplotlib.colors import TwoSlopeNorm

from .. import viz
from ..core.checks import one_of
from ..flows.base import Compose, StandardNormal
from ..flows.planar import Planar
from ..flows.radial import Radial
from .core import Playground

MAX_LAYERS = 8

# starting values of the 8 layers of each kind (the student edits them one at a time)
PLANAR_START = [
    {"u1": 1.2, "u2": 0.0, "w1": 2.0, "w2": 0.0, "b": 0.0},
    {"u1": 0.0, "u2": 1.0, "w1": 0.5, "w2": 2.0, "b": 0.5},
    {"u1": -0.8, "u2": 0.8, "w1": 1.5, "w2": 1.5, "b": -1.0},
    {"u1": 0.6, "u2": -0.6, "w1": -1.0, "w2": 2.0, "b": 1.0},
    {"u1": 1.0, "u2": 1.0, "w1": 1.0, "w2": -1.0, "b": 0.0},
    {"u1": -1.0, "u2": 0.0, "w1": 0.0, "w2": 2.0, "b": -0.5},
    {"u1": 0.5, "u2": 1.0, "w1": 2.0, "w2": 1.0, "b": 1.5},
    {"u1": 0.0, "u2": -1.0, "w1": -2.0, "w2": 0.5, "b": 0.0},
]
RADIAL_START = [
    {"z01": 0.0, "z02": 0.0, "alpha": 0.5, "beta": 1.0},
    {"z01": 1.5, "z02": 0.5, "alpha": 0.3, "beta": -0.25},
    {"z01": -1.5, "z02": -1.0, "alpha": 1.0, "beta": 1.5},
    {"z01": 0.5, "z02": 1.5, "alpha": 0.5, "beta": -0.4},
    {"z01": -1.0, "z02": 1.0, "alpha": 0.8, "beta": 0.8},
    {"z01": 1.0, "z02": -1.5, "alpha": 0.4, "beta": 0.6},
    {"z01": 0.0, "z02": -0.5, "alpha": 1.5, "beta": -1.0},
    {"z01": 2.0, "z02": 2.0, "alpha": 0.6, "beta": 1.0},
]
PLANAR_KEYS = ("u1", "u2", "w1", "w2", "b")
RADIAL_KEYS = ("z01", "z02", "alpha", "beta")


def build_stack(kind: str, specs: list[dict], constrain: bool, tol: float = 4e-3) -> Compose:
    """The stack of planar/radial layers described by ``specs`` (for drawing: ``tol`` of the
    planar inverse a tenth of a pixel of the 200 × 200 grid over [-4, 4]²)."""
    one_of(kind, ("planar", "radial"), "kind")
    layers = []
    for s in specs:
        if kind == "planar":
            w = [s["w1"], s["w2"]] if (s["w1"], s["w2"]) != (0.0, 0.0) else [1e-3, 0.0]  # w = 0 is not a plane
            layers.append(Planar(2, u=[s["u1"], s["u2"]], w=w, b=s["b"], constrain=constrain, tol=tol))
        else:
            beta = s["beta"] if not constrain else max(s["beta"], -s["alpha"] + 1e-3)
            layers.append(Radial(2, z0=[s["z01"], s["z02"]], alpha=s["alpha"], beta=beta, constrain=constrain))
    return Compose(layers).float()  # drawing in float32 whatever the notebook's default dtype


@torch.no_grad()
def signed_det(stack: Compose, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(f(z), det J_f(z))`` with the det's sign: the product of each layer's signed det along the path."""
    det = torch.ones(z.shape[0], dtype=z.dtype, device=z.device)
    for layer in stack.bijections:
        det = det * layer.jacobian_det(z)
        z, _ = layer(z)
    return z, det


def _layer_status(layer, kind: str, k: int) -> str:
    if kind == "planar":
        with torch.no_grad():
            raw, hat = float(layer.w @ layer.u), float(layer.w @ layer.u_hat)
        used = hat if layer.constrain else raw
        ok = "✔" if used >= -1 else "✘ (&lt; −1: se pliega)"
        return (f"<b>Capa {k} (planar)</b>: w<sup>T</sup>u = {raw:.2f} (crudo), w<sup>T</sup>û = {hat:.2f};"
                f" la capa usa {used:.2f} {ok}")
    with torch.no_grad():
        alpha, beta = float(layer.alpha), float(layer.beta)
    ok = "✔" if beta >= -alpha else "✘ (β &lt; −α: se pliega)"
    return f"<b>Capa {k} (radial)</b>: α = {alpha:.2f}, β = {beta:.2f}, −α = {-alpha:.2f} {ok}"


def planar_radial_playground(grid_size: int = 200, bounds: float = 4.0) -> Playground:
    """Panels: p_z with the lattice; p_x by the formula with the pushed lattice; signed det J_f(z).

    ``playground.checks`` holds the last update's ``mass_formula`` (∫p_x by the formula on the
    window), ``mass_true`` (mass of p_z whose image f(z) lands in the window) and ``min_det``.

    ``playground.update(capas=4, u1=-2.0, ...)`` moves sliders from code (what the notebook
    and ``measure_latency`` do).
    """
    grid = viz.make_grid(bounds, grid_size, dtype=torch.float32)
    base = StandardNormal(2)
    lines_z = viz.lattice(2.5, n_lines=11, n_points=60).float()
    fig, axes = viz.new_figure(3, size=3.3)
    ax_z, ax_x, ax_det = axes[0]
    with torch.no_grad():
        pz_t = base.log_prob(grid.points).exp()
    pz = grid.image(pz_t)
    viz.show_density(ax_z, pz, grid.bounds, r"$p_z(z)$ y la retícula en $z$")
    viz.draw_lattice(ax_z, lines_z)
    img_x = viz.show_density(ax_x, pz, grid.bounds, r"$p_z(f^{-1}(x))\,|\det J_f|^{-1}$ y $f$(retícula)",
                             animated=True, interpolation="nearest")
    lat_x = viz.draw_lattice(ax_x, lines_z, animated=True)
    img_det = viz.show_density(ax_det, pz, grid.bounds, r"$\det J_f(z)$ (rojo: $<0$, pliegue)", cmap="RdBu",
                               animated=True, interpolation="nearest",
                               norm=TwoSlopeNorm(vmin=-1.0, vcenter=0.0, vmax=3.0))
    fig.colorbar(img_det, ax=ax_det, fraction=0.046, pad=0.04)
    fig.tight_layout()

    slider = dict(continuous_update=True, readout_format=".2f")
    controls = {  # selectors first: update() applies overrides in this order
        "tipo": W.ToggleButtons(options=[("planar", "planar"), ("radial", "radial")], value="planar",
                                description="tipo de capa"),
        "capas": W.IntSlider(2, min=1, max=MAX_LAYERS, description="nº de capas K"),
        "capa": W.IntSlider(1, min=1, max=MAX_LAYERS, description="capa editada"),
        "invertible": W.ToggleButtons(options=[("û, β ≥ −α (invertible)", True), ("u, β crudos", False)],
                                      value=True, description="parámetros"),
        "u1": W.FloatSlider(0.0, min=-4, max=4, step=0.1, description="u₁", **slider),
        "u2": W.FloatSlider(0.0, min=-4, max=4, step=0.1, description="u₂", **slider),
        "w1": W.FloatSlider(0.0, min=-4, max=4, step=0.1, description="w₁", **slider),
        "w2": W.FloatSlider(0.0, min=-4, max=4, step=0.1, description="w₂", **slider),
        "b": W.FloatSlider(0.0, min=-4, max=4, step=0.1, description="b", **slider),
        "z01": W.FloatSlider(0.0, min=-3, max=3, step=0.1, description="z₀ (1)", **slider),
        "z02": W.FloatSlider(0.0, min=-3, max=3, step=0.1, description="z₀ (2)", **slider),
        "alpha": W.FloatSlider(0.5, min=0.05, max=3, step=0.05, description="α", **slider),
        "beta": W.FloatSlider(0.0, min=-3, max=5, step=0.05, description="β", **slider),
    }
    specs = {"planar": [dict(s) for s in PLANAR_START], "radial": [dict(s) for s in RADIAL_START]}
    state: dict = {"playground": None, "loading": False}
    checks: dict = {}  # the last update's numbers, for notebooks and tests (playground.checks)
    window = torch.tensor(grid.bounds)
    # the edited layer, marked on the figure: its name in the corner of p_x, and for planar
    # layers the line wᵀz + b = 0 (where the layer acts most), for radial ones the centre z₀
    mark_text = ax_x.text(0.03, 0.97, "", transform=ax_x.transAxes, va="top", fontsize=9, animated=True,
                          bbox=dict(facecolor="white", alpha=0.85, lw=0))
    mark_line, = ax_z.plot([], [], color="tab:orange", lw=2, animated=True)
    mark_dot, = ax_z.plot([], [], "o", color="tab:orange", ms=8, mfc="none", mew=2, animated=True)

    def selected() -> tuple[str, int]:
        kind, n_layers = controls["tipo"].value, controls["capas"].value
        return kind, min(controls["capa"].value, n_layers) - 1

    def load_layer(_change=None) -> None:
        """A selector moved: show the selected layer's values (muted: no redraw per slider)."""
        pg = state["playground"]
        state["loading"] = True
        try:
            with pg.muted() if pg is not None else contextlib.nullcontext():
                if controls["capa"].value > controls["capas"].value:
                    controls["capa"].value = controls["capas"].value
                kind, k = selected()
                keys = PLANAR_KEYS if kind == "planar" else RADIAL_KEYS
                for name, value in specs[kind][k].items():
                    controls[name].value = value
                for name in PLANAR_KEYS + RADIAL_KEYS:
                    controls[name].layout.display = None if name in keys else "none"
        finally:
            state["loading"] = False

    def store_value(change) -> None:
        """A layer slider moved: the selected layer keeps its new value."""
        if state["loading"]:
            return
        kind, k = selected()
        name = next(n for n, c in controls.items() if c is change["owner"])
        if name in specs[kind][k]:
            specs[kind][k][name] = float(change["new"])

    # registered before the Playground's own observer: the sliders reload before the redraw
    for name in ("tipo", "capas", "capa"):
        controls[name].observe(load_layer, names="value")
    for name in PLANAR_KEYS + RADIAL_KEYS:
        controls[name].observe(store_value, names="value")

    def draw(p: dict) -> str:
        kind, n_layers = p["tipo"], p["capas"]
        k = min(p["capa"], n_layers) - 1
        keys = PLANAR_KEYS if kind == "planar" else RADIAL_KEYS
        layers = [dict(s) for s in specs[kind][:n_layers]]
        layers[k] = {name: float(p[name]) for name in keys}  # the sliders' values (draw moves nothing)
        stack = build_stack(kind, layers, constrain=p["invertible"])
        with torch.no_grad():
            z, logdet_inv = stack.inverse(grid.points)  # the formula: one preimage per x
            px = torch.nan_to_num((base.log_prob(z) + logdet_inv).exp(), nan=0.0, posinf=0.0)
            x_of_grid, det = signed_det(stack, grid.points)  # where the mass of p_z really goes
            viz.update_lattice(lat_x, viz.push_lattice(stack, lines_z))
            # the edited layer acts on h_{k-1} = f_{k-1}∘…∘f_1(z); drawn in z when k = 1
            s = layers[k]
        if kind == "planar":
            w = np.array([s["w1"], s["w2"]])
            if np.linalg.norm(w) > 1e-9:  # wᵀz + b = 0
                t = np.linspace(-10, 10, 2)
                z0 = -s["b"] * w / (w @ w)
                d = np.array([-w[1], w[0]]) / np.linalg.norm(w)
                mark_line.set_data(z0[0] + t * d[0], z0[1] + t * d[1])
            else:
                mark_line.set_data([], [])
            mark_dot.set_data([], [])
        else:
            mark_line.set_data([], [])
            mark_dot.set_data([s["z01"]], [s["z02"]])
        where = "en z" if k == 0 else f"en la entrada de la capa {k + 1}"
        mark_text.set_text(f"capa editada: {k + 1} de {n_layers} ({kind})")
        inside = ((x_of_grid[:, 0] >= window[0]) & (x_of_grid[:, 0] <= window[1])
                  & (x_of_grid[:, 1] >= window[2]) & (x_of_grid[:, 1] <= window[3]))
        mass_true = float((pz_t * inside).sum()) * grid.cell_area
        mass_formula = float(px.sum()) * grid.cell_area
        px_img = grid.image(px)
        img_x.set_data(px_img)
        img_x.set_clim(0, max(float(np.quantile(px_img, 0.995)), 1e-6))
        img_det.set_data(grid.image(det))
        min_det = float(det.min())
        checks.update(mass_formula=mass_formula, mass_true=mass_true, min_det=min_det)
        fold = (f"<span style='color:#b00'>mín det J<sub>f</sub> = {min_det:.2f} &lt; 0: el plano se pliega;"
                " varias z caen en la misma x y la fórmula con una sola f⁻¹(x) ya no cuenta bien la masa</span>"
                if min_det < 0 else f"mín det J<sub>f</sub> = {min_det:.2f} &gt; 0: f es invertible")
        shape = "recta naranja: w<sup>T</sup>h + b = 0" if kind == "planar" else "círculo naranja: z₀"
        return (f"{_layer_status(stack.bijections[k], kind, k + 1)}<br>"
                f"<small>En el panel de p<sub>z</sub>, {shape} de la capa editada ({where}).</small><br>{fold}<br>"
                f"<b>Comprobación:</b> ∫p<sub>x</sub> dx por la fórmula ≈ {mass_formula:.3f};"
                f" masa de f(z) dentro de la ventana ≈ {mass_true:.3f}")

    load_layer()
    pg = Playground(fig, controls, draw, status_lines=8, memory=specs)
    pg.checks = checks
    state["playground"] = pg
    return pg


__all__ = ["PLANAR_START", "RADIAL_START", "build_stack", "planar_radial_playground", "signed_det"]
