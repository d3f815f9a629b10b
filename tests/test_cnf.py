"""CNF / FFJORD (lesson 06): closed forms, Hutchinson's unbiasedness, inversion, adjoint."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.func import jacrev

from coursekit.continuous import CNF, LinearField, MLPField, divergence_exact, divergence_hutchinson, train_ffjord
from coursekit.continuous.cnf import sample_noise
from coursekit.flows import StandardNormal

pytestmark = pytest.mark.usefixtures("one_thread")

F64 = torch.float64




def _matrix(seed: int, d: int, scale: float) -> torch.Tensor:
    return scale * torch.randn(d, d, generator=torch.Generator().manual_seed(seed), dtype=F64)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), d=st.integers(1, 4), scale=st.floats(0.1, 1.0))
def test_linear_field_logdensity_closed_form(seed, d, scale):
    """f(x) = Ax: log p(x(1)) = log p(x(0)) − tr(A), and x(1) ~ N(0, e^A e^{Aᵀ})."""
    A = _matrix(seed, d, scale)
    cnf = CNF(LinearField(A), base=StandardNormal(d).double(), rtol=1e-10, atol=1e-10)
    torch.manual_seed(seed)
    x, logp = cnf.sample_and_log_prob(7)
    z = cnf.transform(x, 1.0, 0.0)[-1]
    torch.testing.assert_close(logp, cnf.base.log_prob(z) - torch.trace(A), rtol=1e-7, atol=1e-7)
    M = torch.linalg.matrix_exp(A)
    oracle = torch.distributions.MultivariateNormal(torch.zeros(d, dtype=F64), M @ M.T).log_prob(x)
    torch.testing.assert_close(cnf.log_prob(x), oracle, rtol=1e-7, atol=1e-7)
    torch.testing.assert_close(logp, oracle, rtol=1e-7, atol=1e-7)


def test_hutchinson_is_exact_for_diagonal_linear_field_with_rademacher():
    A = torch.diag(torch.tensor([0.5, -1.0, 0.25], dtype=F64))
    cnf = CNF(LinearField(A), base=StandardNormal(3).double(), divergence="hutchinson", rtol=1e-9, atol=1e-9)
    x = torch.randn(5, 3, dtype=F64)
    expected = cnf.base.log_prob(x @ torch.linalg.matrix_exp(-A).T) - torch.trace(A)
    torch.testing.assert_close(cnf.log_prob(x), expected, rtol=1e-7, atol=1e-7)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000), d=st.integers(1, 6), t=st.floats(0.0, 1.0))
def test_divergence_exact_matches_jacobian_trace(seed, d, t):
    torch.manual_seed(seed)
    field = MLPField(d, hidden=16, n_layers=2).double()
    x = torch.randn(4, d, dtype=F64)
    tt = torch.tensor(t, dtype=F64)
    oracle = torch.stack([torch.trace(jacrev(lambda xi: field(tt, xi[None])[0])(xi)) for xi in x])
    torch.testing.assert_close(divergence_exact(field, tt, x), oracle)


@pytest.mark.parametrize("noise", ["rademacher", "gaussian"])
def test_hutchinson_mean_matches_exact_within_mc_error(noise):
    torch.manual_seed(0)
    d, n = 5, 4000
    field = MLPField(d, hidden=32, n_layers=2).double()
    x = torch.randn(3, d, dtype=F64)
    t = torch.tensor(0.5, dtype=F64)
    exact = divergence_exact(field, t, x)
    xs = x.repeat(n, 1)  # n independent ε per point, in one batch
    est = divergence_hutchinson(field, t, xs, sample_noise(xs, noise)).reshape(n, 3)
    mean, se = est.mean(0), est.std(0) / math.sqrt(n)
    assert (se > 0).all()
    z = ((mean - exact) / se).abs()
    assert (z < 4.5).all(), f"Hutchinson mean off by {z.tolist()} standard errors"


def test_rademacher_has_lower_variance_than_gaussian():
    """Var[εᵀJε] = 2‖J_s‖²_F − 2Σ J_ii² (Rademacher) ≤ 2‖J_s‖²_F (Gaussian), J_s = sym. part."""
    torch.manual_seed(1)
    field = MLPField(4, hidden=32, n_layers=2).double()
    xs = torch.randn(1, 4, dtype=F64).repeat(4000, 1)
    t = torch.tensor(0.0, dtype=F64)
    var = {nz: divergence_hutchinson(field, t, xs, sample_noise(xs, nz)).var().item()
           for nz in ("rademacher", "gaussian")}
    J = jacrev(lambda xi: field(t, xi[None])[0])(xs[0])
    Js = (J + J.T) / 2
    gauss = 2 * (Js**2).sum().item()
    rad = gauss - 2 * (torch.diagonal(J) ** 2).sum().item()
    assert var["rademacher"] < var["gaussian"]
    assert abs(var["gaussian"] - gauss) < 0.15 * gauss
    assert abs(var["rademacher"] - rad) < 0.15 * gauss


def test_flow_inverts_and_log_prob_agrees_with_sampling():
    torch.manual_seed(0)
    cnf = CNF(MLPField(2, hidden=16), rtol=1e-9, atol=1e-9).double()
    z = torch.randn(10, 2, dtype=F64)
    x = cnf.transform(z, 0.0, 1.0)[-1]
    torch.testing.assert_close(cnf.transform(x, 1.0, 0.0)[-1], z, rtol=1e-6, atol=1e-6)
    x2, logp = cnf.sample_and_log_prob(6)
    torch.testing.assert_close(cnf.log_prob(x2), logp, rtol=1e-6, atol=1e-6)


def test_density_integrates_to_one_on_a_grid():
    torch.manual_seed(0)
    cnf = CNF(MLPField(2, hidden=16), rtol=1e-6, atol=1e-6).double()
    g = torch.linspace(-7, 7, 121, dtype=F64)
    xx, yy = torch.meshgrid(g, g, indexing="xy")
    pts = torch.stack([xx.reshape(-1), yy.reshape(-1)], 1)
    with torch.no_grad():
        mass = cnf.log_prob(pts).exp().sum().item() * (g[1] - g[0]).item() ** 2
    assert abs(mass - 1) < 0.02


@pytest.mark.parametrize("divergence", ["exact", "hutchinson"])
def test_adjoint_gradient_of_log_prob_agrees_with_backprop(divergence):
    torch.manual_seed(0)
    field = MLPField(2, hidden=16, n_layers=2).double()
    x = torch.randn(6, 2, dtype=F64)
    grads = []
    for adjoint in (False, True):
        cnf = CNF(field, divergence=divergence, rtol=1e-10, atol=1e-10, adjoint=adjoint).double()
        torch.manual_seed(1)  # the same ε in both solves
        grads.append(torch.autograd.grad(-cnf.log_prob(x).mean(), list(field.parameters())))
    for g_direct, g_adjoint in zip(*grads):
        torch.testing.assert_close(g_adjoint, g_direct, rtol=1e-6, atol=1e-7)


def test_no_grad_log_prob_keeps_no_graph_and_counts_nfe():
    cnf = CNF(MLPField(2, hidden=8))
    with torch.no_grad():
        lp = cnf.log_prob(torch.randn(5, 2))
    assert lp.shape == (5,) and not lp.requires_grad and cnf.nfe > 0


def test_train_ffjord_runs_and_lowers_nll():
    res = train_ffjord("8gaussians", n_steps=30, batch_size=128, n_test=500, hidden=16, lr=1e-2, progress=False)
    losses = res.history["loss"]
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5
    assert math.isfinite(res.test_nll) and len(res.nfe_forward) == 30 and len(res.nfe_backward) == 30
    assert min(res.nfe_backward) > 0 and res.nfe_sample > 0


def test_bad_input_raises_clear_errors():
    with pytest.raises(ValueError, match="divergence"):
        CNF(MLPField(2), divergence="trace")
    with pytest.raises(ValueError, match="noise"):
        CNF(MLPField(2), noise="uniform")
    with pytest.raises(ValueError, match="base"):
        CNF(LinearField(torch.eye(2)))
    cnf = CNF(MLPField(2))
    with pytest.raises(ValueError, match=r"shape \(batch, 2\)"):
        cnf.log_prob(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="NaN"):
        cnf.log_prob(torch.full((2, 2), float("nan")))
    with pytest.raises(ValueError, match="eps"):
        divergence_hutchinson(MLPField(2), torch.tensor(0.0), torch.zeros(3, 2), torch.zeros(3, 3))


def test_log_prob_at_intermediate_time_matches_linear_closed_form():
    """x(t) = e^{tA} z: log p_t(x) = log N(x; 0, e^{tA} e^{tAᵀ})."""
    A = torch.tensor([[0.2, -0.7], [0.5, -0.4]], dtype=F64)
    cnf = CNF(LinearField(A), base=StandardNormal(2).double(), rtol=1e-10, atol=1e-10)
    x = torch.randn(6, 2, dtype=F64)
    for t in (0.0, 0.35, 1.0):
        M = torch.linalg.matrix_exp(t * A)
        oracle = torch.distributions.MultivariateNormal(torch.zeros(2, dtype=F64), M @ M.T).log_prob(x)
        torch.testing.assert_close(cnf.log_prob(x, t=t), oracle, rtol=1e-7, atol=1e-7)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        cnf.log_prob(x, t=1.5)


def test_density_over_time_and_trace_cost_shapes():
    from coursekit.continuous.cnf_experiments import density_over_time, loglog_slope, trace_cost

    A = torch.diag(torch.tensor([0.5, -0.25], dtype=F64))
    cnf = CNF(LinearField(A), base=StandardNormal(2).double(), rtol=1e-8, atol=1e-8)
    pts = torch.randn(10, 2, dtype=F64)
    logp, div = density_over_time(cnf, pts, [0.0, 0.5, 1.0])
    assert logp.shape == (3, 10) and div.shape == (3, 10)
    assert abs(div - 0.25).max() < 1e-12  # tr(A) everywhere, at every time
    assert abs(loglog_slope([1, 10, 100], [3, 300, 30000]) - 2) < 1e-9
    cost = trace_cost(dims=(2, 4), batch=4, hidden=8, repeats=1)
    assert len(cost.exact_s) == 2 and all(v > 0 for v in cost.exact_s + cost.hutchinson_s)


def test_load_ffjord_roundtrip(tmp_path):
    from coursekit.continuous import load_ffjord, make_ffjord
    from coursekit.train import save_checkpoint

    model = make_ffjord(hidden=8)
    config = dict(hidden=8, n_layers=3, activation="tanh", divergence="exact", rtol=1e-3, atol=1e-3, adjoint=True)
    save_checkpoint(tmp_path / "m.pt", field=model.field.state_dict(), config=config, metrics={})
    loaded, meta = load_ffjord(tmp_path / "m.pt")
    x = torch.randn(5, 2)
    with torch.no_grad():
        torch.testing.assert_close(loaded.log_prob(x), model.log_prob(x))
    assert meta["config"] == config
    save_checkpoint(tmp_path / "bad.pt", weights={})
    with pytest.raises(ValueError, match="FFJORD checkpoint"):
        load_ffjord(tmp_path / "bad.pt")
