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
