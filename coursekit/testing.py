"""Reusable checks of the bijection contract (used by the test-suite and the notebooks).

``check_bijection(f, z)`` verifies, in the dtype of ``z`` (use float64):

* ``inverse(forward(z))`` returns ``z``;
* ``logdet`` equals ``slogdet`` of the Jacobian computed by autograd (``torch.func.jacrev``);
* ``logdet_inv = -logdet`` at the matching point;
* shapes and dtypes are preserved.

and returns the largest errors so a notebook can show them to the student.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.func import jacrev

from .flows.base import Bijection


@dataclass
class ContractReport:
    """Largest absolute errors found by :func:`check_bijection`."""

    roundtrip: float
    logdet_vs_autograd: float
    logdet_inv_plus_logdet: float

    def __str__(self) -> str:
        return (
            f"ida y vuelta: max|f⁻¹(f(z)) − z| = {self.roundtrip:.1e}; "
            f"log-det vs autograd: max|error| = {self.logdet_vs_autograd:.1e}; "
            f"max|logdet_inv + logdet| = {self.logdet_inv_plus_logdet:.1e}"
        )


def autograd_logdet(f: Bijection, z: Tensor) -> Tensor:
    """``log|det J_f(z)|`` per sample from the full autograd Jacobian (the oracle)."""

    def single(zi: Tensor) -> Tensor:
        return f(zi.unsqueeze(0))[0].squeeze(0).reshape(-1)

    # one jacrev per sample (not vmap): layers may branch on data, e.g. ActNorm's first call
    jac = torch.stack([jacrev(single)(zi) for zi in z])  # (batch, D, *event_shape)
    jac = jac.reshape(z.shape[0], jac.shape[1], -1)
    return torch.linalg.slogdet(jac).logabsdet


def check_bijection(f: Bijection, z: Tensor, atol: float = 1e-6, rtol: float = 1e-6,
                    autograd: bool = True) -> ContractReport:
    """Assert the contract on the batch ``z``; return the errors (raise ``AssertionError``)."""
    x, logdet = f(z)
    assert x.shape == z.shape, f"forward changed the shape: {tuple(z.shape)} -> {tuple(x.shape)}"
    assert x.dtype == z.dtype, f"forward changed the dtype: {z.dtype} -> {x.dtype}"
    assert logdet.shape == (z.shape[0],), f"logdet must have shape ({z.shape[0]},), got {tuple(logdet.shape)}"
    z_back, logdet_inv = f.inverse(x)
    assert z_back.shape == z.shape and z_back.dtype == z.dtype
    assert logdet_inv.shape == (z.shape[0],)
    roundtrip = (z_back - z).abs().max().item()
    torch.testing.assert_close(z_back, z, atol=atol, rtol=rtol, msg=lambda m: f"round trip failed: {m}")
    inv_err = (logdet_inv + logdet).abs().max().item()
    torch.testing.assert_close(logdet_inv, -logdet, atol=atol, rtol=rtol,
                               msg=lambda m: f"logdet_inv != -logdet: {m}")
    ad_err = float("nan")
    if autograd:
        oracle = autograd_logdet(f, z)
        ad_err = (oracle - logdet).abs().max().item()
        torch.testing.assert_close(logdet, oracle, atol=atol, rtol=rtol,
                                   msg=lambda m: f"logdet != autograd slogdet: {m}")
    return ContractReport(roundtrip, ad_err, inv_err)


def check_rejects_bad_input(f: Bijection, good: Tensor) -> None:
    """Wrong type, dtype, shape and non-finite values each raise a clear error."""
    import pytest

    for method in (f.forward, f.inverse):
        with pytest.raises(TypeError, match="torch.Tensor"):
            method(good.tolist())
        with pytest.raises(ValueError, match="floating dtype"):
            method(good.to(torch.int64))
        with pytest.raises(ValueError, match="shape"):
            method(good[0])  # batch dimension missing
        bad = good.clone()
        bad.view(-1)[0] = float("nan")
        with pytest.raises(ValueError, match="NaN or Inf"):
            method(bad)
