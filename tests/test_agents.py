"""Built-in agents: posteriors against closed forms, batched = single, propensities, errors."""

import gymnasium as gym
import numpy as np
import pytest
from scipy import stats

import gambit_gym  # noqa: F401
from gambit_gym.agents import make
from gambit_gym.agents._rng import CounterStreams, argmax_random_ties, replicate_keys
from gambit_gym.text.contexts import context_ids

NUMPY_AGENTS = ["StdTS", "StdTS-Contextual", "poGAMBITTS", "foGAMBITTS", "LinTS", "LinUCB",
                "UCB1", "EpsilonGreedy", "Random", "Oracle"]


def rollout(agent, env_id="GambitIHS-v0", steps=60, seed=0, **env_kwargs):
    """Single-env rollout; returns (agent, observations, actions, rewards, embeddings, env)."""
    env = gym.make(env_id, **env_kwargs)
    agent.reset(env.unwrapped.describe(), seed=seed)
    obs, _ = env.reset(seed=seed)
    out = {"obs": [], "a": [], "y": [], "z": []}
    for _ in range(steps):
        a = agent.act(obs)
        nxt, y, _, _, info = env.step(a)
        agent.update(obs, a, y, info)
        out["obs"].append(obs)
        out["a"].append(a)
        out["y"].append(y)
        out["z"].append(info["embedding"])
        obs = nxt
    return agent, {k: np.array(v) for k, v in out.items()}, env


# ---------------------------------------------------------------- closed-form posteriors
def test_stdts_posterior_equals_closed_form():
    agent, data, _ = rollout(make("StdTS-Contextual"), steps=150, noise_level=2)
    ctx = context_ids(data["obs"])
    m, nu, a0, b0 = 77.0, 5.0, 1.0, 10.0
    m_n, nu_n, alpha_n, beta_n = agent.posterior(np.array([ctx[0]]))
    for arm in range(agent.n_actions):
        y = data["y"][(ctx == ctx[0]) & (data["a"] == arm)]
        n = len(y)
        ybar = y.mean() if n else 0.0
        ss = ((y - ybar) ** 2).sum()
        assert nu_n[0, arm] == nu + n
        assert m_n[0, arm] == pytest.approx((nu * m + n * ybar) / (nu + n), rel=1e-12)
        assert alpha_n[0, arm] == a0 + n / 2
        assert beta_n[0, arm] == pytest.approx(
            b0 + ss / 2 + n * nu * (ybar - m) ** 2 / (2 * (n + nu)), rel=1e-10)


def test_stdts_welford_is_stable_at_large_offsets():
    agent = make("StdTS")
    env = gym.make("GambitIHS-v0")
    agent.reset(env.unwrapped.describe(), seed=0)
    obs = np.zeros(2, dtype=np.int64)
    rng = np.random.default_rng(0)
    y = 1e8 + rng.normal(size=500) * 1e-3
    for v in y:
        agent.update(obs, 0, v, {})
    naive = (y ** 2).sum() - len(y) * y.mean() ** 2  # the release's formula: garbage here
    assert agent.ss[0, 0, 0] == pytest.approx(((y - y.mean()) ** 2).sum(), rel=1e-4)
    assert abs(naive - agent.ss[0, 0, 0]) > 1.0


def _features(agent, obs, z):
    return agent.features(context_ids(obs), z)


