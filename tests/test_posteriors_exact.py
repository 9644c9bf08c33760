"""StdTS, poGAMBITTS and foGAMBITTS against closed forms recomputed here, on hand-built updates.

The fast, exact selection of ``benchmarks/mutation.py posteriors`` (``agents/stdts.py`` and
``agents/gambitts.py``). Each agent is fed a hand-built sequence of (context, action,
embedding, reward) updates; its posterior must equal the conjugate update written out here
(Normal-Inverse-Gamma per arm, Bayesian linear regression with a Normal-Inverse-Gamma or known
noise, Normal-Inverse-Wishart per cell), its Thompson draws must equal the draws recomputed
from the same counter-based random numbers (and have the posterior's moments), its action
must be their argmax, and its propensities must agree with an exact or brute-force reference
within their standard error. Priors are the study's (``gambitts_study_facts.json``); refusals
are matched whole. Everything is float64 and runs in seconds.
"""

import dataclasses
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from scipy import stats

import gambit_gym
from gambit_gym.agents import _propensity_kernels as kernels
from gambit_gym.agents import make
from gambit_gym.agents._batched import STREAM_ACT, STREAM_RESET, STREAM_TREAT
from gambit_gym.agents.gambitts import FOGambitTS, POGambitTS, received_embeddings

FACTS = json.loads((Path(gambit_gym.__file__).parent / "data"
                    / "gambitts_study_facts.json").read_text())["agents"]
STD = FACTS["StdTS"]
LIN = FACTS["poGAMBITTS_linear"]


@pytest.fixture(scope="module")
def desc():
    """The 3-D GambitIHS env's description (K = 5 prompts, d = 3, 12 contexts, a simulator)."""
    return gym.make("GambitIHS-v0").unwrapped.describe()


@pytest.fixture(scope="module")
def desc2():
    """The same env with two prompts (poGAMBITTS's exact two-arm propensities)."""
    return gym.make("GambitIHS-v0", n_prompts=2).unwrapped.describe()


def ctx_id(obs):
    """Context ids of observations ``(..., 2)`` = [location, step bucket]: 4·location + bucket."""
    obs = np.asarray(obs)
    return obs[..., 0] * 4 + obs[..., 1]


def onehots(obs):
    """[location one-hot (3), step-bucket one-hot (4)] of observations ``(..., 2)``."""
    obs = np.asarray(obs)
    return np.concatenate([np.eye(3)[obs[..., 0]], np.eye(4)[obs[..., 1]]], axis=-1)


def hand_steps(rng, steps, replicates, n_actions, d=3, locs=(0, 1, 2), buckets=(0, 1, 2, 3),
               coef=(4.0, -3.0, 1.0), zscale=1.5, noise=6.0):
    """A hand-made sequence of updates: (obs (R, 2), actions (R,), rewards (R,), z (R, d))."""
    out = []
    for _ in range(steps):
        obs = np.stack([rng.choice(locs, size=replicates), rng.choice(buckets, size=replicates)],
                       axis=1).astype(np.int64)
        a = rng.integers(0, n_actions, size=replicates)
        z = (rng.normal(size=(replicates, d)) + a[:, None] * 0.2) * zscale
        y = 77.0 + z @ np.array(coef)[:d] + a * 0.5 + rng.normal(size=replicates) * noise
        out.append((obs, a, y, z))
    return out


def feed(agent, steps):
    for obs, a, y, z in steps:
        agent.update_batch(obs, a, y, {"embedding": z})


# ================================================================ StdTS (Normal-Inverse-Gamma)
def nig_closed_form(y, m, nu, alpha, beta):
    """``(m_N, ν_N, α_N, β_N)`` of the NIG model after rewards ``y`` (written out directly)."""
    y = np.asarray(y, dtype=np.float64)
    n = len(y)
    ybar = y.mean() if n else 0.0
    ss = float(((y - ybar) ** 2).sum())
    return ((nu * m + n * ybar) / (nu + n), nu + n, alpha + n / 2.0,
            beta + ss / 2.0 + n * nu * (ybar - m) ** 2 / (2.0 * (n + nu)))


STD_STEPS = [  # obs (R=2, [loc, bucket]), actions, rewards
    ([[0, 1], [2, 3]], [0, 4], [80.5, 71.0]),
    ([[0, 1], [2, 3]], [0, 4], [77.25, 69.5]),
    ([[1, 0], [2, 3]], [2, 4], [90.0, 74.0]),
    ([[0, 1], [0, 0]], [0, 1], [79.0, 85.0]),
    ([[1, 0], [2, 3]], [0, 4], [60.0, 73.5]),
    ([[0, 1], [2, 0]], [3, 4], [82.0, 70.0]),
    ([[0, 1], [2, 3]], [0, 1], [78.5, 88.0]),
]


def std_expected(contextual, m, nu, alpha, beta, R=2, K=5):
    """Closed-form NIG posterior of every (replicate, cell, arm) after :data:`STD_STEPS`."""
    cells = 12 if contextual else 1
    out = np.zeros((4, R, cells, K))
    for r in range(R):
        for c in range(cells):
            for k in range(K):
                y = [st[2][r] for st in STD_STEPS if st[1][r] == k
                     and (not contextual or ctx_id(st[0][r]) == c)]
                out[:, r, c, k] = nig_closed_form(y, m, nu, alpha, beta)
    return out


def fed_stdts(desc, name="StdTS", **kw):
    agent = make(name, **kw)
    agent.reset_batch(desc, 3, 2)
    for obs, a, y in STD_STEPS:
        agent.update_batch(np.array(obs), np.array(a), np.array(y), {})
    return agent


@pytest.mark.parametrize("kwargs, message", [
    ({"m": float("nan")}, "m must be a finite number, got nan"),
    ({"m": "77"}, "m must be a finite number, got '77' (str)"),
    ({"nu": 0.0}, "nu must be a finite number > 0, got 0.0"),
    ({"alpha": -1.0}, "alpha must be a finite number > 0, got -1.0"),
    ({"beta": float("inf")}, "beta must be a finite number > 0, got inf"),
])
def test_stdts_refusals_say_what_is_wrong(kwargs, message):
    for name in ("StdTS", "StdTS-Contextual"):
        with pytest.raises(ValueError) as err:
            make(name, **kwargs)
        assert str(err.value) == message


