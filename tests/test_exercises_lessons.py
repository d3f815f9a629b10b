"""The lessons' exercise checks (notebooks/soluciones/): a typical wrong answer gets a precise Spanish message."""

import pytest
import torch

from coursekit.exercises import ExerciseError, check

# --- lesson 07: the CFM loss and the Euler sampler (notebooks/soluciones/07_flow_matching.ipynb) ---------------


def _lesson_07_loss_cases():
    from coursekit.continuous import MLPField

    g = torch.Generator().manual_seed(11)
    torch.manual_seed(11)
    v_2d, v_3d = MLPField(2, 8, 1, "tanh").double(), MLPField(3, 8, 1, "tanh").double()
    f64 = dict(dtype=torch.float64)
    return [("8gaussians, 6 puntos", (v_2d, torch.randn(6, 2, generator=g, **f64),
                                      torch.randn(6, 2, generator=g, **f64), torch.rand(6, generator=g, **f64))),
            ("2 puntos en 2-D (B = D: un t mal difundido no da error)",
             (v_2d, torch.randn(2, 2, generator=g, **f64), torch.randn(2, 2, generator=g, **f64),
              torch.tensor([0.1, 0.8], **f64))),
            ("5 puntos en 3-D, t = 0, ¼, ½, ¾, 1", (v_3d, torch.randn(5, 3, generator=g, **f64),
                                                  torch.randn(5, 3, generator=g, **f64),
                                                  torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0], **f64)))]


def _lesson_07_loss(field, x1, x0=None, t=None, sign=1, reduce="sum", column=True, noise=torch.randn_like):
    x0 = noise(x1) if x0 is None else x0
    t = torch.rand(len(x1), dtype=x1.dtype) if t is None else t
    tt = t[:, None] if column else t
    err = (field(t, (1 - tt) * x0 + tt * x1) - sign * (x1 - x0)).pow(2)
    return (err.sum(1) if reduce == "sum" else err.mean(1)).mean()


def test_lesson_07_cfm_loss_typical_mistakes_get_precise_messages(monkeypatch):
    from coursekit.matching import LinearPath, cfm_loss

    monkeypatch.delenv("COURSEKIT_EXERCISES", raising=False)
    cases = _lesson_07_loss_cases()

    def reference(field, x1, x0, t):
        return cfm_loss(field, x1, LinearPath(), x0=x0, t=t)

    assert check("pérdida CFM", _lesson_07_loss, reference, cases).passed
    fb = check("pérdida CFM", lambda *a: _lesson_07_loss(*a, sign=-1), reference, cases, hint="u_t = x₁ − x₀")
    assert not fb.passed and "«8gaussians, 6 puntos»" in fb.message and "esperado" in fb.message
    assert "Pista: u_t = x₁ − x₀" in fb.message
    fb = check("pérdida CFM", lambda *a: _lesson_07_loss(*a, reduce="mean"), reference, cases)
    assert not fb.passed and "«8gaussians, 6 puntos»" in fb.message  # mean over coordinates: half the loss
    # t without [:, None]: an error when B ≠ D, a silent wrong answer when B = D
    fb = check("pérdida CFM", lambda *a: _lesson_07_loss(*a, column=False), reference, cases)
    assert "«8gaussians, 6 puntos»" in fb.message and "RuntimeError" in fb.message
    fb = check("pérdida CFM", lambda *a: _lesson_07_loss(*a, column=False), reference, cases[1:])
    assert "«2 puntos en 2-D (B = D: un t mal difundido no da error)»" in fb.message and "esperado" in fb.message
    # the draws: uniform noise instead of N(0, I) misses E‖(2 − t) x₀‖² = 2·7/3
    torch.manual_seed(0)
    draws = [("v(t, x) = x, x₁ = 0", ())]
    x1 = torch.zeros(50_000, 2, dtype=torch.float64)
    assert check("sorteos", lambda: _lesson_07_loss(lambda t, x: x, x1), lambda: 14 / 3, draws, rtol=0.02).passed
    fb = check("sorteos", lambda: _lesson_07_loss(lambda t, x: x, x1, noise=torch.rand_like), lambda: 14 / 3,
               draws, rtol=0.02)
    assert not fb.passed and "esperado 4.66667" in fb.message


