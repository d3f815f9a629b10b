import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # test helpers such as lab_server.py
os.environ.setdefault("COURSEKIT_QUICK", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
_SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
if _SHARED.is_dir():  # the offline MNIST beside the project (what `make test` points to)
    os.environ.setdefault("COURSEKIT_DATA", str(_SHARED))


import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(autouse=True)
def _no_leaked_torch_state():
    """Fail loudly if a test changes torch's global default dtype and leaves it changed."""
    before = torch.get_default_dtype()
    yield
    after = torch.get_default_dtype()
    torch.set_default_dtype(before)
    assert after == before, f"test left torch's default dtype at {after} (was {before})"
