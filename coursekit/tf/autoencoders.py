"""Dense autoencoder and convolutional VAE (the TensorFlow tutorials the course follows).

VAE notation: encoder q(z|x) = N(z; μ(x), diag σ²(x)) with ``logvar = log σ²``; prior
p(z) = N(0, I); Bernoulli decoder p(x|z) with logits. Single-sample Monte Carlo ELBO,

    ELBO(x) ≈ log p(x|z) + log p(z) − log q(z|x),   z = μ + σ·ε,  ε ~ N(0, I)

(the reparameterization: the noise ε carries the randomness, so gradients flow to μ, σ).

Taught in: notebook 08.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from ..core.checks import positive_int
from .inputs import check_pixels


class Autoencoder(keras.Model):
    """x (28×28 in [0, 1]) → Dense(latent_dim, relu) → Dense(784, sigmoid) → x̂; trained with MSE."""

    def __init__(self, latent_dim: int = 64, shape: tuple[int, int] = (28, 28), **kw):
        super().__init__(**kw)
        self.latent_dim = positive_int(latent_dim, "latent_dim")
        shape = tuple(shape)
        self.encoder = keras.Sequential([
            layers.Input(shape), layers.Flatten(), layers.Dense(latent_dim, activation="relu"),
        ], name="encoder")
        self.decoder = keras.Sequential([
            layers.Input((latent_dim,)),
            layers.Dense(int(np.prod(shape)), activation="sigmoid"),
            layers.Reshape(shape),
        ], name="decoder")
        self.built = True  # both halves know their input shapes: the weights exist already

    def call(self, x):
        return self.decoder(self.encoder(x))


class CVAE(keras.Model):
    """Convolutional VAE: encoder Conv(32, s=2) → Conv(64, s=2) → Dense(2·latent) = [μ, log σ²];
    decoder Dense(7·7·32) → ConvT(64, s=2) → ConvT(32, s=2) → ConvT(1, s=1) = logits."""

    def __init__(self, latent_dim: int = 2, **kw):
        super().__init__(**kw)
        self.latent_dim = positive_int(latent_dim, "latent_dim")
        self.encoder = keras.Sequential([
            layers.Input(shape=(28, 28, 1)),
            layers.Conv2D(32, 3, strides=2, activation="relu"),  # 28 → 13
            layers.Conv2D(64, 3, strides=2, activation="relu"),  # 13 → 6
            layers.Flatten(),
            layers.Dense(latent_dim + latent_dim),  # no activation: μ and log σ² are unbounded
        ], name="encoder")
        self.decoder = keras.Sequential([
            layers.Input(shape=(latent_dim,)),
            layers.Dense(7 * 7 * 32, activation="relu"),
            layers.Reshape((7, 7, 32)),
            layers.Conv2DTranspose(64, 3, strides=2, padding="same", activation="relu"),  # 7 → 14
            layers.Conv2DTranspose(32, 3, strides=2, padding="same", activation="relu"),  # 14 → 28
            layers.Conv2DTranspose(1, 3, strides=1, padding="same"),  # logits of p(x|z)
        ], name="decoder")
        self.built = True  # both halves know their input shapes: the weights exist already

    def call(self, x):
        mean, logvar = self.encode(x)
        return self.decode(self.reparameterize(mean, logvar))

    def encode(self, x):
        """``(mean, logvar)`` of q(z|x), each ``(batch, latent_dim)``."""
        x = tf.convert_to_tensor(x, dtype=tf.float32)
        if x.shape.rank != 4 or tuple(x.shape[1:]) != (28, 28, 1):
            raise ValueError(f"CVAE.encode expects images of shape (batch, 28, 28, 1), got {tuple(x.shape)}")
        mean, logvar = tf.split(self.encoder(x), num_or_size_splits=2, axis=1)
        return mean, logvar

    def reparameterize(self, mean, logvar, eps=None):
        """z = μ + exp(½ log σ²)·ε with ε ~ N(0, I) (pass ``eps`` for a reproducible draw)."""
        if eps is None:
            eps = tf.random.normal(shape=tf.shape(mean))
        return eps * tf.exp(logvar * 0.5) + mean

    def decode(self, z, apply_sigmoid: bool = False):
        """Logits of p(x|z), or the pixel probabilities when ``apply_sigmoid``."""
        z = tf.convert_to_tensor(z, dtype=tf.float32)
        if z.shape.rank != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"CVAE.decode expects z of shape (batch, {self.latent_dim}), "
                             f"got {tuple(z.shape)}")
        logits = self.decoder(z)
        return tf.sigmoid(logits) if apply_sigmoid else logits

    def sample(self, eps=None, n: int = 100):
        """Decode ``eps`` (or ``n`` draws from the prior N(0, I)) into pixel probabilities."""
        if eps is None:
            eps = tf.random.normal(shape=(n, self.latent_dim))
        return self.decode(eps, apply_sigmoid=True)


def log_normal_pdf(sample, mean, logvar, raxis: int = 1):
    """log N(sample; mean, diag exp(logvar)), summed over axis ``raxis``:
    Σ −½[(s − μ)² e^{−logvar} + logvar + log 2π]."""
    log2pi = math.log(2.0 * math.pi)
    sample = tf.convert_to_tensor(sample)
    mean = tf.cast(mean, sample.dtype)
    logvar = tf.cast(logvar, sample.dtype)
    return tf.reduce_sum(-0.5 * ((sample - mean) ** 2 * tf.exp(-logvar) + logvar + log2pi), axis=raxis)


VAE_PIXELS = "the VAE's Bernoulli decoder needs x in [0, 1]: coursekit.tf.binarize(images) gives {0, 1}"


def elbo_terms(model: CVAE, x, eps=None) -> dict[str, tf.Tensor]:
    """Per-example terms of the single-sample ELBO: ``logpx_z``, ``logpz``, ``logqz_x``, ``elbo``.

    ``x``: float pixels in [0, 1], shape ``(batch, 28, 28, 1)`` (checked when not traced)."""
    check_pixels(x, "x", 0.0, 1.0, VAE_PIXELS)
    mean, logvar = model.encode(x)
    z = model.reparameterize(mean, logvar, eps)
    x_logit = model.decode(z)
    cross_ent = tf.nn.sigmoid_cross_entropy_with_logits(logits=x_logit, labels=x)
    logpx_z = -tf.reduce_sum(cross_ent, axis=[1, 2, 3])  # Bernoulli log-likelihood of the pixels
    logpz = log_normal_pdf(z, 0.0, 0.0)
    logqz_x = log_normal_pdf(z, mean, logvar)
    return {"logpx_z": logpx_z, "logpz": logpz, "logqz_x": logqz_x, "elbo": logpx_z + logpz - logqz_x}


def vae_loss(model: CVAE, x, eps=None):
    """−mean ELBO of the batch (nats per image): what the optimizer minimizes."""
    return -tf.reduce_mean(elbo_terms(model, x, eps)["elbo"])


def kl_to_standard_normal(mean, logvar):
    """KL(N(μ, diag σ²) ‖ N(0, I)) in closed form, per example: ½ Σ (μ² + σ² − 1 − log σ²)."""
    mean = tf.convert_to_tensor(mean, dtype=tf.float32)
    logvar = tf.convert_to_tensor(logvar, dtype=tf.float32)
    return 0.5 * tf.reduce_sum(mean**2 + tf.exp(logvar) - 1.0 - logvar, axis=1)


def vae_train_step(model: CVAE, optimizer, x, eps=None):
    """One optimizer step on −ELBO (:func:`vae_loss`) with ``tf.GradientTape``; returns the loss.

    The source notebook's ``train_step`` with ε passed in (``eps``, ``(batch, latent_dim)``), so
    two implementations can be compared on the same draw. Runs eagerly or inside a ``tf.function``."""
    with tf.GradientTape() as tape:
        loss = vae_loss(model, x, eps)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
    return loss


def iwae_bound(model: CVAE, x, k: int, eps=None):
    """Importance-weighted bound (Burda et al.) per example, with ``k`` samples z_k ~ q(z|x):
    log (1/k) Σ_k p(x|z_k) p(z_k) / q(z_k|x). ``k = 1`` is the single-sample ELBO; its
    expectation grows with ``k`` towards log p(x). ``eps``: ``(k, batch, latent_dim)`` or None."""
    k = positive_int(k, "k")
    check_pixels(x, "x", 0.0, 1.0, VAE_PIXELS)
    x = tf.convert_to_tensor(x, dtype=tf.float32)
    mean, logvar = model.encode(x)
    if eps is None:
        eps = tf.random.normal((k, tf.shape(mean)[0], model.latent_dim))
    eps = tf.convert_to_tensor(eps, dtype=tf.float32)
    if eps.shape.rank != 3 or eps.shape[0] != k or eps.shape[2] != model.latent_dim:
        raise ValueError(f"eps must have shape ({k}, batch, {model.latent_dim}), got {tuple(eps.shape)}")
    log_w = []
    for i in range(k):
        z = model.reparameterize(mean, logvar, eps[i])
        logpx_z = -tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(logits=model.decode(z), labels=x),
                                 axis=[1, 2, 3])
        log_w.append(logpx_z + log_normal_pdf(z, 0.0, 0.0) - log_normal_pdf(z, mean, logvar))
    return tf.reduce_logsumexp(tf.stack(log_w), axis=0) - math.log(k)


def make_vae_train_step(model: CVAE, optimizer, rng: tf.random.Generator | None = None):
    """A training step ``step(x) -> {"loss", "grad_norm"}``: checks that ``x`` holds pixels in
    [0, 1], then runs the ``tf.function`` ``step.compiled``. With ``rng`` (a checkpointable
    ``tf.random.Generator``) the ε draws resume exactly after a restart."""

    @tf.function
    def compiled(x):
        eps = None if rng is None else rng.normal(shape=(tf.shape(x)[0], model.latent_dim))
        with tf.GradientTape() as tape:
            loss = vae_loss(model, x, eps)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return {"loss": loss, "grad_norm": tf.linalg.global_norm(grads)}

    def step(x):
        check_pixels(x, "x", 0.0, 1.0, VAE_PIXELS)  # before the graph, where the values are known
        return compiled(x)

    step.compiled = compiled  # the tf.function itself
    return step


def evaluate_elbo(model: CVAE, x: np.ndarray, batch_size: int = 500, seed: int = 0) -> float:
    """Mean single-sample ELBO (nats per image) over ``x``, with a fixed ε seed.
    Use it only on images the model did not train on."""
    batch_size = positive_int(batch_size, "batch_size")
    check_pixels(x, "x", 0.0, 1.0, VAE_PIXELS)  # also refuses an empty array (a mean over nothing)
    rng = tf.random.Generator.from_seed(seed)
    total = 0.0
    for i in range(0, len(x), batch_size):
        xb = tf.convert_to_tensor(x[i : i + batch_size])
        eps = rng.normal(shape=(xb.shape[0], model.latent_dim))
        total += float(tf.reduce_sum(elbo_terms(model, xb, eps)["elbo"]))
    return total / len(x)
