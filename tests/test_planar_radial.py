"""Planar and radial flows (contract, û, folds), VI / ML recipes, the shipped checkpoint and the playground."""

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch.func import jacrev

from coursekit import viz
from coursekit.data.toy2d import energy_u2
from coursekit.flows.base import Compose, Flow, StandardNormal
from coursekit.flows.planar import Planar
from coursekit.flows.radial import Radial
from coursekit.flows.vi import annealing_weight, log_partition, reverse_kl_loss, target
from coursekit.lessons import load_model
from coursekit.lessons import planar_radial as lesson
from coursekit.testing import check_bijection, check_rejects_bad_input

pytestmark = pytest.mark.usefixtures("float64")

coord = st.floats(-3.0, 3.0, allow_nan=False)
FAST = settings(max_examples=25, deadline=None)


def _z(dim: int, seed: int, n: int = 12, scale: float = 2.0) -> torch.Tensor:
    return scale * torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))


def _signed_det_autograd(f, z):
    return torch.stack([torch.linalg.det(jacrev(lambda v: f(v[None])[0][0])(zi)) for zi in z])


# --- Planar -----------------------------------------------------------------------------


@FAST
@given(dim=st.integers(1, 5), data=st.data(), b=coord, seed=st.integers(0, 10_000))
def test_planar_contract_including_raw_wu_below_minus_one(dim, data, b, seed):
    u = torch.tensor(data.draw(st.lists(coord, min_size=dim, max_size=dim)))
    w = torch.tensor(data.draw(st.lists(coord, min_size=dim, max_size=dim)))
    assume(float(w.norm()) > 0.2)
    f = Planar(dim, u=u, w=w, b=b, tol=1e-12)
    # û fixes any raw u, including wᵀu < -1 (where the raw map would fold)
    assert float((f.w @ f.u_hat).detach()) > -1
    check_bijection(f, _z(dim, seed), atol=1e-8, rtol=1e-8)


def test_planar_u_hat_formula():
    f = Planar(3, u=[-2.0, 1.0, 0.5], w=[1.5, 0.0, -1.0], b=0.2)
    u, w = f.u.detach(), f.w.detach()
    wu = float(w @ u)
    assert wu < -1
    u_hat = f.u_hat.detach()
    assert math.isclose(float(w @ u_hat), -1 + math.log1p(math.exp(wu)), rel_tol=1e-12)
    # only the component along w changes
    proj = torch.eye(3) - torch.outer(w, w) / (w @ w)
    torch.testing.assert_close(proj @ u_hat, proj @ u)
    # and with û the full contract holds although the raw wᵀu = -3.5 < -1
    check_bijection(f, _z(3, 7, n=16), atol=1e-8, rtol=1e-8)


def test_planar_raw_fold_has_negative_det_and_u_hat_removes_it():
    z = _z(2, 0, n=400)
    raw = Planar(2, u=[-2.0, 0.0], w=[2.0, 0.0], b=0.0, constrain=False)
    fixed = Planar(2, u=[-2.0, 0.0], w=[2.0, 0.0], b=0.0, constrain=True)
    assert (raw.jacobian_det(z) < 0).any()
    assert (fixed.jacobian_det(z) > 0).all()
    # the signed det is the autograd Jacobian's det, and log|det| is what forward returns
    zs = z[:10]
    torch.testing.assert_close(raw.jacobian_det(zs), _signed_det_autograd(raw, zs))
    torch.testing.assert_close(raw(zs)[1], raw.jacobian_det(zs).abs().log())
    # the raw inverse still returns *a* preimage: f(f⁻¹(x)) = x
    x = _z(2, 1, n=50)
    with torch.no_grad():
        torch.testing.assert_close(raw(raw.inverse(x)[0])[0], x)


