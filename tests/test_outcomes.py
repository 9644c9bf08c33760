"""Outcome models (gambit_gym.envs.outcomes), each number recomputed here by hand.

Standardising, the context table, the linear and MLP mean rewards and their calibration to the
study's noise level 0 (the sd of the mean reward over the bank). Fast, so that mutation testing
(benchmarks/mutation.py) can run it for every mutant.
"""

import numpy as np
import pytest

from gambit_gym.envs import outcomes as oc
from gambit_gym.text.contexts import N_CONTEXTS, STEP_BUCKETS

SCORES = np.random.default_rng(0).normal([1.0, -2.0, 0.5], [0.5, 2.0, 1.5], size=(40, 3))


def test_standardizer_is_per_dimension_mean_and_population_sd():
    std = oc.Standardizer.fit(SCORES)
    np.testing.assert_allclose(std.mean, SCORES.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(std.sd, SCORES.std(axis=0, ddof=0), rtol=1e-12)
    z = std(SCORES)
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=0), 1.0, rtol=1e-12)
    # a constant dimension keeps sd 1 (and is centred), never a division by zero
    flat = np.column_stack([SCORES[:, 0], np.full(40, 7.0)])
    std = oc.Standardizer.fit(flat)
    assert std.sd[1] == 1.0 and std.mean[1] == 7.0
    np.testing.assert_array_equal(std(flat)[:, 1], 0.0)
    assert std(flat[:, :].astype(np.float32)).dtype == np.float64
    # fitted in float64 whatever the input's precision (a float32 bank's scores included)
    single = SCORES.astype(np.float32)
    fit32 = oc.Standardizer.fit(single)
    fit64 = oc.Standardizer.fit(single.astype(np.float64))
    np.testing.assert_array_equal(fit32.mean, fit64.mean)
    np.testing.assert_array_equal(fit32.sd, fit64.sd)
    assert fit32.mean.dtype == fit32.sd.dtype == np.float64


def test_context_table_adds_location_and_step_bucket_effects():
    terms = oc.ContextTerms(location=(0.5, -1.0, 2.0), per_step_bucket=0.25)
    table = terms.table()
    assert table.shape == (N_CONTEXTS,) == (12,)
    n_buckets = len(STEP_BUCKETS)
    for cid in range(N_CONTEXTS):
        loc, bucket = cid // n_buckets, cid % n_buckets
        assert table[cid] == pytest.approx((0.5, -1.0, 2.0)[loc] + 0.25 * (bucket + 1))
    np.testing.assert_array_equal(oc.ContextTerms().table(), np.zeros(12))


def test_linear_mean_reward_by_hand():
    std = oc.Standardizer.fit(SCORES)
    terms = oc.ContextTerms(location=(0.1, 0.2, 0.3), per_step_bucket=-0.05)
    model = oc.LinearOutcome(0.7, np.array([1.0, -0.5, 2.0]), std, terms)
    ctx = np.arange(40) % 12
    got = model.mean_reward(SCORES, ctx)
    for i in range(40):
        z = (SCORES[i] - std.mean) / std.sd
        want = 0.7 + z[0] - 0.5 * z[1] + 2.0 * z[2] + terms.table()[ctx[i]]
        assert got[i] == pytest.approx(want, rel=1e-12)
    assert model.kind == "linear"


def test_oriented_coefficients_flip_only_optimism():
    coefs = {"optimism": 0.4, "formality": -0.3, "severity": 0.2}
    out = oc.oriented_study_coefficients(coefs, ("formality", "optimism", "severity"))
    np.testing.assert_array_equal(out, [-0.3, -0.4, 0.2])
    assert oc.FLIPPED_STUDY_AXES == {"optimism"}


def test_calibrate_linear_keeps_direction_and_hits_the_target_sd():
    coef = np.array([0.3, -0.1, 0.2])
    terms = oc.ContextTerms(location=(1.0, 0.0, 0.0))
    model = oc.calibrate_linear(SCORES, coef, 0.25, target_sd=0.8, context_terms=terms)
    assert model.intercept == 0.25 and type(model.intercept) is float
    assert model.context_terms is terms
    # the same direction, scaled so that the mean reward over the bank has sd 0.8
    ratio = model.coef / coef
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-12)
    assert ratio[0] > 0
    mean = model.mean_reward(SCORES, np.full(40, 5))  # one context: no context spread
    assert mean.std() == pytest.approx(0.8, rel=1e-12)
    assert mean.mean() == pytest.approx(0.25, abs=1e-12)
    # the study's intercept is the mean over the bank (standardised scores average 0)
    plain = oc.calibrate_linear(SCORES, coef, -1.5, target_sd=2.0)
    assert plain.context_terms == oc.ContextTerms()
    assert plain.mean_reward(SCORES, np.zeros(40)).mean() == pytest.approx(-1.5, abs=1e-12)
    with pytest.raises(ValueError, match="^the bank's scores do not vary along the "
                                         "outcome's direction$"):
        oc.calibrate_linear(np.ones((5, 3)), coef, 0.0, 1.0)


def test_mlp_outcome_by_hand_and_its_calibration():
    d, hidden = 3, 8
    model = oc.calibrate_mlp(SCORES, intercept=0.4, target_sd=0.6, hidden=hidden, seed=5)
    assert model.kind == "mlp" and model.intercept == 0.4
    # PyTorch's default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) from the seeded generator
    rng = np.random.default_rng(5)
    w1 = rng.uniform(-1 / np.sqrt(d), 1 / np.sqrt(d), size=(d, hidden))
    b1 = rng.uniform(-1 / np.sqrt(d), 1 / np.sqrt(d), size=hidden)
    w2 = rng.uniform(-1 / np.sqrt(hidden), 1 / np.sqrt(hidden), size=hidden)
    np.testing.assert_array_equal(model.w1, w1)
    np.testing.assert_array_equal(model.b1, b1)
    np.testing.assert_array_equal(model.w2, w2)
    z = (SCORES - SCORES.mean(axis=0)) / SCORES.std(axis=0)
    raw = np.array([sum(max(float(z[i] @ w1[:, j] + b1[j]), 0.0) * w2[j]
                        for j in range(hidden)) for i in range(40)])
    np.testing.assert_allclose(model.raw(SCORES), raw, rtol=1e-10)
    assert model.centre == pytest.approx(raw.mean(), rel=1e-10)
    assert model.scale == pytest.approx(0.6 / raw.std(), rel=1e-10)
    ctx = np.arange(40) % 12
    terms = oc.ContextTerms(location=(0.0, 0.5, 1.0), per_step_bucket=0.1)
    with_terms = oc.calibrate_mlp(SCORES, 0.4, 0.6, hidden=hidden, seed=5, context_terms=terms)
    got = with_terms.mean_reward(SCORES, ctx)
    want = 0.4 + 0.6 / raw.std() * (raw - raw.mean()) + terms.table()[ctx]
    np.testing.assert_allclose(got, want, rtol=1e-10)
    mean = model.mean_reward(SCORES, np.zeros(40))
    assert mean.std() == pytest.approx(0.6, rel=1e-10)
    assert mean.mean() == pytest.approx(0.4, abs=1e-12)
    assert model.context_terms == oc.ContextTerms()
    # the default architecture: 64 hidden units, seed 0
    default = oc.calibrate_mlp(SCORES, 0.0, 1.0)
    assert default.w1.shape == (3, 64) and default.b1.shape == (64,)
    np.testing.assert_array_equal(
        default.w1, np.random.default_rng(0).uniform(-1 / np.sqrt(3), 1 / np.sqrt(3), (3, 64)))
