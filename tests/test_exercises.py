"""coursekit.exercises: the feedback a student sees (Spanish), and strict mode for CI."""

import pytest
import torch

from coursekit.exercises import ExerciseError, check, check_value
from coursekit.flows import Planar


def _reference_planar(z, u, w, b):
    layer = Planar(2)
    with torch.no_grad():
        layer.u.copy_(u), layer.w.copy_(w), layer.b.copy_(b)
    return layer(z)


def _u_hat(u, w):
    wu = w @ u
    return u + (torch.nn.functional.softplus(wu) - 1 - wu) * w / (w @ w)


def _student_planar(z, u, w, b, use_u_hat=True, absolute=True):
    uh = _u_hat(u, w) if use_u_hat else u
    a = z @ w + b
    x = z + torch.tanh(a)[:, None] * uh
    det = 1 + (1 - torch.tanh(a) ** 2) * (w @ uh)
    return x, torch.log(det.abs() if absolute else det)


CASES = [
    ("u con wᵀu < −1 (û ≠ u)", (torch.randn(5, 2, generator=torch.Generator().manual_seed(0)),
                                 torch.tensor([-2.0, 0.5]), torch.tensor([1.0, 0.3]), torch.tensor(0.1))),
]


@pytest.fixture(autouse=True)
def _not_strict(monkeypatch):
    monkeypatch.delenv("COURSEKIT_EXERCISES", raising=False)


def test_a_correct_answer_passes():
    fb = check("capa planar", _student_planar, _reference_planar, CASES, outputs=("x", "logdet"))
    assert fb.passed and not fb.pending and fb.message.startswith("✔ capa planar: correcto en el único caso")


def test_using_u_instead_of_u_hat_names_the_case_and_the_output():
    fb = check("capa planar", lambda *a: _student_planar(*a, use_u_hat=False), _reference_planar, CASES,
               outputs=("x", "logdet"), hint="usa û, no u")
    assert not fb.passed and not fb.pending
    assert "«u con wᵀu < −1 (û ≠ u)»" in fb.message and "la salida «x»" in fb.message
    assert "esperado [" in fb.message and "obtenido [" in fb.message and "Pista: usa û, no u" in fb.message


def test_not_written_yet_is_pending_and_does_not_raise():
    def todo(*args):
        raise NotImplementedError

    fb = check("capa planar", todo, _reference_planar, CASES)
    assert fb.pending and not fb.passed and "todavía no está escrito" in fb.message


def test_errors_and_wrong_shapes_and_arity_are_explained():
    fb = check("f", lambda z: z.sum(), lambda z: z * 2, [("vector", (torch.ones(3),))])
    assert "forma esperada (3,), obtenida ()" in fb.message
    fb = check("f", lambda z: z.nope(), lambda z: z, [("vector", (torch.ones(3),))])
    assert "AttributeError" in fb.message
    fb = check("f", lambda z: z, lambda z: (z, z), [("v", (torch.ones(1),))], outputs=("x", "logdet"))
    assert "esperaba 2 resultados (x, logdet), obtuve 1" in fb.message
    fb = check("f", lambda z: z / 0 * 0, lambda z: z, [("v", (torch.ones(1),))])
    assert "NaN" in fb.message


def test_strict_mode_raises_for_pending_and_wrong(monkeypatch):
    monkeypatch.setenv("COURSEKIT_EXERCISES", "strict")
    with pytest.raises(ExerciseError, match="todavía no"):
        check("f", lambda z: (_ for _ in ()).throw(NotImplementedError), lambda z: z, [("v", (1.0,))])
    with pytest.raises(ExerciseError, match="esperado 2, obtenido 1"):
        check_value("log p", 1.0, 2.0)
    assert check_value("log p", 2.0 + 1e-9, 2.0).passed


def test_bad_use_of_check_is_a_clear_error():
    with pytest.raises(TypeError, match="callables"):
        check("f", 3.0, lambda z: z, [("v", (1.0,))])
    with pytest.raises(ValueError, match="at least one case"):
        check("f", lambda z: z, lambda z: z, [])
    assert check_value("v", ..., 1.0).pending
