"""Lesson 03's recipes: train and evaluate Glow on MNIST, the permutation ablation of the
Glow paper, and the shipped checkpoint ``glow_mnist.pt`` (kind ``"glow"``).

The loss is the negative log-likelihood in bits per dimension of freshly dequantized
batches (``Dequantize`` → ``flow.log_prob`` → ``bits_per_dim``). Evaluation uses the
held-out images only (offline: MNIST test-split images 8,000–9,999).

The cells the student writes are checked against coursekit's layers: ``coupling_*_reference``
(:class:`AffineCoupling`, through a :class:`Conditioner`), ``actnorm_init_reference``
(:class:`ActNorm`'s data-dependent init) and ``invconv_*_reference`` (:class:`InvConv1x1`,
plain and LU), on ``*_cases`` chosen so that each typical mistake fails on a case of its own.

Taught in: notebook 03.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from ..core.checks import positive_int
from ..flows.actnorm import ActNorm
from ..flows.base import Flow
from ..flows.coupling import AffineCoupling
from ..flows.dequantize import Dequantize, bits_per_dim
from ..flows.glow import mnist_glow
from ..flows.invconv import InvConv1x1
from ..training import checkpoints
from ..training.loop import fit

if TYPE_CHECKING:
    from ..training.distributed import Distributed

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


def bpd_loss(flow: Flow, images, batch: int = 64, distributed: Distributed | None = None):
    """``loss(step)`` for :func:`coursekit.training.fit`: bits/dim of a random dequantized batch.

    ``distributed`` (:mod:`coursekit.training.distributed`): ``batch`` is the global batch;
    every rank draws the whole batch's indices and dequantization noise (the draws of
    ``distributed=None``) and keeps its share, ``log_prob`` running through DDP, so the run is
    the same at any world size (up to float summation order)."""
    images = as_pixels(images)
    positive_int(batch, "batch")
    deq, dims = Dequantize(), images[0].numel()
    anchor = next(flow.parameters())
    part = distributed.shard.part(batch, "batch") if distributed is not None else slice(None)
    log_prob = distributed.wrap(flow, "log_prob") if distributed is not None else flow.log_prob

    def loss_fn(step: int):
        idx = torch.randint(len(images), (batch,))
        y = deq(images[idx], dtype=anchor.dtype)[part].to(anchor.device)  # this rank's share
        bpd = bits_per_dim(log_prob(y), dims).mean()
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


_SPANISH_DATA = (
    (re.compile(r"MNIST test split images ([\d,]+)-([\d,]+)"),
     lambda m: f"imágenes {m[1].replace(',', '.')}–{m[2].replace(',', '.')} de la partición de prueba de MNIST"),
    (re.compile(r"\(never trained on\)"), lambda m: "(nunca vistas al entrenar)"),
)


def describe_data(text: str) -> str:
    """A checkpoint's English data description (``meta["trained_on"]``, ``meta["evaluated_on"]``)
    in Spanish, for the notebook; text it does not recognise comes back unchanged."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    for pattern, spanish in _SPANISH_DATA:
        text = pattern.sub(spanish, text)
    return text


def checkpoint_summary(meta: dict) -> list[str]:
    """Spanish lines about a ``"glow"`` checkpoint's metadata: steps, data, stored bits/dim."""
    if not isinstance(meta, dict):
        raise TypeError(f"meta must be a dict (Checkpoint.meta), got {type(meta).__name__}")
    missing = [k for k in ("n_steps", "trained_on", "evaluated_on", "heldout_bits_per_dim") if k not in meta]
    if missing:
        raise ValueError(f"checkpoint metadata lacks {missing}")
    return [f"{meta['n_steps']} pasos de entrenamiento con las {describe_data(meta['trained_on'])}",
            f"evaluado en las {describe_data(meta['evaluated_on'])}: "
            f"{meta['heldout_bits_per_dim']:.3f} bits/dim guardados en el punto de control"]


# --- the cost of the 1×1 convolution's log-det --------------------------------------------

@dataclass
class LogdetTiming:
    """Median seconds of one ``log|det W|`` of a ``C × C`` 1×1 conv: ``slogdet`` and LU (``Σ log|s|``)."""

    channels: int
    slogdet_s: float
    lu_s: float


