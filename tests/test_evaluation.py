"""The course's sample-quality metric (coursekit.evaluation) and the shipped DCGAN generator file."""

import hashlib
import json

import numpy as np
import pytest
import scipy.linalg
import torch

from coursekit.data import mnist_splits, to_unit
from coursekit.evaluation import (
    MnistClassifier,
    accuracy,
    as_unit_tensor,
    blurred_images,
    digit_entropy,
    frechet_distance,
    gaussian_stats,
    load_classifier,
    mnist_quality,
    noise_images,
    reference_quality,
    train_classifier,
)
from coursekit.training import checkpoints


@pytest.fixture(scope="module")
def splits():
    try:
        return mnist_splits(allow_download=False)
    except FileNotFoundError:
        pytest.skip("MNIST is not available offline (set COURSEKIT_DATA)")


# --- the Fréchet distance against independent oracles ------------------------------------------

def test_frechet_matches_the_closed_form_for_commuting_covariances():
    rng = np.random.default_rng(0)
    d = 6
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))  # a shared eigenbasis: the covariances commute
    a, b = rng.uniform(0.1, 3.0, d), rng.uniform(0.1, 3.0, d)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    s1, s2 = q @ np.diag(a) @ q.T, q @ np.diag(b) @ q.T
    exact = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(exact, rel=1e-10)
    assert frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-10)


def test_frechet_matches_scipy_sqrtm_for_general_covariances():
    rng = np.random.default_rng(1)
    d = 8
    a, b = rng.standard_normal((d, d)), rng.standard_normal((d, d))
    s1, s2 = a @ a.T + 0.1 * np.eye(d), b @ b.T + 0.1 * np.eye(d)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real  # the FID reference formula
    oracle = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * covmean)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(oracle, rel=1e-8)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(frechet_distance(mu2, s2, mu1, s1), rel=1e-8)


def test_frechet_and_stats_reject_bad_input():
    with pytest.raises(ValueError, match="covariances"):
        frechet_distance(np.zeros(2), np.eye(3), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="symmetric"):
        frechet_distance(np.zeros(2), np.array([[1.0, 0.5], [0.0, 1.0]]), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="N ≥ 2"):
        gaussian_stats(np.zeros((1, 4)))


def test_digit_entropy_in_bits():
    uniform = np.eye(10)[np.arange(1000) % 10]
    assert digit_entropy(uniform) == pytest.approx(np.log2(10))
    assert digit_entropy(np.eye(10)[np.zeros(50, int)]) == 0.0
    assert digit_entropy(np.eye(10)[np.arange(100) % 2]) == pytest.approx(1.0)


# --- inputs ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("images", "error", "match"), [
    (np.zeros((4, 28, 28), np.uint8), TypeError, "to_unit"),
    (torch.zeros(4, 28, 28, dtype=torch.int64), TypeError, "to_unit"),
    ([[0.0] * 28] * 28, TypeError, "NumPy array or a torch tensor"),
    (np.zeros((4, 28, 28), object), TypeError, "dtype"),
    (np.zeros((4, 32, 32), np.float32), ValueError, "shape"),
    (np.zeros((4, 3, 28, 28), np.float32), ValueError, "shape"),
    (np.zeros((0, 28, 28), np.float32), ValueError, "N ≥ 1"),
    (np.full((2, 28, 28), 1.5, np.float32), ValueError, r"\[0, 1\]"),
    (np.full((2, 28, 28), -0.5, np.float32), ValueError, r"\[-1, 1\]"),
    (np.full((2, 28, 28), np.nan, np.float32), ValueError, "NaN"),
])
def test_bad_images_are_refused_with_a_clear_error(images, error, match):
    with pytest.raises(error, match=match):
        as_unit_tensor(images)


def test_both_image_layouts_are_accepted():
    x = np.random.default_rng(0).random((3, 28, 28)).astype(np.float32)
    assert as_unit_tensor(x).shape == (3, 1, 28, 28)
    assert torch.equal(as_unit_tensor(x), as_unit_tensor(torch.from_numpy(x).unsqueeze(1)))


def test_blur_keeps_the_mass_and_checks_sigma():
    x = np.zeros((1, 28, 28), np.float32)
    x[0, 14, 14] = 1.0
    y = blurred_images(x, 1.5)
    assert y.shape == x.shape and y.sum() == pytest.approx(1.0, rel=1e-5) and y.max() < 0.1
    with pytest.raises(ValueError, match="sigma"):
        blurred_images(x, 0.0)


# --- the classifier -------------------------------------------------------------------------

def test_training_is_deterministic_given_the_seed():
    rng = np.random.default_rng(0)
    x, y = rng.random((64, 28, 28)).astype(np.float32), rng.integers(0, 10, 64)
    a, _ = train_classifier(x, y, n_steps=5, batch_size=8, seed=3)
    b, _ = train_classifier(x, y, n_steps=5, batch_size=8, seed=3)
    c, _ = train_classifier(x, y, n_steps=5, batch_size=8, seed=4)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    with pytest.raises(ValueError, match="digits"):
        train_classifier(x, y + 10, n_steps=1)


