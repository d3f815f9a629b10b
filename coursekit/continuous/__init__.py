"""Continuous-time models over torchdiffeq: Neural ODEs (lesson 05) and CNF / FFJORD (lesson 06).

Vector fields follow the kernel's protocol ``f(t, x) -> dx/dt`` (:mod:`coursekit.core.fields`,
which also counts evaluations: ``NFECounter``). ``CNF`` is a :class:`~coursekit.flows.Bijection`,
so ``Flow(StandardNormal(D), CNF(field))`` is a density model like the discrete flows.
Lesson recipes (spiral data, solver tables, FFJORD training) are in
:mod:`coursekit.lessons.neural_ode` and :mod:`coursekit.lessons.cnf`.
"""

from .adjoint import AdjointSolution, solve_adjoint
from .cnf import CNF, DIVERGENCES, AugmentedDynamics, divergence_exact, divergence_hutchinson
from .fields import LinearField, MLPField, ODEFunc, ResNetField, SpiralField
from .neural_ode import ADAPTIVE_METHODS, FIXED_STEP_METHODS, NeuralODE, euler_resnet, odeint_any

__all__ = [
    "ADAPTIVE_METHODS",
    "AdjointSolution",
    "AugmentedDynamics",
    "CNF",
    "DIVERGENCES",
    "FIXED_STEP_METHODS",
    "LinearField",
    "MLPField",
    "NeuralODE",
    "ODEFunc",
    "ResNetField",
    "SpiralField",
    "divergence_exact",
    "divergence_hutchinson",
    "euler_resnet",
    "odeint_any",
    "solve_adjoint",
]
