"""Several processes (gloo on CPU) train exactly as one: the same step, resume across world sizes, NaN stops all;
and lesson 08's VAE step under a TensorFlow MirroredStrategy on two logical CPUs is the one-device step.

Each multi-process test forks 2 workers that join a gloo process group through the same
environment variables ``torchrun`` sets, then run the flow-matching recipe that
``scripts/train_flow_matching.py`` runs (``lessons.flow_matching.mnist_loss`` on an
``MLPImageField``), at a tiny size and in float64.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import subprocess
import sys
import textwrap
import traceback

import pytest
import torch

from coursekit.core.history import NonFiniteError
from coursekit.lessons.flow_matching import mnist_loss
from coursekit.matching import MLPImageField
from coursekit.training import distributed, fit
from coursekit.training.distributed import Shard

BATCH, STEPS, TOL = 8, 4, 1e-10


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(fn, rank, world_size, port, out, args):
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    try:
        with distributed.init(timeout_s=60) as dist:
            result = fn(dist, *args)
        torch.save({"ok": result}, f"{out}.{rank}")
    except BaseException as err:  # noqa: BLE001 - report any failure to the test
        torch.save({"error": type(err).__name__, "message": str(err), "trace": traceback.format_exc()},
                   f"{out}.{rank}")


def run_ranks(tmp_path, fn, *args, world_size=2, timeout=240) -> list[dict]:
    """Run ``fn(dist, *args)`` on ``world_size`` forked processes; each rank's ``{"ok": result}``
    or ``{"error", "message"}``."""
    out = tmp_path / f"result_{fn.__name__}"
    port, ctx = _free_port(), multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_worker, args=(fn, r, world_size, port, str(out), args)) for r in range(world_size)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout)
    for p in procs:
        if p.is_alive():
            p.kill()
    assert not any(p.is_alive() for p in procs)
    results = []
    for r in range(world_size):
        path = out.with_name(f"{out.name}.{r}")
        results.append(torch.load(path, weights_only=False) if path.exists() else {"exit": procs[r].exitcode})
        if path.exists():
            path.unlink()
    return results


def _setup(dist=None, lr=0.05, sgd=False):
    """The script's model and recipe, tiny and in float64: field, optimizer, schedule, data, generator."""
    torch.manual_seed(0)
    field = MLPImageField((1, 4, 4), hidden=16, n_layers=2, t_dim=8).double()
    with torch.no_grad():  # the last layer starts at zero; give every layer a gradient from step 0
        for p in field.parameters():
            p.normal_(0, 0.3)
    x = torch.rand(40, 1, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 2 - 1
    gen = torch.Generator().manual_seed(2)
    opt = torch.optim.SGD(field.parameters(), lr=lr) if sgd else torch.optim.Adam(field.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=STEPS, eta_min=lr / 10)
    loss = mnist_loss(field, x, BATCH, generator=gen, distributed=dist)
    return field, opt, sched, loss, gen


def _params(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


# --- one step on 2 processes == one step on 1 ------------------------------------------------


def sgd_steps(dist, n_steps):
    field, opt, sched, loss, gen = _setup(dist, sgd=True)
    rows = []
    field.register_forward_pre_hook(lambda m, args: rows.append(args[1].shape[0]))
    h = fit(loss, field, opt, n_steps, scheduler=sched, progress=False, generators=[gen], distributed=dist)
    return {"params": _params(field), "loss": h["loss"], "rows": rows}


def test_two_processes_on_half_batches_take_the_step_of_one_process_on_the_whole_batch(tmp_path):
    field, opt, sched, loss, gen = _setup(sgd=True)  # the plain single-process recipe, distributed=None
    h = fit(loss, field, opt, 2, scheduler=sched, progress=False, generators=[gen])
    ranks = run_ranks(tmp_path, sgd_steps, 2)
    assert all("ok" in r for r in ranks), ranks
    for r in ranks:
        assert r["ok"]["rows"] == [BATCH // 2] * 2  # each rank computed only its half of the global batch
        assert _max_diff(r["ok"]["params"], _params(field)) <= TOL
        # rank 0 logs the mean over the ranks: the loss of the global batch
        assert max(abs(a - b) for a, b in zip(r["ok"]["loss"], h["loss"])) <= TOL
    assert _max_diff(_params(field), _setup(sgd=True)[0].state_dict()) > 1e-3  # the steps did move the weights


# --- stop or kill after a checkpoint, resume at another world size --------------------------


def train_until(dist, n_steps, checkpoints, kill_at=None):
    field, opt, sched, loss, gen = _setup(dist)

    def loss_fn(step):
        if step == kill_at:
            os._exit(3)  # as if the job were killed: no cleanup, no final checkpoint
        return loss(step)

    # each rank gets its own path: only rank 0 writes, and rank 1 resumes from rank 0's broadcast
    ckpt = checkpoints[dist.rank] if isinstance(checkpoints, list) else checkpoints
    fit(loss_fn, field, opt, n_steps, scheduler=sched, checkpoint=ckpt, checkpoint_every=2, progress=False,
        generators=[gen], distributed=dist)
    return _params(field)


def _uninterrupted():
    field, opt, sched, loss, gen = _setup()
    fit(loss, field, opt, STEPS, scheduler=sched, progress=False, generators=[gen])
    return _params(field)


def test_a_two_process_run_killed_after_a_checkpoint_resumes_as_one_process(tmp_path):
    ckpt, elsewhere = tmp_path / "run.pt", tmp_path / "rank1" / "run.pt"
    killed = run_ranks(tmp_path, train_until, STEPS, [ckpt, elsewhere], 3)
    assert [r.get("exit") for r in killed] == [3, 3]
    assert ckpt.exists() and not elsewhere.exists()  # rank 0 alone wrote (at step 2)
    alone = distributed.init()  # one process, no torchrun: world size 1
    field, opt, sched, loss, gen = _setup(alone)
    fit(loss, field, opt, STEPS, scheduler=sched, checkpoint=ckpt, checkpoint_every=2, progress=False,
        generators=[gen], distributed=alone)
    assert _max_diff(_params(field), _uninterrupted()) <= TOL


def test_a_one_process_run_resumes_on_two_processes(tmp_path):
    ckpt, elsewhere = tmp_path / "run.pt", tmp_path / "rank1" / "run.pt"
    field, opt, sched, loss, gen = _setup()
    fit(loss, field, opt, 2, scheduler=sched, checkpoint=ckpt, progress=False, generators=[gen])
    resumed = run_ranks(tmp_path, train_until, STEPS, [ckpt, elsewhere])
    assert all("ok" in r for r in resumed), resumed
    reference = _uninterrupted()
    for r in resumed:  # both ranks resumed from step 2 (rank 1 from rank 0's broadcast) and agree
        assert _max_diff(r["ok"], reference) <= TOL
    assert not elsewhere.exists()


# --- a NaN on one rank stops every rank --------------------------------------------------------


def nan_on_one_rank(dist):
    messages = []
    for bad_rank, bad_step, what in ((1, 1, "loss"), (0, 2, "gradient")):
        field, opt, sched, loss, gen = _setup(dist)

        def loss_fn(step, loss=loss, field=field, bad_rank=bad_rank, bad_step=bad_step, what=what):
            value = loss(step)
            if dist.rank == bad_rank and step == bad_step:
                if what == "loss":
                    return value * float("nan")
                # finite loss, NaN gradient: d/dp sqrt(0 · Σp) = inf · 0
                return value + torch.sqrt(0 * next(field.parameters()).sum())
            return value

        try:
            fit(loss_fn, field, opt, STEPS, progress=False, distributed=dist)
            messages.append("no error")
        except NonFiniteError as err:
            messages.append(str(err))
    return messages


def test_nan_on_one_rank_stops_every_rank_naming_step_and_rank(tmp_path):
    ranks = run_ranks(tmp_path, nan_on_one_rank)
    assert all("ok" in r for r in ranks), ranks
    for r in ranks:
        loss_msg, grad_msg = r["ok"]
        assert "step 1" in loss_msg and "loss" in loss_msg and "rank 1 of 2" in loss_msg
        assert "step 2" in grad_msg and "gradient" in grad_msg and "rank 0 of 2" in grad_msg


# --- single process and argument checks (no process group) ------------------------------------


def test_without_torchrun_init_is_a_single_process_and_fit_is_unchanged(monkeypatch):
    for k in distributed.TORCHRUN_ENV:
        monkeypatch.delenv(k, raising=False)
    dist = distributed.init(device="cpu")
    assert (dist.rank, dist.world_size, dist.is_main, dist.active) == (0, 1, True, False)
    field, opt, sched, loss, gen = _setup(dist)
    assert dist.wrap(field) is field
    fit(loss, field, opt, STEPS, scheduler=sched, progress=False, generators=[gen], distributed=dist)
    assert _max_diff(_params(field), _uninterrupted()) == 0.0  # bit-identical to distributed=None


def test_shard_splits_a_global_batch_and_rejects_what_does_not_divide():
    x = torch.arange(12)
    assert [Shard(r, 3).take(x).tolist() for r in range(3)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    with pytest.raises(ValueError, match="batch = 10 .* divisible by the number of processes \\(4\\)"):
        Shard(0, 4).size(10)
    with pytest.raises(ValueError, match="rank"):
        Shard(2, 2)
    with pytest.raises(TypeError, match="world_size must be an int"):
        Shard(0, 2.0)
    with pytest.raises(ValueError, match="batch = 7 .* divisible"):
        mnist_loss(torch.nn.Linear(2, 2), torch.zeros(10, 2), 7, distributed=_FakeTwo())


class _FakeTwo:
    shard = Shard(1, 2)


def test_init_validates_its_arguments(monkeypatch):
    with pytest.raises(ValueError, match="backend must be"):
        distributed.init(backend="mpi")
    with pytest.raises(ValueError, match="timeout_s"):
        distributed.init(timeout_s=0)
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(ValueError, match="MASTER_ADDR"):
        distributed.init()
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "1")
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE must be an int"):
        distributed.init()


# --- TensorFlow: MirroredStrategy on two logical CPU devices ----------------------------------

TF_WORKER = textwrap.dedent('''
    import json, tempfile
    import numpy as np
    import coursekit.tf as ckt  # first: it sets TensorFlow's environment
    import keras
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from coursekit.training.tf_distributed import make_strategy, make_vae_step
    from coursekit.training.tf_run import TrainingRun

    B, out = 8, {}
    sampler = ckt.BatchSampler((np.random.default_rng(0).random((64, 28, 28, 1)) > 0.7).astype("float32"), B)
    mirrored = make_strategy("mirrored", ["/cpu:0", "/cpu:1"])

    def build(strategy=None):  # the same initial weights and ε stream every time
        keras.utils.set_random_seed(0)
        with (strategy or tf.distribute.get_strategy()).scope():
            vae, opt = ckt.CVAE(2), keras.optimizers.SGD(1e-3)  # SGD: sensitive to the gradient's scale
            opt.build(vae.trainable_variables)
        rng = tf.random.Generator.from_seed(0)
        step = make_vae_step(strategy, vae, opt, rng, B) if strategy else ckt.make_vae_train_step(vae, opt, rng)
        return vae, opt, rng, step

    def diff(a, b):
        return max(float(np.abs(u.numpy() - v.numpy()).max()) for u, v in zip(a.weights, b.weights))

    one, *_, step1 = build()  # one device: the lesson's own step
    two, *_, step2 = build(mirrored)
    h1 = [{k: float(v) for k, v in step1(sampler(s)).items()} for s in range(2)]
    h2 = [{k: float(v) for k, v in step2(sampler(s)).items()} for s in range(2)]
    out.update(replicas=mirrored.num_replicas_in_sync, weights=diff(one, two), moved=diff(one, build()[0]),
               loss=max(abs(a["loss"] - b["loss"]) / abs(a["loss"]) for a, b in zip(h1, h2)),
               grad_norm=max(abs(a["grad_norm"] - b["grad_norm"]) / a["grad_norm"] for a, b in zip(h1, h2)))

    # TrainingRun checkpointed at step 2 on the two devices resumes on one; against 4 one-device steps
    for s in (2, 3):
        step1(sampler(s))
    folder = tempfile.mkdtemp()
    for strategy, n_steps in ((mirrored, 2), (None, 4)):
        vae, opt, rng, step = build(strategy)
        TrainingRun(folder, checkpoint_every=2, model=vae, optimizer=opt, rng=rng).fit(step, sampler, n_steps,
                                                                                   progress=False)
    out["resumed"] = diff(vae, one)
    print(json.dumps(out))
''')


def test_tf_mirrored_strategy_on_two_logical_cpus_takes_the_one_device_step_and_resumes_on_one(tmp_path):
    # a fresh process: logical devices must be configured before TensorFlow starts
    script = tmp_path / "tf_worker.py"
    script.write_text(TF_WORKER)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["replicas"] == 2
    assert out["moved"] > 1e-3  # the two SGD steps did move the weights
    assert out["weights"] <= 1e-6 and out["loss"] <= 1e-6 and out["grad_norm"] <= 1e-6  # float32
    assert out["resumed"] <= 1e-6  # TrainingRun's checkpoint of the mirrored run resumes on one device
