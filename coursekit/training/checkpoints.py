"""One checkpoint format and one ``save`` / ``load`` pair for every model of the course.

A checkpoint file holds a plain dictionary: ``kind`` (what it is: ``"glow"``, ``"fit"``, …),
``state`` (named state dicts of tensors), ``config`` (what rebuilds the model) and ``meta``
(scores, the command that made it, curves). :func:`load` reads it with
``torch.load(weights_only=True)``, so a file can hold tensors, numbers, strings, lists and
dicts but never an object that runs code when unpickled.

The shipped checkpoints (``data/checkpoints/``, listed in ``checkpoints.json`` with their
SHA-256) are looked for locally and, on Colab, downloaded when allowed
(:func:`coursekit.downloads_allowed`); whichever copy is found, its SHA-256 is checked
before it is read. Tests and CI never download.

    python -m coursekit.training.checkpoints --update   # rewrite checkpoints.json after retraining
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .. import REPO_URL, downloads_allowed

FORMAT = 1
MANIFEST = Path(__file__).with_name("checkpoints.json")
REPO_DIR = Path(__file__).resolve().parents[2] / "data" / "checkpoints"
CACHE_DIR = Path.home() / ".cache" / "coursekit" / "checkpoints"
DOWNLOAD_TIMEOUT = 60  # seconds without data before a download gives up
#: the shipped files: checkpoints, and lesson 08's DCGAN generator (arrays only, coursekit.tf.pretrained)
SHIPPED = ("*.pt", "*.npz")


@dataclass
class Checkpoint:
    """What :func:`load` returns; ``model`` is filled by :func:`coursekit.lessons.load_model`."""

    kind: str
    state: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    model: Any = None


class ChecksumError(OSError):
    """A shipped checkpoint whose bytes differ from the SHA-256 in ``checkpoints.json``."""


def search_dirs() -> list[Path]:
    """Where checkpoints are looked for, in order."""
    dirs = [Path(os.environ["COURSEKIT_CHECKPOINTS"])] if os.environ.get("COURSEKIT_CHECKPOINTS") else []
    dirs += [REPO_DIR, Path.cwd() / "data" / "checkpoints", Path.cwd().parent / "data" / "checkpoints", CACHE_DIR]
    return dirs


def manifest() -> dict[str, dict]:
    """``{name: {"sha256": ..., "bytes": ...}}`` of the shipped checkpoints."""
    return json.loads(MANIFEST.read_text())


def sha256(path: str | os.PathLike) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def url(name: str) -> str:
    repo = REPO_URL.removeprefix("https://github.com/")
    return f"https://raw.githubusercontent.com/{repo}/main/data/checkpoints/{name}"


def _download(name: str) -> Path:
    expected = manifest()[name]["sha256"]
    try:
        with urllib.request.urlopen(url(name), timeout=DOWNLOAD_TIMEOUT) as resp:
            payload = resp.read()
    except OSError as err:  # URLError, HTTPError, timeouts, refused connections
        raise OSError(f"could not download checkpoint {name} from {url(name)}: {err}. Check the internet "
                      f"connection and try again, or download that URL by hand into {CACHE_DIR} "
                      "(or into a folder named by COURSEKIT_CHECKPOINTS).") from err
    if hashlib.sha256(payload).hexdigest() != expected:
        raise ChecksumError(f"checksum mismatch for {url(name)}: the download was incomplete or altered; "
                            "try again later")
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=CACHE_DIR, delete=False) as tmp:
        tmp.write(payload)
    os.replace(tmp.name, CACHE_DIR / name)  # atomic: never a half-written checkpoint
    return CACHE_DIR / name


def find(name: str, allow_download: bool | None = None) -> Path | None:
    """The local path of checkpoint ``name``, downloading it if allowed; ``None`` if absent.

    Any file name is looked for locally (your own checkpoints too); only the shipped ones,
    listed in ``checkpoints.json`` with their SHA-256, can be downloaded."""
    if not isinstance(name, str) or not name or Path(name).name != name:
        raise ValueError(f"name must be a file name such as 'glow_mnist.pt', got {name!r}")
    for d in search_dirs():
        if (d / name).is_file():
            return d / name
    if name in manifest() and downloads_allowed(allow_download):
        return _download(name)
    return None


def locate(name: str, allow_download: bool | None = None) -> Path:
    """Like :func:`find`, but a missing checkpoint raises ``FileNotFoundError`` naming the folders."""
    found = find(name, allow_download)
    if found is None:
        looked = ", ".join(str(d) for d in search_dirs())
        raise FileNotFoundError(f"checkpoint {name} not found; looked in: {looked}. "
                                "Clone the repository or set COURSEKIT_ALLOW_DOWNLOAD=1.")
    return found


def verify(path: str | os.PathLike) -> None:
    """Raise :class:`ChecksumError` if ``path`` bears a shipped name but not its SHA-256."""
    entry = manifest().get(Path(path).name)
    if entry is not None and sha256(path) != entry["sha256"]:
        raise ChecksumError(f"{path} does not match the SHA-256 recorded in checkpoints.json for "
                            f"{Path(path).name}: the file was modified or corrupted. Delete it (a clone or "
                            "COURSEKIT_ALLOW_DOWNLOAD=1 brings a good copy) or, after retraining, run "
                            "`python -m coursekit.training.checkpoints --update`.")


def _to_half(state: Any) -> Any:
    if isinstance(state, torch.Tensor):
        return state.half() if state.is_floating_point() else state
    if isinstance(state, dict):
        return {k: _to_half(v) for k, v in state.items()}
    return state


def _to_float(state: Any) -> Any:
    if isinstance(state, torch.Tensor):
        return state.float() if state.dtype == torch.float16 else state
    if isinstance(state, dict):
        return {k: _to_float(v) for k, v in state.items()}
    return state


def save(path: str | os.PathLike, kind: str, state: dict[str, Any], *, config: dict | None = None,
         meta: dict | None = None, half: bool = False) -> Path:
    """Write a checkpoint atomically (temporary file, fsync, rename: a crash never leaves half a file).

    ``state`` maps names to state dicts (``{"model": model.state_dict()}``); ``half`` stores
    floating tensors as float16 (half the bytes; :func:`load` gives float32 back).
    """
    if not isinstance(kind, str) or not kind:
        raise ValueError(f"kind must be a non-empty str, got {kind!r}")
    if not isinstance(state, dict):
        raise TypeError(f"state must be a dict of named state dicts, got {type(state).__name__}")
    path = Path(path)
    payload = {"format": FORMAT, "kind": kind, "state": _to_half(state) if half else state,
               "config": dict(config or {}), "meta": dict(meta or {}), "half": bool(half)}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        torch.save(payload, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def load(name_or_path: str | os.PathLike, *, kind: str | None = None, device: torch.device | str | None = "cpu",
         allow_download: bool | None = None) -> Checkpoint:
    """Read a checkpoint: a shipped name (``"glow_mnist.pt"``, found or fetched, SHA-256 checked)
    or a path to a file written by :func:`save`. ``kind``, when given, must match the file's."""
    if isinstance(name_or_path, (str, os.PathLike)) and Path(name_or_path).exists():
        path = Path(name_or_path)
    elif isinstance(name_or_path, str) and Path(name_or_path).name == name_or_path:
        path = locate(name_or_path, allow_download)
    else:
        raise FileNotFoundError(f"no checkpoint at {name_or_path!r}")
    verify(path)
    try:
        raw = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # noqa: BLE001 - pickle errors come in many types; say what is wrong
        raise ValueError(f"{path} is not a coursekit checkpoint that can be read safely: {err}") from err
    if not isinstance(raw, dict) or raw.get("format") != FORMAT or "kind" not in raw:
        raise ValueError(f"{path} is not a coursekit checkpoint (format {FORMAT} with a 'kind'); "
                         "write checkpoints with coursekit.training.checkpoints.save")
    if kind is not None and raw["kind"] != kind:
        raise ValueError(f"{path} holds a {raw['kind']!r} checkpoint, expected {kind!r}")
    state = _to_float(raw["state"]) if raw.get("half") else raw["state"]
    return Checkpoint(raw["kind"], state, raw["config"], raw["meta"], path)


