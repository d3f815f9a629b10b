"""Lesson 09: the shipped toy video generator (``data/checkpoints/video_toy.pt``).

TAE reconstruction on held-out clips (digits from MNIST test images 8,000–9,999 only),
the training time recorded in the checkpoint, and sampling time per clip against the
number of Euler steps (NFE), with two simple statistics of the generated clips.
"""

from __future__ import annotations

import time

import torch

from coursekit.data.clips import moving_digits
from coursekit.video.pipeline import CHECKPOINT, load_video_model
from coursekit.video.tae import psnr


def clip_stats(x: torch.Tensor) -> tuple[float, float]:
    """Mean ink (mean pixel value) and mean |frame_{t+1} − frame_t| (how much things move)."""
    return float(x.mean()), float((x[:, 1:] - x[:, :-1]).abs().mean())


def run(quick: bool) -> str:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in notebook 09: tiny models, one thread beats a contended pool
    try:
        with torch.no_grad():
            return _run(quick)
    finally:
        torch.set_num_threads(threads)


def _run(quick: bool) -> str:
    model = load_video_model(CHECKPOINT)
    meta = model.meta
    n_eval = 64 if quick else 256
    held = torch.from_numpy(moving_digits(n_eval, seed=20_000, part="eval").clips)
    x_hat = torch.cat([model.tae(held[i:i + 32])[0] for i in range(0, n_eval, 32)])
    p = psnr(x_hat, held)
    mse = float((x_hat - held).pow(2).mean())
    black = float(psnr(torch.zeros_like(held), held).mean())
    ink, motion = clip_stats(held)
    lines = [
        "### Lección 09 — vídeo de juguete: TAE + flow matching latente",
        "",
        f"Checkpoint `{CHECKPOINT.name}` ({CHECKPOINT.stat().st_size / 1e6:.2f} MB). Data: {meta.get('data', '?')}.",
        "",
        "| quantity | value |",
        "|---|---|",
        f"| TAE PSNR, {n_eval} held-out clips (mean ± sd) | {float(p.mean()):.2f} ± {float(p.std()):.2f} dB |",
        f"| TAE MSE, held-out | {mse:.5f} |",
        f"| PSNR of an empty (black) clip, same clips | {black:.2f} dB |",
        f"| compression (pixels per latent value) | {16 * 32 * 32 / (4 * 8 * 8 * 8):.0f}× |",
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
        model.generate(1, n_steps=1)  # warm-up
        t0 = time.perf_counter()
        clips = model.generate(n, n_steps=nfe, seed=nfe)
        sec = (time.perf_counter() - t0) / n
        ink_g, motion_g = clip_stats(clips)
        lines.append(f"| {nfe} | {sec:.4f} | {1000 * sec / nfe:.2f} | {ink_g:.4f} | {motion_g:.4f} |")
    lines += ["", f"Sampling: batches of {n} clips, torch threads = {torch.get_num_threads()} "
                  "(decoding included; the machine was shared with other jobs)."]
    return "\n".join(lines)


if __name__ == "__main__":
    print(run(quick=True))
