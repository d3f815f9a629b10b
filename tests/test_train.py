"""Training loop: kill-and-resume reaches the same final state, NaN guard, atomic checkpoints."""

import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from coursekit.training import History, NonFiniteError, checkpoints, fit, smooth

WORKER = textwrap.dedent(
    """
    import sys, time, torch
    from coursekit.training import fit
    torch.set_num_threads(1)
    path, n_steps, pause = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    kill_at_save = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    if kill_at_save:  # die between writing the temporary file and renaming it over the checkpoint
        import os
        from coursekit.training import checkpoints
        saves, real_replace = [], os.replace

        def replace(src, dst):
            saves.append(dst)
            if len(saves) == kill_at_save:
                os._exit(9)
            real_replace(src, dst)

        checkpoints.os.replace = replace
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=7, gamma=0.9)

    calls = []

    def loss_fn(step):
        calls.append(step)
        x = torch.randn(32, 2)          # fresh data from the RNG every step
        time.sleep(pause)
        return {"loss": ((model(x) - x.sum(1, keepdim=True).sin()) ** 2).mean(), "lr": sched.get_last_lr()[0]}

    h = fit(loss_fn, model, opt, n_steps, checkpoint=path, checkpoint_every=5, scheduler=sched, progress=False)
    torch.save({"model": model.state_dict(), "steps": h.steps, "loss": h["loss"], "calls": calls}, path + ".final")
    """
)


def _run(tmp_path, name, n_steps, pause=0.0, wait=True, kill_at_save=0):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    cmd = [sys.executable, str(script), str(tmp_path / name), str(n_steps), str(pause), str(kill_at_save)]
    if wait:
        return subprocess.run(cmd, timeout=120).returncode
    return subprocess.Popen(cmd)


def test_killed_training_resumes_to_the_same_final_state(tmp_path):
    n_steps = 60
    assert _run(tmp_path, "reference.pt", n_steps) == 0
    reference = torch.load(tmp_path / "reference.pt.final")

    proc = _run(tmp_path, "killed.pt", n_steps, pause=0.05, wait=False)
    ckpt = tmp_path / "killed.pt"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if ckpt.exists() and checkpoints.load(ckpt).meta["step"] >= 15:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = checkpoints.load(ckpt).meta
    assert 15 <= saved["step"] < n_steps, "the kill must land mid-training"
    assert not (tmp_path / "killed.pt.final").exists()

    assert _run(tmp_path, "killed.pt", n_steps) == 0  # same command: resumes from the checkpoint
    resumed = torch.load(tmp_path / "killed.pt.final")
    # it resumed: only the steps after the checkpoint ran again (a restart from 0 would also match the reference)
    assert resumed["calls"] == list(range(saved["step"], n_steps))
    assert resumed["steps"] == list(range(n_steps))  # history kept, nothing lost or repeated
    assert resumed["loss"][: saved["step"]] == reference["loss"][: saved["step"]]
    assert resumed["loss"] == reference["loss"]
    for key, value in reference["model"].items():
        assert torch.equal(resumed["model"][key], value), key


def test_a_kill_inside_the_checkpoint_write_resumes_from_the_previous_one(tmp_path):
    n_steps = 30
    assert _run(tmp_path, "reference.pt", n_steps) == 0
    reference = torch.load(tmp_path / "reference.pt.final")
    assert _run(tmp_path, "cut.pt", n_steps, kill_at_save=3) == 9  # died writing the step-15 checkpoint
    assert checkpoints.load(tmp_path / "cut.pt").meta["step"] == 10  # the step-10 file is intact
    assert (tmp_path / "cut.pt.tmp").exists()  # the half-done write is left aside, never read
    assert _run(tmp_path, "cut.pt", n_steps) == 0
    resumed = torch.load(tmp_path / "cut.pt.final")
    assert resumed["calls"] == list(range(10, n_steps)) and resumed["loss"] == reference["loss"]
    for key, value in reference["model"].items():
        assert torch.equal(resumed["model"][key], value), key


def _tiny():
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1)
    return model, torch.optim.SGD(model.parameters(), lr=0.1)


def test_nan_loss_stops_with_step_and_quantity(tmp_path):
    model, opt = _tiny()
    x = torch.randn(8, 2)

    def loss_fn(step):
        loss = model(x).pow(2).mean()
        return loss * float("nan") if step == 7 else loss

    with pytest.raises(NonFiniteError, match="step 7: loss is nan"):
        fit(loss_fn, model, opt, 20, checkpoint=tmp_path / "c.pt", checkpoint_every=5, progress=False)
    assert checkpoints.load(tmp_path / "c.pt").meta["step"] == 5  # the last good checkpoint is kept


def test_logged_scalars_are_checked_too():
    model, opt = _tiny()
    with pytest.raises(NonFiniteError, match="step 0: kl is inf"):
        fit(lambda s: {"loss": model.bias.sum(), "kl": torch.tensor(float("inf"))}, model, opt, 3, progress=False)


