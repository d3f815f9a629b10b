"""Affine coupling (RealNVP / Glow): half of the variables steer an affine map of the rest.

Split ``z = (z₁, z₂)`` with a binary mask. The generative direction ``x = f(z)`` is

    x₁ = z₁,    x₂ = z₂ · exp(s(z₁)) + t(z₁),

and its inverse is closed form, ``z₂ = (x₂ − t(x₁)) · exp(−s(x₁))``, because ``x₁ = z₁``
hands the conditioner the same input in both directions. ``J_f`` is triangular, so

    log|det J_f(z)| = Σ s(z₁)      (a sum over the transformed entries only).

``s`` and ``t`` are any network: they never need to be inverted. The scale is bounded,
``s = c · tanh(raw / c)`` (a soft clamp, ``c = scale_bound``), so one bad step cannot make
``exp(s)`` explode; the last layer starts at zero, so a fresh coupling is the identity.

Masks: for vectors ``(D,)`` ``"half"`` (first ⌊D/2⌋ entries vs the rest) and
``"alternate"`` (even vs odd indices); for images ``(C, H, W)`` ``"channel"`` (first
⌊C/2⌋ channels vs the rest) and ``"checkerboard"`` (pixels with i + j even vs odd).
``parity=True`` swaps the two halves, so stacking couplings with alternating parity
transforms every variable.

Taught in: notebook 03.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..core.checks import event_shape_of, positive_int
from .base import Bijection

VECTOR_MASKS = ("half", "alternate")
IMAGE_MASKS = ("channel", "checkerboard")


def make_mask(shape: Sequence[int], kind: str, parity: bool = False) -> Tensor:
    """Binary mask of ``shape`` (1 = conditioning half ``z₁``, 0 = transformed half ``z₂``)."""
    shape = tuple(shape)
    if len(shape) == 1:
        if kind not in VECTOR_MASKS:
            raise ValueError(f"mask for vectors must be one of {VECTOR_MASKS}, got {kind!r}")
        idx = torch.arange(shape[0])
        mask = idx < shape[0] // 2 if kind == "half" else idx % 2 == 0
    elif len(shape) == 3:
        if kind not in IMAGE_MASKS:
            raise ValueError(f"mask for images must be one of {IMAGE_MASKS}, got {kind!r}")
        c, h, w = shape
        if kind == "channel":
            mask = (torch.arange(c) < c // 2).view(c, 1, 1).expand(c, h, w)
        else:
            ij = torch.arange(h).view(h, 1) + torch.arange(w).view(1, w)
            mask = (ij % 2 == 0).expand(c, h, w)
    else:
        raise ValueError(f"shape must be (D,) or (C, H, W), got {shape}")
    mask = mask.to(torch.get_default_dtype())
    return 1.0 - mask if parity else mask


def mlp_conditioner(d_in: int, d_out: int, hidden: int, depth: int = 2) -> nn.Sequential:
    """``d_in → hidden (×depth, SiLU) → d_out`` with the last layer at zero (identity start)."""
    layers: list[nn.Module] = []
    width = d_in
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.SiLU()]
        width = hidden
    last = nn.Linear(width, d_out)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(*layers, last)


def conv_conditioner(c_in: int, c_out: int, hidden: int) -> nn.Sequential:
    """Glow's ``conv3×3 → ReLU → conv1×1 → ReLU → conv3×3`` with the last conv at zero."""
    last = nn.Conv2d(hidden, c_out, 3, padding=1)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(
        nn.Conv2d(c_in, hidden, 3, padding=1), nn.ReLU(),
        nn.Conv2d(hidden, hidden, 1), nn.ReLU(),
        last,
    )


