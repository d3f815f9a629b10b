"""One sample-quality yardstick for every MNIST model of the course (in the style of FID).

:func:`mnist_quality` feeds images in [0, 1] to the shipped classifier
(:mod:`coursekit.evaluation.classifier`) and returns a :class:`Quality`:

* ``frechet`` — the Fréchet distance between Gaussians fitted to the classifier's 64 features
  of the images and of the held-out MNIST images 8,000–9,999 (never seen in training):
  ``‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2 (Σ₁^{1/2} Σ₂ Σ₁^{1/2})^{1/2})``. Lower is better; 0 for
  identical statistics. Like FID it depends on the number of images (a small sample has a
  larger distance): compare models with the same ``n`` (the course uses 2,000).
* ``confident_share`` — share of images the classifier labels with probability ≥ 0.9 (does
  each sample look like *some* digit?).
* ``digit_entropy`` — entropy, in bits, of the histogram of predicted digits (mode
  coverage: log₂ 10 ≈ 3.32 when all ten digits are equally frequent, 0 for one digit only).

:func:`reference_quality` is the real-vs-real baseline: MNIST images 0–1,999 (training
images of the classifier) against 8,000–9,999 — the scale of a perfect generator.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np

from ..core.checks import positive_int
from ..data import mnist_splits, to_unit
from .classifier import MnistClassifier, load_classifier, predict

#: a sample counts as "confident" when the classifier's top probability reaches this
CONFIDENCE = 0.9
#: the number of images the course scores per model (the held-out set has 2,000 too)
N_SAMPLES = 2000


@dataclass(frozen=True)
class Quality:
    """The metric of a set of images: see the module's docstring."""

    frechet: float
    confident_share: float
    digit_entropy: float
    n: int

    def as_dict(self) -> dict:
        return asdict(self)


def gaussian_stats(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(D,)`` and covariance ``(D, D)`` (unbiased, float64) of ``features`` ``(N, D)``, N ≥ 2."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"features must have shape (N, D) with N ≥ 2, got {f.shape}")
    return f.mean(0), np.cov(f, rowvar=False).reshape(f.shape[1], f.shape[1])


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Squared Fréchet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2).

    ``tr((Σ₁^{1/2} Σ₂ Σ₁^{1/2})^{1/2})`` is computed from symmetric eigendecompositions (the
    matrix inside is symmetric positive semi-definite), so no complex square roots appear."""
    mu1, mu2 = np.asarray(mu1, dtype=np.float64), np.asarray(mu2, dtype=np.float64)
    s1, s2 = np.asarray(sigma1, dtype=np.float64), np.asarray(sigma2, dtype=np.float64)
    d = mu1.shape[0] if mu1.ndim == 1 else -1
    if mu1.ndim != 1 or mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(f"need means (D,) and covariances (D, D) of one D, got {mu1.shape}, {s1.shape}, "
                         f"{mu2.shape}, {s2.shape}")
    for name, s in (("sigma1", s1), ("sigma2", s2)):
        if not np.all(np.isfinite(s)) or not np.allclose(s, s.T, rtol=1e-8, atol=1e-10):
            raise ValueError(f"{name} must be a finite symmetric matrix")
    w1, v1 = np.linalg.eigh((s1 + s1.T) / 2)
    root1 = (v1 * np.sqrt(np.clip(w1, 0, None))) @ v1.T
    inner = root1 @ s2 @ root1
    cross = np.sqrt(np.clip(np.linalg.eigvalsh((inner + inner.T) / 2), 0, None)).sum()
    value = float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * cross)
    return max(value, 0.0)


def digit_entropy(probs) -> float:
    """Entropy in bits of the histogram of predicted digits (argmax of ``probs`` ``(N, 10)``)."""
    counts = np.bincount(np.asarray(probs).argmax(1), minlength=10).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum()) + 0.0  # + 0.0: never -0.0


@lru_cache(maxsize=4)
def _classifier(name: str) -> MnistClassifier:
    return load_classifier(name)[0]


@lru_cache(maxsize=4)
def _reference(name: str) -> tuple[np.ndarray, np.ndarray]:
    splits = _carved_or_official()
    feats, _ = predict(_classifier(name), to_unit(splits.eval_images[:N_SAMPLES]))
    return gaussian_stats(feats)


def _carved_or_official():
    splits = mnist_splits(allow_download=False)
    if len(splits.eval_images) < N_SAMPLES:
        raise ValueError(f"the metric needs {N_SAMPLES} held-out MNIST images, found {len(splits.eval_images)}")
    return splits


def mnist_quality(images, *, classifier: str = "mnist_classifier.pt") -> Quality:
    """The metric of ``images`` (NumPy or torch, float in [0, 1], ``(N, 28, 28)`` or ``(N, 1, 28, 28)``,
    N ≥ 2) against the 2,000 held-out MNIST images (8,000–9,999 of the test file when carved).

    Deterministic: the same images give the same numbers (the randomness is in the sampler:
    seed it)."""
    model = _classifier(str(classifier))
    feats, probs = predict(model, images)
    if len(feats) < 2:
        raise ValueError("mnist_quality needs at least 2 images")
    mu, sigma = gaussian_stats(feats)
    mu_ref, sigma_ref = _reference(str(classifier))
    return Quality(frechet=frechet_distance(mu, sigma, mu_ref, sigma_ref),
                   confident_share=float((probs.max(1) >= CONFIDENCE).mean()),
                   digit_entropy=digit_entropy(probs), n=len(feats))


def reference_quality(n: int = N_SAMPLES) -> Quality:
    """The real-vs-real baseline: the first ``n`` MNIST images of the training part (0 … n−1)
    scored against the held-out images — what a perfect generator would reach."""
    n = positive_int(n, "n")
    splits = _carved_or_official()
    if n > len(splits.train_images):
        raise ValueError(f"n must be at most {len(splits.train_images)}, got {n}")
    return mnist_quality(to_unit(splits.train_images[:n]))


def noise_images(n: int = N_SAMPLES, seed: int = 0) -> np.ndarray:
    """Uniform noise in [0, 1], ``(n, 28, 28)`` float32: the metric's worst case."""
    return np.random.default_rng(seed).random((positive_int(n, "n"), 28, 28), dtype=np.float32)


def blurred_images(images, sigma: float = 1.5) -> np.ndarray:
    """``images`` in [0, 1] ``(N, 28, 28)`` blurred by a Gaussian of ``sigma`` pixels (a separable,
    zero-padded kernel of radius ⌈3σ⌉): digits whose shape survives but whose strokes do not."""
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 3:
        raise ValueError(f"images must have shape (N, H, W), got {x.shape}")
    if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a positive number, got {sigma!r}")
    r = math.ceil(3 * sigma)
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k = (k / k.sum()).astype(np.float32)
    pad = np.pad(x, ((0, 0), (r, r), (r, r)))
    rows = sum(k[i] * pad[:, i:i + x.shape[1], :] for i in range(2 * r + 1))
    return sum(k[j] * rows[:, :, j:j + x.shape[2]] for j in range(2 * r + 1)).astype(np.float32)


__all__ = ["CONFIDENCE", "N_SAMPLES", "Quality", "blurred_images", "digit_entropy", "frechet_distance",
           "gaussian_stats", "mnist_quality", "noise_images", "reference_quality"]
