"""Training that survives interruptions: ``tf.train.CheckpointManager`` + step counter.

    run = TrainingRun("runs/vae", model=model, optimizer=opt, rng=rng, checkpoint_every=200)
    history = run.fit(step_fn, sampler, n_steps=2000)   # resumes if "runs/vae" has a checkpoint

A checkpoint holds every object passed in (models, optimizers, ``tf.random.Generator``)
and the step counter; ``history.json`` beside it holds the logged scalars up to that step.
TensorFlow writes the checkpoint files first and then renames the ``checkpoint`` index
file, so a run killed at any instant resumes from the last complete checkpoint.

``fit`` also measures where the time goes (``run.timings``: data, step, logging, callback,
checkpoint; the first step of each call, which traces the ``tf.function``, apart) and, a few
steps in, prints how long the rest will take at the rate it has just measured.

Taught in: notebook 08.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path

import keras
import tensorflow as tf
from tqdm.auto import tqdm

from ..core.checks import positive_int
from ..core.history import History, NonFiniteError

#: the phases of :attr:`TrainingRun.timings` (seconds, summed over the steps of every ``fit``)
PHASES = ("trace", "data", "step", "log", "callback", "checkpoint")


def _check_built(objects: Mapping[str, object]) -> None:
    # An unbuilt Keras model or optimizer has no variables yet: a restore would silently
    # skip them (Keras 3 does not defer restores), so resuming would lose state.
    for name, obj in objects.items():
        if isinstance(obj, (keras.layers.Layer, keras.optimizers.Optimizer)) and not obj.built:
            is_opt = isinstance(obj, keras.optimizers.Optimizer)
            hint = "optimizer.build(model.trainable_variables)" if is_opt else "call the model on a batch"
            raise ValueError(f"{name!r} is not built yet; {hint} before creating the TrainingRun")


def format_duration(seconds: float) -> str:
    """``"3 min 05 s"`` / ``"42 s"``: what the time estimate prints."""
    seconds = max(0, round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


class TrainingRun:
    """Checkpointed, resumable training loop with a tqdm bar, a time estimate and a NaN/Inf guard."""

    def __init__(self, directory: str | os.PathLike, *, checkpoint_every: int = 100, max_to_keep: int = 3,
                 **objects):
        if not objects:
            raise ValueError("pass the objects to checkpoint as keywords, e.g. model=..., optimizer=...")
        checkpoint_every = positive_int(checkpoint_every, "checkpoint_every")
        if "step" in objects:
            raise ValueError("'step' is reserved for the run's own step counter")
        _check_built(objects)
        self.directory = Path(directory)
        self.checkpoint_every = checkpoint_every
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.objects = dict(objects)
        self.checkpoint = tf.train.Checkpoint(step=self.step, **objects)
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(self.directory), max_to_keep)
        self.history = History()
        self.timings = dict.fromkeys(PHASES, 0.0)
        self.timed_steps = 0  # steps counted in timings (the traced first steps excluded)
        self.seconds_per_step: float | None = None  # the rate behind the last time estimate
        self.restore()

    @property
    def history_path(self) -> Path:
        return self.directory / "history.json"

    def restore(self) -> int:
        """Load the newest readable checkpoint if there is one; returns the step it holds (0 if none).

        A checkpoint that cannot be read (a truncated or corrupt file) is skipped with a warning
        and the one before it is used. A directory that holds a run (``history.json`` or
        ``ckpt-*`` files) but no ``checkpoint`` index file raises ``ValueError`` and is left
        untouched: starting over there would overwrite its history.
        """
        if self.manager.latest_checkpoint is None:
            self._refuse_orphaned_run()
            return 0
        skipped = []
        for path in reversed(self.manager.checkpoints):  # newest first
            try:
                status = self.checkpoint.restore(path)
            except (tf.errors.OpError, IndexError, ValueError, OSError) as err:  # unreadable: try the one before
                skipped.append(f"{Path(path).name} ({type(err).__name__}: {err})")
                continue
            status.assert_existing_objects_matched()  # a different model is an error, not a fallback
            break
        else:
            raise ValueError(f"no checkpoint in {self.directory} can be read: {'; '.join(skipped)}. Delete the "
                             "folder (or pass another directory) to start over.")
        if skipped:
            warnings.warn(f"skipped unreadable checkpoints in {self.directory}: {'; '.join(skipped)}; "
                          f"resuming from {Path(path).name}", RuntimeWarning, stacklevel=2)
        step = int(self.step.numpy())
        if self.history_path.exists():
            self.history = History.from_dict(json.loads(self.history_path.read_text())).truncate(step)
        return step

    def _refuse_orphaned_run(self) -> None:
        leftovers = sorted(p.name for p in self.directory.glob("ckpt-*.index"))
        if self.history_path.exists() or leftovers:
            found = ", ".join(([self.history_path.name] if self.history_path.exists() else []) + leftovers)
            raise ValueError(
                f"{self.directory} holds a training run ({found}) but its index file 'checkpoint' is missing, "
                "so it cannot be resumed safely; nothing was changed. Put the 'checkpoint' file back to "
                "resume, or delete the folder (or pass another directory) to start over."
            )

    def _variables(self) -> list[tf.Variable]:
        """Every variable the checkpoint holds (model, optimizer, RNG state, step counter)."""
        out = [self.step]
        for obj in self.objects.values():
            if isinstance(obj, tf.Variable):
                out.append(obj)
            elif isinstance(obj, tf.random.Generator):
                out.append(obj.state)
            else:  # Keras models, layers and optimizers
                out += list(getattr(obj, "variables", []))
        return out

    def save(self) -> str:
        """Write history then checkpoint (a crash in between only leaves extra history,
        which :meth:`restore` truncates); returns the checkpoint prefix."""
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.history_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.history.to_dict()))
        os.replace(tmp, self.history_path)
        return self.manager.save(checkpoint_number=int(self.step.numpy()))

    def fit(self, step_fn: Callable[[object], Mapping[str, tf.Tensor]], batches: Callable[[int], object],
            n_steps: int, *, progress: bool = True, desc: str = "entrenando",
            callback: Callable[[int], None] | None = None, callback_every: int | None = None,
            estimate_after: int = 10) -> History:
        """Run ``step_fn(batches(step))`` until the counter reaches ``n_steps`` (a total, not
        an increment: a resumed run does only what is missing). ``step_fn`` returns a dict
        of scalars with a ``"loss"``; ``callback(step)`` runs every ``callback_every`` steps.

        With ``progress``, after the traced first step and ``estimate_after`` more, prints the
        measured seconds per step and the time left (also in :attr:`seconds_per_step`).

        Raises :class:`NonFiniteError` naming step and quantity on NaN/Inf; nothing is saved
        then, and the objects in memory are rolled back to the last checkpoint (or to where
        ``fit`` started, when there is none yet), so they hold finite weights again.
        """
        if not isinstance(n_steps, int) or n_steps < 0:
            raise ValueError(f"n_steps must be a non-negative int, got {n_steps!r}")
        estimate_after = positive_int(estimate_after, "estimate_after")
        start = int(self.step.numpy())
        # where to roll back to after a NaN when no checkpoint exists yet: the state fit started from
        snapshot = None if self.manager.latest_checkpoint else [(v, v.numpy()) for v in self._variables()]
        bar = tqdm(total=n_steps, initial=min(start, n_steps), desc=desc, disable=not progress)
        clock = time.perf_counter
        t_rate = None  # when the step after the traced one started
        for step in range(start, n_steps):
            t0 = clock()
            batch = batches(step)
            t1 = clock()
            out = step_fn(batch)
            if not isinstance(out, Mapping) or "loss" not in out:
                raise TypeError("step_fn must return a dict of scalars with a 'loss' entry")
            scalars = {k: float(v) for k, v in out.items()}  # float() waits for the step to finish
            t2 = clock()
            for name, value in scalars.items():
                if not math.isfinite(value):
                    bar.close()
                    back_to = self._roll_back(snapshot, start)
                    raise NonFiniteError(
                        f"step {step}: {name} = {value} (non-finite); the model, optimizer, RNG and step "
                        f"counter are back at {back_to} (finite weights). Lower the learning rate, or "
                        "look at the batch of this step, and call fit again."
                    )
            self.history.append(step, scalars)
            self.step.assign(step + 1)
            if progress and (step % 10 == 0 or step == n_steps - 1):
                bar.set_postfix(loss=f"{scalars['loss']:.4g}")
            bar.update(1)
            t3 = clock()
            if callback is not None and callback_every and (step + 1) % callback_every == 0:
                callback(step + 1)
            t4 = clock()
            if (step + 1) % self.checkpoint_every == 0 or step + 1 == n_steps:
                self.save()
            t5 = clock()
            self._add_timings(step == start, t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)
            if step == start:
                t_rate = t5
            elif step == start + estimate_after:
                self.seconds_per_step = (t5 - t_rate) / estimate_after
                if progress:
                    left = n_steps - step - 1
                    tqdm.write(f"{desc}: {self.seconds_per_step:.3g} s por paso (medido en {estimate_after} pasos) "
                               f"→ faltan unos {format_duration(left * self.seconds_per_step)} para {left} pasos")
        bar.close()
        return self.history

    def _roll_back(self, snapshot: list | None, start: int) -> str:
        """Undo the steps since the last checkpoint (or since ``fit`` started, when none exists)."""
        if self.manager.latest_checkpoint is not None:
            step = self.restore()
            return f"step {step} (last checkpoint: {self.manager.latest_checkpoint})"
        for variable, value in snapshot or []:
            variable.assign(value)
        self.history = self.history.truncate(start)
        return f"step {start} (where fit started; no checkpoint yet)"

    def _add_timings(self, traced: bool, data: float, step: float, log: float, callback: float,
                     checkpoint: float) -> None:
        self.timings["trace" if traced else "step"] += step
        for name, seconds in (("data", data), ("log", log), ("callback", callback), ("checkpoint", checkpoint)):
            self.timings[name] += seconds
        self.timed_steps += not traced
