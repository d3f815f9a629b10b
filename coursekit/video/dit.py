"""A small diffusion transformer (DiT) over video latents: the field ``v_θ(t, z)`` of latent
flow matching.

The latent ``z`` (B, C, T', h, w) is cut into patches of ``p_t × 2 × 2`` (time × height ×
width) by a strided 3-D convolution, as in MovieGen (which uses p_t = 1); each patch is a
token. Positions use
MovieGen's *factorised learnable* embeddings (one table for time, one for rows, one for
columns, added together), so the same weights accept any number of latent frames up to
``max_frames``. The flow time ``t`` conditions every block through adaptive layer norm
(adaLN-Zero of DiT: ``t`` sets a shift, a scale and a gate per block; the gates start at 0
so the untrained network is the identity on its residual stream). Queries and keys are
layer-normalised (QK-norm, as in Goku), which keeps attention logits tame.
Taught in: notebook 09.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10_000.0) -> Tensor:
    """Sinusoidal features (batch, dim) of flow times ``t`` ∈ [0, 1] (scaled by 1000 as in DiT)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=t.dtype) / half)
    args = 1000.0 * t[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    return x * (1 + scale[:, None]) + shift[:, None]


class DiTBlock(nn.Module):
    """Pre-norm transformer block with adaLN-Zero conditioning on the time embedding ``c``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be divisible by heads ({heads})")
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.q_norm = nn.LayerNorm(dim // heads)
        self.k_norm = nn.LayerNorm(dim // heads)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, dim))
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))
        nn.init.zeros_(self.ada[1].weight)  # adaLN-Zero: every block starts as the identity
        nn.init.zeros_(self.ada[1].bias)

    def attention(self, x: Tensor) -> Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(self.q_norm(q), self.k_norm(k), v)  # full spatio-temporal
        return self.proj(y.transpose(1, 2).reshape(b, n, d))

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = self.ada(c).chunk(6, dim=1)
        x = x + gate1[:, None] * self.attention(modulate(self.norm1(x), shift1, scale1))
        return x + gate2[:, None] * self.mlp(modulate(self.norm2(x), shift2, scale2))


class LatentDiT(nn.Module):
    """Velocity field ``v_θ(t, z)`` on latents (B, C, T', h, w) → same shape.

    Call it as a torchdiffeq-style field: ``dit(t, z)`` with ``t`` a scalar or shape (batch,).
    """

    def __init__(self, latent_channels: int = 4, spatial: int = 8, max_frames: int = 16, patch: int = 2,
                 patch_t: int = 1, dim: int = 96, depth: int = 4, heads: int = 4, mlp_ratio: float = 4.0):
        super().__init__()
        if spatial % patch:
            raise ValueError(f"spatial size {spatial} must be divisible by patch {patch}")
        self.config = dict(latent_channels=latent_channels, spatial=spatial, max_frames=max_frames,
                           patch=patch, patch_t=patch_t, dim=dim, depth=depth, heads=heads, mlp_ratio=mlp_ratio)
        self.latent_channels, self.spatial, self.max_frames = latent_channels, spatial, max_frames
        self.patch, self.patch_t = patch, patch_t
        self.embed = nn.Conv3d(latent_channels, dim, (patch_t, patch, patch), stride=(patch_t, patch, patch))
        side = spatial // patch
        self.pos_t = nn.Parameter(0.02 * torch.randn(max_frames // patch_t, dim))  # factorised positions
        self.pos_h = nn.Parameter(0.02 * torch.randn(side, dim))
        self.pos_w = nn.Parameter(0.02 * torch.randn(side, dim))
        self.t_mlp = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.blocks = nn.ModuleList(DiTBlock(dim, heads, mlp_ratio) for _ in range(depth))
        self.norm_out = nn.LayerNorm(dim, elementwise_affine=False)
        self.ada_out = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))
        self.out = nn.Linear(dim, latent_channels * patch_t * patch * patch)
        for layer in (self.ada_out[1], self.out):  # zero output: the untrained field is v = 0
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def _check(self, t: Tensor | float, z: Tensor) -> Tensor:
        if not isinstance(z, Tensor) or z.ndim != 5 or z.shape[1] != self.latent_channels \
                or z.shape[3:] != (self.spatial, self.spatial):
            raise ValueError(f"z must have shape (batch, {self.latent_channels}, T', {self.spatial}, "
                             f"{self.spatial}), got {tuple(getattr(z, 'shape', ()))}")
        if z.shape[2] > self.max_frames or z.shape[2] % self.patch_t:
            raise ValueError(f"z has {z.shape[2]} latent frames; this model takes a multiple of "
                             f"{self.patch_t} up to {self.max_frames}")
        t = torch.as_tensor(t, dtype=z.dtype, device=z.device)
        if t.ndim == 0:
            t = t.expand(z.shape[0])
        if t.shape != (z.shape[0],):
            raise ValueError(f"t must be a scalar or have shape (batch,) = ({z.shape[0]},), got {tuple(t.shape)}")
        return t

    def forward(self, t: Tensor | float, z: Tensor) -> Tensor:
        t = self._check(t, z)
        b, _, t_len, h, w = z.shape
        x = self.embed(z)  # (B, dim, T'/p_t, h/p, w/p): one token per p_t×p×p patch
        _, d, n_t, hp, wp = x.shape
        pos = self.pos_t[:n_t, None, None] + self.pos_h[None, :, None] + self.pos_w[None, None, :]
        x = x.permute(0, 2, 3, 4, 1) + pos  # (B, T', h/p, w/p, dim)
        x = x.reshape(b, n_t * hp * wp, d)
        c = self.t_mlp(timestep_embedding(t, d))
        for block in self.blocks:
            x = block(x, c)
        shift, scale = self.ada_out(c).chunk(2, dim=1)
        x = self.out(modulate(self.norm_out(x), shift, scale))  # (B, N, C·p_t·p·p)
        p, pt = self.patch, self.patch_t
        x = x.reshape(b, n_t, hp, wp, self.latent_channels, pt, p, p)
        return x.permute(0, 4, 1, 5, 2, 6, 3, 7).reshape(b, self.latent_channels, t_len, h, w)

    def n_tokens(self, n_frames: int) -> int:
        return n_frames // self.patch_t * (self.spatial // self.patch) ** 2


__all__ = ["DiTBlock", "LatentDiT", "modulate", "timestep_embedding"]
