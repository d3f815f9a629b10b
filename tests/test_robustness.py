"""Bad input gets a clear ``ValueError``/``TypeError``, never an obscure crash or a silent NaN (issue 14).

Two parts: hypothesis properties that throw bad shapes, dtypes, empty batches, NaN/Inf and
out-of-range values at the public constructors and methods of flows, continuous, matching
and data (a clear error, or a finite result of the right shape, and a rejected call changes
no state); then one regression test per problem of issue 14 (items 3–9).
"""

from __future__ import annotations

import contextlib
import gzip
import json
import math
import urllib.error
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import stalled_server
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coursekit.continuous import CNF, NeuralODE
from coursekit.continuous.fields import MLPField
from coursekit.continuous.neural_ode import euler_resnet
from coursekit.data import TOY_DATASETS, sample_toy
from coursekit.data import mnist as mnist_module
from coursekit.flows import (
    ActNorm,
    AffineCoupling,
    ElementwiseAffine,
    Flow,
    Glow,
    InvConv1x1,
    IResBlock,
    Linear,
    Permutation,
    Planar,
    Radial,
    Squeeze,
    StandardNormal,
    TanhWarp,
    glow_2d,
    set_validation,
)
from coursekit.matching import GaussianPath, LinearPath, cfm_loss, ot_coupling
from coursekit.matching.couplings import transport_cost
from coursekit.matching.sampling import euler_sample, ode_sample

pytestmark = pytest.mark.usefixtures("one_thread")
CLEAR = (ValueError, TypeError)
ROOT = Path(__file__).resolve().parents[1]
PROPERTY = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@contextlib.contextmanager
def default_dtype(dtype):
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def clear_error_or_result(fn):
    """``("error", exc)`` for a clear ValueError/TypeError with a message; ``("ok", result)`` otherwise.

    Anything else (RuntimeError, IndexError, AssertionError from a solver, ...) is an obscure
    crash and propagates, failing the test."""
    try:
        return "ok", fn()
    except CLEAR as exc:
        assert str(exc), f"{type(exc).__name__} without a message"
        return "error", exc


def all_finite(out) -> bool:
    items = out if isinstance(out, (tuple, list)) else (out,)
    return all(bool(torch.isfinite(t).all()) for t in items if isinstance(t, torch.Tensor))


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --- strategies ----------------------------------------------------------------------------

DTYPES = [torch.float32, torch.float64, torch.float16, torch.int64, torch.bool]


@st.composite
def batches(draw, event_shape: tuple[int, ...]):
    """A tensor (or a non-tensor) that is sometimes right: the event shape or a wrong one,
    batch 0..3, any of DTYPES, and sometimes a NaN/Inf entry."""
    kind = draw(st.sampled_from(["tensor"] * 8 + ["list", "numpy", "none"]))
    if kind == "none":
        return None
    if draw(st.booleans()):
        shape = (draw(st.integers(0, 3)), *event_shape)
    else:
        shape = tuple(draw(st.lists(st.integers(0, 4), min_size=0, max_size=4)))
    dtype = draw(st.sampled_from(DTYPES))
    seed = draw(st.integers(0, 2**16))
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    if x.numel() and draw(st.booleans()):
        x.view(-1)[draw(st.integers(0, x.numel() - 1))] = draw(st.sampled_from([math.nan, math.inf, -math.inf]))
    if dtype == torch.bool:
        x = x > 0
    elif not dtype.is_floating_point:
        x = torch.nan_to_num(x).round().to(dtype)
    else:
        x = x.to(dtype)
    return x.tolist() if kind == "list" else x.numpy() if kind == "numpy" else x


def is_valid_batch(x, event_shape, param_dtype) -> bool:
    return (isinstance(x, torch.Tensor) and x.is_floating_point()
            and (param_dtype is None or x.dtype == param_dtype)
            and tuple(x.shape[1:]) == tuple(event_shape) and x.dim() == len(event_shape) + 1
            and x.shape[0] >= 1 and bool(torch.isfinite(x).all()))


def _cnf():
    return CNF(MLPField(2, hidden=8, n_layers=1), method="rk4", options=dict(step_size=0.25))


