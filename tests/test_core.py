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
