"""Training that survives interruptions: ``tf.train.CheckpointManager`` + step counter.

    run = TrainingRun("runs/vae", model=model, optimizer=opt, rng=rng, checkpoint_every=200)
    history = run.fit(step_fn, sampler, n_steps=2000)   # resumes if "runs/vae" has a checkpoint

A checkpoint holds every object passed in (models, optimizers, ``tf.random.Generator``)
and the step counter; ``history.json`` beside it holds the logged scalars up to that step.
TensorFlow writes the checkpoint files first and then renames the ``checkpoint`` index
file, so a run killed at any instant resumes from the last complete checkpoint.

Taught in: notebook 08.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import keras
import tensorflow as tf
from tqdm.auto import tqdm

from ..core.history import History, NonFiniteError


def _check_built(objects: Mapping[str, object]) -> None:
    # An unbuilt Keras model or optimizer has no variables yet: a restore would silently
    # skip them (Keras 3 does not defer restores), so resuming would lose state.
    for name, obj in objects.items():
        if isinstance(obj, (keras.layers.Layer, keras.optimizers.Optimizer)) and not obj.built:
            is_opt = isinstance(obj, keras.optimizers.Optimizer)
            hint = "optimizer.build(model.trainable_variables)" if is_opt else "call the model on a batch"
            raise ValueError(f"{name!r} is not built yet; {hint} before creating the TrainingRun")


class TrainingRun:
    """Checkpointed, resumable training loop with a tqdm bar and a NaN/Inf guard."""

    def __init__(self, directory: str | os.PathLike, *, checkpoint_every: int = 100, max_to_keep: int = 3,
                 **objects):
        if not objects:
            raise ValueError("pass the objects to checkpoint as keywords, e.g. model=..., optimizer=...")
        if not isinstance(checkpoint_every, int) or checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be a positive int, got {checkpoint_every!r}")
        if "step" in objects:
            raise ValueError("'step' is reserved for the run's own step counter")
        _check_built(objects)
        self.directory = Path(directory)
        self.checkpoint_every = checkpoint_every
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.checkpoint = tf.train.Checkpoint(step=self.step, **objects)
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(self.directory), max_to_keep)
        self.history = History()
        self.restore()

    @property
    def history_path(self) -> Path:
        return self.directory / "history.json"

    def restore(self) -> int:
        """Load the latest checkpoint if there is one; returns the step it holds (0 if none)."""
        latest = self.manager.latest_checkpoint
        if latest is None:
            return 0
        self.checkpoint.restore(latest).assert_existing_objects_matched()
        step = int(self.step.numpy())
        if self.history_path.exists():
            raw = json.loads(self.history_path.read_text())
            self.history = History(raw["steps"], raw["values"]).truncate(step)
        return step

    def save(self) -> str:
        """Write history then checkpoint (a crash in between only leaves extra history,
        which :meth:`restore` truncates); returns the checkpoint prefix."""
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.history_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps({"steps": self.history.steps, "values": self.history.values}))
        os.replace(tmp, self.history_path)
        return self.manager.save(checkpoint_number=int(self.step.numpy()))

    def fit(self, step_fn: Callable[[object], Mapping[str, tf.Tensor]], batches: Callable[[int], object],
            n_steps: int, *, progress: bool = True, desc: str = "entrenando",
            callback: Callable[[int], None] | None = None, callback_every: int | None = None) -> History:
        """Run ``step_fn(batches(step))`` until the counter reaches ``n_steps`` (a total, not
        an increment: a resumed run does only what is missing). ``step_fn`` returns a dict
        of scalars with a ``"loss"``; ``callback(step)`` runs every ``callback_every`` steps.

        Raises :class:`NonFiniteError` naming step and quantity on NaN/Inf; nothing is saved
        then, so the last checkpoint still holds finite weights.
        """
        if not isinstance(n_steps, int) or n_steps < 0:
            raise ValueError(f"n_steps must be a non-negative int, got {n_steps!r}")
        start = int(self.step.numpy())
        bar = tqdm(total=n_steps, initial=min(start, n_steps), desc=desc, disable=not progress)
        for step in range(start, n_steps):
            out = step_fn(batches(step))
            if not isinstance(out, Mapping) or "loss" not in out:
                raise TypeError("step_fn must return a dict of scalars with a 'loss' entry")
            scalars = {k: float(v) for k, v in out.items()}
            for name, value in scalars.items():
                if not math.isfinite(value):
                    raise NonFiniteError(
                        f"step {step}: {name} = {value} (non-finite); "
                        f"last checkpoint: {self.manager.latest_checkpoint}"
                    )
            self.history.append(step, scalars)
            self.step.assign(step + 1)
            if progress and (step % 10 == 0 or step == n_steps - 1):
                bar.set_postfix(loss=f"{scalars['loss']:.4g}")
            bar.update(1)
            if callback is not None and callback_every and (step + 1) % callback_every == 0:
                callback(step + 1)
            if (step + 1) % self.checkpoint_every == 0 or step + 1 == n_steps:
                self.save()
        bar.close()
        return self.history
