"""Lesson 08 on TensorFlow: dense autoencoder, convolutional VAE and DCGAN (the models).

``import coursekit`` never imports TensorFlow; ``import coursekit.tf`` does (Keras 3).
Two settings come first, unless the caller has set them (they act only if TensorFlow is
not loaded yet): the TF C++ log level 2 (TensorFlow's start-up messages bury the lesson) and
``TF_ENABLE_ONEDNN_OPTS=1``. The start-up lines TensorFlow writes before its logging is set up
ignore the log level, so the import itself runs with the process's stderr sent to /dev/null
(:func:`_quiet_native_stderr`; ``COURSEKIT_TF_VERBOSE=1`` shows them). TensorFlow turns its
oneDNN kernels on by default only on some CPUs (not on the AVX2 machines the course is
measured on), and without them the DCGAN step costs about 1.5× more CPU time
(``benchmarks/bench_tf.py`` measures both). The lesson's training runs, figures and GIF live
in :mod:`coursekit.lessons.autoencoders`; the checkpointed loop in
:mod:`coursekit.training.tf_run`.

Taught in: notebook 08.
"""

from __future__ import annotations

import contextlib
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # both must happen before TF is imported
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


@contextlib.contextmanager
def _quiet_native_stderr(enabled: bool):
    """Send file descriptor 2 to /dev/null while TensorFlow loads.

    Since TensorFlow moved to absl logging, its start-up lines ("oneDNN custom operations are
    on", "Could not find cuda drivers", "failed call to cuInit") are written by C++ before absl
    is initialized, and ``TF_CPP_MIN_LOG_LEVEL`` no longer hides them: in Jupyter they fill a red
    stderr box. Only the import and the first device query are silenced; set
    ``COURSEKIT_TF_VERBOSE=1`` to see them.
    """
    if not enabled:
        yield
        return
    try:
        sys.stderr.flush()
        saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    except OSError:  # no file descriptor 2 (some embedded interpreters): nothing to silence
        yield
        return
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


_QUIET = "tensorflow" not in sys.modules and not os.environ.get("COURSEKIT_TF_VERBOSE")
with _quiet_native_stderr(_QUIET):
    import tensorflow as tf

    tf.config.list_physical_devices("GPU")  # probes CUDA (and logs about it) now, silenced

from .autoencoders import (  # noqa: E402
    CVAE,
    Autoencoder,
    elbo_terms,
    evaluate_elbo,
    iwae_bound,
    kl_to_standard_normal,
    log_normal_pdf,
    make_vae_train_step,
    vae_loss,
    vae_train_step,
)
from .data import BatchSampler, binarize, load_mnist_tf, make_dataset  # noqa: E402
from .gan import (  # noqa: E402
    NOISE_DIM,
    discriminator_loss,
    gan_train_step,
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
    "gan_train_step",
    "generate_images",
    "generator_loss",
    "iwae_bound",
    "kl_to_standard_normal",
    "load_mnist_tf",
    "log_normal_pdf",
    "make_discriminator_model",
    "make_gan_train_step",
    "make_generator_model",
    "make_dataset",
    "make_vae_train_step",
    "runtime_info",
    "seed_everything",
    "vae_loss",
    "vae_train_step",
]
