"""Lesson 07: flow matching vs FFJORD (same MLPField, same 2-D data), and quality vs NFE.

    python benchmarks/bench_flow_matching.py [--quick]

Both trainers run in this one process, one after the other, on one torch thread (small
networks: a thread pool only adds contention on a shared 2-core machine). Training time
excludes the test-NLL evaluations. "Time to equal NLL" is the training time each method
needs to first reach FFJORD's final test NLL (evaluated at a few checkpoints).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from toy_density import true_nll  # noqa: E402  (benchmarks/toy_density.py)

from coursekit.data import sample_toy  # noqa: E402
from coursekit.lessons import flow_matching as lesson  # noqa: E402


def _test_sample(name: str, n_test: int) -> torch.Tensor:
    """The test sample the lesson's trainers score (``_data``: seed + 1 with their default seed 0)."""
    return sample_toy(name, n_test, torch.Generator().manual_seed(1))


def _nll(value: float | None, true: float | None = None) -> str:
    """``value`` to 3 decimals; with ``true``, also the gap to it in parentheses (— when unknown)."""
    if value is None:
        return "—"
    return f"{value:.3f}" if true is None else f"{value:.3f} ({value - true:+.3f})"


def _fmt_time(t: float | None) -> str:
    return "no alcanzado" if t is None else f"{t:.1f}"


def run(quick: bool) -> str:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run(quick)
    finally:
        torch.set_num_threads(threads)


def _run(quick: bool) -> str:
    t_start = time.perf_counter()
    datasets = ["8gaussians"] if quick else ["8gaussians", "moons"]
    ff_steps, fm_steps = (30, 300) if quick else (300, 8000)
    n_test = 1000 if quick else 3000
    lines = [
        "### Flow matching vs FFJORD (lección 07)",
        "",
        f"Mismo `MLPField(2, 64, 3, tanh)`, lotes de 512, Adam 3e-3 con coseno; FFJORD: dopri5 + adjunto, "
        f"rtol = atol = 1e-3, traza exacta; FM: I-CFM (`LinearPath`). NLL de test en {n_test} muestras "
        "no vistas (CNF, traza exacta, dopri5, tol 1e-5). *NLL real*: −log p de la densidad de los datos en "
        "esas mismas muestras (benchmarks/toy_density.py); entre paréntesis, la diferencia NLL del modelo − NLL "
        "real, que estima KL(datos ‖ modelo) en esa muestra. Un hilo de torch; máquina compartida de 2 núcleos.",
        "",
        "| datos | FFJORD ms/iter | FM ms/iter | razón tiempo/iter | pasos FFJORD / FM | NLL real | NLL FFJORD "
        "(dif.) | NLL FM (dif.) | s hasta NLL de FFJORD: FFJORD | FM | razón |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in datasets:
        ff = lesson.train_ffjord_curve(name, n_steps=ff_steps, n_eval=3, n_test=n_test, progress=False)
        fm = lesson.train_fm(name, n_steps=fm_steps, n_eval=10 if quick else 20, n_test=n_test, progress=False)
        target = ff.test_nll
        t_ff, t_fm = ff.time_to_nll(target), fm.time_to_nll(target)
        ratio = "—" if t_fm is None else f"{t_ff / t_fm:.1f}×"
        true = true_nll(name, _test_sample(name, n_test))
        lines.append(
            f"| {name} | {1000 * ff.time_per_step_s:.1f} | {1000 * fm.time_per_step_s:.2f} "
            f"| {ff.time_per_step_s / fm.time_per_step_s:.0f}× | {ff_steps} / {fm_steps} | {_nll(true)} "
            f"| {_nll(ff.test_nll, true)} | {_nll(fm.test_nll, true)} | {_fmt_time(t_ff)} | {_fmt_time(t_fm)} "
            f"| {ratio} |"
        )

    q_steps = 300 if quick else 3000
    n = 1000 if quick else 2000
    lines += [
        "",
        f"Calidad de las muestras contra NFE ({n} muestras frente a {n} datos no vistos; el mismo ruido x₀ "
        f"para todos; {q_steps} pasos con lotes de 256, mismo `MLPField`). SW₂ = Wasserstein-2 "
        "proyectado (256 direcciones), ED = distancia de energía. S = rectitud ∫E‖(x₁ − x₀) − v‖²dt.",
        "",
        f"NLL test (dif.): en {n} muestras no vistas, con la diferencia respecto a la NLL real de esas mismas "
        "muestras entre paréntesis.",
        "",
        "| datos | método | NLL real | NLL test (dif.) | S | " + " | ".join(f"Euler {k}" for k in lesson.EULER_STEPS)
        + " | dopri5 |",
        "|---|---|---|---|---|" + "---|" * (len(lesson.EULER_STEPS) + 1),
    ]
    for name in datasets:
        x_ref = sample_toy(name, n, torch.Generator().manual_seed(123))
        x0 = torch.randn(n, 2, generator=torch.Generator().manual_seed(7))
        true = true_nll(name, _test_sample(name, n))
        for ot in (False, True):
            res = lesson.train_fm(name, n_steps=q_steps, batch_size=256, ot=ot, n_eval=1, n_test=n, progress=False)
            rows = lesson.quality_vs_nfe(res.field, x0, x_ref)
            s = lesson.flow_straightness(res.field, x0)
            cells = [f"{r.sliced_w2:.3f} / {r.energy:.3f}" for r in rows[:-1]]
            cells.append(f"{rows[-1].sliced_w2:.3f} / {rows[-1].energy:.3f} (NFE {rows[-1].nfe})")
            lines.append(f"| {name} | {res.method} | {_nll(true)} | {_nll(res.test_nll, true)} | {s:.3f} | "
                         + " | ".join(cells) + " |")
    lines += ["", "Cada celda de calidad: SW₂ / ED (menor es mejor). "
              f"Tiempo total de este benchmark: {time.perf_counter() - t_start:.0f} s.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(run("--quick" in sys.argv))
