"""Lesson 09's recipes: train the temporal autoencoder and the latent field, encode a clip set,
rebuild the shipped generator ``video_toy.pt``, time generation. The model itself lives in
:mod:`coursekit.video`. Taught in: notebook 09.

    from coursekit.lessons import video as lesson
    tae_history = lesson.train_tae(tae, clips, n_steps=300)
    model = coursekit.lessons.load_model("video_toy.pt").model     # a VideoModel

``scripts/train_video.py`` trains the shipped checkpoint with these functions and writes it
with :func:`save_model` (kind ``"video"``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from ..core.checks import positive_int
from ..core.history import History
from ..training import fit
from ..training.checkpoints import REPO_DIR, Checkpoint, save
from ..video.dit import LatentDiT
from ..video.latent import LatentNormalizer, VideoModel, rectified_flow_loss
from ..video.tae import TemporalAutoencoder, tae_loss

if TYPE_CHECKING:
    from ..training.distributed import Distributed

KIND = "video"
#: Where ``scripts/train_video.py`` writes the shipped checkpoint.
CHECKPOINT = REPO_DIR / "video_toy.pt"


def as_clips(clips, device=None) -> Tensor:
    """A numpy array or tensor of clips (N, T, H, W) as a float32 tensor on ``device``."""
    x = clips if isinstance(clips, Tensor) else torch.as_tensor(np.asarray(clips))
    if x.ndim != 4:
        raise ValueError(f"clips must have shape (N, T, H, W), got {tuple(x.shape)}")
    return x.float().to(device)


@torch.no_grad()
def _in_batches(fn, tae: TemporalAutoencoder, clips, batch_size: int) -> Tensor:
    positive_int(batch_size, "batch_size")
    dev = next(tae.parameters()).device
    x = as_clips(clips)
    tae.eval()
    return torch.cat([fn(x[i:i + batch_size].to(dev)) for i in range(0, len(x), batch_size)])


def encode_clips(tae: TemporalAutoencoder, clips, batch_size: int = 128) -> Tensor:
    """Latents (N, C, T', h, w) of many clips, encoded in batches (on the TAE's device)."""
    return _in_batches(tae.encode, tae, clips, batch_size)


def reconstruct(tae: TemporalAutoencoder, clips, batch_size: int = 32) -> Tensor:
    """``D(E(x))`` of many clips (N, T, H, W), in batches, on the TAE's device."""
    return _in_batches(lambda x: tae(x)[0], tae, clips, batch_size)


def train_tae(tae: TemporalAutoencoder, clips, n_steps: int, batch_size: int = 16, lr: float = 2e-3,
              checkpoint=None, progress: bool = True, seed: int = 0,
              distributed: Distributed | None = None) -> History:
    """Fit the TAE (:func:`~coursekit.video.tae.tae_loss`) on random batches of ``clips`` with
    :func:`coursekit.training.fit`; returns the history (``loss``, ``bce``, ``mse``, ``opl``).

    ``distributed`` (:mod:`coursekit.training.distributed`): ``batch_size`` is the global
    batch; every rank draws its indices and keeps its share. The reconstruction term is then
    the global batch's; the outlier penalty uses each rank's own batch statistics (like an
    unsynchronised BatchNorm), so that small term depends on the world size."""
    positive_int(batch_size, "batch_size")
    x = as_clips(clips)
    dev = next(tae.parameters()).device
    part = distributed.shard.part(batch_size, "batch_size") if distributed is not None else slice(None)
    loss_of = distributed.wrap(tae, tae_loss) if distributed is not None else (lambda x: tae_loss(tae, x))
    opt = torch.optim.Adam(tae.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)

    def loss_fn(step: int):
        idx = torch.randint(0, len(x), (batch_size,), generator=gen)
        return loss_of(x[idx[part]].to(dev))

    return fit(loss_fn, tae, opt, n_steps, checkpoint=checkpoint, progress=progress, desc="TAE", generators=[gen],
               distributed=distributed)


