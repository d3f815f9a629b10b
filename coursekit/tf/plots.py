"""Pictures for lesson 08: reconstructions, the 2-d latent space, the decoded latent grid
(the course's ``plot_latent_images``) and the GAN's progress frames as a GIF (imageio).

Titles and labels are Spanish (the student reads them). Taught in: notebook 08.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np


def _as_images(x) -> np.ndarray:
    x = np.asarray(x, dtype="float32")
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 3:
        raise ValueError(f"expected images (N, H, W) or (N, H, W, 1), got shape {x.shape}")
    return x


def plot_reconstructions(originals, reconstructions, n: int = 10,
                         title: str = "Originales y reconstrucciones"):
    """Top row: originals; bottom row: the model's reconstructions (values in [0, 1])."""
    a, b = _as_images(originals)[:n], _as_images(reconstructions)[:n]
    if a.shape != b.shape:
        raise ValueError(f"originals {a.shape} and reconstructions {b.shape} differ in shape")
    fig, axes = plt.subplots(2, len(a), figsize=(1.3 * len(a), 2.9), squeeze=False)
    for i in range(len(a)):
        for row, imgs in enumerate((a, b)):
            axes[row, i].imshow(imgs[i], cmap="gray", vmin=0, vmax=1)
            axes[row, i].axis("off")
    axes[0, 0].set_title("original", fontsize=9, loc="left")
    axes[1, 0].set_title("reconstrucción", fontsize=9, loc="left")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_latent_space(z, labels, title: str = "Espacio latente (media de q(z|x))"):
    """Scatter of 2-d latent codes coloured by the digit's label."""
    z = np.asarray(z)
    if z.ndim != 2 or z.shape[1] != 2:
        raise ValueError(f"plot_latent_space needs 2-d codes (N, 2), got shape {z.shape}")
    fig, ax = plt.subplots(figsize=(5.6, 4.8))
    art = ax.scatter(z[:, 0], z[:, 1], c=np.asarray(labels), cmap="tab10", s=4, alpha=0.7,
                     vmin=-0.5, vmax=9.5)  # one colour per digit, ticks centred
    fig.colorbar(art, ax=ax, ticks=range(10), label="dígito")
    ax.set(xlabel="$z_1$", ylabel="$z_2$", title=title)
    return fig


def latent_grid(model, n: int = 20, digit_size: int = 28, lo: float = 0.05, hi: float = 0.95):
    """Decode the points (Φ⁻¹(u_i), Φ⁻¹(u_j)) for u on a regular grid in [lo, hi]: the
    quantiles of N(0, 1) from TFP, so equal areas of prior mass get equal room.
    Returns ``(image, grid_x, grid_y)``; one batched decode instead of n² calls."""
    import tensorflow_probability as tfp

    if getattr(model, "latent_dim", None) != 2:
        raise ValueError("latent_grid needs a model with latent_dim == 2")
    norm = tfp.distributions.Normal(0.0, 1.0)
    grid_x = norm.quantile(np.linspace(lo, hi, n).astype("float32")).numpy()
    grid_y = norm.quantile(np.linspace(lo, hi, n).astype("float32")).numpy()
    # row i uses y = grid_x[i], column j uses x = grid_y[j] (the course's loop order)
    z = np.array([[xj, yi] for yi in grid_x for xj in grid_y], dtype="float32")
    digits = np.asarray(model.sample(z)).reshape(n, n, digit_size, digit_size)
    image = digits.transpose(0, 2, 1, 3).reshape(n * digit_size, n * digit_size)
    return image, grid_x, grid_y


def plot_latent_images(model, n: int = 20, digit_size: int = 28):
    """The course's figure: the decoder's output over the latent grid."""
    image, _, _ = latent_grid(model, n, digit_size)
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.imshow(image, cmap="Greys_r")
    ax.set_title("Rejilla del espacio latente decodificada (cuantiles de N(0, 1))")
    ax.axis("off")
    return fig


def tile(images, ncols: int = 4, pad: int = 1) -> np.ndarray:
    """Images in [0, 1] tiled into one uint8 picture (``ncols`` per row)."""
    x = np.clip(_as_images(images), 0.0, 1.0)
    n, h, w = x.shape
    nrows = -(-n // ncols)
    out = np.ones((nrows * (h + pad) + pad, ncols * (w + pad) + pad), dtype="float32")
    for k in range(n):
        r, c = divmod(k, ncols)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        out[top : top + h, left : left + w] = x[k]
    return (out * 255).round().astype(np.uint8)


def save_frame(images, path: str | os.PathLike, ncols: int = 4, scale: int = 3) -> str:
    """Write one progress frame (a tiled PNG, enlarged ``scale``×) with imageio."""
    import imageio.v3 as iio

    frame = np.kron(tile(images, ncols), np.ones((scale, scale), dtype=np.uint8))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, frame)
    return str(path)


def make_gif(frame_paths: Sequence[str | os.PathLike], gif_path: str | os.PathLike, fps: float = 4.0) -> str:
    """Assemble PNG frames (in the given order) into a looping GIF with imageio."""
    import imageio.v3 as iio

    if len(frame_paths) == 0:
        raise ValueError("make_gif needs at least one frame")
    frames = np.stack([iio.imread(p) for p in frame_paths])
    iio.imwrite(gif_path, frames, duration=1000.0 / fps, loop=0)
    return str(gif_path)
