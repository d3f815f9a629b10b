"""Lesson 08 panel interactivo: move a point z = (z₁, z₂) in the VAE's 2-D latent space and see
what the decoder makes of it, with the point marked on the scatter of encoded images.

Taught in: notebook 08.
"""

from __future__ import annotations

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np

from .core import Playground


def _decode(model, z: np.ndarray) -> np.ndarray:
    return np.asarray(model.decode(np.asarray(z, dtype="float32")[None], apply_sigmoid=True))[0, ..., 0]


def vae_latent_playground(model, z_points=None, labels=None, limit: float = 3.0, step: float = 0.1) -> Playground:
    """Two sliders z₁, z₂ in [−limit, limit] → the decoder's pixel probabilities p(x|z) (right), and
    the point on the latent plane (left) over ``z_points`` (e.g. the means μ(x) of held-out images,
    coloured by ``labels``). ``model`` is a :class:`coursekit.tf.CVAE` with ``latent_dim == 2``.

    The status line shows z and ‖z‖ (how far out in the prior N(0, I) the point is)."""
    if getattr(model, "latent_dim", None) != 2:
        raise ValueError("vae_latent_playground needs a VAE with latent_dim == 2 (a point per slider)")
    if not (isinstance(limit, (int, float)) and limit > 0 and isinstance(step, (int, float)) and 0 < step < limit):
        raise ValueError(f"need limit > 0 and 0 < step < limit, got limit={limit!r}, step={step!r}")
    fig, (ax_z, ax_x) = plt.subplots(1, 2, figsize=(7.5, 3.6), gridspec_kw={"width_ratios": [1.15, 1]})
    if z_points is not None:
        z_points = np.asarray(z_points)
        if z_points.ndim != 2 or z_points.shape[1] != 2:
            raise ValueError(f"z_points must have shape (N, 2), got {z_points.shape}")
        colours = None if labels is None else np.asarray(labels)
        if colours is not None and len(colours) != len(z_points):
            raise ValueError(f"labels has {len(colours)} entries for {len(z_points)} points")
        ax_z.scatter(z_points[:, 0], z_points[:, 1], c=colours, cmap="tab10" if colours is not None else None,
                     s=3, alpha=0.5, vmin=-0.5 if colours is not None else None,
                     vmax=9.5 if colours is not None else None)
    ax_z.set(xlim=(-limit, limit), ylim=(-limit, limit), xlabel="$z_1$", ylabel="$z_2$")
    ax_z.set_title("espacio latente (μ de las imágenes)", fontsize=11)
    ax_z.set_aspect("equal")
    marker, = ax_z.plot([0.0], [0.0], marker="X", ms=13, color="k", mec="w", mew=1.5, animated=True)
    image = ax_x.imshow(_decode(model, np.zeros(2)), cmap="gray", vmin=0, vmax=1, animated=True)
    ax_x.set_title("decodificador: p(x | z)", fontsize=11)
    ax_x.axis("off")
    fig.tight_layout()

    def slider(label):
        return W.FloatSlider(0.0, min=-limit, max=limit, step=step, description=label, continuous_update=True,
                             readout_format=".1f")

    controls = {"z1": slider("z₁"), "z2": slider("z₂")}

    def draw(p: dict) -> str:
        z = np.array([p["z1"], p["z2"]], dtype="float32")
        marker.set_data([z[0]], [z[1]])
        image.set_data(_decode(model, z))
        return f"z = ({z[0]:.1f}, {z[1]:.1f}), ‖z‖ = {np.linalg.norm(z):.2f}"

    return Playground(fig, controls, draw, dpi=90)


__all__ = ["vae_latent_playground"]
