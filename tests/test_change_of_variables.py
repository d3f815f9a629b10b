"""Lesson 01's recipes: the χ² histogram check and the formula's cell probabilities."""

import math

import numpy as np
import pytest
import torch

from coursekit.flows import StandardNormal
from coursekit.lessons import change_of_variables as lesson


def test_histogram_check_accepts_the_right_probabilities_and_rejects_wrong_ones():
    rng = np.random.default_rng(0)
    probs = np.array([0.1, 0.2, 0.4, 0.2, 0.1])
    counts = rng.multinomial(10_000, probs)
    good = lesson.histogram_check(counts, probs, 10_000)
    assert good.dof == 4 and good.p_value > 1e-3
    bad = lesson.histogram_check(counts, np.full(5, 0.2), 10_000)
    assert bad.p_value < 1e-6 and bad.chi2 > good.chi2


def test_histogram_check_leaves_out_sparse_bins_and_rescales_to_the_kept_total():
    # the last bin expects 1 sample (< 5): left out, and the rest compared on their own total
    probs = np.array([0.5, 0.4999, 0.0001])
    result = lesson.histogram_check([5000, 4999, 7], probs, 10_000)
    assert result.dof == 1 and result.chi2 == pytest.approx(0.0, abs=1e-6)


def test_histogram_check_bad_arguments():
    with pytest.raises(ValueError, match="same shape"):
        lesson.histogram_check([1, 2, 3], [0.5, 0.5], 10)
    with pytest.raises(ValueError, match="n_samples must be a positive int"):
        lesson.histogram_check([1, 2], [0.5, 0.5], 0)
    with pytest.raises(ValueError, match="fewer than 2 bins"):
        lesson.histogram_check([1, 2], [0.5, 0.5], 4)


def test_cell_probabilities_of_a_standard_normal_match_the_closed_form():
    probs = lesson.cell_probabilities(StandardNormal(2).log_prob, bounds=4.0, n_cells=16, sub=10)
    edges = torch.linspace(-4, 4, 17, dtype=torch.float64)
    p1 = torch.diff(0.5 * (1 + torch.erf(edges / math.sqrt(2)))).numpy()
    assert probs.shape == (16, 16)
    np.testing.assert_allclose(probs, np.outer(p1, p1), atol=2e-5)
    with pytest.raises(ValueError, match="sub must be a positive int"):
        lesson.cell_probabilities(StandardNormal(2).log_prob, sub=0)


# --- when TanhWarp makes N(0, 1) bimodal: the condition 2ab³ > 1 + ab against a count of modes --------


@pytest.mark.parametrize("b", [0.8, 1.0, 1.5, 2.5])
@pytest.mark.parametrize("factor", [0.5, 0.8, 1.2, 2.0])
def test_the_bimodal_condition_matches_a_numerical_count_of_modes(factor, b):
    # a = factor × the threshold 1 / (2b³ − b): 2ab³ − (1 + ab) = factor − 1, at least 0.2 from the boundary
    a = factor / (2 * b**3 - b)
    modes = lesson.tanh_warp_modes(a, b)
    assert modes == (2 if factor > 1 else 1)
    assert (modes == 2) == lesson.tanh_warp_is_bimodal(a, b)


@pytest.mark.parametrize(("a", "b"), [(-0.9, 1.0), (-0.3, 2.5), (0.0, 1.0), (0.5, 0.5), (5.0, 0.5), (50.0, 0.7)])
def test_a_negative_a_or_a_small_b_keeps_one_mode(a, b):
    assert lesson.tanh_warp_modes(a, b) == 1 and not lesson.tanh_warp_is_bimodal(a, b)


def test_a_positive_a_is_not_enough_for_two_modes():
    # the claim the lesson used to make ("a > 0 makes it bimodal") fails with the playground's b = 1
    assert lesson.tanh_warp_modes(0.9, 1.0) == 1 and not lesson.tanh_warp_is_bimodal(0.9, 1.0)
    assert lesson.tanh_warp_modes(2.0, 1.5) == 2 and lesson.tanh_warp_is_bimodal(2.0, 1.5)   # notebook 01's warp


def test_the_threshold_in_a_is_where_the_condition_flips():
    assert lesson.tanh_warp_threshold(1.0) == pytest.approx(1.0)
    for b in [0.8, 1.0, 1.5, 3.0]:
        a_star = lesson.tanh_warp_threshold(b)
        assert not lesson.tanh_warp_is_bimodal(0.99 * a_star, b) and lesson.tanh_warp_is_bimodal(1.01 * a_star, b)
    assert lesson.tanh_warp_threshold(0.7) == math.inf          # 2b² ≤ 1: never bimodal


def test_the_bimodal_helpers_reject_bad_parameters():
    with pytest.raises(ValueError, match="b must be positive"):
        lesson.tanh_warp_is_bimodal(1.0, 0.0)
    with pytest.raises(ValueError, match="a \\* b must be > -1"):
        lesson.tanh_warp_modes(-2.0, 1.0)
    with pytest.raises(ValueError, match="finite"):
        lesson.tanh_warp_is_bimodal(float("nan"), 1.0)
    with pytest.raises(ValueError, match="b must be positive"):
        lesson.tanh_warp_threshold(-1.0)
