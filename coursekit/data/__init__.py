"""Data: 2-D toy samplers and energies (generated in code), the MNIST loader, moving-digit clips.

The MNIST loader and the clips need only NumPy; the toy sets (``sample_toy``, ``energy``, …)
are PyTorch and are imported on first use (PEP 562), so that lesson 08 (TensorFlow) can use
``coursekit.data`` without loading PyTorch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .clips import ClipSet, moving_digits
from .mnist import MnistSplits, available_splits, load_mnist, mnist_splits, search_dirs, to_signed, to_unit

if TYPE_CHECKING:
    from .toy2d import ENERGIES, TOY_DATASETS, energy, sample_toy

_LAZY = {"ENERGIES": "toy2d", "TOY_DATASETS": "toy2d", "energy": "toy2d", "sample_toy": "toy2d"}


def __getattr__(name: str) -> Any:  # PEP 562: the PyTorch names load PyTorch only when asked for
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "ClipSet",
    "moving_digits",
    "ENERGIES",
    "MnistSplits",
    "TOY_DATASETS",
    "available_splits",
    "energy",
    "load_mnist",
    "mnist_splits",
    "sample_toy",
    "search_dirs",
    "to_signed",
    "to_unit",
]
