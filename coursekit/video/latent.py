"""Latent flow matching for video: the normalised latent space, the rectified-flow loss, and
the generator that chains them (noise → Euler → TAE decoder).

Rectified flow: with noise ``z₀ ~ N(0, I)`` at t = 0 and a normalised data latent ``z₁`` at
t = 1, the straight path ``z_t = (1 − t) z₀ + t z₁`` has velocity ``u_t = z₁ − z₀``; the
transformer learns ``v_θ(t, z_t) ≈ u_t`` by regression (the CFM loss of lesson 07), and
sampling integrates ``dz/dt = v_θ(t, z)`` from t = 0 to 1 with a few Euler steps
(:func:`coursekit.matching.euler_sample`). Taught in: notebook 09.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..core.checks import positive_int
from ..matching import LinearPath, cfm_loss, euler_sample
from .dit import LatentDiT
from .tae import TemporalAutoencoder


@dataclass
class LatentNormalizer:
    """Per-channel affine map to unit scale: ``ẑ = (z − mean) / std`` (flow matching starts
    from N(0, I), so the data latents should live at the same scale)."""

    mean: Tensor
    std: Tensor

    @classmethod
    def fit(cls, z: Tensor) -> LatentNormalizer:
        """Mean and std of each channel of latents ``z`` (N, C, ...), over every other axis."""
        dims = [d for d in range(z.ndim) if d != 1]
        return cls(z.mean(dim=dims), z.std(dim=dims))

    def _view(self, v: Tensor, z: Tensor) -> Tensor:
        return v.to(z).reshape(1, -1, *([1] * (z.ndim - 2)))

    def normalize(self, z: Tensor) -> Tensor:
        return (z - self._view(self.mean, z)) / self._view(self.std, z)

    def denormalize(self, z: Tensor) -> Tensor:
        return z * self._view(self.std, z) + self._view(self.mean, z)


def rectified_flow_loss(field, z1: Tensor, z0: Tensor | None = None, t: Tensor | None = None) -> Tensor:
    """CFM loss on the straight path (lesson 07's :func:`~coursekit.matching.cfm_loss` with
    :class:`~coursekit.matching.LinearPath`): ``E ‖v_θ(t, (1−t) z₀ + t z₁) − (z₁ − z₀)‖²``,
    averaged over the latent's entries (``reduce_dims="mean"``) so its scale does not depend
    on the latent size. ``z0`` (noise, like ``z1``) and ``t`` (batch,) are drawn when not given;
    pass them to compare two implementations on the same draws."""
    return cfm_loss(field, z1, LinearPath(), x0=z0, t=t, reduce_dims="mean")


@dataclass
class VideoModel:
    """The generator: temporal autoencoder, latent field ``v_θ`` and the latent normalizer."""

    tae: TemporalAutoencoder
    dit: LatentDiT
    normalizer: LatentNormalizer

    def to(self, device) -> VideoModel:
        self.tae.to(device)
        self.dit.to(device)
        return self

    @property
    def device(self) -> torch.device:
        return next(self.tae.parameters()).device

    @torch.no_grad()
    def sample_latents(self, n: int, n_frames: int = 16, n_steps: int = 8, seed: int = 0) -> Tensor:
        """Normalised latents (n, C, T', h, w) drawn by Euler-integrating the learned field."""
        for name, value in (("n", n), ("n_frames", n_frames), ("n_steps", n_steps)):
            positive_int(value, name)
        shape = (n, self.dit.latent_channels, n_frames // self.tae.time_factor, self.dit.spatial, self.dit.spatial)
        gen = torch.Generator().manual_seed(seed)  # on the CPU: the same clips on every device
        z0 = torch.randn(shape, generator=gen).to(self.device)
        self.dit.eval()
        return euler_sample(self.dit, z0, n_steps)

    @torch.no_grad()
    def generate(self, n: int, n_frames: int = 16, n_steps: int = 8, seed: int = 0) -> Tensor:
        """``n`` new clips (n, T, H, W) in [0, 1]: noise → latent flow → TAE decoder."""
        self.tae.eval()
        return self.tae.decode(self.normalizer.denormalize(self.sample_latents(n, n_frames, n_steps, seed)))


__all__ = ["LatentNormalizer", "VideoModel", "rectified_flow_loss"]
