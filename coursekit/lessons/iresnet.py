"""Lesson 04's recipes: the worst-case block of the fixed-point demo, and the comparison of
data, Glow and i-ResNet on the same 2-D data (test NLL, samples, fixed-point iterations).

The comparison trains both models by maximum likelihood on fresh samples every step
(seeded, so both see the same batches), then evaluates in float64 on a separate test
sample. The i-ResNet is used in the density direction, ``z = F(x)`` (one cheap pass), so
sampling ``x = F⁻¹(z)`` runs the fixed point of every block. The NLL of the data under
their own density (known for ``8gaussians``) is the floor no model can beat in expectation.

The cells the student writes are checked against :class:`IResBlock`: ``fixed_point_reference``
(``solve``) and ``series_reference`` (``logdet_series`` with the probe ``rademacher_probe`` draws),
on ``fixed_point_cases`` and ``series_cases``.

Taught in: notebook 04 (benchmarked in ``benchmarks/bench_iresnet.py``).
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..core.checks import positive_int
from ..core.history import History
from ..data import sample_toy
from ..data.toy2d import eight_gaussians_log_prob
from ..flows.base import Compose, Flow, Inverse, StandardNormal
from ..flows.coupling import AffineCoupling
from ..flows.elementwise import ElementwiseAffine
from ..flows.iresnet import IResBlock
from ..training.loop import fit

#: toy data sets whose true log-density is known: their test NLL is the floor of the table
TRUE_LOG_PROB = {"8gaussians": eight_gaussians_log_prob}


# --- the worst case of Banach's bound -----------------------------------------------------

def rotation_block(lam: float, angle: float = 0.0, max_iter: int = 10_000) -> IResBlock:
    """An ``IResBlock(2)`` with ``g(z) = λ² R(angle) z`` for ``|z| < 10/λ`` (``λ ≥ 1`` allowed).

    ``W̃₁ = λ R(angle)``, ``W̃₂ = λ I`` and biases that keep the ELU in its linear zone, so
    ``Lip(g) = λ²`` exactly: with ``angle = 0`` the fixed-point error shrinks by exactly
    ``λ²`` per iteration, the slowest Banach allows.
    """
    block = IResBlock(2, hidden=2, lam=lam, strict=False, max_iter=max_iter)
    set_rotation(block, angle)
    return block


@torch.no_grad()
def set_rotation(block: IResBlock, angle: float) -> None:
    """Set ``W₁ = R(angle)``, ``W₂ = I`` and the biases; refresh the spectral-norm estimate."""
    c, s = math.cos(angle), math.sin(angle)
    w1 = block.layers[0].parametrizations.weight.original
    w1.copy_(torch.tensor([[c, -s], [s, c]], dtype=w1.dtype))
    block.layers[1].parametrizations.weight.original.copy_(torch.eye(2, dtype=w1.dtype))
    block.layers[0].bias.fill_(10.0)  # ELU(h) = h for h > 0: g is linear near the data
    block.layers[1].bias.fill_(-10.0 * block.lam)
    block.refresh_spectral_norm(3)  # R is orthogonal: σ_max = 1 after one power step
    block.eval()


# --- data / Glow / i-ResNet on the same 2-D data -------------------------------------------

def toy_glow(n_layers: int = 8, hidden: int = 64) -> Flow:
    """Glow-style 2-D flow: affine couplings with alternating halves, then a learned scale."""
    positive_int(n_layers, "n_layers")
    layers = [AffineCoupling(2, hidden=hidden, mask="half", parity=k % 2 == 1) for k in range(n_layers)]
    return Flow(StandardNormal(2), Compose([*layers, ElementwiseAffine(2)]))


def toy_iresnet(n_blocks: int = 8, hidden: int = 64, lam: float = 0.97, tol: float = 1e-6) -> Flow:
    """i-ResNet in the density direction, ``z = F(x)`` (cheap), sampling by fixed point.

    A learned scale and ``n_blocks`` blocks whose ``g`` has two hidden layers (``Lip(g) ≤ λ³``).
    """
    positive_int(n_blocks, "n_blocks")
    blocks = [IResBlock(2, hidden=hidden, depth=2, lam=lam, tol=tol) for _ in range(n_blocks)]
    return Flow(StandardNormal(2), Inverse(Compose([ElementwiseAffine(2), *blocks])))


def train_toy(flow: Flow, data: str, n_steps: int, batch: int = 256, lr: float = 2e-3, seed: int = 0,
              progress: bool = False, desc: str = "entrenando") -> History:
    """Maximum likelihood on fresh samples of ``data`` every step (seeded), cosine-decayed Adam."""
    gen = torch.Generator().manual_seed(seed)
    anchor = next(flow.parameters())
    opt = torch.optim.Adam(flow.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(n_steps, 1))

    def loss_fn(step: int) -> Tensor:
        x = sample_toy(data, batch, gen).to(anchor.device, anchor.dtype)
        return -flow.log_prob(x).mean()

    return fit(loss_fn, flow, opt, n_steps, scheduler=sched, progress=progress, desc=desc)


@dataclass
class ToyComparison:
    """What :func:`compare_glow_iresnet` measured. Keys ``"data"``, ``"glow"``, ``"iresnet"``.

    ``test_nll[name]``: ``−log p(x)`` per test sample (float64, CPU; ``"data"`` only when the
    true density is known); ``samples[name]``: samples of each model and of the data;
    ``iterations``: fixed-point iterations of each i-ResNet block in that sampling run.
    """

    data: str
    n_steps: int
    flows: dict[str, Flow] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    test_nll: dict[str, Tensor] = field(default_factory=dict)
    samples: dict[str, Tensor] = field(default_factory=dict)
    iterations: list[int] = field(default_factory=list)

    def n_params(self, name: str) -> int:
        return sum(p.numel() for p in self.flows[name].parameters())

    def iresnet_blocks(self) -> list[IResBlock]:
        return [b for b in self.flows["iresnet"].modules() if isinstance(b, IResBlock)]


def compare_glow_iresnet(data: str = "8gaussians", n_steps: int = 2000, n_test: int = 20_000,
                         n_samples: int = 2000, tol: float = 1e-6, seed: int = 0, device=None,
                         progress: bool = False) -> ToyComparison:
    """Train :func:`toy_glow` and :func:`toy_iresnet` (same seed, same batches, ``n_steps`` each)
    in the default dtype on ``device``; then, in float64 and eval mode, the test NLL of both
    and of the true density on ``n_test`` held-out samples, and ``n_samples`` samples of each."""
    positive_int(n_test, "n_test")
    positive_int(n_samples, "n_samples")
    device = torch.device(device) if device is not None else torch.device("cpu")
    test = sample_toy(data, n_test, torch.Generator().manual_seed(12345)).double()
    out = ToyComparison(data, n_steps)
    if data in TRUE_LOG_PROB:
        out.test_nll["data"] = -TRUE_LOG_PROB[data](test)
    out.samples["data"] = sample_toy(data, n_samples, torch.Generator().manual_seed(7)).double()
    for name, make in (("glow", toy_glow), ("iresnet", lambda: toy_iresnet(tol=tol))):
        torch.manual_seed(seed)  # same initial draw for both families
        flow = make().to(device)
        t0 = time.perf_counter()
        train_toy(flow, data, n_steps, seed=seed, progress=progress, desc=name)
        out.seconds[name] = time.perf_counter() - t0
        flow = flow.double().eval()  # float64: a float32 fixed point floors near 1e-6 (|x| ~ 3)
        with torch.no_grad():
            out.test_nll[name] = -flow.log_prob(test.to(device)).cpu()
            torch.manual_seed(seed)
            out.samples[name] = flow.sample(n_samples).cpu()
        out.flows[name] = flow
    out.iterations = [b.last_inverse_info.iterations for b in out.iresnet_blocks()]
    return out


#: where ``make bench`` writes its tables (present in a checkout of the repository, not in a pip install)
RESULTS_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "RESULTS.md"
_BENCH_ROWS = {"data": "data (true density)", "glow": "Glow", "iresnet": "i-ResNet"}


def benchmark_nll(path: str | Path | None = None) -> dict[str, float] | None:
    """Test NLL (nats) of data, Glow and i-ResNet on ``8gaussians`` from ``benchmarks/RESULTS.md``.

    Reads the table that ``benchmarks/bench_iresnet.py`` writes (section ``bench:iresnet``);
    keys ``"data"``, ``"glow"``, ``"iresnet"`` and ``"steps"`` (training steps of the models).
    ``None`` when the file or the section is not there (e.g. coursekit installed without the
    repository); ``ValueError`` when the section is there but its table cannot be read.
    """
    path = Path(RESULTS_PATH if path is None else path)
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8")
    section = re.search(r"<!-- bench:iresnet -->(.*?)<!-- /bench:iresnet -->", text, re.S)
    if section is None:
        return None
    out: dict[str, float] = {}
    for line in section.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        for key, label in _BENCH_ROWS.items():
            if len(cells) >= 5 and (cells[0] == label or cells[0].startswith(label + " (")):
                out[key] = float(cells[4])
                if key == "glow":
                    out["steps"] = float(cells[2])
    if set(out) != {*_BENCH_ROWS, "steps"}:
        raise ValueError(f"{path}: the bench:iresnet section has no data / Glow / i-ResNet NLL table "
                         f"(found {sorted(out)})")
    return out


# --- the slide's block: g(x) = W₂ ReLU(W₁ x) ------------------------------------------------

def relu_branch(block: IResBlock):
    """The lecture's residual branch on ``block``'s (spectrally normalized) weights and biases,
    with ReLU where the block uses its own activation: ``g(z) = W̃₂ ReLU(W̃₁ z + b₁) + b₂``.

    Dense blocks only. Returns ``(g, jacobian)``: ``g(z)`` of shape ``(n, D)`` and ``jacobian(z)``,
    the per-sample ``J_g(z)`` of shape ``(n, D, D)``.
    """
    if not isinstance(block, IResBlock):
        raise TypeError(f"block must be an IResBlock, got {type(block).__name__}")
    if block.is_image:
        raise ValueError("relu_branch takes a dense IResBlock (event_shape (D,)), not a convolutional one")

    def g(z: Tensor) -> Tensor:
        h, ws = z, block.weights()
        for i, (w, layer) in enumerate(zip(ws, block.layers, strict=True)):
            h = F.linear(h, w, layer.bias)
            if i < len(ws) - 1:
                h = torch.relu(h)
        return h

    def jacobian(z: Tensor) -> Tensor:
        h, jac, ws = z, None, block.weights()
        for i, (w, layer) in enumerate(zip(ws, block.layers, strict=True)):
            h = F.linear(h, w, layer.bias)
            jac = w.expand(z.shape[0], -1, -1) if jac is None else w @ jac
            if i < len(ws) - 1:
                jac = (h > 0).to(h.dtype).unsqueeze(-1) * jac  # ReLU' ∈ {0, 1}: J_g is piecewise constant
                h = torch.relu(h)
        return jac

    return g, jacobian


# --- one architecture, two jobs: an i-ResNet stack as a classifier ------------------------------

def labelled_moons(n: int, seed: int = 0, dtype: torch.dtype | None = None) -> tuple[Tensor, Tensor]:
    """``(x, y)``: ``n`` points of the ``moons`` toy set and their moon (0 = upper, 1 = lower).

    The points are drawn in float32 (the same points whatever the default dtype) and returned in
    ``dtype`` (default: ``torch.get_default_dtype()``, the dtype of freshly built blocks)."""
    positive_int(n, "n")
    x = sample_toy("moons", n, torch.Generator().manual_seed(seed))
    return x.to(dtype or torch.get_default_dtype()), (torch.arange(n) >= n // 2).long()  # upper half drawn first


@dataclass
class ClassifierRun:
    """What :func:`train_classifier` measured: the trained stack (a :class:`Compose` of
    :class:`IResBlock`, still a bijection) and its linear head; accuracies on a held-out set,
    and the same head trained directly on ``x`` (no blocks) as the baseline."""

    stack: Compose
    head: nn.Linear
    history: History
    accuracy: float
    baseline_accuracy: float
    seconds: float


def train_classifier(n_blocks: int = 4, hidden: int = 32, lam: float = 0.9, n_steps: int = 300,
                     n_train: int = 2000, n_test: int = 2000, lr: float = 1e-2, seed: int = 0) -> ClassifierRun:
    """Train ``linear ∘ (i-ResNet blocks)`` with cross-entropy on :func:`labelled_moons`; the same
    number of steps trains ``linear`` alone on ``x`` as the baseline. Accuracies on fresh points."""
    for name, v in (("n_blocks", n_blocks), ("hidden", hidden), ("n_steps", n_steps), ("n_train", n_train),
                    ("n_test", n_test)):
        positive_int(v, name)
    dtype = torch.get_default_dtype()
    x, y = labelled_moons(n_train, seed)
    x_test, y_test = labelled_moons(n_test, seed + 1)
    torch.manual_seed(seed)
    stack = Compose([IResBlock(2, hidden=hidden, lam=lam) for _ in range(n_blocks)])
    head, baseline = nn.Linear(2, 2), nn.Linear(2, 2)

    def features(u: Tensor) -> Tensor:  # x ↦ F(x) = the blocks' forward pass; no log-det needed to classify
        for block in stack.bijections:
            u = u + block.g(u)
        return u

    t0 = time.perf_counter()
    model = nn.ModuleList([stack, head])
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    hist = fit(lambda step: F.cross_entropy(head(features(x)), y), model, opt, n_steps, progress=False)
    seconds = time.perf_counter() - t0
    opt_b = torch.optim.Adam(baseline.parameters(), lr=lr)
    fit(lambda step: F.cross_entropy(baseline(x), y), baseline, opt_b, n_steps, progress=False)
    stack.eval()
    with torch.no_grad():
        acc = (head(features(x_test)).argmax(1) == y_test).to(dtype).mean().item()
        acc_b = (baseline(x_test).argmax(1) == y_test).to(dtype).mean().item()
    return ClassifierRun(stack, head, hist, acc, acc_b, seconds)


# --- the cells the student writes: references and cases (notebooks/soluciones/04_iresnet.ipynb) ---------

PROBE_SEED = 0  # the seed of the Hutchinson probe in the series cases


def _random_block(dim, lam: float, seed: int, hidden: int = 16, depth: int = 1) -> IResBlock:
    torch.manual_seed(seed)
    block = IResBlock(dim, hidden=hidden, lam=lam, depth=depth).to(torch.float64)
    with torch.no_grad():  # larger biases and weights than the default init: a non-trivial g
        for layer in block.layers:
            layer.bias.normal_(0.0, 0.5)
    block.refresh_spectral_norm(20)  # the checks share the block: σ̂ only has to keep Lip(g) < 1
    return block.eval()


def fixed_point_cases(seed: int = 0) -> list[tuple[str, tuple]]:
    """``(label, (x, g))`` for the fixed-point cell: ``g`` is an :class:`IResBlock`'s residual branch.

    A random 2-D block (λ = 0.9); the worst case ``g(z) = 0.97² z`` (hundreds of iterations: a loop with a
    fixed count stops short); a random convolutional block on ``1×5×5`` images.
    """
    g = torch.Generator().manual_seed(seed)
    f64 = dict(dtype=torch.float64)
    vec = _random_block(2, 0.9, seed)
    worst = rotation_block(0.97).to(torch.float64)
    set_rotation(worst, 0.0)
    img = _random_block((1, 5, 5), 0.9, seed + 1, hidden=4)
    return [("bloque aleatorio 2-D, λ = 0.9", (3 * torch.randn(8, 2, generator=g, **f64), vec.g)),
            ("peor caso g(z) = 0.97² z (cientos de iteraciones)", (torch.randn(8, 2, generator=g, **f64), worst.g)),
            ("bloque convolucional en imágenes 1×5×5", (torch.randn(2, 1, 5, 5, generator=g, **f64), img.g))]


def fixed_point_reference(x: Tensor, g, tol: float = 1e-10, max_iter: int = 5000) -> Tensor:
    """``z`` with ``z + g(z) = x`` from coursekit's :meth:`IResBlock.solve` (``g`` a block's bound ``g``)."""
    return g.__self__.solve(x, tol=tol, max_iter=max_iter)[0]


def rademacher_probe(z: Tensor, seed: int = PROBE_SEED) -> Tensor:
    """The ±1 probe that :meth:`IResBlock.logdet_series` draws for ``z`` from a generator seeded with ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 2, z.shape, generator=gen, dtype=z.dtype).to(z.device) * 2 - 1