def test_stdts_defaults_are_the_study_priors():
    agent = make("StdTS")
    assert (agent.m, agent.nu, agent.alpha, agent.beta) == (
        STD["m"], STD["nu"], STD["alpha"], STD["beta"])


@pytest.mark.parametrize("name, contextual", [("StdTS", False), ("StdTS-Contextual", True)])
@pytest.mark.parametrize("prior", [None, dict(m=70.0, nu=2.5, alpha=1.5, beta=4.0)])
def test_stdts_posterior_equals_the_nig_closed_form(desc, name, contextual, prior):
    kw = prior or {}
    agent = fed_stdts(desc, name, **kw)
    p = dict(m=STD["m"], nu=STD["nu"], alpha=STD["alpha"], beta=STD["beta"], **kw) \
        if not prior else prior
    want = std_expected(contextual, p["m"], p["nu"], p["alpha"], p["beta"])
    cells = 12 if contextual else 1
    assert agent.count.shape == agent.mean.shape == agent.ss.shape == (2, cells, 5)
    counts = np.zeros((2, cells, 5))
    for obs, a, _ in STD_STEPS:
        for r in range(2):
            counts[r, ctx_id(obs[r]) if contextual else 0, a[r]] += 1
    np.testing.assert_array_equal(agent.count, counts)
    for c in range(cells):
        got = agent.posterior(np.array([c, c]))
        for i in range(4):
            np.testing.assert_allclose(got[i], want[i, :, c], rtol=1e-13, atol=1e-12)


def test_stdts_cells_are_contexts_only_when_contextual(desc):
    obs = np.array([[2, 3], [1, 0]])
    np.testing.assert_array_equal(fed_stdts(desc)._cells(obs), [0, 0])
    np.testing.assert_array_equal(fed_stdts(desc, "StdTS-Contextual")._cells(obs), [11, 4])


def test_stdts_welford_sum_of_squares_survives_a_large_offset(desc):
    agent = make("StdTS")
    agent.reset_batch(desc, 0, 1)
    y = 1e8 + np.array([0.5, -1.25, 2.0, 0.75, -0.5, 1.0])
    for v in y:
        agent.update_batch(np.zeros((1, 2), dtype=np.int64), np.array([2]), np.array([v]), {})
    assert agent.mean[0, 0, 2] == pytest.approx(y.mean(), rel=1e-15)
    dev = y - 1e8  # exact: the rewards are 1e8 plus quarters
    naive = (y ** 2).sum() - 6 * y.mean() ** 2  # Σy² - Nȳ²: cancels to garbage here
    assert agent.ss[0, 0, 2] == pytest.approx(((dev - dev.mean()) ** 2).sum(), rel=1e-8)
    assert abs(naive - ((dev - dev.mean()) ** 2).sum()) > 1.0


def stdts_hand_draws(agent, cells, counter, stream, n_samples=None):
    """The draws of ``_draw_means`` recomputed from the streams: ``m + √(β/(g ν))·z``."""
    m_n, nu_n, alpha_n, beta_n = agent.posterior(cells)
    k = agent.n_actions
    if n_samples is not None:
        m_n, nu_n, alpha_n, beta_n = (x[:, None, :] for x in (m_n, nu_n, alpha_n, beta_n))
        alpha_n = np.broadcast_to(alpha_n, (agent.replicates, n_samples, k))
        shape = (n_samples, k)
    else:
        shape = (k,)
    g = agent.streams.gamma(counter, stream, np.ascontiguousarray(alpha_n))
    z = agent.streams.normal(counter, stream + 4, shape)
    return m_n + np.sqrt(beta_n / (g * nu_n)) * z


@pytest.mark.parametrize("name", ["StdTS", "StdTS-Contextual"])
def test_stdts_draws_and_actions_are_the_hand_drawn_thompson_samples(desc, name):
    agent = fed_stdts(desc, name, beta=400.0)  # wide posteriors: the argmax varies
    obs = np.array([[0, 1], [2, 3]])
    cells = agent._cells(obs)
    for n_samples in (None, 3):
        np.testing.assert_allclose(agent._draw_means(cells, 9, STREAM_ACT, n_samples),
                                   stdts_hand_draws(agent, cells, 9, STREAM_ACT, n_samples),
                                   rtol=1e-14)
    picks = []
    for _ in range(12):
        want = stdts_hand_draws(agent, cells, agent.t, STREAM_ACT).argmax(axis=-1)
        got = agent.act_batch(obs)
        np.testing.assert_array_equal(got, want)
        picks.extend(got.tolist())
    assert len(set(picks)) >= 3  # the check sees different argmaxes, not one constant arm


def test_stdts_draws_have_the_posterior_t_moments(desc):
    agent = make("StdTS", m=STD["m"], nu=STD["nu"], alpha=STD["alpha"], beta=STD["beta"])
    agent.reset_batch(desc, 1, 1)
    rewards = {0: [70, 74, 69, 71, 75, 72, 68, 73], 1: [90, 84, 88, 86, 91, 87, 85, 89],
               2: [77, 60, 95, 80, 70, 85, 65, 90], 3: [50, 52, 51, 49, 50, 48, 53, 47],
               4: [100, 101, 99, 102, 98, 100, 103, 97]}
    for k, ys in rewards.items():
        for y in ys:
            agent.update_batch(np.zeros((1, 2), dtype=np.int64), np.array([k]),
                               np.array([float(y)]), {})
    s = 40_000
    draws = agent._draw_means(np.array([0]), 4, STREAM_ACT, s)[0]  # (S, K)
    for k, ys in rewards.items():
        m_n, nu_n, alpha_n, beta_n = nig_closed_form(ys, STD["m"], STD["nu"], STD["alpha"],
                                                    STD["beta"])
        var = beta_n / (nu_n * (alpha_n - 1.0))  # t_{2α}(m, β/(αν)): variance β/(ν(α - 1))
        dof = 2 * alpha_n
        kurt = 6.0 / (dof - 4.0)
        assert abs(draws[:, k].mean() - m_n) < 5 * np.sqrt(var / s)
        assert abs(draws[:, k].var() / var - 1.0) < 5 * np.sqrt((2.0 + kurt) / s)


