"""Normalizing flows: the bijection contract and its layers (PyTorch).

Lesson 01: ``ElementwiseAffine``, ``TanhWarp``, ``Linear``; 02: ``Planar``, ``Radial``;
03: ``ActNorm``, ``InvConv1x1``, ``AffineCoupling``, ``Glow`` and friends; 04: ``IResBlock``.
"""

from ..core.checks import check_input, set_validation
from .actnorm import ActNorm
from .base import Bijection, Compose, Flow, Inverse, StandardNormal
from .coupling import AffineCoupling
from .dequantize import Dequantize, LogitTransform, bits_per_dim, sample_at_temperature
from .elementwise import ElementwiseAffine, Linear, TanhWarp
from .glow import Glow, glow_2d, glow_step, mnist_glow
from .invconv import InvConv1x1, Permutation
from .iresnet import ConvSpectralNorm, FixedPointInfo, IResBlock
from .multiscale import Split, Squeeze
from .planar import Planar
from .radial import Radial
from .roots import solve_increasing

__all__ = [
    "ActNorm",
    "AffineCoupling",
    "Bijection",
    "Compose",
    "ConvSpectralNorm",
    "Dequantize",
    "ElementwiseAffine",
    "FixedPointInfo",
    "Flow",
    "Glow",
    "IResBlock",
    "InvConv1x1",
    "Inverse",
    "Linear",
    "LogitTransform",
    "Permutation",
    "Planar",
    "Radial",
    "Split",
    "Squeeze",
    "StandardNormal",
    "TanhWarp",
    "bits_per_dim",
    "check_input",
    "glow_2d",
    "glow_step",
    "mnist_glow",
    "sample_at_temperature",
    "set_validation",
    "solve_increasing",
]
