"""coursekit: the tested code behind the course on flow-based generative models.

``import coursekit as ck`` is light: it imports neither PyTorch nor TensorFlow.
Submodules load on first access. They form layers; each imports only the layers below
(``docs/architecture.md``, enforced by import-linter):

    widgets                         playgrounds (ipywidgets)
    lessons                         one module per notebook: its recipes (train, load, compare)
    training, viz, testing          fit(), checkpoints, plots, the bijection checks
    video                           lesson 09's model (uses matching)
    continuous | matching | tf      lessons 05–08's models (continuous uses flows)
    flows                           the bijection contract and the discrete flows
    data                            toy sets, MNIST, moving-digit clips
    core                            input checks, History, the vector-field kernel
"""

from __future__ import annotations

import importlib
import os
import random
from typing import Any

__version__ = "0.1.0"

#: The one place that names the repository; badges and Colab set-up cells derive from it
#: (``tools/sync_notebooks.py`` writes them, ``tests/test_notebook_hygiene.py`` checks).
REPO_URL = "https://github.com/coursekit/coursekit"

_SUBMODULES = {"core", "data", "flows", "continuous", "matching", "tf", "video", "training", "viz", "testing",
               "lessons", "widgets"}


def __getattr__(name: str) -> Any:  # PEP 562: lazy submodules keep the import light
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'coursekit' has no attribute {name!r}")


def quick_mode() -> bool:
    """True when ``COURSEKIT_QUICK`` is set to 1/true/yes: small sizes for tests and CI."""
    return os.environ.get("COURSEKIT_QUICK", "0").strip().lower() in {"1", "true", "yes", "on"}


def downloads_allowed(allow_download: bool | None = None) -> bool:
    """May coursekit download (MNIST, shipped checkpoints)? ``allow_download`` when given,
    else ``COURSEKIT_ALLOW_DOWNLOAD`` set to 1/true/yes (the Colab set-up cell sets it).
    Tests and CI never set it."""
    if allow_download is not None:
        if not isinstance(allow_download, bool):
            raise TypeError(f"allow_download must be a bool or None, got {type(allow_download).__name__}")
        return allow_download
    return os.environ.get("COURSEKIT_ALLOW_DOWNLOAD", "0").strip().lower() in {"1", "true", "yes", "on"}


def device(prefer: str | None = None):
    """The torch device to use: ``prefer`` if given, else CUDA when present, else CPU."""
    import torch

    if prefer is not None:
        return torch.device(prefer)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int = 0) -> int:
    """Seed Python, NumPy, and PyTorch / TensorFlow when they are already imported."""
    import sys

    import numpy as np

    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    random.seed(seed)
    np.random.seed(seed)
    if "torch" in sys.modules:
        import torch

        torch.manual_seed(seed)  # also seeds every CUDA device
    if "tensorflow" in sys.modules:
        import tensorflow as tf

        tf.random.set_seed(seed)
    return seed


__all__ = ["REPO_URL", "device", "downloads_allowed", "quick_mode", "seed_everything", "__version__"]
