"""Lesson 08 (TensorFlow): autoencoder MSE, VAE held-out ELBO at the notebook's FULL setting,
the DCGAN's time per step by phase, oneDNN on and off, and TensorFlow's import time.

Everything is built by ``coursekit.lessons.autoencoders`` (the notebook's recipes). Each
timing is given as wall time and as CPU time of this process (all its threads): on a shared
machine the wall time grows with the other processes' load, the CPU time much less. On an idle
machine, wall ≈ CPU / (cores actually used).

Evaluation images are never trained on: offline, MNIST's test split is carved (images
0–7,999 train, 8,000–9,999 evaluate); online, the official split is used.

    python benchmarks/bench_tf.py [--quick]          # the section, as run.py writes it
    python benchmarks/bench_tf.py --gan-step 64 20   # one JSON line: the full GAN step (used for oneDNN on/off)
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _median_times(fns: dict, batches, n: int) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds of each ``fn(batch)``, the functions interleaved step by step so
    that a change in the machine's load hits them all alike. Each is called once first (trace)."""
    import numpy as np

    for fn in fns.values():
        float(fn(batches(0)))
    samples = {name: ([], []) for name in fns}
    for s in range(1, n + 1):
        x = batches(s)
        for name, fn in fns.items():
            w0, c0 = time.perf_counter(), _cpu()
            float(fn(x))  # float() waits for the result
            samples[name][0].append(time.perf_counter() - w0)
            samples[name][1].append(_cpu() - c0)
    return {name: (float(np.median(w)), float(np.median(c))) for name, (w, c) in samples.items()}


def gan_step_phases(gan, n: int) -> dict[str, tuple[float, float]]:
    """Split the DCGAN step: forward (G(z), D on real and fake, both losses), + backward (the two
    tapes' gradients), + optimizer (the two Adam updates: the recipe's own ``train_step``)."""
    import tensorflow as tf

    import coursekit.tf as ckt

    g, d, rng = gan.generator, gan.discriminator, gan.rng

    def losses(images):
        fake = g(rng.normal((tf.shape(images)[0], ckt.NOISE_DIM)), training=True)
        real_out, fake_out = d(images, training=True), d(fake, training=True)
        return ckt.generator_loss(fake_out), ckt.discriminator_loss(real_out, fake_out)

    @tf.function
    def forward(images):
        gen_loss, disc_loss = losses(images)
        return gen_loss + disc_loss

    @tf.function
    def forward_backward(images):
        with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
            gen_loss, disc_loss = losses(images)
        grads = (gen_tape.gradient(gen_loss, g.trainable_variables)
                 + disc_tape.gradient(disc_loss, d.trainable_variables))
        return tf.linalg.global_norm(grads)

    t = _median_times({"forward": forward, "forward_backward": forward_backward,
                       "step": lambda x: gan.train_step(x)["loss"]}, gan.sampler, n)
    return {"forward": t["forward"],
            "backward": tuple(b - a for a, b in zip(t["forward"], t["forward_backward"])),
            "optimizer": tuple(b - a for a, b in zip(t["forward_backward"], t["step"])),
            "step": t["step"]}


def _gan_step_only(batch: int, n: int) -> None:
    """``--gan-step``: one JSON line with the full step's median wall/CPU seconds and the TF settings."""
    import numpy as np

    from coursekit.lessons import autoencoders as lesson

    # isort: split
    import coursekit.tf as ckt

    images = np.random.default_rng(0).integers(0, 256, (max(256, batch), 28, 28), dtype=np.uint8)
    gan = lesson.GanRun(tempfile.mkdtemp(), images, batch_size=batch)
    wall, cpu = _median_times({"step": lambda x: gan.train_step(x)["loss"]}, gan.sampler, n)["step"]
    print(json.dumps({"wall": wall, "cpu": cpu, **ckt.runtime_info()}))


def _onednn_rows(batches: tuple[int, ...], n: int) -> list[tuple[str, str, str]]:
    rows = []
    for batch in batches:
        for flag in ("0", "1"):
            env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": flag, "TF_CPP_MIN_LOG_LEVEL": "2"}
            out = subprocess.run([sys.executable, __file__, "--gan-step", str(batch), str(n)], env=env,
                                 capture_output=True, text=True, check=True, cwd=HERE.parent)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append((f"DCGAN: paso completo, lote {batch}, oneDNN {'sí' if r['onednn'] else 'no'}",
                         f"{r['wall']:.3f} s", f"CPU {r['cpu']:.3f} s/paso (mediana de {n} pasos)"))
    return rows


