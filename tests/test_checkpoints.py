"""One checkpoint format: the manifest matches data/checkpoints/, shipped files are SHA-256
verified wherever they are found, nothing is unpickled, lookups never download in tests."""

import argparse
import hashlib
import importlib.util
import json
import shlex
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import FakeResponse

from coursekit.lessons import BUILDERS, load_model
from coursekit.training import checkpoints


def test_manifest_matches_the_committed_files():
    files = sorted(p.name for pattern in checkpoints.SHIPPED for p in checkpoints.REPO_DIR.glob(pattern))
    entries = checkpoints.manifest()
    assert sorted(entries) == files, "run: python -m coursekit.training.checkpoints --update"
    for name, entry in entries.items():
        data = (checkpoints.REPO_DIR / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], f"{name} changed: update the manifest"
        assert entry["bytes"] == len(data) <= 5 * 2**20, f"{name} is larger than 5 MB"


@pytest.mark.parametrize("name", sorted(n for n in checkpoints.manifest() if n.endswith(".pt")))
def test_every_shipped_checkpoint_loads_through_the_one_api(name):
    raw = torch.load(checkpoints.REPO_DIR / name, weights_only=True)  # plain data only
    assert raw["format"] == checkpoints.FORMAT and raw["kind"] in BUILDERS
    ckpt = load_model(name)
    assert ckpt.kind == raw["kind"] and ckpt.path == checkpoints.REPO_DIR / name
    assert ckpt.model is not None and ckpt.meta, f"{name}: the model and its metadata come back"


def test_find_uses_the_repository_copy():
    assert checkpoints.find("glow_mnist.pt", allow_download=False) == checkpoints.REPO_DIR / "glow_mnist.pt"
    assert checkpoints.find("not_shipped.pt", allow_download=True) is None  # only shipped files download
    with pytest.raises(ValueError, match="file name"):
        checkpoints.find("../glow_mnist.pt")


def test_missing_checkpoint_is_not_downloaded_unless_allowed(monkeypatch, tmp_path, no_network):
    monkeypatch.setattr(checkpoints, "search_dirs", lambda: [tmp_path])
    assert checkpoints.find("glow_mnist.pt") is None
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        checkpoints.locate("glow_mnist.pt")
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        checkpoints.load("glow_mnist.pt")


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


def test_a_local_copy_with_one_flipped_byte_is_refused(monkeypatch, tmp_path):
    copy = tmp_path / "ffjord_8gaussians.pt"
    shutil.copy(checkpoints.REPO_DIR / copy.name, copy)
    monkeypatch.setattr(checkpoints, "search_dirs", lambda: [tmp_path])
    checkpoints.load(copy.name)  # the intact copy loads
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0x01
    copy.write_bytes(bytes(data))
    with pytest.raises(checkpoints.ChecksumError, match="SHA-256"):
        checkpoints.load(copy.name)
    with pytest.raises(checkpoints.ChecksumError):
        checkpoints.load(copy)  # by path too: a shipped name is always verified


