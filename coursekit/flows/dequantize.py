"""8-bit images as a continuous density problem: dequantization, the logit map, bits/dim.

* **uniform dequantization** ``y = (k + u) / 256``, ``u ~ U[0, 1)^D``, for pixel values
  ``k ∈ {0, …, 255}``: a density ``p_y`` on ``[0, 1]^D`` gives a lower bound on the
  discrete likelihood, ``log P(k) ≥ E_u[log p_y(y)] − D log 256``;
* the **logit** map ``z = logit(α + (1 − 2α) y)`` so the flow works on ℝ^D, counted in
  the log-det (``LogitTransform``; its ``forward`` is the sigmoid side ``z → y``);
* **bits per dimension** ``bpd = −(log p_y(y) − D log 256) / (D ln 2)``: nats → bits
  (divide by ln 2) and per dimension (divide by D = C·H·W);
* the way back to pixels: **sampling at temperature** ``x = f(T · ε)``.

Taught in: notebook 03.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..core.checks import event_shape_of, positive_int
from .base import Bijection, Flow


class LogitTransform(Bijection):
    """``x = (sigmoid(z) − α) / (1 − 2α)`` ∈ (0, 1) from ``z`` ∈ ℝ; inverse
    ``z = logit(α + (1 − 2α) x)``.

    ``log|det J_f| = Σ [log σ(z) + log σ(−z) − log(1 − 2α)]``. ``α`` keeps the logit away
    from ±∞ at pixels that are exactly 0 (most of MNIST).
    """

    def __init__(self, dim: int | Sequence[int], alpha: float = 0.05):
        super().__init__()
        self.event_shape = event_shape_of(dim)
        if not 0 <= alpha < 0.5:
            raise ValueError(f"alpha must be in [0, 0.5), got {alpha!r}")
        self.alpha = float(alpha)

    def _logdet(self, z: Tensor) -> Tensor:
        per = F.logsigmoid(z) + F.logsigmoid(-z) - math.log1p(-2 * self.alpha)
        return per.reshape(z.shape[0], -1).sum(-1)

    def _forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        x = (torch.sigmoid(z) - self.alpha) / (1 - 2 * self.alpha)
        return x, self._logdet(z)

    def _inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        p = self.alpha + (1 - 2 * self.alpha) * x
        if ((p <= 0) | (p >= 1)).any():  # the image of forward: [0, 1] widened by α/(1 − 2α)
            raise ValueError("x must lie in [0, 1] (dequantized pixels); got values outside")
        z = torch.log(p) - torch.log1p(-p)
        return z, -self._logdet(z)


class Dequantize(nn.Module):
    """``uint8`` (or integer-valued float) pixels ``k`` → ``y = (k + u) / 2^bits`` ∈ [0, 1).

    ``noise=False`` uses ``u = 1/2`` (the centre of each bin), for deterministic plots.
    """

    def __init__(self, bits: int = 8):
        super().__init__()
        if not isinstance(bits, int) or isinstance(bits, bool) or not 1 <= bits <= 16:
            raise ValueError(f"bits must be an int in [1, 16], got {bits!r}")
        self.bits = bits
        self.bins = 2**bits

    def forward(self, k: Tensor, noise: bool = True, generator: torch.Generator | None = None,
                dtype: torch.dtype | None = None) -> Tensor:
        if not isinstance(k, Tensor):
            raise TypeError(f"pixels must be a torch.Tensor, got {type(k).__name__}")
        dtype = dtype or torch.get_default_dtype()
        k = k.to(dtype)
        if (k < 0).any() or (k > self.bins - 1).any() or (k != k.round()).any():
            raise ValueError(f"pixels must be integers in [0, {self.bins - 1}]")
        u = (torch.rand(k.shape, generator=generator, dtype=dtype).to(k.device) if noise
             else torch.full_like(k, 0.5))
        return (k + u) / self.bins


def bits_per_dim(log_prob: Tensor, num_dims: int, bins: int = 256) -> Tensor:
    """``−(log p_y(y) − D log bins) / (D ln 2)`` per sample, for ``log p_y`` in nats on [0, 1]^D.

    ``− D log bins`` turns the density on the unit cube into (a bound on) the probability
    of the discrete pixels; ``/ ln 2`` turns nats into bits; ``/ D`` makes it per dimension.
    """
    positive_int(num_dims, "num_dims")
    return -(log_prob - num_dims * math.log(bins)) / (num_dims * math.log(2))


@torch.no_grad()
def sample_at_temperature(flow: Flow, n: int, temperature: float = 1.0,
                          generator: torch.Generator | None = None) -> Tensor:
    """``x = f(T · ε)``, ``ε ~ N(0, I)``, clamped to the pixel range [0, 1]: T < 1 trades
    diversity for cleaner samples."""
    positive_int(n, "n")
    if not 0 <= temperature <= 2:
        raise ValueError(f"temperature must be in [0, 2], got {temperature!r}")
    anchor = next(flow.parameters())
    eps = torch.randn(n, *flow.base.event_shape, generator=generator, dtype=anchor.dtype)
    x, _ = flow.transform(temperature * eps.to(anchor.device))
    return x.clamp(0, 1)


__all__ = ["Dequantize", "LogitTransform", "bits_per_dim", "sample_at_temperature"]
