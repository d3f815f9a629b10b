"""Scaling: training samples per second with 1 and 2 processes (``torchrun`` + DDP, gloo on CPU, nccl on GPUs).

    python benchmarks/bench_distributed.py [--quick]

The model and step are those of ``scripts/train_flow_matching.py`` (``MLPImageField(hidden=512)``,
I-CFM, Adam, global batch 256 by default), through ``lessons.flow_matching.mnist_loss`` and
``training.fit`` with ``distributed=``, on random 28×28 images (speed does not depend on the
pixels; no MNIST needed). Each configuration runs in fresh processes: a warm-up, then timed
steps; samples/s = global batch × timed steps / seconds (rank 0's clock; every step ends with
the gradient all-reduce, so the ranks move in lockstep). On a machine with CUDA the same table
is measured on 1 GPU and on all of them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _worker(steps: int, warmup: int, batch: int, hidden: int, out: str) -> None:
    import torch

    sys.path.insert(0, str(ROOT))
    from coursekit.lessons.flow_matching import mnist_loss
    from coursekit.matching import MLPImageField
    from coursekit.training import distributed, fit

    with distributed.init() as dist:
        torch.manual_seed(0)
        x = torch.rand(8000, 1, 28, 28) * 2 - 1
        field = MLPImageField((1, 28, 28), hidden=hidden).to(dist.device)
        opt = torch.optim.Adam(field.parameters(), lr=1e-3)
        gen = torch.Generator().manual_seed(0)
        loss = mnist_loss(field, x, batch, generator=gen, distributed=dist)
        sync = torch.cuda.synchronize if dist.device.type == "cuda" else (lambda: None)
        clock = {}

        def timed(step):
            if step == warmup:
                sync()
                clock["t0"] = time.perf_counter()
            return loss(step)

        fit(timed, field, opt, warmup + steps, progress=False, distributed=dist)
        sync()
        seconds = time.perf_counter() - clock["t0"]
        if dist.is_main:
            Path(out).write_text(json.dumps({"seconds": seconds, "steps": steps, "batch": batch,
                                             "world_size": dist.world_size, "device": str(dist.device),
                                             "threads": torch.get_num_threads()}))


def _measure(processes: int, threads: int, steps: int, warmup: int, batch: int, hidden: int,
             cuda_visible: str | None = None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "result.json")
        args = [__file__, "--worker", "--steps", str(steps), "--warmup", str(warmup), "--batch", str(batch),
                "--hidden", str(hidden), "--result", out]
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
        if cuda_visible is not None:
            env["CUDA_VISIBLE_DEVICES"] = cuda_visible
        for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
            env.pop(k, None)
        if processes == 1:
            cmd = [sys.executable, *args]
        else:
            cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
                   "--", *args]
        subprocess.run(cmd, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       timeout=1800)
        r = json.loads(Path(out).read_text())
    r["samples_per_s"] = r["batch"] * r["steps"] / r["seconds"]
    return r


def run(quick: bool) -> str:
    import torch

    steps, warmup, batch, hidden, rounds = (15, 3, 256, 512, 1) if quick else (40, 5, 256, 512, 3)
    if torch.cuda.is_available():
        n_gpu = torch.cuda.device_count()
        configs = [("1 GPU", 1, 1, "0")] + ([(f"{n_gpu} GPU (DDP, nccl)", n_gpu, 1, None)] if n_gpu > 1 else [])
    else:
        configs = [("1 proceso, 1 hilo", 1, 1, None), ("1 proceso, 2 hilos", 1, 2, None),
                   ("2 procesos × 1 hilo (DDP, gloo)", 2, 1, None)]
    runs: dict[str, list[dict]] = {c[0]: [] for c in configs}
    for _ in range(rounds):  # interleaved, so a burst of load on the shared machine hits every configuration
        for label, procs, threads, visible in configs:
            runs[label].append(_measure(procs, threads, steps, warmup, batch, hidden, visible))
    best = {label: max(r["samples_per_s"] for r in rs) for label, rs in runs.items()}
    base = best[configs[0][0]]
    lines = [
        "### Entrenar a mayor escala: muestras por segundo con 1 y 2 procesos",
        "",
        f"El paso de `scripts/train_flow_matching.py` (`MLPImageField(hidden={hidden})`, I-CFM, Adam) con un lote "
        f"global de {batch}: {steps} pasos medidos tras {warmup} de calentamiento, cada configuración en procesos "
        f"nuevos, {rounds} {'vez' if rounds == 1 else 'veces'} alternando las configuraciones; la tabla da la mejor "
        "medida (la menos perturbada por otros trabajos) y el rango. El entrenamiento es el mismo con cualquier "
        "número de procesos (cada uno calcula su parte del mismo lote global); solo cambia la velocidad.",
        "",
        "| configuración | dispositivo | muestras/s (mejor) | rango | relativo a la primera fila |",
        "|---|---|---:|---:|---:|",
    ]
    for label, rs in runs.items():
        lo, hi = min(r["samples_per_s"] for r in rs), max(r["samples_per_s"] for r in rs)
        lines.append(f"| {label} | {rs[0]['device']} | {best[label]:,.0f} | {lo:,.0f}–{hi:,.0f} | "
                     f"{best[label] / base:.2f}× |")
    if not torch.cuda.is_available():
        lines += ["", f"Medido en una CPU de {os.cpu_count()} núcleos compartida con otros trabajos (su carga "
                  "varía durante la medida): dos procesos pueden, como mucho, usar los dos núcleos, igual que un "
                  "proceso con dos hilos, y DDP añade en cada paso un all-reduce de los gradientes (gloo, por "
                  "loopback). La tabla dice lo que da esta máquina, no lo que dan las GPU: en una máquina con GPU "
                  "el mismo comando mide 1 GPU y todas las que haya."]
    lines += ["", "```bash",
              f"python scripts/train_flow_matching.py --batch {batch} ...                       # 1 proceso",
              f"torchrun --nproc_per_node 2 scripts/train_flow_matching.py --batch {batch} ...  # 2 procesos o GPU",
              "python benchmarks/bench_distributed.py                                   # esta tabla", "```"]
    return "\n".join(lines)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--result", default="")
    a = ap.parse_args()
    if a.worker:
        _worker(a.steps, a.warmup, a.batch, a.hidden, a.result)
    else:
        print(run(a.quick))
