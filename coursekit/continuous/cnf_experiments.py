"""Lesson 06's measurements as functions: trace cost vs dimension, density over time.

Shared by notebook 06 and ``benchmarks/bench_cnf.py``.

Taught in: notebook 06.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .cnf import CNF, divergence_exact, divergence_hutchinson, sample_noise
from .fields import MLPField


@dataclass
class TraceCost:
    """Median seconds per divergence evaluation at each dimension, and log-log slopes."""

    dims: list[int]
    exact_s: list[float]
    hutchinson_s: list[float]
    slope_exact: float  # fitted on the dimensions ≥ fit_from
    slope_hutchinson: float
    fit_from: int

    @property
    def ratios(self) -> list[float]:
        return [e / h for e, h in zip(self.exact_s, self.hutchinson_s)]


def _median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def loglog_slope(x: list[float], y: list[float]) -> float:
    """Least-squares slope of ``log y`` against ``log x``: the exponent ``k`` in ``y ∝ x^k``."""
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def trace_cost(dims: tuple[int, ...] = (2, 8, 32, 128, 512), batch: int = 64, hidden: int = 64,
               repeats: int = 5, fit_from: int = 32, device: torch.device | str = "cpu",
               seed: int = 0, training: bool = False) -> TraceCost:
    """Time ``tr(∂f/∂x)`` exactly (D vector-Jacobian products) vs Hutchinson (one) for an MLP field.

    ``training=False`` times the divergence alone (as in evaluation); ``training=True`` keeps
    it differentiable and includes the backward pass through it (as in a training step).
    """
    torch.manual_seed(seed)
    exact, hutch = [], []
    for d in dims:
        field = MLPField(d, hidden=hidden, n_layers=2).to(device)
        x = torch.randn(batch, d, device=device)
        t = torch.tensor(0.5, device=device)
        eps = sample_noise(x, "rademacher")
        sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)

        def run_exact(field=field, t=t, x=x, sync=sync):
            div = divergence_exact(field, t, x, create_graph=training)
            if training:
                div.sum().backward()
            sync()

        def run_hutch(field=field, t=t, x=x, eps=eps, sync=sync):
            div = divergence_hutchinson(field, t, x, eps, create_graph=training)
            if training:
                div.sum().backward()
            sync()

        exact.append(_median_time(run_exact, repeats))
        hutch.append(_median_time(run_hutch, repeats))
    big = [i for i, d in enumerate(dims) if d >= fit_from] or list(range(len(dims)))
    sel = lambda v: [v[i] for i in big]  # noqa: E731
    return TraceCost(list(dims), exact, hutch, loglog_slope(sel(dims), sel(exact)),
                     loglog_slope(sel(dims), sel(hutch)), fit_from)


@torch.no_grad()
def density_over_time(model: CNF, points: Tensor, times: list[float] | Tensor,
                      batch_size: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """``log p_t`` and ``tr(∂f/∂x)(t, ·)`` at fixed ``points`` for each time: two ``(len(times), N)`` arrays.

    ``log p_t(x)`` integrates from ``t`` down to 0 (one solve per time); the divergence is the
    integrand of the log-determinant, evaluated without any solve.
    """
    logps, divs = [], []
    for t in [float(v) for v in times]:
        lp = torch.cat([model.log_prob(chunk, t=t) for chunk in points.split(batch_size)])
        tt = torch.tensor(t, dtype=points.dtype, device=points.device)
        dv = torch.cat([divergence_exact(model.field, tt, chunk) for chunk in points.split(batch_size)])
        logps.append(lp.cpu().numpy())
        divs.append(dv.cpu().numpy())
    return np.stack(logps), np.stack(divs)


__all__ = ["TraceCost", "density_over_time", "loglog_slope", "trace_cost"]