def t_argmax_probabilities(loc, scale, dof, n=20_000):
    """Exact P(arm k has the largest draw) for independent Student-t arms.

    ``P(k) = ∫₀¹ Π_{j≠k} F_j(F_k⁻¹(u)) du`` (the other arms' CDFs at arm ``k``'s quantiles), by
    the midpoint rule on ``n`` points: a bounded, smooth integrand, error far below 1e-4.
    """
    u = (np.arange(n) + 0.5) / n
    out = np.zeros(len(loc))
    for i in range(len(loc)):
        x = stats.t.ppf(u, dof[i], loc[i], scale[i])
        rest = np.ones(n)
        for j in range(len(loc)):
            if j != i:
                rest *= stats.t.cdf(x, dof[j], loc[j], scale[j])
        out[i] = rest.mean()
    return out


@pytest.mark.parametrize("numba_kernels", [True, False])
@pytest.mark.parametrize("alpha", [1.0, 1.25])  # integer dof (kernel) and fractional (numpy)
def test_stdts_propensities_equal_the_exact_t_argmax_probabilities(desc, monkeypatch,
                                                                   numba_kernels, alpha):
    if numba_kernels and not kernels.available():
        pytest.skip("numba (the fast extra) is not installed")
    if not numba_kernels:  # the numpy path, as without the fast extra: no kernel runs
        monkeypatch.setattr(kernels, "available", lambda: False)
        monkeypatch.setattr(kernels, "independent_t_quadrature", None)
    agent = fed_stdts(desc, "StdTS-Contextual", alpha=alpha, beta=60.0)
    obs = np.array([[0, 1], [2, 3]])
    probs = agent.action_probabilities_batch(obs, n_samples=4000, target_rse=None)
    chosen = agent._chosen  # the actions act_batch takes next
    m_n, nu_n, alpha_n, beta_n = agent.posterior(agent._cells(obs))
    for r in range(2):
        exact = t_argmax_probabilities(m_n[r], np.sqrt(beta_n[r] / (alpha_n[r] * nu_n[r])),
                                       2 * alpha_n[r])
        assert 0.05 < exact.max() < 0.95 and np.sort(exact)[-2] > 0.05
        np.testing.assert_allclose(probs[r].sum(), 1.0, rtol=1e-12)
        # quadrature (no draws): within its relative tolerance of 1e-3 (2e-3 here)
        np.testing.assert_allclose(probs[r], exact, rtol=2e-3, atol=2e-5)
    np.testing.assert_array_equal(agent.act_batch(obs), chosen)


# ================================================================ linear GAMBITTS: set-up
def test_linear_gambitts_defaults_are_the_study_priors():
    for name in ("poGAMBITTS", "foGAMBITTS"):
        agent = make(name)
        assert (agent.prior_mean, agent.prior_precision, agent.intercept_mean,
                agent.intercept_precision) == (LIN["prior_mean"], LIN["prior_precision"],
                                               LIN["intercept_prior_mean"],
                                               LIN["intercept_prior_precision"])


@pytest.mark.parametrize("cls, kwargs, message", [
    (POGambitTS, {"noise": "guess"},
     "noise must be 'learn', 'env' or a noise sd > 0, got 'guess'"),
    (POGambitTS, {"noise": -1.0}, "noise must be a finite number > 0, got -1.0"),
    (POGambitTS, {"prior_precision": 0.0}, "prior_precision must be a finite number > 0, got 0.0"),
    (POGambitTS, {"intercept_precision": -0.5},
     "intercept_precision must be a finite number > 0, got -0.5"),
    (POGambitTS, {"noise_a0": 0.0}, "noise_a0 must be a finite number > 0, got 0.0"),
    (POGambitTS, {"noise_b0": float("inf")}, "noise_b0 must be a finite number > 0, got inf"),
    (POGambitTS, {"prior_mean": float("nan")}, "prior_mean must be a finite number, got nan"),
    (FOGambitTS, {"intercept_mean": "77"},
     "intercept_mean must be a finite number, got '77' (str)"),
    (POGambitTS, {"release_compat": True, "noise": "env"},
     "release_compat=True fixes the noise variance at 1 (the release's v2); do not also pass "
     "noise="),
    (POGambitTS, {"release_compat": True, "noise": 2.0},
     "release_compat=True fixes the noise variance at 1 (the release's v2); do not also pass "
     "noise="),
    (POGambitTS, {"n_sim_draws": 0}, "n_sim_draws must be a positive integer or None, got 0"),
    (FOGambitTS, {"treatment_kappa": 0.0},
     "treatment_kappa must be a finite number > 0, got 0.0"),
    (FOGambitTS, {"treatment_var": -1.0}, "treatment_var must be a finite number > 0, got -1.0"),
    (FOGambitTS, {"treatment_nu": 0.0}, "treatment_nu must be a finite number > 0, got 0.0"),
    (FOGambitTS, {"noise": "guess"},
     "noise must be 'learn', 'env' or a noise sd > 0, got 'guess'"),
])
def test_linear_gambitts_refusals_say_what_is_wrong(cls, kwargs, message):
    with pytest.raises(ValueError) as err:
        cls(**kwargs)
    assert str(err.value) == message


def test_linear_gambitts_accept_their_valid_edge_arguments():
    assert POGambitTS(noise=0.5).noise == 0.5
    assert POGambitTS(release_compat=True).release_compat
    assert POGambitTS(n_sim_draws=1).n_sim_draws == 1
    assert FOGambitTS(treatment_nu=None).treatment_nu is None
    assert FOGambitTS(treatment_nu=2.5).treatment_nu == 2.5


def test_env_refusals_say_what_is_missing(desc):
    no_ctx = dataclasses.replace(desc, n_contexts=0)
    no_emb = dataclasses.replace(desc, embedding_names=())
    no_sim = dataclasses.replace(desc, simulator=None)
    no_sd = dataclasses.replace(desc, noise_sd=None)
    cases = [
        (POGambitTS(), no_ctx, "POGambitTS needs an env with the 12 IHS contexts (a GambitIHS "
                               "env); this env has n_contexts=0"),
        (FOGambitTS(), no_ctx, "FOGambitTS needs an env with the 12 IHS contexts (a GambitIHS "
                               "env); this env has n_contexts=0"),
        (FOGambitTS(), no_emb, "FOGambitTS needs an env with a working embedding "
                               "(EnvDescription.embedding_names is empty)"),
        (POGambitTS(), no_sim, "poGAMBITTS needs simulator access (EnvDescription.simulator), "
                               "which this env does not give; use foGAMBITTS, which learns the "
                               "treatment online"),
        (POGambitTS(noise="env"), no_sd, "noise='env' but this env publishes no noise_sd; use "
                                         "noise='learn'"),
        (make("StdTS-Contextual"), no_ctx, "StdTSContextual needs an env with the 12 IHS "
                                           "contexts (a GambitIHS env); this env has "
                                           "n_contexts=0"),
    ]
    for agent, spec, message in cases:
        with pytest.raises(ValueError) as err:
            agent.reset_batch(spec, 0, 2)
        assert str(err.value) == message
    plain = make("StdTS")  # the non-contextual StdTS needs no contexts
    plain.reset_batch(no_ctx, 0, 2)
    assert plain.count.shape == (2, 1, 5)


