"""MNIST for lesson 08: offline files first, ``tf.keras.datasets`` when allowed online.

Pre-processing is the course's (the TensorFlow tutorials'):

* autoencoder: ``coursekit.data.to_unit``, ``x / 255`` in [0, 1], shape ``(N, 28, 28)``;
* VAE: :func:`binarize`, ``x / 255 > 0.5`` → {0, 1}, shape ``(N, 28, 28, 1)`` (Bernoulli decoder);
* GAN: ``coursekit.data.to_signed`` in [−1, 1] plus a channel axis, ``(N, 28, 28, 1)``
  (the generator ends in tanh).

Taught in: notebook 08.
"""

from __future__ import annotations

import socket
import warnings

import numpy as np

from .. import downloads_allowed
from ..core.checks import positive_int
from ..data import MnistSplits, available_splits, mnist_splits, to_unit

#: seconds without data before the Keras download gives up (then the mirrors are tried)
DOWNLOAD_TIMEOUT = 30


def load_mnist_tf(allow_download: bool | None = None) -> MnistSplits:
    """Train / evaluation split of MNIST as uint8 arrays, with a Spanish ``source`` line.

    Order: local IDX files (``coursekit.data``: the official split, or the test split carved
    into images 0–7,999 to train and 8,000–9,999 to evaluate, ``carved=True``); otherwise,
    only when downloads are allowed, ``tf.keras.datasets.mnist.load_data()`` as in the course.
    """
    if available_splits():
        return mnist_splits(allow_download=False)
    if not downloads_allowed(allow_download):
        return mnist_splits(allow_download=False)  # raises FileNotFoundError naming the folders
    import tensorflow as tf

    # Keras' get_file has no timeout of its own: a stalled connection would hang forever.
    # Sockets opened meanwhile give up after DOWNLOAD_TIMEOUT seconds without data.
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT)
    try:
        (xtr, ytr), (xte, yte) = tf.keras.datasets.mnist.load_data()
    except Exception as err:  # noqa: BLE001 - any failure: fall back to the checksum-verified mirrors
        warnings.warn(f"tf.keras.datasets.mnist.load_data() failed ({type(err).__name__}: {err}); "
                      "trying the checksum-verified mirrors", RuntimeWarning, stacklevel=2)
        return mnist_splits(allow_download=True)  # each mirror has its own timeout
    finally:
        socket.setdefaulttimeout(previous)
    source = "MNIST oficial vía tf.keras.datasets: train (60.000) / test (10.000)"
    return MnistSplits(xtr, ytr, xte, yte, source, carved=False)


def binarize(images: np.ndarray) -> np.ndarray:
    """uint8 ``(N, 28, 28)`` → float32 {0, 1} of shape ``(N, 28, 28, 1)`` (the VAE's input)."""
    x = to_unit(images)  # checks uint8 and (N, H, W)
    if x.shape[1:] != (28, 28):
        raise ValueError(f"expected images of shape (N, 28, 28), got {x.shape}")
    return np.where(x > 0.5, 1.0, 0.0).astype("float32")[..., None]


def make_dataset(images: np.ndarray, buffer_size: int, batch_size: int, seed: int | None = None):
    """The source notebook's input pipeline: ``from_tensor_slices → shuffle(buffer_size) → batch``.

    ``shuffle`` keeps a buffer of ``buffer_size`` elements and emits a uniformly chosen one from
    it, refilling from the stream: with ``buffer_size >= len(images)`` the order is a uniform
    random permutation; with 1 there is no shuffling. It reshuffles at every pass over the data.
    The last batch holds the remainder (no ``drop_remainder``), as in the source."""
    import tensorflow as tf

    images = np.asarray(images)
    if images.ndim < 1 or len(images) == 0:
        raise ValueError(f"images must be a non-empty array of examples, got shape {images.shape}")
    buffer_size, batch_size = positive_int(buffer_size, "buffer_size"), positive_int(batch_size, "batch_size")
    return tf.data.Dataset.from_tensor_slices(images).shuffle(buffer_size, seed=seed).batch(batch_size)


class BatchSampler:
    """Mini-batches as a pure function of the step: ``sampler(step)`` → array.

    Each epoch is a fresh permutation drawn from ``(seed, epoch)``, so a run resumed at
    step k sees exactly the batches an uninterrupted run would have seen. The last,
    incomplete batch of an epoch is dropped: fixed shapes keep ``tf.function`` from retracing.
    """

    def __init__(self, data: np.ndarray, batch_size: int, seed: int = 0):
        batch_size = positive_int(batch_size, "batch_size")
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
