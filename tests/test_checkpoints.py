"""Shipped checkpoints: the manifest matches data/checkpoints/, lookups never download in tests."""

import hashlib

import pytest
from conftest import FakeResponse

from coursekit import checkpoints


def test_manifest_matches_the_committed_files():
    files = sorted(p.name for p in checkpoints.REPO_DIR.glob("*.pt"))
    entries = checkpoints.manifest()
    assert sorted(entries) == files, "run: python -m coursekit.checkpoints --update"
    for name, entry in entries.items():
        data = (checkpoints.REPO_DIR / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], f"{name} changed: update the manifest"
        assert entry["bytes"] == len(data) <= 5 * 2**20, f"{name} is larger than 5 MB"


def test_find_uses_the_repository_copy():
    assert checkpoints.find("glow_mnist.pt", allow_download=False) == checkpoints.REPO_DIR / "glow_mnist.pt"
    assert checkpoints.find("not_shipped.pt", allow_download=True) is None  # only shipped files download


def test_missing_checkpoint_is_not_downloaded_unless_allowed(monkeypatch, tmp_path, no_network):
    monkeypatch.setattr(checkpoints, "search_dirs", lambda: [tmp_path])
    assert checkpoints.find("glow_mnist.pt") is None
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        checkpoints.path("glow_mnist.pt")


def test_download_is_checksum_verified(monkeypatch, tmp_path):
    monkeypatch.setattr(checkpoints, "search_dirs", lambda: [tmp_path / "none"])
    monkeypatch.setattr(checkpoints, "CACHE_DIR", tmp_path / "cache")
    good = (checkpoints.REPO_DIR / "ffjord_8gaussians.pt").read_bytes()

    monkeypatch.setattr(checkpoints.urllib.request, "urlopen", lambda *a, **k: FakeResponse(b"corrupt"))
    with pytest.raises(OSError, match="checksum mismatch"):
        checkpoints.find("ffjord_8gaussians.pt", allow_download=True)
    monkeypatch.setattr(checkpoints.urllib.request, "urlopen", lambda u, **k: FakeResponse(good))
    got = checkpoints.find("ffjord_8gaussians.pt", allow_download=True)
    assert got == tmp_path / "cache" / "ffjord_8gaussians.pt" and got.read_bytes() == good
    assert checkpoints.url("x.pt").startswith("https://raw.githubusercontent.com/")