def prior_of(d, n_ctx, mean=0.0, prec=1.0, imean=77.0, iprec=0.01):
    p = d + n_ctx + 1
    mu0, prec0 = np.full(p, mean), np.full(p, prec)
    mu0[-1], prec0[-1] = imean, iprec
    return mu0, prec0


@pytest.mark.parametrize("cls", [POGambitTS, FOGambitTS])
def test_reward_model_prior_is_the_configured_one(desc, cls):
    kw = dict(prior_mean=0.5, prior_precision=2.0, intercept_mean=70.0, intercept_precision=0.04,
              noise_a0=3.0, noise_b0=7.0)
    agent = cls(**kw)
    agent.reset_batch(desc, 0, 2)
    assert agent.d == 3 and agent._n_ctx == 7 and agent.model.p == 11
    mu0, prec0 = prior_of(3, 7, 0.5, 2.0, 70.0, 0.04)
    np.testing.assert_array_equal(agent.model.mu, [mu0, mu0])
    np.testing.assert_array_equal(agent.model.B, [np.diag(prec0)] * 2)
    np.testing.assert_array_equal(agent.model.S, [prec0 * mu0] * 2)
    np.testing.assert_array_equal(agent.model.a, [3.0, 3.0])
    np.testing.assert_array_equal(agent.model.b, [7.0, 7.0])
    assert agent.model.noise_var is None
    assert agent.uses_context_features


@pytest.mark.parametrize("cls", [POGambitTS, FOGambitTS])
def test_reward_model_noise_options(desc, cls):
    expect = [({"noise": "env"}, desc.noise_sd ** 2), ({"noise": 2.5}, 6.25),
              ({"release_compat": True}, 1.0), ({}, None)]
    for kw, var in expect:
        agent = cls(**kw)
        agent.reset_batch(desc, 0, 1)
        assert agent.model.noise_var == var, kw
    agent = cls(noise="env")  # a noiseless env: a tiny positive variance, not a division by 0
    agent.reset_batch(dataclasses.replace(desc, noise_sd=0.0), 0, 1)
    assert agent.model.noise_var == 1e-8
    rel = cls(release_compat=True)
    rel.reset_batch(desc, 0, 2)
    assert not rel.uses_context_features and rel._n_ctx == 0 and rel.model.p == 4
    np.testing.assert_array_equal(rel.model.S, np.zeros((2, 4)))  # S₀ = 0: the release
    np.testing.assert_array_equal(rel.model.mu[0], [0.0, 0.0, 0.0, 77.0])
    both = cls(release_compat=True, context_features=True)
    assert both.uses_context_features
    assert not cls(context_features=False).uses_context_features
    assert cls(context_features=1).uses_context_features is True


def test_features_and_scores_by_hand(desc):
    agent = POGambitTS()
    agent.reset_batch(desc, 0, 2)
    obs = np.array([[1, 2], [2, 0]])
    ctx = ctx_id(obs)
    z = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])
    want = np.concatenate([z, onehots(obs), np.ones((2, 1))], axis=1)
    np.testing.assert_array_equal(agent.features(ctx, z), want)
    zk = np.arange(2 * 5 * 3, dtype=float).reshape(2, 5, 3) / 10.0  # (R, K, d)
    phik = agent.features(np.broadcast_to(ctx[:, None], (2, 5)), zk)
    assert phik.shape == (2, 5, 11)
    np.testing.assert_array_equal(phik[..., 3:10], np.broadcast_to(onehots(obs)[:, None],
                                                                   (2, 5, 7)))
    theta = np.array([[1.0, -2.0, 0.5, 0.1, 0.2, 0.3, 1.0, 2.0, 3.0, 4.0, 70.0],
                      [-1.0, 0.5, 2.0, -0.1, -0.2, -0.3, -1.0, -2.0, -3.0, -4.0, 80.0]])
    want_scores = np.einsum("rkp,rp->rk", phik, theta)
    np.testing.assert_allclose(agent._score(theta, ctx, zk), want_scores, rtol=1e-14)
    thetas = np.stack([theta, 2 * theta, -theta], axis=1)  # (R, S, p)
    zks = np.broadcast_to(zk[:, None], (2, 3, 5, 3))
    np.testing.assert_allclose(agent._score(thetas, ctx, zks),
                               np.stack([want_scores, 2 * want_scores, -want_scores], axis=1),
                               rtol=1e-13)
    rel = POGambitTS(release_compat=True)
    rel.reset_batch(desc, 0, 2)
    np.testing.assert_array_equal(rel.features(ctx, z), np.concatenate([z, np.ones((2, 1))], 1))
    th = theta[:, [0, 1, 2, 10]]
    np.testing.assert_allclose(rel._score(th, ctx, zk),
                               np.einsum("rkd,rd->rk", zk, th[:, :3]) + th[:, 3:], rtol=1e-14)


def test_received_embeddings_checks_and_reshapes():
    agent = POGambitTS()
    agent.replicates = 2
    out = received_embeddings(agent, {"embedding": np.arange(6, dtype=np.float32)}, 3)
    assert out.dtype == np.float64 and out.shape == (2, 3)
    np.testing.assert_array_equal(out, [[0, 1, 2], [3, 4, 5]])
    with pytest.raises(KeyError) as err:
        received_embeddings(agent, {"embeddings": np.zeros(6)}, 3)
    assert err.value.args[0] == ("POGambitTS.update needs info['embedding'] (the working "
                                 "embedding of the message the user received)")


