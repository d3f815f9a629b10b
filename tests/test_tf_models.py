"""Lesson 08 (TensorFlow): shapes, log N against TFP, the ELBO against an independent
TFP computation, GAN losses in closed form, checkpoints that survive a SIGKILL, and the
lesson's recipes (``coursekit.lessons.autoencoders``: VAE / GAN runs, frames, GIF, figures)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_probability as tfp  # noqa: E402

import coursekit.tf as ckt  # noqa: E402
from coursekit.core.history import NonFiniteError  # noqa: E402
from coursekit.data import to_signed, to_unit  # noqa: E402
from coursekit.lessons import autoencoders as lesson  # noqa: E402
from coursekit.training.tf_run import TrainingRun, format_duration  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
floats = st.floats(-5, 5, allow_nan=False, width=64)


def test_import_coursekit_does_not_import_tensorflow():
    code = "import sys, coursekit, coursekit.data; assert 'tensorflow' not in sys.modules, 'TF leaked'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_lesson_08_does_not_import_torch():
    code = ("import sys, coursekit.lessons.autoencoders, coursekit.widgets.autoencoders, coursekit.exercises, "
            "coursekit.viz.images; assert 'torch' not in sys.modules, 'torch leaked'")  # what notebook 08 imports
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, capture_output=True)


def test_coursekit_tf_turns_onednn_on_unless_told_otherwise():
    code = ("import os, coursekit.tf as ckt; info = ckt.runtime_info(); "
            "print(os.environ['TF_ENABLE_ONEDNN_OPTS'], info['onednn'], info['cores'] >= 1)")
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    out = subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["1", "True", "True"]
    env["TF_ENABLE_ONEDNN_OPTS"] = "0"  # the caller's choice wins
    out = subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["0", "False", "True"]


def test_model_output_shapes():
    x = np.random.default_rng(0).random((3, 28, 28), dtype=np.float32)
    ae = ckt.Autoencoder(64)
    assert ae(x).shape == (3, 28, 28) and ae.encoder(x).shape == (3, 64)
    vae = ckt.CVAE(2)
    mean, logvar = vae.encode(x[..., None])
    assert mean.shape == logvar.shape == (3, 2)
    assert vae.decode(mean).shape == (3, 28, 28, 1)
    probs = vae.sample(n=5).numpy()
    assert probs.shape == (5, 28, 28, 1) and probs.min() >= 0 and probs.max() <= 1
    g, d = ckt.make_generator_model(), ckt.make_discriminator_model()
    fake = g(tf.random.normal((2, ckt.NOISE_DIM)), training=False).numpy()
    assert fake.shape == (2, 28, 28, 1) and np.abs(fake).max() <= 1
    assert d(fake).shape == (2, 1)


def test_bad_input_is_rejected():
    vae = ckt.CVAE(3)
    with pytest.raises(ValueError, match=r"\(batch, 28, 28, 1\)"):
        vae.encode(np.zeros((2, 28, 28), np.float32))
    with pytest.raises(ValueError, match=r"\(batch, 3\)"):
        vae.decode(np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match="latent_dim"):
        ckt.CVAE(0)
    with pytest.raises(TypeError, match="uint8"):
        ckt.binarize(np.zeros((2, 28, 28), np.float32))
    with pytest.raises(ValueError, match=r"\(N, 28, 28\)"):
        ckt.binarize(np.zeros((2, 27, 27), np.uint8))
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        lesson.gan_images(np.zeros((2, 28), np.uint8))
    with pytest.raises(ValueError, match="at least"):
        ckt.BatchSampler(np.zeros((3, 2)), batch_size=4)
    with pytest.raises(ValueError, match="batch_size"):
        ckt.BatchSampler(np.zeros((3, 2)), batch_size=0)
    with pytest.raises(ValueError, match="noise_dim"):
        ckt.make_generator_model(noise_dim=True)
    with pytest.raises(ValueError, match="latent_dim == 2"):
        lesson.latent_grid(ckt.CVAE(3), n=2)
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        lesson.plot_latent_space(np.zeros((4, 3)), np.zeros(4))


def test_preprocessing_matches_the_course():
    img = np.arange(2 * 28 * 28, dtype=np.int64).reshape(2, 28, 28) % 256
    img = img.astype(np.uint8)
    np.testing.assert_allclose(to_unit(img), img / 255.0, rtol=1e-6)
    b = ckt.binarize(img)
    assert b.shape == (2, 28, 28, 1) and set(np.unique(b)) == {0.0, 1.0}
    np.testing.assert_array_equal(b[..., 0], (img / 255.0 > 0.5).astype(np.float32))
    g = lesson.gan_images(img)
    assert g.min() == -1.0 and g.max() == 1.0 and g.shape == (2, 28, 28, 1)
    np.testing.assert_allclose(g[..., 0], (img - 127.5) / 127.5, atol=1e-6)  # the course's (x − 127.5) / 127.5
    np.testing.assert_array_equal(g[..., 0], to_signed(img))


@settings(max_examples=25, deadline=None)
@given(arrays(np.float64, (4, 3), elements=floats), arrays(np.float64, (4, 3), elements=floats),
       arrays(np.float64, (4, 3), elements=st.floats(-4, 4, width=64)))
def test_log_normal_pdf_equals_tfp(sample, mean, logvar):
    ours = ckt.log_normal_pdf(sample, mean, logvar).numpy()
    ref = tfp.distributions.Normal(mean, np.exp(0.5 * logvar)).log_prob(sample).numpy().sum(axis=1)
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-10)
    std = ckt.log_normal_pdf(sample, 0.0, 0.0).numpy()  # the prior N(0, I), broadcast scalars
    prior = tfp.distributions.Normal(np.float64(0.0), np.float64(1.0))
    np.testing.assert_allclose(std, prior.log_prob(sample).numpy().sum(1), rtol=1e-12)


def test_elbo_of_fixed_batch_matches_independent_tfp_computation():
    tf.keras.utils.set_random_seed(1)
    vae = ckt.CVAE(2)
    x = (np.random.default_rng(1).random((6, 28, 28, 1)) > 0.6).astype(np.float32)
    eps = np.random.default_rng(2).standard_normal((6, 2)).astype(np.float32)
    terms = ckt.elbo_terms(vae, x, eps)
    out = vae.encoder(x)
    mu, logvar = out[:, :2], out[:, 2:]
    sigma = tf.exp(0.5 * logvar)
    z = mu + sigma * eps
    tfd = tfp.distributions
    logpx = tfd.Independent(tfd.Bernoulli(logits=vae.decoder(z)), 3).log_prob(x)
    logpz = tfd.MultivariateNormalDiag(tf.zeros(2), tf.ones(2)).log_prob(z)
    logq = tfd.MultivariateNormalDiag(mu, sigma).log_prob(z)
    np.testing.assert_allclose(terms["elbo"], logpx + logpz - logq, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(terms["logpx_z"], logpx, rtol=1e-5, atol=1e-3)
    assert abs(float(ckt.vae_loss(vae, x, eps)) + float(tf.reduce_mean(logpx + logpz - logq))) < 1e-2


def test_kl_term_is_monte_carlo_estimate_of_closed_form():
    mu = tf.constant([[0.5, -1.0]], tf.float64)
    logvar = tf.constant([[-0.7, 0.4]], tf.float64)
    eps = tf.constant(np.random.default_rng(3).standard_normal((200_000, 2)))
    z = mu + tf.exp(0.5 * logvar) * eps
    mc = ckt.log_normal_pdf(z, mu, logvar) - ckt.log_normal_pdf(z, 0.0, 0.0)  # log q − log p
    kl = 0.5 * float(tf.reduce_sum(mu**2 + tf.exp(logvar) - 1.0 - logvar))
    se = float(tf.math.reduce_std(mc)) / np.sqrt(len(eps))
    assert abs(float(tf.reduce_mean(mc)) - kl) < 5 * se


def test_reparameterization_passes_gradients():
    vae = ckt.CVAE(2)
    mean = tf.Variable([[0.3, -0.2]])
    logvar = tf.Variable([[0.5, -1.0]])
    eps = tf.constant([[1.5, -0.5]])
    with tf.GradientTape() as tape:
        z = vae.reparameterize(mean, logvar, eps)
        total = tf.reduce_sum(z)
    g_mean, g_logvar = tape.gradient(total, [mean, logvar])
    np.testing.assert_allclose(g_mean, [[1.0, 1.0]])
    np.testing.assert_allclose(g_logvar, 0.5 * eps * tf.exp(0.5 * logvar), rtol=1e-6)


@settings(max_examples=20, deadline=None)
@given(arrays(np.float32, (5, 1), elements=st.floats(-8, 8, width=32)),
       arrays(np.float32, (5, 1), elements=st.floats(-8, 8, width=32)))
def test_gan_losses_closed_form(real, fake):
    softplus = lambda t: np.logaddexp(0.0, t.astype(np.float64))  # noqa: E731  -log σ(−t)
    d_ref = softplus(-real).mean() + softplus(fake).mean()  # −log σ(D(x)) − log(1 − σ(D(G(z))))
    g_ref = softplus(-fake).mean()
    assert abs(float(ckt.discriminator_loss(real, fake)) - d_ref) < 1e-4 * (1 + d_ref)
    assert abs(float(ckt.generator_loss(fake)) - g_ref) < 1e-4 * (1 + g_ref)


def _gan(seed=0):
    tf.keras.utils.set_random_seed(seed)
    g, d = ckt.make_generator_model(), ckt.make_discriminator_model()
    go, do = keras.optimizers.Adam(1e-4), keras.optimizers.Adam(1e-4)
    go.build(g.trainable_variables)
    do.build(d.trainable_variables)
    return g, d, go, do


def test_gan_train_step_updates_both_players():
    g, d, go, do = _gan()
    step = ckt.make_gan_train_step(g, d, go, do, tf.random.Generator.from_seed(0))
    images = lesson.gan_images(np.random.default_rng(0).integers(0, 256, (4, 28, 28), dtype=np.uint8))
    before = [w.numpy().copy() for w in (g.trainable_variables[0], d.trainable_variables[0])]
    out = step(images)
    assert set(out) == {"loss", "gen_loss", "disc_loss", "grad_norm"}
    assert all(np.isfinite(float(v)) for v in out.values())
    after = [g.trainable_variables[0].numpy(), d.trainable_variables[0].numpy()]
    assert all(not np.allclose(a, b) for a, b in zip(before, after, strict=True))


def test_gan_run_writes_frames_and_gif_and_resumes(tmp_path):
    import imageio.v3 as iio

    images = np.random.default_rng(0).integers(0, 256, (32, 28, 28), dtype=np.uint8)
    build = lambda: lesson.GanRun(tmp_path, images, batch_size=8, checkpoint_every=2, frame_every=2)  # noqa: E731
    gan = build()
    gan.fit(4, progress=False)
    assert [p.name for p in gan.frame_paths()] == [f"frame_{k:06d}.png" for k in (0, 2, 4)]
    frame = iio.imread(gan.frame_paths()[-1])
    assert frame.dtype == np.uint8 and frame.shape == (3 * (4 * 29 - 1), 3 * (4 * 29 - 1))  # 4×4 mosaic, 3× larger
    saved = [w.numpy() for w in gan.generator.weights]
    assert gan.run.timed_steps == 3 and gan.run.timings["trace"] > 0 and gan.run.timings["callback"] > 0
    del gan
    gan = build()  # fresh objects, same folder: restored
    assert gan.step == 4 and len(gan.run.history.steps) == 4
    for a, b in zip(saved, gan.generator.weights, strict=True):
        np.testing.assert_array_equal(a, b.numpy())
    history = gan.fit(6, progress=False)
    assert history.steps == list(range(6)) and set(history.values) == {"loss", "gen_loss", "disc_loss", "grad_norm"}
    gif = gan.gif(fps=4)
    assert gif == tmp_path / "dcgan.gif" and iio.imread(gif, index=None).shape[0] == 4  # frames 0, 2, 4, 6


def test_vae_run_trains_and_resumes(tmp_path):
    x = ckt.binarize(np.random.default_rng(1).integers(0, 256, (40, 28, 28), dtype=np.uint8))
    run = lesson.VaeRun(tmp_path, x, batch_size=8, checkpoint_every=3)
    history = run.fit(3, progress=False)
    assert run.step == 3 and history.steps == [0, 1, 2] and np.isfinite(history["loss"]).all()
    again = lesson.VaeRun(tmp_path, x, batch_size=8, checkpoint_every=3)
    assert again.step == 3
    for a, b in zip(run.model.weights, again.model.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_figures_use_one_mosaic():
    tf.keras.utils.set_random_seed(0)
    vae = ckt.CVAE(2)
    image, q = lesson.latent_grid(vae, n=3)
    assert image.shape == (84, 84) and q.shape == (3,) and q[0] < 0 < q[-1]
    z = np.array([[q[1], q[0]]], dtype="float32")  # row 0, column 1: z₁ = q[1], z₂ = q[0]
    np.testing.assert_allclose(image[:28, 28:56], np.asarray(vae.sample(z))[0, ..., 0], atol=1e-6)
    fig = lesson.plot_samples(np.zeros((5, 28, 28, 1)), "muestras")
    assert fig.axes[0].get_title() == "muestras"
    fig = lesson.plot_reconstructions(np.zeros((3, 28, 28)), np.ones((3, 28, 28, 1)), n=2)
    assert len(fig.axes) == 4
    import matplotlib.pyplot as plt

    plt.close("all")


def _tiny(seed=0):
    tf.keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.layers.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(1)])
    opt = keras.optimizers.Adam(1e-2)
    opt.build(model.trainable_variables)
    rng = tf.random.Generator.from_seed(seed)

    @tf.function
    def step(xb):
        noise = rng.normal((tf.shape(xb)[0], 3))
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean((model(xb + 0.1 * noise) - tf.reduce_sum(xb, 1, keepdims=True)) ** 2)
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return {"loss": loss}

    return model, opt, rng, step


def test_interrupted_run_ends_like_uninterrupted_run(tmp_path):
    data = np.random.default_rng(0).standard_normal((40, 3)).astype(np.float32)
    model_a, opt_a, rng_a, step_a = _tiny()
    hist_a = TrainingRun(tmp_path / "a", model=model_a, optimizer=opt_a, rng=rng_a).fit(
        step_a, ckt.BatchSampler(data, 8), 12, progress=False)
    model_b, opt_b, rng_b, step_b = _tiny()
    TrainingRun(tmp_path / "b", checkpoint_every=4, model=model_b, optimizer=opt_b, rng=rng_b).fit(
        step_b, ckt.BatchSampler(data, 8), 7, progress=False)  # stops at 7, checkpoint at 7
    model_c, opt_c, rng_c, step_c = _tiny(seed=5)  # fresh, different weights: all must come back
    run_c = TrainingRun(tmp_path / "b", checkpoint_every=4, model=model_c, optimizer=opt_c, rng=rng_c)
    assert int(run_c.step.numpy()) == 7 and run_c.history.steps == list(range(7))
    hist_c = run_c.fit(step_c, ckt.BatchSampler(data, 8), 12, progress=False)
    assert hist_c.steps == list(range(12))
    np.testing.assert_allclose(hist_c["loss"], hist_a["loss"], rtol=1e-5)
    for wa, wc in zip(model_a.weights, model_c.weights, strict=True):
        np.testing.assert_allclose(wa.numpy(), wc.numpy(), rtol=1e-5, atol=1e-7)


def test_nan_guard_names_step_and_quantity_and_keeps_last_checkpoint(tmp_path):
    model, opt, rng, _ = _tiny()
    run = TrainingRun(tmp_path, checkpoint_every=2, model=model, optimizer=opt, rng=rng)

    def step_fn(step):
        return {"loss": tf.constant(1.0), "grad_norm": tf.constant(np.nan if step == 5 else 1.0)}

    with pytest.raises(NonFiniteError, match=r"step 5: grad_norm = nan"):
        run.fit(step_fn, lambda s: s, 10, progress=False)
    assert run.manager.latest_checkpoint.endswith("ckpt-4")


def test_unbuilt_optimizer_is_rejected(tmp_path):
    model = keras.Sequential([keras.layers.Input((3,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match=r"optimizer\.build"):
        TrainingRun(tmp_path, model=model, optimizer=keras.optimizers.Adam())
    with pytest.raises(ValueError, match="checkpoint_every"):
        TrainingRun(tmp_path, checkpoint_every=0, model=model)


def test_time_estimate_is_measured_on_the_first_steps(tmp_path, capsys):
    data = np.random.default_rng(0).standard_normal((40, 3)).astype(np.float32)
    model, opt, rng, step = _tiny()
    run = TrainingRun(tmp_path, model=model, optimizer=opt, rng=rng)
    run.fit(step, ckt.BatchSampler(data, 8), 8, desc="prueba", estimate_after=3)
    out = capsys.readouterr()
    line = [s for s in (out.out + out.err).splitlines() if "por paso" in s]
    assert len(line) == 1 and "medido en 3 pasos" in line[0] and "para 4 pasos" in line[0]
    assert run.seconds_per_step > 0 and run.timed_steps == 7
    assert format_duration(125.4) == "2 min 05 s" and format_duration(42) == "42 s"


CHILD = """
import os, sys
sys.path.insert(0, {root!r})
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import numpy as np, keras, tensorflow as tf
import coursekit.tf as ckt
from coursekit.training.tf_run import TrainingRun

