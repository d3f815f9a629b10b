"""Input checks for lesson 08's models: pixels in the range each model was built for.

A VAE fed 0–255 pixels computes a loss of ~1e11 instead of failing, and a GAN fed uint8
images trains on the wrong scale without a word: :func:`check_pixels` turns both into a
clear ``TypeError``/``ValueError`` naming the argument, what was expected and what came.
It checks concrete values (NumPy arrays, eager tensors); inside a ``tf.function`` the
values are symbolic, so the training steps check each batch before entering the graph.

Taught in: notebook 08.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

IMAGE_SHAPE = (28, 28, 1)


def check_pixels(x, name: str, low: float, high: float, hint: str, shape: tuple[int, ...] = IMAGE_SHAPE) -> None:
    """Raise unless ``x`` is a non-empty float batch ``(batch, *shape)`` with finite values in ``[low, high]``.

    ``hint`` says how to get there (e.g. ``"coursekit.tf.binarize(images)"``). Symbolic tensors
    (inside a ``tf.function``) are not checked: their values are not known yet.
    """
    if isinstance(x, tf.Tensor) and not tf.executing_eagerly():
        return
    x = x.numpy() if isinstance(x, (tf.Tensor, tf.Variable)) else np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{name} must hold float pixels in [{low:g}, {high:g}] ({hint}), got dtype {x.dtype}")
    if x.ndim != len(shape) + 1 or tuple(x.shape[1:]) != tuple(shape):
        raise ValueError(f"{name} must have shape (batch, {', '.join(map(str, shape))}), got {x.shape}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (shape {x.shape}); pass at least one image")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or Inf values")
    lo, hi = float(x.min()), float(x.max())
    if lo < low or hi > high:
        raise ValueError(f"{name} must hold pixels in [{low:g}, {high:g}] ({hint}), got values in [{lo:g}, {hi:g}]")


__all__ = ["IMAGE_SHAPE", "check_pixels"]