# name -> (factory, event shape the public methods take) ; every factory is cheap and seeded
BIJECTIONS = {
    "ElementwiseAffine": (lambda: ElementwiseAffine(2, 2.0, 1.0), (2,)),
    "TanhWarp": (lambda: TanhWarp(2, a=1.0), (2,)),
    "Linear": (lambda: Linear([[2.0, 1.0], [0.0, 1.0]]), (2,)),
    "Planar": (lambda: Planar(2, generator=torch.Generator().manual_seed(0)), (2,)),
    "Radial": (lambda: Radial(2, generator=torch.Generator().manual_seed(0)), (2,)),
    "ActNorm": (lambda: ActNorm(2), (2,)),
    "ActNorm-image": (lambda: ActNorm((2, 4, 4)), (2, 4, 4)),
    "AffineCoupling": (lambda: AffineCoupling(2, hidden=8), (2,)),
    "AffineCoupling-image": (lambda: AffineCoupling((2, 4, 4), hidden=4), (2, 4, 4)),
    "InvConv1x1": (lambda: InvConv1x1(2, lu=True), (2,)),
    "Permutation": (lambda: Permutation(3), (3,)),
    "IResBlock": (lambda: IResBlock(2, hidden=8), (2,)),
    "glow_2d": (lambda: glow_2d(2, flow_steps=2, hidden=8), (2,)),
    "Glow": (lambda: Glow((1, 4, 4), levels=1, flow_steps=1, hidden=4), (1, 4, 4)),
    "CNF": (_cnf, (2,)),
}


def _param_dtype(module):
    return next((p.dtype for p in module.parameters() if p.is_floating_point()), None)


# --- properties: bijections ----------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(BIJECTIONS))
@PROPERTY
@given(data=st.data())
def test_bijection_methods_give_a_clear_error_or_a_finite_result(name, data):
    make, event_shape = BIJECTIONS[name]
    torch.manual_seed(0)
    layer = make()
    for method_name in ("forward", "inverse"):
        x = data.draw(batches(event_shape), label=method_name)
        before = snapshot(layer)
        status, out = clear_error_or_result(lambda: getattr(layer, method_name)(x))  # noqa: B023
        valid = is_valid_batch(x, event_shape, _param_dtype(layer))
        if valid:
            assert status == "ok", f"{name}.{method_name} rejected a valid batch: {out}"
            y, logdet = out
            assert y.shape == x.shape and logdet.shape == (x.shape[0],)
            assert all_finite(out), f"{name}.{method_name} returned NaN/Inf for a finite batch"
        else:
            assert status == "error", f"{name}.{method_name} accepted {type(x).__name__} {getattr(x, 'shape', '')}"
            assert same_state(before, snapshot(layer)), f"{name}.{method_name} changed state on a rejected call"


@PROPERTY
@given(x=batches((1, 4, 4)))
def test_squeeze_clear_error_or_a_permutation(x):
    sq = Squeeze((1, 4, 4))
    status, out = clear_error_or_result(lambda: sq.inverse(x))
    if is_valid_batch(x, (1, 4, 4), None):
        assert status == "ok" and out[0].shape == (x.shape[0], 4, 2, 2)
        torch.testing.assert_close(sq(out[0])[0], x)
    else:
        assert status == "error"


@PROPERTY
@given(n=st.one_of(st.integers(-3, 5), st.floats(allow_nan=True), st.booleans(), st.none()),
       events=st.lists(st.one_of(st.integers(-2, 4), st.booleans(), st.floats(-1, 3)), min_size=0, max_size=3))
def test_flow_sampling_and_base_reject_bad_sizes(n, events):
    status, base = clear_error_or_result(lambda: StandardNormal(*events))
    good_events = bool(events) and all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in events)
    assert (status == "ok") == good_events
    if status == "ok":
        status, out = clear_error_or_result(lambda: base.sample(n))
        good_n = isinstance(n, int) and not isinstance(n, bool) and n >= 1
        assert (status == "ok") == good_n
        if good_n:
            assert out.shape == (n, *events) and all_finite(out)


# --- properties: constructors --------------------------------------------------------------

