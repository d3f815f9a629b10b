"""The shipped DCGAN generator: lesson 08's ``make_generator_model()`` trained for longer.

``scripts/train_dcgan.py`` trains the notebook's DCGAN (``GanRun``) for thousands of steps and
writes the generator alone as ``data/checkpoints/dcgan_generator.npz``: every weight of the
Keras model in order (float16), its shapes, and a JSON ``meta`` (the exact command, the steps).
An ``.npz`` read with ``allow_pickle=False`` holds arrays only: nothing in it can run code.

    G = load_generator()                      # found, SHA-256 checked, weights in place
    images = generate_images(G, tf.random.normal((16, NOISE_DIM)))   # in [0, 1]

The file's SHA-256 is the one recorded for it in ``coursekit/training/checkpoints.json`` (the
course's manifest, written by ``python -m coursekit.training.checkpoints --update``); a copy
that differs is refused before it is read. It is looked for where the course's checkpoints
are (``COURSEKIT_CHECKPOINTS``, ``data/checkpoints`` of the repository and of the current
folder or its parent). This module reads the manifest as a file: ``coursekit.tf`` sits below
``coursekit.training`` in the layers and does not import it.

Taught in: notebook 08.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from .gan import NOISE_DIM, make_generator_model

GENERATOR_FILE = "dcgan_generator.npz"
_PACKAGE = Path(__file__).resolve().parents[1]
MANIFEST = _PACKAGE / "training" / "checkpoints.json"


class GeneratorFileError(OSError):
    """A generator file that is missing, unlisted in the manifest or whose SHA-256 differs from it."""


def search_dirs() -> list[Path]:
    """Where :func:`load_generator` looks for ``dcgan_generator.npz``, in order."""
    dirs = [Path(os.environ["COURSEKIT_CHECKPOINTS"])] if os.environ.get("COURSEKIT_CHECKPOINTS") else []
    dirs += [_PACKAGE.parent / "data" / "checkpoints", Path.cwd() / "data" / "checkpoints",
             Path.cwd().parent / "data" / "checkpoints"]
    return list(dict.fromkeys(d.resolve() for d in dirs))  # each folder once


def expected_sha256(name: str = GENERATOR_FILE) -> str | None:
    """The SHA-256 the manifest records for ``name`` (``None`` if it is not listed)."""
    entry = json.loads(MANIFEST.read_text()).get(name)
    return None if entry is None else entry["sha256"]


def save_generator(generator, path: str | os.PathLike, *, meta: dict | None = None) -> Path:
    """Write ``generator``'s weights (float16, in ``generator.weights`` order) and ``meta`` to an ``.npz``."""
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"the generator file must end in .npz, got {path.name!r}")
    weights = [np.asarray(w.numpy(), dtype=np.float16) for w in generator.weights]
    meta = dict(meta or {}, noise_dim=int(generator.input_shape[-1]), shapes=[list(w.shape) for w in weights])
    arrays = {f"w{i:03d}": w for i, w in enumerate(weights)}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        np.savez_compressed(fh, meta=np.array(json.dumps(meta, sort_keys=True)), **arrays)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)  # atomic: never half a file
    return path


def read_generator_file(path: str | os.PathLike, *, sha256: str | None = None) -> tuple[list[np.ndarray], dict]:
    """The weights (float32) and ``meta`` of a generator file, after checking its SHA-256 when given."""
    path = Path(path)
    payload = path.read_bytes()
    if sha256 is not None and hashlib.sha256(payload).hexdigest() != sha256:
        raise GeneratorFileError(f"{path} does not match its recorded SHA-256 {sha256[:12]}…: the file was modified "
                                 "or corrupted. Restore it from the repository or, after retraining with "
                                 "scripts/train_dcgan.py, run `python -m coursekit.training.checkpoints --update`.")
    try:
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(str(npz["meta"]))
            weights = [npz[f"w{i:03d}"].astype(np.float32) for i in range(len(npz.files) - 1)]
    except (ValueError, KeyError, OSError) as err:
        raise ValueError(f"{path} is not a generator file written by save_generator: {err}") from err
    return weights, meta


def load_generator(path: str | os.PathLike | None = None, *, verify: bool = True):
    """``make_generator_model()`` with the weights of ``path`` (default: the shipped
    ``dcgan_generator.npz``, looked for in :func:`search_dirs`). A file named like the shipped
    one is checked against the manifest's SHA-256 (``verify=False`` skips it, for your own
    retrained copy before ``--update``). Returns the Keras model; its ``meta`` (command,
    steps) is in ``model.coursekit_meta``."""
    if path is None:
        found = [d / GENERATOR_FILE for d in search_dirs() if (d / GENERATOR_FILE).is_file()]
        if not found:
            raise GeneratorFileError(f"{GENERATOR_FILE} not found; looked in: "
                                     + ", ".join(str(d) for d in search_dirs()))
        path = found[0]
    path = Path(path)
    if not path.is_file():
        raise GeneratorFileError(f"no generator file at {path}")
    sha = None
    if verify and path.name == GENERATOR_FILE:
        sha = expected_sha256(GENERATOR_FILE)
        if sha is None:
            raise GeneratorFileError(f"{GENERATOR_FILE} is not listed in {MANIFEST}: run "
                                     "`python -m coursekit.training.checkpoints --update` after exporting it")
    weights, meta = read_generator_file(path, sha256=sha)
    generator = make_generator_model(meta.get("noise_dim", NOISE_DIM))
    expected = [tuple(w.shape) for w in generator.weights]
    if [tuple(w.shape) for w in weights] != expected:
        raise ValueError(f"{path} holds weights of shapes {[w.shape for w in weights]}, but "
                         f"make_generator_model() has {expected}")
    for var, value in zip(generator.weights, weights, strict=True):
        var.assign(value)
    generator.coursekit_meta = meta
    return generator


__all__ = ["GENERATOR_FILE", "GeneratorFileError", "expected_sha256", "load_generator", "read_generator_file",
           "save_generator", "search_dirs"]
