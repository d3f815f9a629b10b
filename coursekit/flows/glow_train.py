"""Training and evaluating Glow on MNIST, and the permutation ablation of the Glow paper.

The loss is the negative log-likelihood in bits per dimension of freshly dequantized
batches (``Dequantize`` → ``flow.log_prob`` → ``bits_per_dim``). Evaluation uses the
held-out images only (offline: MNIST test-split images 8,000–9,999).

Taught in: notebook 03.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from ..training.loop import History, fit, load_checkpoint
from .base import Flow
from .glow import Dequantize, bits_per_dim, mnist_glow


def as_pixels(images) -> Tensor:
    """uint8 ``(N, 28, 28)`` (NumPy or torch) → uint8 tensor ``(N, 1, 28, 28)``."""
    t = torch.as_tensor(images.copy() if hasattr(images, "copy") else images)
    if t.dtype != torch.uint8 or t.dim() not in (3, 4):
        raise ValueError(f"images must be uint8 of shape (N, H, W) or (N, 1, H, W), got {t.dtype} {tuple(t.shape)}")
    return t.unsqueeze(1) if t.dim() == 3 else t


@torch.no_grad()
def evaluate_bpd(flow: Flow, images: Tensor, batch: int = 500, seed: int = 0) -> float:
    """Mean bits/dim of ``flow`` on uint8 ``images`` with one fixed dequantization draw."""
    images = as_pixels(images)
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


def bpd_loss(flow: Flow, images: Tensor, batch: int = 64):
    """``loss(step)`` for :func:`coursekit.train.fit`: bits/dim of a random dequantized batch."""
    images = as_pixels(images)
    deq, dims = Dequantize(), images[0].numel()
    anchor = next(flow.parameters())

    def loss_fn(step: int):
        idx = torch.randint(len(images), (batch,))
        y = deq(images[idx], dtype=anchor.dtype).to(anchor.device)
        bpd = bits_per_dim(flow.log_prob(y), dims).mean()
        return {"loss": bpd, "bpd": bpd}

    return loss_fn


def init_actnorm(flow: Flow, images: Tensor, n: int = 512) -> None:
    """Run one data batch through ``log_prob``: every ActNorm takes its data-dependent init."""
    images = as_pixels(images)
    anchor = next(flow.parameters())
    with torch.no_grad():
        flow.log_prob(Dequantize()(images[:n], dtype=anchor.dtype).to(anchor.device))


def find_checkpoint(name: str = "glow_mnist.pt") -> Path | None:
    """The shipped checkpoint ``name`` (see :mod:`coursekit.checkpoints`: the repository's
    ``data/checkpoints/``, or a verified download when allowed); ``None`` when absent."""
    from ..training.checkpoints import find

    return find(name)


def load_glow(path, device=None) -> tuple[Flow, dict, list[float]]:
    """``(flow, meta, bpd_history)`` from a file written by ``scripts/train_glow.py``."""
    state = load_checkpoint(path, map_location="cpu")
    if "meta" not in state or "config" not in state["meta"]:
        raise ValueError(f"{path} is not a Glow checkpoint written by scripts/train_glow.py")
    meta = state["meta"]
    flow = mnist_glow(**meta["config"])
    flow.load_state_dict(state["model"])
    if device is not None:
        flow = flow.to(device)
    return flow, meta, list(state.get("history", []))


@dataclass
class AblationResult:
    """Per permutation: the training curve (bits/dim per step), held-out bits/dim, seconds."""

    curves: dict[str, list[float]] = field(default_factory=dict)
    heldout_bpd: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def permutation_ablation(train_images, eval_images, steps: int = 300, batch: int = 32,
                         permutations: Sequence[str] = ("lu", "reverse", "shuffle"), levels: int = 2,
                         flow_steps: int = 4, hidden: int = 16, lr: float = 1e-3, seed: int = 0,
                         device=None, progress: bool = True) -> AblationResult:
    """Same architecture, data order, initial seed and budget; only the channel mixing differs."""
    out = AblationResult()
    for perm in permutations:
        torch.manual_seed(seed)  # same coupling weights, same batches for every variant
        flow = mnist_glow(levels=levels, steps=flow_steps, hidden=hidden, permutation=perm)
        if device is not None:
            flow = flow.to(device)
        init_actnorm(flow, train_images)
        opt = torch.optim.Adam(flow.parameters(), lr=lr)
        t0 = time.perf_counter()
        hist: History = fit(bpd_loss(flow, train_images, batch), flow, opt, steps, progress=progress,
                            desc=f"ablación {perm}", clip_grad_norm=50.0)
        out.seconds[perm] = time.perf_counter() - t0
        out.curves[perm] = hist["bpd"]
        out.heldout_bpd[perm] = evaluate_bpd(flow, eval_images)
    return out


__all__ = ["AblationResult", "as_pixels", "bpd_loss", "evaluate_bpd", "find_checkpoint", "init_actnorm", "load_glow",
           "permutation_ablation"]