# half of the draws are special values, so a NaN parameter on a valid dim comes up often
SPECIAL = st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -1.0, 1e-3])
NUMBERS = st.one_of(SPECIAL, SPECIAL, st.floats(-50, 50),
                    st.one_of(st.integers(-3, 3), st.booleans(), st.none(), st.just("a")),
                    st.lists(st.one_of(st.floats(-5, 5), SPECIAL), min_size=1, max_size=3))
DIMS = st.one_of(st.integers(1, 3), st.integers(1, 3),
                 st.one_of(st.integers(-2, 0), st.booleans(), st.floats(0, 3), st.none(), st.just((2,)), st.just("2")))

CONSTRUCTORS = {
    "ElementwiseAffine": lambda d, a, b: ElementwiseAffine(d, scale=a, shift=b),
    "TanhWarp": lambda d, a, b: TanhWarp(d, a=a, b=b),
    "Planar-u-b": lambda d, a, b: Planar(d, u=a, b=b, generator=torch.Generator().manual_seed(0)),
    "Planar-w-tol": lambda d, a, b: Planar(d, w=a, tol=b, generator=torch.Generator().manual_seed(0)),
    "Radial": lambda d, a, b: Radial(d, alpha=a, beta=b, generator=torch.Generator().manual_seed(0)),
    "Radial-raw": lambda d, a, b: Radial(d, z0=a, beta=b, constrain=False, generator=torch.Generator().manual_seed(0)),
    "ActNorm": lambda d, a, b: ActNorm(d, eps=a),
    "IResBlock": lambda d, a, b: IResBlock(d, hidden=4, lam=a, tol=b if b is not None else 1e-8),
    "IResBlock-loose": lambda d, a, b: IResBlock(d, hidden=4, lam=a, strict=False, max_iter=1000),
}


@pytest.mark.parametrize("name", sorted(CONSTRUCTORS))
@settings(PROPERTY, max_examples=60)
@given(dim=DIMS, a=NUMBERS, b=NUMBERS)
def test_constructors_reject_bad_parameters_or_build_a_working_layer(name, dim, a, b):
    with default_dtype(torch.float64), warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # an unconverged inverse must be flagged, not hidden
        status, layer = clear_error_or_result(lambda: CONSTRUCTORS[name](dim, a, b))
        if status == "error":
            return
        d = layer.event_shape[0]
        z = torch.randn(5, d, generator=torch.Generator().manual_seed(1))
        try:
            x, logdet = layer(z)
            z_back, logdet_inv = layer.inverse(x)
        except RuntimeWarning as w:  # allowed: a loose block (λ ≥ 1) may not invert, but it must say so
            assert name == "IResBlock-loose" and "did not converge" in str(w)
            return
        assert all_finite((x, logdet)), f"{name}({dim!r}, {a!r}, {b!r}) gives NaN/Inf on a normal batch"
        tol = 1e-5 if name != "Planar-w-tol" else max(1e-5, 10 * float(b))  # Planar inverts to its own tol
        torch.testing.assert_close(z_back, z, atol=tol, rtol=1e-5)
        torch.testing.assert_close(logdet_inv, -logdet, atol=1e-5, rtol=1e-5)


# --- properties: continuous and matching ---------------------------------------------------

TIMES = st.one_of(st.floats(-0.5, 1.5), st.sampled_from([0.0, 1.0, math.nan, math.inf]))


@PROPERTY
@given(x0=batches((2,)), t_end=TIMES)
def test_neural_ode_clear_error_or_finite_trajectory(x0, t_end):
    torch.manual_seed(0)
    ode = NeuralODE(MLPField(2, hidden=8, n_layers=1), method="rk4", options=dict(step_size=0.25))
    status, out = clear_error_or_result(lambda: ode(x0, [0.0, t_end]))
    valid = is_valid_batch(x0, (2,), torch.float32) and math.isfinite(t_end) and t_end != 0.0
    assert (status == "ok") == valid, out
    if valid:
        assert out.shape == (2, *x0.shape) and all_finite(out)


