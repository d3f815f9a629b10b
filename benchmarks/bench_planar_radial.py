"""Lesson 02: reverse KL / ELBO per (energy, K, layer type) and the playground's update latency.

The KL table scores the flows of ``data/checkpoints/vi_planar_radial.pt`` (trained by
``scripts/train_vi.py``, rebuilt by ``coursekit.lessons.load_model``) again with fresh
samples; ``quick`` uses fewer samples and a 100 × 100 playground grid instead of 200 × 200.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CHECKPOINT = ROOT / "data" / "checkpoints" / "vi_planar_radial.pt"


def _kl_table(quick: bool) -> str:
    from coursekit.flows.vi import log_partition
    from coursekit.lessons import load_model
    from coursekit.lessons.planar_radial import score_reverse_kl

    ckpt = load_model(CHECKPOINT)
    models, meta = ckpt.model, ckpt.meta
    n = 5_000 if quick else 50_000
    rows = ["| energy | K | layer | KL(q‖p) (nats) | ELBO | log Z | train s (saved) |",
            "|---|---|---|---|---|---|---|"]
    log_z: dict[str, float] = {}
    for key in sorted(models, key=lambda k: (models[k].energy, models[k].kind, models[k].n_layers)):
        m = models[key]
        log_z.setdefault(m.energy, log_partition(m.energy))
        torch.manual_seed(0)
        s = score_reverse_kl(m.flow, m.energy, n=n, log_z=log_z[m.energy])
        rows.append(f"| {m.energy} | {m.n_layers} | {m.kind} | {s.kl:.3f} ± {s.stderr:.3f} | {s.elbo:.3f} | "
                    f"{s.log_z:.3f} | {m.seconds:.0f} |")
    commands = meta.get("commands") or ["python scripts/train_vi.py"]
    head = (f"Flows trained by {' then '.join(f'`{c}`' for c in commands)} (the file's `meta[\"commands\"]`; "
            f"{meta.get('steps')} Adam steps, "
            f"batch {meta.get('batch')}, annealing over {meta.get('anneal')} steps, cosine decay), scored "
            f"again here with {n:,} fresh samples (± = Monte Carlo standard error). Training seconds were "
            "measured on the shared 2-core machine under load.\n\n")
    return head + "\n".join(rows)


def _latency_table(quick: bool) -> str:
    from coursekit.widgets.core import measure_latency
    from coursekit.widgets.planar_radial import planar_radial_playground

    size = 100 if quick else 200
    pg = planar_radial_playground(grid_size=size)
    rows = ["| layers | K | median ms (wall) | p95 ms (wall) | median CPU ms |", "|---|---|---|---|---|"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # CPU time of one thread: a load-independent measure on a shared machine
    try:
        for kind, name, values in [("planar", "u1", np.linspace(-1.5, 1.5, 20)),
                                   ("radial", "beta", np.linspace(-0.3, 2.0, 20))]:
            for K in (1, 2, 8):
                pg.update(tipo=kind, capas=K, capa=1)
                ctrl = pg.controls[name]  # the playground takes only values on its slider's grid
                lo, step = float(ctrl.min), float(ctrl.step)
                settings = [{name: round(lo + round((float(v) - lo) / step) * step, 10)} for v in values]
                lat = measure_latency(pg.update, settings)
                cpu = []
                for s in settings:
                    t0 = time.process_time()
                    pg.update(**s)
                    cpu.append(1000 * (time.process_time() - t0))
                rows.append(f"| {kind} | {K} | {lat.median_ms:.1f} | {lat.p95_ms:.1f} | {np.median(cpu):.1f} |")
    finally:
        torch.set_num_threads(threads)
    return (f"Playground update (compute + Agg blit + PNG) at a {size} × {size} grid, 1 torch thread; "
            f"wall time depends on the machine's load, CPU time much less:\n\n" + "\n".join(rows))


def run(quick: bool) -> str:
    parts = ["### Lesson 02 — planar and radial flows", ""]
    if CHECKPOINT.exists():
        parts += [_kl_table(quick), ""]
    else:
        parts += [f"(no checkpoint at `{CHECKPOINT.relative_to(ROOT)}`: run `python scripts/train_vi.py`)", ""]
    parts.append(_latency_table(quick))
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    print(run(quick="--quick" in sys.argv))
