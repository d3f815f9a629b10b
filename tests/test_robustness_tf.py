"""Lesson 08 (TensorFlow): bad input gets a clear error, ``TrainingRun`` survives broken run folders (issue 14).

Properties: pixel arrays of any dtype, shape and range into the VAE loss, ``evaluate_elbo``
and the GAN step give a clear ``TypeError``/``ValueError`` or a finite result. Regression
tests: 0–255 pixels into the VAE loss, uint8 into the GAN, ``evaluate_elbo`` on nothing,
a truncated latest checkpoint, a missing ``checkpoint`` index, NaN weights after a failed
step, and a stalled download in ``load_mnist_tf``.
"""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from conftest import stalled_server  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from test_tf_models import _tiny  # noqa: E402

import coursekit.tf as ckt  # noqa: E402
from coursekit.core.history import NonFiniteError  # noqa: E402
from coursekit.data import mnist as mnist_module  # noqa: E402
from coursekit.tf import data as tf_data  # noqa: E402
from coursekit.training.tf_run import TrainingRun  # noqa: E402

CLEAR = (ValueError, TypeError)
PROPERTY = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def vae():
    keras.utils.set_random_seed(0)
    return ckt.CVAE(latent_dim=2)


@pytest.fixture(scope="module")
def gan():
    keras.utils.set_random_seed(0)
    g, d = ckt.make_generator_model(), ckt.make_discriminator_model()
    go, do = keras.optimizers.Adam(1e-4), keras.optimizers.Adam(1e-4)
    go.build(g.trainable_variables)
    do.build(d.trainable_variables)
    return g, d, ckt.make_gan_train_step(g, d, go, do, tf.random.Generator.from_seed(0))


@st.composite
def pixel_arrays(draw, low: float, high: float):
    """Arrays that are sometimes right: shape (batch, 28, 28, 1) or not, batch 0..2, any dtype,
    values inside or outside [low, high], sometimes a NaN."""
    batch = draw(st.integers(0, 2))
    shape = draw(st.sampled_from([(batch, 28, 28, 1), (batch, 28, 28), (28, 28, 1), (batch, 14, 14, 1)]))
    dtype = draw(st.sampled_from(["float32", "float64", "uint8", "int64"]))
    scale = draw(st.sampled_from([(low, high), (0.0, 255.0), (low - 0.5, high)]))
    x = np.random.default_rng(draw(st.integers(0, 99))).uniform(*scale, size=shape)
    if x.size and dtype.startswith("float") and draw(st.booleans()):
        x.flat[0] = np.nan
    return x.astype(dtype)


def _valid(x, low, high) -> bool:
    return (x.dtype.kind == "f" and x.ndim == 4 and x.shape[1:] == (28, 28, 1) and len(x) > 0
            and bool(np.isfinite(x).all()) and low <= x.min() and x.max() <= high)


def _outcome(fn):
    try:
        return "ok", fn()
    except CLEAR as exc:
        assert str(exc)
        return "error", exc


@PROPERTY
@given(x=pixel_arrays(0.0, 1.0))
def test_vae_loss_and_evaluate_elbo_clear_error_or_finite(vae, x):
    for fn in (lambda: float(ckt.vae_loss(vae, x)), lambda: ckt.evaluate_elbo(vae, x)):
        status, out = _outcome(fn)
        assert (status == "ok") == _valid(x, 0.0, 1.0), out
        if status == "ok":
            assert np.isfinite(out)


@PROPERTY
@given(x=pixel_arrays(-1.0, 1.0))
def test_gan_step_clear_error_or_finite(gan, x):
    *_, step = gan
    status, out = _outcome(lambda: {k: float(v) for k, v in step(x).items()})
    assert (status == "ok") == _valid(x, -1.0, 1.0), out
    if status == "ok":
        assert all(np.isfinite(v) for v in out.values())


# --- regression tests ----------------------------------------------------------------------

def test_vae_loss_refuses_0_255_pixels(vae):
    x = np.random.default_rng(0).integers(0, 256, (4, 28, 28, 1)).astype("float32")
    with pytest.raises(ValueError, match=r"x must hold pixels in \[0, 1\].*binarize.*got values in \[0, 25\d\]"):
        ckt.vae_loss(vae, x)
    opt = keras.optimizers.Adam(1e-4)
    opt.build(vae.trainable_variables)
    before = [w.numpy() for w in vae.weights]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ckt.make_vae_train_step(vae, opt)(x)
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(before, vae.weights, strict=True))  # no step taken
    assert np.isfinite(float(ckt.vae_loss(vae, x / 255.0)))


def test_gan_step_refuses_uint8_and_0_255_pixels(gan):
    g, d, step = gan
    u8 = np.random.default_rng(0).integers(0, 256, (4, 28, 28, 1)).astype("uint8")
    before = [w.numpy() for w in g.weights + d.weights]
    with pytest.raises(TypeError, match=r"images must hold float pixels in \[-1, 1\].*to_signed.*uint8"):
        step(u8)
    with pytest.raises(ValueError, match=r"got values in \[0, 25\d\]"):
        step(u8.astype("float32"))
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(before, g.weights + d.weights, strict=True))


