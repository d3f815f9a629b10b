"""Lesson 01's recipe: check the change-of-variables formula against a histogram of samples.

Notebook 01 pushes samples ``z ~ p_z`` through ``x = f(z)`` and compares the histogram of
``x`` with the probability that ``p_x(x) = p_z(z) |det J_f(z)|⁻¹`` gives each bin, in 1-D
and in 2-D: :func:`cell_probabilities` integrates the formula over the cells of a 2-D
histogram and :func:`histogram_check` runs the χ² test. :func:`tanh_warp_is_bimodal` states
when ``TanhWarp`` turns ``N(0, 1)`` into a bimodal density (``2ab³ > 1 + ab``) and
:func:`tanh_warp_modes` counts the modes numerically, so the notebook can check the one
against the other. The layers are in
:mod:`coursekit.flows.elementwise`; the sum of log-determinants in
:class:`coursekit.flows.Compose`.

Taught in: notebook 01.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch
from scipy import stats
from torch import Tensor

from ..core.checks import finite_float, positive_int
from ..flows.base import Bijection, Flow, StandardNormal
from ..flows.elementwise import Linear, TanhWarp
from ..viz import make_grid


class HistogramCheck(NamedTuple):
    """Pearson's χ² of histogram counts against the formula's bin probabilities."""

    chi2: float
    dof: int
    p_value: float


def histogram_check(counts, probs, n_samples: int, min_expected: float = 5.0) -> HistogramCheck:
    """χ² test of histogram ``counts`` against the probabilities ``probs`` of the same bins.

    Bins expected to hold fewer than ``min_expected`` of the ``n_samples`` samples are left
    out (the usual rule for χ²), and the expected counts are rescaled to the kept bins'
    total: samples that land outside the histogram's window are not compared.
    """
    counts, probs = np.asarray(counts, dtype=float), np.asarray(probs, dtype=float)
    if counts.shape != probs.shape:
        raise ValueError(f"counts and probs must have the same shape, got {counts.shape} and {probs.shape}")
    positive_int(n_samples, "n_samples")
    keep = probs * n_samples >= min_expected
    if keep.sum() < 2:
        raise ValueError(f"fewer than 2 bins expect {min_expected} samples or more: use more samples or wider bins")
    expected = probs[keep] / probs[keep].sum() * counts[keep].sum()
    chi2, p_value = stats.chisquare(counts[keep], expected)
    return HistogramCheck(float(chi2), int(keep.sum()) - 1, float(p_value))


@torch.no_grad()
def cell_probabilities(log_prob: Callable[[Tensor], Tensor], bounds: float = 4.0, n_cells: int = 16,
                       sub: int = 10) -> np.ndarray:
    """``P(x ∈ cell)`` for the ``n_cells × n_cells`` cells of ``[-bounds, bounds]²``.

    Midpoint rule with ``sub × sub`` points per cell, in float64. Indexed ``[row = x₂,
    column = x₁]``, like ``np.histogram2d(x[:, 1], x[:, 0], ...)``.
    """
    positive_int(n_cells, "n_cells")
    positive_int(sub, "sub")
    h = 2 * bounds / (n_cells * sub)  # side of one sub-cell; its centre is h / 2 inside the edges
    inner = bounds - h / 2
    fine = make_grid((-inner, inner, -inner, inner), n_cells * sub, dtype=torch.float64)
    density = log_prob(fine.points).exp().reshape(n_cells, sub, n_cells, sub)
    return (density.sum((1, 3)) * h**2).cpu().numpy()


def _warp_parameters(a, b) -> tuple[float, float]:
    a, b = finite_float(a, "a"), finite_float(b, "b")
    if b <= 0:
        raise ValueError(f"b must be positive, got {b}")
    if a * b <= -1:
        raise ValueError(f"a * b must be > -1 for the warp to be increasing, got {a * b}")
    return a, b


def tanh_warp_is_bimodal(a: float, b: float) -> bool:
    """Whether ``x = z + a tanh(b z)`` turns ``z ~ N(0, 1)`` into a bimodal ``p_x``: ``2ab³ > 1 + ab``.

    As ``f`` is increasing, the modes of ``p_x`` are the maxima over ``z`` of
    ``log p_x(f(z)) = log p_z(z) - log f'(z)``. Near 0, ``f'(z) ≈ 1 + ab - ab³ z²``, so that
    function is ``const + (ab³ / (1 + ab) - 1/2) z² + O(z⁴)``: ``z = 0`` turns from the single
    maximum into a minimum between two maxima when ``2ab³ > 1 + ab``. That no other mode
    appears is checked numerically (:func:`tanh_warp_modes`, ``tests/test_change_of_variables.py``),
    not proved. With ``b = 1`` it reads ``a > 1``; with ``a ≤ 0`` the density stays unimodal.
    """
    a, b = _warp_parameters(a, b)
    return 2 * a * b**3 > 1 + a * b


def tanh_warp_threshold(b: float) -> float:
    """The ``a`` above which ``TanhWarp(·, a, b)`` makes ``N(0, 1)`` bimodal: ``1 / (2b³ - b)``.

    ``inf`` when ``2b² ≤ 1`` (then no ``a`` does).
    """
    b = finite_float(b, "b")
    if b <= 0:
        raise ValueError(f"b must be positive, got {b}")
    return 1 / (2 * b**3 - b) if 2 * b**2 > 1 else math.inf


@torch.no_grad()
def tanh_warp_modes(a: float, b: float, bounds: float = 12.0, n: int = 200_001) -> int:
    """Number of local maxima of ``p_x`` for ``x = z + a tanh(b z)``, ``z ~ N(0, 1)``, counted on a grid.

    Uses ``log p_x(f(z)) = log p_z(z) - log f'(z)`` on ``n`` points of ``z ∈ [-bounds, bounds]``
    (``f`` is increasing, so its maxima over ``z`` are the modes of ``p_x``), in float64 with
    coursekit's :class:`TanhWarp`. Flat steps are skipped, so a plateau is not counted twice.
    """
    a, b = _warp_parameters(a, b)
    positive_int(n, "n")
    f = TanhWarp(1, a=a, b=b).to(torch.float64)
    z = torch.linspace(-finite_float(bounds, "bounds"), bounds, n, dtype=torch.float64).unsqueeze(1)
    _, logdet = f(z)
    log_px = StandardNormal(1).to(torch.float64).log_prob(z) - logdet
    slope = np.sign(np.diff(log_px.numpy()))
    slope = slope[slope != 0]
    return int(((slope[:-1] > 0) & (slope[1:] < 0)).sum())


# --- the cells the student writes: references and cases for coursekit.exercises.check -----------------


class InverseOf:
    """``x ↦ z = f⁻¹(x)`` of a coursekit layer ``f`` as a plain function: only ``z``, not the log-det."""

    def __init__(self, f: Bijection):
        self.f = f

    def __call__(self, x: Tensor) -> Tensor:
        return self.f.inverse(x)[0]

    def __repr__(self) -> str:
        return f"InverseOf({self.f!r})"


def density_reference(x: Tensor, f_inv: InverseOf) -> Tensor:
    """coursekit's ``p_x(x)`` for ``x = f(z)``, ``z ~ N(0, 1)``: ``Flow(StandardNormal(1), f).log_prob(x).exp()``."""
    with torch.no_grad():
        return Flow(StandardNormal(1), f_inv.f).log_prob(x).exp()


