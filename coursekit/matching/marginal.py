"""Closed-form marginals when the data q is a Gaussian mixture (a finite point set when std = 0).

With x₀ ~ N(0, I) and an affine path x_t = a_t x₀ + b_t x₁ (+ σε), each component
k (mean m_k, std s, weight w_k) makes (x_t, u_t) jointly Gaussian, so

    p_t(x)  = Σ_k w_k N(x; b_t m_k, v_t I),          v_t = a_t² + b_t² s² + σ²
    u_t(x)  = Σ_k γ_k(x) [ḃ_t m_k + (ȧ_t a_t + ḃ_t b_t s²)/v_t · (x − b_t m_k)]

with posterior weights γ_k(x) ∝ w_k N(x; b_t m_k, v_t I). This is the slide's
p_t(x) = ∫ p_t(x|x₁) q(x₁) dx₁ and u_t(x) = ∫ u_t(x|x₁) p_t(x|x₁) q(x₁) / p_t(x) dx₁ made
exact — the ground truth for L_FM. Taught in: notebook 07.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..core.fields import batch_time
from ..data.toy2d import EIGHT_GAUSSIANS_STD, eight_gaussians_means
from .paths import AffinePath


@dataclass
class MixtureTarget:
    """Data q = Σ_k w_k N(m_k, s² I); ``std = 0`` gives the empirical measure of ``means``."""

    means: Tensor  # (K, D)
    std: float = 0.0
    weights: Tensor | None = None  # (K,), defaults to uniform

    def __post_init__(self) -> None:
        if not isinstance(self.means, Tensor) or self.means.ndim != 2 or not self.means.is_floating_point():
            raise ValueError("means must be a floating-point tensor of shape (K, D)")
        if self.std < 0:
            raise ValueError(f"std must be >= 0, got {self.std}")
        k = self.means.shape[0]
        w = torch.full((k,), 1.0 / k, dtype=self.means.dtype) if self.weights is None else self.weights
        if w.shape != (k,) or (w < 0).any():
            raise ValueError(f"weights must be non-negative with shape ({k},)")
        self.weights = (w / w.sum()).to(self.means)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` draws from q, shape (n, D)."""
        idx = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        noise = torch.randn(n, self.means.shape[1], dtype=self.means.dtype, generator=generator)
        return self.means[idx] + self.std * noise

    def _moments(self, path: AffinePath, t: Tensor | float, x: Tensor):
        tb = batch_time(t, x)[:, None]  # (n, 1)
        a, b, da, db = path.coefficients(tb)
        var = a**2 + b**2 * self.std**2 + path.sigma**2  # (n, 1)
        mu = b[:, :, None] * self.means[None]  # (n, 1, 1) * (1, K, D) -> (n, K, D)
        d = x.shape[1]
        sq = (x[:, None, :] - mu).pow(2).sum(-1)  # (n, K)
        logn = -0.5 * sq / var - 0.5 * d * torch.log(2 * math.pi * var)
        return a, b, da, db, var, mu, logn + torch.log(self.weights)[None]

    def log_prob_t(self, path: AffinePath, t: Tensor | float, x: Tensor) -> Tensor:
        """log p_t(x), shape (n,)."""
        *_, logjoint = self._moments(path, t, x)
        return torch.logsumexp(logjoint, 1)

    def posterior(self, path: AffinePath, t: Tensor | float, x: Tensor) -> Tensor:
        """γ_k(x) = P(component k | x_t = x), shape (n, K)."""
        *_, logjoint = self._moments(path, t, x)
        return torch.softmax(logjoint, 1)

    def component_fields(self, path: AffinePath, t: Tensor | float, x: Tensor) -> Tensor:
        """E[u_t | x_t = x, component k], shape (n, K, D) (= u_t(x | m_k) when std = 0)."""
        a, b, da, db, var, mu, _ = self._moments(path, t, x)
        gain = (da * a + db * b * self.std**2) / var  # (n, 1)
        return db[:, :, None] * self.means[None] + gain[:, :, None] * (x[:, None, :] - mu)

    def marginal_field(self, path: AffinePath, t: Tensor | float, x: Tensor) -> Tensor:
        """u_t(x) = Σ_k γ_k(x) E[u_t | x, k], shape (n, D)."""
        gamma = self.posterior(path, t, x)
        return (gamma[:, :, None] * self.component_fields(path, t, x)).sum(1)

    def conditional_variance(self, path: AffinePath, t: Tensor | float, x: Tensor) -> Tensor:
        """E[‖u_t(x | x₁) − u_t(x)‖² | x_t = x], shape (n,): how far the CFM target scatters around
        the marginal field at x. Its mean over x ~ p_t is L_CFM − L_FM at time t, whatever θ.

        Between components, the spread of E[u_t | x, k] around u_t(x); within component k,
        Var[u_t | x, k] = d (ȧ² + ḃ² s² − (ȧ a + ḃ b s²)² / v_t) (u_t and x_t jointly Gaussian).
        """
        a, b, da, db, var, _, logjoint = self._moments(path, t, x)
        gamma = torch.softmax(logjoint, 1)
        comp = self.component_fields(path, t, x)
        u = (gamma[:, :, None] * comp).sum(1)
        between = (gamma * (comp - u[:, None]).pow(2).sum(-1)).sum(1)
        s2 = self.std**2
        within = x.shape[1] * (da**2 + db**2 * s2 - (da * a + db * b * s2) ** 2 / var)
        return between + within[:, 0]

    def sample_t(self, path: AffinePath, t: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """x_t ~ p_t for each t in ``t`` (shape (n,)), drawn through the conditional path."""
        x1 = self.sample(t.shape[0], generator)
        return path.sample(x1, t=t.to(x1), generator=generator).x_t


def eight_gaussians_target(dtype: torch.dtype = torch.float64) -> MixtureTarget:
    """The ``8gaussians`` toy set (:func:`coursekit.data.toy2d.eight_gaussians`) as an exact mixture."""
    return MixtureTarget(eight_gaussians_means(dtype), std=EIGHT_GAUSSIANS_STD)


__all__ = ["MixtureTarget", "eight_gaussians_target"]