def build():
    keras.utils.set_random_seed(0)
    vae = ckt.CVAE(2)
    opt = keras.optimizers.Adam(1e-3)
    opt.build(vae.trainable_variables)
    return vae, opt, tf.random.Generator.from_seed(0)

def state(vae, opt, rng):
    return [v.numpy() for v in vae.weights] + [v.numpy() for v in opt.variables] + [rng.state.numpy()]

x = (np.random.default_rng(0).random((64, 28, 28, 1)) > 0.7).astype("float32")
if __name__ == "__main__":
    vae, opt, rng = build()
    run = TrainingRun(sys.argv[1], checkpoint_every=5, model=vae, optimizer=opt, rng=rng)
    # the callback runs just before each save: the state that checkpoint step k will hold
    dump = lambda k: np.savez(os.path.join(sys.argv[2], f"state_{{k}}.npz"), *state(vae, opt, rng))
    run.fit(ckt.make_vae_train_step(vae, opt, rng), ckt.BatchSampler(x, 8), 10**6,
            progress=False, callback=dump, callback_every=5)
"""


def _latest_step(ckpt_dir: Path) -> int:
    latest = tf.train.latest_checkpoint(str(ckpt_dir))
    return -1 if latest is None else int(re.search(r"ckpt-(\d+)$", latest).group(1))


def test_sigkilled_training_resumes_without_losing_anything(tmp_path):
    ckpt_dir, dump_dir = tmp_path / "ckpt", tmp_path / "dump"
    dump_dir.mkdir()
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(CHILD.format(root=str(ROOT))))
    proc = subprocess.Popen([sys.executable, str(script), str(ckpt_dir), str(dump_dir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 150
        while _latest_step(ckpt_dir) < 15:  # at least three checkpoints, then kill mid-run
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "child training never reached step 15"
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    saved = _latest_step(ckpt_dir)

    sys.path.insert(0, str(tmp_path))
    try:
        import child  # the same model / optimizer / rng construction
    finally:
        sys.path.remove(str(tmp_path))
    vae, opt, rng = child.build()
    run = TrainingRun(ckpt_dir, checkpoint_every=5, model=vae, optimizer=opt, rng=rng)
    assert int(run.step.numpy()) == saved
    assert run.history.steps == list(range(saved))  # the logged losses survived too
    expected = np.load(dump_dir / f"state_{saved}.npz")
    restored = child.state(vae, opt, rng)
    assert len(restored) == len(expected.files)
    for i, value in enumerate(restored):
        np.testing.assert_array_equal(value, expected[f"arr_{i}"])
    run.fit(ckt.make_vae_train_step(vae, opt, rng), ckt.BatchSampler(child.x, 8), saved + 5, progress=False)
    assert int(run.step.numpy()) == saved + 5
    assert run.history.steps == list(range(saved + 5))
    assert run.manager.latest_checkpoint.endswith(f"ckpt-{saved + 5}")


def test_data_offline_first_then_keras_loader_only_when_allowed(tmp_path, monkeypatch):
    import coursekit.data.mnist as mnist_mod

    monkeypatch.setattr(mnist_mod, "search_dirs", lambda: [tmp_path])  # no local files
    monkeypatch.delenv("COURSEKIT_ALLOW_DOWNLOAD", raising=False)
    with pytest.raises(FileNotFoundError, match="not found"):
        ckt.load_mnist_tf()
    fake = np.zeros((5, 28, 28), np.uint8), np.arange(5, dtype=np.uint8)
    monkeypatch.setattr(tf.keras.datasets.mnist, "load_data", lambda: (fake, fake))  # stands in for the network
    splits = ckt.load_mnist_tf(allow_download=True)
    assert "tf.keras.datasets" in splits.source and splits.train_images.shape == (5, 28, 28)


# --- the references of the cells the student writes in notebook 08 ---

def test_vae_train_step_is_the_compiled_step_with_the_same_eps():
    x = ckt.binarize(np.random.default_rng(2).integers(0, 256, (6, 28, 28), dtype=np.uint8))
    outcomes = []
    for eager in (True, False):
        tf.keras.utils.set_random_seed(0)
        vae, opt = ckt.CVAE(2), keras.optimizers.Adam(1e-3)
        opt.build(vae.trainable_variables)
        if eager:
            eps = tf.random.Generator.from_seed(5).normal(shape=(6, 2))  # the draw the compiled step makes
            loss = ckt.vae_train_step(vae, opt, x, eps)
        else:
            loss = ckt.make_vae_train_step(vae, opt, tf.random.Generator.from_seed(5))(x)["loss"]
        outcomes.append((float(loss), np.concatenate([v.numpy().ravel() for v in vae.trainable_variables])))
    assert outcomes[0][0] == pytest.approx(outcomes[1][0], rel=1e-5)
    np.testing.assert_allclose(outcomes[0][1], outcomes[1][1], atol=1e-6)


def test_gan_train_step_is_the_compiled_step_with_the_same_noise():
    images = lesson.gan_images(np.random.default_rng(3).integers(0, 256, (4, 28, 28), dtype=np.uint8))
    outcomes = []
    for eager in (True, False):
        g, d, go, do = _gan()
        if eager:
            noise = tf.random.Generator.from_seed(9).normal(shape=(4, ckt.NOISE_DIM))
            gen_loss, _ = ckt.gan_train_step(g, d, go, do, images, noise)
        else:
            gen_loss = ckt.make_gan_train_step(g, d, go, do, tf.random.Generator.from_seed(9))(images)["gen_loss"]
        outcomes.append((float(gen_loss), g.trainable_variables[0].numpy().copy()))
    assert outcomes[0][0] == pytest.approx(outcomes[1][0], rel=1e-5)
    np.testing.assert_allclose(outcomes[0][1], outcomes[1][1], atol=1e-6)


def test_step_outcomes_expose_a_wrong_step():
    rng = np.random.default_rng(0)
    x = (rng.random((4, 28, 28, 1)) > 0.6).astype("float32")
    eps = rng.standard_normal((4, 2)).astype("float32")
    loss, grad = lesson.vae_step_outcome(ckt.vae_train_step, x, eps)
    loss2, grad2 = lesson.vae_step_outcome(ckt.vae_train_step, x, eps)
    assert loss == loss2 and np.array_equal(grad, grad2)  # deterministic: same seed, same ε

    def ascent(model, opt, x, eps):  # maximizes the loss: the applied step flips sign
        with tf.GradientTape() as tape:
            loss = ckt.vae_loss(model, x, eps)
            objective = -loss
        grads = tape.gradient(objective, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    loss3, grad3 = lesson.vae_step_outcome(ascent, x, eps)
    assert loss3 == pytest.approx(loss) and np.allclose(grad3, -grad, atol=1e-4)
    images = rng.uniform(-1, 1, (4, 28, 28, 1)).astype("float32")
    noise = rng.standard_normal((4, ckt.NOISE_DIM)).astype("float32")
    a = lesson.gan_step_outcome(ckt.gan_train_step, images, noise)
    b = lesson.gan_step_outcome(ckt.gan_train_step, images, noise)
    assert a[:2] == b[:2] and all(np.array_equal(u, v) for u, v in zip(a[2:], b[2:], strict=True))
    assert np.abs(a[2]).max() > 0 and np.abs(a[3]).max() > 0  # both players moved
    with pytest.raises(TypeError, match="gen_loss, disc_loss"):
        lesson.gan_step_outcome(lambda *args: 1.0, images, noise)


def test_checkpoint_roundtrip_restores_the_last_save_and_catches_a_missing_restore(tmp_path):
    assert lesson.checkpoint_roundtrip(lesson.save_checkpoint, lesson.restore_latest, tmp_path / "a") == (3, 0.0, 3,
                                                                                                       0.0, 2)
    step, dw, iterations, d_rng, kept = lesson.checkpoint_roundtrip(lesson.save_checkpoint, lambda d, **o: 3,
                                                                    tmp_path / "b")
    assert dw > 0 and iterations == 0 and d_rng > 0  # nothing restored: the scenario sees it
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "x").write_text("")
    with pytest.raises(ValueError, match="not empty"):
        lesson.checkpoint_roundtrip(lesson.save_checkpoint, lesson.restore_latest, tmp_path / "c")
    assert lesson.restore_latest(tmp_path / "empty", model=ckt.Autoencoder(4)) == 0


def test_make_dataset_shuffles_within_the_buffer_and_keeps_the_remainder():
    data = np.arange(10)
    batches = [b.numpy() for b in ckt.make_dataset(data, buffer_size=1, batch_size=4, seed=0)]
    assert [len(b) for b in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate(batches), data)  # buffer 1: no shuffling
    firsts = {int(next(iter(ckt.make_dataset(data, buffer_size=3, batch_size=1, seed=s))).numpy()[0])
              for s in range(40)}
    assert firsts == {0, 1, 2}  # the first element can only come from the first buffer_size ones
    full = np.concatenate([b.numpy() for b in ckt.make_dataset(data, 10, 4, seed=1)])
    assert sorted(full) == list(data) and not np.array_equal(full, data)
    with pytest.raises(ValueError, match="buffer_size"):
        ckt.make_dataset(data, 0, 4)
    with pytest.raises(ValueError, match="non-empty"):
        ckt.make_dataset(np.zeros((0, 3)), 4, 2)


def test_iwae_bound_is_the_elbo_for_one_sample_and_grows_with_k():
    tf.keras.utils.set_random_seed(0)
    vae = ckt.CVAE(2)
    x = ckt.binarize(np.random.default_rng(4).integers(0, 256, (5, 28, 28), dtype=np.uint8))
    eps = tf.random.stateless_normal((1, 5, 2), seed=(1, 1))
    np.testing.assert_allclose(ckt.iwae_bound(vae, x, 1, eps), ckt.elbo_terms(vae, x, eps[0])["elbo"], rtol=1e-6)
    tf.random.set_seed(0)
    means = [float(tf.reduce_mean(ckt.iwae_bound(vae, x, k))) for k in (1, 50)]
    assert means[1] > means[0]
    with pytest.raises(ValueError, match="eps must have shape"):
        ckt.iwae_bound(vae, x, 2, eps)


def test_kl_to_standard_normal_closed_form():
    mean, logvar = np.array([[0.5, -1.0]]), np.array([[-0.7, 0.4]])
    expected = 0.5 * np.sum(mean**2 + np.exp(logvar) - 1 - logvar)
    np.testing.assert_allclose(ckt.kl_to_standard_normal(mean, logvar), [expected], rtol=1e-6)
    np.testing.assert_allclose(ckt.kl_to_standard_normal(np.zeros((2, 3)), np.zeros((2, 3))), [0.0, 0.0])


def test_vae_run_writes_a_frame_per_epoch_and_a_gif(tmp_path):
    import imageio.v3 as iio

    x = ckt.binarize(np.random.default_rng(1).integers(0, 256, (24, 28, 28), dtype=np.uint8))
    run = lesson.VaeRun(tmp_path, x, batch_size=8, checkpoint_every=3, frame_images=x[:4])
    assert run.frame_every == run.sampler.steps_per_epoch == 3
    run.fit(6, progress=False)
    assert [p.name for p in run.frame_paths()] == [f"frame_{k:06d}.png" for k in (0, 3, 6)]
    frames = iio.imread(run.gif(fps=2), index=None)
    assert frames.shape[0] == 3 and not np.array_equal(frames[0], frames[-1])  # training changed the decoder
    assert lesson.VaeRun(tmp_path / "none", x, batch_size=8).frame_paths() == []


def test_discriminator_dropout_is_validated():
    assert ckt.make_discriminator_model(0.0).layers[2].rate == 0.0
    for bad in (1.0, -0.1, "0.3", True):
        with pytest.raises(ValueError, match="dropout"):
            ckt.make_discriminator_model(bad)


def test_import_silences_tensorflow_start_up_lines():
    code = "import coursekit.tf as ckt, tensorflow as tf; tf.ones(2) * 2; print('ok')"
    env = {k: v for k, v in os.environ.items() if k != "COURSEKIT_TF_VERBOSE"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"
    assert "absl::InitializeLog" not in out.stderr and "cuda" not in out.stderr.lower(), out.stderr
    env["COURSEKIT_TF_VERBOSE"] = "1"  # the escape hatch shows them again
    out = subprocess.run([sys.executable, "-c", "import coursekit.tf; import sys; print('x', file=sys.stderr)"],
                         cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stderr.strip().endswith("x")