def series_cases(seed: int = 0) -> list[tuple[str, tuple]]:
    """``(label, (g, z, v, n_terms))`` for the power-series cell, ``v = rademacher_probe(z)``.

    One term (only ``vᵀ J_g v``); ten terms on a 2-D block with λ = 0.95 (signs and ``1/k`` matter); a
    5-D block with two hidden layers; a convolutional block on ``1×4×4`` images.
    """
    g = torch.Generator().manual_seed(seed)
    f64 = dict(dtype=torch.float64)
    vec = _random_block(2, 0.95, seed)
    deep = _random_block(5, 0.95, seed + 2, depth=2)
    img = _random_block((1, 4, 4), 0.95, seed + 3, hidden=4)
    zs = [2 * torch.randn(6, 2, generator=g, **f64), 2 * torch.randn(6, 2, generator=g, **f64),
          torch.randn(4, 5, generator=g, **f64), torch.randn(3, 1, 4, 4, generator=g, **f64)]
    specs = [("bloque 2-D, n = 1 término", vec, zs[0], 1), ("bloque 2-D λ = 0.95, n = 10 términos", vec, zs[1], 10),
             ("bloque 5-D con dos capas ocultas, n = 6", deep, zs[2], 6),
             ("bloque convolucional 1×4×4, n = 5", img, zs[3], 5)]
    return [(label, (b.g, z, rademacher_probe(z), n)) for label, b, z, n in specs]


def series_reference(g, z: Tensor, v: Tensor, n_terms: int) -> Tensor:
    """coursekit's :meth:`IResBlock.logdet_series` with one probe, the one ``rademacher_probe(z)`` draws.

    ``v`` must be that probe (the cases build it so): the reference draws it again from the same seed.
    """
    if not torch.equal(v, rademacher_probe(z)):
        raise ValueError("series_reference compares with logdet_series' own probe: pass v = rademacher_probe(z)")
    gen = torch.Generator().manual_seed(PROBE_SEED)
    return g.__self__.logdet_series(z, n_terms, 1, generator=gen, create_graph=False)


__all__ = ["PROBE_SEED", "RESULTS_PATH", "TRUE_LOG_PROB", "ClassifierRun", "ToyComparison", "benchmark_nll",
           "compare_glow_iresnet", "fixed_point_cases", "fixed_point_reference", "labelled_moons",
           "rademacher_probe", "relu_branch", "rotation_block", "series_cases", "series_reference", "set_rotation",
           "toy_glow", "toy_iresnet", "train_classifier", "train_toy"]
