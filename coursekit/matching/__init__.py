"""Flow matching: probability paths, CFM losses, minibatch-OT couplings and few-step samplers.

    from coursekit.matching import GaussianPath, LinearPath, cfm_loss, ot_coupling, euler_sample

Convention: noise at t = 0, data at t = 1; fields are the kernel's ``f(t, x)``
(:mod:`coursekit.core.fields`). The training recipes, the FM-vs-FFJORD comparison and the
few-step experiment are lesson 07's (:mod:`coursekit.lessons.flow_matching`).
Taught in: notebook 07 (and reused in notebook 09).
"""

from .couplings import independent_coupling, ot_coupling, ot_permutation, squared_cost, transport_cost
from .image_field import MLPImageField
from .losses import cfm_loss, fm_loss
from .marginal import MixtureTarget, eight_gaussians_target
from .metrics import energy_distance, sliced_wasserstein, straightness
from .paths import AffinePath, GaussianPath, LinearPath, PathSample
from .sampling import euler_sample, midpoint_sample, ode_sample

__all__ = [
    "AffinePath",
    "GaussianPath",
    "LinearPath",
    "MLPImageField",
    "MixtureTarget",
    "PathSample",
    "cfm_loss",
    "eight_gaussians_target",
    "energy_distance",
    "euler_sample",
    "fm_loss",
    "independent_coupling",
    "midpoint_sample",
    "ode_sample",
    "ot_coupling",
    "ot_permutation",
    "sliced_wasserstein",
    "squared_cost",
    "straightness",
    "transport_cost",
]