def test_gradient_guard_message():
    model, opt = _tiny()

    def loss_fn(step):
        # finite loss, infinite gradient: d/dw sqrt(w - w) at 0
        return torch.sqrt((model.weight - model.weight.detach()).abs().sum())

    with pytest.raises(NonFiniteError, match="gradient of parameter 'weight'"):
        fit(loss_fn, model, opt, 3, progress=False)


def test_fit_validates_arguments_and_loss_type():
    model, opt = _tiny()
    with pytest.raises(ValueError, match="n_steps"):
        fit(lambda s: model.bias.sum(), model, opt, -1)
    with pytest.raises(ValueError, match="checkpoint_every"):
        fit(lambda s: model.bias.sum(), model, opt, 1, checkpoint_every=0)
    with pytest.raises(TypeError, match="'loss'"):
        fit(lambda s: {"kl": model.bias.sum()}, model, opt, 1, progress=False)


def test_finished_run_is_not_repeated_and_can_be_extended(tmp_path):
    model, opt = _tiny()
    x = torch.randn(16, 2)
    h = fit(lambda s: model(x).pow(2).mean(), model, opt, 10, checkpoint=tmp_path / "c.pt", progress=False)
    assert len(h.steps) == 10
    w = model.weight.detach().clone()
    h = fit(lambda s: model(x).pow(2).mean(), model, opt, 10, checkpoint=tmp_path / "c.pt", progress=False)
    assert torch.equal(model.weight, w) and len(h.steps) == 10
    h = fit(lambda s: model(x).pow(2).mean(), model, opt, 15, checkpoint=tmp_path / "c.pt", progress=False)
    assert h.steps == list(range(15)) and not torch.equal(model.weight, w)


def test_save_checkpoint_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "c.pt"
    checkpoints.save(path, "test", {}, meta={"step": 1})

    def crash(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(RuntimeError):
        checkpoints.save(path, "test", {}, meta={"step": 2})
    monkeypatch.undo()
    assert checkpoints.load(path).meta["step"] == 1  # the old checkpoint survived the failed write


def test_fit_checkpoint_holds_only_safe_types_and_restores_every_rng(tmp_path):
    import random

    import numpy as np

    model, opt = _tiny()
    fit(lambda s: model.bias.sum() ** 2, model, opt, 3, checkpoint=tmp_path / "c.pt", progress=False)
    expected = (random.random(), np.random.rand(), torch.rand(1))
    raw = torch.load(tmp_path / "c.pt", weights_only=True)  # no pickled objects in the file
    assert raw["kind"] == "fit" and raw["meta"]["step"] == 3
    random.random(), np.random.rand(), torch.rand(1)  # move every RNG on
    from coursekit.training.loop import set_rng_state

    set_rng_state(raw["meta"]["rng"])
    assert (random.random(), np.random.rand()) == expected[:2] and torch.equal(torch.rand(1), expected[2])


def test_history_and_smooth():
    h = History()
    for i in range(5):
        h.append(i, {"loss": float(i)})
    assert h["loss"] == [0, 1, 2, 3, 4]
    assert smooth(h["loss"], 2).tolist() == [0.5, 1.5, 2.5, 3.5]


def test_history_round_trips_through_a_dict():
    h = History()
    h.append(0, {"loss": 1.0, "kl": 2.0})
    h.append(3, {"loss": 0.5, "kl": 1.0})
    again = History.from_dict(h.to_dict())
    assert again.steps == [0, 3] and again["kl"] == [2.0, 1.0]


def test_private_generators_are_checkpointed_so_resume_is_exact(tmp_path):
    data = torch.randn(64, 2, generator=torch.Generator().manual_seed(1))

    def run(n_steps, ckpt, stop_at=None):
        torch.manual_seed(0)
        model = torch.nn.Linear(2, 1)
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        gen = torch.Generator().manual_seed(0)  # the batch order, as in the lesson wrappers

        def loss_fn(step):
            if step == stop_at:
                raise KeyboardInterrupt  # Ctrl-C in the middle of training
            idx = torch.randint(0, len(data), (8,), generator=gen)
            return model(data[idx]).pow(2).mean()

        return fit(loss_fn, model, opt, n_steps, checkpoint=ckpt, checkpoint_every=5, progress=False,
                   generators=[gen]), model

    reference, ref_model = run(20, tmp_path / "ref.pt")
    with pytest.raises(KeyboardInterrupt):
        run(20, tmp_path / "cut.pt", stop_at=12)
    resumed, model = run(20, tmp_path / "cut.pt")
    assert resumed["loss"] == reference["loss"]  # bit-identical, not merely close
    assert torch.equal(model.weight, ref_model.weight)
    with pytest.raises(ValueError, match="generator states"):
        fit(lambda s: model.bias.sum(), model, torch.optim.SGD(model.parameters(), lr=0.1), 25,
            checkpoint=tmp_path / "cut.pt", progress=False)
    with pytest.raises(TypeError, match="generators"):
        fit(lambda s: model.bias.sum(), model, torch.optim.SGD(model.parameters(), lr=0.1), 1, generators=[0])