def run(quick: bool = False) -> str:
    t0 = time.perf_counter()
    from coursekit.lessons import autoencoders as lesson

    # isort: split
    import keras
    import numpy as np

    import coursekit.tf as ckt
    from coursekit.data import to_unit

    t_import = time.perf_counter() - t0
    ckt.seed_everything(0)
    data = ckt.load_mnist_tf()
    n_tr = 2000 if quick else len(data.train_images)
    tr, ev = data.train_images[:n_tr], data.eval_images
    rows = [("import coursekit.lessons.autoencoders (TensorFlow + Keras)", f"{t_import:.1f} s", "")]

    # Autoencoder: the course's 10 epochs with Keras fit (Adam, MSE, batch 32).
    ae_epochs = 2 if quick else 10
    ae = ckt.Autoencoder(64)
    ae.compile(optimizer="adam", loss=keras.losses.MeanSquaredError())
    w0 = time.perf_counter()
    ae.fit(to_unit(tr), to_unit(tr), epochs=ae_epochs, batch_size=32, verbose=0)
    t_ae = time.perf_counter() - w0
    x_ev = to_unit(ev)
    mse = float(np.mean((ae.predict(x_ev, verbose=0) - x_ev) ** 2))
    rows.append(("autoencoder (latente 64): MSE de evaluación", f"{mse:.4f}",
                 f"{ae_epochs} épocas, {n_tr} imágenes, {t_ae:.0f} s"))

    with tempfile.TemporaryDirectory() as tmp:
        # VAE: the notebook's FULL setting (3,000 steps of batch 32 = 12 epochs of 8,000 images, latent 2).
        keras.utils.set_random_seed(0)
        vae = lesson.VaeRun(Path(tmp) / "vae", ckt.binarize(tr), checkpoint_every=250)
        n_vae = 2 * vae.sampler.steps_per_epoch if quick else 3000
        w0, c0 = time.perf_counter(), _cpu()
        vae.fit(n_vae, progress=False)
        t_vae, c_vae = time.perf_counter() - w0, _cpu() - c0
        elbo = ckt.evaluate_elbo(vae.model, ckt.binarize(ev))
        per = vae.run.timings["step"] / vae.run.timed_steps
        rows.append(("VAE (latente 2): ELBO de evaluación (nats/imagen, 1 muestra)", f"{elbo:.1f}",
                     f"{n_vae} pasos de lote 32 sobre {n_tr} imágenes en {t_vae:.0f} s (CPU {c_vae:.0f} s; "
                     f"paso {per * 1e3:.0f} ms, traza {vae.run.timings['trace']:.1f} s)"))

        # DCGAN: the recipe's loop, timed by phase (TrainingRun.timings), at the notebook's CPU batch.
        n_gan = 6 if quick else 40
        gan = lesson.GanRun(Path(tmp) / "gan", tr, batch_size=32, checkpoint_every=n_gan // 2, frame_every=n_gan // 4)
        gan.fit(n_gan, progress=False)
        split = gan_step_phases(gan, 3 if quick else 15)
    timings, k = gan.run.timings, gan.run.timed_steps
    phase_rows = [
        ("datos (BatchSampler)", timings["data"] / k, None, "por paso"),
        ("forward: G(z), D(x), D(G(z)), pérdidas", *split["forward"], "por paso (mediana)"),
        ("backward: dos GradientTape", *split["backward"], "por paso (diferencia de medianas)"),
        ("optimizador: dos Adam", *split["optimizer"], "por paso (diferencia de medianas)"),
        ("paso completo (train_step)", *split["step"], "por paso (mediana)"),
        ("registro: float(), historial, barra", timings["log"] / k, None, "por paso"),
        ("fotograma (G + mosaico + PNG)", timings["callback"] / (n_gan // gan.frame_every), None,
         f"por fotograma (aquí uno cada {gan.frame_every} pasos; el notebook, uno cada gan_steps // 40)"),
        ("checkpoint (2 modelos + 2 Adam)", timings["checkpoint"] / 2, None,
         "por checkpoint (el notebook, uno cada gan_steps // 10)"),
        ("traza de la tf.function (primer paso)", timings["trace"], None, "una vez por GanRun"),
    ]
    info = ckt.runtime_info()
    lines = ["### Lección 08 — autoencoder, VAE y DCGAN (TensorFlow)", "",
             "| medida | valor | condiciones |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    lines += ["", f"DCGAN, lote 32 (el de CPU del notebook), {n_gan} pasos de `GanRun.fit` y pasos sueltos "
              "para separar forward / backward / optimizador:", "",
              "| fase | reloj (ms) | CPU (ms) | |", "|---|---|---|---|"]
    lines += [f"| {name} | {w * 1e3:.1f} | {'' if c is None else f'{c * 1e3:.1f}'} | {note} |"
              for name, w, c, note in phase_rows]
    onednn = _onednn_rows((32,) if quick else (32, 64), 3 if quick else 10)
    lines += ["", "oneDNN apagado (lo que TensorFlow hace por defecto en esta CPU) y encendido "
              "(`TF_ENABLE_ONEDNN_OPTS=1`, lo que fija `coursekit.tf`), un proceso cada uno:", "",
              "| medida | reloj | condiciones |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in onednn]
    lines += ["", f"Datos: {data.source}; la evaluación usa {len(ev)} imágenes que no se entrenaron. "
              f"TensorFlow {info['tensorflow']}, Keras {info['keras']}, oneDNN {'sí' if info['onednn'] else 'no'}, "
              f"hilos inter/intra-op {info['inter_op_threads']}/{info['intra_op_threads']} (0 = los elige TF), "
              f"{info['cores']} núcleos visibles, dispositivo {info['device']}."
              + (" Modo QUICK: tamaños reducidos." if quick else "")]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    if "--gan-step" in sys.argv:
        i = sys.argv.index("--gan-step")
        _gan_step_only(int(sys.argv[i + 1]), int(sys.argv[i + 2]))
    else:
        print(run(quick="--quick" in sys.argv))