def train_flow(dit: LatentDiT, latents: Tensor, n_steps: int, batch_size: int = 64, lr: float = 1e-3,
               checkpoint=None, progress: bool = True, seed: int = 0,
               distributed: Distributed | None = None) -> History:
    """Fit the transformer field on normalised latents with the rectified-flow loss.

    ``distributed`` (:mod:`coursekit.training.distributed`): ``batch_size`` is the global
    batch; every rank draws the whole batch's indices, noise z₀ and times t (the global RNG,
    on the CPU: the draws of ``distributed=None`` on the CPU) and keeps its share, so the run
    is the same at any world size."""
    positive_int(batch_size, "batch_size")
    dev = next(dit.parameters()).device
    opt = torch.optim.AdamW(dit.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 100))  # short warm-up
    gen = torch.Generator().manual_seed(seed)

    if distributed is None:
        def loss_fn(step: int):
            idx = torch.randint(0, len(latents), (batch_size,), generator=gen)
            return rectified_flow_loss(dit, latents[idx].to(dev))
    else:
        part, field = distributed.shard.part(batch_size, "batch_size"), distributed.wrap(dit)

        def loss_fn(step: int):  # the same draws as above, for the whole global batch
            idx = torch.randint(0, len(latents), (batch_size,), generator=gen)
            z0 = torch.randn((batch_size, *latents.shape[1:]), dtype=latents.dtype)  # randn_like(z1) on the CPU
            t = torch.rand(batch_size, dtype=latents.dtype)
            return rectified_flow_loss(field, latents[idx[part]].to(dev), z0[part].to(dev), t[part].to(dev))

    return fit(loss_fn, dit, opt, n_steps, checkpoint=checkpoint, scheduler=sched, progress=progress,
               clip_grad_norm=1.0, desc="flujo latente", generators=[gen], distributed=distributed)


# --- the shipped checkpoint ------------------------------------------------------------------


def save_model(model: VideoModel, path=CHECKPOINT, meta: dict | None = None, half: bool = True) -> Path:
    """Write a :class:`~coursekit.video.latent.VideoModel` as a ``"video"`` checkpoint.

    Both networks go to ``state`` (float16 when ``half``: half the file); the normaliser's
    per-channel mean and std go to ``config`` as lists of floats, so they stay exact."""
    config = {"tae": dict(model.tae.config), "dit": dict(model.dit.config),
              "normalizer": {"mean": model.normalizer.mean.cpu().tolist(), "std": model.normalizer.std.cpu().tolist()}}
    state = {"tae": model.tae.state_dict(), "dit": model.dit.state_dict()}
    return save(path, KIND, state, config=config, meta=meta, half=half)


def from_checkpoint(ckpt: Checkpoint, device="cpu") -> VideoModel:
    """The :class:`~coursekit.video.latent.VideoModel` (float32, eval mode, on ``device``) of a
    ``"video"`` checkpoint; :func:`coursekit.lessons.load_model` calls it."""
    if ckpt.kind != KIND:
        raise ValueError(f"{ckpt.path} holds a {ckpt.kind!r} checkpoint, expected {KIND!r}")
    tae, dit = TemporalAutoencoder(**ckpt.config["tae"]), LatentDiT(**ckpt.config["dit"])
    tae.load_state_dict(ckpt.state["tae"])
    dit.load_state_dict(ckpt.state["dit"])
    norm = ckpt.config["normalizer"]
    normalizer = LatentNormalizer(torch.tensor(norm["mean"], dtype=torch.float32),
                                  torch.tensor(norm["std"], dtype=torch.float32))
    return VideoModel(tae.eval(), dit.eval(), normalizer).to(device)


# --- looking at generated clips --------------------------------------------------------------


def clip_stats(clips: Tensor) -> tuple[float, float]:
    """Mean ink (mean pixel value: is there a digit of the right size?) and mean
    ``|frame_{t+1} − frame_t|`` (does it move?) of clips (N, T, H, W)."""
    x = as_clips(clips)
    return float(x.mean()), float((x[:, 1:] - x[:, :-1]).abs().mean())


def timed_generate(model: VideoModel, n: int, n_steps: int, seed: int = 0, warmup: bool = True) -> tuple[Tensor, float]:
    """``(clips, seconds per clip)`` of ``model.generate(n, n_steps=n_steps, seed=seed)``
    (latent sampling and decoding); ``warmup`` first generates one clip with one step."""
    if warmup:
        model.generate(1, n_steps=1)
    t0 = time.perf_counter()
    clips = model.generate(n, n_steps=n_steps, seed=seed)
    if clips.is_cuda:  # CUDA runs asynchronously: wait for the clips before reading the clock
        torch.cuda.synchronize(clips.device)
    return clips, (time.perf_counter() - t0) / n


__all__ = ["CHECKPOINT", "KIND", "as_clips", "clip_stats", "encode_clips", "from_checkpoint", "reconstruct",
           "save_model", "timed_generate", "train_flow", "train_tae"]
