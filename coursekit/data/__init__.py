"""Data: 2-D toy samplers and energies (generated in code), the MNIST loader, moving-digit clips."""

from .clips import ClipSet, moving_digits
from .mnist import MnistSplits, available_splits, load_mnist, mnist_splits, search_dirs, to_signed, to_unit
from .toy2d import ENERGIES, TOY_DATASETS, energy, sample_toy

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
