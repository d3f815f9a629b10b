"""Lesson 08 (TensorFlow): autoencoder test MSE, VAE held-out ELBO after the notebook's
FULL-mode training, GAN time per epoch on this machine's cores, and TF import time.

Evaluation images are never trained on: offline, MNIST's test split is carved (images
0–7,999 train, 8,000–9,999 evaluate); online, the official split is used.
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _epoch_time(step_fn, sampler, n_steps: int) -> float:
    step_fn(sampler(0))  # trace the tf.function outside the timing
    t0 = time.perf_counter()
    for s in range(1, n_steps + 1):
        out = step_fn(sampler(s))
    float(out["loss"])  # wait for the last step
    return (time.perf_counter() - t0) / n_steps * sampler.steps_per_epoch


def run(quick: bool = False) -> str:
    t0 = time.perf_counter()
    import keras
    import numpy as np
    import tensorflow as tf

    import coursekit.tf as ckt

    t_import = time.perf_counter() - t0
    ckt.seed_everything(0)
    data = ckt.load_mnist_tf()
    n_tr = 2000 if quick else len(data.train_images)
    tr, ev = data.train_images[:n_tr], data.eval_images
    rows = [("import coursekit.tf (TensorFlow + Keras)", f"{t_import:.1f} s", "")]

    # Autoencoder: the course's 10 epochs with Keras fit (Adam, MSE, batch 32).
    ae_epochs = 2 if quick else 10
    ae = ckt.Autoencoder(64)
    ae.compile(optimizer="adam", loss=keras.losses.MeanSquaredError())
    t0 = time.perf_counter()
    ae.fit(ckt.to_unit(tr), ckt.to_unit(tr), epochs=ae_epochs, batch_size=32, verbose=0)
    t_ae = time.perf_counter() - t0
    x_ev = ckt.to_unit(ev)
    mse = float(np.mean((ae.predict(x_ev, verbose=0) - x_ev) ** 2))
    rows.append(("autoencoder (latente 64): MSE de evaluación", f"{mse:.4f}",
                 f"{ae_epochs} épocas, {n_tr} imágenes, {t_ae:.0f} s"))

    # VAE: the notebook's FULL setting (3,000 steps = 12 epochs of 8,000 images, batch 32, Adam 1e-4, latent 2).
    vae_epochs = 1 if quick else 12
    vae = ckt.CVAE(2)
    opt = keras.optimizers.Adam(1e-4)
    opt.build(vae.trainable_variables)
    rng = tf.random.Generator.from_seed(0)
    step = ckt.make_vae_train_step(vae, opt, rng)
    sampler = ckt.BatchSampler(ckt.binarize(tr), 32)
    t0 = time.perf_counter()
    for s in range(vae_epochs * sampler.steps_per_epoch):
        out = step(sampler(s))
    float(out["loss"])
    t_vae = time.perf_counter() - t0
    elbo = ckt.evaluate_elbo(vae, ckt.binarize(ev))
    rows.append(("VAE (latente 2): ELBO de evaluación (nats/imagen, 1 muestra)", f"{elbo:.1f}",
                 f"{vae_epochs} épocas, {n_tr} imágenes, {t_vae:.0f} s ({t_vae / vae_epochs:.1f} s/época)"))

    # GAN: time per epoch (on n_tr images) for the course's batch 256 and the CPU batch 64.
    for batch in (256, 64):
        keras.utils.set_random_seed(0)
        g, d = ckt.make_generator_model(), ckt.make_discriminator_model()
        go, do = keras.optimizers.Adam(1e-4), keras.optimizers.Adam(1e-4)
        go.build(g.trainable_variables)
        do.build(d.trainable_variables)
        gstep = ckt.make_gan_train_step(g, d, go, do, tf.random.Generator.from_seed(1))
        gs = ckt.BatchSampler(ckt.to_gan_range(tr), batch)
        n = 2 if quick else min(gs.steps_per_epoch, 20)
        per_epoch = _epoch_time(gstep, gs, n)
        per_step = per_epoch / gs.steps_per_epoch
        rows.append((f"DCGAN: tiempo por época, lote {batch}", f"{per_epoch:.0f} s",
                     f"{gs.steps_per_epoch} pasos/época sobre {n_tr} imágenes (medidos {n} pasos, "
                     f"{per_step:.2f} s/paso); época de 60.000 imágenes: ~{per_step * (60000 // batch) / 60:.0f} min"))

    lines = ["### Lección 08 — autoencoder, VAE y DCGAN (TensorFlow)", "",
             "| medida | valor | condiciones |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    lines += ["", f"Datos: {data.source}; la evaluación usa {len(ev)} imágenes que no se entrenaron. "
              f"Dispositivo: {ckt.device()}, {os.cpu_count()} núcleos (máquina compartida: tiempos pesimistas)."
              + (" Modo QUICK: tamaños reducidos." if quick else "")]
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    print(run(quick="--quick" in sys.argv))
