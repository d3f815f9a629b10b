"""Lesson 05 (Neural ODE, adjoint): peak memory direct vs adjoint as solver steps grow, the
time cost of re-integrating backwards, solver error/NFE (ResNet = Euler, rk4, dopri5), and
adaptive NFE while learning the spiral.

Memory: ``torch.cuda.max_memory_allocated`` on CUDA; on CPU the peak of live tensor bytes
seen by ``coursekit.training.memory.TensorMemoryTracker`` (forward and backward ops).
Recipes: ``coursekit.lessons.neural_ode`` (the notebook's own).
"""

from __future__ import annotations

import numpy as np
import torch

from coursekit.continuous import MLPField, SpiralField
from coursekit.lessons.neural_ode import adjoint_memory_table, solver_table, spiral_data, train_spiral


def _spiral_nfe(n_steps: int) -> tuple[float, float, float]:
    run = train_spiral(spiral_data(), n_steps=n_steps, progress=False)  # notebook 05's recipe
    nfe = run.history["nfe"]
    k = max(n_steps // 10, 1)
    return float(np.mean(nfe[:k])), float(np.mean(nfe[-k:])), run.seconds / n_steps


def run(quick: bool) -> str:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: one thread is faster, and fair on a shared machine
    try:
        torch.manual_seed(0)
        steps = (5, 10, 20) if quick else (10, 40, 160, 320)
        mem = adjoint_memory_table(MLPField(2, hidden=64), torch.randn(128 if quick else 256, 2), steps)
        rows = solver_table(SpiralField(), torch.tensor([[1.0, 0.0]]), t1=2.0, steps=(10, 40, 160))
        nfe_first, nfe_last, s_per_it = _spiral_nfe(100 if quick else 600)
    finally:
        torch.set_num_threads(threads)
    out = ["### Lesson 05 — Neural ODE and the adjoint", ""]
    out += [f"Peak tensor memory of one forward+backward (MLP field 2→64→64→64→2, batch "
            f"{128 if quick else 256}, rk4 with a fixed number of steps; measured by: {mem[0].how}). "
            "Times on a shared, loaded 2-core CPU, 1 thread.", "",
            "| rk4 steps | NFE fwd | NFE bwd (adjoint) | peak direct | peak adjoint | time direct | time adjoint |",
            "|---:|---:|---:|---:|---:|---:|---:|"]
    for r in mem:
        out.append(f"| {r.steps} | {r.nfe_forward} | {r.nfe_backward_adjoint} | {r.direct_bytes / 2**20:.1f} MiB | "
                   f"{r.adjoint_bytes / 2**20:.2f} MiB | {r.direct_s:.2f} s | {r.adjoint_s:.2f} s |")
    out += ["", "Solver error at t₁ = 2 on the true spiral from h₀ = (1, 0) (reference: dopri5, tol 1e-10, float64):",
            "", "| method | setting | NFE | max error |", "|---|---|---:|---:|"]
    out += [f"| {r.method} | {r.setting} | {r.nfe} | {r.error:.2e} |" for r in rows]
    out += ["", f"Adaptive NFE while learning the spiral (dopri5, tol 1e-4, {100 if quick else 600} iterations): "
            f"mean forward NFE {nfe_first:.1f} in the first 10 % → {nfe_last:.1f} in the last 10 %; "
            f"{1e3 * s_per_it:.0f} ms per iteration.", ""]
    return "\n".join(out)


if __name__ == "__main__":
    import sys

    print(run("--quick" in sys.argv))
