"""Conditional probability paths p_t(x | x₁) and their conditional fields u_t(x | x₁).

Convention (as in lesson 06's CNF): noise at t = 0, data at t = 1. Both paths are affine
in the pair (x₀, x₁):

    x_t = a_t · x₀ + b_t · x₁ (+ σ ε),        u_t = d x_t / dt = ȧ_t · x₀ + ḃ_t · x₁,

so one base class gives sampling, the conditional field and the closed-form marginals of
:mod:`coursekit.matching.marginal`. Taught in: notebook 07 (used again in notebook 09).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..core.fields import batch_time


@dataclass
class PathSample:
    """One draw of a path: time ``t`` (batch,), point ``x_t`` and target field ``u_t`` (both like x₁)."""

    t: Tensor
    x_t: Tensor
    u_t: Tensor


def _check_tensor(name: str, x: Tensor) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.ndim < 1 or x.shape[0] < 1:
        raise ValueError(f"{name} must have shape (batch, ...) with batch >= 1, got {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or Inf values")


def _per_sample(t: Tensor | float, x: Tensor) -> Tensor:
    """``t`` (a scalar or shape (batch,)) as shape (batch, 1, 1, …), so that it multiplies ``x``.

    Raises ``ValueError`` unless every time lies in [0, 1] (noise at 0, data at 1)."""
    tb = batch_time(t, x)
    if not ((tb >= 0) & (tb <= 1)).all():  # False for NaN too
        bad = tb[~((tb >= 0) & (tb <= 1))]
        raise ValueError(f"t must lie in [0, 1] (noise at 0, data at 1), got {bad[:5].tolist()}"
                         + (f" and {bad.numel() - 5} more" if bad.numel() > 5 else ""))
    return tb.reshape(-1, *([1] * (x.dim() - 1)))


class AffinePath:
    """Base class: subclasses define ``coefficients(t) -> (a_t, b_t, ȧ_t, ḃ_t)`` and ``sigma``."""

    sigma: float = 0.0  # std of the extra noise σ ε added to x_t (constant in t, so u_t ignores it)

    def coefficients(self, t: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:  # pragma: no cover
        raise NotImplementedError

    def interpolate(self, t: Tensor | float, x0: Tensor, x1: Tensor) -> Tensor:
        """x_t = a_t x₀ + b_t x₁ (no extra noise): the conditional flow ψ_t(x₀ | x₁)."""
        a, b, _, _ = self.coefficients(_per_sample(t, x1))
        return a * x0 + b * x1

    def sample(self, x1: Tensor, x0: Tensor | None = None, t: Tensor | None = None,
               generator: torch.Generator | None = None) -> PathSample:
        """Draw ``t ~ U[0, 1]`` (unless given, shape (batch,)), ``x₀ ~ N(0, I)`` (unless given), and
        return ``PathSample(t, x_t, u_t)``; works for any trailing shape (points, images, latents)."""
        _check_tensor("x1", x1)
        if x0 is None:
            x0 = torch.randn(x1.shape, dtype=x1.dtype, device=x1.device, generator=generator)
        _check_tensor("x0", x0)
        if x0.shape != x1.shape:
            raise ValueError(f"x0 must have the shape of x1 {tuple(x1.shape)}, got {tuple(x0.shape)}")
        if t is None:
            t = torch.rand(x1.shape[0], dtype=x1.dtype, device=x1.device, generator=generator)
        tb = _per_sample(t, x1)
        a, b, da, db = self.coefficients(tb)
        x_t = a * x0 + b * x1
        if self.sigma > 0:
            eps = torch.randn(x1.shape, dtype=x1.dtype, device=x1.device, generator=generator)
            x_t = x_t + self.sigma * eps
        return PathSample(t=tb.reshape(-1), x_t=x_t, u_t=da * x0 + db * x1)

    def conditional_field(self, t: Tensor | float, x: Tensor, x1: Tensor) -> Tensor:
        """u_t(x | x₁) for a standard-normal x₀ (x₀ integrated out given x_t = x and x₁)."""
        tb = _per_sample(t, x)
        a, b, da, db = self.coefficients(tb)
        var = a**2 + self.sigma**2
        # E[x₀ | x_t = x, x₁] = a (x − b x₁) / var  (x₀ and σε Gaussian, x₁ fixed)
        return da * a * (x - b * x1) / var + db * x1

    def conditional_mean_std(self, t: Tensor | float, x1: Tensor) -> tuple[Tensor, Tensor]:
        """Mean μ_t(x₁) = b_t x₁ and std σ_t = √(a_t² + σ²) of p_t(x | x₁) = N(μ_t, σ_t² I)."""
        tb = _per_sample(t, x1)
        a, b, _, _ = self.coefficients(tb)
        return b * x1, torch.sqrt(a**2 + self.sigma**2)


class GaussianPath(AffinePath):
    """Lipman et al. (2023): μ_t = t x₁, σ_t = 1 − (1 − σ_min) t (the OT path of a Gaussian).

    x_t = σ_t x₀ + t x₁ and u_t(x | x₁) = (x₁ − (1 − σ_min) x) / (1 − (1 − σ_min) t),
    which equals x₁ − (1 − σ_min) x₀ at x = x_t.
    """

    def __init__(self, sigma_min: float = 1e-4):
        if not isinstance(sigma_min, (int, float)) or not 0 <= sigma_min < 1:
            raise ValueError(f"sigma_min must be a float in [0, 1), got {sigma_min!r}")
        self.sigma_min = float(sigma_min)

    def coefficients(self, t: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        k = 1 - self.sigma_min
        return 1 - k * t, t, torch.full_like(t, -k), torch.ones_like(t)

    def __repr__(self) -> str:
        return f"GaussianPath(sigma_min={self.sigma_min:g})"


class LinearPath(AffinePath):
    """I-CFM / rectified flow: x_t = (1 − t) x₀ + t x₁ (+ σ ε), u_t = x₁ − x₀.

    x₀ ~ p₀ and x₁ ~ q may be independent (I-CFM) or paired by a coupling (OT-CFM).
    """

    def __init__(self, sigma: float = 0.0):
        if not isinstance(sigma, (int, float)) or sigma < 0:
            raise ValueError(f"sigma must be a float >= 0, got {sigma!r}")
        self.sigma = float(sigma)

    def coefficients(self, t: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        return 1 - t, t, -torch.ones_like(t), torch.ones_like(t)

    def __repr__(self) -> str:
        return f"LinearPath(sigma={self.sigma:g})"


__all__ = ["AffinePath", "GaussianPath", "LinearPath", "PathSample"]