class _Exploit:
    """Unpickling this object would create a file (what a malicious checkpoint does)."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_a_file_holding_code_is_never_unpickled(tmp_path):
    target = tmp_path / "pwned"
    path = tmp_path / "own_run.pt"
    torch.save({"format": checkpoints.FORMAT, "kind": "fit", "state": {}, "config": {}, "meta": {},
                "payload": _Exploit(target)}, path)
    with pytest.raises(ValueError, match="cannot be read safely|not a coursekit checkpoint"):
        checkpoints.load(path)
    assert not target.exists()


def test_save_load_round_trip_kind_and_half(tmp_path):
    state = {"model": {"w": torch.randn(3, 2), "n": torch.tensor(7)}}
    path = checkpoints.save(tmp_path / "m.pt", "demo", state, config={"width": 3}, meta={"note": "x"}, half=True)
    ckpt = checkpoints.load(path, kind="demo")
    assert ckpt.config == {"width": 3} and ckpt.meta == {"note": "x"}
    assert ckpt.state["model"]["w"].dtype == torch.float32 and ckpt.state["model"]["n"].item() == 7
    assert torch.allclose(ckpt.state["model"]["w"], state["model"]["w"], atol=1e-2)
    with pytest.raises(ValueError, match="'demo' checkpoint, expected 'glow'"):
        checkpoints.load(path, kind="glow")
    with pytest.raises(ValueError, match="kinds"):
        load_model(path)  # no lesson rebuilds a "demo" model
    torch.save({"weights": {}}, tmp_path / "old.pt")
    with pytest.raises(ValueError, match="not a coursekit checkpoint"):
        checkpoints.load(tmp_path / "old.pt")
    with pytest.raises(ValueError, match="kind"):
        checkpoints.save(tmp_path / "x.pt", "", {})
    with pytest.raises(TypeError, match="state"):
        checkpoints.save(tmp_path / "x.pt", "demo", [1, 2])


# --- provenance: every shipped checkpoint records the exact command(s) that rebuild it ---------------------------

ROOT = checkpoints.REPO_DIR.parents[1]


class _ParserBuilt(Exception):
    pass


def _parser_of(script: str, monkeypatch) -> argparse.ArgumentParser:
    """The ArgumentParser that ``scripts/<name>.py``'s ``main()`` builds, caught at ``parse_args``."""
    spec = importlib.util.spec_from_file_location(f"_script_{Path(script).stem}", ROOT / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    caught = {}

    def catch(self, *args, **kwargs):
        caught["parser"] = self
        raise _ParserBuilt

    with monkeypatch.context() as m:
        m.setattr(argparse.ArgumentParser, "parse_args", catch)
        m.setattr(sys, "argv", [script])
        with pytest.raises(_ParserBuilt):
            module.main()
    return caught["parser"]


def _commands(name: str) -> list[str]:
    path = checkpoints.REPO_DIR / name
    if path.suffix == ".npz":  # lesson 08's DCGAN generator: arrays and a JSON meta (coursekit.tf.pretrained)
        with np.load(path, allow_pickle=False) as npz:
            return json.loads(str(npz["meta"])).get("commands")
    return torch.load(path, weights_only=True)["meta"].get("commands")


@pytest.mark.parametrize("name", sorted(checkpoints.manifest()))
def test_every_shipped_checkpoint_records_the_commands_that_rebuild_it(name, monkeypatch):
    commands = _commands(name)
    assert isinstance(commands, list) and commands, f"{name}: meta['commands'] must list the calls that made it"
    for command in commands:
        assert isinstance(command, str) and "..." not in command and "…" not in command, f"{name}: {command!r}"
        words = shlex.split(command)
        assert words[:1] == ["python"] and words[1].startswith("scripts/"), f"{name}: {command!r}"
        assert (ROOT / words[1]).is_file(), f"{name}: {words[1]} does not exist"
        parser = _parser_of(words[1], monkeypatch)
        args = parser.parse_args(words[2:])  # a wrong option fails here (SystemExit)
        # canonical: every option written out, so a later change of a default cannot change its meaning
        assert checkpoints.command_line(parser, args, words[1]) == command, f"{name}: {command!r} is not canonical"


def test_the_readme_gives_each_shipped_checkpoints_commands():
    readme = (ROOT / "README.md").read_text()
    for name in sorted(checkpoints.manifest()):
        assert f"`{name}`" in readme, f"README.md does not name {name}"
        for command in _commands(name) or []:
            assert command in readme, f"README.md lacks the command of {name}: {command}"


def test_command_line_spells_out_every_option(tmp_path):
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--kinds", nargs="*", default=["planar", "radial"])
    ap.add_argument("--out", type=Path, default=checkpoints.REPO_DIR / "x.pt")
    ap.add_argument("--run", default=None)
    ap.add_argument("--fast", action="store_true")
    ap.add_argument("--name", default="two words")
    args = ap.parse_args(["--fast"])
    assert checkpoints.command_line(ap, args, "scripts/s.py") == (
        "python scripts/s.py --steps 10 --kinds planar radial --out data/checkpoints/x.pt --fast --name 'two words'")
    again = ap.parse_args(shlex.split(checkpoints.command_line(ap, args, "s.py"))[2:])  # the command means the same
    assert checkpoints.command_line(ap, again, "s.py") == checkpoints.command_line(ap, args, "s.py")


def test_resumed_commands_appends_only_a_new_call(tmp_path):
    out, run = tmp_path / "model.pt", tmp_path / "run.pt"
    assert checkpoints.resumed_commands(out, run, "python a.py --steps 3") == ["python a.py --steps 3"]  # fresh
    checkpoints.save(out, "toy", {}, meta={"commands": ["python a.py --steps 3"]})
    assert checkpoints.resumed_commands(out, run, "python a.py --steps 5") == ["python a.py --steps 5"]  # no run
    run.write_bytes(b"")  # a run to resume
    assert checkpoints.resumed_commands(out, run, "python a.py --steps 3") == ["python a.py --steps 3"]  # same call
    assert checkpoints.resumed_commands(out, run, "python a.py --steps 5") == ["python a.py --steps 3",
                                                                               "python a.py --steps 5"]
    with pytest.raises(ValueError, match="command"):
        checkpoints.resumed_commands(out, run, "  ")
