"""The layers of docs/architecture.md hold: import-linter's contract in pyproject.toml passes,
and importing the bottom layers does not pull in the ones above."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_linter_layers_contract_is_kept():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert exe, "import-linter is a test dependency (requirements.txt)"
    result = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "1 kept, 0 broken" in result.stdout


def _modules_loaded_by(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return set(out.stdout.split())


def test_light_imports_stay_light():
    assert not {"torch", "tensorflow"} & _modules_loaded_by("import coursekit")
    assert "torch" not in _modules_loaded_by("import coursekit.viz.images, coursekit.core.history")
    loaded = _modules_loaded_by("import coursekit.flows")
    assert not {m for m in loaded if m.startswith(("coursekit.training", "coursekit.lessons", "coursekit.widgets"))}


def test_tensorflow_side_of_the_package_does_not_import_torch():
    """Lesson 08 is TensorFlow: its recipes reach coursekit.data, coursekit.training and
    coursekit.lessons, whose PyTorch names are imported on first use (PEP 562)."""
    loaded = _modules_loaded_by("import coursekit.lessons.autoencoders, coursekit.training.tf_run")
    assert "tensorflow" in loaded  # the statement ran
    assert "torch" not in loaded, "coursekit.data / .training / .lessons imported PyTorch eagerly"


def test_lazy_package_names_are_the_modules_objects():
    code = ("import coursekit.data as d, coursekit.training as t, coursekit.lessons as l; "
            "from coursekit.data import toy2d; from coursekit.training import loop, checkpoints; "
            "from coursekit.data import sample_toy; from coursekit.training import fit; "
            "assert sample_toy is toy2d.sample_toy and d.energy is toy2d.energy; "
            "assert d.TOY_DATASETS is toy2d.TOY_DATASETS and d.ENERGIES is toy2d.ENERGIES; "
            "assert fit is loop.fit and t.smooth is loop.smooth and l.load is checkpoints.load; "
            "assert l.Checkpoint is checkpoints.Checkpoint; "
            "assert {'sample_toy', 'fit'} <= set(dir(d)) | set(dir(t)); "
            "import pytest; pytest.raises(AttributeError, getattr, d, 'nope'); "
            "pytest.raises(AttributeError, getattr, t, 'nope'); pytest.raises(AttributeError, getattr, l, 'nope')")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