# ================================================================ reward model: posterior
def blr_closed_form(phi, y, mu0, prec0, noise_var=None, a0=1.0, b0=10.0, zero_s0=False):
    """``(μ, B, a, b)`` of the conjugate linear model, written out (no recursions)."""
    B0 = np.diag(prec0)
    scale = 1.0 if noise_var is None else 1.0 / noise_var
    B = B0 + scale * phi.T @ phi
    s0 = np.zeros_like(mu0) if zero_s0 else B0 @ mu0
    mu = np.linalg.solve(B, s0 + scale * phi.T @ y)
    a = a0 + len(y) / 2.0
    b = b0 + 0.5 * (y @ y + mu0 @ B0 @ mu0 - mu @ B @ mu)
    return mu, B, a, b


@pytest.mark.parametrize("cls", [POGambitTS, FOGambitTS])
@pytest.mark.parametrize("kw", [{}, {"noise": 3.0}, {"release_compat": True},
                                {"prior_mean": 0.5, "prior_precision": 2.0, "noise_a0": 2.0,
                                 "noise_b0": 5.0}])
def test_reward_posterior_equals_the_conjugate_update(desc, cls, kw):
    agent = cls(**kw)
    agent.reset_batch(desc, 0, 2)
    steps = hand_steps(np.random.default_rng(5), 20, 2, 5)
    feed(agent, steps)
    compat = kw.get("release_compat", False)
    for r in range(2):
        obs = np.array([s[0][r] for s in steps])
        z = np.array([s[3][r] for s in steps])
        y = np.array([s[2][r] for s in steps])
        phi = np.concatenate([z, np.ones((len(y), 1))] if compat else
                             [z, onehots(obs), np.ones((len(y), 1))], axis=1)
        mu0, prec0 = prior_of(3, 0 if compat else 7, kw.get("prior_mean", 0.0),
                              kw.get("prior_precision", 1.0))
        noise_var = 1.0 if compat else (kw["noise"] ** 2 if "noise" in kw else None)
        mu, B, a, b = blr_closed_form(phi, y, mu0, prec0, noise_var, kw.get("noise_a0", 1.0),
                                      kw.get("noise_b0", 10.0), zero_s0=compat)
        np.testing.assert_allclose(agent.model.mu[r], mu, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(agent.model.B[r], B, rtol=1e-13)
        np.testing.assert_allclose(agent.model.cov[r], np.linalg.inv(B), rtol=1e-9, atol=1e-13)
        if noise_var is None:
            assert agent.model.a[r] == a
            assert agent.model.b[r] == pytest.approx(b, rel=1e-9)


def theta_by_hand(agent, counter, stream=STREAM_ACT):
    """θ = μ + √v·root·z from the streams (v = b/g, g ~ Gamma(a); v = 1 with known noise)."""
    model = agent.model
    z = agent.streams.normal(counter, stream + 4, (model.p,))
    if model.noise_var is None:
        v = model.b / agent.streams.gamma(counter, stream, np.ascontiguousarray(model.a))
    else:
        v = np.ones(agent.replicates)
    return model.mu + np.sqrt(v)[:, None] * np.einsum("rpq,rq->rp", model.root, z)


# ================================================================ poGAMBITTS: acting
@pytest.mark.parametrize("kw", [{}, {"noise": 4.0}])
def test_pogambitts_acts_on_the_hand_drawn_theta_and_the_simulator_means(desc, kw):
    agent = POGambitTS(**kw)
    agent.reset_batch(desc, 2, 6)
    feed(agent, hand_steps(np.random.default_rng(1), 6, 6, 5))
    table = np.asarray(desc.simulator.mean_embedding_table, dtype=np.float64)  # (12, K, d)
    assert agent.zbar.dtype == np.float64
    for r in range(6):
        np.testing.assert_array_equal(agent.zbar[r], table)
    rng = np.random.default_rng(2)
    picks = []
    for _ in range(8):
        obs = np.stack([rng.integers(0, 3, 6), rng.integers(0, 4, 6)], axis=1)
        theta = theta_by_hand(agent, agent.t)
        ctx = ctx_id(obs)
        phi = np.concatenate([table[ctx], np.broadcast_to(onehots(obs)[:, None], (6, 5, 7)),
                              np.ones((6, 5, 1))], axis=2)
        want = np.einsum("rkp,rp->rk", phi, theta).argmax(axis=1)
        got = agent.act_batch(obs)
        np.testing.assert_array_equal(got, want)
        picks.extend(got.tolist())
    assert len(set(picks)) >= 3


def test_pogambitts_subsampled_simulator_means_by_hand(desc):
    agent = POGambitTS(n_sim_draws=7)
    agent.reset_batch(desc, 4, 2)
    sim = desc.simulator
    assert agent.zbar.shape == (2, 12, 5, 3)
    for a in range(5):
        for c in range(12):
            cell = np.asarray(sim.cell_embeddings(a, c), dtype=np.float64)
            u = agent.streams.uniform(a * 12 + c, STREAM_RESET, (7,))
            rows = np.minimum((u * len(cell)).astype(np.int64), len(cell) - 1)
            for r in range(2):
                np.testing.assert_allclose(agent.zbar[r, c, a], cell[rows[r]].mean(axis=0),
                                           rtol=1e-14)
    assert agent.zbar.dtype == np.float64
    assert not np.array_equal(agent.zbar[0], agent.zbar[1])


def po_reference_probabilities(agent, obs, n=400_000, seed=0):
    """Brute-force argmax frequencies over θ from the closed-form posterior (numpy draws)."""
    model = agent.model
    rng = np.random.default_rng(seed)
    table = np.asarray(agent.spec.simulator.mean_embedding_table, dtype=np.float64)
    out = []
    for r in range(agent.replicates):
        o = obs[r]
        phi = np.concatenate([table[ctx_id(o)], np.broadcast_to(onehots(o), (len(table[0]), 7)),
                              np.ones((len(table[0]), 1))], axis=1)
        B = model.B[r]
        chol = np.linalg.cholesky(np.linalg.inv(B))
        z = rng.standard_normal((n, model.p))
        v = 1.0 if model.noise_var is not None else model.b[r] / rng.standard_gamma(
            model.a[r], size=n)[:, None]
        theta = model.mu[r] + np.sqrt(v) * (z @ chol.T)
        picks = (theta @ phi.T).argmax(axis=1)
        out.append(np.bincount(picks, minlength=len(phi)) / n)
    return np.array(out)


@pytest.mark.parametrize("kw", [{}, {"noise": 4.0}])
def test_pogambitts_propensities_agree_with_brute_force(desc, kw):
    agent = POGambitTS(**kw)
    agent.reset_batch(desc, 2, 2)
    feed(agent, hand_steps(np.random.default_rng(3), 5, 2, 5))
    obs = np.array([[0, 1], [2, 3]])
    probs = agent.action_probabilities_batch(obs, n_samples=6000, target_rse=None)
    ref = po_reference_probabilities(agent, obs)
    assert np.all(np.sort(ref, axis=1)[:, -2] > 0.05)  # at least two arms in play
    se = np.sqrt(ref * (1 - ref) / 6000)
    assert np.all(np.abs(probs - ref) <= 4.5 * se + 2e-3), (probs, ref)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert np.all(agent.propensity_draws == 6000)


@pytest.mark.parametrize("kw", [{}, {"noise": 4.0}])
def test_pogambitts_two_arm_propensities_equal_the_closed_form(desc2, kw):
    agent = POGambitTS(**kw)
    agent.reset_batch(desc2, 2, 2)
    feed(agent, hand_steps(np.random.default_rng(4), 6, 2, 2))
    obs = np.array([[1, 1], [2, 0]])
    probs = agent.action_probabilities_batch(obs)
    assert np.all(agent.propensity_draws == 0)
    table = np.asarray(desc2.simulator.mean_embedding_table, dtype=np.float64)
    for r in range(2):
        phi = np.concatenate([table[ctx_id(obs[r])], np.broadcast_to(onehots(obs[r]), (2, 7)),
                              np.ones((2, 1))], axis=1)
        diff = phi[0] - phi[1]
        cov = np.linalg.inv(agent.model.B[r])
        delta, q = diff @ agent.model.mu[r], diff @ cov @ diff
        if kw:
            p0 = stats.norm.cdf(delta / np.sqrt(q))
        else:
            a, b = agent.model.a[r], agent.model.b[r]
            p0 = stats.t.cdf(delta / np.sqrt(q * b / a), 2 * a)
        assert 0.02 < p0 < 0.98
        np.testing.assert_allclose(probs[r], [p0, 1 - p0], rtol=1e-9)


# ================================================================ foGAMBITTS: treatment model
def niw_closed_form(z, mean0, kappa0, nu0, psi0):
    """``(m_n, κ_n, ν_n, Ψ_n)`` of the NIW posterior after embeddings ``z (n, d)``."""
    z = np.asarray(z, dtype=np.float64).reshape(-1, psi0.shape[0])
    n = len(z)
    zbar = z.mean(axis=0) if n else np.zeros(psi0.shape[0])
    scatter = (z - zbar).T @ (z - zbar)
    dev = zbar - mean0
    return ((kappa0 * mean0 + n * zbar) / (kappa0 + n), kappa0 + n, nu0 + n,
            psi0 + scatter + kappa0 * n / (kappa0 + n) * np.outer(dev, dev))


def test_fogambitts_treatment_prior(desc):
    agent = FOGambitTS()
    agent.reset_batch(desc, 0, 2)
    t = agent.treatment
    assert t.nu0 == 3 + 2 and t.kappa0 == 1.0 and t.mean0 == 0.0
    np.testing.assert_array_equal(t.psi0, np.eye(3))  # var·(ν₀ - d - 1)·I with var = 1
    assert t.count.shape == (2, 12, 5) and t.psi.shape == (2, 12, 5, 3, 3)
    agent = FOGambitTS(treatment_mean=0.5, treatment_kappa=2.0, treatment_nu=7.0,
                       treatment_var=0.25)
    agent.reset_batch(desc, 0, 2)
    t = agent.treatment
    assert (t.nu0, t.kappa0, t.mean0) == (7.0, 2.0, 0.5)
    np.testing.assert_array_equal(t.psi0, 0.25 * 3.0 * np.eye(3))
    rel = FOGambitTS(release_compat=True)
    rel.reset_batch(desc, 0, 2)
    assert rel.treatment.nu0 == 3.0
    np.testing.assert_array_equal(rel.treatment.psi0, np.eye(3))


FO_KW = dict(treatment_mean=0.25, treatment_kappa=1.5, treatment_nu=6.0, treatment_var=0.5)


def fo_fed(desc, replicates=2, steps=40, seed=6, locs=(0, 1), buckets=(1, 2),
           data_kw=None, **kw):
    agent = FOGambitTS(**{**FO_KW, **kw})
    agent.reset_batch(desc, 8, replicates)
    data = hand_steps(np.random.default_rng(seed), steps, replicates, 5, locs=locs,
                      buckets=buckets, **(data_kw or {}))
    feed(agent, data)
    return agent, data


def fo_expected(agent, data, r, c):
    """Closed-form NIW posterior of every arm of replicate ``r``'s context ``c``."""
    psi0 = agent.treatment_var * (agent.treatment_nu - 3 - 1) * np.eye(3)
    out = []
    for k in range(5):
        z = [s[3][r] for s in data if s[1][r] == k and ctx_id(s[0][r]) == c]
        out.append(niw_closed_form(z, agent.treatment_mean, agent.treatment_kappa,
                                   agent.treatment_nu, psi0))
    return [np.array(x) for x in zip(*out)]


def test_fogambitts_treatment_posterior_equals_the_niw_closed_form(desc):
    agent, data = fo_fed(desc)
    counts = np.zeros((2, 12, 5))
    for obs, a, _, _ in data:
        for r in range(2):
            counts[r, ctx_id(obs[r]), a[r]] += 1
    np.testing.assert_array_equal(agent.treatment.count, counts)
    for c in (1, 2, 5, 6, 0):
        got = agent.treatment_posterior(np.array([c, c]))
        for r in range(2):
            want = fo_expected(agent, data, r, c)
            for g, w in zip(got, want):
                np.testing.assert_allclose(g[r], w, rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(agent.treatment.psi[r, c], want[3], rtol=1e-12,
                                       atol=1e-12)
        m_n, kappa_n, dof, psi = agent._mean_posterior(np.array([c, c]), None)
        np.testing.assert_allclose(dof, got[2] - 3 + 1, rtol=1e-15)
        np.testing.assert_allclose(m_n, got[0], rtol=1e-14, atol=1e-14)
        np.testing.assert_allclose(kappa_n, got[1], rtol=1e-15)
        np.testing.assert_allclose(psi, got[3], rtol=1e-12, atol=1e-12)
        m4, k4, d4, p4 = agent._mean_posterior(np.array([c, c]), 4)
        assert m4.shape == (2, 1, 5, 3) and k4.shape == (2, 1, 5) and d4.shape == (2, 4, 5)
        np.testing.assert_allclose(d4, np.broadcast_to(dof[:, None], (2, 4, 5)), rtol=1e-15)
        np.testing.assert_allclose(m4[:, 0], m_n, rtol=1e-15)
        np.testing.assert_allclose(k4[:, 0], kappa_n, rtol=1e-15)
        np.testing.assert_allclose(p4, psi, rtol=1e-15)


def test_fogambitts_arm_mean_draws_by_hand(desc):
    agent, data = fo_fed(desc)
    ctx = np.array([5, 6])
    for n_samples in (None, 3):
        m_n, kappa_n, dof, psi = (np.array(x) for x in zip(
            *[[np.asarray(v) for v in fo_expected(agent, data, r, ctx[r])] for r in range(2)]))
        dof = dof - 3 + 1  # (R, K)
        lead = (5,) if n_samples is None else (n_samples, 5)
        if n_samples is not None:
            dof = np.broadcast_to(dof[:, None], (2, n_samples, 5))
            m_n, kappa_n, psi = m_n[:, None], kappa_n[:, None], psi[:, None]
        half = agent.streams.gamma(12, 300, np.ascontiguousarray(dof / 2.0))
        z = agent.streams.normal(12, 304, (*lead, 3))
        want = m_n + np.einsum("...ij,...j->...i", np.linalg.cholesky(psi), z) / np.sqrt(
            kappa_n * 2.0 * half)[..., None]
        np.testing.assert_allclose(agent._sample_arm_means(ctx, 12, 300, n_samples), want,
                                   rtol=1e-12, atol=1e-12)


def test_fogambitts_arm_mean_draws_have_the_student_t_moments(desc):
    agent, data = fo_fed(desc, replicates=1, steps=60, locs=(1,), buckets=(2,))  # context 6
    c = 6
    m_n, kappa_n, nu_n, psi_n = fo_expected(agent, data, 0, c)
    s = 40_000
    draws = agent._sample_arm_means(np.array([c]), 3, 400, s)[0]  # (S, K, d)
    for k in range(5):
        dof = nu_n[k] - 3 + 1
        if dof <= 8:
            continue  # too few updates for a stable variance estimate
        cov = psi_n[k] / (kappa_n[k] * (dof - 2.0))
        sd = np.sqrt(np.diag(cov))
        assert np.all(np.abs(draws[:, k].mean(axis=0) - m_n[k]) < 5 * sd / np.sqrt(s))
        kurt = 6.0 / (dof - 4.0)
        ratio = np.cov(draws[:, k].T) / cov
        assert np.all(np.abs(np.diag(ratio) - 1.0) < 5 * np.sqrt((2.0 + kurt) / s)), ratio
    assert (nu_n - 3 + 1 > 8).sum() >= 2  # the check covered at least two arms


def test_fogambitts_arm_score_draws_and_actions_by_hand(desc):
    agent, data = fo_fed(desc, replicates=3)
    rng = np.random.default_rng(9)
    picks = []
    for n_samples in (None, 2):
        obs = np.stack([rng.integers(0, 2, 3), rng.integers(1, 3, 3)], axis=1)
        ctx = ctx_id(obs)
        theta = rng.normal(size=(3, 11)) * 2.0 + np.r_[np.zeros(10), 77.0]
        theta[0, :3] *= 0.02  # θ_zᵀΨθ_z below 1 too
        if n_samples is not None:
            theta = np.stack([theta, -theta], axis=1)
        got = agent._sample_arm_scores(theta, ctx, 5, 200, n_samples)
        for r in range(3):
            m_n, kappa_n, nu_n, psi_n = fo_expected(agent, data, r, ctx[r])
            dof = nu_n - 3 + 1
            lead = (5,) if n_samples is None else (n_samples, 5)
            dofs = np.broadcast_to(dof, lead)
            half = agent.streams.subset([r]).gamma(5, 200, np.ascontiguousarray(dofs[None] / 2))[0]
            xi = agent.streams.subset([r]).normal(5, 204, lead)[0]
            th = theta[r]  # ([S,] p)
            tz = th[..., :3]
            quad = np.einsum("...i,kij,...j->...k", tz, psi_n, tz)
            phi = np.concatenate([m_n, np.broadcast_to(onehots(obs[r]), (5, 7)), np.ones((5, 1))],
                                 axis=1)
            loc = np.einsum("kp,...p->...k", phi, th)
            want = loc + np.sqrt(quad / (kappa_n * 2.0 * half)) * xi
            np.testing.assert_allclose(got[r], want.reshape(got[r].shape), rtol=1e-12)
    for _ in range(10):
        obs = np.stack([rng.integers(0, 2, 3), rng.integers(1, 3, 3)], axis=1)
        ctx = ctx_id(obs)
        theta = theta_by_hand(agent, agent.t)
        want = agent._sample_arm_scores(theta, ctx, agent.t, STREAM_TREAT, None).argmax(axis=1)
        got = agent.act_batch(obs)
        np.testing.assert_array_equal(got, want)
        picks.extend(got.tolist())
    assert len(set(picks)) >= 3


def test_fogambitts_distribution_draws_are_the_treatment_models(desc):
    agent, _ = fo_fed(desc)
    ctx = np.array([1, 6])
    for n_samples in (None, 3):
        got = agent.sample_arm_distributions(ctx, 4, 500, n_samples)
        want = agent.treatment.sample_distributions(agent.streams, ctx, 4, 500, n_samples)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)


def fo_reference_probabilities(agent, data, obs, n=300_000, seed=0):
    """Brute force: θ from the closed-form posterior, each arm's mean from its NIW t marginal."""
    model = agent.model
    rng = np.random.default_rng(seed)
    out = []
    for r in range(agent.replicates):
        m_n, kappa_n, nu_n, psi_n = fo_expected(agent, data, r, ctx_id(obs[r]))
        chol_b = np.linalg.cholesky(np.linalg.inv(model.B[r]))
        v = 1.0 if model.noise_var is not None else model.b[r] / rng.standard_gamma(
            model.a[r], size=n)[:, None]
        theta = model.mu[r] + np.sqrt(v) * (rng.standard_normal((n, model.p)) @ chol_b.T)
        scores = np.empty((n, 5))
        for k in range(5):
            dof = nu_n[k] - 3 + 1
            g = rng.chisquare(dof, size=n)
            mean = m_n[k] + (rng.standard_normal((n, 3)) @ np.linalg.cholesky(psi_n[k]).T) \
                / np.sqrt(kappa_n[k] * g)[:, None]
            phi = np.concatenate([mean, np.broadcast_to(onehots(obs[r]), (n, 7)),
                                  np.ones((n, 1))], axis=1)
            scores[:, k] = np.einsum("np,np->n", phi, theta)
        out.append(np.bincount(scores.argmax(axis=1), minlength=5) / n)
    return np.array(out)


SMALL_QUAD = dict(coef=(0.05, -0.03, 0.02), zscale=0.05, noise=0.5)  # θ_zᵀΨθ_z well below 1


@pytest.mark.parametrize("numba_kernels", [True, False])
@pytest.mark.parametrize("kw, data_kw", [({}, None), ({"noise": 4.0}, None),
                                         ({"treatment_var": 0.01}, SMALL_QUAD)])
def test_fogambitts_propensities_agree_with_brute_force(desc, monkeypatch, numba_kernels, kw,
                                                        data_kw):
    if numba_kernels and not kernels.available():
        pytest.skip("numba (the fast extra) is not installed")
    if not numba_kernels:  # the numpy path, as without the fast extra: no kernel runs
        monkeypatch.setattr(kernels, "available", lambda: False)
        monkeypatch.setattr(kernels, "linear_t", None)
    agent, data = fo_fed(desc, steps=14, seed=11, data_kw=data_kw, **kw)
    obs = np.array([[0, 1], [1, 2]])
    if data_kw is SMALL_QUAD:  # the case where flooring θ_zᵀΨθ_z at anything above 0 shows
        psi = agent.treatment_posterior(ctx_id(obs))[3]
        mu_z = agent.model.mu[:, :3]
        assert np.einsum("ri,rkij,rj->rk", mu_z, psi, mu_z).max() < 0.05
    probs = agent.action_probabilities_batch(obs, n_samples=6000, target_rse=None)
    se = agent.propensity_se
    ref = fo_reference_probabilities(agent, data, obs)
    assert np.all(np.sort(ref, axis=1)[:, -2] > 0.05)  # at least two arms in play
    tol = 4.5 * np.hypot(se, np.sqrt(ref * (1 - ref) / 300_000)) + 2e-3
    assert np.all(np.abs(probs - ref) <= tol), (probs, ref, se)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    # given θ the arms are independent t: the chosen arm's conditional estimate (measured here
    # at 0.42-0.70 of the counting SE) is more precise than counting would be
    chosen = agent._chosen
    counting = np.sqrt(ref[[0, 1], chosen] * (1 - ref[[0, 1], chosen]) / 6000)
    assert np.all(se[[0, 1], chosen] < 0.85 * counting)


class _SomeArms(POGambitTS):
    """poGAMBITTS with its documented hook used: the arms allowed depend on the context."""

    by_parity = np.array([[True, False, True, False, True], [False, True, True, True, False]])

    def _allowed(self, contexts):
        return self.by_parity[np.asarray(contexts) % 2]  # even / odd context ids


@pytest.mark.parametrize("n_prompts", [5, 2])
def test_pogambitts_allowed_hook_restricts_actions_and_propensities(n_prompts):
    spec = gym.make("GambitIHS-v0", n_prompts=n_prompts).unwrapped.describe()
    agent = _SomeArms()
    if n_prompts == 2:
        agent.by_parity = np.array([[False, True], [True, True]])
    agent.reset_batch(spec, 2, 2)
    feed(agent, hand_steps(np.random.default_rng(3), 5, 2, n_prompts))
    obs = np.array([[0, 1], [2, 2]])  # contexts 1 (odd) and 10 (even)
    mask = agent.by_parity[[1, 0]]
    probs = agent.action_probabilities_batch(obs, n_samples=6000, target_rse=None)
    assert agent.propensity_draws.tolist() == [6000, 6000]  # never the two-arm closed form
    ref = np.zeros((2, n_prompts))
    table = np.asarray(spec.simulator.mean_embedding_table, dtype=np.float64)
    rng = np.random.default_rng(0)
    for r in range(2):  # brute force among the allowed arms only
        phi = np.concatenate([table[ctx_id(obs[r])], np.broadcast_to(onehots(obs[r]),
                                                                       (n_prompts, 7)),
                              np.ones((n_prompts, 1))], axis=1)
        chol = np.linalg.cholesky(np.linalg.inv(agent.model.B[r]))
        v = agent.model.b[r] / rng.standard_gamma(agent.model.a[r], size=400_000)[:, None]
        theta = agent.model.mu[r] + np.sqrt(v) * (rng.standard_normal((400_000, 11)) @ chol.T)
        scores = np.where(mask[r], theta @ phi.T, -np.inf)
        ref[r] = np.bincount(scores.argmax(axis=1), minlength=n_prompts) / 400_000
    np.testing.assert_array_equal(probs[~mask], 0.0)
    se = np.sqrt(ref * (1 - ref) / 6000)
    assert np.all(np.abs(probs - ref) <= 4.5 * se + 2e-3), (probs, ref)
    picks = []
    for _ in range(10):
        theta = theta_by_hand(agent, agent.t)
        phi = np.concatenate([table[ctx_id(obs)], np.broadcast_to(onehots(obs)[:, None],
                                                                  (2, n_prompts, 7)),
                              np.ones((2, n_prompts, 1))], axis=2)
        want = np.where(mask, np.einsum("rkp,rp->rk", phi, theta), -np.inf).argmax(1)
        got = agent.act_batch(obs)
        np.testing.assert_array_equal(got, want)
        picks.extend(got.tolist())
    assert mask[0, picks[::2]].all() and mask[1, picks[1::2]].all()
    assert len(set(picks[::2])) >= 2
