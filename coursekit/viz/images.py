"""Images, figures and GIFs as NumPy arrays (no PyTorch, no TensorFlow: every lesson uses it).

One mosaic (:func:`tile_images`), one GIF writer (:func:`save_gif` / :func:`gif_bytes`),
one figure-to-pixels function (:func:`figure_to_array`).
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg

from ..core.checks import positive_int


def tile_images(images, ncols: int, pad: int = 1, pad_value: float = 1.0) -> np.ndarray:
    """``(n, H, W)`` or ``(n, 1, H, W)`` images → one ``(rows·(H+pad)−pad, ncols·(W+pad)−pad)`` mosaic.

    Values are kept as they are (floats in [0, 1] for ``imshow``; see :func:`to_uint8`);
    ``ncols`` images per row, separated by ``pad`` pixels of ``pad_value``.
    """
    x = np.asarray(images.detach().cpu() if hasattr(images, "detach") else images, dtype=np.float32)
    if x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 3 or len(x) == 0:
        raise ValueError(f"images must have shape (n, H, W) or (n, 1, H, W) with n >= 1, got {x.shape}")
    positive_int(ncols, "ncols")
    n, h, w = x.shape
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    out = np.full((nrows * (h + pad) - pad, ncols * (w + pad) - pad), pad_value, dtype=np.float32)
    for k in range(n):
        r, c = divmod(k, ncols)
        out[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w] = x[k]
    return out


def to_uint8(image: np.ndarray, scale: int = 1) -> np.ndarray:
    """Values in [0, 1] → uint8 (clipped), enlarged ``scale``× by pixel repetition (for GIF frames)."""
    out = (255 * np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)).round().astype(np.uint8)
    return out.repeat(scale, axis=-2).repeat(scale, axis=-1) if scale > 1 else out


def figure_to_png(fig, dpi: float | None = None) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def figure_to_array(fig) -> np.ndarray:
    """The rendered figure as an ``(H, W, 3)`` uint8 array (a GIF frame), every artist included.

    ``canvas.draw()`` skips artists created with ``animated=True`` (a playground's moving parts,
    see :mod:`coursekit.widgets.core`), so they are drawn here as ordinary artists for this one
    render, in their usual z-order, and marked animated again afterwards.
    """
    canvas = fig.canvas if hasattr(fig.canvas, "buffer_rgba") else FigureCanvasAgg(fig)
    animated = fig.findobj(lambda a: a.get_animated())
    try:
        for artist in animated:
            artist.set_animated(False)
        canvas.draw()
    finally:
        for artist in animated:
            artist.set_animated(True)
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def gif_bytes(frames: Sequence[np.ndarray], fps: float = 8.0, loop: int = 0) -> bytes:
    """Frames (uint8 ``(H, W)`` or ``(H, W, 3)``, all the same shape) as an animated GIF."""
    import imageio.v3 as iio

    if len(frames) == 0:
        raise ValueError("a GIF needs at least one frame")
    return iio.imwrite("<bytes>", np.stack(frames), extension=".gif", duration=1000.0 / fps, loop=loop)


def save_gif(frames: Sequence[np.ndarray], path: str | os.PathLike, fps: float = 8.0, loop: int = 0) -> str:
    """Write :func:`gif_bytes` to ``path``; returns the path."""
    data = gif_bytes(frames, fps, loop)
    with open(path, "wb") as fh:
        fh.write(data)
    return str(path)


__all__ = ["figure_to_array", "figure_to_png", "gif_bytes", "save_gif", "tile_images", "to_uint8"]
