"""Glow's multi-scale architecture: squeeze, split with a learned prior, L levels × K steps.

One *step of flow* in the data direction is ``actnorm → 1×1 conv → affine coupling``;
in the lecture's direction ``x = f(z)`` it is the reverse composition, which is how
``glow_step`` lists it. A *level* squeezes ``(C, H, W) → (4C, H/2, W/2)`` (space to
channels, so 1×1 convs and channel couplings can mix neighbouring pixels), runs K steps
and *splits*: half of the channels leave as latent variables (with a learned conditional
prior ``N(μ(h₁), σ(h₁)²)``), the other half goes on to the next level. Early
factored-out variables carry fine detail, late ones the global shape.

Here the whole model is one bijection ``(C, H, W) → (C, H, W)``: the factored-out
pieces are written back in place (each level unsqueezes on the way out), and the learned
prior is the affine map ``h₂ = μ(h₁) + σ(h₁) · ε`` with ``ε ~ N(0, I)`` (``Split``), so
the base density stays ``N(0, I)`` and sampling at temperature T is just ``z = T · ε``.

Taught in: notebook 03.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .actnorm import ActNorm
from ..core.checks import check_input
from .base import Bijection, Compose
from .coupling import AffineCoupling, _check_shape
from .invconv import InvConv1x1, Permutation

PERMUTATIONS = ("lu", "conv", "reverse", "shuffle")


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


class Squeeze(Bijection):
    """Data ``x`` of shape ``(C, H, W)`` ↔ latent ``z`` of shape ``(4C, H/2, W/2)``.

    ``forward`` (latent → data) unsqueezes, ``inverse`` squeezes; a permutation of the
    entries, so both log-dets are 0. The two sides have different shapes.
    """

    def __init__(self, shape: Sequence[int]):
        super().__init__()
        c, h, w = _check_shape(shape) if len(tuple(shape)) == 3 else (0, 0, 0)
        if c == 0 or h % 2 or w % 2:
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
        shape = _check_shape(shape)
        if len(shape) != 3 or shape[0] % 2:
            raise ValueError(f"Split needs a shape (C, H, W) with even C, got {shape}")
        super().__init__(shape, hidden=1, mask="channel", scale_bound=scale_bound)
        self.net = nn.Conv2d(shape[0] // 2, shape[0], 3, padding=1)
        nn.init.zeros_(self.net.weight)
        nn.init.zeros_(self.net.bias)


def glow_step(dim: int | Sequence[int], hidden: int = 64, permutation: str = "lu",
              mask: str | None = None, parity: bool = False, seed: int | None = None) -> Compose:
    """One Glow step for vectors ``(D,)`` or images ``(C, H, W)``.

    Data direction: ``actnorm → mixing → coupling``; as ``x = f(z)``:
    ``Compose([coupling, mixing, actnorm])``. ``permutation``: ``"lu"`` / ``"conv"``
    (learned 1×1 conv, LU or plain), ``"reverse"`` or ``"shuffle"`` (fixed).
    """
    shape = _check_shape(dim)
    if permutation in ("lu", "conv"):
        mixing: Bijection = InvConv1x1(shape, lu=permutation == "lu")
    elif permutation in ("reverse", "shuffle"):
        mixing = Permutation(shape, permutation, seed=seed)
    else:
        raise ValueError(f"permutation must be one of {PERMUTATIONS}, got {permutation!r}")
    return Compose([AffineCoupling(shape, hidden, mask=mask, parity=parity), mixing, ActNorm(shape)])


def glow_2d(dim: int = 2, steps: int = 6, hidden: int = 64, permutation: str = "lu") -> Compose:
    """The vector version for toy data: ``steps`` Glow steps on ``(D,)`` (``Compose.trajectory``
    walks it layer by layer, latent → data)."""
    return Compose([glow_step(dim, hidden, permutation, mask="half", seed=k) for k in range(steps)])


class Glow(Bijection):
    """Multi-scale Glow on images ``(C, H, W)``: ``levels`` × (squeeze, ``steps`` steps, split).

    The last level keeps everything (no split). ``H`` and ``W`` must be divisible by
    ``2**levels``. As in the paper every coupling conditions on the same channel half and
    the mixing layer does the rest; ``alternate_parity=True`` also flips the half at every
    step (harmless with a learned 1×1 conv, but with ``"reverse"`` the flip and the
    reversal cancel out, so the ablation keeps it off). ``forward(ε) -> (x, log|det J_f|)``,
    ``inverse(x) -> (ε, …)``, both of shape ``(C, H, W)``.
    """

    def __init__(self, shape: Sequence[int] = (1, 28, 28), levels: int = 2, steps: int = 4,
                 hidden: int = 32, permutation: str = "lu", mask: str = "channel",
                 alternate_parity: bool = False):
        super().__init__()
        shape = _check_shape(shape)
        if len(shape) != 3:
            raise ValueError(f"Glow needs an image shape (C, H, W), got {shape}")
        if not isinstance(levels, int) or levels < 1 or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"levels and steps must be positive ints, got {levels!r}, {steps!r}")
        c, h, w = shape
        if h % 2**levels or w % 2**levels:
            raise ValueError(f"H and W must be divisible by 2**levels = {2**levels}, got {h}×{w}")
        self.event_shape = shape
        self.levels, self.steps, self.hidden, self.permutation = levels, steps, hidden, permutation
        self.flows, self.splits = nn.ModuleList(), nn.ModuleList()
        self.level_shapes: list[tuple[int, int, int]] = []
        for level in range(levels):
            c, h, w = 4 * c, h // 2, w // 2
            self.level_shapes.append((c, h, w))
            self.flows.append(Compose([
                glow_step((c, h, w), hidden, permutation, mask=mask, parity=alternate_parity and bool(k % 2),
                          seed=100 * level + k)
                for k in range(steps)
            ]))
            if level < levels - 1:
                self.splits.append(Split((c, h, w)))
                c //= 2

    def _forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        eps, h = [], z
        for level in range(self.levels):  # read the latent pieces off, coarse to fine
            h = squeeze(h)
            if level < self.levels - 1:
                half = h.shape[1] // 2
                eps.append(h[:, half:])
                h = h[:, :half]
        total = z.new_zeros(z.shape[0])
        for level in reversed(range(self.levels)):
            if level < self.levels - 1:
                h, ld = self.splits[level](torch.cat([h, eps[level]], 1))
                total = total + ld
            h, ld = self.flows[level](h)
            total = total + ld
            h = unsqueeze(h)
        return h, total

    def _inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        eps, h = [], x
        total = x.new_zeros(x.shape[0])
        for level in range(self.levels):
            h, ld = self.flows[level].inverse(squeeze(h))
            total = total + ld
            if level < self.levels - 1:
                h, ld = self.splits[level].inverse(h)
                total = total + ld
                half = h.shape[1] // 2
                eps.append(h[:, half:])  # factored out: it skips the deeper levels
                h = h[:, :half]
        for level in reversed(range(self.levels)):
            if level < self.levels - 1:
                h = torch.cat([h, eps[level]], 1)
            h = unsqueeze(h)
        return h, total

    def blocks(self) -> list[tuple[str, tuple[int, ...]]]:
        """The architecture as ``(block name, shape it works on)`` rows, data → latent."""
        rows: list[tuple[str, tuple[int, ...]]] = [("x", self.event_shape)]
        for level, shape in enumerate(self.level_shapes):
            rows.append((f"squeeze (nivel {level + 1})", shape))
            rows.append((f"{self.steps} × [actnorm → {self.permutation} → coupling]", shape))
            if level < self.levels - 1:
                rows.append(("split: la mitad sale con prior N(μ, σ²)", (shape[0] // 2, *shape[1:])))
        rows.append(("resto → z ~ N(0, I)", self.level_shapes[-1]))
        return rows

    def extra_repr(self) -> str:
        return f"shape={self.event_shape}, levels={self.levels}, steps={self.steps}, hidden={self.hidden}"


__all__ = ["PERMUTATIONS", "Glow", "Split", "Squeeze", "glow_2d", "glow_step", "squeeze", "unsqueeze"]
