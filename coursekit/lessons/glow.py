"""Lesson 03's recipes: train and evaluate Glow on MNIST, the permutation ablation of the
Glow paper, and the shipped checkpoint ``glow_mnist.pt`` (kind ``"glow"``).

The loss is the negative log-likelihood in bits per dimension of freshly dequantized
batches (``Dequantize`` → ``flow.log_prob`` → ``bits_per_dim``). Evaluation uses the
held-out images only (offline: MNIST test-split images 8,000–9,999).

Taught in: notebook 03.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from ..core.checks import positive_int
from ..flows.base import Flow
from ..flows.dequantize import Dequantize, bits_per_dim
from ..flows.glow import mnist_glow
from ..training import checkpoints
from ..training.loop import fit

KIND = "glow"


def as_pixels(images) -> Tensor:
    """uint8 ``(N, 28, 28)`` (NumPy or torch) → uint8 tensor ``(N, 1, 28, 28)``."""
    t = torch.as_tensor(images.copy() if hasattr(images, "copy") else images)
    if t.dtype != torch.uint8 or t.dim() not in (3, 4):
        raise ValueError(f"images must be uint8 of shape (N, H, W) or (N, 1, H, W), got {t.dtype} {tuple(t.shape)}")
    return t.unsqueeze(1) if t.dim() == 3 else t


@torch.no_grad()
def evaluate_bpd(flow: Flow, images, batch: int = 500, seed: int = 0) -> float:
    """Mean bits/dim of ``flow`` on uint8 ``images`` with one fixed dequantization draw."""
    images = as_pixels(images)
    positive_int(batch, "batch")
    deq, gen, vals = Dequantize(), torch.Generator().manual_seed(seed), []
    anchor = next(flow.parameters())
    dims = images[0].numel()
    was_training = flow.training
    flow.eval()
    for i in range(0, len(images), batch):
        y = deq(images[i:i + batch], generator=gen, dtype=anchor.dtype).to(anchor.device)
        vals.append(bits_per_dim(flow.log_prob(y), dims).cpu())
    flow.train(was_training)
    return torch.cat(vals).mean().item()


def bpd_loss(flow: Flow, images, batch: int = 64):
    """``loss(step)`` for :func:`coursekit.training.fit`: bits/dim of a random dequantized batch."""
    images = as_pixels(images)
    positive_int(batch, "batch")
    deq, dims = Dequantize(), images[0].numel()
    anchor = next(flow.parameters())

    def loss_fn(step: int):
        idx = torch.randint(len(images), (batch,))
        y = deq(images[idx], dtype=anchor.dtype).to(anchor.device)
        bpd = bits_per_dim(flow.log_prob(y), dims).mean()
        return {"loss": bpd, "bpd": bpd}

    return loss_fn


def init_actnorm(flow: Flow, images, n: int = 512) -> None:
    """Run one data batch through ``log_prob``: every ActNorm takes its data-dependent init."""
    images = as_pixels(images)
    anchor = next(flow.parameters())
    with torch.no_grad():
        flow.log_prob(Dequantize()(images[:n], dtype=anchor.dtype).to(anchor.device))


# --- the shipped checkpoint -------------------------------------------------------------

def save_model(path: str | os.PathLike, flow: Flow, config: dict, meta: dict | None = None) -> Path:
    """Write ``flow`` as a ``"glow"`` checkpoint; ``config`` holds the :func:`mnist_glow` arguments."""
    state = {k: v.detach().cpu() for k, v in flow.state_dict().items()}
    return checkpoints.save(path, KIND, {"model": state}, config=config, meta=meta)


def from_checkpoint(ckpt: checkpoints.Checkpoint, device) -> Flow:
    """The Glow of a ``"glow"`` checkpoint (``mnist_glow(**ckpt.config)``), in eval mode on ``device``."""
    if ckpt.kind != KIND:
        raise ValueError(f"{ckpt.path} holds a {ckpt.kind!r} checkpoint, not a {KIND!r} one")
    flow = mnist_glow(**ckpt.config)
    flow.load_state_dict(ckpt.state["model"])
    return flow.to(device).eval()


# --- the permutation ablation -----------------------------------------------------------

@dataclass
class AblationResult:
    """Per permutation: the training curve (bits/dim per step), held-out bits/dim, seconds."""

    curves: dict[str, list[float]] = field(default_factory=dict)
    heldout_bpd: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def permutation_ablation(train_images, eval_images, n_steps: int = 300, batch: int = 32,
                         permutations: Sequence[str] = ("lu", "reverse", "shuffle"), levels: int = 2,
                         flow_steps: int = 4, hidden: int = 16, lr: float = 1e-3, seed: int = 0,
                         device=None, progress: bool = True) -> AblationResult:
    """Same architecture, data order, initial seed and budget; only the channel mixing differs."""
    out = AblationResult()
    for perm in permutations:
        torch.manual_seed(seed)  # same coupling weights, same batches for every variant
        flow = mnist_glow(levels=levels, flow_steps=flow_steps, hidden=hidden, permutation=perm)
        if device is not None:
            flow = flow.to(device)
        init_actnorm(flow, train_images)
        opt = torch.optim.Adam(flow.parameters(), lr=lr)
        t0 = time.perf_counter()
        hist = fit(bpd_loss(flow, train_images, batch), flow, opt, n_steps, progress=progress,
                   desc=f"ablación {perm}", clip_grad_norm=50.0)
        out.seconds[perm] = time.perf_counter() - t0
        out.curves[perm] = hist["bpd"]
        out.heldout_bpd[perm] = evaluate_bpd(flow, eval_images)
    return out


__all__ = ["KIND", "AblationResult", "as_pixels", "bpd_loss", "evaluate_bpd", "from_checkpoint", "init_actnorm",
           "permutation_ablation", "save_model"]
