"""Small pretrained checkpoints of ``data/checkpoints/``, found locally or fetched when allowed.

The notebooks load these in FULL mode. In a clone of the repository they are in
``data/checkpoints/``; on Colab (where only the package is installed) they are downloaded
from the repository, once, into ``~/.cache/coursekit/checkpoints``, but only when allowed
(``allow_download=True`` or ``COURSEKIT_ALLOW_DOWNLOAD=1``, which the Colab set-up cell sets),
and every file is verified against the SHA-256 recorded in ``checkpoints.json``.
Tests and CI never download.

    python -m coursekit.checkpoints --update   # rewrite checkpoints.json after retraining
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import urllib.request
from pathlib import Path

from . import REPO_URL
from .data.mnist import _allow_download

MANIFEST = Path(__file__).with_name("checkpoints.json")
REPO_DIR = Path(__file__).resolve().parents[1] / "data" / "checkpoints"
CACHE_DIR = Path.home() / ".cache" / "coursekit" / "checkpoints"


def search_dirs() -> list[Path]:
    """Where checkpoints are looked for, in order."""
    dirs = [Path(os.environ["COURSEKIT_CHECKPOINTS"])] if os.environ.get("COURSEKIT_CHECKPOINTS") else []
    dirs += [REPO_DIR, Path.cwd() / "data" / "checkpoints", Path.cwd().parent / "data" / "checkpoints", CACHE_DIR]
    return dirs


def manifest() -> dict[str, dict]:
    """``{name: {"sha256": ..., "bytes": ...}}`` of the shipped checkpoints."""
    return json.loads(MANIFEST.read_text())


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def url(name: str) -> str:
    repo = REPO_URL.removeprefix("https://github.com/")
    return f"https://raw.githubusercontent.com/{repo}/main/data/checkpoints/{name}"


def _download(name: str) -> Path:
    expected = manifest()[name]["sha256"]
    with urllib.request.urlopen(url(name), timeout=60) as resp:
        payload = resp.read()
    if hashlib.sha256(payload).hexdigest() != expected:
        raise OSError(f"checksum mismatch for {url(name)}")
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=CACHE_DIR, delete=False) as tmp:
        tmp.write(payload)
    os.replace(tmp.name, CACHE_DIR / name)  # atomic: never a half-written checkpoint
    return CACHE_DIR / name


def find(name: str, allow_download: bool | None = None) -> Path | None:
    """The local path of checkpoint ``name``, downloading it if allowed; ``None`` if absent.

    Any file name is looked for locally (your own checkpoints too); only the shipped ones,
    listed in ``checkpoints.json`` with their SHA-256, can be downloaded."""
    for d in search_dirs():
        if (d / name).is_file():
            return d / name
    if name in manifest() and _allow_download(allow_download):
        return _download(name)
    return None


def path(name: str, allow_download: bool | None = None) -> Path:
    """Like :func:`find`, but a missing checkpoint raises ``FileNotFoundError`` naming the folders."""
    found = find(name, allow_download)
    if found is None:
        looked = ", ".join(str(d) for d in search_dirs())
        raise FileNotFoundError(f"checkpoint {name} not found; looked in: {looked}. "
                                "Clone the repository or set COURSEKIT_ALLOW_DOWNLOAD=1.")
    return found


def update_manifest() -> dict[str, dict]:
    """Record the SHA-256 and size of every file in ``data/checkpoints/``."""
    entries = {p.name: {"sha256": sha256(p), "bytes": p.stat().st_size}
               for p in sorted(REPO_DIR.glob("*.pt"))}
    MANIFEST.write_text(json.dumps(entries, indent=2) + "\n")
    return entries


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["--update"]:
        for k, v in update_manifest().items():
            print(f"{k}: {v['bytes']:,} bytes, sha256 {v['sha256'][:12]}…")
    else:
        print(__doc__)
