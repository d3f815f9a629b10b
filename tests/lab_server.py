"""Start JupyterLab headless on a free port (what `make lab` starts), for smoke and browser tests."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_lab(notebook_dir: Path, timeout: float = 90.0) -> Iterator[str]:
    """Yield the base URL of a JupyterLab serving ``notebook_dir``; stop it afterwards.

    No token (localhost only, tests only), ``--allow-root`` (CI runs as root),
    ``expose_app_in_browser`` so a browser test can call ``window.jupyterapp``, and its own
    workspace and settings folders beside ``notebook_dir``.
    """
    port = free_port()
    cmd = [
        sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
        f"--notebook-dir={notebook_dir}", "--allow-root", "--IdentityProvider.token=",
        "--ServerApp.password=", "--LabApp.expose_app_in_browser=True",
        "--ServerApp.disable_check_xsrf=True",
        # a fresh workspace and settings (not the user's ~/.jupyter: no tabs restored from
        # another session, no news pop-up)
        f"--LabApp.workspaces_dir={Path(notebook_dir).parent / 'lab_workspaces'}",
        f"--LabApp.user_settings_dir={Path(notebook_dir).parent / 'lab_settings'}",
        "--LabApp.news_url=",
    ]
    log = open(Path(notebook_dir) / "jupyterlab.log", "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {proc.returncode}; see {log.name}")
            try:
                with urllib.request.urlopen(base + "/api/status", timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"JupyterLab did not answer on {base} within {timeout} s") from None
                time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
