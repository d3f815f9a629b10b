"""CNF / FFJORD (lesson 06): the bijection contract, closed forms, Hutchinson's unbiasedness, adjoint, recipes."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.func import jacrev, vmap
from torchdiffeq import odeint

from coursekit.continuous import CNF, LinearField, MLPField, divergence_exact, divergence_hutchinson
from coursekit.core.fields import hutchinson_probe
from coursekit.flows import Compose, ElementwiseAffine, Flow, StandardNormal
from coursekit.lessons import cnf as lesson
from coursekit.testing import check_bijection, check_rejects_bad_input

pytestmark = pytest.mark.usefixtures("one_thread")

F64 = torch.float64


def _matrix(seed: int, d: int, scale: float) -> torch.Tensor:
    return scale * torch.randn(d, d, generator=torch.Generator().manual_seed(seed), dtype=F64)


def _flow(field: nn.Module, **kw) -> Flow:
    return Flow(StandardNormal(field.dim), CNF(field, **kw)).double()


def _reference_log_prob(field: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The pre-Bijection ``CNF.log_prob``, written out: solve (x, ℓ) from t=1 to 0 with
    dℓ/dt = −tr(∂f/∂x) (trace from the full ``jacrev`` Jacobian), then log p_0(x_0) − ℓ(0)."""

    def dynamics(t, state):
        xt = state[0]
        jac = vmap(jacrev(lambda xi: field(t, xi[None])[0]))(xt)
        return field(t, xt), -torch.diagonal(jac, dim1=1, dim2=2).sum(1)

    with torch.no_grad():
        xs, ls = odeint(dynamics, (x, x.new_zeros(x.shape[0])), torch.tensor([1.0, 0.0], dtype=x.dtype),
                        method="dopri5", rtol=1e-9, atol=1e-9)
    x0 = xs[-1]
    return -0.5 * (x0**2).sum(1) - 0.5 * x.shape[1] * math.log(2 * math.pi) - ls[-1]


def test_flow_of_cnf_matches_the_old_log_prob_formula():
    torch.manual_seed(0)
    field = MLPField(2, hidden=16, n_layers=2).double()
    x = 1.5 * torch.randn(6, 2, dtype=F64)
    with torch.no_grad():
        new = _flow(field, rtol=1e-9, atol=1e-9).log_prob(x)
    torch.testing.assert_close(new, _reference_log_prob(field, x), rtol=1e-8, atol=1e-8)


def test_cnf_satisfies_the_bijection_contract():
    """Round trip, logdet_inv = −logdet, and logdet = log|det J| of the flow map (autograd Jacobian)."""
    torch.manual_seed(0)
    cnf = CNF(MLPField(2, hidden=8, n_layers=2), rtol=1e-10, atol=1e-10).double()
    z = torch.randn(4, 2, dtype=F64)
    check_bijection(cnf, z, atol=1e-7, rtol=1e-7, autograd=False)  # jacrev cannot trace torchdiffeq's solver
    _, logdet = cnf(z)
    jac = torch.stack([torch.autograd.functional.jacobian(lambda zi: cnf(zi[None])[0][0], zi) for zi in z])
    torch.testing.assert_close(logdet, torch.linalg.slogdet(jac).logabsdet, rtol=1e-7, atol=1e-7)
    check_rejects_bad_input(cnf, z)