def logdet_timings(sizes: Sequence[int], min_run_time: float = 0.1) -> list[LogdetTiming]:
    """Time :meth:`InvConv1x1.log_abs_det_w`, plain and LU, for each ``C`` in ``sizes``.

    ``torch.utils.benchmark.Timer.blocked_autorange`` runs each form once to warm it up, picks a
    block size, repeats blocks for at least ``min_run_time`` seconds and gives the median
    (a single cold run is dominated by first-call costs: it can rank the two forms wrongly).
    """
    from torch.utils.benchmark import Timer

    if not isinstance(min_run_time, (int, float)) or not min_run_time > 0:
        raise ValueError(f"min_run_time must be a positive number of seconds, got {min_run_time!r}")
    rows = []
    for c in sizes:
        positive_int(c, "size")
        medians = []
        for lu in (False, True):
            conv = InvConv1x1(c, lu=lu)
            conv.log_abs_det_w()  # warm-up: first call pays for lazy initialisation
            timer = Timer("conv.log_abs_det_w()", globals={"conv": conv}, num_threads=torch.get_num_threads())
            medians.append(timer.blocked_autorange(min_run_time=min_run_time).median)
        rows.append(LogdetTiming(c, *medians))
    return rows


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


# --- the cells the student writes: references and cases (notebooks/soluciones/03_glow.ipynb) ------------

class Conditioner:
    """The ``(s, t)`` of an :class:`AffineCoupling`, as full-size tensors: ``st(z * mask) -> (s, t)``.

    ``s`` and ``t`` have the shape of ``z``; only their entries where ``mask == 0`` mean
    anything (there the layer's conditioner puts them). Where ``mask == 1`` they hold 0.5,
    so a log-det that forgets the mask, or a map that also moves ``z₁``, is caught.
    ``.layer`` is the coupling (the reference), ``.mask`` its mask.
    """

    def __init__(self, layer: AffineCoupling):
        self.layer, self.mask = layer, layer.mask

    def __call__(self, z_masked: Tensor) -> tuple[Tensor, Tensor]:
        z1, _ = self.layer._split(z_masked)
        s, t = self.layer.scale_shift(z1)
        filler = torch.full_like(z1, 0.5)
        return self.layer._merge(filler, s), self.layer._merge(filler, t)

    def __repr__(self) -> str:
        return f"Conditioner({self.layer.extra_repr()})"


def coupling_cases(dtype: torch.dtype = torch.float64, seed: int = 0) -> list[tuple[str, tuple]]:
    """``(label, (z, mask, st))`` for the coupling cells, with random conditioners (not the identity).

    Vectors with the ``"half"`` mask; ``"alternate"`` with ``parity=True`` (the conditioning half is the
    odd entries: a mask that is not the first half); images with the ``"channel"`` mask and ``parity=True``
    (the second half of the channels conditions) and with the ``"checkerboard"`` mask.
    """
    g = torch.Generator().manual_seed(seed)
    specs = [("vector D = 6, máscara de mitades", 6, "half", False),
             ("vector D = 5, máscara alterna con parity=True (condicionan las impares)", 5, "alternate", True),
             ("imagen 4×3×5, máscara por canales con parity=True (condiciona la 2.ª mitad)", (4, 3, 5), "channel",
              True),
             ("imagen 2×4×4, máscara de tablero", (2, 4, 4), "checkerboard", False)]
    cases = []
    for label, dim, kind, parity in specs:
        layer = AffineCoupling(dim, hidden=8, mask=kind, parity=parity).to(dtype)
        with torch.no_grad():
            for p in layer.parameters():
                p.copy_(0.5 * torch.randn(p.shape, generator=g, dtype=dtype))
        layer.eval()
        z = 1.5 * torch.randn(3, *layer.event_shape, generator=g, dtype=dtype)
        cases.append((label, (z, layer.mask, Conditioner(layer))))
    return cases


def coupling_forward_reference(z: Tensor, mask: Tensor, st: Conditioner) -> tuple[Tensor, Tensor]:
    """``(x, log|det J_f(z)|)`` of coursekit's :class:`AffineCoupling` (the layer behind ``st``)."""
    with torch.no_grad():
        return st.layer(z)