@PROPERTY
@given(h0=batches((2,)), n_steps=st.one_of(st.integers(-1, 4), st.floats(0, 3), st.none()))
def test_euler_resnet_clear_error_or_finite(h0, n_steps):
    torch.manual_seed(0)
    field = MLPField(2, hidden=8, n_layers=1)
    status, out = clear_error_or_result(lambda: euler_resnet(field, h0, 0.0, 1.0, n_steps))
    valid = (is_valid_batch(h0, (2,), torch.float32) and isinstance(n_steps, int) and n_steps >= 1)
    assert (status == "ok") == valid, out
    if valid:
        assert all_finite(out)


@PROPERTY
@given(x1=batches((2,)), t=st.one_of(st.none(), TIMES), gaussian=st.booleans())
def test_cfm_loss_clear_error_or_finite_loss(x1, t, gaussian):
    path = GaussianPath() if gaussian else LinearPath()
    tt = None if t is None or not isinstance(x1, torch.Tensor) or x1.dim() < 1 else torch.full((x1.shape[0],), t)
    status, loss = clear_error_or_result(lambda: cfm_loss(lambda s, x: 0.5 * x, x1, path, t=tt))
    valid = (isinstance(x1, torch.Tensor) and x1.is_floating_point() and x1.dim() >= 2 and x1.shape[0] >= 1
             and bool(torch.isfinite(x1).all()) and (t is None or 0.0 <= t <= 1.0))
    assert (status == "ok") == valid, loss
    if valid:
        assert loss.dim() == 0 and bool(torch.isfinite(loss))


@PROPERTY
@given(x0=batches((3,)), x1=batches((3,)))
def test_couplings_clear_error_or_a_permutation(x0, x1):
    status, out = clear_error_or_result(lambda: ot_coupling(x0, x1))
    valid = (all(is_valid_batch(v, (3,), None) for v in (x0, x1)) and x0.shape == x1.shape and x0.dtype == x1.dtype)
    assert (status == "ok") == valid, out
    if valid:
        a, b = out
        assert b is x1 and sorted(map(tuple, a.tolist())) == sorted(map(tuple, x0.tolist()))
        assert transport_cost(a, b) <= transport_cost(x0, x1) + 1e-4


@PROPERTY
@given(x0=batches((2,)), n_steps=st.one_of(st.integers(-1, 3), st.none()), t1=TIMES)
def test_samplers_clear_error_or_finite(x0, n_steps, t1):
    status, out = clear_error_or_result(lambda: euler_sample(lambda t, x: -x, x0, n_steps, t1=t1))
    valid = (isinstance(x0, torch.Tensor) and x0.is_floating_point() and x0.dim() >= 1 and x0.shape[0] >= 1
             and bool(torch.isfinite(x0).all()) and isinstance(n_steps, int) and n_steps >= 1 and math.isfinite(t1))
    assert (status == "ok") == valid, out
    if valid:
        assert out.shape == x0.shape and all_finite(out)


# --- properties: data ----------------------------------------------------------------------

@PROPERTY
@given(name=st.one_of(st.sampled_from(sorted(TOY_DATASETS)), st.just("nope")),
       n=st.one_of(st.integers(-2, 40), st.floats(0, 5), st.booleans(), st.just(np.int64(7))),
       dtype=st.sampled_from([torch.float32, torch.float64, torch.int64, "float32"]))
def test_sample_toy_clear_error_or_points(name, n, dtype):
    status, out = clear_error_or_result(lambda: sample_toy(name, n, torch.Generator().manual_seed(0), dtype=dtype))
    valid = (name in TOY_DATASETS and isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 1
             and dtype in (torch.float32, torch.float64))
    assert (status == "ok") == valid, out
    if valid:
        assert out.shape == (n, 2) and out.dtype == dtype and all_finite(out)


def _idx(shape: tuple[int, ...], fill: int = 1) -> bytes:
    header = bytes([0, 0, 0x08, len(shape)]) + b"".join(d.to_bytes(4, "big") for d in shape)
    return header + bytes([fill]) * int(np.prod(shape))


@PROPERTY
@given(payload=st.one_of(st.binary(max_size=64),
                         st.builds(lambda b, cut: gzip.compress(b)[:cut], st.binary(max_size=64), st.integers(0, 40)),
                         st.builds(gzip.compress, st.binary(max_size=64)),
                         st.builds(lambda s: gzip.compress(_idx(s)),
                                   st.lists(st.integers(0, 4), min_size=1, max_size=3).map(tuple))),
       name=st.sampled_from(["t10k-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz", "other.gz"]))
