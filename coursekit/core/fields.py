"""The vector-field kernel shared by lessons 05–09 (Neural ODE, CNF, flow matching, video).

A *vector field* is any callable ``f(t, x) -> dx/dt`` with ``dx/dt`` of ``x``'s shape; ``t``
is a Python number, a 0-d tensor (what ``odeint`` passes) or one time per sample, shape
``(batch,)``. Every field in coursekit accepts all three through :func:`batch_time`.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch
from torch import Tensor, nn

NOISES = ("rademacher", "gaussian")


class VectorField(Protocol):
    """``f(t, x) -> dx/dt``: ``t`` a scalar or shape ``(batch,)``, ``x`` of shape ``(batch, ...)``."""

    def __call__(self, t: Tensor | float, x: Tensor) -> Tensor: ...


def batch_time(t: Tensor | float, x: Tensor) -> Tensor:
    """``t`` as one time per sample, shape ``(batch,)``, on ``x``'s device and dtype.

    A scalar (number, 0-d or 1-element tensor) is repeated; ``(batch,)`` or ``(batch, 1)`` is kept.
    Reshape the result as you need it: ``[:, None]`` for a column, ``.view(-1, 1, 1, 1)`` for images.
    """
    if not isinstance(x, Tensor) or x.dim() < 1:
        raise ValueError(f"x must be a tensor of shape (batch, ...), got {getattr(x, 'shape', type(x).__name__)}")
    t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
    if t.numel() == 1:
        return t.reshape(1).expand(x.shape[0])
    if t.shape in {(x.shape[0],), (x.shape[0], 1)}:
        return t.reshape(x.shape[0])
    raise ValueError(f"t must be a scalar or have shape ({x.shape[0]},), got {tuple(t.shape)}")


class NFECounter(nn.Module):
    """Wrap a field ``f(t, x)`` and count its evaluations in ``.nfe`` (``.reset()`` zeroes it).

    The number of function evaluations (NFE) is the cost of an ODE solve."""

    def __init__(self, field: VectorField):
        super().__init__()
        if not callable(field):
            raise TypeError(f"field must be a callable f(t, x), got {type(field).__name__}")
        self.field = field
        self.nfe = 0

    def reset(self) -> None:
        self.nfe = 0

    def forward(self, t: Tensor, x):
        self.nfe += 1
        return self.field(t, x)


def time_embedding(t: Tensor, dim: int, min_freq: float = 1.0, max_freq: float = 100.0) -> Tensor:
    """Sinusoidal features ``[sin(ω_k t), cos(ω_k t)]``, shape ``(batch, dim)``, of times ``t`` ∈ [0, 1].

    ``dim // 2`` frequencies ``ω_k`` spaced geometrically from ``min_freq`` to ``max_freq``
    (both included): low ones tell early from late, high ones resolve small steps of ``t``.
    """
    if not isinstance(dim, int) or dim < 2 or dim % 2:
        raise ValueError(f"dim must be an even int >= 2, got {dim!r}")
    if not 0 < min_freq <= max_freq:
        raise ValueError(f"need 0 < min_freq <= max_freq, got {min_freq}, {max_freq}")
    if t.dim() != 1:
        raise ValueError(f"t must have shape (batch,), got {tuple(t.shape)}")
    # frequencies in float64, then cast: float32 exp/log would add ~1e-4 relative error at high ω
    freqs = torch.exp(torch.linspace(math.log(min_freq), math.log(max_freq), dim // 2, dtype=torch.float64))
    angles = t[:, None] * freqs.to(device=t.device, dtype=t.dtype)[None]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


def hutchinson_probe(like: Tensor, noise: str = "rademacher", generator: torch.Generator | None = None) -> Tensor:
    """``ε`` of ``like``'s shape with ``E[ε εᵀ] = I``, so ``E[εᵀ A ε] = tr(A)`` (Hutchinson).

    Rademacher (±1) has the lowest variance; a standard Gaussian also works.
    """
    if noise == "rademacher":
        bits = torch.randint(0, 2, like.shape, generator=generator, device=like.device if generator is None
                             else generator.device)
        return (bits.to(like.dtype) * 2 - 1).to(like.device)
    if noise == "gaussian":
        return torch.randn(like.shape, generator=generator, dtype=like.dtype,
                           device=like.device if generator is None else generator.device).to(like.device)
    raise ValueError(f"noise must be one of {NOISES}, got {noise!r}")


__all__ = ["NOISES", "NFECounter", "VectorField", "batch_time", "hutchinson_probe", "time_embedding"]