def test_cnf_composes_with_discrete_layers():
    """x = affine(cnf(z)): log p(x) = log p_cnf(affine⁻¹(x)) − Σ log scale."""
    torch.manual_seed(0)
    field = MLPField(2, hidden=16, n_layers=2).double()
    cnf = CNF(field, rtol=1e-9, atol=1e-9)
    affine = ElementwiseAffine(2, scale=[2.0, 0.5], shift=[0.3, -1.0]).double()
    composed = Flow(StandardNormal(2), Compose([cnf, affine])).double()
    x = torch.randn(6, 2, dtype=F64)
    y = (x - affine.shift) / affine.log_scale.exp()
    with torch.no_grad():
        expected = Flow(StandardNormal(2), cnf).double().log_prob(y) - affine.log_scale.sum()
        torch.testing.assert_close(composed.log_prob(x), expected, rtol=1e-9, atol=1e-9)
        x2, logp = composed.sample_and_log_prob(5)
        torch.testing.assert_close(composed.log_prob(x2), logp, rtol=1e-6, atol=1e-6)
    assert lesson.cnf_layers(composed) == [cnf]


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), d=st.integers(1, 4), scale=st.floats(0.1, 1.0))
def test_linear_field_logdensity_closed_form(seed, d, scale):
    """f(x) = Ax: log p(x(1)) = log p(x(0)) − tr(A), and x(1) ~ N(0, e^A e^{Aᵀ})."""
    A = _matrix(seed, d, scale)
    flow = _flow(LinearField(A), rtol=1e-10, atol=1e-10)
    torch.manual_seed(seed)
    x, logp = flow.sample_and_log_prob(7)
    z = flow.transform.trajectory(x, 1.0, 0.0)[-1]
    torch.testing.assert_close(logp, flow.base.log_prob(z) - torch.trace(A), rtol=1e-7, atol=1e-7)
    M = torch.linalg.matrix_exp(A)
    oracle = torch.distributions.MultivariateNormal(torch.zeros(d, dtype=F64), M @ M.T).log_prob(x)
    torch.testing.assert_close(flow.log_prob(x), oracle, rtol=1e-7, atol=1e-7)
    torch.testing.assert_close(logp, oracle, rtol=1e-7, atol=1e-7)


def test_hutchinson_is_exact_for_diagonal_linear_field_with_rademacher():
    A = torch.diag(torch.tensor([0.5, -1.0, 0.25], dtype=F64))
    flow = _flow(LinearField(A), divergence="hutchinson", rtol=1e-9, atol=1e-9)
    x = torch.randn(5, 3, dtype=F64)
    expected = flow.base.log_prob(x @ torch.linalg.matrix_exp(-A).T) - torch.trace(A)
    torch.testing.assert_close(flow.log_prob(x), expected, rtol=1e-7, atol=1e-7)


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
    est = divergence_hutchinson(field, t, xs, noise=noise).reshape(n, 3)
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
    var = {nz: divergence_hutchinson(field, t, xs, hutchinson_probe(xs, nz)).var().item()
           for nz in ("rademacher", "gaussian")}
    J = jacrev(lambda xi: field(t, xi[None])[0])(xs[0])
    Js = (J + J.T) / 2
    gauss = 2 * (Js**2).sum().item()
    rad = gauss - 2 * (torch.diagonal(J) ** 2).sum().item()
    assert var["rademacher"] < var["gaussian"]
    assert abs(var["gaussian"] - gauss) < 0.15 * gauss
    assert abs(var["rademacher"] - rad) < 0.15 * gauss


def test_trajectory_inverts_and_log_prob_agrees_with_sampling():
    torch.manual_seed(0)
    flow = _flow(MLPField(2, hidden=16), rtol=1e-9, atol=1e-9)
    cnf = flow.transform
    z = torch.randn(10, 2, dtype=F64)
    path = cnf.trajectory(z, 0.0, 1.0, n_times=5)
    assert path.shape == (5, 10, 2)
    torch.testing.assert_close(path[-1], cnf(z)[0], rtol=1e-7, atol=1e-7)
    torch.testing.assert_close(cnf.trajectory(path[-1], 1.0, 0.0)[-1], z, rtol=1e-6, atol=1e-6)
    x2, logp = flow.sample_and_log_prob(6)
    torch.testing.assert_close(flow.log_prob(x2), logp, rtol=1e-6, atol=1e-6)
    assert flow.sample(3).shape == (3, 2)


def test_density_integrates_to_one_on_a_grid():
    torch.manual_seed(0)
    flow = _flow(MLPField(2, hidden=16), rtol=1e-6, atol=1e-6)
    g = torch.linspace(-7, 7, 121, dtype=F64)
    xx, yy = torch.meshgrid(g, g, indexing="xy")
    pts = torch.stack([xx.reshape(-1), yy.reshape(-1)], 1)
    with torch.no_grad():
        mass = flow.log_prob(pts).exp().sum().item() * (g[1] - g[0]).item() ** 2
    assert abs(mass - 1) < 0.02


