"""Glow (Kingma & Dhariwal 2018): steps of flow, the multi-scale model, and its MNIST set-up.

One *step of flow* in the data direction is ``actnorm → 1×1 conv → affine coupling``;
in the lecture's direction ``x = f(z)`` it is the reverse composition, which is how
:func:`glow_step` lists it. :class:`Glow` stacks ``levels`` × (squeeze, ``flow_steps``
steps, split) (the pieces are in :mod:`coursekit.flows.multiscale`) into one bijection
``(C, H, W) → (C, H, W)``: the factored-out pieces are written back in place (each level
unsqueezes on the way out). :func:`mnist_glow` puts the logit map of
:mod:`coursekit.flows.dequantize` in front, so ``log_prob`` takes dequantized pixels.

Taught in: notebook 03.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..core.checks import event_shape_of, one_of, positive_int
from .actnorm import ActNorm
from .base import Bijection, Compose, Flow, StandardNormal
from .coupling import AffineCoupling
from .dequantize import LogitTransform
from .invconv import InvConv1x1, Permutation
from .multiscale import Split, squeeze, unsqueeze

PERMUTATIONS = ("lu", "conv", "reverse", "shuffle")


def glow_step(dim: int | Sequence[int], hidden: int = 64, permutation: str = "lu",
              mask: str | None = None, parity: bool = False, seed: int | None = None) -> Compose:
    """One Glow step for vectors ``(D,)`` or images ``(C, H, W)``.

    Data direction: ``actnorm → mixing → coupling``; as ``x = f(z)``:
    ``Compose([coupling, mixing, actnorm])``. ``permutation``: ``"lu"`` / ``"conv"``
    (learned 1×1 conv, LU or plain), ``"reverse"`` or ``"shuffle"`` (fixed, ``seed``).
    """
    shape = event_shape_of(dim)
    one_of(permutation, PERMUTATIONS, "permutation")
    if permutation in ("lu", "conv"):
        mixing: Bijection = InvConv1x1(shape, lu=permutation == "lu")
    else:
        mixing = Permutation(shape, permutation, seed=seed)
    return Compose([AffineCoupling(shape, hidden, mask=mask, parity=parity), mixing, ActNorm(shape)])


def glow_2d(dim: int = 2, flow_steps: int = 6, hidden: int = 64, permutation: str = "lu") -> Compose:
    """The vector version for toy data: ``flow_steps`` Glow steps on ``(D,)``
    (``Compose.trajectory`` walks it layer by layer, latent → data)."""
    positive_int(flow_steps, "flow_steps")
    return Compose([glow_step(dim, hidden, permutation, mask="half", seed=k) for k in range(flow_steps)])


class Glow(Bijection):
    """Multi-scale Glow on images ``(C, H, W)``: ``levels`` × (squeeze, ``flow_steps`` steps, split).

    The last level keeps everything (no split). ``H`` and ``W`` must be divisible by
    ``2**levels``. As in the paper every coupling conditions on the same channel half and
    the mixing layer does the rest; ``alternate_parity=True`` also flips the half at every
    step (harmless with a learned 1×1 conv, but with ``"reverse"`` the flip and the
    reversal cancel out, so the ablation keeps it off). ``forward(ε) -> (x, log|det J_f|)``,
    ``inverse(x) -> (ε, …)``, both of shape ``(C, H, W)``.
    """

    def __init__(self, shape: Sequence[int] = (1, 28, 28), levels: int = 2, flow_steps: int = 4,
                 hidden: int = 32, permutation: str = "lu", mask: str = "channel",
                 alternate_parity: bool = False):
        super().__init__()
        shape = event_shape_of(shape, "shape")
        if len(shape) != 3:
            raise ValueError(f"Glow needs an image shape (C, H, W), got {shape}")
        positive_int(levels, "levels")
        positive_int(flow_steps, "flow_steps")
        c, h, w = shape
        if h % 2**levels or w % 2**levels:
            raise ValueError(f"H and W must be divisible by 2**levels = {2**levels}, got {h}×{w}")
        self.event_shape = shape
        self.levels, self.flow_steps, self.hidden, self.permutation = levels, flow_steps, hidden, permutation
        self.flows, self.splits = nn.ModuleList(), nn.ModuleList()
        self.level_shapes: list[tuple[int, int, int]] = []
        for level in range(levels):
            c, h, w = 4 * c, h // 2, w // 2
            self.level_shapes.append((c, h, w))
            self.flows.append(Compose([
                glow_step((c, h, w), hidden, permutation, mask=mask, parity=alternate_parity and bool(k % 2),
                          seed=100 * level + k)
                for k in range(flow_steps)
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
            rows.append((f"{self.flow_steps} × [actnorm → {self.permutation} → coupling]", shape))
            if level < self.levels - 1:
                rows.append(("split: la mitad sale con prior N(μ, σ²)", (shape[0] // 2, *shape[1:])))
        rows.append(("resto → z ~ N(0, I)", self.level_shapes[-1]))
        return rows

    def extra_repr(self) -> str:
        return (f"shape={self.event_shape}, levels={self.levels}, flow_steps={self.flow_steps}, "
                f"hidden={self.hidden}")


def mnist_glow(shape: Sequence[int] = (1, 28, 28), levels: int = 2, flow_steps: int = 4, hidden: int = 32,
               permutation: str = "lu", alpha: float = 0.05, alternate_parity: bool = False) -> Flow:
    """``Flow(N(0, I), LogitTransform ∘ Glow)``: ``log_prob`` takes dequantized pixels in [0, 1]."""
    glow = Glow(shape, levels, flow_steps, hidden, permutation, alternate_parity=alternate_parity)
    return Flow(StandardNormal(*glow.event_shape), Compose([glow, LogitTransform(glow.event_shape, alpha)]))


__all__ = ["PERMUTATIONS", "Glow", "glow_2d", "glow_step", "mnist_glow"]
