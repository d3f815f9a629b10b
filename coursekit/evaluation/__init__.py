"""One sample-quality metric for every MNIST model of the course (issue 19).

:func:`mnist_quality` scores images in [0, 1] with a small MNIST classifier trained on images
0–7,999 (``data/checkpoints/mnist_classifier.pt``, made by ``scripts/train_mnist_classifier.py``):
the Fréchet distance between its features on the images and on the held-out images
8,000–9,999, the share of confidently classified images and the entropy of the predicted
digit histogram. :func:`reference_quality` is the real-vs-real baseline.

Layer: above ``coursekit.training`` (it loads a checkpoint), below ``coursekit.lessons``.
"""

from .classifier import (
    CHECKPOINT,
    KIND,
    MnistClassifier,
    accuracy,
    as_unit_tensor,
    from_checkpoint,
    load_classifier,
    predict,
    save_classifier,
    train_classifier,
)
from .metric import (
    CONFIDENCE,
    N_SAMPLES,
    Quality,
    blurred_images,
    digit_entropy,
    frechet_distance,
    gaussian_stats,
    mnist_quality,
    noise_images,
    reference_quality,
)

__all__ = ["CHECKPOINT", "CONFIDENCE", "KIND", "N_SAMPLES", "MnistClassifier", "Quality", "accuracy",
           "as_unit_tensor", "blurred_images", "digit_entropy", "frechet_distance", "from_checkpoint",
           "gaussian_stats", "load_classifier", "mnist_quality", "noise_images", "predict", "reference_quality",
           "save_classifier", "train_classifier"]
