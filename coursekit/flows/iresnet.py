"""Invertible residual blocks (i-ResNet): ``x = f(z) = z + g(z)`` with ``Lip(g) < 1``.

``g(z) = W̃_L φ(… φ(W̃_1 z + b_1) …) + b_L`` (dense layers for vectors ``(D,)``, 3×3
convolutions for images ``(C, H, W)``); every weight is spectrally normalized,
``W̃ = λ W / σ_max(W)`` with ``0 < λ < 1``, and ``φ`` is 1-Lipschitz, so
``Lip(g) ≤ λ^L < 1``. By Banach's fixed-point theorem ``z ← x − g(z)`` then converges to
the only preimage, with error ≤ ``Lip(g)^k`` times the first one.

``log|det J_f| = log det(I + J_g) = Σ_{k≥1} (−1)^{k+1} tr(J_g^k) / k`` (``‖J_g‖ < 1``), truncated
to ``n_terms``, each trace by Hutchinson ``tr(A) ≈ vᵀAv`` (Rademacher ``v``, VJPs only);
``logdet="exact"`` uses ``slogdet(I + J_g)`` of the full Jacobian (small ``D``).

Taught in: notebook 04.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from ..core.checks import check_input, event_shape_of, finite_float, one_of, positive_int
from .base import Bijection, parameter_dtype

# 1-Lipschitz activations φ and their derivatives φ' (LipSwish x·sigmoid(x)/1.1 as in Residual Flows)
ACTIVATIONS = {"elu": F.elu, "tanh": torch.tanh, "lipswish": lambda h: h * torch.sigmoid(h) / 1.1}
_DERIVATIVES = {
    "elu": lambda h: torch.where(h > 0, torch.ones_like(h), h.clamp(max=0).exp()),
    "tanh": lambda h: 1 - torch.tanh(h) ** 2,
    "lipswish": lambda h: (torch.sigmoid(h) * (1 + h * (1 - torch.sigmoid(h)))) / 1.1,
}


@dataclass
class FixedPointInfo:
    """What the fixed-point inverse did: iterations used, final residual, convergence.

    ``residual = max |z + g(z) − x|`` (over the batch); ``history`` holds it per iteration.
    """

    iterations: int
    residual: float
    converged: bool
    history: list[float] = field(default_factory=list)


class ConvSpectralNorm(nn.Module):
    """Parametrization ``W ↦ W / σ_max(conv_W)`` for a stride-1 conv on ``(C, H, W)`` inputs.

    ``torch``'s ``spectral_norm`` normalizes the reshaped kernel, which does not bound the
    convolution's operator norm; this one runs power iteration on the operator itself
    (``conv2d`` and its adjoint ``conv_transpose2d``), one step per call in training mode.
    """

    def __init__(self, weight: Tensor, in_shape: Sequence[int], n_power_iterations: int = 1):
        super().__init__()
        self.in_shape, self.n_power_iterations = tuple(in_shape), n_power_iterations
        self.pad = weight.shape[-1] // 2
        u = torch.randn(1, *self.in_shape, dtype=weight.dtype)
        self.register_buffer("v", u / u.norm())
        self._power(weight.detach(), 30)

    @torch.no_grad()
    def _power(self, w: Tensor, n: int) -> None:
        v = self.v
        for _ in range(n):
            u = F.conv2d(v, w, padding=self.pad)
            v = F.conv_transpose2d(u / u.norm(), w, padding=self.pad)
            v = v / v.norm()
        self.v.copy_(v)

    def forward(self, w: Tensor) -> Tensor:
        if self.training:
            self._power(w.detach(), self.n_power_iterations)
        sigma = F.conv2d(self.v, w, padding=self.pad).norm()  # ≈ σ_max, differentiable in w
        return w / sigma


class IResBlock(Bijection):
    """``x = z + g(z)`` with spectrally normalized weights (``Lip(g) ≤ λ^L``, ``λ < 1``).

    ``dim``: ``D`` or ``(C, H, W)``; ``hidden``: units / channels of the hidden layers;
    ``depth``: number of hidden layers (1 gives ``g = W₂ φ(W₁ z)``, ``L = depth + 1``
    weights); ``lam``: the coefficient λ; ``logdet``: ``"exact"`` or ``"series"`` (with
    ``n_terms`` terms and ``n_samples`` Hutchinson probes); ``tol``/``max_iter``: the
    fixed-point inverse (its last :class:`FixedPointInfo` is kept in ``last_inverse_info``).
    ``strict=False`` allows ``λ ≥ 1`` (a plain ResNet block, for the collapse demo only).
    """

    def __init__(self, dim: int | Sequence[int], hidden: int = 64, lam: float = 0.9, depth: int = 1,
                 activation: str = "elu", logdet: str = "exact", n_terms: int = 10, n_samples: int = 1,
                 tol: float = 1e-8, max_iter: int = 500, n_power_iterations: int = 1, strict: bool = True):
        super().__init__()
        self.event_shape = shape = event_shape_of(dim)
        for name, v in (("hidden", hidden), ("depth", depth), ("n_terms", n_terms), ("n_samples", n_samples),
                        ("max_iter", max_iter), ("n_power_iterations", n_power_iterations)):
            positive_int(v, name)
        if not isinstance(lam, (int, float)) or not (0 < lam < 1 or (not strict and 0 < lam < math.inf)):
            raise ValueError(f"lam must be a float in (0, 1) (Lip(g) < 1 keeps f invertible), got {lam!r}")
        one_of(activation, ACTIVATIONS, "activation")
        one_of(logdet, ("exact", "series"), "logdet")
        if not finite_float(tol, "tol") > 0:
            raise ValueError(f"tol must be positive, got {tol!r}")
        self.lam, self.activation, self.logdet_mode = float(lam), activation, logdet
        self.n_terms, self.n_samples, self.tol, self.max_iter = n_terms, n_samples, float(tol), max_iter
        self.last_inverse_info: FixedPointInfo | None = None  # filled by every inverse
        self.is_image, width = len(shape) == 3, [shape[0]] + [hidden] * depth + [shape[0]]
        self.layers = nn.ModuleList()
        for c_in, c_out in zip(width[:-1], width[1:], strict=True):
            if self.is_image:
                layer = nn.Conv2d(c_in, c_out, 3, padding=1)
                norm = ConvSpectralNorm(layer.weight, (c_in, *shape[1:]), n_power_iterations)
                self.layers.append(parametrize.register_parametrization(layer, "weight", norm))
            else:
                self.layers.append(spectral_norm(nn.Linear(c_in, c_out), n_power_iterations=n_power_iterations))
        self.refresh_spectral_norm()

    @torch.no_grad()
    def refresh_spectral_norm(self, n: int = 100) -> None:
        """Make ``σ̂`` match ``σ_max`` (after init or loading): dense layers take the top singular
        vectors from an exact SVD; convolutions run ``n`` extra power-iteration steps."""
        mode = self.training
        self.train()
        for layer in self.layers:
            if self.is_image:
                for _ in range(n):
                    layer.weight  # noqa: B018 - each access runs one power-iteration step in train mode
            else:  # torch's power iteration keeps (u, v) in its buffers: start it at the answer
                norm, w = layer.parametrizations.weight[0], layer.parametrizations.weight.original
                u, _, vh = torch.linalg.svd(w.detach(), full_matrices=False)
                norm._u.copy_(u[:, 0])
                norm._v.copy_(vh[0])
        self.train(mode)

    def weights(self) -> list[Tensor]:
        """The effective weights ``W̃_i = λ W_i / σ̂(W_i)`` (one power-iteration step in training)."""
        return [self.lam * layer.weight for layer in self.layers]

    def g(self, z: Tensor, weights: Sequence[Tensor] | None = None) -> Tensor:
        """The residual branch ``g(z)``."""
        return self._g_and_jacobian(z, weights, jacobian=False)[0]

    def _g_and_jacobian(self, z: Tensor, weights: Sequence[Tensor] | None,
                        jacobian: bool) -> tuple[Tensor, Tensor | None]:
        ws = self.weights() if weights is None else weights
        act, grad = ACTIVATIONS[self.activation], _DERIVATIVES[self.activation]
        h, jac = z, None
        for i, (w, layer) in enumerate(zip(ws, self.layers, strict=True)):
            h = F.conv2d(h, w, layer.bias, padding=1) if self.is_image else F.linear(h, w, layer.bias)
            if jacobian:  # chain rule: J_g = W̃_L diag(φ'(a_{L-1})) W̃_{L-1} … diag(φ'(a_1)) W̃_1
                jac = w.expand(z.shape[0], -1, -1) if jac is None else w @ jac
            if i < len(ws) - 1:
                jac = grad(h).unsqueeze(-1) * jac if jacobian else None
                h = act(h)
        return h, jac

    def jacobian_g(self, z: Tensor, weights: Sequence[Tensor] | None = None) -> Tensor:
        """Per-sample ``J_g(z)`` as a ``(batch, D, D)`` matrix (``D`` = all entries of a sample)."""
        ws = self.weights() if weights is None else weights
        if self.is_image:  # autograd, one sample at a time (small images only)
            def single(zi: Tensor) -> Tensor:
                return self.g(zi.unsqueeze(0), ws).reshape(-1)
            return torch.stack([torch.func.jacrev(single)(zi).reshape(zi.numel(), -1) for zi in z])
        return self._g_and_jacobian(z, ws, jacobian=True)[1]

    def logdet_exact(self, z: Tensor, weights: Sequence[Tensor] | None = None) -> Tensor:
        """``log|det(I + J_g(z))|`` from the full Jacobian (``O(D³)``: small ``D`` only)."""
        jac = self.jacobian_g(z, weights)
        eye = torch.eye(jac.shape[-1], dtype=z.dtype, device=z.device)
        return torch.linalg.slogdet(eye + jac).logabsdet

    def logdet_series(self, z: Tensor, n_terms: int | None = None, n_samples: int | None = None,
                      weights: Sequence[Tensor] | None = None, generator: torch.Generator | None = None,
                      exact_trace: bool = False, create_graph: bool | None = None) -> Tensor:
        """``Σ_{k=1}^{n} (−1)^{k+1} tr(J_g^k)/k`` with Hutchinson traces ``vᵀ J_g^k v`` (VJPs only).

        ``exact_trace=True`` takes the traces from the full Jacobian instead: it isolates the
        truncation bias from the Monte Carlo noise (small ``D`` only).
        """
        n = self.n_terms if n_terms is None else n_terms
        s = self.n_samples if n_samples is None else n_samples
        positive_int(n, "n_terms")
        positive_int(s, "n_samples")
        ws = self.weights() if weights is None else weights
        if exact_trace:
            jac, total = self.jacobian_g(z, ws), z.new_zeros(z.shape[0])
            power = jac
            for k in range(1, n + 1):
                total = total + (-1) ** (k + 1) * power.diagonal(dim1=1, dim2=2).sum(-1) / k
                power = power @ jac
            return total
        keep = torch.is_grad_enabled() if create_graph is None else create_graph  # graph for training
        total = z.new_zeros(z.shape[0])
        with torch.enable_grad():  # the VJPs need a graph even when the caller wants none
            z_in = z if z.requires_grad else z.detach().requires_grad_()
            gz = self.g(z_in, ws)
            for _ in range(s):
                v = torch.randint(0, 2, z.shape, generator=generator, dtype=z.dtype).to(z.device) * 2 - 1
                w = v
                for k in range(1, n + 1):  # wᵀ ← wᵀ J_g, one vector–Jacobian product per term
                    (w,) = torch.autograd.grad(gz, z_in, w, create_graph=keep, retain_graph=True)
                    total = total + (-1) ** (k + 1) * (w * v).reshape(z.shape[0], -1).sum(-1) / k
        return total / s if keep else (total / s).detach()

    def logdet(self, z: Tensor, weights: Sequence[Tensor] | None = None) -> Tensor:
        """``log|det J_f(z)|`` with the block's mode (``"exact"`` or ``"series"``)."""
        if self.logdet_mode == "exact":
            return self.logdet_exact(z, weights)
        return self.logdet_series(z, weights=weights)

    def _forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        ws = self.weights()
        if self.logdet_mode == "exact" and not self.is_image:  # g and J_g in one pass
            gz, jac = self._g_and_jacobian(z, ws, jacobian=True)
            eye = torch.eye(jac.shape[-1], dtype=z.dtype, device=z.device)
            return z + gz, torch.linalg.slogdet(eye + jac).logabsdet
        return z + self.g(z, ws), self.logdet(z, ws)

    @torch.no_grad()
    def solve(self, x: Tensor, tol: float | None = None, max_iter: int | None = None,
              weights: Sequence[Tensor] | None = None) -> tuple[Tensor, FixedPointInfo]:
        """Banach iteration ``z_{k+1} = x − g(z_k)`` from ``z_0 = x`` until ``max|z + g(z) − x| < tol``."""
        tol = self.tol if tol is None else tol
        max_iter = self.max_iter if max_iter is None else max_iter
        check_input(x, "x", self.event_shape, like=parameter_dtype(self))
        if not finite_float(tol, "tol") > 0:
            raise ValueError(f"tol must be positive, got {tol!r}")
        positive_int(max_iter, "max_iter")
        ws = [w.detach() for w in (self.weights() if weights is None else weights)]
        z, history = x.clone(), []
        for it in range(max_iter + 1):
            step = x - self.g(z, ws)  # the next iterate; z + g(z) − x = z − step
            residual = (z - step).abs().max().item()
            history.append(residual)
            if residual < tol or not math.isfinite(residual) or it == max_iter:
                break
            z = step
        return z, FixedPointInfo(it, residual, residual < tol, history)

    def _inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        ws = self.weights()
        z_star, info = self.solve(x, weights=ws)
        self.last_inverse_info = info
        # warn when the iteration stopped short of tol *and* of what the dtype can resolve (a float32
        # fixed point floors near eps·|x|, above the default tol): λ ≥ 1 (strict=False), or max_iter too small
        floor = 64 * torch.finfo(x.dtype).eps * max(1.0, float(x.detach().abs().max()))
        if not info.converged and not info.residual <= floor:
            warnings.warn(f"IResBlock inverse did not converge: residual max|z + g(z) − x| = {info.residual:.3g} "
                          f"> tol {self.tol:g} after {info.iterations} iterations (lam={self.lam:g}; Lip(g) < 1 "
                          "is needed for a unique preimage). The returned z is not a preimage of x; "
                          "block.last_inverse_info has the details.", RuntimeWarning, stacklevel=3)
        if not (torch.is_grad_enabled() and (x.requires_grad or any(w.requires_grad for w in ws))):
            return z_star, -self.logdet(z_star, ws)
        # exact gradients by implicit differentiation: z = x − g(z*) has dz = dx − ∂_θ g dθ and
        # the true one is (I + J_g)⁻¹ of that; the hook solves uᵀ = gradᵀ − uᵀ J_g, a contraction too
        z = x - self.g(z_star, ws)
        z0 = z_star.detach().requires_grad_()
        with torch.enable_grad():
            g0 = self.g(z0, [w.detach() for w in ws])

        def implicit(grad: Tensor) -> Tensor:
            u = grad
            for _ in range(self.max_iter):
                (vjp,) = torch.autograd.grad(g0, z0, u, retain_graph=True)
                u_new = grad - vjp
                if (u_new - u).abs().max() < self.tol:
                    return u_new
                u = u_new
            return u

        if z.requires_grad:
            z.register_hook(implicit)
        return z, -self.logdet(z, ws)

    @torch.no_grad()
    def lipschitz_bound(self) -> float:
        """``Lip(φ) · Π_i σ_max(W̃_i)``, each ``σ_max`` exact (SVD of the layer's operator matrix).

        For images the conv's matrix has ``(C·H·W)²``-ish entries: meant for small images.
        """
        bound = 1.0
        for w in self.weights():
            if self.is_image:  # the conv's matrix, column by column, on the block's image size
                c_in, (h, wd) = w.shape[1], self.event_shape[1:]
                basis = torch.eye(c_in * h * wd, dtype=w.dtype, device=w.device).reshape(-1, c_in, h, wd)
                mat = F.conv2d(basis, w, padding=1).reshape(basis.shape[0], -1)
            else:
                mat = w
            bound *= torch.linalg.matrix_norm(mat, ord=2).item()
        return bound

    def extra_repr(self) -> str:
        return (f"shape={self.event_shape}, lam={self.lam}, activation={self.activation!r}, "
                f"logdet={self.logdet_mode!r}, n_terms={self.n_terms}, tol={self.tol:g}")


__all__ = ["ACTIVATIONS", "ConvSpectralNorm", "FixedPointInfo", "IResBlock"]
