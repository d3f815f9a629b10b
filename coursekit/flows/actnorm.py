"""ActNorm: a per-channel affine layer with data-dependent initialization (Glow).

Generative direction ``x = f(z) = z · exp(log_scale) + shift`` per channel ``c``;
for images ``(C, H, W)`` the same scale and shift act on every pixel, so

    log|det J_f| = H · W · Σ_c log_scale_c      (vectors: H = W = 1).

Data-dependent initialization: on the first call (in either direction) the parameters
are set from that batch so the *output* has zero mean and unit variance per channel.
Training calls ``inverse`` first (``log_prob`` goes data → latent), which gives Glow's
rule ``shift = mean(x)``, ``exp(log_scale) = std(x)``: each layer starts by
normalizing the activations it actually sees, like batch norm but invertible and
without batch statistics after the first step.

Taught in: notebook 03.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..core.checks import event_shape_of, finite_float, one_of
from .base import Bijection


class ActNorm(Bijection):
    """``x = z · exp(s) + b`` per channel; ``log|det J_f| = H·W·Σ s``; data-dependent init."""

    def __init__(self, dim: int | Sequence[int], eps: float = 1e-6):
        super().__init__()
        self.event_shape = event_shape_of(dim)
        c = self.event_shape[0]
        if not finite_float(eps, "eps") > 0:
            raise ValueError(f"eps must be positive (the smallest scale), got {eps!r}")
        self.eps = float(eps)
        self.log_scale = nn.Parameter(torch.zeros(c))
        self.shift = nn.Parameter(torch.zeros(c))
        # a buffer (saved in state_dict) so a loaded model is not re-initialized
        self.register_buffer("initialized", torch.tensor(False))

    @property
    def pixels(self) -> int:
        """H·W: how many times each channel's scale enters the Jacobian."""
        return 1 if len(self.event_shape) == 1 else self.event_shape[1] * self.event_shape[2]

    def _view(self, p: Tensor) -> Tensor:
        return p.view(1, -1) if len(self.event_shape) == 1 else p.view(1, -1, 1, 1)

    @torch.no_grad()
    def _channel_stats(self, v: Tensor) -> tuple[Tensor, Tensor]:
        dims = [0] if v.dim() == 2 else [0, 2, 3]
        mean = v.mean(dim=dims)
        count = v.numel() // v.shape[1]
        # one value per channel has no spread: then only centre it
        std = v.std(dim=dims, unbiased=False) if count > 1 else torch.ones_like(mean)
        return mean, std.clamp_min(self.eps)

    @torch.no_grad()
    def initialize(self, v: Tensor, direction: str = "inverse") -> None:
        """Set ``(log_scale, shift)`` so that the output of ``direction`` on ``v`` is standardized.

        Raises ``ValueError`` (and leaves the layer uninitialized) for an empty or non-finite
        batch: statistics of zero samples are NaN and would poison every later call."""
        one_of(direction, ("forward", "inverse"), "direction")
        if not isinstance(v, torch.Tensor) or v.dim() < 2 or v.shape[0] == 0:
            raise ValueError(f"ActNorm initializes from a batch of at least one sample, got shape "
                             f"{tuple(getattr(v, 'shape', ()))}; the layer stays uninitialized")
        if not torch.isfinite(v).all():
            raise ValueError("ActNorm cannot initialize from a batch with NaN or Inf values; "
                             "the layer stays uninitialized")
        mean, std = self._channel_stats(v)
        if direction == "inverse":  # z = (x − b)·e^{−s} standardized: b = mean, e^s = std
            self.shift.copy_(mean)
            self.log_scale.copy_(std.log())
        else:  # x = z·e^s + b standardized: e^s = 1/std, b = −mean/std
            self.log_scale.copy_(-std.log())
            self.shift.copy_(-mean / std)
        self.initialized.fill_(True)

    def _logdet(self, v: Tensor) -> Tensor:
        return (self.pixels * self.log_scale.sum()).expand(v.shape[0])

    def _forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        if not self.initialized:
            self.initialize(z, "forward")
        x = z * self._view(self.log_scale).exp() + self._view(self.shift)
        return x, self._logdet(z)

    def _inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if not self.initialized:
            self.initialize(x, "inverse")
        z = (x - self._view(self.shift)) * (-self._view(self.log_scale)).exp()
        return z, -self._logdet(x)

    def extra_repr(self) -> str:
        return f"shape={self.event_shape}"


__all__ = ["ActNorm"]