def test_read_idx_names_the_file_for_any_broken_content(tmp_path_factory, payload, name):
    path = tmp_path_factory.mktemp("idx") / name
    path.write_bytes(payload)
    status, out = clear_error_or_result(lambda: mnist_module._read_idx(path))
    if status == "error":
        assert isinstance(out, ValueError) and str(path) in str(out)
    else:  # only a well-formed IDX file under a name that carries no expectation
        assert name == "other.gz" and out.dtype == np.uint8


# --- regression tests, one per problem of issue 14 -----------------------------------------

# 3. an empty batch poisons ActNorm for good; empty batches crash coupling, Glow, IResBlock

def test_empty_batch_leaves_actnorm_uninitialized_and_usable():
    layer = ActNorm(2)
    with pytest.raises(ValueError, match="empty batch"):
        layer.inverse(torch.empty(0, 2))
    assert not layer.initialized
    z, _ = layer.inverse(torch.randn(8, 2) * 3 + 1)
    assert torch.isfinite(z).all() and abs(float(z.mean())) < 1e-5


def test_actnorm_never_initializes_from_zero_samples_even_without_validation():
    layer = ActNorm(2)
    set_validation(False)
    try:
        with pytest.raises(ValueError, match="at least one sample"):
            layer.inverse(torch.empty(0, 2))
    finally:
        set_validation(True)
    assert not layer.initialized and torch.isfinite(layer.inverse(torch.randn(4, 2))[0]).all()


def test_empty_log_prob_on_glow_2d_then_clean_inputs_work():
    torch.manual_seed(0)
    flow = Flow(StandardNormal(2), glow_2d(2, flow_steps=2, hidden=8))
    with pytest.raises(ValueError, match="empty batch"):
        flow.log_prob(torch.empty(0, 2))
    assert torch.isfinite(flow.log_prob(torch.randn(16, 2))).all()


@pytest.mark.parametrize("make, shape", [
    (lambda: AffineCoupling(2, hidden=8), (0, 2)),
    (lambda: AffineCoupling((2, 4, 4), hidden=4), (0, 2, 4, 4)),
    (lambda: Glow((1, 8, 8), levels=2, flow_steps=1, hidden=4), (0, 1, 8, 8)),
    (lambda: IResBlock(2, hidden=8), (0, 2)),
])
def test_empty_batches_are_rejected_clearly(make, shape):
    layer = make()
    methods = [layer.forward, layer.inverse] + ([layer.solve] if isinstance(layer, IResBlock) else [])
    for method in methods:
        with pytest.raises(ValueError, match="empty batch"):
            method(torch.empty(shape))


# 4. float dtype mismatch, NaN parameters, non-converged inverses

@pytest.mark.parametrize("make", [lambda: Planar(2), lambda: Radial(2), lambda: ElementwiseAffine(2),
                                  lambda: IResBlock(2, hidden=4), lambda: ActNorm(2)])
