"""Normalizing flows: the bijection contract and its layers (PyTorch)."""

from .base import Bijection, Compose, Flow, Inverse, StandardNormal, check_input, set_validation
from .elementwise import ElementwiseAffine, Linear, TanhWarp
from .roots import solve_increasing

__all__ = [
    "Bijection",
    "Compose",
    "ElementwiseAffine",
    "Flow",
    "Inverse",
    "Linear",
    "StandardNormal",
    "TanhWarp",
    "check_input",
    "set_validation",
    "solve_increasing",
]
