"""Looking at clips: frame strips (matplotlib) and animated GIFs (imageio).

Titles and labels are Spanish (the student reads them). Taught in: notebook 09.
"""

from __future__ import annotations

import base64

import matplotlib.pyplot as plt
import numpy as np
import torch


def _as_array(clips) -> np.ndarray:
    x = clips.detach().float().cpu().numpy() if isinstance(clips, torch.Tensor) else np.asarray(clips, np.float32)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4:
        raise ValueError(f"clips must have shape (N, T, H, W) or (T, H, W), got {x.shape}")
    return np.clip(x, 0.0, 1.0)


def frame_strips(clips, row_titles=None, every: int = 1, title: str | None = None, size: float = 0.8):
    """One row of frames per clip (frames ``0, every, 2·every, …``); returns the figure."""
    x = _as_array(clips)[:, ::every]
    n, t = x.shape[:2]
    fig, axes = plt.subplots(n, t, figsize=(size * t, size * n + (0.4 if title else 0)), squeeze=False)
    for i in range(n):
        for j in range(t):
            ax = axes[i, j]
            ax.imshow(x[i, j], cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"t={j * every}", fontsize=7)
        if row_titles is not None:
            axes[i, 0].set_ylabel(row_titles[i], fontsize=8, rotation=0, ha="right", va="center")
    if title:
        fig.suptitle(title)
    fig.tight_layout(pad=0.2)
    return fig


def clip_grid_frames(clips, scale: int = 3, pad: int = 2) -> np.ndarray:
    """Frames (T, H', W') uint8 of the clips side by side (nearest-neighbour upscaled ×scale)."""
    x = _as_array(clips)
    x = x.repeat(scale, axis=2).repeat(scale, axis=3)
    n, t, h, w = x.shape
    out = np.full((t, h, n * (w + pad) - pad), 0.25, dtype=np.float32)  # grey separators
    for i in range(n):
        out[:, :, i * (w + pad): i * (w + pad) + w] = x[i]
    return (255 * out).round().astype(np.uint8)


def gif_bytes(clips, fps: float = 8.0, scale: int = 3) -> bytes:
    """An animated GIF (bytes) that plays the clips side by side in a loop."""
    import imageio.v3 as iio

    frames = clip_grid_frames(clips, scale)
    return iio.imwrite("<bytes>", frames, extension=".gif", duration=1000.0 / fps, loop=0)


def save_gif(clips, path, fps: float = 8.0, scale: int = 3) -> str:
    """Write :func:`gif_bytes` to ``path``; returns the path."""
    with open(path, "wb") as fh:
        fh.write(gif_bytes(clips, fps, scale))
    return str(path)


def show_gif(clips, fps: float = 8.0, scale: int = 3, caption: str = ""):
    """An object that Jupyter/Colab display as the looping GIF (an inline ``<img>``)."""
    from IPython.display import HTML

    data = base64.b64encode(gif_bytes(clips, fps, scale)).decode("ascii")
    cap = f"<div style='font-size:0.9em'>{caption}</div>" if caption else ""
    return HTML(f"<div><img src='data:image/gif;base64,{data}' style='image-rendering:pixelated'/>{cap}</div>")


def flow_playground(decoded_steps, every: int = 2):
    """Sliders over the Euler step k and the frame: see noise turn into a clip.

    ``decoded_steps`` (K+1, T, H, W): the clip decoded from the latent ``z_k`` after each of
    the K Euler steps (k = 0 is pure noise). The figure is built once; a move only calls
    ``set_data`` on two images (a :class:`~coursekit.widgets.core.Playground`).
    """
    import ipywidgets as W

    from ..widgets.core import Playground

    x = _as_array(decoded_steps)
    k_max, n_frames = x.shape[0] - 1, x.shape[1]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8.5, 2.6), gridspec_kw={"width_ratios": [1, 3.2]})
    big = ax1.imshow(x[0, 0], cmap="gray", vmin=0, vmax=1, animated=True)
    strip = ax2.imshow(np.concatenate(list(x[0, ::every]), axis=1), cmap="gray", vmin=0, vmax=1, animated=True)
    ax1.set_title("fotograma elegido")
    ax2.set_title(f"fotogramas 0, {every}, {2 * every}, … del clip")
    for ax in (ax1, ax2):
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    controls = {
        "step": W.IntSlider(value=k_max, min=0, max=k_max, description="paso k"),
        "frame": W.IntSlider(value=0, min=0, max=n_frames - 1, description="fotograma"),
    }

    def draw(p: dict) -> str:
        big.set_data(x[p["step"], p["frame"]])
        strip.set_data(np.concatenate(list(x[p["step"], ::every]), axis=1))
        return f"t = {p['step']}/{k_max} = {p['step'] / k_max:.2f} (0: ruido, 1: vídeo)"

    return Playground(fig, controls, draw)


__all__ = ["clip_grid_frames", "flow_playground", "frame_strips", "gif_bytes", "save_gif", "show_gif"]