@pytest.mark.parametrize("divergence", ["exact", "hutchinson"])
def test_adjoint_gradient_of_log_prob_agrees_with_backprop(divergence):
    torch.manual_seed(0)
    field = MLPField(2, hidden=16, n_layers=2).double()
    x = torch.randn(6, 2, dtype=F64)
    grads = []
    for adjoint in (False, True):
        flow = _flow(field, divergence=divergence, rtol=1e-10, atol=1e-10, adjoint=adjoint)
        torch.manual_seed(1)  # the same ε in both solves
        grads.append(torch.autograd.grad(-flow.log_prob(x).mean(), list(field.parameters())))
    for g_direct, g_adjoint in zip(*grads):
        torch.testing.assert_close(g_adjoint, g_direct, rtol=1e-6, atol=1e-7)


def test_no_grad_log_prob_keeps_no_graph_counts_nfe_and_switches_divergence():
    flow = Flow(StandardNormal(2), CNF(MLPField(2, hidden=8)))
    with torch.no_grad():
        lp = flow.log_prob(torch.randn(5, 2))
    assert lp.shape == (5,) and not lp.requires_grad and flow.transform.nfe > 0
    assert lesson.nfe(flow) == flow.transform.nfe
    flow.transform.divergence = "hutchinson"
    assert flow.transform.dynamics.field.divergence == "hutchinson"
    with pytest.raises(ValueError, match="divergence"):
        flow.transform.divergence = "trace"


def test_log_prob_at_intermediate_time_matches_linear_closed_form():
    """x(t) = e^{tA} z: log p_t(x) = log N(x; 0, e^{tA} e^{tAᵀ})."""
    A = torch.tensor([[0.2, -0.7], [0.5, -0.4]], dtype=F64)
    flow = _flow(LinearField(A), rtol=1e-10, atol=1e-10)
    x = torch.randn(6, 2, dtype=F64)
    for t in (0.0, 0.35, 1.0):
        M = torch.linalg.matrix_exp(t * A)
        oracle = torch.distributions.MultivariateNormal(torch.zeros(2, dtype=F64), M @ M.T).log_prob(x)
        torch.testing.assert_close(flow.transform.log_prob_at(x, t, flow.base), oracle, rtol=1e-7, atol=1e-7)
    torch.testing.assert_close(flow.transform.log_prob_at(x, 1.0, flow.base), flow.log_prob(x))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        flow.transform.log_prob_at(x, 1.5, flow.base)


def test_bad_input_raises_clear_errors():
    with pytest.raises(ValueError, match="divergence"):
        CNF(MLPField(2), divergence="trace")
    with pytest.raises(ValueError, match="noise"):
        CNF(MLPField(2), noise="uniform")
    with pytest.raises(ValueError, match="dim"):
        CNF(nn.Linear(2, 2))  # no .dim: say so
    with pytest.raises(TypeError, match="nn.Module"):
        CNF(lambda t, x: x)
    flow = Flow(StandardNormal(2), CNF(MLPField(2)))
    with pytest.raises(ValueError, match=r"shape \(batch, 2\)"):
        flow.log_prob(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="NaN"):
        flow.log_prob(torch.full((2, 2), float("nan")))
    with pytest.raises(ValueError, match="n_times"):
        flow.transform.trajectory(torch.zeros(3, 2), n_times=1)
    with pytest.raises(ValueError, match="eps"):
        divergence_hutchinson(MLPField(2), torch.tensor(0.0), torch.zeros(3, 2), torch.zeros(3, 3))
    with pytest.raises(TypeError, match="CNF"):
        lesson.evaluate_nll(Flow(StandardNormal(2), ElementwiseAffine(2)), torch.zeros(3, 2))


def test_train_ffjord_runs_and_lowers_nll():
    res = lesson.train_ffjord("8gaussians", n_steps=30, batch_size=128, n_test=500, hidden=16, lr=1e-2,
                              progress=False)
    assert isinstance(res.model, Flow) and isinstance(res.model.transform, CNF)
    losses = res.history["loss"]
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5
    assert math.isfinite(res.test_nll) and len(res.nfe_forward) == 30 and len(res.nfe_backward) == 30
    assert min(res.nfe_backward) > 0 and res.nfe_sample > 0


