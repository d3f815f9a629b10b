"""The course's generative models side by side on one yardstick (issue 19): the MNIST sample-quality
metric of ``coursekit.evaluation`` (Fréchet distance of classifier features to the held-out images,
share of confidently classified samples, entropy of the predicted digits), with each model's
likelihood where it has one, its sampling time and its parameter count.

Every model here was trained on MNIST test-split images 0–7,999 only (offline, the test split is
carved); the metric compares against images 8,000–9,999. Models: Glow (03, ``glow_mnist.pt``) at
T = 1 and at the best T of a sweep, flow matching (07, ``fm_mnist.pt``), the VAE and the DCGAN of
08 (TensorFlow: the VAE trained here with the notebook's recipe at its FULL step count; the DCGAN
as shipped, ``dcgan_generator.npz``), and the frames of 09's video model (``video_toy.pt``), plus
the real-vs-real baseline, blurred real images and uniform noise.

    python benchmarks/run.py --only quality [--quick]
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
TEMPERATURES = (0.5, 0.6, 0.7, 0.8, 0.9)  # the sweep for the best T < 1
N_SWEEP = 300
VAE_STEPS = 3000  # notebook 08, FULL: 3,000 steps of batch 32 (12 epochs of 8,000 images)
VIDEO_EULER_STEPS = 8  # VideoModel.generate's default


def _fmt(q) -> str:
    return f"{q.frechet:.1f} | {q.confident_share:.3f} | {q.digit_entropy:.2f}"


def _params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def frames_to_mnist(clips) -> np.ndarray:
    """Video frames ``(N, T, H, W)`` in [0, 1] → MNIST-like images ``(N·T, 28, 28)``: a 14×14 window
    centred on each frame's ink centroid (the clips' digits are MNIST pooled 2×2 to 14×14), kept
    inside the canvas, upsampled 2× bilinearly. Real clip frames go through the same mapping, so
    the video rows compare with their own real-frames row only."""
    x = torch.as_tensor(np.asarray(clips, dtype=np.float32))
    frames = x.reshape(-1, *x.shape[-2:])
    h, w = frames.shape[-2:]
    mass = frames.sum((1, 2)).clamp_min(1e-8)
    cy = (frames.sum(2) * torch.arange(h)).sum(1) / mass
    cx = (frames.sum(1) * torch.arange(w)).sum(1) / mass
    y0 = (cy - 7).round().clamp(0, h - 14).long()
    x0 = (cx - 7).round().clamp(0, w - 14).long()
    crops = torch.stack([f[a:a + 14, b:b + 14] for f, a, b in zip(frames, y0, x0)])
    up = torch.nn.functional.interpolate(crops[:, None], size=(28, 28), mode="bilinear", align_corners=False)
    return up[:, 0].clamp(0, 1).numpy()


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def run(quick: bool = False) -> str:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small models on a shared box
    try:
        return _run(quick)
    finally:
        torch.set_num_threads(threads)


def _run(quick: bool) -> str:
    os.environ.setdefault("COURSEKIT_DATA", str(HERE.parents[1] / "shared" / "data"))
    from coursekit.data import mnist_splits, moving_digits, to_unit
    from coursekit.evaluation import (
        N_SAMPLES,
        blurred_images,
        load_classifier,
        mnist_quality,
        noise_images,
        reference_quality,
    )
    from coursekit.flows.dequantize import sample_at_temperature
    from coursekit.lessons import flow_matching as fm_lesson
    from coursekit.lessons import glow as glow_lesson
    from coursekit.lessons import load_model
    from coursekit.matching import euler_sample

    n = 500 if quick else N_SAMPLES
    data = mnist_splits(allow_download=False)
    _, clf_meta = load_classifier()
    rows: list[str] = []

    def row(name, q, likelihood="—", seconds=None, params="—", note=""):
        per = "—" if seconds is None else f"{1000 * seconds / q.n:.2f}"
        p = params if isinstance(params, str) else f"{params:,}"
        rows.append(f"| {name} | {_fmt(q)} | {likelihood} | {per} | {p} | {note} |")

    row("imágenes reales 0–1.999 (referencia)", reference_quality(n), note="el mejor valor alcanzable")
    row("imágenes reales 0–1.999 desenfocadas (σ = 1,5 px)",
        mnist_quality(blurred_images(to_unit(data.train_images[:n]), 1.5)), note="trazos borrosos")
    row("ruido uniforme", mnist_quality(noise_images(n, seed=0)), note="el peor caso")

    # --- Glow (03)
    glow = load_model("glow_mnist.pt")
    flow = glow.model
    n_bpd = 300 if quick else len(data.eval_images)
    bpd = glow_lesson.evaluate_bpd(flow, data.eval_images[:n_bpd])

    def glow_samples(T, count):
        with torch.no_grad():
            return torch.cat([sample_at_temperature(flow, len(c), T, generator=torch.Generator().manual_seed(i))
                              for i, c in enumerate(torch.arange(count).split(500))])

    # the sweep on N_SWEEP samples per T, then T = 1 and the best T < 1 on n samples
    sweep = {T: mnist_quality(glow_samples(T, N_SWEEP)).frechet for T in ((0.7,) if quick else TEMPERATURES)}
    best_t = min(sweep, key=sweep.get)
    glow_bpd = f"{bpd:.3f} bits/dim ({n_bpd} imágenes)"
    for T in (1.0, best_t):
        x, sec = _timed(lambda T=T: glow_samples(T, n))
        note = ("`glow_mnist.pt`" if T == 1.0 else f"la T < 1 de menor Fréchet en un barrido con {N_SWEEP} muestras: "
                + ", ".join(f"T = {t}: {f:.0f}" for t, f in sweep.items()))
        row(f"Glow (03), T = {T:g}", mnist_quality(x), glow_bpd, sec, _params(flow), note)

    # --- flow matching (07)
    fm = load_model("fm_mnist.pt")
    field = fm.model
    with torch.no_grad():
        z = torch.randn(n, 1, 28, 28, generator=torch.Generator().manual_seed(0))
        x, sec = _timed(lambda: torch.cat([euler_sample(field, c, 32) for c in z.split(500)]))
    row("flow matching (07), Euler 32 pasos", mnist_quality(fm_lesson.signed_to_display(x)),
        f"CFM por píxel {fm.meta['heldout_cfm']:.3f} (no es una verosimilitud)", sec, _params(field),
        f"`fm_mnist.pt`, {fm.meta['steps']} pasos")

    # --- video (09): frames mapped to 28×28
    video = load_model("video_toy.pt")
    n_clips = max(1, n // 16)
    with torch.no_grad():
        clips, sec = _timed(lambda: video.model.generate(n_clips, n_steps=VIDEO_EULER_STEPS, seed=0))
    gen_frames = frames_to_mnist(clips.cpu().numpy())
    real_clips = moving_digits(n_clips, part="eval", seed=0).clips
    row(f"vídeo (09): fotogramas generados (Euler {VIDEO_EULER_STEPS})", mnist_quality(gen_frames), "—", sec,
        _params(video.model.tae) + _params(video.model.dit), "`video_toy.pt`; solo comparable con la fila siguiente")
    row("vídeo (09): fotogramas de clips reales (misma conversión)", mnist_quality(frames_to_mnist(real_clips)),
        note="dígitos 8.000–9.999 reducidos a 14×14 y ampliados: la referencia del vídeo")

    # --- lesson 08 (TensorFlow)
    rows += _tf_rows(n, quick, data, mnist_quality)

    lines = ["### Calidad de muestras en MNIST: todos los modelos con la misma vara de medir", "",
             f"Clasificador `mnist_classifier.pt` ({'; '.join(clf_meta['commands'])}): exactitud "
             f"{clf_meta['eval_accuracy']:.4f} en las imágenes 8.000–9.999 (entrenado con 0–7.999). "
             f"Cada fila puntúa {n} imágenes contra las {N_SAMPLES} de evaluación (8.000–9.999): distancia "
             "de Fréchet entre las 64 activaciones de la capa oculta (menor es mejor; depende del número de "
             "imágenes), fracción clasificada con probabilidad ≥ 0,9, y entropía (bits) del histograma de "
             "dígitos predichos (log₂ 10 ≈ 3,32 si los diez aparecen por igual). Tiempo de muestreo: reloj "
             "por imagen (en el vídeo, por fotograma) en esta máquina compartida, 1 hilo de PyTorch. La "
             "confianza sola no basta: el clasificador lee el ruido uniforme como un único dígito con "
             "seguridad; la distancia de Fréchet y la entropía lo delatan.", "",
             "| modelo | Fréchet | confianza ≥ 0,9 | entropía (bits) | verosimilitud | ms por imagen "
             "| parámetros | nota |", "|---|---|---|---|---|---|---|---|", *rows]
    return "\n".join(lines)


def _tf_rows(n, quick, data, mnist_quality) -> list[str]:
    from coursekit.lessons import autoencoders as lesson  # TensorFlow from here on

    # isort: split
    import tensorflow as tf

    import coursekit.tf as ckt
    from coursekit.tf.gan import NOISE_DIM, generate_images
    from coursekit.tf.pretrained import load_generator

    rows = []
    steps = 150 if quick else VAE_STEPS
    with tempfile.TemporaryDirectory(prefix="bench_quality_") as tmp:
        ckt.seed_everything(0)
        vae = lesson.VaeRun(Path(tmp) / "vae", ckt.binarize(data.train_images), latent_dim=2, batch_size=32,
                            checkpoint_every=steps)
        _, train_sec = _timed(lambda: vae.fit(steps, progress=False))
        elbo = ckt.evaluate_elbo(vae.model, ckt.binarize(data.eval_images))
        eps = tf.random.stateless_normal((n, 2), seed=(0, 0))
        x, sec = _timed(lambda: vae.model.sample(eps).numpy()[..., 0])
        rows.append(f"| VAE (08), latente 2, {steps} pasos (receta del cuaderno, entrenado aquí en "
                    f"{train_sec:.0f} s) | {_fmt(mnist_quality(x))} | ELBO {elbo:.1f} nats/imagen "
                    f"(binarizadas, {len(data.eval_images)} imágenes) | {1000 * sec / n:.2f} | "
                    f"{vae.model.count_params():,} | medias de Bernoulli del decodificador |")
    from coursekit.tf.pretrained import GENERATOR_FILE, GeneratorFileError, expected_sha256, search_dirs

    checked = ""
    try:
        g = load_generator()  # the shipped file, its SHA-256 checked against the manifest
    except GeneratorFileError as err:
        found = [d / GENERATOR_FILE for d in search_dirs() if (d / GENERATOR_FILE).is_file()]
        if not found or expected_sha256() is not None:
            return rows + [f"| DCGAN (08) | no disponible: {err} | | | | | | |"]
        g, checked = load_generator(found[0], verify=False), "; SHA-256 aún no registrado en el manifiesto"
    meta = g.coursekit_meta
    noise = tf.random.stateless_normal((n, NOISE_DIM), seed=(0, 0))
    x, sec = _timed(lambda: np.clip(generate_images(g, noise).numpy()[..., 0], 0, 1))
    commands = "; ".join(meta["commands"])
    rows.append(f"| DCGAN (08), {meta['steps']} pasos de lote {meta['batch_size']} | {_fmt(mnist_quality(x))} | — | "
                f"{1000 * sec / n:.2f} | {g.count_params():,} | `dcgan_generator.npz` ({commands}{checked}) |")
    for step, q in sorted(meta.get("quality", {}).items(), key=lambda kv: int(kv[0])):
        if int(step) != meta["steps"]:
            same = " (la receta del cuaderno en CPU)" if (int(step), meta["batch_size"]) == (1000, 32) else ""
            rows.append(f"| DCGAN (08), {step} pasos de lote {meta['batch_size']}{same} | "
                        f"{q['frechet']:.1f} | {q['confident_share']:.3f} | {q['digit_entropy']:.2f} | — | — | "
                        f"{g.count_params():,} | medido por `scripts/train_dcgan.py` en la misma ejecución, "
                        f"{q['n']} muestras |")
    return rows


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(HERE.parent))
    print(run(quick="--quick" in sys.argv))
