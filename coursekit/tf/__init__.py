"""Lesson 08 on TensorFlow: dense autoencoder, convolutional VAE and DCGAN (the models).

``import coursekit`` never imports TensorFlow; ``import coursekit.tf`` does (Keras 3).
Two settings come first, unless the caller has set them (they act only if TensorFlow is
not loaded yet): the TF C++ log level 2 (TensorFlow's start-up messages bury the lesson) and
``TF_ENABLE_ONEDNN_OPTS=1``. TensorFlow turns its oneDNN kernels on by default only on some
CPUs (not on the AVX2 machines the course is measured on), and without them the DCGAN step
costs about 1.5× more CPU time (``benchmarks/bench_tf.py`` measures both). The lesson's training runs,
figures and GIF live in :mod:`coursekit.lessons.autoencoders`; the checkpointed loop in
:mod:`coursekit.training.tf_run`.

Taught in: notebook 08.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # both must happen before TF is imported
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

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
from .data import BatchSampler, binarize, load_mnist_tf  # noqa: E402
from .gan import (  # noqa: E402
    NOISE_DIM,
    discriminator_loss,
    generate_images,
    generator_loss,
    make_discriminator_model,
    make_gan_train_step,
    make_generator_model,
)


def device() -> str:
    """``"/GPU:0"`` when TensorFlow sees a GPU, else ``"/CPU:0"`` (TF places ops there anyway)."""
    return "/GPU:0" if tf.config.list_physical_devices("GPU") else "/CPU:0"


def runtime_info() -> dict[str, object]:
    """What a TensorFlow timing depends on: versions, oneDNN, thread pools, visible cores."""
    import keras
    from tensorflow.python.util import _pywrap_util_port

    return {"tensorflow": tf.__version__, "keras": keras.__version__,
            "onednn": bool(_pywrap_util_port.IsMklEnabled()),
            "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),  # 0: TF picks
            "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
            "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "device": device()}


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
    "generate_images",
    "generator_loss",
    "load_mnist_tf",
    "log_normal_pdf",
    "make_discriminator_model",
    "make_gan_train_step",
    "make_generator_model",
    "make_vae_train_step",
    "runtime_info",
    "seed_everything",
    "vae_loss",
]