def test_density_over_time_and_trace_cost_shapes():
    A = torch.diag(torch.tensor([0.5, -0.25], dtype=F64))
    flow = _flow(LinearField(A), rtol=1e-8, atol=1e-8)
    pts = torch.randn(10, 2, dtype=F64)
    logp, div = lesson.density_over_time(flow, pts, [0.0, 0.5, 1.0])
    assert logp.shape == (3, 10) and div.shape == (3, 10)
    assert abs(div - 0.25).max() < 1e-12  # tr(A) everywhere, at every time
    assert abs(lesson.loglog_slope([1, 10, 100], [3, 300, 30000]) - 2) < 1e-9
    cost = lesson.trace_cost(dims=(2, 4), batch=4, hidden=8, repeats=1)
    assert len(cost.exact_s) == 2 and all(v > 0 for v in cost.exact_s + cost.hutchinson_s)
    cost = lesson.trace_cost(dims=(2, 4), batch=4, hidden=None, repeats=1)  # width grows with D
    assert cost.dims == [2, 4] and all(v > 0 for v in cost.exact_s + cost.hutchinson_s)


def test_ffjord_checkpoint_roundtrip(tmp_path):
    from coursekit.lessons import load_model
    from coursekit.training import checkpoints

    model = lesson.make_ffjord(hidden=8)
    config = dict(hidden=8, n_layers=3, activation="tanh", divergence="exact", rtol=1e-3, atol=1e-3, adjoint=True)
    checkpoints.save(tmp_path / "m.pt", "ffjord", {"field": model.transform.field.state_dict()}, config=config,
                     meta={"dataset": "8gaussians"})
    ckpt = load_model(tmp_path / "m.pt")
    x = torch.randn(5, 2)
    with torch.no_grad():
        torch.testing.assert_close(ckpt.model.log_prob(x), model.log_prob(x))
    assert ckpt.kind == "ffjord" and ckpt.config == config and ckpt.meta["dataset"] == "8gaussians"
    checkpoints.save(tmp_path / "bad.pt", "ffjord", {"weights": {}})
    with pytest.raises(ValueError, match="FFJORD checkpoint"):
        lesson.from_checkpoint(checkpoints.load(tmp_path / "bad.pt"))


@pytest.mark.parametrize("name", ["8gaussians", "checkerboard"])
def test_shipped_ffjord_checkpoints_load_and_beat_a_gaussian(name, no_network):
    from coursekit.data import sample_toy
    from coursekit.lessons import load_model

    ckpt = load_model(f"ffjord_{name}.pt")
    assert ckpt.kind == "ffjord" and ckpt.meta["dataset"] == name and len(ckpt.meta["loss"]) == ckpt.meta["steps"]
    x = sample_toy(name, 300, torch.Generator().manual_seed(4))
    nll, nfe = lesson.evaluate_nll(ckpt.model, x)
    ref = sample_toy(name, 20_000, torch.Generator().manual_seed(5))
    gauss = torch.distributions.MultivariateNormal(ref.mean(0), torch.cov(ref.T))
    assert nll < -gauss.log_prob(x).mean().item() and nfe > 0


def test_adjoint_vs_backprop_same_gradient_flat_memory():
    """Notebook 06's adjoint table: the CNF loss's gradient by the adjoint equals backprop through rk4 (same
    fixed steps), and only backprop's memory grows with the steps."""
    from coursekit.continuous import MLPField
    from coursekit.lessons import cnf as lesson

    torch.manual_seed(0)
    field = MLPField(2, hidden=8, n_layers=2).double()
    x = torch.randn(16, 2, dtype=torch.float64)
    rows = lesson.adjoint_vs_backprop(field, x, step_counts=(2, 6))
    assert [r.n_steps for r in rows] == [2, 6]
    assert all(r.grad_rel_diff < 1e-6 for r in rows)
    assert rows[1].direct_bytes > 2 * rows[0].direct_bytes
    assert rows[1].adjoint_bytes < 1.5 * rows[0].adjoint_bytes
    assert rows[1].nfe_backward > rows[0].nfe_backward > 0
    hutch = lesson.adjoint_vs_backprop(field, x, step_counts=(2,), divergence="hutchinson")
    assert hutch[0].grad_rel_diff < 1e-6  # the same ε in both modes
    with pytest.raises(ValueError, match="divergence"):
        lesson.adjoint_vs_backprop(field, x, divergence="trace")
    with pytest.raises(ValueError, match="step count"):
        lesson.adjoint_vs_backprop(field, x, step_counts=(0,))
    frozen = MLPField(2, hidden=4, n_layers=1).double().requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        lesson.adjoint_vs_backprop(frozen, x)
