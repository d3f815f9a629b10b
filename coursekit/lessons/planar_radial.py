"""Lesson 02's recipes: fit planar and radial flows by reverse KL (VI) and by maximum likelihood,
score them, and save or rebuild the shipped ``vi_planar_radial.pt`` (kind ``"vi"``).

The formulas (reverse KL, annealing ``β_t``, ``log Z``, the walled targets) are in
:mod:`coursekit.flows.vi`; the layers in :mod:`coursekit.flows.planar` and
:mod:`coursekit.flows.radial`.

Reverse KL (VI) trains on samples of the flow and needs only ``f``; forward KL (maximum
likelihood) on data ``x_i ~ p_data`` minimizes ``-mean log q(x_i)``, which needs ``f⁻¹`` on
every step (a root solve per planar layer).

A ``"vi"`` checkpoint holds one flow per key ``"{kind}-{U}-K{n_layers}"``: ``state[key]`` is
its state dict, ``config[key]`` what rebuilds it (``kind``, ``energy``, ``n_layers``) and
``meta["models"][key]`` its score and training curve; the rest of ``meta`` says how it was
trained. :func:`from_checkpoint` gives ``{key: TrainedFlow}``.

Taught in: notebook 02.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from .. import seed_everything
from ..core.checks import one_of, positive_int
from ..flows.base import Compose, Flow, StandardNormal
from ..flows.planar import Planar
from ..flows.radial import Radial
from ..flows.vi import Energy, annealing_weight, as_energy, log_partition
from ..training import checkpoints
from ..training.loop import History, fit

KINDS = ("planar", "radial")


def make_flow(kind: str, n_layers: int, dim: int = 2, seed: int | None = 0) -> Flow:
    """``N(0, I)`` pushed through ``n_layers`` planar or radial layers (random init from ``seed``)."""
    one_of(kind, KINDS, "kind")
    positive_int(n_layers, "n_layers")
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    if kind == "planar":
        layers = [Planar(dim, generator=g) for _ in range(n_layers)]
    else:
        # centres spread over the target's scale, so each radial layer has its own region
        layers = [Radial(dim, z0=1.5 * torch.randn(dim, generator=g), alpha=1.0, beta=0.0)
                  for _ in range(n_layers)]
    return Flow(StandardNormal(dim), Compose(layers))


@dataclass
class VIScore:
    """Reverse KL ``KL(q ‖ p)`` (nats), ``ELBO`` and ``log Z``; ``stderr`` of the MC estimate."""

    kl: float
    elbo: float
    log_z: float
    stderr: float

    def __str__(self) -> str:
        return f"KL(q‖p) = {self.kl:.3f} ± {self.stderr:.3f} nats, ELBO = {self.elbo:.3f} (log Z = {self.log_z:.3f})"


@torch.no_grad()
def score_reverse_kl(flow: Flow, energy: str | Energy, n: int = 20_000, log_z: float | None = None) -> VIScore:
    """Fresh-sample estimate of ``KL(q ‖ p) = E_q[log q + U] + log Z`` and the ELBO."""
    U = as_energy(energy)
    log_z = log_partition(U) if log_z is None else log_z
    x, log_q = flow.sample_and_log_prob(n)
    terms = (log_q + U(x)).double()
    elbo = -float(terms.mean())
    return VIScore(kl=log_z - elbo, elbo=elbo, log_z=log_z, stderr=float(terms.std() / math.sqrt(n)))


def fit_reverse_kl(flow: Flow, energy: str | Energy, n_steps: int, *, batch: int = 256, lr: float = 5e-3,
                   anneal_steps: int | None = None, cosine: bool = False,
                   checkpoint: str | os.PathLike | None = None, progress: bool = True) -> History:
    """Minimize ``E_q[log q + β_t U]`` with Adam (:func:`coursekit.training.fit`: checkpoints, NaN guard).

    ``cosine`` decays the learning rate to 0 over ``n_steps`` (a cleaner final fit). Logs
    ``loss`` (the annealed objective), ``beta`` and ``neg_elbo`` (``E_q[log q + U]``).
    """
    U = as_energy(energy)
    opt = torch.optim.Adam(flow.parameters(), lr=lr)

    def loss_fn(step: int) -> dict[str, Tensor]:
        beta = annealing_weight(step, anneal_steps)
        x, log_q = flow.sample_and_log_prob(batch)
        u = U(x)
        return {"loss": (log_q + beta * u).mean(), "beta": torch.tensor(beta),
                "neg_elbo": (log_q + u).mean().detach()}

    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, n_steps)) if cosine else None
    return fit(loss_fn, flow, opt, n_steps, checkpoint=checkpoint, progress=progress, scheduler=sched,
               desc="VI (KL inversa)", clip_grad_norm=100.0)


def mean_nll(flow: Flow, x: Tensor, batch: int = 4096) -> float:
    """Average ``-log q(x)`` (nats) over ``x``, in batches, without gradients."""
    with torch.no_grad():
        total = sum(float(-flow.log_prob(xb).sum()) for xb in x.split(batch))
    return total / x.shape[0]


def fit_max_likelihood(flow: Flow, data: Tensor, n_steps: int, *, batch: int = 256, lr: float = 5e-3,
                       checkpoint: str | os.PathLike | None = None, progress: bool = True,
                       generator: torch.Generator | None = None) -> History:
    """Forward KL: minimize ``-mean log q(x_i)`` over minibatches of ``data`` (``(N, D)``)."""
    if not isinstance(data, Tensor) or data.dim() != 2:
        raise ValueError(f"data must be a (N, D) tensor, got {getattr(data, 'shape', type(data).__name__)}")
    opt = torch.optim.Adam(flow.parameters(), lr=lr)

    def loss_fn(step: int) -> Tensor:
        idx = torch.randint(0, data.shape[0], (batch,), generator=generator)
        return -flow.log_prob(data[idx]).mean()

    return fit(loss_fn, flow, opt, n_steps, checkpoint=checkpoint, progress=progress,
               desc="máxima verosimilitud", clip_grad_norm=100.0,
               generators=[generator] if generator is not None else [])  # a resumed run draws the same batches


# --- the paper's figure: one flow per (layer type, energy, K) ---------------------------------


@dataclass
class TrainedFlow:
    """A flow fitted by reverse KL to a named energy, with its score and (subsampled) ``-ELBO`` curve."""

    flow: Flow
    kind: str
    energy: str
    n_layers: int
    score: VIScore
    seconds: float
    curve: list[float] = field(default_factory=list)


def model_key(kind: str, energy: str, n_layers: int) -> str:
    """``"planar-U1-K8"``: how a checkpoint names each flow."""
    return f"{kind}-{energy}-K{n_layers}"


def train_model(kind: str, energy: str, n_layers: int, n_steps: int, *, anneal_steps: int | None,
                lr: float = 5e-3, batch: int = 256, seed: int = 0, log_z: float | None = None,
                n_score: int = 20_000) -> TrainedFlow:
    """One model of the figure: seeded init, :func:`fit_reverse_kl` with cosine decay, fresh-sample score."""
    seed_everything(seed)
    flow = make_flow(kind, n_layers, seed=seed)
    t0 = time.perf_counter()
    hist = fit_reverse_kl(flow, energy, n_steps, batch=batch, lr=lr, anneal_steps=anneal_steps, cosine=True,
                          progress=False)
    seconds = time.perf_counter() - t0
    score = score_reverse_kl(flow, energy, n=n_score, log_z=log_z)
    curve = hist["neg_elbo"][:: max(1, n_steps // 200)]
    return TrainedFlow(flow, kind, energy, n_layers, score, seconds, list(curve))


def save_models(path: str | os.PathLike, models: dict[str, TrainedFlow], meta: dict | None = None) -> Path:
    """Write ``models`` as one ``"vi"`` checkpoint (``meta``: how they were trained)."""
    state = {key: m.flow.state_dict() for key, m in models.items()}
    config = {key: {"kind": m.kind, "energy": m.energy, "n_layers": m.n_layers} for key, m in models.items()}
    scores = {key: {**asdict(m.score), "seconds": m.seconds, "curve": list(m.curve)} for key, m in models.items()}
    return checkpoints.save(path, "vi", state, config=config, meta={**(meta or {}), "models": scores})


def from_checkpoint(ckpt: checkpoints.Checkpoint, device: torch.device | str = "cpu") -> dict[str, TrainedFlow]:
    """``{key: TrainedFlow}`` from a ``"vi"`` checkpoint (flows in the default dtype, eval mode, on ``device``)."""
    if ckpt.kind != "vi":
        raise ValueError(f"expected a 'vi' checkpoint, got {ckpt.kind!r}")
    models = {}
    for key, cfg in ckpt.config.items():
        flow = make_flow(cfg["kind"], cfg["n_layers"], seed=None)
        flow.load_state_dict(ckpt.state[key])
        saved = ckpt.meta["models"][key]
        score = VIScore(kl=saved["kl"], elbo=saved["elbo"], log_z=saved["log_z"], stderr=saved["stderr"])
        models[key] = TrainedFlow(flow.to(device).eval(), cfg["kind"], cfg["energy"], cfg["n_layers"], score,
                                  saved["seconds"], list(saved["curve"]))
    return models


__all__ = [
    "KINDS", "TrainedFlow", "VIScore", "fit_max_likelihood", "fit_reverse_kl", "from_checkpoint", "make_flow",
    "mean_nll", "model_key", "save_models", "score_reverse_kl", "train_model",
]
