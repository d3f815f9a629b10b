"""The small MNIST classifier behind the course's sample-quality metric, and its shipped checkpoint.

A two-convolution CNN (``1→16→32`` channels, 3×3, max-pooling) with a 64-unit feature layer
and a 10-way output. It is trained on MNIST images 0–7,999 (the carved split: only the
10,000-image test file is available offline) and evaluated on images 8,000–9,999, by
:func:`train_classifier`, called by ``scripts/train_mnist_classifier.py``; the result ships as
``data/checkpoints/mnist_classifier.pt`` (kind ``"mnist_classifier"``, its held-out accuracy and
the exact command in ``meta``).

Inputs are grayscale images in [0, 1] (``coursekit.data.to_unit``), shape ``(N, 28, 28)`` or
``(N, 1, 28, 28)``.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import Tensor, nn

from ..core.checks import positive_int
from ..training import checkpoints

KIND = "mnist_classifier"
CHECKPOINT = "mnist_classifier.pt"


class MnistClassifier(nn.Module):
    """``features(x)`` → ``(N, feature_dim)`` (ReLU activations); ``forward(x)`` → logits ``(N, 10)``."""

    def __init__(self, channels: tuple[int, int] | list[int] = (16, 32), feature_dim: int = 64):
        super().__init__()
        c1, c2 = (positive_int(c, "channels") for c in channels)
        self.config = {"channels": [c1, c2], "feature_dim": positive_int(feature_dim, "feature_dim")}
        self.body = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # 14×14
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 7×7
            nn.Flatten(), nn.Linear(c2 * 7 * 7, feature_dim), nn.ReLU())
        self.head = nn.Linear(feature_dim, 10)

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))


def as_unit_tensor(images, name: str = "images") -> Tensor:
    """NumPy or torch images in [0, 1], ``(N, 28, 28)`` or ``(N, 1, 28, 28)`` → float32 ``(N, 1, 28, 28)``.

    Raises ``TypeError`` for non-numeric or integer arrays (uint8 pixels: convert them with
    ``coursekit.data.to_unit``) and ``ValueError`` for other shapes, non-finite values or values
    outside [0, 1] (clip the samples first, and say so)."""
    if isinstance(images, Tensor):
        x = images.detach().cpu()
    elif isinstance(images, np.ndarray):
        if not np.issubdtype(images.dtype, np.number) or images.dtype == np.bool_:
            raise TypeError(f"{name} must be a float array in [0, 1], got dtype {images.dtype}")
        x = torch.from_numpy(np.ascontiguousarray(images))
    else:
        raise TypeError(f"{name} must be a NumPy array or a torch tensor, got {type(images).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be floating point in [0, 1], got {x.dtype}; uint8 pixels: "
                        "use coursekit.data.to_unit(images)")
    if x.dim() == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.dim() != 3 or tuple(x.shape[1:]) != (28, 28) or x.shape[0] == 0:
        raise ValueError(f"{name} must have shape (N, 28, 28) or (N, 1, 28, 28) with N ≥ 1, got {tuple(images.shape)}")
    x = x.float()
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got values in [{lo:.3g}, {hi:.3g}]; map [-1, 1] samples with "
                         "(x + 1) / 2 and clip them to [0, 1]")
    return x.unsqueeze(1)


@torch.no_grad()
def predict(model: MnistClassifier, images, batch: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """``(features (N, feature_dim) float64, probabilities (N, 10) float64)`` of ``images`` in [0, 1]."""
    x = as_unit_tensor(images)
    was_training = model.training
    model.eval()
    feats, probs = [], []
    try:
        for chunk in x.split(positive_int(batch, "batch")):
            f = model.features(chunk)
            feats.append(f.double())
            probs.append(torch.softmax(model.head(f).double(), dim=1))
    finally:
        model.train(was_training)
    return torch.cat(feats).numpy(), torch.cat(probs).numpy()


def accuracy(model: MnistClassifier, images, labels) -> float:
    """Share of ``images`` (in [0, 1]) whose predicted digit equals ``labels``."""
    _, probs = predict(model, images)
    labels = np.asarray(labels)
    if labels.shape != (len(probs),):
        raise ValueError(f"labels must have shape ({len(probs)},), got {labels.shape}")
    return float((probs.argmax(1) == labels).mean())


def train_classifier(train_images, train_labels, *, n_steps: int = 1500, batch_size: int = 64, lr: float = 2e-3,
                     seed: int = 0, progress: bool = False) -> tuple[MnistClassifier, dict]:
    """Train a :class:`MnistClassifier` on ``train_images`` in [0, 1] with Adam and a cosine
    learning rate, batches drawn by a seeded generator (the same seed gives the same weights
    on the same machine and thread count). Returns ``(model in eval mode, info)``."""
    x = as_unit_tensor(train_images, "train_images")
    y = torch.as_tensor(np.asarray(train_labels), dtype=torch.long)
    if y.shape != (len(x),) or int(y.min()) < 0 or int(y.max()) > 9:
        raise ValueError(f"train_labels must be digits 0–9 of shape ({len(x)},)")
    n_steps, batch_size = positive_int(n_steps, "n_steps"), positive_int(batch_size, "batch_size")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = MnistClassifier()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, n_steps)
    losses, t0 = [], time.perf_counter()
    model.train()
    for step in range(n_steps):
        idx = torch.randint(len(x), (batch_size,), generator=gen)
        # light augmentation: shifts of up to 2 pixels, so that slightly off-centre samples are still read
        dx, dy = (int(v) for v in torch.randint(-2, 3, (2,), generator=gen))
        batch = torch.roll(x[idx], shifts=(dy, dx), dims=(2, 3))
        loss = nn.functional.cross_entropy(model(batch), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if progress and (step + 1) % 250 == 0:
            print(f"paso {step + 1}/{n_steps}: pérdida {np.mean(losses[-250:]):.4f}", flush=True)
    model.eval()
    return model, {"seconds": time.perf_counter() - t0, "final_loss": float(np.mean(losses[-100:])),
                   "n_steps": n_steps, "batch_size": batch_size, "lr": lr, "seed": seed}


def save_classifier(path, model: MnistClassifier, meta: dict | None = None):
    """Write ``model`` as a ``"mnist_classifier"`` checkpoint (float32)."""
    return checkpoints.save(path, KIND, {"model": model.state_dict()}, config=dict(model.config), meta=meta)


def from_checkpoint(ckpt: checkpoints.Checkpoint, device="cpu") -> MnistClassifier:
    """The :class:`MnistClassifier` of a ``"mnist_classifier"`` checkpoint, in eval mode, on ``device``."""
    if ckpt.kind != KIND:
        raise ValueError(f"{ckpt.path} holds a {ckpt.kind!r} checkpoint, expected {KIND!r}")
    model = MnistClassifier(**ckpt.config)
    model.load_state_dict(ckpt.state["model"])
    return model.to(device).eval()


def load_classifier(name_or_path=CHECKPOINT) -> tuple[MnistClassifier, dict]:
    """The shipped classifier (SHA-256 checked) or your own file, with its ``meta``."""
    ckpt = checkpoints.load(name_or_path, kind=KIND)
    return from_checkpoint(ckpt), ckpt.meta


__all__ = ["CHECKPOINT", "KIND", "MnistClassifier", "accuracy", "as_unit_tensor", "from_checkpoint",
           "load_classifier", "predict", "save_classifier", "train_classifier"]
