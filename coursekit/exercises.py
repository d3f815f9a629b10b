"""Instant feedback for the cells a student writes (the top layer: it compares with any model).

    check("capa planar", planar_forward, reference=Planar_forward, cases=[("z en el origen", (z0,)), ...],
          outputs=("x", "logdet"), hint="¿Has usado û en lugar de u?")

runs the student's function on every case and compares it with coursekit's tested
implementation. It prints, in Spanish, either that every case agrees (and the largest
error), or the first case that fails: which output, expected vs got, and the hint. A
function that still raises ``NotImplementedError`` (the TODO is not written yet) is
reported as pending and the notebook goes on with coursekit's implementation, so a
student can run the whole lesson before doing the exercises.

With ``COURSEKIT_EXERCISES=strict`` (set by ``make test`` for the solutions notebooks) a
pending or wrong answer raises :class:`ExerciseError`, so the solutions are checked in CI.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


class ExerciseError(AssertionError):
    """A solution that fails its check while ``COURSEKIT_EXERCISES=strict``."""


def strict() -> bool:
    """True when pending or wrong answers must stop the run (CI over the solutions notebooks)."""
    return os.environ.get("COURSEKIT_EXERCISES", "").strip().lower() == "strict"


@dataclass
class Feedback:
    """The verdict of one check: ``passed``, ``pending`` (not written yet) and the message shown."""

    name: str
    passed: bool
    pending: bool
    message: str

    def __repr__(self) -> str:  # what the notebook prints when the check is the cell's last line
        return self.message

    def _repr_html_(self) -> str:
        colour = "#1a7f37" if self.passed else "#9a6700" if self.pending else "#cf222e"
        body = self.message.replace("&", "&amp;").replace("<", "&lt;").replace("\n", "<br>")
        return f'<div style="border-left:4px solid {colour};padding:4px 10px">{body}</div>'


def _as_array(value: Any) -> np.ndarray | None:
    if hasattr(value, "detach"):  # torch
        return value.detach().cpu().double().numpy()
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):  # tensorflow
        return np.asarray(value.numpy(), dtype=np.float64)
    if isinstance(value, (int, float, np.ndarray, np.number)) and not isinstance(value, bool):
        return np.asarray(value, dtype=np.float64)
    return None


def _short(a: np.ndarray) -> str:
    flat = a.reshape(-1)
    shown = ", ".join(f"{v:.4g}" for v in flat[:4]) + (", …" if flat.size > 4 else "")
    return f"[{shown}]" if a.ndim else f"{float(a):.6g}"


def compare(expected: Any, got: Any, rtol: float, atol: float) -> tuple[str | None, float]:
    """``(problem, max_error)``: ``problem`` is None when ``got`` matches ``expected``."""
    exp_arr, got_arr = _as_array(expected), _as_array(got)
    if exp_arr is None:
        return (None, 0.0) if got == expected else (f"esperaba {expected!r}, obtuve {got!r}", math.inf)
    if got_arr is None:
        return f"esperaba un número o un tensor, obtuve un {type(got).__name__}", math.inf
    if got_arr.shape != exp_arr.shape:
        return f"forma esperada {exp_arr.shape}, obtenida {got_arr.shape}", math.inf
    if not np.isfinite(got_arr).all() and np.isfinite(exp_arr).all():
        return f"hay NaN o Inf en tu resultado: {_short(got_arr)}", math.inf
    err = float(np.max(np.abs(got_arr - exp_arr))) if exp_arr.size else 0.0
    if not np.allclose(got_arr, exp_arr, rtol=rtol, atol=atol):
        return f"esperado {_short(exp_arr)}, obtenido {_short(got_arr)} (error máximo {err:.3g})", err
    return None, err


def _outputs(value: Any, names: Sequence[str] | None) -> list[tuple[str, Any]]:
    if names is None:
        return [("resultado", value)]
    if not isinstance(value, (tuple, list)) or len(value) != len(names):
        n = len(value) if isinstance(value, (tuple, list)) else 1
        return [("resultado", _Arity(len(names), n, names))]
    return list(zip(names, value))


@dataclass
class _Arity:
    expected: int
    got: int
    names: Sequence[str]


def _call(fn: Callable, args: Any) -> Any:
    if isinstance(args, Mapping):
        return fn(**args)
    if isinstance(args, tuple):
        return fn(*args)
    return fn(args)


def check(name: str, student: Callable, reference: Callable, cases: Sequence[tuple[str, Any]], *,
          outputs: Sequence[str] | None = None, rtol: float = 1e-5, atol: float = 1e-6, hint: str = "") -> Feedback:
    """Compare ``student(*args)`` with ``reference(*args)`` on every ``(label, args)`` case.

    ``args`` is a tuple of positional arguments, a dict of keyword arguments, or one argument.
    ``outputs`` names the parts of a tuple result (e.g. ``("x", "logdet")``) for the message.
    """
    if not callable(student) or not callable(reference):
        raise TypeError("student and reference must be callables (pass the function, not its result)")
    if not cases:
        raise ValueError("check needs at least one case")
    worst = 0.0
    for label, args in cases:
        expected = _call(reference, args)
        try:
            got = _call(student, args)
        except NotImplementedError:
            return _verdict(Feedback(name, False, True,
                                     f"… {name}: todavía no está escrito (NotImplementedError). "
                                     "El cuaderno sigue con la implementación de coursekit."))
        except Exception as err:  # noqa: BLE001 - any error in the student's code is feedback
            return _verdict(Feedback(name, False, False, f"✘ {name}: en el caso «{label}» tu código lanza "
                                     f"{type(err).__name__}: {err}" + (f"\nPista: {hint}" if hint else "")))
        for (part, exp), (_, val) in zip(_outputs(expected, outputs), _outputs(got, outputs)):
            if isinstance(val, _Arity):
                problem = (f"esperaba {val.expected} resultados ({', '.join(val.names)}), obtuve {val.got}")
            else:
                problem, err = compare(exp, val, rtol, atol)
                worst = max(worst, err) if problem is None else worst
            if problem is not None:
                where = "" if outputs is None else f"la salida «{part}»: "
                msg = f"✘ {name}: falla en el caso «{label}»: {where}{problem}."
                return _verdict(Feedback(name, False, False, msg + (f"\nPista: {hint}" if hint else "")))
    where = "el único caso" if len(cases) == 1 else f"los {len(cases)} casos"
    return _verdict(Feedback(name, True, False, f"✔ {name}: correcto en {where} (error máximo {worst:.1e})."))


def check_value(name: str, got: Any, expected: Any, *, rtol: float = 1e-5, atol: float = 1e-6,
                hint: str = "") -> Feedback:
    """Compare one value the student computed (a number, an array) with the expected one."""
    if got is Ellipsis or got is NotImplemented:
        return _verdict(Feedback(name, False, True, f"… {name}: todavía no has calculado el valor."))
    problem, err = compare(expected, got, rtol, atol)
    if problem is None:
        return _verdict(Feedback(name, True, False, f"✔ {name}: correcto (error {err:.1e})."))
    return _verdict(Feedback(name, False, False, f"✘ {name}: {problem}." + (f"\nPista: {hint}" if hint else "")))


def _verdict(feedback: Feedback) -> Feedback:
    if strict() and not feedback.passed:
        raise ExerciseError(feedback.message)
    return feedback


__all__ = ["ExerciseError", "Feedback", "check", "check_value", "compare", "strict"]
