import contextlib
import os
import socket
import sys
import threading
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


@pytest.fixture
def float64():
    """float64 for contract checks (use with ``pytestmark = pytest.mark.usefixtures("float64")``)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: one intra-op thread is faster than a pool waiting on a shared 2-core machine.
    Module-scoped (``pytestmark = pytest.mark.usefixtures("one_thread")``), restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def no_network(monkeypatch):
    """Any download attempt fails the test (loaders must not touch the network unasked)."""
    import urllib.request

    def refuse(*args, **kwargs):
        raise AssertionError("tried to download")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.delenv("COURSEKIT_ALLOW_DOWNLOAD", raising=False)


class FakeResponse:
    """What ``urllib.request.urlopen`` returns, serving fixed bytes (for download tests)."""

    def __init__(self, payload: bytes):
        self.payload = payload

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def read(self) -> bytes:
        return self.payload


@contextlib.contextmanager
def stalled_server():
    """A local TCP server that accepts connections and never answers (a stalled network)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    conns, stop = [], threading.Event()

    def accept():
        srv.settimeout(0.1)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                conns.append(srv.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.getsockname()[1]}/"
    finally:
        stop.set()
        thread.join()
        for c in conns:
            c.close()
        srv.close()
