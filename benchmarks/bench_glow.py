"""Lesson 03 (Glow): held-out bits/dim of the shipped checkpoint, the permutation ablation
(learned 1×1 conv vs fixed reverse vs random shuffle, same budget) and widget latency.

Offline the MNIST numbers are measured on test-split images 8,000–9,999; every model here
was trained on test-split images 0–7,999 only.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from coursekit.data import mnist_splits
from coursekit.flows.glow import glow_2d
from coursekit.lessons import glow as lesson
from coursekit.lessons import load_model
from coursekit.widgets.core import measure_latency
from coursekit.widgets.glow_steps import glow_steps_playground, temperature_playground

OUT = Path(__file__).parent / "out"


def _ablation_plot(result, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from coursekit.training import smooth

    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for perm, curve in result.curves.items():
        ax.plot(smooth(curve, max(1, len(curve) // 20)), label=f"{perm}: {result.heldout_bpd[perm]:.3f} bits/dim")
    ax.set(xlabel="paso", ylabel="NLL (bits/dim, entrenamiento)", title="Ablación de la mezcla de canales")
    ax.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def run(quick: bool = False) -> str:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small models: one thread is as fast and does not thrash a shared box
    try:
        return _run(quick)
    finally:
        torch.set_num_threads(threads)


def _run(quick: bool) -> str:
    os.environ.setdefault("COURSEKIT_DATA", str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    torch.manual_seed(0)
    data = mnist_splits()
    n_eval = 300 if quick else len(data.eval_images)
    lines = ["### Lesson 03 — Glow on MNIST", "", f"Data: {data.source}. Bits/dim on {n_eval} held-out images.", ""]

    try:
        ckpt = load_model("glow_mnist.pt")
    except FileNotFoundError:
        ckpt = None
    lines += ["| model | steps | training time | held-out bits/dim | file |", "|---|---|---|---|---|"]
    if ckpt is not None:
        flow, meta, cfg = ckpt.model, ckpt.meta, ckpt.config
        bpd = lesson.evaluate_bpd(flow, data.eval_images[:n_eval])
        train_time = meta.get("train_wall_minutes", round(meta.get("train_seconds_this_call", 0) / 60, 1))
        lines.append(f"| checkpoint L={cfg['levels']} K={cfg['flow_steps']} hidden={cfg['hidden']} "
                     f"({sum(p.numel() for p in flow.parameters()):,} params) | {meta['n_steps']} | "
                     f"{train_time} min (shared CPU) | {bpd:.3f} | {ckpt.path.stat().st_size / 1e6:.2f} MB |")
    else:
        lines.append("| checkpoint | – | – | missing (run scripts/train_glow.py) | – |")

    n_steps, seeds = (20, (0,)) if quick else (2000, (0, 1))
    t0 = time.perf_counter()
    runs = [lesson.permutation_ablation(data.train_images, data.eval_images[:n_eval], n_steps=n_steps, batch=32,
                                        hidden=16, seed=seed, progress=False) for seed in seeds]
    _ablation_plot(runs[0], OUT / "glow_ablation.png")
    lines += ["", f"Ablation (L=2, K=4, hidden=16, batch 32, {n_steps} steps each; per seed the same initial "
              "coupling weights and batches for every variant):", "",
              "| channel mixing | train bits/dim (last 10%, seed 0) | held-out bits/dim per seed | mean | seconds |",
              "|---|---|---|---|---|"]
    for perm, curve in runs[0].curves.items():
        tail = curve[-max(1, len(curve) // 10):]
        per_seed = [r.heldout_bpd[perm] for r in runs]
        lines.append(f"| {perm} | {sum(tail) / len(tail):.3f} | {' / '.join(f'{v:.3f}' for v in per_seed)} | "
                     f"{sum(per_seed) / len(per_seed):.3f} | {sum(r.seconds[perm] for r in runs):.0f} |")
    lines.append(f"\nCurves (seed 0): `benchmarks/out/glow_ablation.png` ({time.perf_counter() - t0:.0f} s in all).")

    lines += ["", "| playground | updates | median (ms) | p95 (ms) |", "|---|---|---|---|"]
    flow2d = glow_2d(2, flow_steps=6, hidden=64)
    toy = torch.randn(1000, 2)
    flow2d.inverse(toy)
    pg = glow_steps_playground(flow2d, toy, n_points=800, grid_size=100)
    n_layers = pg.controls["layer"].max
    lat = measure_latency(pg.update, [{"layer": k % (n_layers + 1)} for k in range(2 * n_layers + 2)])
    lines.append(f"| layer by layer (2-D, {n_layers} layers) | {lat.n} | {lat.median_ms:.1f} | {lat.p95_ms:.1f} |")
    if ckpt is not None:
        pt = temperature_playground(flow, n=36, n_temperatures=21)
        temps = pt.controls["temperature"].options
        lat = measure_latency(pt.update, [{"temperature": temps[i % len(temps)]} for i in range(42)])
        lines.append(f"| temperature (36 MNIST samples) | {lat.n} | {lat.median_ms:.1f} | {lat.p95_ms:.1f} |")
    lines += ["", "Target: median ≤ 50 ms per update. Timings on a shared 2-core machine whose load varies "
              "(1 torch thread)."]
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    print(run(quick="--quick" in sys.argv))
