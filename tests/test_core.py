"""Package-level helpers and the light import."""

import subprocess
import sys

import numpy as np
import pytest

import coursekit as ck


def test_quick_mode_reads_env(monkeypatch):
    for value, expected in [("1", True), ("true", True), ("0", False), ("", False), ("no", False)]:
        monkeypatch.setenv("COURSEKIT_QUICK", value)
        assert ck.quick_mode() is expected
    monkeypatch.delenv("COURSEKIT_QUICK")
    assert ck.quick_mode() is False


def test_device_prefers_cuda_when_present():
    import torch

    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert ck.device().type == expected
    assert ck.device("cpu").type == "cpu"


def test_seed_everything_makes_runs_repeatable():
    import torch

    ck.seed_everything(123)
    a = (np.random.rand(3), torch.rand(3))
    ck.seed_everything(123)
    b = (np.random.rand(3), torch.rand(3))
    assert np.array_equal(a[0], b[0]) and torch.equal(a[1], b[1])
    with pytest.raises(TypeError):
        ck.seed_everything("1")


def test_import_is_light_and_never_imports_tensorflow():
    code = "import sys, coursekit; print('torch' in sys.modules, 'tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
    code = ("import sys, coursekit as ck; ck.flows; ck.data; ck.viz.make_grid; ck.training; ck.lessons; ck.widgets; "
            "print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_unknown_attribute():
    with pytest.raises(AttributeError):
        ck.nonexistent  # noqa: B018


def test_positive_int_accepts_numpy_integers_and_rejects_bools_and_floats():
    import numpy as np

    from coursekit.core.checks import positive_int

    assert positive_int(np.int64(5), "n") == 5 and type(positive_int(np.int64(5), "n")) is int
    for bad in (True, np.bool_(True), 0, -3, 2.0, "3", None):
        with pytest.raises(ValueError, match="n must be a positive int"):
            positive_int(bad, "n")


def test_kernel_time_embedding_and_batch_time():
    import math

    import torch

    from coursekit.core.fields import batch_time, hutchinson_probe, time_embedding

    t = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    emb = time_embedding(t, 6, min_freq=1.0, max_freq=100.0)
    freqs = [1.0, 10.0, 100.0]  # geometric from min to max, both included
    expected = [[math.sin(w * s) for w in freqs] + [math.cos(w * s) for w in freqs] for s in t.tolist()]
    assert torch.allclose(emb, torch.tensor(expected, dtype=torch.float64), atol=1e-12)
    with pytest.raises(ValueError, match="even"):
        time_embedding(t, 5)
    x = torch.zeros(3, 2)
    assert batch_time(0.3, x).shape == (3,) and batch_time(torch.tensor([[1.0], [2.0], [3.0]]), x).tolist() == [1, 2, 3]
    with pytest.raises(ValueError, match=r"t must be a scalar or have shape \(3,\)"):
        batch_time(torch.zeros(2), x)
    eps = hutchinson_probe(torch.zeros(4000, 3), "rademacher", torch.Generator().manual_seed(0))
    assert set(eps.unique().tolist()) == {-1.0, 1.0}
    assert float((eps.T @ eps / 4000 - torch.eye(3)).abs().max()) < 0.1  # E[εεᵀ] = I
    with pytest.raises(ValueError, match="noise"):
        hutchinson_probe(x, "uniform")