def test_float64_batch_into_float32_layer_names_both_dtypes(make):
    layer = make()
    with pytest.raises(ValueError, match=r"float64.*float32"):
        layer(torch.randn(4, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"float64.*float32"):
        layer.inverse(torch.randn(4, 2, dtype=torch.float64))
    assert layer.double()(torch.randn(4, 2, dtype=torch.float64))[0].dtype == torch.float64  # the rule's fix


@pytest.mark.parametrize("make, name", [
    (lambda: Planar(2, u=[math.nan, 0.0]), "u"),
    (lambda: Planar(2, w=[1.0, math.inf]), "w"),
    (lambda: Planar(2, b=math.nan), "b"),
    (lambda: Planar(2, tol=math.nan), "tol"),
    (lambda: ElementwiseAffine(2, scale=math.nan), "scale"),
    (lambda: ElementwiseAffine(2, shift=math.inf), "shift"),
    (lambda: TanhWarp(2, b=math.nan), "b"),
    (lambda: TanhWarp(2, a=math.nan), "a"),
    (lambda: Radial(2, beta=math.nan, constrain=False), "beta"),
    (lambda: Radial(2, beta=math.inf), "beta"),
    (lambda: Radial(2, z0=[math.nan, 0.0]), "z0"),
    (lambda: Linear([[math.nan, 0.0], [0.0, 1.0]]), "matrix"),
    (lambda: IResBlock(2, lam=math.inf, strict=False), "lam"),
    (lambda: ActNorm(2, eps=math.nan), "eps"),
])
def test_nan_parameters_are_rejected_naming_them(make, name):
    with pytest.raises(ValueError, match=rf"^{name} "):
        make()


@pytest.mark.parametrize("make", [lambda d: ElementwiseAffine(d), lambda d: Planar(d), lambda d: Radial(d),
                                  lambda d: TanhWarp(d), lambda d: ActNorm(d), lambda d: IResBlock(d),
                                  lambda d: AffineCoupling(d), lambda d: CNF(MLPField(2), dim=d)])
@pytest.mark.parametrize("dim", [0, -1])
def test_zero_and_negative_dims_are_rejected(make, dim):
    with pytest.raises(ValueError, match="dim"):
        make(dim)


def test_an_empty_matrix_is_not_a_linear_layer():
    with pytest.raises(ValueError, match=r"matrix must be square \(D, D\) with D >= 1"):
        Linear(torch.zeros(0, 0))


def test_unconverged_iresnet_inverse_warns():
    torch.manual_seed(0)
    block = IResBlock(2, hidden=16, lam=3.0, strict=False, max_iter=5)
    with pytest.warns(RuntimeWarning, match="did not converge"):
        block.inverse(torch.randn(8, 2) * 3)
    assert not block.last_inverse_info.converged
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a converged inverse stays silent
        IResBlock(2, hidden=16).inverse(torch.randn(8, 2))


# 5. continuous and matching inputs

class _Linear(torch.nn.Module):
    dim = 2

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(2, 2)

    def forward(self, t, x):
        return self.lin(x)


@pytest.mark.parametrize("x0, match", [(torch.full((3, 2), math.nan), "NaN"), (torch.empty(0, 2), "empty batch"),
                                       (torch.randn(3, 2, dtype=torch.float64), "float64.*float32"),
                                       (torch.ones(3, 2, dtype=torch.long), "floating")])
def test_neural_ode_and_cnf_reject_bad_states_before_the_solver(x0, match):
    with pytest.raises(CLEAR, match=match):
        NeuralODE(_Linear())(x0, [0.0, 1.0])
    with pytest.raises(CLEAR, match=match):
        CNF(_Linear()).inverse(x0)


def test_cfm_loss_rejects_int_nan_and_out_of_range_times():
    field = lambda t, x: x  # noqa: E731
    with pytest.raises(TypeError, match="x1 must be a floating"):
        cfm_loss(field, torch.ones(4, 2, dtype=torch.long), LinearPath())
    with pytest.raises(ValueError, match="x1 contains NaN"):
        cfm_loss(field, torch.full((4, 2), math.nan), LinearPath())
    for t in (2.0, -0.1, math.nan):
        with pytest.raises(ValueError, match=r"t must lie in \[0, 1\]"):
            cfm_loss(field, torch.ones(4, 2), LinearPath(), t=torch.full((4,), t))
    assert torch.isfinite(cfm_loss(field, torch.ones(4, 2), LinearPath(), t=torch.linspace(0, 1, 4)))


def test_ot_coupling_rejects_one_dimensional_and_nan_input():
    with pytest.raises(ValueError, match=r"x0 must have shape \(batch, \.\.\.\).*\(4,\)"):
        ot_coupling(torch.randn(4), torch.randn(4))
    with pytest.raises(ValueError, match="x0 contains NaN"):
        ot_coupling(torch.full((4, 2), math.nan), torch.randn(4, 2))
    with pytest.raises(ValueError, match="same dtype"):
        ot_coupling(torch.randn(4, 2), torch.randn(4, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="t0 and t1 must differ"):
        ode_sample(lambda t, x: x, torch.randn(3, 2), t0=0.5, t1=0.5)


# 7. data: corrupt files, files under the wrong name, downloads that stall or fail

@pytest.fixture
def mnist_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSEKIT_DATA", str(tmp_path))
    monkeypatch.setattr(mnist_module, "search_dirs", lambda: [tmp_path])
    return tmp_path


def test_truncated_or_corrupt_gzip_names_the_file(mnist_dir):
    labels = gzip.compress(_idx((10000,), fill=3))
    (mnist_dir / "t10k-labels-idx1-ubyte.gz").write_bytes(labels[: len(labels) // 2])
    (mnist_dir / "t10k-images-idx3-ubyte.gz").write_bytes(b"this is not gzip")
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        with pytest.raises(ValueError, match="not a complete gzip file") as info:
            mnist_module._read_idx(mnist_dir / name)
        assert str(mnist_dir / name) in str(info.value) and "Delete" in str(info.value)
    with pytest.raises(ValueError, match=str(mnist_dir / "t10k-images-idx3-ubyte.gz")):
        mnist_module.load_mnist("test", allow_download=False)


def test_labels_file_under_an_images_name_is_refused(mnist_dir):
    (mnist_dir / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx((10000,), fill=3)))
    (mnist_dir / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx((10000,), fill=3)))
    with pytest.raises(ValueError, match=r"shape \(10000,\).*must hold \(60000, 28, 28\)"):
        mnist_module.load_mnist("train", allow_download=False)
    (mnist_dir / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx((60000, 28, 28), fill=0)))
    (mnist_dir / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx((60000,), fill=200)))
    with pytest.raises(ValueError, match="labels up to 200"):
        mnist_module.load_mnist("train", allow_download=False)