def density_cases(dtype: torch.dtype = torch.float64) -> list[tuple[str, tuple[Tensor, InverseOf]]]:
    """``(label, (x, f_inv))`` for the 1-D density cell: a grid of ``x`` and four maps.

    Each map catches a typical mistake: the warp of the lesson (``p_z`` evaluated at ``x``
    instead of ``f⁻¹(x)``), a contracting warp, an affine map (``df/dz`` instead of
    ``df⁻¹/dx``) and a decreasing map (the missing absolute value).
    """
    x = torch.linspace(-5.0, 5.0, 201, dtype=dtype).unsqueeze(1)
    maps = [
        ("TanhWarp(a=2, b=1.5), la de la sección 1", TanhWarp(1, a=2.0, b=1.5)),
        ("TanhWarp(a=−0.6, b=1), que contrae", TanhWarp(1, a=-0.6, b=1.0)),
        ("afín x = 3z + 1 (df⁻¹/dx = 1/3)", Linear([[3.0]], shift=[1.0])),
        ("decreciente x = −2z + 0.5 (df⁻¹/dx < 0)", Linear([[-2.0]], shift=[0.5])),
    ]
    return [(label, (x, InverseOf(f.to(dtype)))) for label, f in maps]


__all__ = ["HistogramCheck", "InverseOf", "cell_probabilities", "density_cases", "density_reference",
           "histogram_check", "tanh_warp_is_bimodal", "tanh_warp_modes", "tanh_warp_threshold"]