def test_lesson_07_euler_evaluated_at_the_end_of_the_step_is_caught(monkeypatch):
    from coursekit.matching import euler_sample

    monkeypatch.delenv("COURSEKIT_EXERCISES", raising=False)

    def euler(field, x0, n_steps, late=False):
        h, x = 1.0 / n_steps, x0
        for k in range(n_steps):
            x = x + h * field(torch.full((len(x),), (k + late) * h, dtype=x.dtype), x)
        return x

    def spin(t, x):
        return (1 + 3 * torch.as_tensor(t, dtype=x.dtype).reshape(-1, 1)) * torch.stack([-x[:, 1], x[:, 0]], 1)

    c = torch.tensor([[2.0, -1.0]], dtype=torch.float64)

    def to_point(t, x):
        return (c - x) / (1 - torch.as_tensor(t, dtype=x.dtype).reshape(-1, 1))

    x0 = torch.randn(5, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    cases = [("1 paso de un giro que depende de t", (spin, x0, 1)),
             ("3 pasos hacia un único punto c, campo (c − x)/(1 − t)", (to_point, x0, 3))]
    assert check("Euler", euler, euler_sample, cases).passed
    fb = check("Euler", lambda f, x, n: euler(f, x, n, late=True), euler_sample, cases, hint="t_k = k·h")
    assert not fb.passed and "«1 paso de un giro que depende de t»" in fb.message and "Pista: t_k = k·h" in fb.message
    fb = check("Euler", lambda f, x, n: euler(f, x, n, late=True), euler_sample, cases[1:])
    assert "«3 pasos hacia un único punto c" in fb.message and "NaN o Inf" in fb.message  # 1/(1 − t) at t = 1


# --- lesson 09: the blend weights and the latent rectified-flow loss (notebooks/soluciones/09_...) --------------


_LESSON_09_SEAM_CASES = [("primera tesela: solo rampa de salida (tile = 16, ramp = 4)", (16, 4, True, False)),
                         ("tesela intermedia: las dos rampas (tile = 8, ramp = 3)", (8, 3, False, False)),
                         ("última tesela: solo rampa de entrada (tile = 8, ramp = 2)", (8, 2, False, True)),
                         ("sin solapamiento (ramp = 0): todo unos", (6, 0, False, False))]


def _lesson_09_seam(tile, ramp, first, last, up=lambda r: (torch.arange(r) + 1) / (r + 1), negative=False):
    w = torch.ones(tile)
    if not first:
        w[:ramp] = up(ramp)
    if not last:
        if negative:
            w[-ramp:] = up(ramp).flip(0)
        else:
            w[tile - ramp:] = up(ramp).flip(0)
    return w


def test_lesson_09_seam_weights_typical_mistakes_get_precise_messages(monkeypatch):
    from coursekit.video.tae import seam_weights

    monkeypatch.delenv("COURSEKIT_EXERCISES", raising=False)
    assert check("pesos", _lesson_09_seam, seam_weights, _LESSON_09_SEAM_CASES).passed
    fb = check("pesos", lambda *a: _lesson_09_seam(*a, up=lambda r: torch.arange(r) / r), seam_weights,
               _LESSON_09_SEAM_CASES, hint="w_i = (i + 1)/(r + 1)")
    assert not fb.passed and "«primera tesela: solo rampa de salida (tile = 16, ramp = 4)»" in fb.message
    assert "esperado [1, 1, 1, 1, …]" in fb.message and "Pista: w_i = (i + 1)/(r + 1)" in fb.message
    fb = check("pesos", lambda *a: _lesson_09_seam(*a, negative=True), seam_weights, _LESSON_09_SEAM_CASES)
    assert not fb.passed and "«sin solapamiento (ramp = 0): todo unos»" in fb.message  # w[-0:] is all of w


def test_lesson_09_rectified_flow_loss_typical_mistakes_get_precise_messages(monkeypatch):
    from coursekit.video.latent import rectified_flow_loss

    monkeypatch.delenv("COURSEKIT_EXERCISES", raising=False)
    g = torch.Generator().manual_seed(5)
    z1, z0 = torch.randn(8, 4, 2, 8, 8, generator=g), torch.randn(8, 4, 2, 8, 8, generator=g)
    t = torch.rand(8, generator=g)

    def field(tt, z):
        return torch.sin(z) * (1 + torch.as_tensor(tt).reshape(-1, 1, 1, 1, 1))

    cases = [("3 clips", (field, z1[:3], z0[:3], t[:3])), ("8 clips (B = 8 = anchura del latente)", (field, z1, z0, t))]

    def loss(v, z1_, z0_, t_, reshape=True, reduce="mean"):
        tt = t_.reshape(-1, 1, 1, 1, 1) if reshape else t_
        err = (v(t_, (1 - tt) * z0_ + tt * z1_) - (z1_ - z0_)).pow(2)
        return err.mean() if reduce == "mean" else err.flatten(1).sum(1).mean()

    def reference(v, z1_, z0_, t_):
        return rectified_flow_loss(v, z1_, z0=z0_, t=t_)

    assert check("rectified flow", loss, reference, cases).passed
    fb = check("rectified flow", lambda *a: loss(*a, reduce="sum"), reference, cases)
    assert not fb.passed and "«3 clips»" in fb.message and "esperado" in fb.message
    fb = check("rectified flow", lambda *a: loss(*a, reshape=False), reference, cases)
    assert "«3 clips»" in fb.message and "RuntimeError" in fb.message
    fb = check("rectified flow", lambda *a: loss(*a, reshape=False), reference, cases[1:])
    assert "«8 clips (B = 8 = anchura del latente)»" in fb.message and "esperado" in fb.message


# --- lesson 01: p_x from p_z in 1-D (notebooks/soluciones/01_cambio_de_variable.ipynb) ----------------------------


def _lesson_01_density(x, f_inv, at_x=False, absolute=True, forward_derivative=False, squeeze=True):
    x = x.detach().requires_grad_(True)
    z = f_inv(x)
    (dz_dx,) = torch.autograd.grad(z.sum(), x)
    slope = 1 / dz_dx if forward_derivative else dz_dx  # f'(z) instead of d f⁻¹/dx
    where = x if at_x else z
    p = torch.exp(-0.5 * where**2) / (2 * torch.pi) ** 0.5 * (slope.abs() if absolute else slope)
    return (p.squeeze(-1) if squeeze else p).detach()


def test_lesson_01_density_typical_mistakes_get_precise_messages(monkeypatch):
    from coursekit.lessons import change_of_variables as lesson

    monkeypatch.delenv("COURSEKIT_EXERCISES", raising=False)
    cases = lesson.density_cases()

    def run(**kw):
        return check("p_x a partir de p_z", lambda x, f_inv: _lesson_01_density(x, f_inv, **kw),
                     lesson.density_reference, cases, hint="evalúa p_z en f⁻¹(x)")

    fb = run()
    assert fb.passed and fb.message.startswith("✔ p_x a partir de p_z: correcto en los 4 casos")
    fb = run(absolute=False)  # only the decreasing map tells
    assert not fb.passed and "«decreciente x = −2z + 0.5 (df⁻¹/dx < 0)»" in fb.message
    assert "esperado [" in fb.message and "Pista: evalúa p_z en f⁻¹(x)" in fb.message
    assert "«TanhWarp(a=2, b=1.5), la de la sección 1»" in run(at_x=True).message
    assert "«TanhWarp(a=2, b=1.5), la de la sección 1»" in run(forward_derivative=True).message
    assert "forma esperada (201,), obtenida (201, 1)" in run(squeeze=False).message

    def todo(x, f_inv):
        raise NotImplementedError

    fb = check("p_x a partir de p_z", todo, lesson.density_reference, cases)
    assert fb.pending and "todavía no está escrito" in fb.message


# --- lesson 02: û, the planar layer and the reverse-KL estimate (notebooks/soluciones/02_flujos_...) --------------


def _lesson_02_u_hat(u, w, norm=True):
    wu = w @ u
    correction = (-1 + torch.nn.functional.softplus(wu) - wu) * w
    return u + (correction / (w @ w) if norm else correction)


def _lesson_02_planar(z, u, w, b, constrain=True, use_u_hat=True, u_hat_in_logdet=True, absolute=True,
                      h_prime=True, norm=True):
    uh = _lesson_02_u_hat(u, w, norm) if constrain and use_u_hat else u
    a = z @ w + b
    x = z + torch.tanh(a)[:, None] * uh
    u_det = (_lesson_02_u_hat(u, w, norm) if constrain and u_hat_in_logdet else u) if use_u_hat else u
    slope = 1 - torch.tanh(a) ** 2 if h_prime else torch.ones_like(a)
    det = 1 + slope * (w @ u_det)
    return x, torch.log(det.abs() if absolute else det)


def test_lesson_02_wrong_planar_logdet_names_the_failing_case_and_the_lesson_goes_on(monkeypatch):
    from coursekit.lessons import planar_radial as lesson

    monkeypatch.delenv("COURSEKIT_EXERCISES", raising=False)
    cases = lesson.planar_cases()

    def run(**kw):
        return check("capa planar", lambda *a: _lesson_02_planar(*a, **kw), lesson.planar_reference, cases,
                     outputs=("x", "logdet"), hint="usa û y el valor absoluto")

    assert run().passed
    # dropping the absolute value only matters where det J_f < 0: the raw layer that folds
    fb = run(absolute=False)
    assert not fb.passed and not fb.pending  # a verdict, not an exception: the notebook goes on
    assert "«u crudo (constrain=False), wᵀu = −4: det J_f < 0 cerca del hiperplano»" in fb.message
    assert "la salida «logdet»" in fb.message and "NaN" in fb.message and "Pista: usa û" in fb.message
    # u instead of û: the first case has û = u, so it fails on the one where wᵀu < −1
    fb = run(use_u_hat=False)
    assert "«b = −0.2, wᵀu = −4 < −1: aquí û ≠ u»: la salida «x»" in fb.message
    fb = run(u_hat_in_logdet=False)  # û in x but u in the log-det
    assert "«b = −0.2, wᵀu = −4 < −1: aquí û ≠ u»: la salida «logdet»" in fb.message
    fb = run(h_prime=False)  # log|1 + wᵀû|: ψ without h'
    assert "«b = 0.3, wᵀu = −log(e − 1): aquí û = u»: la salida «logdet»" in fb.message
    fb = run(norm=False)  # û without / ‖w‖²: only ‖w‖ ≠ 1 tells
    assert "«D = 5, ‖w‖ = 3, b = 0.1»: la salida «x»" in fb.message
    fb = check("û", lambda u, w: _lesson_02_u_hat(u, w, norm=False), lesson.u_hat_reference, lesson.u_hat_cases())
    assert "«D = 5, wᵀu = 2, ‖w‖ = 3»" in fb.message and check("û", _lesson_02_u_hat, lesson.u_hat_reference,
                                                               lesson.u_hat_cases()).passed
    # with COURSEKIT_EXERCISES=strict (CI over the solutions) the same mistake stops the run
    monkeypatch.setenv("COURSEKIT_EXERCISES", "strict")
    with pytest.raises(ExerciseError, match="u crudo"):
        run(absolute=False)


def test_lesson_02_reverse_kl_estimate_typical_mistakes_get_precise_messages(monkeypatch):
    import math

    from coursekit.lessons import planar_radial as lesson

    monkeypatch.delenv("COURSEKIT_EXERCISES", raising=False)
    cases = lesson.reverse_kl_cases()

    def estimate(z, x, logdet, U, beta=1.0, sign=-1, use_beta=True, constant=True):
        log_pz = -0.5 * (z**2).sum(1) - (0.5 * z.shape[1] * math.log(2 * math.pi) if constant else 0)
        return (log_pz + sign * logdet + (beta if use_beta else 1.0) * U(x)).mean()

    def run(**kw):
        return check("KL inversa", lesson.on_fixed_samples(lambda *a: estimate(*a, **kw)),
                     lesson.reverse_kl_reference, cases)

    state = torch.random.get_rng_state()
    fb = run()
    assert fb.passed and "error máximo 0.0e+00" in fb.message  # the very same samples
    assert torch.equal(torch.random.get_rng_state(), state)  # and the notebook's random state is untouched
    assert "«planar K = 8 sin entrenar, U2, λ = 1»" in run(sign=+1).message
    assert "«planar K = 8 sin entrenar, U2, λ = 1»" in run(constant=False).message
    assert "«el mismo flujo con λ = 0.3 (recocido)»" in run(use_beta=False).message


# --- lesson 05: the slide's listing, one Euler / RK4 step, the adjoint (notebooks/soluciones/05_*.ipynb) -------


def _lesson_05_rk4(f, t, h, dt, stages_at_t=False, weights=(1, 2, 2, 1)):
    c = (lambda x: 0.0) if stages_at_t else (lambda x: x)
    k1 = f(t, h)
    k2 = f(t + c(dt / 2), h + dt / 2 * k1)
    k3 = f(t + c(dt / 2), h + dt / 2 * k2)
    k4 = f(t + c(dt), h + dt * k3)
    w = weights
    return h + dt / sum(w) * (w[0] * k1 + w[1] * k2 + w[2] * k3 + w[3] * k4)


def test_lesson_05_solver_steps_typical_mistakes_get_precise_messages(monkeypatch):
    from coursekit.lessons import neural_ode as lesson

    monkeypatch.delenv("COURSEKIT_EXERCISES", raising=False)
    rk4, euler = lesson.one_step_reference("rk4"), lesson.one_step_reference("euler")
    cases = lesson.step_cases()
    # the classic RK4 agrees exactly with torchdiffeq's rk4 (Kutta's 3/8 rule) on the affine cases
    assert check("paso de RK4", _lesson_05_rk4, rk4, cases, rtol=1e-10, atol=1e-12).passed
    fb = check("paso de RK4", lambda *a: _lesson_05_rk4(*a, stages_at_t=True), rk4, cases, rtol=1e-10, atol=1e-12)
    assert not fb.passed and "«campo afín en t, t = 0.7, Δt = 0.3»" in fb.message  # autonomous case can't tell
    fb = check("paso de RK4", lambda *a: _lesson_05_rk4(*a, weights=(1, 1, 1, 1)), rk4, cases, rtol=1e-10,
               atol=1e-12, hint="pesos 1, 2, 2, 1")
    assert "«campo lineal autónomo, t = 0, Δt = 0.5»" in fb.message and "Pista: pesos 1, 2, 2, 1" in fb.message
    cases = lesson.step_cases(nonlinear=True)
    assert check("paso de Euler", lambda f, t, h, dt: h + dt * f(t, h), euler, cases, rtol=1e-10, atol=1e-12).passed
    fb = check("paso de Euler", lambda f, t, h, dt: h + dt * f(t + dt, h), euler, cases, rtol=1e-10, atol=1e-12)
    assert "«campo afín en t, t = 0.7, Δt = 0.3»" in fb.message and "esperado [" in fb.message


def _lesson_05_adjoint(field, hT, T, sign=-1, transpose=False, freeze_h=False):
    from torchdiffeq import odeint

    def dynamics(t, state):
        h, a = state
        at = hT if freeze_h else h
        with torch.enable_grad():
            x = at.detach().requires_grad_(True)
            f = field(t, x)
            if transpose:  # J a instead of aᵀ J (right only for symmetric Jacobians), by double backward
                u = torch.zeros_like(f, requires_grad=True)
                (uJ,) = torch.autograd.grad(f, x, grad_outputs=u, create_graph=True)
                (aJ,) = torch.autograd.grad(uJ, u, grad_outputs=a)
            else:
                (aJ,) = torch.autograd.grad(f, x, grad_outputs=a)
        return field(t, h).detach(), sign * aJ

    hs, as_ = odeint(dynamics, (hT, hT), torch.tensor([T, 0.0], dtype=hT.dtype), rtol=1e-9, atol=1e-9)
    return as_[-1]


def test_lesson_05_adjoint_typical_mistakes_get_precise_messages(monkeypatch):
    from coursekit.lessons import neural_ode as lesson

    monkeypatch.delenv("COURSEKIT_EXERCISES", raising=False)
    cases = lesson.adjoint_cases()

    def run(**kw):
        return check("método adjunto", lambda *a: _lesson_05_adjoint(*a, **kw), lesson.adjoint_reference, cases,
                     rtol=1e-5, atol=1e-7)

    assert run().passed
    assert "«campo lineal no normal, T = 1»" in run(sign=+1).message  # da/dt = +aᵀ ∂f/∂h
    assert "«campo lineal no normal, T = 1»" in run(transpose=True).message  # A a instead of aᵀ A
    fb = run(freeze_h=True)  # Jacobian at h(T) all the way: right for a linear field only
    assert not fb.passed and "«campo no lineal (MLP), T = 1»" in fb.message


def test_lesson_05_slide_listing_without_super_init_names_the_error(monkeypatch):
    from torch import nn
    from torchdiffeq import odeint

    from coursekit.continuous import NeuralODE, ODEFunc

    monkeypatch.delenv("COURSEKIT_EXERCISES", raising=False)
    weights = ODEFunc(dim=2, hidden=50, cubic=False).double()

    class NoSuper(nn.Module):
        def __init__(self):
            self.net = nn.Sequential(nn.Linear(2, 50), nn.Tanh(), nn.Linear(50, 2))

    def listing(h0, t, func_class=None, last_only=False):
        func = ODEFunc(2, 50, False).double() if func_class is None else func_class().double()
        with torch.no_grad():
            for p, q in zip(func.parameters(), weights.parameters()):
                p.copy_(q)
        out = odeint(func, h0, t)
        return out[-1] if last_only else out

    case = [("un estado, 5 instantes en [0, 1]", (torch.tensor([[1.0, -0.5]], dtype=torch.float64),
                                                  torch.linspace(0, 1, 5, dtype=torch.float64)))]
    reference = lambda h0, t: NeuralODE(weights, rtol=1e-7, atol=1e-9)(h0, t)  # noqa: E731
    assert check("listado", listing, reference, case, rtol=1e-6, atol=1e-8).passed
    fb = check("listado", lambda h0, t: listing(h0, t, func_class=NoSuper), reference, case)
    assert "«un estado, 5 instantes en [0, 1]»" in fb.message and "AttributeError" in fb.message
    fb = check("listado", lambda h0, t: listing(h0, t, last_only=True), reference, case)
    assert "forma esperada (5, 1, 2), obtenida (1, 2)" in fb.message


# --- lesson 06: the augmented dynamics and Hutchinson's estimator (notebooks/soluciones/06_*.ipynb) ------------


def _lesson_06_dynamics(field, t, x, sign=-1, whole_jacobian=False):
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        f = field(t, x)
        total = torch.zeros(x.shape[0], dtype=x.dtype)
        for i in range(x.shape[1]):
            row = torch.autograd.grad(f[:, i].sum(), x, retain_graph=True)[0]
            total = total + (row.sum(1) if whole_jacobian else row[:, i])
    return f.detach(), sign * total.detach()


def test_lesson_06_augmented_dynamics_typical_mistakes_get_precise_messages(monkeypatch):
    from coursekit.lessons import cnf as lesson

    monkeypatch.delenv("COURSEKIT_EXERCISES", raising=False)
    cases, outputs = lesson.dynamics_cases(), ("dx/dt", "d log p/dt")
    assert check("dinámica", _lesson_06_dynamics, lesson.dynamics_reference, cases, outputs=outputs).passed
    fb = check("dinámica", lambda *a: _lesson_06_dynamics(*a, sign=+1), lesson.dynamics_reference, cases,
               outputs=outputs, hint="d log p/dt = −tr")
    assert "«campo lineal 3-D, A no simétrica»: la salida «d log p/dt»: esperado [-0.6" in fb.message
    assert "Pista: d log p/dt = −tr" in fb.message
    fb = check("dinámica", lambda *a: _lesson_06_dynamics(*a, whole_jacobian=True), lesson.dynamics_reference,
               cases, outputs=outputs)
    assert "«campo lineal 3-D, A no simétrica»: la salida «d log p/dt»" in fb.message


def _lesson_06_hutchinson(field, t, x, eps, second_eps=True, per_sample=True):
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        (eps_j,) = torch.autograd.grad(field(t, x), x, grad_outputs=eps)
    est = (eps_j * eps if second_eps else eps_j).sum(dim=1)
    return est if per_sample else est.sum()


def test_lesson_06_hutchinson_typical_mistakes_get_precise_messages(monkeypatch):
    from coursekit.continuous import divergence_exact
    from coursekit.lessons import cnf as lesson

    monkeypatch.delenv("COURSEKIT_EXERCISES", raising=False)
    cases = lesson.hutchinson_cases()
    assert check("Hutchinson", _lesson_06_hutchinson, lesson.hutchinson_reference, cases).passed
    fb = check("Hutchinson", lambda *a: _lesson_06_hutchinson(*a, second_eps=False), lesson.hutchinson_reference,
               cases)
    assert not fb.passed and "«MLP 3-D, ε de Rademacher»" in fb.message  # εᵀJ·1 instead of εᵀJε
    fb = check("Hutchinson", lambda *a: _lesson_06_hutchinson(*a, per_sample=False), lesson.hutchinson_reference,
               cases)
    assert "forma esperada (6,), obtenida ()" in fb.message
    # unbiased, exactly: the mean over all 2^D sign vectors is the trace
    exact = lambda field, t, x: divergence_exact(field, t, x)  # noqa: E731
    assert check("insesgado", lesson.averaged_over_all_signs(_lesson_06_hutchinson), exact,
                 lesson.all_signs_cases(), rtol=1e-8, atol=1e-10).passed
    fb = check("insesgado", lesson.averaged_over_all_signs(lambda *a: _lesson_06_hutchinson(*a, second_eps=False)),
               exact, lesson.all_signs_cases())
    assert not fb.passed and "8 vectores ε" in fb.message


# --- lesson 03: the coupling layer, ActNorm's init and the 1×1 conv log-det (notebooks/soluciones/03_glow.ipynb) ---


def _lesson_03_coupling(z, mask, st, masked_logdet=True, inverse=False):
    s, t = st(z * mask)
    if inverse:
        out, ld = mask * z + (1 - mask) * ((z - t) * torch.exp(-s)), -((1 - mask) * s).flatten(1).sum(1)
    else:
        out, ld = mask * z + (1 - mask) * (z * torch.exp(s) + t), ((1 - mask) * s).flatten(1).sum(1)
    return out, (ld if masked_logdet else (-1 if inverse else 1) * s.flatten(1).sum(1))


def test_lesson_03_coupling_typical_mistakes_get_precise_messages(monkeypatch):
    from coursekit.lessons import glow as lesson

    monkeypatch.delenv("COURSEKIT_EXERCISES", raising=False)
    torch.set_num_threads(1)
    cases = lesson.coupling_cases()
    ref_f, ref_i = lesson.coupling_forward_reference, lesson.coupling_inverse_reference
    assert check("ida", _lesson_03_coupling, ref_f, cases, outputs=("x", "logdet")).passed
    assert check("vuelta", lambda *a: _lesson_03_coupling(*a, inverse=True), ref_i, cases,
                 outputs=("z", "logdet")).passed
    # the log-det summed over every entry of s, not only the transformed half
    fb = check("ida", lambda *a: _lesson_03_coupling(*a, masked_logdet=False), ref_f, cases, outputs=("x", "logdet"))
    assert not fb.passed and "«vector D = 6, máscara de mitades»" in fb.message and "«logdet»" in fb.message

    # the first half hard-coded as z₁: right for the half mask, wrong for the alternate one
    def first_half(z, mask, st):
        m = torch.zeros_like(mask)
        m[: mask.shape[0] // 2] = 1
        return _lesson_03_coupling(z, m, st)

    fb = check("ida", first_half, ref_f, cases, outputs=("x", "logdet"), hint="usa mask")
    assert not fb.passed and "máscara alterna con parity=True" in fb.message and "«x»" in fb.message
    assert "Pista: usa mask" in fb.message
    # the inverse with exp(+s)
    def inverse_plus_s(x, mask, st):
        s, t = st(x * mask)
        return mask * x + (1 - mask) * ((x - t) * torch.exp(s)), -((1 - mask) * s).flatten(1).sum(1)

    fb = check("vuelta", inverse_plus_s, ref_i, cases, outputs=("z", "logdet"))
    assert not fb.passed and "«vector D = 6, máscara de mitades»" in fb.message and "«z»" in fb.message


def test_lesson_03_actnorm_and_invconv_typical_mistakes_get_precise_messages(monkeypatch):
    from coursekit.lessons import glow as lesson

    monkeypatch.delenv("COURSEKIT_EXERCISES", raising=False)

    def actnorm_init(x, unbiased=False, dims=None):
        dims = dims or ([0] if x.dim() == 2 else [0, 2, 3])
        return torch.log(x.std(dims, unbiased=unbiased)), x.mean(dims)

    cases = lesson.actnorm_cases()
    assert check("init", actnorm_init, lesson.actnorm_init_reference, cases, outputs=("log_scale", "shift")).passed
    fb = check("init", lambda x: actnorm_init(x, unbiased=True), lesson.actnorm_init_reference, cases,
               outputs=("log_scale", "shift"))
    assert not fb.passed and "«lote de 4 imágenes 3×2×3" in fb.message and "«log_scale»" in fb.message
    fb = check("init", lambda x: actnorm_init(x, dims=[0]), lesson.actnorm_init_reference, cases,
               outputs=("log_scale", "shift"))  # statistics over the batch only, per pixel
    assert not fb.passed and "forma esperada (3,)" in fb.message

    conv = lesson.invconv_cases()

    def plain(w, h, wd):
        return h * wd * torch.linalg.slogdet(w).logabsdet

    def lu(w, h, wd):
        return h * wd * torch.log(torch.diagonal(torch.linalg.lu(w)[2]).abs()).sum()

    assert check("conv", plain, lesson.invconv_logdet_reference, conv).passed
    assert check("conv LU", lu, lesson.invconv_lu_logdet_reference, conv).passed
    fb = check("conv", lambda w, h, wd: h * h * torch.linalg.slogdet(w).logabsdet, lesson.invconv_logdet_reference,
               conv)  # H·H instead of H·W: the image is not square
    assert not fb.passed and "«C = 3 en una imagen 4×6»" in fb.message and "esperado 22.66" in fb.message
    fb = check("conv", lambda w, h, wd: h * wd * torch.log(torch.linalg.det(w)), lesson.invconv_logdet_reference,
               conv)  # no absolute value
    assert not fb.passed and "«C = 4, det W < 0, imagen 3×5»" in fb.message and "NaN" in fb.message
    fb = check("conv LU", lambda w, h, wd: h * wd * torch.log(torch.diagonal(torch.linalg.lu(w)[2])).sum(),
               lesson.invconv_lu_logdet_reference, conv)
    assert not fb.passed and "NaN" in fb.message
    with pytest.raises(ExerciseError):
        monkeypatch.setenv("COURSEKIT_EXERCISES", "strict")
        check("conv", lambda w, h, wd: h * torch.linalg.slogdet(w).logabsdet, lesson.invconv_logdet_reference, conv)


# --- lesson 04: the fixed-point inverse and the log-det series (notebooks/soluciones/04_iresnet.ipynb) ---------


def _lesson_04_fixed_point(x, g, tol=1e-10, max_iter=5000, sign=-1, fixed_steps=None):
    z = x.clone()
    with torch.no_grad():
        for _ in range(fixed_steps or max_iter):
            z_new = x + sign * g(z)
            if fixed_steps is None and (z_new - z).abs().max() < tol:
                return z_new
            z = z_new
    return z


def _lesson_04_series(g, z, v, n_terms, alternate=True, over_k=True, reuse_v=False):
    z = z.detach().requires_grad_()
    gz = g(z)
    w, total = v, torch.zeros(z.shape[0], dtype=z.dtype)
    for k in range(1, n_terms + 1):
        (w_new,) = torch.autograd.grad(gz, z, v if reuse_v else w, retain_graph=True)
        w = w_new
        total = total + ((-1) ** (k + 1) if alternate else 1) / (k if over_k else 1) * (w * v).flatten(1).sum(1)
    return total.detach()


def test_lesson_04_fixed_point_typical_mistakes_get_precise_messages(monkeypatch):
    from coursekit.lessons import iresnet as lesson

    monkeypatch.delenv("COURSEKIT_EXERCISES", raising=False)
    torch.set_num_threads(1)
    cases = lesson.fixed_point_cases()
    ref = lesson.fixed_point_reference
    assert check("punto fijo", _lesson_04_fixed_point, ref, cases, rtol=0, atol=1e-8).passed
    fb = check("punto fijo", lambda x, g: _lesson_04_fixed_point(x, g, fixed_steps=50), ref, cases, rtol=0, atol=1e-8)
    assert not fb.passed and "«peor caso g(z) = 0.97² z (cientos de iteraciones)»" in fb.message
    fb = check("punto fijo", lambda x, g: _lesson_04_fixed_point(x, g, sign=+1, max_iter=200), ref, cases,
               rtol=0, atol=1e-8, hint="z ← x − g(z)")
    assert not fb.passed and "«bloque aleatorio 2-D, λ = 0.9»" in fb.message and "Pista: z ← x − g(z)" in fb.message


def test_lesson_04_series_typical_mistakes_get_precise_messages(monkeypatch):
    from coursekit.lessons import iresnet as lesson

    monkeypatch.delenv("COURSEKIT_EXERCISES", raising=False)
    torch.set_num_threads(1)
    saved_dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        cases = lesson.series_cases()
        ref = lesson.series_reference
        assert check("serie", _lesson_04_series, ref, cases, rtol=1e-8, atol=1e-10).passed
        for wrong in (dict(alternate=False), dict(over_k=False), dict(reuse_v=True)):
            fb = check("serie", lambda *a, w=wrong: _lesson_04_series(*a, **w), ref, cases, rtol=1e-8, atol=1e-10)
            assert not fb.passed and "«bloque 2-D λ = 0.95, n = 10 términos»" in fb.message, wrong
        # the reference only accepts logdet_series' own probe
        g, z, v, n = cases[0][1]
        with pytest.raises(ValueError, match="rademacher_probe"):
            ref(g, z, -v, n)
        # and that probe is the one IResBlock.logdet_series draws
        block = g.__self__
        assert torch.equal(ref(g, z, v, n), block.logdet_series(z, n, 1, generator=torch.Generator().manual_seed(0)))
    finally:
        torch.set_default_dtype(saved_dtype)


# --- lesson 08 (TensorFlow): the student's train steps, tf.data pipeline and checkpoints ----------------------
# (notebooks/soluciones/08_autoencoders_vae_gan.ipynb; TensorFlow is imported inside the tests)


def _lesson_08_vae_step(sign=1.0, reduce="mean", prior=True):
    import tensorflow as tf

    import coursekit.tf as ckt

    def step(model, optimizer, x, eps):
        with tf.GradientTape() as tape:
            terms = ckt.elbo_terms(model, x, eps)
            elbo = terms["logpx_z"] + (terms["logpz"] if prior else 0.0) - terms["logqz_x"]
            loss = -sign * (tf.reduce_mean(elbo) if reduce == "mean" else tf.reduce_sum(elbo))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    return step


def test_lesson_08_vae_train_step_typical_mistakes_get_precise_messages(monkeypatch):
    import numpy as np

    import coursekit.tf as ckt
    from coursekit.lessons import autoencoders as lesson

    monkeypatch.delenv("COURSEKIT_EXERCISES", raising=False)
    rng = np.random.default_rng(6)
    cases = [("8 imágenes, ε dado", ((rng.random((8, 28, 28, 1)) > 0.6).astype("float32"),
                                     rng.standard_normal((8, 2)).astype("float32")))]
    outputs = ("pérdida", "gradiente aplicado (Δw / tasa)")

    def run(step):
        return lambda x, eps: lesson.vae_step_outcome(step, x, eps)

    assert check("paso del VAE", run(_lesson_08_vae_step()), run(ckt.vae_train_step), cases, outputs=outputs,
                 rtol=1e-4, atol=1e-4).passed
    fb = check("paso del VAE", run(_lesson_08_vae_step(reduce="sum")), run(ckt.vae_train_step), cases,
               outputs=outputs, rtol=1e-4, atol=1e-4, hint="media del lote")
    assert not fb.passed and "«8 imágenes, ε dado»: la salida «pérdida»" in fb.message and "Pista: media" in fb.message
    # maximizing −ELBO: the printed loss is right (it is computed before the sign) only if the sign is
    # applied to the gradient; here the loss itself has the wrong sign
    fb = check("paso del VAE", run(_lesson_08_vae_step(sign=-1.0)), run(ckt.vae_train_step), cases,
               outputs=outputs, rtol=1e-4, atol=1e-4)
    assert not fb.passed and "la salida «pérdida»" in fb.message
    fb = check("paso del VAE", run(_lesson_08_vae_step(prior=False)), run(ckt.vae_train_step), cases,
               outputs=outputs, rtol=1e-4, atol=1e-4)
    assert not fb.passed and "esperado" in fb.message  # forgetting log p(z)
    monkeypatch.setenv("COURSEKIT_EXERCISES", "strict")
    with pytest.raises(ExerciseError, match="pérdida"):
        check("paso del VAE", run(_lesson_08_vae_step(reduce="sum")), run(ckt.vae_train_step), cases,
              outputs=outputs, rtol=1e-4, atol=1e-4)


def test_lesson_08_gan_train_step_typical_mistakes_get_precise_messages(monkeypatch):
    import numpy as np
    import tensorflow as tf

    import coursekit.tf as ckt
    from coursekit.lessons import autoencoders as lesson

    monkeypatch.delenv("COURSEKIT_EXERCISES", raising=False)

    def gan_step(training_g=True, swap=False):
        def step(generator, discriminator, g_opt, d_opt, images, noise):
            with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
                fake = generator(noise, training=training_g)
                real_out, fake_out = discriminator(images, training=True), discriminator(fake, training=True)
                gen_loss = ckt.generator_loss(fake_out)
                disc_loss = (ckt.discriminator_loss(fake_out, real_out) if swap
                             else ckt.discriminator_loss(real_out, fake_out))
            g_opt.apply_gradients(zip(gen_tape.gradient(gen_loss, generator.trainable_variables),
                                      generator.trainable_variables))
            d_opt.apply_gradients(zip(disc_tape.gradient(disc_loss, discriminator.trainable_variables),
                                      discriminator.trainable_variables))
            return gen_loss, disc_loss
        return lambda images, noise: lesson.gan_step_outcome(step, images, noise)

    rng = np.random.default_rng(7)
    cases = [("4 imágenes reales, ruido dado", (rng.uniform(-1, 1, (4, 28, 28, 1)).astype("float32"),
                                                 rng.standard_normal((4, ckt.NOISE_DIM)).astype("float32")))]
    outputs = ("L_G", "L_D", "gradiente aplicado a G", "gradiente aplicado a D")
    reference = lambda images, noise: lesson.gan_step_outcome(ckt.gan_train_step, images, noise)  # noqa: E731
    assert check("paso de la GAN", gan_step(), reference, cases, outputs=outputs, rtol=1e-4, atol=1e-5).passed
    fb = check("paso de la GAN", gan_step(training_g=False), reference, cases, outputs=outputs, rtol=1e-4, atol=1e-5)
    assert not fb.passed and "«4 imágenes reales, ruido dado»: la salida «L_G»" in fb.message  # BatchNorm in inference
    fb = check("paso de la GAN", gan_step(swap=True), reference, cases, outputs=outputs, rtol=1e-4, atol=1e-5)
    assert not fb.passed and "la salida «L_D»" in fb.message


def test_lesson_08_pipeline_and_checkpoint_typical_mistakes_get_precise_messages(monkeypatch, tmp_path):
    import numpy as np
    import tensorflow as tf

    import coursekit.tf as ckt
    from coursekit.lessons import autoencoders as lesson

    monkeypatch.delenv("COURSEKIT_EXERCISES", raising=False)

    def batches_of(make):
        def run(*args):
            out = [b.numpy() for b in make(*args)]
            return np.array([len(b) for b in out]), np.concatenate(out)
        return run

    cases = [("10 ejemplos, búfer 1 (no baraja), lotes de 4: el último lote lleva 2", (np.arange(10), 1, 4, 0)),
             ("10 ejemplos, búfer = 10 (permutación uniforme), lotes de 4", (np.arange(10), 10, 4, 1))]
    outputs = ("tamaños de los lotes", "ejemplos en orden")
    ref = batches_of(ckt.make_dataset)
    dropping = batches_of(lambda im, buf, bs, seed: tf.data.Dataset.from_tensor_slices(im)
                          .shuffle(buf, seed=seed).batch(bs, drop_remainder=True))
    fb = check("tubería", dropping, ref, cases, outputs=outputs)
    assert not fb.passed and "«10 ejemplos, búfer 1 (no baraja), lotes de 4: el último lote lleva 2»" in fb.message
    assert "la salida «tamaños de los lotes»" in fb.message
    fb = check("tubería", batches_of(lambda im, buf, bs, seed: tf.data.Dataset.from_tensor_slices(im)
                                     .batch(bs).shuffle(buf, seed=seed)), ref, cases, outputs=outputs)
    assert not fb.passed and "«10 ejemplos, búfer = 10 (permutación uniforme), lotes de 4»" in fb.message
    assert "«tamaños de los lotes»: esperado [4, 4, 2], obtenido [" in fb.message  # whole batches shuffled

    def save_keep_all(directory, step, **objects):  # keeps all three
        ckpt = tf.train.Checkpoint(step=tf.Variable(step, dtype=tf.int64), **objects)
        return tf.train.CheckpointManager(ckpt, str(directory), max_to_keep=5).save(checkpoint_number=step)

    dirs = iter(tmp_path / f"run{k}" for k in range(10))
    ckpt_outputs = ("paso restaurado", "max |Δ pesos| frente al paso 3", "iteraciones de Adam",
                    "max |Δ estado del generador aleatorio|", "puntos de control en disco")
    ref_rt = lambda: lesson.checkpoint_roundtrip(lesson.save_checkpoint, lesson.restore_latest, next(dirs))  # noqa: E731
    case = [("guardar en los pasos 1, 2 y 3, seguir entrenando y restaurar en objetos nuevos", ())]
    keep_all = lambda: lesson.checkpoint_roundtrip(save_keep_all, lesson.restore_latest, next(dirs))  # noqa: E731
    fb = check("guardar y restaurar", keep_all, ref_rt, case, outputs=ckpt_outputs)
    assert not fb.passed and "la salida «puntos de control en disco»: esperado 2, obtenido 3" in fb.message

    def restore_model_only(directory, **objects):  # forgets the optimizer and the RNG
        return lesson.restore_latest(directory, model=objects["model"])

    fb = check("guardar y restaurar",
               lambda: lesson.checkpoint_roundtrip(lesson.save_checkpoint, restore_model_only, next(dirs)),
               ref_rt, case, outputs=ckpt_outputs)
    assert not fb.passed and "la salida «iteraciones de Adam»: esperado 3, obtenido 0" in fb.message
