"""Lesson 09's pictures and playground: frame strips, looping GIFs of clips, and a slider
over the Euler steps that turn noise into a clip.

Mosaics and GIFs come from :mod:`coursekit.viz.images` (``tile_images``, ``to_uint8``,
``gif_bytes``). Titles and labels are Spanish (the student reads them). Taught in: notebook 09.
"""

from __future__ import annotations

import base64

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np

from ..core.checks import positive_int
from ..viz.images import gif_bytes, tile_images, to_uint8
from .core import Playground


def as_clip_array(clips) -> np.ndarray:
    """Clips (N, T, H, W) or one clip (T, H, W), tensor or array → float32 (N, T, H, W) in [0, 1]."""
    x = clips.detach().float().cpu().numpy() if hasattr(clips, "detach") else np.asarray(clips, np.float32)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4:
        raise ValueError(f"clips must have shape (N, T, H, W) or (T, H, W), got {x.shape}")
    return np.clip(x, 0.0, 1.0)


def frame_strips(clips, row_titles=None, every: int = 1, title: str | None = None, size: float = 0.8,
                 start: int = 0):
    """One row of frames per clip (frames ``0, every, 2·every, …``), drawn as one mosaic; returns the figure.

    ``start`` is the index of the first frame in the full clip (for the column labels)."""
    x = as_clip_array(clips)[:, ::positive_int(every, "every")]
    n, t, h, w = x.shape
    if row_titles is not None and len(row_titles) != n:
        raise ValueError(f"row_titles must have one title per clip ({n}), got {len(row_titles)}")
    fig, ax = plt.subplots(figsize=(size * t, size * n + (0.4 if title else 0.2)))
    ax.imshow(tile_images(x.reshape(n * t, h, w), ncols=t), cmap="gray", vmin=0, vmax=1)
    ax.xaxis.tick_top()
    ax.set_xticks([j * (w + 1) + (w - 1) / 2 for j in range(t)], [f"t={start + j * every}" for j in range(t)],
                  fontsize=8)  # ≥ 10 px at the inline backend's 100 dpi
    ax.set_yticks([i * (h + 1) + (h - 1) / 2 for i in range(n)], row_titles if row_titles is not None else [],
                  fontsize=9)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        fig.suptitle(title)
    fig.tight_layout(pad=0.2)
    return fig


def clip_grid_frames(clips, scale: int = 3, pad: int = 1) -> np.ndarray:
    """Frames (T, H', W') uint8 of the clips side by side, grey separators of ``pad`` pixels,
    all enlarged ``scale``× (nearest neighbour)."""
    x = as_clip_array(clips)
    return np.stack([to_uint8(tile_images(x[:, t], ncols=len(x), pad=pad, pad_value=0.25), scale)
                     for t in range(x.shape[1])])


def clip_gif(clips, fps: float = 8.0, scale: int = 3) -> bytes:
    """An animated GIF (bytes) that plays the clips side by side in a loop."""
    return gif_bytes(list(clip_grid_frames(clips, scale)), fps)


def show_gif(clips, fps: float = 8.0, scale: int = 3, caption: str = ""):
    """An object that Jupyter/Colab display as the looping GIF (an inline ``<img>``)."""
    from IPython.display import HTML

    data = base64.b64encode(clip_gif(clips, fps, scale)).decode("ascii")
    cap = f"<div style='font-size:0.9em'>{caption}</div>" if caption else ""
    return HTML(f"<div><img src='data:image/gif;base64,{data}' style='image-rendering:pixelated'/>{cap}</div>")


def flow_playground(decoded_steps, every: int = 2) -> Playground:
    """Sliders over the Euler step k and the frame: see noise turn into a clip.

    ``decoded_steps`` (K+1, T, H, W): the clip decoded from the latent ``z_k`` after each of
    the K Euler steps (k = 0 is pure noise). The figure is built once; a move only calls
    ``set_data`` on two images (a :class:`~coursekit.widgets.core.Playground`).
    """
    positive_int(every, "every")
    x = as_clip_array(decoded_steps)
    k_max, n_frames = x.shape[0] - 1, x.shape[1]
    if k_max < 1:
        raise ValueError(f"decoded_steps needs the start and at least one Euler step, got {len(x)} state(s)")

    def strip(k: int) -> np.ndarray:
        frames = x[k, ::every]
        return tile_images(frames, ncols=len(frames))

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8.5, 2.6), gridspec_kw={"width_ratios": [1, 3.2]})
    big = ax1.imshow(x[0, 0], cmap="gray", vmin=0, vmax=1, animated=True)
    row = ax2.imshow(strip(0), cmap="gray", vmin=0, vmax=1, animated=True)
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
        row.set_data(strip(p["step"]))
        return f"t = {p['step']}/{k_max} = {p['step'] / k_max:.2f} (0: ruido, 1: vídeo)"

    return Playground(fig, controls, draw)


__all__ = ["as_clip_array", "clip_gif", "clip_grid_frames", "flow_playground", "frame_strips", "show_gif"]
