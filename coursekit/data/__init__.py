"""Data: 2-D toy samplers and energies (generated in code) and the MNIST loader."""

from .mnist import MnistSplits, available_splits, load_mnist, mnist_splits, search_dirs
from .toy2d import ENERGIES, TOY_DATASETS, energy, sample_toy

__all__ = [
    "ENERGIES",
    "MnistSplits",
    "TOY_DATASETS",
    "available_splits",
    "energy",
    "load_mnist",
    "mnist_splits",
    "sample_toy",
    "search_dirs",
]
