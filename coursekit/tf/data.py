"""MNIST for lesson 08: offline files first, ``tf.keras.datasets`` when allowed online.

Pre-processing is the course's (the TensorFlow tutorials'):

* autoencoder: ``x / 255`` in [0, 1], shape ``(N, 28, 28)``;
* VAE: binarized, ``x / 255 > 0.5`` → {0, 1}, shape ``(N, 28, 28, 1)`` (Bernoulli decoder);
* GAN: ``(x − 127.5) / 127.5`` in [−1, 1], shape ``(N, 28, 28, 1)`` (the generator ends in tanh).

Taught in: notebook 08.
"""

from __future__ import annotations


import numpy as np

from .. import downloads_allowed
from ..data import MnistSplits, available_splits, mnist_splits


def load_mnist_tf(allow_download: bool | None = None) -> MnistSplits:
    """Train / evaluation split of MNIST as uint8 arrays, with a Spanish ``source`` line.

    Order: local IDX files (``coursekit.data``: the official split, or the test split carved
    into images 0–7,999 to train and 8,000–9,999 to evaluate); otherwise, only when
    downloads are allowed, ``tf.keras.datasets.mnist.load_data()`` as in the course.
    """
    if available_splits():
        return mnist_splits(allow_download=False)
    if not downloads_allowed(allow_download):
        return mnist_splits(allow_download=False)  # raises FileNotFoundError naming the folders
    import tensorflow as tf

    try:
        (xtr, ytr), (xte, yte) = tf.keras.datasets.mnist.load_data()
    except Exception:  # noqa: BLE001 - any failure: fall back to the checksum-verified mirrors
        return mnist_splits(allow_download=True)
    source = "MNIST oficial vía tf.keras.datasets: train (60.000) / test (10.000)"
    return MnistSplits(xtr, ytr, xte, yte, source, carved=False)


def _check_images(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise TypeError(f"expected uint8 MNIST images (0..255), got dtype {images.dtype}")
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"expected images of shape (N, 28, 28), got {images.shape}")
    return images


def to_unit(images: np.ndarray) -> np.ndarray:
    """uint8 ``(N, 28, 28)`` → float32 in [0, 1] (the autoencoder's input)."""
    return _check_images(images).astype("float32") / 255.0


def binarize(images: np.ndarray) -> np.ndarray:
    """uint8 ``(N, 28, 28)`` → float32 {0, 1} of shape ``(N, 28, 28, 1)`` (the VAE's input)."""
    x = _check_images(images).reshape(-1, 28, 28, 1) / 255.0
    return np.where(x > 0.5, 1.0, 0.0).astype("float32")


def to_gan_range(images: np.ndarray) -> np.ndarray:
    """uint8 ``(N, 28, 28)`` → float32 in [−1, 1] of shape ``(N, 28, 28, 1)`` (the GAN's input)."""
    x = _check_images(images).reshape(-1, 28, 28, 1).astype("float32")
    return (x - 127.5) / 127.5


class BatchSampler:
    """Mini-batches as a pure function of the step: ``sampler(step)`` → array.

    Each epoch is a fresh permutation drawn from ``(seed, epoch)``, so a run resumed at
    step k sees exactly the batches an uninterrupted run would have seen. The last,
    incomplete batch of an epoch is dropped: fixed shapes keep ``tf.function`` from retracing.
    """

    def __init__(self, data: np.ndarray, batch_size: int, seed: int = 0):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if len(data) < batch_size:
            raise ValueError(f"need at least batch_size={batch_size} examples, got {len(data)}")
        self.data, self.batch_size, self.seed = data, batch_size, seed
        self.steps_per_epoch = len(data) // batch_size
        self._epoch, self._perm = -1, None

    def __call__(self, step: int) -> np.ndarray:
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        epoch, i = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            self._epoch = epoch
            self._perm = np.random.default_rng([self.seed, epoch]).permutation(len(self.data))
        return self.data[self._perm[i * self.batch_size : (i + 1) * self.batch_size]]