def test_evaluate_elbo_of_nothing_is_a_clear_error(vae):
    with pytest.raises(ValueError, match="empty batch"):
        ckt.evaluate_elbo(vae, np.zeros((0, 28, 28, 1), "float32"))


DATA = np.random.default_rng(0).standard_normal((40, 3)).astype(np.float32)


def _train(directory, n_steps, seed=0, every=4):
    model, opt, rng, step = _tiny(seed)
    run = TrainingRun(directory, checkpoint_every=every, model=model, optimizer=opt, rng=rng)
    run.fit(step, ckt.BatchSampler(DATA, 8), n_steps, progress=False)
    return model, run


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_truncated_latest_checkpoint_falls_back_to_the_newest_intact_one(tmp_path):
    _train(tmp_path / "a", 8)  # the reference: checkpoints at 4 and 8
    ref_model, _ = _train(tmp_path / "ref", 8)
    _train(tmp_path / "b", 12)
    data_file = tmp_path / "b" / "ckpt-12.data-00000-of-00001"
    data_file.write_bytes(data_file.read_bytes()[:40])  # a disk that filled up mid-write
    model, opt, rng, step = _tiny(seed=5)
    with pytest.warns(RuntimeWarning, match=r"skipped unreadable checkpoints.*ckpt-12.*resuming from ckpt-8"):
        run = TrainingRun(tmp_path / "b", checkpoint_every=4, model=model, optimizer=opt, rng=rng)
    assert int(run.step.numpy()) == 8 and run.history.steps == list(range(8))
    for w, w_ref in zip(model.weights, ref_model.weights, strict=True):
        np.testing.assert_array_equal(w.numpy(), w_ref.numpy())
    run.fit(step, ckt.BatchSampler(DATA, 8), 12, progress=False)  # and it trains on from there
    assert run.history.steps == list(range(12)) and run.manager.latest_checkpoint.endswith("ckpt-12")


def test_run_folder_without_its_index_is_refused_and_left_untouched(tmp_path):
    _train(tmp_path, 12)
    (tmp_path / "checkpoint").unlink()
    before = _digest(tmp_path)
    model, opt, rng, _ = _tiny(seed=5)
    with pytest.raises(ValueError, match=r"index file 'checkpoint' is missing.*nothing was changed"):
        TrainingRun(tmp_path, checkpoint_every=4, model=model, optimizer=opt, rng=rng)
    assert _digest(tmp_path) == before


@pytest.mark.parametrize("every", [4, 100])  # with a checkpoint to go back to, and before the first one
def test_nan_rolls_the_weights_in_memory_back_to_finite_ones(tmp_path, every):
    model, opt, rng, step = _tiny()
    run = TrainingRun(tmp_path, checkpoint_every=every, model=model, optimizer=opt, rng=rng)
    start = [v.numpy() for v in model.weights + opt.variables] + [rng.state.numpy()]

    def poisoned(xb):
        out = step(xb)
        if int(run.step.numpy()) == 6:  # a step that blew up: the update wrote NaN into the weights
            for v in model.trainable_variables:
                v.assign(v * np.nan)
            return {"loss": tf.constant(np.nan)}
        return out

    with pytest.raises(NonFiniteError, match=r"step 6: loss = nan.*back at step (4|0)"):
        run.fit(poisoned, ckt.BatchSampler(DATA, 8), 12, progress=False)
    assert all(np.isfinite(v.numpy()).all() for v in model.weights)
    expected_step = 4 if every == 4 else 0
    assert int(run.step.numpy()) == expected_step and run.history.steps == list(range(expected_step))
    if every == 100:  # nothing saved yet: back where fit started, optimizer and RNG included
        now = [v.numpy() for v in model.weights + opt.variables] + [rng.state.numpy()]
        assert all(np.array_equal(a, b) for a, b in zip(start, now, strict=True))
    else:
        ref_model, _ = _train(tmp_path / "ref", 4)
        for w, w_ref in zip(model.weights, ref_model.weights, strict=True):
            np.testing.assert_array_equal(w.numpy(), w_ref.numpy())


def test_stalled_download_in_load_mnist_tf_times_out_with_a_message(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist_module, "search_dirs", lambda: [tmp_path])  # no local files
    with stalled_server() as base:
        # Keras' own loader, pointed at the stalled server: get_file has no timeout of its own
        def keras_load_data():
            keras.utils.get_file("mnist.npz", origin=base + "mnist.npz", cache_dir=str(tmp_path))

        monkeypatch.setattr(tf.keras.datasets.mnist, "load_data", keras_load_data)
        monkeypatch.setattr(mnist_module, "MIRRORS", (base,))
        monkeypatch.setattr(mnist_module, "DOWNLOAD_TIMEOUT", 0.5)
        monkeypatch.setattr(tf_data, "DOWNLOAD_TIMEOUT", 0.5)
        previous = socket.getdefaulttimeout()
        with pytest.warns(RuntimeWarning, match="load_data"), pytest.raises(OSError, match="timed out"):
            ckt.load_mnist_tf(allow_download=True)
        assert socket.getdefaulttimeout() == previous  # the global default is put back