def coupling_inverse_reference(x: Tensor, mask: Tensor, st: Conditioner) -> tuple[Tensor, Tensor]:
    """``(z, log|det J_{f⁻¹}(x)|)`` of coursekit's :class:`AffineCoupling`."""
    with torch.no_grad():
        return st.layer.inverse(x)


def actnorm_cases(dtype: torch.dtype = torch.float64, seed: int = 0) -> list[tuple[str, tuple[Tensor]]]:
    """``(label, (x,))`` batches for ActNorm's data-dependent init: small batches, so the ``n − 1`` of an
    unbiased std shows; channels with very different means and spreads; a non-square image; vectors."""
    g = torch.Generator().manual_seed(seed)
    scale = torch.tensor([4.0, 0.5, 2.0], dtype=dtype).view(1, 3, 1, 1)
    shift = torch.tensor([3.0, -1.0, 0.0], dtype=dtype).view(1, 3, 1, 1)
    return [("lote de 4 imágenes 3×2×3 (canales con medias y escalas distintas)",
             (torch.randn(4, 3, 2, 3, generator=g, dtype=dtype) * scale + shift,)),
            ("lote de 2 imágenes 2×3×5", (torch.randn(2, 2, 3, 5, generator=g, dtype=dtype) * 3 - 2,)),
            ("lote de 5 vectores de dimensión 4", (torch.randn(5, 4, generator=g, dtype=dtype) * 0.3 + 1,))]


def actnorm_init_reference(x: Tensor) -> tuple[Tensor, Tensor]:
    """``(log_scale, shift)`` that coursekit's :class:`ActNorm` sets from the batch ``x`` (first call: inverse)."""
    layer = ActNorm(tuple(x.shape[1:])).to(x.dtype)
    layer.initialize(x, "inverse")
    return layer.log_scale.detach(), layer.shift.detach()


def invconv_cases(dtype: torch.dtype = torch.float64, seed: int = 0) -> list[tuple[str, tuple]]:
    """``(label, (weight, height, width))``: non-square images (H ≠ W, so H·H or W·W is caught) and a ``W``
    with negative determinant (a log without the absolute value gives NaN)."""
    g = torch.Generator().manual_seed(seed)
    w_neg = torch.randn(4, 4, generator=g, dtype=dtype)
    if torch.linalg.det(w_neg) > 0:
        w_neg[0] = -w_neg[0]
    return [("C = 3 en una imagen 4×6", (torch.randn(3, 3, generator=g, dtype=dtype), 4, 6)),
            ("C = 4, det W < 0, imagen 3×5", (w_neg, 3, 5)),
            ("C = 6 en una imagen 1×7", (2 * torch.randn(6, 6, generator=g, dtype=dtype), 1, 7))]


def _invconv_logdet(weight: Tensor, height: int, width: int, lu: bool) -> Tensor:
    layer = InvConv1x1((weight.shape[0], height, width), lu=lu, weight=weight)
    with torch.no_grad():
        z = torch.zeros(1, weight.shape[0], height, width, dtype=weight.dtype)
        return layer(z)[1][0]


def invconv_logdet_reference(weight: Tensor, height: int, width: int) -> Tensor:
    """``log|det J_f|`` of coursekit's :class:`InvConv1x1` (plain form) on ``C × height × width`` images."""
    return _invconv_logdet(weight, height, width, lu=False)


def invconv_lu_logdet_reference(weight: Tensor, height: int, width: int) -> Tensor:
    """``log|det J_f|`` of coursekit's :class:`InvConv1x1` with ``lu=True`` started at ``weight``."""
    return _invconv_logdet(weight, height, width, lu=True)


__all__ = ["KIND", "AblationResult", "Conditioner", "LogdetTiming", "actnorm_cases", "actnorm_init_reference",
           "as_pixels", "bpd_loss", "checkpoint_summary", "coupling_cases", "coupling_forward_reference",
           "coupling_inverse_reference", "describe_data", "evaluate_bpd", "from_checkpoint", "init_actnorm",
           "invconv_cases", "invconv_logdet_reference", "invconv_lu_logdet_reference", "logdet_timings",
           "permutation_ablation", "save_model"]