def test_shipped_classifier_loads_and_reaches_its_recorded_accuracy(splits):
    assert "mnist_classifier.pt" in checkpoints.manifest(), "run: python -m coursekit.training.checkpoints --update"
    model, meta = load_classifier()
    assert isinstance(model, MnistClassifier) and not model.training
    assert meta["commands"][-1].startswith("python scripts/train_mnist_classifier.py")
    assert meta["train_images"] == len(splits.train_images) and meta["eval_offset"] == splits.eval_offset
    acc = accuracy(model, to_unit(splits.eval_images), splits.eval_labels)
    assert acc == pytest.approx(meta["eval_accuracy"], abs=1e-9) and acc > 0.97
    size = (checkpoints.REPO_DIR / "mnist_classifier.pt").stat().st_size
    assert size < 1_000_000, "the classifier checkpoint should stay tiny"


# --- the metric ------------------------------------------------------------------------------

def test_metric_ranks_real_images_far_above_blurred_and_noise(splits):
    real = reference_quality()  # images 0–1,999 vs 8,000–9,999
    blurred = mnist_quality(blurred_images(to_unit(splits.train_images[:2000]), 1.5))
    noise = mnist_quality(noise_images(2000, seed=0))
    assert real.n == blurred.n == noise.n == 2000
    assert 5 * real.frechet < blurred.frechet < noise.frechet
    assert real.confident_share > 0.9 > blurred.confident_share + 0.2
    assert real.digit_entropy > 3.2 > noise.digit_entropy  # noise is read as one or two digits only


def test_metric_is_deterministic_and_layout_free(splits):
    images = to_unit(splits.train_images[2000:2500])
    a = mnist_quality(images)
    b = mnist_quality(torch.from_numpy(images).unsqueeze(1))
    assert a == b
    assert mnist_quality(noise_images(300, seed=1)) == mnist_quality(noise_images(300, seed=1))
    assert mnist_quality(noise_images(300, seed=1)) != mnist_quality(noise_images(300, seed=2))


# --- the shipped DCGAN generator (TensorFlow) -------------------------------------------------

@pytest.fixture(scope="module")
def pretrained():
    pytest.importorskip("tensorflow")
    from coursekit.tf import pretrained
    return pretrained


def test_generator_file_round_trip_and_tampering(pretrained, tmp_path, monkeypatch):
    from coursekit.tf.gan import make_generator_model

    g = make_generator_model()
    path = pretrained.save_generator(g, tmp_path / "mine.npz", meta={"steps": 3})
    back = pretrained.load_generator(path)
    assert back.coursekit_meta["steps"] == 3 and back.coursekit_meta["noise_dim"] == 100
    for w, v in zip(g.weights, back.weights, strict=True):
        np.testing.assert_array_equal(np.float16(w.numpy()).astype(np.float32), v.numpy())
    with pytest.raises(ValueError, match=".npz"):
        pretrained.save_generator(g, tmp_path / "mine.h5")
    # a file bearing the shipped name is checked against the manifest before it is read
    shipped = tmp_path / pretrained.GENERATOR_FILE
    shipped.write_bytes(path.read_bytes())
    manifest = tmp_path / "checkpoints.json"
    monkeypatch.setattr(pretrained, "MANIFEST", manifest)
    manifest.write_text(json.dumps({}))
    with pytest.raises(pretrained.GeneratorFileError, match="not listed"):
        pretrained.load_generator(shipped)
    manifest.write_text(json.dumps({shipped.name: {"sha256": "0" * 64, "bytes": 1}}))
    with pytest.raises(pretrained.GeneratorFileError, match="SHA-256"):
        pretrained.load_generator(shipped)
    assert pretrained.load_generator(shipped, verify=False).coursekit_meta["steps"] == 3
    good = hashlib.sha256(shipped.read_bytes()).hexdigest()
    manifest.write_text(json.dumps({shipped.name: {"sha256": good, "bytes": shipped.stat().st_size}}))
    assert pretrained.load_generator(shipped).coursekit_meta["steps"] == 3
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a generator file"):
        pretrained.load_generator(tmp_path / "junk.npz")


def test_shipped_generator_loads_and_generates_digits(pretrained):
    import tensorflow as tf

    g = pretrained.load_generator()  # found in data/checkpoints, SHA-256 from the manifest
    meta = g.coursekit_meta
    assert meta["commands"][-1].startswith("python scripts/train_dcgan.py") and meta["steps"] >= 2000
    from coursekit.tf.gan import generate_images

    # the scores scripts/train_dcgan.py recorded (float32 weights, 2,000 samples of this noise); the file is float16
    images = generate_images(g, tf.random.stateless_normal((2000, 100), seed=(0, 0))).numpy()[..., 0]
    q = mnist_quality(np.clip(images, 0, 1))
    recorded = meta["quality"][str(meta["steps"])]
    assert q.frechet == pytest.approx(recorded["frechet"], rel=0.05)
    assert q.frechet < 0.5 * meta["quality"]["1000"]["frechet"], "clearly better than the notebook's 1,000 steps"
    assert q.digit_entropy > 2.9  # most digits appear
