"""Lesson 08 on TensorFlow: dense autoencoder, convolutional VAE and DCGAN.

``import coursekit`` never imports TensorFlow; ``import coursekit.tf`` does (Keras 3,
TensorFlow Probability, imageio). The TF C++ log level defaults to 2 (warnings hidden)
when the caller has not set it, because TensorFlow's start-up messages bury the lesson.

Taught in: notebook 08.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # must happen before TF is imported

import tensorflow as tf  # noqa: E402

from .autoencoders import (  # noqa: E402
    CVAE,
    Autoencoder,
    elbo_terms,
    evaluate_elbo,
    log_normal_pdf,
    make_vae_train_step,
    vae_loss,
)
from .data import (  # noqa: E402
    BatchSampler,
    binarize,
    load_mnist_tf,
    to_gan_range,
    to_unit,
)
from .gan import (  # noqa: E402
    NOISE_DIM,
    discriminator_loss,
    generator_loss,
    make_discriminator_model,
    make_gan_train_step,
    make_generator_model,
)


def device() -> str:
    """``"/GPU:0"`` when TensorFlow sees a GPU, else ``"/CPU:0"`` (TF places ops there anyway)."""
    return "/GPU:0" if tf.config.list_physical_devices("GPU") else "/CPU:0"


def seed_everything(seed: int = 0) -> int:
    """Seed Python, NumPy, TensorFlow and Keras' own seed generator in one call."""
    import keras

    import coursekit as ck

    ck.seed_everything(seed)  # validates the type, seeds Python/NumPy (and torch if loaded)
    keras.utils.set_random_seed(seed)
    return seed


__all__ = [
    "CVAE",
    "NOISE_DIM",
    "Autoencoder",
    "BatchSampler",
    "binarize",
    "device",
    "discriminator_loss",
    "elbo_terms",
    "evaluate_elbo",
    "generator_loss",
    "load_mnist_tf",
    "log_normal_pdf",
    "make_discriminator_model",
    "make_gan_train_step",
    "make_generator_model",
    "make_vae_train_step",
    "seed_everything",
    "to_gan_range",
    "to_unit",
    "vae_loss",
]
