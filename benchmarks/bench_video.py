"""Lesson 09: the shipped toy video generator (``data/checkpoints/video_toy.pt``).

TAE reconstruction on held-out clips (digits from MNIST test images 8,000–9,999 only),
the training time recorded in the checkpoint, and sampling time per clip against the
number of Euler steps (NFE), with two simple statistics of the generated clips
(:func:`coursekit.lessons.video.clip_stats`).
"""

from __future__ import annotations

import torch

from coursekit.data.clips import moving_digits
from coursekit.lessons import load_model
from coursekit.lessons import video as lesson
from coursekit.video.tae import compression_ratio, psnr


def run(quick: bool) -> str:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in notebook 09: tiny models, one thread beats a contended pool
    try:
        with torch.no_grad():
            return _run(quick)
    finally:
        torch.set_num_threads(threads)


def _run(quick: bool) -> str:
    ckpt = load_model(lesson.CHECKPOINT.name)
    model, meta = ckpt.model, ckpt.meta
    n_eval = 64 if quick else 256
    held = torch.from_numpy(moving_digits(n_eval, seed=20_000, part="eval").clips)
    x_hat = lesson.reconstruct(model.tae, held)
    p = psnr(x_hat, held)
    mse = float((x_hat - held).pow(2).mean())
    black = float(psnr(torch.zeros_like(held), held).mean())
    ink, motion = lesson.clip_stats(held)
    lines = [
        "### Lección 09 — vídeo de juguete: TAE + flow matching latente",
        "",
        f"Checkpoint `{ckpt.path.name}` ({ckpt.path.stat().st_size / 1e6:.2f} MB). Data: {meta.get('data', '?')}.",
        "",
        "| quantity | value |",
        "|---|---|",
        f"| TAE PSNR, {n_eval} held-out clips (mean ± sd) | {float(p.mean()):.2f} ± {float(p.std()):.2f} dB |",
        f"| TAE MSE, held-out | {mse:.5f} |",
        f"| PSNR of an empty (black) clip, same clips | {black:.2f} dB |",
        f"| compression (pixels per latent value) | {compression_ratio(model.tae):.0f}× |",
        f"| TAE training ({meta.get('tae_steps')} steps) | {meta.get('tae_train_seconds')} s |",
        f"| flow training ({meta.get('flow_steps')} steps) | {meta.get('flow_train_seconds')} s |",
        f"| training machine | {meta.get('machine', '?')} |",
        "",
        f"Real held-out clips: mean ink {ink:.4f}, mean |Δframe| {motion:.4f}.",
        "",
        "| Euler steps (NFE) | s per clip | ms per clip per NFE | mean ink | mean abs frame diff |",
        "|---|---|---|---|---|",
    ]
    n = 8 if quick else 32
    for nfe in ([1, 4, 16] if quick else [1, 2, 4, 8, 16, 32]):
        clips, sec = lesson.timed_generate(model, n, n_steps=nfe, seed=nfe)
        ink_g, motion_g = lesson.clip_stats(clips)
        lines.append(f"| {nfe} | {sec:.4f} | {1000 * sec / nfe:.2f} | {ink_g:.4f} | {motion_g:.4f} |")
    lines += ["", f"Sampling: batches of {n} clips, torch threads = {torch.get_num_threads()} "
                  "(decoding included; the machine was shared with other jobs)."]
    return "\n".join(lines)


if __name__ == "__main__":
    print(run(quick=True))