def test_planar_inverse_gradients_are_exact():
    x = _z(2, 3, n=5)

    def inv(u, w, b):
        f = Planar(2, u=[0.0, 0.0], w=[1.0, 0.0], tol=1e-13)
        del f.u, f.w, f.b  # plug the tensors in as plain attributes so gradcheck can vary them
        f.u, f.w, f.b = u, w, b
        z, ld = f.inverse(x)
        return z, ld

    args = (torch.tensor([-1.5, 0.7], requires_grad=True), torch.tensor([1.2, -0.4], requires_grad=True),
            torch.tensor(0.3, requires_grad=True))
    assert torch.autograd.gradcheck(inv, args, atol=1e-6)


def test_planar_bad_input_and_bad_parameters():
    check_rejects_bad_input(Planar(2), _z(2, 0, n=4))
    with pytest.raises(ValueError, match="non-zero"):
        Planar(2, u=[1.0, 0.0], w=[0.0, 0.0])
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        Planar(2, u=[1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="tol"):
        Planar(2, tol=0.0)


# --- Radial -----------------------------------------------------------------------------


@FAST
@given(dim=st.integers(1, 5), alpha=st.floats(0.05, 3.0), gap=st.floats(1e-3, 6.0),
       z0=coord, seed=st.integers(0, 10_000))
def test_radial_contract(dim, alpha, gap, z0, seed):
    f = Radial(dim, z0=torch.full((dim,), z0), alpha=alpha, beta=-alpha + gap)
    z = _z(dim, seed)
    assume(float((z - f.z0.detach()).norm(dim=1).min()) > 1e-3)  # the norm's gradient is undefined at z₀
    check_bijection(f, z, atol=1e-8, rtol=1e-8)


def test_radial_parameterization_and_raw_fold():
    f = Radial(2, z0=[0.5, -0.5], alpha=0.7, beta=1.3)
    alpha, beta = float(f.alpha.detach()), float(f.beta.detach())
    assert math.isclose(alpha, 0.7, rel_tol=1e-12) and math.isclose(beta, 1.3, rel_tol=1e-12)
    with torch.no_grad():
        f.beta_raw.fill_(-20.0)  # any raw value still gives β ≥ -α
    assert float(f.beta.detach()) >= -float(f.alpha.detach())
    raw = Radial(2, z0=[0.0, 0.0], alpha=0.5, beta=-1.5, constrain=False)
    z = _z(2, 2, n=200, scale=0.5)
    assert (raw.jacobian_det(z) < 0).any()
    torch.testing.assert_close(raw.jacobian_det(z[:8]), _signed_det_autograd(raw, z[:8]))
    x = _z(2, 4, n=50)
    with torch.no_grad():
        torch.testing.assert_close(raw(raw.inverse(x)[0])[0], x)


def test_radial_bad_input_and_bad_parameters():
    check_rejects_bad_input(Radial(3), _z(3, 0, n=4))
    with pytest.raises(ValueError, match="alpha"):
        Radial(2, alpha=0.0)
    with pytest.raises(ValueError, match="beta"):
        Radial(2, alpha=1.0, beta=-1.0)
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        Radial(2, z0=[0.0, 0.0, 0.0])


# --- VI and maximum likelihood -------------------------------------------------------------


def _gaussian_energy(x):
    return 0.5 * (x**2).sum(1)


def test_reverse_kl_is_zero_when_q_equals_p_and_log_z_matches_closed_form():
    # u = 0: f is the identity, so q = N(0, I) = exp(-U) / 2π exactly
    flow = Flow(StandardNormal(2), Compose([Planar(2, u=[0.0, 0.0], w=[1.0, 1.0], constrain=False)]))
    assert math.isclose(log_partition(_gaussian_energy), math.log(2 * math.pi), rel_tol=1e-9)
    score = lesson.score_reverse_kl(flow, _gaussian_energy, n=500)
    assert abs(score.kl) < 1e-9 and score.stderr < 1e-9
    loss = reverse_kl_loss(flow, _gaussian_energy, 500)
    assert math.isclose(float(loss.detach()), -math.log(2 * math.pi), rel_tol=1e-9)  # = KL - log Z


def test_reverse_kl_matches_monte_carlo_oracle_for_a_shifted_gaussian():
    # q = N(0, I); p = N(m, I): KL(q ‖ p) = ‖m‖² / 2
    m = torch.tensor([1.0, -0.5])
    flow = lesson.make_flow("radial", 1)
    with torch.no_grad():
        flow.transform.bijections[0].beta_raw.fill_(math.log(math.expm1(float(flow.transform.bijections[0].alpha))))
    assert abs(float(flow.transform.bijections[0].beta.detach())) < 1e-12  # β = 0: identity
    score = lesson.score_reverse_kl(flow, lambda x: 0.5 * ((x - m) ** 2).sum(1), n=4000)
    assert abs(score.kl - 0.5 * float(m @ m)) < 5 * score.stderr  # Monte Carlo: within 5 standard errors


def test_named_targets_are_normalizable():
    # U2 does not confine x₁; the wall of target makes log Z independent of the box
    assert log_partition("U2", bounds=8.0) == pytest.approx(log_partition("U2", bounds=12.0, n=1500), abs=1e-6)
    x = torch.tensor([[0.5, 0.3], [6.0, 0.0]])
    raw, walled = energy_u2(x), target("U2")(x)
    assert walled[0] == raw[0] and walled[1] == pytest.approx(raw[1] + 0.5 * (2.0 / 0.2) ** 2)


def test_annealing_weight():
    assert annealing_weight(0, 100) == pytest.approx(0.01)
    assert annealing_weight(50, 100) == pytest.approx(0.51)
    assert annealing_weight(500, 100) == 1.0
    assert annealing_weight(3, None) == 1.0


def test_fit_reverse_kl_improves_the_elbo_and_checkpoints(tmp_path):
    torch.manual_seed(0)
    flow = lesson.make_flow("planar", 4, seed=1)
    before = lesson.score_reverse_kl(flow, "U1", n=4000)
    hist = lesson.fit_reverse_kl(flow, "U1", 150, batch=128, lr=1e-2, anneal_steps=50, progress=False,
                                 checkpoint=tmp_path / "vi.pt")
    after = lesson.score_reverse_kl(flow, "U1", n=4000)
    assert after.kl < before.kl - 0.3
    assert hist["weight"][0] == pytest.approx(0.01) and hist["weight"][-1] == 1.0
    assert (tmp_path / "vi.pt").exists()


def test_fit_max_likelihood_lowers_held_out_nll():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    from coursekit.data import sample_toy

    train, test = sample_toy("8gaussians", 2000, g).double(), sample_toy("8gaussians", 1000, g).double()
    flow = lesson.make_flow("radial", 4, seed=0)
    before = lesson.mean_nll(flow, test)
    lesson.fit_max_likelihood(flow, train, 80, batch=128, lr=2e-2, progress=False, generator=g)
    assert lesson.mean_nll(flow, test) < before - 0.2
    # mean_nll is -mean log q: for the identity flow it is the Gaussian's closed form
    ident = Flow(StandardNormal(2), Compose([Radial(2, alpha=1.0, beta=1e-12)]))
    closed = float((0.5 * (test**2).sum(1)).mean()) + math.log(2 * math.pi)
    assert lesson.mean_nll(ident, test) == pytest.approx(closed, rel=1e-6)


def test_vi_bad_arguments():
    with pytest.raises(ValueError, match="planar"):
        lesson.make_flow("glow", 2)
    with pytest.raises(ValueError, match="n_layers must be a positive int"):
        lesson.make_flow("planar", 0)
    with pytest.raises(ValueError, match="U1"):
        reverse_kl_loss(lesson.make_flow("planar", 1), "U9", 10)
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        lesson.fit_max_likelihood(lesson.make_flow("planar", 1), torch.zeros(5), 1, progress=False)


# --- the "vi" checkpoint ---------------------------------------------------------------------


def test_shipped_checkpoint_rebuilds_flows_whose_scores_match_the_saved_ones():
    ckpt = load_model("vi_planar_radial.pt")
    assert ckpt.kind == "vi" and len(ckpt.model) == 24 and ckpt.meta["commands"]
    log_z = {}
    torch.manual_seed(0)
    for key, m in ckpt.model.items():
        assert key == lesson.model_key(m.kind, m.energy, m.n_layers)
        log_z.setdefault(m.energy, log_partition(m.energy))
        assert m.score.log_z == pytest.approx(log_z[m.energy], abs=1e-9)
        fresh = lesson.score_reverse_kl(m.flow, m.energy, n=2_000, log_z=log_z[m.energy])
        # the saved KL was estimated with 20,000 other samples: agree within 5 standard errors
        assert abs(fresh.kl - m.score.kl) < 5 * math.hypot(fresh.stderr, m.score.stderr) + 1e-3, key
    for U in ["U1", "U2", "U3", "U4"]:
        assert ckpt.model[f"planar-{U}-K32"].score.kl < ckpt.model[f"planar-{U}-K2"].score.kl


def test_save_models_and_load_model_round_trip(tmp_path):
    trained = lesson.train_model("radial", "U1", 2, 5, anneal_steps=3, batch=32, n_score=500)
    path = lesson.save_models(tmp_path / "mine.pt", {"radial-U1-K2": trained}, meta={"steps": 5})
    ckpt = load_model(path)
    assert ckpt.meta["steps"] == 5 and list(ckpt.model) == ["radial-U1-K2"]
    back = ckpt.model["radial-U1-K2"]
    assert (back.kind, back.energy, back.n_layers) == ("radial", "U1", 2)
    assert back.score == trained.score and back.curve == pytest.approx(trained.curve)
    for name, value in trained.flow.state_dict().items():
        torch.testing.assert_close(back.flow.state_dict()[name], value)
    x = torch.tensor([[0.5, -0.3], [1.0, 1.0]])
    with torch.no_grad():
        torch.testing.assert_close(back.flow.log_prob(x), trained.flow.log_prob(x))
    ckpt.kind = "glow"
    with pytest.raises(ValueError, match="'vi'"):
        lesson.from_checkpoint(ckpt, "cpu")


# --- the playground -----------------------------------------------------------------------


def test_playground_updates_and_shows_the_fold():
    from coursekit.widgets.planar_radial import PLANAR_START, build_stack, planar_radial_playground, signed_det

    pg = planar_radial_playground(grid_size=40)
    first = pg.image.value
    assert "invertible" in pg.status.value
    pg.update(u1=-2.0)  # layer 1 has w = (2, 0): raw wᵀu = -4 < -1
    assert pg.image.value != first
    assert "w<sup>T</sup>u = -4.00" in pg.status.value and "se pliega" not in pg.status.value
    pg.update(invertible=False)
    assert "se pliega" in pg.status.value
    # choosing another layer loads its values into the sliders
    pg.update(capa=2)
    assert pg.controls["u2"].value == pytest.approx(PLANAR_START[1]["u2"])
    pg.update(tipo="radial", invertible=True, capas=3)
    assert pg.controls["u1"].layout.display == "none" and pg.controls["beta"].layout.display is None
    # the signed det of the stack is autograd's det
    stack = build_stack("planar", PLANAR_START[:3], constrain=False, tol=1e-6)
    z = torch.randn(6, 2, dtype=torch.float32)
    _, det = signed_det(stack, z)
    oracle = torch.stack([torch.linalg.det(jacrev(lambda v: stack(v[None])[0][0])(zi)) for zi in z])
    np.testing.assert_allclose(det.numpy(), oracle.detach().numpy(), rtol=1e-4, atol=1e-5)


# --- the fold figure: the pushed-forward density and the fold lines ------------------------------------


def test_fold_lines_of_the_raw_layer_sit_where_f_prime_vanishes_and_an_invertible_layer_has_none():
    # x₁ = z₁ − 2 tanh(2 z₁): f' = 1 − 4 sech²(2 z₁) = 0 at z₁ = ± atanh(√3/2) / 2, x₁ = z₁ − √3 there
    raw = Planar(2, u=[-2.0, 0.0], w=[2.0, 0.0], b=0.0, constrain=False).double()
    z_star = math.atanh(math.sqrt(3) / 2) / 2
    in_z, in_x = lesson.fold_lines(raw, bounds=4.0, n=401)
    assert len(in_z) == len(in_x) == 2
    assert sorted(float(np.median(seg[:, 0])) for seg in in_z) == pytest.approx([-z_star, z_star], abs=1e-2)
    assert sorted(float(np.median(seg[:, 0])) for seg in in_x) == pytest.approx(
        [-(math.sqrt(3) - z_star), math.sqrt(3) - z_star], abs=1e-2)
    fixed = Planar(2, u=[-2.0, 0.0], w=[2.0, 0.0], b=0.0, constrain=True).double()
    assert lesson.fold_lines(fixed) == ([], [])


def test_pushforward_density_matches_the_formula_for_an_invertible_layer_and_keeps_the_mass_of_a_fold():
    g = torch.Generator().manual_seed(0)
    planar = Planar(2, u=[1.5, 0.5], w=[2.0, 0.5], b=0.0).double()
    image, inside = lesson.pushforward_density(planar, bounds=4.0, bins=40, n=400_000, generator=g)
    cell = (8.0 / 40) ** 2
    assert image.shape == (40, 40) and image.sum() * cell == pytest.approx(inside)
    centres = torch.linspace(-4 + 0.1, 4 - 0.1, 40, dtype=torch.float64)
    yy, xx = torch.meshgrid(centres, centres, indexing="ij")
    with torch.no_grad():
        formula = Flow(StandardNormal(2), planar).log_prob(torch.stack([xx.ravel(), yy.ravel()], 1)).exp()
    assert np.abs(image - formula.reshape(40, 40).numpy()).max() < 0.1 * formula.max().item()
    # the raw layer folds: the samples keep (almost) all their mass in the window, the formula does not
    raw = Planar(2, u=[-2.0, 0.0], w=[2.0, 0.0], b=0.0, constrain=False).double()
    _, inside_raw = lesson.pushforward_density(raw, bounds=4.0, bins=40, n=100_000, generator=g)
    assert inside_raw > 0.99
    with pytest.raises(ValueError, match="bins must be a positive int"):
        lesson.pushforward_density(raw, bins=0)
    with pytest.raises(ValueError, match="bounds must be positive"):
        lesson.pushforward_density(raw, bounds=-1.0)


def test_formula_mass_counts_only_the_branch_the_inverse_returns():
    g = torch.Generator().manual_seed(1)
    raw = Planar(2, u=[-2.0, 0.0], w=[2.0, 0.0], b=0.0, constrain=False).double()
    fixed = Planar(2, u=[-2.0, 0.0], w=[2.0, 0.0], b=0.0, constrain=True).double()
    grid = viz.make_grid(4.0, 400)
    with torch.no_grad():   # the raw layer's formula is smooth: a grid sum is accurate there
        grid_mass = float(Flow(StandardNormal(2), raw).log_prob(grid.points).exp().sum()) * grid.cell_area
    assert lesson.formula_mass(raw, n=100_000, generator=g) == pytest.approx(grid_mass, abs=0.005)
    # a bijection: every sample in the window is counted (a grid sum misses the nearly singular peak)
    _, inside = lesson.pushforward_density(fixed, n=100_000, generator=torch.Generator().manual_seed(2))
    assert lesson.formula_mass(fixed, n=100_000, generator=torch.Generator().manual_seed(2)) == pytest.approx(inside)