class AffineCoupling(Bijection):
    """``x₁ = z₁``, ``x₂ = z₂ · exp(s(z₁)) + t(z₁)``; ``log|det J_f| = Σ s(z₁)``.

    ``dim``: ``D`` for vectors or ``(C, H, W)`` for images. ``mask``: ``"half"`` or
    ``"alternate"`` (vectors), ``"channel"`` or ``"checkerboard"`` (images; default
    ``"channel"``). ``hidden``: width of the conditioner (MLP units / conv channels).
    """

    def __init__(self, dim: int | Sequence[int], hidden: int = 64, mask: str | None = None,
                 parity: bool = False, scale_bound: float = 2.0, depth: int = 2):
        super().__init__()
        shape = self.event_shape = event_shape_of(dim)
        if mask is None:
            mask = "half" if len(shape) == 1 else "channel"
        positive_int(hidden, "hidden")
        positive_int(depth, "depth")
        if not scale_bound > 0:
            raise ValueError(f"scale_bound must be positive, got {scale_bound!r}")
        m = make_mask(shape, mask, parity)
        n_cond, n_free = int(m.sum().item()), int((1 - m).sum().item())
        if n_cond == 0 or n_free == 0:
            raise ValueError(f"mask {mask!r} leaves one half empty for shape {shape}; "
                             "need at least 2 variables (vectors) or 2 channels (channel mask)")
        self.mask_kind, self.parity, self.scale_bound = mask, parity, float(scale_bound)
        self.register_buffer("mask", m)
        if len(shape) == 1:
            # the MLP sees only z₁ (gathered) and predicts (s, t) for z₂ (scattered back)
            self.register_buffer("idx_cond", m.nonzero().flatten())
            self.register_buffer("idx_free", (1 - m).nonzero().flatten())
            self.net = mlp_conditioner(n_cond, 2 * n_free, hidden, depth)
        elif mask == "channel":
            c_cond = n_cond // (shape[1] * shape[2])
            self.register_buffer("idx_cond", m[:, 0, 0].nonzero().flatten())
            self.register_buffer("idx_free", (1 - m[:, 0, 0]).nonzero().flatten())
            self.net = conv_conditioner(c_cond, 2 * (shape[0] - c_cond), hidden)
        else:
            # checkerboard: the conv sees the masked image (zeros where z₂ lives)
            self.net = conv_conditioner(shape[0], 2 * shape[0], hidden)

    def scale_shift(self, z1: Tensor) -> tuple[Tensor, Tensor]:
        """``(s, t)`` for the transformed half, given the conditioning half ``z₁``."""
        if len(self.event_shape) == 1 or self.mask_kind == "channel":
            cond = z1
        else:
            cond = z1 * self.mask
        raw, t = self.net(cond).chunk(2, dim=1)
        s = self.scale_bound * torch.tanh(raw / self.scale_bound)  # |s| < c: exp(s) stays tame
        return s, t

    def _split(self, v: Tensor) -> tuple[Tensor, Tensor]:
        if len(self.event_shape) == 1 or self.mask_kind == "channel":
            return v.index_select(1, self.idx_cond), v.index_select(1, self.idx_free)
        return v, v  # checkerboard works on full images with the mask

    def _merge(self, v1: Tensor, v2: Tensor) -> Tensor:
        if len(self.event_shape) == 1 or self.mask_kind == "channel":
            out = torch.empty(v1.shape[0], *self.event_shape, dtype=v1.dtype, device=v1.device)
            out = out.index_copy(1, self.idx_cond, v1)
            return out.index_copy(1, self.idx_free, v2)
        return v1 * self.mask + v2 * (1 - self.mask)

    def _logdet(self, s: Tensor) -> Tensor:
        if len(self.event_shape) == 3 and self.mask_kind == "checkerboard":
            s = s * (1 - self.mask)  # only the transformed pixels count
        return s.reshape(s.shape[0], -1).sum(-1)

    def _forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        z1, z2 = self._split(z)
        s, t = self.scale_shift(z1)
        x2 = z2 * s.exp() + t
        return self._merge(z1, x2), self._logdet(s)

    def _inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x1, x2 = self._split(x)
        s, t = self.scale_shift(x1)
        z2 = (x2 - t) * (-s).exp()
        return self._merge(x1, z2), -self._logdet(s)

    def extra_repr(self) -> str:
        return f"shape={self.event_shape}, mask={self.mask_kind!r}, parity={self.parity}"


__all__ = ["AffineCoupling", "conv_conditioner", "make_mask", "mlp_conditioner"]
