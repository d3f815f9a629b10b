"""coursekit: the tested code behind the course on flow-based generative models.

``import coursekit as ck`` is light: it imports neither PyTorch nor TensorFlow.
Submodules (``ck.flows``, ``ck.data``, ``ck.viz``, ``ck.train``, ``ck.widgets``,
``ck.continuous``, ``ck.matching``; ``ck.tf`` for lesson 08) load on first access.
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

_SUBMODULES = {"flows", "data", "viz", "train", "widgets", "continuous", "matching", "checkpoints", "vi", "tf", "video"}


def __getattr__(name: str) -> Any:  # PEP 562: lazy submodules keep the import light
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'coursekit' has no attribute {name!r}")


def quick_mode() -> bool:
    """True when ``COURSEKIT_QUICK`` is set to 1/true/yes: small sizes for tests and CI."""
    return os.environ.get("COURSEKIT_QUICK", "0").strip().lower() in {"1", "true", "yes", "on"}


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


__all__ = ["REPO_URL", "device", "quick_mode", "seed_everything", "__version__"]