@pytest.mark.parametrize("name", ["poGAMBITTS", "foGAMBITTS"])
def test_linear_gambitts_nig_posterior_equals_closed_form(name):
    agent, data, _ = rollout(make(name), env_id="GambitIHS-v0", steps=120, noise_level=3)
    phi = _features(agent, data["obs"], data["z"].astype(np.float64))
    y = data["y"]
    p = phi.shape[1]
    mu0 = np.zeros(p)
    mu0[-1] = 77.0
    b0_prec = np.ones(p)
    b0_prec[-1] = 0.01
    B0 = np.diag(b0_prec)
    B = B0 + phi.T @ phi
    mu = np.linalg.solve(B, B0 @ mu0 + phi.T @ y)
    b = 10.0 + 0.5 * (y @ y + mu0 @ B0 @ mu0 - mu @ B @ mu)
    np.testing.assert_allclose(agent.model.mu[0], mu, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(agent.model.cov[0], np.linalg.inv(B), rtol=1e-8, atol=1e-12)
    assert agent.model.a[0] == 1.0 + len(y) / 2
    assert agent.model.b[0] == pytest.approx(b, rel=1e-6)


@pytest.mark.parametrize("noise_var", [None, 2.5])
def test_bayes_linreg_rank_one_square_root_updates_equal_the_direct_inverse(noise_var):
    from gambit_gym.agents._batched import BayesLinReg

    rng = np.random.default_rng(1)
    p, r = 6, 4
    model = BayesLinReg(r, rng.normal(size=p), rng.uniform(0.1, 2.0, size=p), noise_var)
    for _ in range(BayesLinReg.REFRESH_EVERY - 1):  # downdates only, no exact re-inversion
        model.update(rng.normal(size=(r, p)) * 3.0, rng.normal(size=r) * 10.0 + 70.0)
    for i in range(r):
        np.testing.assert_allclose(model.cov[i], np.linalg.inv(model.B[i]), rtol=1e-9,
                                   atol=1e-13)
        np.testing.assert_allclose(model.mu[i], np.linalg.solve(model.B[i], model.S[i]),
                                   rtol=1e-9, atol=1e-9)
    for i in range(r):  # the square root the draws use: root rootᵀ = B⁻¹
        np.testing.assert_allclose(model.root[i] @ model.root[i].T, np.linalg.inv(model.B[i]),
                                   rtol=1e-9, atol=1e-13)
    model.update(np.ones((r, p)), np.full(r, 70.0))  # the exact refresh
    np.testing.assert_allclose(model.root, np.linalg.cholesky(np.linalg.inv(model.B)),
                               rtol=1e-10, atol=1e-14)


def test_pogambitts_known_noise_and_release_compat_posteriors():
    env_noise = 2.0
    agent, data, _ = rollout(make("poGAMBITTS", noise=env_noise), steps=80)
    phi = _features(agent, data["obs"], data["z"].astype(np.float64))
    p = phi.shape[1]
    prec = np.ones(p)
    prec[-1] = 0.01
    mu0 = np.zeros(p)
    mu0[-1] = 77.0
    B = np.diag(prec) + phi.T @ phi / env_noise ** 2
    mu = np.linalg.solve(B, np.diag(prec) @ mu0 + phi.T @ data["y"] / env_noise ** 2)
    np.testing.assert_allclose(agent.model.mu[0], mu, rtol=1e-9)
    # the code release: v = 1, S0 = 0 (the prior mean is dropped), no context features
    rel, data, _ = rollout(make("poGAMBITTS", release_compat=True), steps=80)
    phi = _features(rel, data["obs"], data["z"].astype(np.float64))
    assert phi.shape[1] == rel.d + 1
    B = np.diag([1.0] * rel.d + [0.01]) + phi.T @ phi
    np.testing.assert_allclose(rel.model.mu[0], np.linalg.solve(B, phi.T @ data["y"]),
                               rtol=1e-9)


def test_fogambitts_niw_posterior_equals_closed_form():
    agent, data, _ = rollout(make("foGAMBITTS"), steps=200)
    ctx = context_ids(data["obs"])
    c = int(ctx[0])
    m_n, kappa_n, nu_n, psi_n = agent.treatment_posterior(np.array([c]))
    d = agent.d
    nu0 = d + 2.0
    for arm in range(agent.n_actions):
        z = data["z"][(ctx == c) & (data["a"] == arm)].astype(np.float64)
        n = len(z)
        zbar = z.mean(axis=0) if n else np.zeros(d)
        scatter = (z - zbar).T @ (z - zbar)
        psi0 = (nu0 - d - 1) * np.eye(d)
        assert kappa_n[0, arm] == 1 + n and nu_n[0, arm] == nu0 + n
        np.testing.assert_allclose(m_n[0, arm], n * zbar / (1 + n), atol=1e-12)
        np.testing.assert_allclose(psi_n[0, arm],
                                   psi0 + scatter + n / (1 + n) * np.outer(zbar, zbar),
                                   rtol=1e-9, atol=1e-9)


def test_fogambitts_cached_psi_equals_the_closed_form_posterior():
    agent, _, _ = rollout(make("foGAMBITTS"), steps=200)
    assert agent.treatment.count[0].sum() == 200
    for c in range(12):
        psi_n = agent.treatment_posterior(np.array([c]))[3][0]  # (K, d, d)
        np.testing.assert_allclose(agent.treatment.psi[0, c], psi_n, rtol=1e-12, atol=1e-12)


def test_fogambitts_student_t_mean_draw_is_the_niw_marginal():
    """The direct draw of each arm's mean is t_{ν-d+1}(m_n, Ψ_n/(κ_n(ν-d+1))), the marginal of
    the two-stage draw Σ ~ IW(Ψ_n, ν_n), m ~ N(m_n, Σ/κ_n)."""
    agent, data, _ = rollout(make("foGAMBITTS"), steps=150, noise_level=1)
    c = int(context_ids(data["obs"][:1])[0])
    contexts = np.array([c])
    m_n, kappa_n, nu_n, psi_n = (x[0] for x in agent.treatment_posterior(contexts))
    direct = agent._sample_arm_means(contexts, 3, 1 << 24, 20000)[0]  # (S, K, d)
    two_stage = agent.sample_arm_distributions(contexts, 3, 1 << 25, 20000)[0][0]
    d = agent.d
    w = np.array([0.6, -0.3, 0.74])[:d]
    for arm in range(agent.n_actions):
        dof = nu_n[arm] - d + 1
        scale = np.sqrt(w @ psi_n[arm] @ w / (kappa_n[arm] * dof))
        law = stats.t(dof, loc=w @ m_n[arm], scale=scale)
        assert stats.kstest(direct[:, arm] @ w, law.cdf).pvalue > 1e-4
        assert stats.kstest(two_stage[:, arm] @ w, law.cdf).pvalue > 1e-4
        assert stats.ks_2samp(direct[:, arm, 0], two_stage[:, arm, 0]).pvalue > 1e-4


def test_fogambitts_scalar_score_draw_equals_scoring_two_stage_mean_draws():
    """Given θ, acting draws each arm's score θᵀφ(c, m̃) as a scalar Student-t; it must have the
    law of θᵀφ(c, m̃) with m̃ from the two-stage NIW draw (Σ ~ IW, m ~ N(m_n, Σ/κ_n))."""
    agent, data, _ = rollout(make("foGAMBITTS"), steps=150, noise_level=1)
    contexts = context_ids(data["obs"][-1:])
    s = 20000
    theta = agent.model.sample(agent.streams, 11, 1 << 22, 1)  # (1, 1, p), one fixed θ
    direct = agent._sample_arm_scores(np.repeat(theta, s, axis=1), contexts, 3, 1 << 24, s)[0]
    means = agent.sample_arm_distributions(contexts, 3, 1 << 25, s)[0]  # (1, S, K, d)
    two_stage = agent._score(theta, contexts, means)[0]
    m_n, kappa_n, nu_n, psi_n = (x[0] for x in agent.treatment_posterior(contexts))
    loc = agent._score(theta, contexts, m_n[None, None])[0, 0]
    tz = theta[0, 0, :agent.d]
    for arm in range(agent.n_actions):
        dof = nu_n[arm] - agent.d + 1
        law = stats.t(dof, loc=loc[arm], scale=np.sqrt(tz @ psi_n[arm] @ tz / (kappa_n[arm] * dof)))
        assert stats.kstest(direct[:, arm], law.cdf).pvalue > 1e-4
        assert stats.kstest(two_stage[:, arm], law.cdf).pvalue > 1e-4
        assert stats.ks_2samp(direct[:, arm], two_stage[:, arm]).pvalue > 1e-4


def test_lints_posterior_equals_closed_form():
    agent, data, env = rollout(make("LinTS"), steps=150, noise_level=1)
    sd = env.unwrapped.noise_sd
    ctx = context_ids(data["obs"])
    from gambit_gym.agents._batched import CONTEXT_ONE_HOTS

    x_all = np.concatenate([np.ones((len(ctx), 1)), CONTEXT_ONE_HOTS[ctx]], axis=1)
    prec = np.diag([0.01] + [1.0] * 7)
    mu0 = np.zeros(8)
    mu0[0] = 77.0
    for arm in range(agent.n_actions):
        sel = data["a"] == arm
        x, y = x_all[sel], data["y"][sel]
        B = prec + x.T @ x / sd ** 2
        mu = np.linalg.solve(B, prec @ mu0 + x.T @ y / sd ** 2)
        np.testing.assert_allclose(agent.mu[0, arm], mu, rtol=1e-8, atol=1e-8)


# ---------------------------------------------------------------- random streams
def test_counter_gamma_sampler_matches_the_gamma_distribution():
    s = CounterStreams(replicate_keys(3, 2))
    for shape in (0.4, 1.0, 7.5):
        g = s.gamma(1, 16, np.full((2, 20000), shape)).ravel()
        assert stats.kstest(g, stats.gamma(shape).cdf).pvalue > 1e-3


def _eager_gamma(s, counter, stream, a, tries=3):
    """The gamma sampler with every proposal hashed up front (the lazy one must equal it)."""
    from scipy.special import gammaincinv

    small = a < 1.0
    boosted = np.where(small, a + 1.0, a)
    d = boosted - 1.0 / 3.0
    c = 1.0 / np.sqrt(9.0 * d)
    x = s.normal(counter, stream, (*a.shape[1:], tries))
    u = s.uniform(counter, stream + 1, (*a.shape[1:], tries + 1))
    v = (1.0 + c[..., None] * x) ** 3
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = (v > 0) & (np.log(u[..., :-1]) < 0.5 * x * x + d[..., None] - d[..., None] * v
                        + d[..., None] * np.log(np.where(v > 0, v, 1.0)))
    g = d * np.take_along_axis(v, np.argmax(ok, axis=-1)[..., None], axis=-1)[..., 0]
    bad = ~ok.any(axis=-1)
    g[bad] = gammaincinv(boosted[bad], u[..., -1][bad])
    return np.where(small, g * s.uniform(counter, stream + 2, a.shape[1:]) ** (1.0 / a), g)


def test_lazy_gamma_proposals_equal_hashing_every_proposal():
    s = CounterStreams(replicate_keys(5, 3))
    rng = np.random.default_rng(0)
    for shape in ((3,), (3, 4000), (3, 60, 5)):
        for lo, hi in ((0.05, 0.9), (0.3, 5.0), (1.0, 400.0)):
            a = rng.uniform(lo, hi, size=shape)
            np.testing.assert_allclose(s.gamma(7, 16, a), _eager_gamma(s, 7, 16, a),
                                       rtol=1e-13)


def test_fused_gamma_and_normal_equal_separate_draws():
    s = CounterStreams(replicate_keys(2, 5))
    a = np.random.default_rng(4).uniform(0.2, 30.0, size=(5, 7))
    g, z = s.gamma_and_normal(9, 16, a, 20, (7, 3))
    np.testing.assert_array_equal(g, s.gamma(9, 16, a))
    np.testing.assert_array_equal(z, s.normal(9, 20, (7, 3)))


def test_replicate_streams_do_not_depend_on_the_batch():
    batch = CounterStreams(replicate_keys(10, 4)).normal(5, 16, (3,))
    single = CounterStreams(replicate_keys(12, 1)).normal(5, 16, (3,))
    np.testing.assert_array_equal(batch[2], single[0])


def test_argmax_random_ties_is_uniform_over_ties():
    scores = np.tile(np.array([1.0, 3.0, 3.0, 0.0]), (4000, 1))
    u = np.random.default_rng(0).random(4000)
    picks = argmax_random_ties(scores, u)
    assert set(np.unique(picks)) == {1, 2}
    assert abs((picks == 1).mean() - 0.5) < 0.05


# ---------------------------------------------------------------- batched = single
@pytest.mark.parametrize("name", NUMPY_AGENTS)
def test_batched_decisions_equal_single_replicate_decisions(name):
    from gambit_gym.bench import run

    R, T, seed = 3, 40, 7
    res = run("GambitIHS-v0", name, horizon=T, replicates=R, seed=seed, progress=False,
              env_kwargs={"noise_level": 2})
    for r in range(R):
        _, data, _ = rollout(make(name), steps=T, seed=seed + r, noise_level=2, horizon=T)
        np.testing.assert_array_equal(res.actions[r], data["a"])
        np.testing.assert_allclose(res.rewards[r], data["y"])


# ---------------------------------------------------------------- propensities
@pytest.mark.parametrize("name", NUMPY_AGENTS)
def test_propensities_sum_to_one_and_match_action_frequencies(name):
    agent, data, env = rollout(make(name), steps=25, noise_level=4)
    obs = data["obs"][3]
    probs = agent.action_probabilities(obs, n_samples=2000, target_rse=None)  # 2000 draws
    assert probs.shape == (agent.n_actions,)
    assert probs.sum() == pytest.approx(1.0)
    assert np.all(probs >= 0)
    n = 600
    acts = np.array([agent.act(obs) for _ in range(n)])  # no update: the same state
    freq = np.bincount(acts, minlength=agent.n_actions) / n
    se = np.sqrt(probs * (1 - probs) / n + probs * (1 - probs) / 2000) + 1e-9
    assert np.all(np.abs(freq - probs) <= 4.5 * se + 2e-3), (freq, probs)


@pytest.mark.parametrize("name", ["StdTS", "StdTS-Contextual", "poGAMBITTS", "foGAMBITTS",
                                  "LinTS"])
def test_adaptive_propensities_agree_with_a_large_sample_within_their_standard_error(name):
    agent, data, _ = rollout(make(name), steps=40, noise_level=4)
    obs = data["obs"][5]
    ref = agent.action_probabilities(obs, n_samples=40_000, target_rse=None)
    probs = agent.action_probabilities(obs, n_samples=1000)  # the default: by relative SE
    se, draws = agent.propensity_se[0], agent.propensity_draws[0]
    assert probs.sum() == pytest.approx(1.0) and 16 <= draws <= 1000  # pilot: 16 or 32
    assert np.all(np.abs(probs - ref) <= 4.5 * se + 0.01), (probs, ref, se)
    chosen = agent.act(obs)  # the action the estimate was made precise for
    if draws < 1000:  # stopped early: the chosen arm's relative SE reached the target
        assert se[chosen] / probs[chosen] <= 0.1 * 1.5
    assert probs[chosen] > 0


def test_polar_method_gives_student_t_of_every_degree_of_freedom():
    from gambit_gym.agents._batched import polar_t_base, polar_t_unit

    base = polar_t_base(np.random.default_rng(4), (40_000,))
    for dof in (1.0, 2.0, 3.5, 12.0, 400.0):  # one set of numbers, any ν
        t = polar_t_unit(base, np.float64(dof)) * np.sqrt(dof)
        assert stats.kstest(t, stats.t(dof).cdf).pvalue > 1e-3, dof


def test_t_cdf_equals_scipy():
    from scipy.special import stdtr

    from gambit_gym.agents._batched import t_cdf

    x = np.linspace(-60, 60, 2001)[None, :]
    for dof in (1, 2, 3, 4, 7, 10, 11, 11.5, 12, 13, 60, 5000, 0.6):  # series, Hill, scipy
        np.testing.assert_allclose(t_cdf(x, np.array([[dof]])), stdtr(dof, x), rtol=0,
                                   atol=2e-10, err_msg=str(dof))


def test_conditional_propensity_agrees_with_brute_force_counting():
    # independent Student-t arms, the chosen arm spread wide against narrow others (the case
    # that needs the most counting draws) and the reverse; 400,000 counting draws as reference
    from gambit_gym.agents._batched import polar_t_base, polar_t_unit, sampled_probabilities

    loc = np.array([[0.0, 0.5, 0.3, -0.2], [1.0, 0.0, 0.9, 0.95], [0.0, 0.0, 0.0, 0.0]])
    scale = np.array([[3.0, 0.1, 0.2, 0.1], [0.05, 1.0, 0.3, 0.1], [1.0, 1.0, 1.0, 1.0]])
    dof = np.array([[2.0, 40.0, 9.0, 300.0], [50.0, 3.0, 12.0, 7.0], [5.0, 5.0, 5.0, 5.0]])
    chosen = np.array([0, 0, 2])
    gen = np.random.default_rng(0)
    ref = np.zeros_like(loc)
    for _ in range(4):
        x = loc[:, None] + scale[:, None] * gen.standard_t(dof[:, None], size=(3, 100_000, 4))
        ref += np.stack([(x.argmax(-1) == j).mean(1) for j in range(4)], 1) / 4

    def noise(g, rows, n):
        return polar_t_base(g, (n, 4))

    def scores(rows, base):
        out = loc[rows, None] + scale[rows, None] * polar_t_unit(base, dof[rows, None]) \
            * np.sqrt(dof[rows, None])
        return out, loc[rows, None], scale[rows, None]

    probs, se, drawn = sampled_probabilities(noise, scores, np.random.default_rng(1), 3, 4,
                                             4000, chosen, 0.05, conditional_dof=dof)
    p, s = probs[np.arange(3), chosen], se[np.arange(3), chosen]
    assert np.all(s / p <= 0.05 * 1.3) and np.all(drawn <= 4000)
    tol = 4.5 * np.hypot(s, np.sqrt(ref[np.arange(3), chosen] / 400_000))
    assert np.all(np.abs(p - ref[np.arange(3), chosen]) <= tol), (p, ref, s)
    np.testing.assert_allclose(probs.sum(1), 1.0)
    counted = sampled_probabilities(lambda g, r, n: noise(g, r, n), lambda r, b: scores(r, b)[0],
                                    np.random.default_rng(1), 3, 4, 4000, chosen, 0.05)[2]
    assert drawn[0] * 4 <= counted[0]  # the wide chosen arm: a fraction of the counting draws


@pytest.mark.parametrize(("name", "rtol"), [("StdTS", 1e-6), ("StdTS-Contextual", 1e-6),
                                           ("foGAMBITTS", 1e-10)])
def test_propensity_kernels_equal_the_numpy_path(name, rtol, monkeypatch):
    # foGAMBITTS: the numba kernel fuses scoring and the conditional estimator; same random
    # numbers, so the same estimates up to float rounding (and the same draws). StdTS: the
    # quadrature kernel takes early exits that change an integral by at most tol/1000
    # relative (tol = 1e-3), the numpy path evaluates every node; the same rules (nodes).
    # Run by the real runner.
    from gambit_gym.agents import _propensity_kernels as kernels
    from gambit_gym.bench import run

    if not kernels.available():
        pytest.skip("numba (the fast extra) is not installed")
    kw = dict(horizon=60, replicates=6, seed=5, progress=False, propensities=True,
              env_kwargs={"noise_level": 3})
    fused = run("GambitIHS-v0", name, **kw)
    monkeypatch.setattr(kernels, "available", lambda: False)
    plain = run("GambitIHS-v0", name, **kw)
    np.testing.assert_array_equal(fused.actions, plain.actions)
    np.testing.assert_allclose(fused.propensities, plain.propensities, rtol=rtol, atol=1e-13)
    assert fused.metadata["propensity"]["mean_draws"] == plain.metadata["propensity"]["mean_draws"]


@pytest.mark.parametrize("name", ["StdTS-Contextual", "poGAMBITTS", "foGAMBITTS"])
def test_batched_propensities_with_shared_draws_match_each_replicates_decisions(name):
    # the batch's propensity draws are shared by its replicates: each replicate's estimate must
    # still be its own policy's probability, checked against 500 of its own decisions
    batch = [rollout(make(name), steps=30, seed=11 + r, noise_level=4) for r in range(4)]
    agent = make(name)  # the four replicates' states in one batched agent
    agent.reset_batch(batch[0][2].unwrapped.describe(), 11, 4)
    for t in range(30):
        obs = np.stack([b[1]["obs"][t] for b in batch])
        agent.update_batch(obs, np.array([b[1]["a"][t] for b in batch]),
                           np.array([b[1]["y"][t] for b in batch]),
                           {"embedding": np.stack([b[1]["z"][t] for b in batch])})
    probs = agent.action_probabilities_batch(obs, n_samples=4000, target_rse=None)
    n = 500
    freq = np.zeros_like(probs)
    for r, (single, _, _) in enumerate(batch):
        acts = np.array([single.act(obs[r]) for _ in range(n)])
        freq[r] = np.bincount(acts, minlength=single.n_actions) / n
    se = np.sqrt(probs * (1 - probs) / n + probs * (1 - probs) / 4000) + 1e-9
    assert np.all(np.abs(freq - probs) <= 4.5 * se + 2e-3), (freq, probs)


@pytest.mark.parametrize("name", ["poGAMBITTS", "LinTS"])
def test_two_arm_propensities_are_exact(name):
    agent, data, _ = rollout(make(name), steps=15, noise_level=2, n_prompts=2)
    obs = data["obs"][3]
    probs = agent.action_probabilities(obs)
    assert agent.propensity_draws[0] == 0  # the closed form, no draws
    n = 4000
    acts = np.array([agent.act(obs) for _ in range(n)])  # the agent's own decisions
    freq = np.bincount(acts, minlength=2) / n
    se = np.sqrt(probs * (1 - probs) / n) + 1e-9
    assert np.all(np.abs(freq - probs) <= 4.5 * se + 1e-3), (freq, probs)
    assert 0.02 < probs[0] < 0.98  # a case where the closed form is not trivially 0 or 1


def test_propensities_then_update_do_not_reuse_a_stale_action():
    agent, data, env = rollout(make("StdTS"), steps=10)
    twin, _, _ = rollout(make("StdTS"), steps=10)
    obs = data["obs"][-1]
    agent.action_probabilities(obs, n_samples=100)  # computes (and keeps) the next action
    for ag in (agent, twin):
        ag.update(obs, 0, 120.0, {})  # a large reward for arm 0 changes the posterior
    assert [agent.act(obs) for _ in range(20)] == [twin.act(obs) for _ in range(20)]


def test_propensities_do_not_change_decisions():
    a, data_a, _ = rollout(make("poGAMBITTS"), steps=30)
    env = gym.make("GambitIHS-v0")
    b = make("poGAMBITTS")
    b.reset(env.unwrapped.describe(), seed=0)
    obs, _ = env.reset(seed=0)
    acts = []
    for _ in range(30):
        b.action_probabilities(obs, n_samples=50)
        act = b.act(obs)
        nxt, y, _, _, info = env.step(act)
        b.update(obs, act, y, info)
        acts.append(act)
        obs = nxt
    np.testing.assert_array_equal(acts, data_a["a"])


def test_oracle_has_zero_regret_and_random_is_uniform():
    from gambit_gym.bench import run

    res = run("GambitIHS-v0", "Oracle", horizon=50, replicates=2, seed=0, progress=False)
    assert res.regret.sum() == 0.0
    env = gym.make("GambitIHS-v0")
    agent = make("Random")
    agent.reset(env.unwrapped.describe(), seed=0)
    np.testing.assert_allclose(agent.action_probabilities(np.zeros(2, dtype=int)), 0.2)


# ---------------------------------------------------------------- invalid input
@pytest.mark.parametrize("name, kwargs, error, match", [
    ("StdTS", {"nu": 0.0}, ValueError, "nu must be"),
    ("StdTS", {"beta": -1.0}, ValueError, "beta must be"),
    ("poGAMBITTS", {"noise": "guess"}, ValueError, "noise must be"),
    ("poGAMBITTS", {"n_sim_draws": 0}, ValueError, "n_sim_draws"),
    ("poGAMBITTS", {"release_compat": True, "noise": "env"}, ValueError, "release_compat"),
    ("foGAMBITTS", {"treatment_var": 0.0}, ValueError, "treatment_var"),
    ("LinUCB", {"alpha": "wide"}, ValueError, "alpha must be"),
    ("EpsilonGreedy", {"epsilon": 1.5}, ValueError, "epsilon must be"),
    ("UCB1", {"scale": -2.0}, ValueError, "scale must be"),
])
def test_invalid_arguments_raise_clear_errors(name, kwargs, error, match):
    with pytest.raises(error, match=match):
        make(name, **kwargs)


def test_act_before_reset_and_wrong_batch_raise():
    agent = make("StdTS")
    with pytest.raises(RuntimeError, match="reset"):
        agent.act(np.zeros(2, dtype=int))
    env = gym.make("GambitIHS-v0")
    agent.reset_batch(env.unwrapped.describe(), 0, 3)
    with pytest.raises(ValueError, match="batch of 3"):
        agent.act_batch(np.zeros((2, 2), dtype=int))


def test_pogambitts_subsampled_simulator_means():
    env = gym.make("GambitIHS-v0")
    desc = env.unwrapped.describe()
    agent = make("poGAMBITTS", n_sim_draws=5000)
    agent.reset_batch(desc, 0, 2)
    np.testing.assert_allclose(agent.zbar[0], desc.simulator.mean_embedding_table, atol=0.1)
    assert not np.array_equal(agent.zbar[0], agent.zbar[1])
