"""DCGAN of the TensorFlow tutorial the course follows (MNIST in [−1, 1]).

Generator G: noise z ~ N(0, I) in R^100 → Dense(7·7·256) → ConvT(128, s=1) → ConvT(64, s=2)
→ ConvT(1, s=2, tanh), with BatchNorm + LeakyReLU in between. Discriminator D: Conv(64, s=2)
→ Conv(128, s=2) (LeakyReLU, Dropout 0.3) → Dense(1) = a logit, "real" > 0 > "fake".

Losses (binary cross-entropy on logits, σ the sigmoid):
    L_D = −log σ(D(x)) − log(1 − σ(D(G(z))))      (real → 1, fake → 0)
    L_G = −log σ(D(G(z)))                          (the non-saturating generator loss)

Taught in: notebook 08.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from ..core.checks import positive_int
from .inputs import check_pixels

NOISE_DIM = 100
GAN_PIXELS = "the generator ends in tanh: coursekit.data.to_signed(images)[..., None] gives float32 in [-1, 1]"
_bce = keras.losses.BinaryCrossentropy(from_logits=True)


def make_generator_model(noise_dim: int = NOISE_DIM) -> keras.Sequential:
    """G: ``(batch, noise_dim)`` → images ``(batch, 28, 28, 1)`` in [−1, 1]."""
    return keras.Sequential([
        layers.Input(shape=(positive_int(noise_dim, "noise_dim"),)),
        layers.Dense(7 * 7 * 256, use_bias=False),  # BatchNorm follows: a bias would be redundant
        layers.BatchNormalization(),
        layers.LeakyReLU(),
        layers.Reshape((7, 7, 256)),
        layers.Conv2DTranspose(128, 5, strides=1, padding="same", use_bias=False),  # 7×7×128
        layers.BatchNormalization(),
        layers.LeakyReLU(),
        layers.Conv2DTranspose(64, 5, strides=2, padding="same", use_bias=False),  # 14×14×64
        layers.BatchNormalization(),
        layers.LeakyReLU(),
        layers.Conv2DTranspose(1, 5, strides=2, padding="same", use_bias=False, activation="tanh"),  # 28×28×1
    ], name="generator")


def make_discriminator_model(dropout: float = 0.3) -> keras.Sequential:
    """D: images ``(batch, 28, 28, 1)`` → one logit per image. ``dropout`` = 0 makes a training
    step deterministic (the notebook's check of the student's GAN step uses it)."""
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be a number in [0, 1), got {dropout!r}")
    return keras.Sequential([
        layers.Input(shape=(28, 28, 1)),
        layers.Conv2D(64, 5, strides=2, padding="same"),
        layers.LeakyReLU(),
        layers.Dropout(dropout),
        layers.Conv2D(128, 5, strides=2, padding="same"),
        layers.LeakyReLU(),
        layers.Dropout(dropout),
        layers.Flatten(),
        layers.Dense(1),
    ], name="discriminator")


def discriminator_loss(real_output, fake_output):
    """L_D: cross-entropy of "real = 1" on D(x) plus "fake = 0" on D(G(z)) (logits)."""
    return _bce(tf.ones_like(real_output), real_output) + _bce(tf.zeros_like(fake_output), fake_output)


def generator_loss(fake_output):
    """L_G: G wins when D labels its images as real (= 1)."""
    return _bce(tf.ones_like(fake_output), fake_output)


def gan_train_step(generator, discriminator, generator_optimizer, discriminator_optimizer, images, noise):
    """One step of the source notebook's ``train_step`` with the noise passed in: G(noise), D on the
    real and the fake images, two ``GradientTape``s, one Adam (or any optimizer) step per player.
    Returns ``(gen_loss, disc_loss)``. Runs eagerly or inside a ``tf.function``."""
    gen_loss, disc_loss, _ = _gan_update(generator, discriminator, generator_optimizer, discriminator_optimizer,
                                         images, noise)
    return gen_loss, disc_loss


def _gan_update(generator, discriminator, generator_optimizer, discriminator_optimizer, images, noise):
    """The step itself; also returns both players' gradients (for the gradient norm the training logs)."""
    with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
        generated_images = generator(noise, training=True)
        real_output = discriminator(images, training=True)
        fake_output = discriminator(generated_images, training=True)
        gen_loss = generator_loss(fake_output)
        disc_loss = discriminator_loss(real_output, fake_output)
    g_grads = gen_tape.gradient(gen_loss, generator.trainable_variables)
    d_grads = disc_tape.gradient(disc_loss, discriminator.trainable_variables)
    generator_optimizer.apply_gradients(zip(g_grads, generator.trainable_variables, strict=True))
    discriminator_optimizer.apply_gradients(zip(d_grads, discriminator.trainable_variables, strict=True))
    return gen_loss, disc_loss, g_grads + d_grads


def make_gan_train_step(generator, discriminator, generator_optimizer, discriminator_optimizer,
                        rng: tf.random.Generator | None = None, noise_dim: int = NOISE_DIM):
    """A training step on a batch of real images (float, in [−1, 1], checked before the
    ``tf.function`` ``step.compiled`` runs): both players take one Adam step.
    Returns ``{"loss": gen_loss + disc_loss, "gen_loss", "disc_loss", "grad_norm"}``."""

    @tf.function
    def compiled(images):
        shape = (tf.shape(images)[0], noise_dim)
        noise = tf.random.normal(shape) if rng is None else rng.normal(shape)
        gen_loss, disc_loss, grads = _gan_update(generator, discriminator, generator_optimizer,
                                                 discriminator_optimizer, images, noise)
        return {"loss": gen_loss + disc_loss, "gen_loss": gen_loss, "disc_loss": disc_loss,
                "grad_norm": tf.linalg.global_norm(grads)}

    def step(images):
        check_pixels(images, "images", -1.0, 1.0, GAN_PIXELS)  # before the graph, where the values are known
        return compiled(images)

    step.compiled = compiled  # the tf.function itself
    return step


def generate_images(generator, noise) -> tf.Tensor:
    """G(noise) in inference mode, mapped back to [0, 1] for display."""
    return (generator(noise, training=False) + 1.0) / 2.0
