"""MNIST from the standard IDX ``.gz`` files, offline first.

Search order: ``$COURSEKIT_DATA`` (the folder itself or its ``mnist/`` subfolder), the
project's ``data/mnist/``, then the user cache ``~/.cache/coursekit/mnist``. A download
from the standard mirrors happens only when asked for (``allow_download=True`` or
``COURSEKIT_ALLOW_DOWNLOAD=1``) and every downloaded file is checksum-verified.
Tests and CI never download.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import downloads_allowed

FILES = {
    ("train", "images"): "train-images-idx3-ubyte.gz",
    ("train", "labels"): "train-labels-idx1-ubyte.gz",
    ("test", "images"): "t10k-images-idx3-ubyte.gz",
    ("test", "labels"): "t10k-labels-idx1-ubyte.gz",
}
# MD5 of the published .gz files (as torchvision checks them) ...
GZ_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
# ... and SHA-256 of the decompressed test split, which holds whatever the gzip level.
RAW_SHA256 = {
    "t10k-images-idx3-ubyte.gz": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte.gz": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
# The shape each file must have (IDX header), so a file under the wrong name is refused.
SHAPES = {
    "train-images-idx3-ubyte.gz": (60000, 28, 28),
    "train-labels-idx1-ubyte.gz": (60000,),
    "t10k-images-idx3-ubyte.gz": (10000, 28, 28),
    "t10k-labels-idx1-ubyte.gz": (10000,),
}
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
#: Seconds without data before a mirror is given up (then the next one is tried).
DOWNLOAD_TIMEOUT = 30
#: When only the test split is available, images 0–7,999 train and 8,000–9,999 evaluate.
CARVE_AT = 8000


def search_dirs() -> list[Path]:
    """The folders searched for the IDX files, in order."""
    dirs = []
    env = os.environ.get("COURSEKIT_DATA")
    if env:
        dirs += [Path(env) / "mnist", Path(env)]
    dirs.append(Path(__file__).resolve().parents[2] / "data" / "mnist")
    dirs.append(Path.home() / ".cache" / "coursekit" / "mnist")
    return dirs


def _find(filename: str) -> Path | None:
    for d in search_dirs():
        if (d / filename).is_file():
            return d / filename
    return None


def _fix_hint(path: Path) -> str:
    return (f"Delete {path} and put the original file there again (or pass allow_download=True "
            "to fetch a checksum-verified copy).")


def _read_idx(path: Path) -> np.ndarray:
    """The array in the IDX ``.gz`` file ``path``; ``ValueError`` naming the file if it is not
    a complete gzip, not an unsigned-byte IDX file, or (for the four MNIST names) not the
    published content: wrong checksum (test split) or wrong shape (e.g. a labels file under
    an images name)."""
    try:
        with gzip.open(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError, zlib.error) as err:  # BadGzipFile is an OSError
        raise ValueError(f"{path} is not a complete gzip file ({type(err).__name__}: {err}). "
                         + _fix_hint(path)) from err
    if filename_sha := RAW_SHA256.get(path.name):
        if hashlib.sha256(raw).hexdigest() != filename_sha:
            raise ValueError(f"{path} does not match the published MNIST checksum. " + _fix_hint(path))
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] != 0x08 or len(raw) < 4 + 4 * raw[3]:
        raise ValueError(f"{path} is not an unsigned-byte IDX file (bad magic number {raw[:4].hex()}). "
                         + _fix_hint(path))
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path} is truncated: header says {shape}, found {data.size} values. " + _fix_hint(path))
    expected = SHAPES.get(path.name)
    if expected is not None and shape != expected:
        raise ValueError(f"{path} holds an array of shape {shape}, but {path.name} must hold {expected}: "
                         "it is another file under this name. " + _fix_hint(path))
    if "labels" in path.name and data.size and int(data.max()) > 9:
        raise ValueError(f"{path} holds labels up to {int(data.max())}, but MNIST labels are 0–9. " + _fix_hint(path))
    return data.reshape(shape)


def _download(filename: str, dest_dir: Path) -> Path:
    dest_dir.mkdir(parents=True, exist_ok=True)
    errors = []
    for mirror in MIRRORS:
        try:
            with urllib.request.urlopen(mirror + filename, timeout=DOWNLOAD_TIMEOUT) as resp:
                payload = resp.read()
        except OSError as exc:
            errors.append(f"{mirror}: {exc}")
            continue
        if hashlib.md5(payload).hexdigest() != GZ_MD5[filename]:
            errors.append(f"{mirror}: checksum mismatch")
            continue
        with tempfile.NamedTemporaryFile(dir=dest_dir, delete=False) as tmp:
            tmp.write(payload)
        shutil.move(tmp.name, dest_dir / filename)  # atomic rename: no half-written file
        return dest_dir / filename
    raise OSError(f"could not download {filename}: " + "; ".join(errors) + ". Check the internet connection "
                  f"and try again, or copy the file by hand into {dest_dir} (or a folder named by COURSEKIT_DATA).")


def available_splits() -> list[str]:
    """The splits ("train", "test") whose two files are present locally."""
    return [s for s in ("train", "test") if all(_find(FILES[(s, k)]) for k in ("images", "labels"))]


def load_mnist(split: str = "test", allow_download: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)``: uint8 ``(N, 28, 28)`` and uint8 ``(N,)`` of the split."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    arrays = []
    for kind in ("images", "labels"):
        filename = FILES[(split, kind)]
        path = _find(filename)
        if path is None:
            if not downloads_allowed(allow_download):
                looked = ", ".join(str(d) for d in search_dirs())
                raise FileNotFoundError(
                    f"MNIST file {filename} not found; looked in: {looked}. "
                    "Set COURSEKIT_DATA to the folder that holds it, or pass allow_download=True."
                )
            path = _download(filename, search_dirs()[-1])
        arrays.append(_read_idx(path))
    images, labels = arrays
    if len(images) != len(labels):
        raise ValueError(f"{split}: {len(images)} images but {len(labels)} labels")
    return images, labels


def _check_images(images) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise TypeError(f"expected uint8 MNIST images (0..255), got dtype {images.dtype}")
    if images.ndim != 3:
        raise ValueError(f"expected images of shape (N, H, W), got {images.shape}")
    return images


def to_unit(images) -> np.ndarray:
    """uint8 images ``(N, H, W)`` → float32 in [0, 1] (autoencoders, VAE, display)."""
    return _check_images(images).astype(np.float32) / 255.0


def to_signed(images) -> np.ndarray:
    """uint8 images ``(N, H, W)`` → float32 in [−1, 1] (GAN, flow matching: centred like the noise)."""
    return _check_images(images).astype(np.float32) / 127.5 - 1.0


@dataclass
class MnistSplits:
    """Train / evaluation arrays, where they come from (``carved``) and a sentence for the student.

    ``carved`` is True when only the test split was at hand and it was divided: images
    0–7,999 train, 8,000–9,999 evaluate (``eval_offset`` = 8,000 in that file).
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    eval_images: np.ndarray
    eval_labels: np.ndarray
    source: str
    carved: bool

    @property
    def eval_offset(self) -> int:
        """Index of the first evaluation image in its MNIST file (8,000 when carved, else 0)."""
        return len(self.train_images) if self.carved else 0


def mnist_splits(allow_download: bool | None = None) -> MnistSplits:
    """The official train/test split when the training files are at hand, else the test
    split carved: images 0–7,999 train, 8,000–9,999 evaluate (never trained on)."""
    if "train" in available_splits() or (downloads_allowed(allow_download) and not available_splits()):
        xtr, ytr = load_mnist("train", allow_download)
        xte, yte = load_mnist("test", allow_download)
        return MnistSplits(xtr, ytr, xte, yte, "MNIST oficial: train (60.000) / test (10.000)", carved=False)
    x, y = load_mnist("test", allow_download)
    return MnistSplits(
        x[:CARVE_AT], y[:CARVE_AT], x[CARVE_AT:], y[CARVE_AT:],
        "partición de prueba de MNIST dividida: imágenes 0–7.999 para entrenar, 8.000–9.999 para evaluar",
        carved=True,
    )
