"""Training and sampling glue for the toy video generator: clips → TAE latents → latent flow
matching with :class:`~coursekit.video.dit.LatentDiT` → Euler sampling → decoded clips.

Latent flow matching (rectified flow): with noise ``z₀ ~ N(0, I)`` at t = 0 and a
normalised data latent ``z₁`` at t = 1, the straight path ``z_t = (1 − t) z₀ + t z₁`` has
velocity ``u_t = z₁ − z₀``; the transformer learns ``v_θ(t, z_t) ≈ u_t`` by regression
(the CFM loss of lesson 07), and sampling integrates ``dz/dt = v_θ(t, z)`` from t = 0 to 1
with a few Euler steps (:func:`coursekit.matching.euler_sample`). Taught in: notebook 09.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..matching import LinearPath, cfm_loss, euler_sample
from ..training.loop import fit, load_checkpoint, save_checkpoint
from .dit import LatentDiT
from .tae import TemporalAutoencoder, tae_loss

#: Where ``scripts/train_video.py`` writes the shipped checkpoint.
CHECKPOINT = Path(__file__).resolve().parents[2] / "data" / "checkpoints" / "video_toy.pt"


@dataclass
class LatentNormalizer:
    """Per-channel affine map to unit scale: ``ẑ = (z − mean) / std`` (flow matching starts
    from N(0, I), so the data latents should live at the same scale)."""

    mean: Tensor
    std: Tensor

    @classmethod
    def fit(cls, z: Tensor) -> LatentNormalizer:
        dims = [d for d in range(z.ndim) if d != 1]
        return cls(z.mean(dim=dims), z.std(dim=dims))

    def _view(self, v: Tensor, z: Tensor) -> Tensor:
        return v.to(z).reshape(1, -1, *([1] * (z.ndim - 2)))

    def normalize(self, z: Tensor) -> Tensor:
        return (z - self._view(self.mean, z)) / self._view(self.std, z)

    def denormalize(self, z: Tensor) -> Tensor:
        return z * self._view(self.std, z) + self._view(self.mean, z)


def as_clips(clips, device=None) -> Tensor:
    """A numpy array or tensor of clips (N, T, H, W) as a float32 tensor on ``device``."""
    x = torch.as_tensor(np.asarray(clips) if not isinstance(clips, Tensor) else clips)
    if x.ndim != 4:
        raise ValueError(f"clips must have shape (N, T, H, W), got {tuple(x.shape)}")
    return x.float().to(device)


@torch.no_grad()
def encode_clips(tae: TemporalAutoencoder, clips, batch_size: int = 128) -> Tensor:
    """Latents (N, C, T', h, w) of many clips, encoded in batches (on the TAE's device)."""
    dev = next(tae.parameters()).device
    x = as_clips(clips)
    tae.eval()
    return torch.cat([tae.encode(x[i:i + batch_size].to(dev)) for i in range(0, len(x), batch_size)])


def rectified_flow_loss(field, z1: Tensor) -> Tensor:
    """CFM loss on the straight path (lesson 07's :func:`~coursekit.matching.cfm_loss` with
    :class:`~coursekit.matching.LinearPath`): ``E ‖v_θ(t, (1−t) z₀ + t z₁) − (z₁ − z₀)‖²``,
    averaged over the latent's entries (``reduce_dims="mean"``) so its scale does not depend
    on the latent size."""
    return cfm_loss(field, z1, LinearPath(), reduce_dims="mean")


def train_tae(tae: TemporalAutoencoder, clips, n_steps: int, batch_size: int = 16, lr: float = 2e-3,
              checkpoint=None, progress: bool = True, seed: int = 0):
    """Fit the TAE on random batches of ``clips`` with :func:`coursekit.train.fit`; returns the history."""
    x = as_clips(clips)
    dev = next(tae.parameters()).device
    opt = torch.optim.Adam(tae.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)

    def loss_fn(step: int):
        idx = torch.randint(0, len(x), (batch_size,), generator=gen)
        return tae_loss(tae, x[idx].to(dev))

    return fit(loss_fn, tae, opt, n_steps, checkpoint=checkpoint, progress=progress, desc="TAE")


def train_flow(dit: LatentDiT, latents: Tensor, n_steps: int, batch_size: int = 64, lr: float = 1e-3,
               checkpoint=None, progress: bool = True, seed: int = 0):
    """Fit the transformer field on normalised latents with the rectified-flow loss."""
    dev = next(dit.parameters()).device
    opt = torch.optim.AdamW(dit.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 100))  # short warm-up
    gen = torch.Generator().manual_seed(seed)

    def loss_fn(step: int):
        idx = torch.randint(0, len(latents), (batch_size,), generator=gen)
        return rectified_flow_loss(dit, latents[idx].to(dev))

    return fit(loss_fn, dit, opt, n_steps, checkpoint=checkpoint, scheduler=sched, progress=progress,
               clip_grad_norm=1.0, desc="flujo latente")


@dataclass
class VideoModel:
    """The three trained pieces plus metadata (data provenance, training times, sizes)."""

    tae: TemporalAutoencoder
    dit: LatentDiT
    normalizer: LatentNormalizer
    meta: dict = field(default_factory=dict)

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
        shape = (n, self.dit.latent_channels, n_frames // self.tae.time_factor, self.dit.spatial, self.dit.spatial)
        gen = torch.Generator().manual_seed(seed)
        z0 = torch.randn(shape, generator=gen).to(self.device)
        self.dit.eval()
        return euler_sample(self.dit, z0, n_steps)

    @torch.no_grad()
    def generate(self, n: int, n_frames: int = 16, n_steps: int = 8, seed: int = 0) -> Tensor:
        """``n`` new clips (n, T, H, W) in [0, 1]: noise → latent flow → TAE decoder."""
        self.tae.eval()
        return self.tae.decode(self.normalizer.denormalize(self.sample_latents(n, n_frames, n_steps, seed)))

    def save(self, path=CHECKPOINT, half: bool = True) -> Path:
        """Write both networks (float16 when ``half``: halves the file) and the metadata."""
        def pack(m):
            return {k: v.half() if half and v.is_floating_point() else v for k, v in m.state_dict().items()}

        save_checkpoint(path, tae=pack(self.tae), tae_config=self.tae.config, dit=pack(self.dit),
                        dit_config=self.dit.config, norm_mean=self.normalizer.mean.cpu(),
                        norm_std=self.normalizer.std.cpu(), meta=self.meta)
        return Path(path)


def load_video_model(path=None, device=None) -> VideoModel:
    """Load a :class:`VideoModel` written by :meth:`VideoModel.save` (float32 on ``device``);
    ``path=None``: the shipped ``video_toy.pt`` (found or fetched by :mod:`coursekit.checkpoints`)."""
    if path is None:
        from ..training.checkpoints import locate as checkpoint_path

        path = checkpoint_path(CHECKPOINT.name)
    if not Path(path).exists():
        raise FileNotFoundError(f"no video checkpoint at {path}; train one with scripts/train_video.py")
    state = load_checkpoint(path, map_location="cpu")
    tae, dit = TemporalAutoencoder(**state["tae_config"]), LatentDiT(**state["dit_config"])
    tae.load_state_dict({k: v.float() for k, v in state["tae"].items()})
    dit.load_state_dict({k: v.float() for k, v in state["dit"].items()})
    model = VideoModel(tae.eval(), dit.eval(), LatentNormalizer(state["norm_mean"], state["norm_std"]), state["meta"])
    return model.to(device or "cpu")


@torch.no_grad()
def time_sampling(model: VideoModel, n_steps: int, n: int = 8, repeats: int = 1) -> float:
    """Seconds per generated clip (latent sampling + decoding) with ``n_steps`` Euler steps."""
    model.generate(1, n_steps=1)  # warm-up
    t0 = time.perf_counter()
    for r in range(repeats):
        model.generate(n, n_steps=n_steps, seed=r)
    return (time.perf_counter() - t0) / (n * repeats)


__all__ = ["CHECKPOINT", "LatentNormalizer", "VideoModel", "as_clips", "encode_clips",
           "load_video_model", "rectified_flow_loss", "time_sampling", "train_flow", "train_tae"]
