"""A small diffusion transformer (DiT) over video latents: the field ``v_θ(t, z)`` of latent
flow matching.

The latent ``z`` (B, C, T', h, w) is cut into patches of ``p_t × 2 × 2`` (time × height ×
width) by a strided 3-D convolution, as in MovieGen (which uses p_t = 1); each patch is a
token of ``width`` features. Positions use MovieGen's *factorised learnable* embeddings (one
table for time, one for rows, one for columns, added together), so the same weights accept
any number of latent frames up to ``max_frames``. The flow time ``t`` conditions every block
through adaptive layer norm (adaLN-Zero of DiT: ``t`` sets a shift, a scale and a gate per
block; the gates start at 0 so the untrained network is the identity on its residual
stream). Queries and keys are layer-normalised (QK-norm, as in Goku), which keeps attention
logits tame. Taught in: notebook 09.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..core.checks import positive_int
from ..core.fields import batch_time, time_embedding

#: DiT's time features: ``t`` ∈ [0, 1] is read as 1000·t with periods up to 10,000, i.e. angular
#: frequencies 1000·10000^(−k/half), k = 0 … half−1 (the highest is 1000).
TIME_MAX_FREQ = 1000.0
TIME_PERIOD = 10_000.0


def time_freq_range(width: int) -> tuple[float, float]:
    """``(min_freq, max_freq)`` of :func:`~coursekit.core.fields.time_embedding` giving DiT's
    frequencies 1000·10000^(−k/half), k = 0 … half−1, for ``width = 2·half`` features."""
    half = width // 2
    return TIME_MAX_FREQ * TIME_PERIOD ** (-(half - 1) / half), TIME_MAX_FREQ


def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """adaLN: ``x · (1 + scale) + shift``, one shift and scale per sample, shared by its tokens."""
    return x * (1 + scale[:, None]) + shift[:, None]


class DiTBlock(nn.Module):
    """Pre-norm transformer block on tokens of ``width`` features, adaLN-Zero conditioned on ``c``."""

    def __init__(self, width: int, heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        positive_int(width, "width")
        positive_int(heads, "heads")
        if width % heads:
            raise ValueError(f"width ({width}) must be divisible by heads ({heads})")
        self.heads = heads
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False)
        self.qkv = nn.Linear(width, 3 * width)
        self.q_norm = nn.LayerNorm(width // heads)
        self.k_norm = nn.LayerNorm(width // heads)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, width))
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(width, 6 * width))
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

    A vector field of :mod:`coursekit.core.fields`: ``dit(t, z)`` with ``t`` a scalar or
    shape (batch,). ``width`` is the token width (features per token).
    """

    def __init__(self, latent_channels: int = 4, spatial: int = 8, max_frames: int = 16, patch: int = 2,
                 patch_t: int = 1, width: int = 96, depth: int = 4, heads: int = 4, mlp_ratio: float = 4.0):
        super().__init__()
        for name, value in (("latent_channels", latent_channels), ("spatial", spatial), ("max_frames", max_frames),
                            ("patch", patch), ("patch_t", patch_t), ("width", width), ("depth", depth)):
            positive_int(value, name)
        if spatial % patch:
            raise ValueError(f"spatial size {spatial} must be divisible by patch {patch}")
        if width % 2:
            raise ValueError(f"width must be even (sin and cos time features), got {width}")
        self.config = dict(latent_channels=latent_channels, spatial=spatial, max_frames=max_frames,
                           patch=patch, patch_t=patch_t, width=width, depth=depth, heads=heads, mlp_ratio=mlp_ratio)
        self.latent_channels, self.spatial, self.max_frames = latent_channels, spatial, max_frames
        self.patch, self.patch_t, self.width = patch, patch_t, width
        self.embed = nn.Conv3d(latent_channels, width, (patch_t, patch, patch), stride=(patch_t, patch, patch))
        side = spatial // patch
        self.pos_t = nn.Parameter(0.02 * torch.randn(max_frames // patch_t, width))  # factorised positions
        self.pos_h = nn.Parameter(0.02 * torch.randn(side, width))
        self.pos_w = nn.Parameter(0.02 * torch.randn(side, width))
        self.t_mlp = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
        self.blocks = nn.ModuleList(DiTBlock(width, heads, mlp_ratio) for _ in range(depth))
        self.norm_out = nn.LayerNorm(width, elementwise_affine=False)
        self.ada_out = nn.Sequential(nn.SiLU(), nn.Linear(width, 2 * width))
        self.out = nn.Linear(width, latent_channels * patch_t * patch * patch)
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
        return batch_time(t, z)

    def time_features(self, t: Tensor) -> Tensor:
        """Sinusoidal features (batch, width) of the flow times, DiT's frequencies (:func:`time_freq_range`)."""
        min_freq, max_freq = time_freq_range(self.width)
        return time_embedding(t, self.width, min_freq=min_freq, max_freq=max_freq)

    def forward(self, t: Tensor | float, z: Tensor) -> Tensor:
        t = self._check(t, z)
        b, _, t_len, h, w = z.shape
        x = self.embed(z)  # (B, width, T'/p_t, h/p, w/p): one token per p_t×p×p patch
        _, d, n_t, hp, wp = x.shape
        pos = self.pos_t[:n_t, None, None] + self.pos_h[None, :, None] + self.pos_w[None, None, :]
        x = x.permute(0, 2, 3, 4, 1) + pos  # (B, T', h/p, w/p, width)
        x = x.reshape(b, n_t * hp * wp, d)
        c = self.t_mlp(self.time_features(t))
        for block in self.blocks:
            x = block(x, c)
        shift, scale = self.ada_out(c).chunk(2, dim=1)
        x = self.out(modulate(self.norm_out(x), shift, scale))  # (B, N, C·p_t·p·p)
        p, pt = self.patch, self.patch_t
        x = x.reshape(b, n_t, hp, wp, self.latent_channels, pt, p, p)
        return x.permute(0, 4, 1, 5, 2, 6, 3, 7).reshape(b, self.latent_channels, t_len, h, w)

    def n_tokens(self, n_frames: int) -> int:
        """Tokens per clip of ``n_frames`` latent frames: ``T'/p_t · (h/p) · (w/p)``."""
        return n_frames // self.patch_t * (self.spatial // self.patch) ** 2


__all__ = ["DiTBlock", "LatentDiT", "TIME_MAX_FREQ", "TIME_PERIOD", "modulate", "time_freq_range"]
