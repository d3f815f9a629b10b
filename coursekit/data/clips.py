"""Synthetic video: MNIST digits moving and bouncing on a small canvas ("moving MNIST").

A clip is a float32 array ``(T, H, W)`` in [0, 1]; a batch is ``(N, T, H, W)``. Each digit
is the 28×28 MNIST image average-pooled 2×2 to 14×14, starts at a random position with a
random integer velocity, and bounces off the canvas walls (the velocity component flips).
Overlapping digits combine with ``max`` (like ink). Everything is deterministic given
``seed`` (``numpy.random.default_rng``), so a clip is fully named by ``(part, seed, index)``.

Honest evaluation: ``part="train"`` draws digits only from the training part of
:func:`coursekit.data.mnist_splits` (with only the MNIST test split at hand: images
0–7,999) and ``part="eval"`` only from the held-out part (images 8,000–9,999).
Taught in: notebook 09.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.checks import positive_int
from .mnist import mnist_splits

DIGIT_SIZE = 14  # 28×28 MNIST pooled 2×2: a digit fits a 32×32 canvas with room to move


@dataclass
class ClipSet:
    """Clips ``(N, T, H, W)`` float32 in [0, 1], the MNIST indices used, and their labels.

    ``digit_index[n, k]`` is the index of clip n's k-th digit *within the part* it came
    from; ``offset`` is where that part starts in its MNIST split (0 or 8,000 for the
    carved test split), so the image is ``split[offset + digit_index]``.
    """

    clips: np.ndarray
    digit_index: np.ndarray
    labels: np.ndarray
    offset: int
    source: str


def pool_digits(images: np.ndarray) -> np.ndarray:
    """uint8 ``(N, 28, 28)`` → float32 ``(N, 14, 14)`` in [0, 1] by 2×2 average pooling."""
    if not isinstance(images, np.ndarray) or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"images must be a numpy array of shape (N, 28, 28), got {getattr(images, 'shape', images)}")
    x = images.astype(np.float32) / 255.0
    return x.reshape(len(x), 14, 2, 14, 2).mean(axis=(2, 4))


def bounce_trajectory(n_frames: int, room: int, rng: np.random.Generator, max_speed: int = 2) -> np.ndarray:
    """Integer top-left positions ``(n_frames, 2)`` in ``[0, room]`` that bounce off the walls.

    The velocity is a random non-zero integer vector with components in
    ``[-max_speed, max_speed]``; at a wall the position is reflected and that component flips.
    """
    if room < 0:
        raise ValueError(f"room must be >= 0, got {room}")
    pos = rng.integers(0, room + 1, size=2)
    vel = rng.integers(-max_speed, max_speed + 1, size=2)
    while not vel.any():  # a still digit teaches nothing about motion
        vel = rng.integers(-max_speed, max_speed + 1, size=2)
    out = np.empty((n_frames, 2), dtype=np.int64)
    if room == 0:  # the digit fills the canvas: nowhere to go
        out[:] = 0
        return out
    for t in range(n_frames):
        out[t] = pos
        pos = pos + vel
        for k in range(2):  # reflect: -p below 0, 2·room - p above room (again if speed > room)
            while not 0 <= pos[k] <= room:
                pos[k] = -pos[k] if pos[k] < 0 else 2 * room - pos[k]
                vel[k] = -vel[k]
    return out


def render_clip(digits: np.ndarray, trajectories: np.ndarray, size: int) -> np.ndarray:
    """Paste digits ``(K, d, d)`` along trajectories ``(K, T, 2)`` onto a ``(T, size, size)`` canvas."""
    k_digits, d = digits.shape[0], digits.shape[1]
    n_frames = trajectories.shape[1]
    canvas = np.zeros((n_frames, size, size), dtype=np.float32)
    for k in range(k_digits):
        for t in range(n_frames):
            r, c = trajectories[k, t]
            patch = canvas[t, r : r + d, c : c + d]
            np.maximum(patch, digits[k], out=patch)
    return canvas


def moving_digits(
    n_clips: int,
    n_frames: int = 16,
    size: int = 32,
    n_digits: int = 1,
    seed: int = 0,
    part: str = "train",
    max_speed: int = 2,
    images: np.ndarray | None = None,
    labels: np.ndarray | None = None,
) -> ClipSet:
    """``n_clips`` clips of ``n_frames`` frames of ``size × size`` pixels, deterministic in ``seed``.

    Digits come from ``part`` ("train" or "eval") of :func:`mnist_splits`, or from
    ``images`` (uint8 ``(N, 28, 28)``) when given (then ``part`` is ignored).
    """
    for name, value in (("n_clips", n_clips), ("n_frames", n_frames), ("n_digits", n_digits),
                        ("max_speed", max_speed), ("size", size)):
        positive_int(value, name)
    if size < DIGIT_SIZE:
        raise ValueError(f"size must be at least the digit size {DIGIT_SIZE}, got {size}")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if images is None:
        if part not in ("train", "eval"):
            raise ValueError(f"part must be 'train' or 'eval', got {part!r}")
        splits = mnist_splits()
        images = splits.train_images if part == "train" else splits.eval_images
        labels = splits.train_labels if part == "train" else splits.eval_labels
        offset = 0 if part == "train" else splits.eval_offset
        source = f"{splits.source}; parte '{part}'"
    else:
        offset, source = 0, "imágenes dadas por el usuario"
        if labels is None:
            labels = np.full(len(images), -1, dtype=np.int64)
    digits = pool_digits(images)
    rng = np.random.default_rng(seed)
    index = rng.integers(0, len(digits), size=(n_clips, n_digits))
    clips = np.empty((n_clips, n_frames, size, size), dtype=np.float32)
    room = size - DIGIT_SIZE
    for n in range(n_clips):
        traj = np.stack([bounce_trajectory(n_frames, room, rng, max_speed) for _ in range(n_digits)])
        clips[n] = render_clip(digits[index[n]], traj, size)
    return ClipSet(clips, index, np.asarray(labels)[index], offset, source)


__all__ = ["DIGIT_SIZE", "ClipSet", "bounce_trajectory", "moving_digits", "pool_digits", "render_clip"]