def test_failed_checkpoint_download_names_the_url_and_what_to_do(monkeypatch, tmp_path):
    from coursekit.training import checkpoints

    name = next(iter(checkpoints.manifest()))

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(checkpoints.urllib.request, "urlopen", refuse)
    monkeypatch.setattr(checkpoints, "CACHE_DIR", tmp_path)
    with pytest.raises(OSError) as info:
        checkpoints._download(name)
    msg = str(info.value)
    assert checkpoints.url(name) in msg and "try again" in msg and str(tmp_path) in msg


def test_stalled_checkpoint_download_times_out_with_a_message(monkeypatch, tmp_path):
    from coursekit.training import checkpoints

    name = next(iter(checkpoints.manifest()))
    with stalled_server() as base:
        monkeypatch.setattr(checkpoints, "url", lambda n: base + n)
        monkeypatch.setattr(checkpoints, "DOWNLOAD_TIMEOUT", 0.5)
        monkeypatch.setattr(checkpoints, "CACHE_DIR", tmp_path)
        with pytest.raises(OSError, match="timed out"):
            checkpoints._download(name)


# 8. reproducibility of the toy data

@pytest.mark.parametrize("name", sorted(TOY_DATASETS))
def test_sample_toy_gives_the_same_points_whatever_the_default_dtype(name):
    a = sample_toy(name, 64, torch.Generator().manual_seed(5))
    with default_dtype(torch.float64):
        b = sample_toy(name, 64, torch.Generator().manual_seed(5))
        c = sample_toy(name, 64, torch.Generator().manual_seed(5), dtype=torch.float64)
        d = sample_toy(name, 64, torch.Generator().manual_seed(5), dtype=torch.float64)
    assert a.dtype == b.dtype == torch.float32 and torch.equal(a, b)
    assert c.dtype == torch.float64 and torch.equal(c, d) and torch.isfinite(c).all()  # asked for: its own draws


# 9. notebook 08 in QUICK mode must not delete a fixed shared path

def test_notebooks_do_not_delete_fixed_temporary_paths():
    offenders = []
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in json.loads(nb.read_text())["cells"]:
            src = "".join(cell["source"])
            if cell["cell_type"] == "code" and "gettempdir()" in src and "rmtree" in src:
                offenders.append(nb.name)
    assert not offenders, (f"{offenders}: a fixed path under gettempdir() is deleted; two runs at once collide. "
                           "Use tempfile.mkdtemp() (a fresh folder per run) instead")

