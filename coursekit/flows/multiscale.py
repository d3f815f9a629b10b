"""Glow's multi-scale pieces: squeeze (space to channels) and split with a learned prior.

A *level* of Glow squeezes ``(C, H, W) → (4C, H/2, W/2)`` (space to channels, so 1×1
convs and channel couplings can mix neighbouring pixels), runs K steps of flow and
*splits*: half of the channels leave as latent variables with a learned conditional prior
``N(μ(h₁), σ(h₁)²)``, the other half goes on to the next level. Early factored-out
variables carry fine detail, late ones the global shape.

The prior is written as the affine map ``h₂ = μ(h₁) + σ(h₁) · ε`` with ``ε ~ N(0, I)``
(``Split``), so the base density stays ``N(0, I)`` and sampling at temperature T is just
``z = T · ε``. The model that stacks the levels is :class:`coursekit.flows.glow.Glow`.

Taught in: notebook 03.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from ..core.checks import check_input, event_shape_of
from .base import Bijection
from .coupling import AffineCoupling


def squeeze(x: Tensor) -> Tensor:
    """``(B, C, H, W) → (B, 4C, H/2, W/2)``: every 2×2 patch becomes 4 channels."""
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(b, 4 * c, h // 2, w // 2)


def unsqueeze(z: Tensor) -> Tensor:
    """The inverse of :func:`squeeze`: ``(B, 4C, H, W) → (B, C, 2H, 2W)``."""
    b, c, h, w = z.shape
    z = z.reshape(b, c // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
    return z.reshape(b, c // 4, 2 * h, 2 * w)


def _image_shape(shape: Sequence[int], what: str) -> tuple[int, int, int]:
    shape = event_shape_of(shape, "shape")
    if len(shape) != 3:
        raise ValueError(f"{what} needs an image shape (C, H, W), got {shape}")
    return shape


class Squeeze(Bijection):
    """Data ``x`` of shape ``(C, H, W)`` ↔ latent ``z`` of shape ``(4C, H/2, W/2)``.

    ``forward`` (latent → data) unsqueezes, ``inverse`` squeezes; a permutation of the
    entries, so both log-dets are 0. The two sides have different shapes: ``event_shape``
    is the data side, ``latent_shape`` the side ``forward`` takes.
    """

    def __init__(self, shape: Sequence[int]):
        super().__init__()
        c, h, w = _image_shape(shape, "Squeeze")
        if h % 2 or w % 2:
            raise ValueError(f"Squeeze needs a shape (C, H, W) with even H and W, got {tuple(shape)}")
        self.event_shape = (c, h, w)
        self.latent_shape = (4 * c, h // 2, w // 2)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        check_input(z, "z", self.latent_shape)
        return unsqueeze(z), z.new_zeros(z.shape[0])

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        check_input(x, "x", self.event_shape)
        return squeeze(x), x.new_zeros(x.shape[0])


class Split(AffineCoupling):
    """Factor-out with a learned prior: ``x = (h₁, μ(h₁) + σ(h₁)·ε)`` from ``z = (h₁, ε)``.

    ``log|det J_f| = Σ log σ(h₁)``. In the data direction it returns ``ε = (h₂ − μ)/σ``,
    which is ``N(0, I)`` exactly when ``h₂ ~ N(μ(h₁), σ(h₁)²)``: evaluating ``N(0, I)``
    on ``ε`` plus this log-det *is* evaluating the conditional prior on ``h₂``.
    ``μ, log σ`` come from one zero-initialized 3×3 conv (Glow's ``Conv2dZeros``).
    """

    def __init__(self, shape: Sequence[int], scale_bound: float = 2.0):
        shape = _image_shape(shape, "Split")
        if shape[0] % 2:
            raise ValueError(f"Split needs a shape (C, H, W) with even C, got {shape}")
        super().__init__(shape, hidden=1, mask="channel", scale_bound=scale_bound)
        self.net = nn.Conv2d(shape[0] // 2, shape[0], 3, padding=1)
        nn.init.zeros_(self.net.weight)
        nn.init.zeros_(self.net.bias)


__all__ = ["Split", "Squeeze", "squeeze", "unsqueeze"]
