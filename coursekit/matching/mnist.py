"""Flow matching on MNIST at CPU scale: data scaling, the training loss, a held-out score, I/O.

Pixels x ∈ {0, …, 255} are mapped to [−1, 1]; the field learns the path from N(0, I) (t = 0)
to the images (t = 1). The held-out score is the CFM loss on images never trained on,
with fixed t and noise, so two checkpoints are compared on the same draws.
Taught in: notebook 07 (checkpoint: ``scripts/train_flow_matching.py``).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from ..training.loop import load_checkpoint, save_checkpoint
from .couplings import ot_coupling
from .image_field import MLPImageField
from .losses import cfm_loss
from .paths import AffinePath, LinearPath


def to_unit(images: np.ndarray | Tensor) -> Tensor:
    """uint8 images (N, 28, 28) → float32 (N, 1, 28, 28) in [−1, 1]."""
    x = torch.as_tensor(np.array(images))  # a copy: the loaded arrays may be read-only
    if x.dtype != torch.uint8 or x.ndim != 3:
        raise ValueError(f"images must be uint8 of shape (N, H, W), got {x.dtype} {tuple(x.shape)}")
    return x.float().div(127.5).sub(1).unsqueeze(1)


def from_unit(x: Tensor) -> Tensor:
    """[−1, 1] → [0, 1] for display (clipped)."""
    return x.add(1).div(2).clamp(0, 1)


def mnist_loss(field: torch.nn.Module, x_train: Tensor, batch: int = 128, path: AffinePath | None = None,
               ot: bool = False, generator: torch.Generator | None = None) -> Callable[[int], Tensor]:
    """``loss(step)`` for :func:`coursekit.train.fit`: CFM on a random minibatch of ``x_train``."""
    path = path or LinearPath()
    device = next(field.parameters()).device

    def loss_fn(step: int) -> Tensor:
        idx = torch.randint(len(x_train), (batch,), generator=generator)
        return cfm_loss(field, x_train[idx].to(device), path, coupling=ot_coupling if ot else None,
                        reduce_dims="mean")

    return loss_fn


@torch.no_grad()
def heldout_cfm(field: torch.nn.Module, x_eval: Tensor, path: AffinePath | None = None, seed: int = 0,
                batch: int = 500) -> float:
    """Mean CFM loss (per pixel) on held-out images, with t and x₀ fixed by ``seed``."""
    path = path or LinearPath()
    g = torch.Generator().manual_seed(seed)
    device = next(field.parameters()).device
    total = 0.0
    for chunk in x_eval.split(batch):
        x0 = torch.randn(chunk.shape, generator=g)
        t = torch.rand(chunk.shape[0], generator=g)
        total += float(cfm_loss(field, chunk.to(device), path, x0=x0.to(device), t=t.to(device),
                                reduce_dims="mean")) * len(chunk)
    return total / len(x_eval)


def save_field(path: str | os.PathLike, field: MLPImageField, **meta) -> None:
    """Model-only checkpoint in float16 (small enough for ``data/checkpoints/``) plus metadata."""
    state = {k: v.half() for k, v in field.state_dict().items()}
    config = {"shape": field.shape, "hidden": field.net[0].out_features,
              "n_layers": (len(field.net) - 1) // 2, "t_dim": field.t_dim}
    save_checkpoint(path, state=state, config=config, meta=meta)


def load_field(path: str | os.PathLike, device=None) -> tuple[MLPImageField, dict]:
    """Read :func:`save_field`'s file: the field (float32, eval mode) and its metadata."""
    ckpt = load_checkpoint(path, map_location="cpu")
    field = MLPImageField(**ckpt["config"])
    field.load_state_dict({k: v.float() for k, v in ckpt["state"].items()})
    return field.to(device or "cpu").eval(), ckpt["meta"]


__all__ = ["from_unit", "heldout_cfm", "load_field", "mnist_loss", "save_field", "to_unit"]
