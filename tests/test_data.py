"""Toy samplers, energies and the offline MNIST loader."""

import gzip
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import FakeResponse

from coursekit.data import ENERGIES, TOY_DATASETS, energy, load_mnist, mnist_splits, sample_toy, search_dirs
from coursekit.data import mnist as mnist_module

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.mark.parametrize("name", sorted(TOY_DATASETS))
def test_toy_sets_shape_scale_and_determinism(name):
    a = sample_toy(name, 2001, torch.Generator().manual_seed(3))
    b = sample_toy(name, 2001, torch.Generator().manual_seed(3))
    c = sample_toy(name, 2001, torch.Generator().manual_seed(4))
    assert a.shape == (2001, 2) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.isfinite(a).all()
    assert a.abs().max() < 6  # the usual FFJORD scaling keeps everything in about [-4, 4]
    assert a.std(0).min() > 0.3


def test_eight_gaussians_modes():
    x = sample_toy("8gaussians", 8000, torch.Generator().manual_seed(0))
    angles = torch.atan2(x[:, 1], x[:, 0])
    modes = torch.round(angles / (math.pi / 4)) % 8
    counts = torch.bincount(modes.long(), minlength=8).float()
    assert counts.min() > 800  # eight balanced modes (expected 1000 each)
    radius = x.norm(dim=1).mean()
    assert abs(radius - 4 / math.sqrt(2)) < 0.1


def test_checkerboard_is_on_dark_squares():
    x = sample_toy("checkerboard", 5000, torch.Generator().manual_seed(0))
    parity = (torch.floor(x[:, 0] / 2) + torch.floor(x[:, 1] / 2)) % 2
    assert (parity == parity[0]).all()


def test_toy_bad_input():
    with pytest.raises(ValueError, match="unknown toy data set"):
        sample_toy("nope", 10)
    with pytest.raises(ValueError, match="positive int"):
        sample_toy("moons", 0)


def test_energies_closed_form_values():
    # U2 at z = (1, 1): w1 = sin(pi/2) = 1, so U2 = 0
    z = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    assert energy("U2")(z)[0].item() == pytest.approx(0.0, abs=1e-6)
    # U1 at (2, 0): ring term 0, -log(exp(0) + exp(-0.5 (4/0.6)^2))
    u1 = energy("U1")(torch.tensor([[2.0, 0.0]])).item()
    assert u1 == pytest.approx(-math.log(1 + math.exp(-0.5 * (4 / 0.6) ** 2)), abs=1e-6)
    for name, fn in ENERGIES.items():
        out = fn(torch.randn(50, 2))
        assert out.shape == (50,) and torch.isfinite(out).all(), name
    with pytest.raises(ValueError, match="unknown energy"):
        energy("U9")


def test_mnist_offline_from_shared(monkeypatch):
    monkeypatch.setenv("COURSEKIT_DATA", str(SHARED))
    images, labels = load_mnist("test", allow_download=False)
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    splits = mnist_splits(allow_download=False)
    if "train" not in mnist_module.available_splits():
        assert len(splits.train_images) == 8000 and len(splits.eval_images) == 2000
        assert np.array_equal(splits.eval_images, images[8000:])
        assert "8.000" in splits.source and splits.carved and splits.eval_offset == 8000
    else:
        assert not splits.carved and splits.eval_offset == 0


def test_to_unit_and_to_signed_ranges_and_errors():
    from coursekit.data import to_signed, to_unit

    images = np.array([[[0, 255], [51, 128]]], dtype=np.uint8)
    assert to_unit(images).dtype == np.float32 and to_unit(images).min() == 0.0 and to_unit(images).max() == 1.0
    assert to_signed(images).min() == -1.0 and to_signed(images).max() == 1.0
    with pytest.raises(TypeError, match="uint8"):
        to_unit(images.astype(np.float32))
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        to_signed(images[0])


def test_downloads_allowed(monkeypatch):
    import coursekit as ck

    monkeypatch.delenv("COURSEKIT_ALLOW_DOWNLOAD", raising=False)
    assert not ck.downloads_allowed() and ck.downloads_allowed(True)
    monkeypatch.setenv("COURSEKIT_ALLOW_DOWNLOAD", "yes")
    assert ck.downloads_allowed() and not ck.downloads_allowed(False)
    with pytest.raises(TypeError, match="bool"):
        ck.downloads_allowed("1")


def test_mnist_missing_names_the_directories(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSEKIT_DATA", str(tmp_path / "empty"))
    monkeypatch.setattr(mnist_module, "search_dirs", lambda: [tmp_path / "empty"])
    monkeypatch.delenv("COURSEKIT_ALLOW_DOWNLOAD", raising=False)
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "empty")):
        load_mnist("test")


def test_mnist_never_downloads_by_default(monkeypatch, tmp_path, no_network):
    monkeypatch.setattr(mnist_module, "search_dirs", lambda: [tmp_path])
    with pytest.raises(FileNotFoundError):
        load_mnist("train")


def test_mnist_download_is_checksum_verified(monkeypatch, tmp_path):
    # a mirror that serves the wrong bytes is rejected and nothing is written
    monkeypatch.setattr(mnist_module, "search_dirs", lambda: [tmp_path])
    wrong = FakeResponse(gzip.compress(b"not mnist"))
    monkeypatch.setattr(mnist_module.urllib.request, "urlopen", lambda *a, **k: wrong)
    with pytest.raises(OSError, match="checksum mismatch"):
        load_mnist("test", allow_download=True)
    assert not list(tmp_path.glob("*.gz"))


def test_mnist_corrupt_local_file_is_reported(monkeypatch, tmp_path):
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x03" + b"\x00" * 20))
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01" + b"\x00" * 8))
    monkeypatch.setattr(mnist_module, "search_dirs", lambda: [tmp_path])
    with pytest.raises(ValueError, match="checksum"):
        load_mnist("test")


def test_search_order_starts_with_env(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSEKIT_DATA", str(tmp_path))
    dirs = search_dirs()
    assert dirs[0] == tmp_path / "mnist" and dirs[1] == tmp_path
    assert dirs[-1] == Path(os.path.expanduser("~")) / ".cache" / "coursekit" / "mnist"
    with pytest.raises(ValueError, match="split"):
        load_mnist("validation")