def _repo_relative(value: Any) -> Any:
    """A path inside the repository, written relative to its root (as the scripts are run)."""
    if isinstance(value, os.PathLike):
        path, root = Path(value), REPO_DIR.parents[1]
        return str(path.relative_to(root)) if path.is_absolute() and path.is_relative_to(root) else str(path)
    return value


def command_line(parser: argparse.ArgumentParser, args: argparse.Namespace, script: str) -> str:
    """The command that repeats this run: ``python <script>`` and every option of ``parser`` with
    its value in ``args`` spelled out (defaults too, so a later change of a default does not change
    what the command means; paths inside the repository relative to its root). Options whose
    value is ``None`` or ``False`` are left out."""
    parts = ["python", script]
    for action in parser._actions:  # noqa: SLF001 - argparse has no public list of its options
        if not action.option_strings or action.dest == "help":
            continue
        value = getattr(args, action.dest, None)
        if value is None or value is False:
            continue
        opt = max(action.option_strings, key=len)
        value = [_repo_relative(v) for v in value] if isinstance(value, (list, tuple)) else _repo_relative(value)
        if value is True:
            parts.append(opt)
        elif isinstance(value, (list, tuple)):
            parts += [opt, *(str(v) for v in value)]
        else:
            parts += [opt, str(value)]
    return shlex.join(parts)


def resumed_commands(out: str | os.PathLike, run: str | os.PathLike | None, command: str) -> list[str]:
    """``meta["commands"]`` for a model file ``out`` written by a run that may resume ``run``.

    A fresh run (no ``run`` file yet) gives ``[command]``. A resumed one keeps the commands
    stored in the ``out`` that the earlier call wrote and appends ``command`` unless it repeats
    the last one (rerunning the same command after an interruption continues the same run).
    Call it before training: ``out`` is overwritten at the end."""
    if not isinstance(command, str) or not command.strip():
        raise ValueError(f"command must be a non-empty str, got {command!r}")
    previous: list[str] = []
    if run is not None and Path(run).is_file() and Path(out).is_file():
        raw = torch.load(out, map_location="cpu", weights_only=True)  # not verify(): out may be retrained
        meta = raw.get("meta", {}) if isinstance(raw, dict) else {}
        previous = [str(c) for c in meta.get("commands", [])]
    return previous if previous and previous[-1] == command else [*previous, command]


def update_manifest() -> dict[str, dict]:
    """Record the SHA-256 and size of every file in ``data/checkpoints/``."""
    entries = {p.name: {"sha256": sha256(p), "bytes": p.stat().st_size}
               for p in sorted(q for pattern in SHIPPED for q in REPO_DIR.glob(pattern))}
    MANIFEST.write_text(json.dumps(entries, indent=2) + "\n")
    return entries


__all__ = ["CACHE_DIR", "Checkpoint", "ChecksumError", "MANIFEST", "REPO_DIR", "SHIPPED", "command_line", "find",
           "load", "locate", "manifest", "resumed_commands", "save", "search_dirs", "sha256", "update_manifest",
           "verify"]

if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["--update"]:
        for k, v in update_manifest().items():
            print(f"{k}: {v['bytes']:,} bytes, sha256 {v['sha256'][:12]}…")
    else:
        print(__doc__)
