"""Lesson 04 playground: the fixed-point inverse z ← x − g(z) of an i-ResNet block, live.

The block is the lesson's worst case made visual
(:func:`coursekit.lessons.iresnet.rotation_block`): ``W̃₁ = λ R(θ)``, ``W̃₂ = λ I`` and a
bias that keeps the ELU in its linear zone, so ``g(z) = λ² R(θ) z`` near the data and
``Lip(g) = λ²`` exactly. The iterates spiral into ``z*`` when ``λ² < 1`` (Banach) and
spiral out when ``λ² > 1``.

Taught in: notebook 04.
"""

from __future__ import annotations

import math

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
import torch

from ..lessons.iresnet import rotation_block, set_rotation
from .core import Playground


def fixed_point_playground(n_iter: int = 40, x_target=(1.5, 1.0), max_iter: int = 400) -> Playground:
    """Sliders λ and θ; panels: the iterates z_k in the plane, and |z_k − z*| against the
    Banach bound λ^{2k}. The status line reports the iterations to 1e-6 (or divergence);
    the error axis runs to that iteration (at least ``n_iter``; ``n_iter`` when it diverges)."""
    x = torch.tensor([x_target], dtype=torch.float64)
    block = rotation_block(0.9, 1.0).double()
    fig, (ax_path, ax_err) = plt.subplots(1, 2, figsize=(8.4, 3.6))
    ax_path.set(xlim=(-3, 3), ylim=(-3, 3), aspect="equal", title="iteraciones $z_k$ hacia $z^*$",
                xlabel="$z_1$", ylabel="$z_2$")
    ax_path.plot(*x[0].numpy(), "k+", ms=10, label="$z_0 = x$")
    path_line, = ax_path.plot([], [], "o-", ms=3, lw=1, color="C0", animated=True)
    star, = ax_path.plot([], [], "r*", ms=12, animated=True, label="$z^*$")
    ax_path.legend(loc="lower left", fontsize=8)
    ax_err.set(yscale="log", ylim=(1e-12, 1e4), xlim=(0, n_iter), xlabel="iteración k",
               title="error $|z_k - z^*|$ y cota $\\lambda^{2k}|z_0 - z^*|$")
    err_line, = ax_err.plot([], [], "o-", ms=3, color="C0", animated=True)
    bound_line, = ax_err.plot([], [], "k:", animated=True)
    fig.tight_layout()

    controls = {
        "lam": W.FloatSlider(0.9, min=0.3, max=1.15, step=0.01, description="λ"),
        "angle": W.FloatSlider(1.0, min=0.0, max=math.pi, step=0.05, description="giro θ"),
    }

    state = {"pg": None, "n_shown": n_iter}

    def draw(p: dict) -> str:
        block.lam = float(p["lam"])
        set_rotation(block, p["angle"])
        _, info = block.solve(x, tol=1e-6, max_iter=max_iter)
        n_shown = max(n_iter, info.iterations) if info.converged else n_iter
        if n_shown != state["n_shown"]:  # the error axis runs to the convergence iteration
            ax_err.set_xlim(0, n_shown)
            state["n_shown"] = n_shown
            if state["pg"] is not None:
                state["pg"].redraw_background()
        ks = np.arange(n_shown + 1)
        lip = block.lam**2
        c, s = math.cos(p["angle"]), math.sin(p["angle"])
        # z* of the linear regime: (I + λ² R) z* = x + (bias terms cancel by construction)
        z_star = torch.linalg.solve(torch.eye(2, dtype=x.dtype) + lip * torch.tensor([[c, -s], [s, c]],
                                    dtype=x.dtype), x[0])
        z, pts = x.clone(), [x[0].numpy()]
        with torch.no_grad():
            for _ in range(n_shown):
                z = (x - block.g(z)).clamp(-1e6, 1e6)
                pts.append(z[0].numpy())
        pts = np.array(pts)
        errs = np.linalg.norm(pts - z_star.numpy(), axis=1)
        path_line.set_data(pts[:, 0], pts[:, 1])
        star.set_data([z_star[0].item()], [z_star[1].item()])
        err_line.set_data(ks, np.maximum(errs, 1e-300))
        bound_line.set_data(ks, errs[0] * lip**ks)
        if info.converged:
            verdict = f"converge en <b>{info.iterations}</b> iteraciones (tol 1e-6)"
        elif lip < 1:
            verdict = (f"<b style='color:#c00'>no llega a tol 1e-6 en {max_iter} iteraciones</b>:"
                       " Lip(g) &lt; 1, converge, pero muy despacio")
        else:
            verdict = "<b style='color:#c00'>no converge</b>: Lip(g) ≥ 1, no es una contracción"
        return f"Lip(g) = λ² = <b>{lip:.3f}</b><br>{verdict}"

    state["pg"] = pg = Playground(fig, controls, draw)
    return pg


__all__ = ["fixed_point_playground"]
