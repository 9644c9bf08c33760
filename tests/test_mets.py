"""meTS, HierTS and the disjoint baselines: posterior algebra, protocol, batching, ordering."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from scipy import optimize

import gambit_gym  # noqa: F401  (registers the ids)
from gambit_gym import agents
from gambit_gym.agents.base import EnvDescription
from gambit_gym.agents.mets import HierTS, MeTSFa, MeTSLin, MixedLinTS
from gambit_gym.agents.mets_glm import GaussianStats, LaplaceStats
from gambit_gym.agents.mets_posterior import effect_natural_params, prior_adjusted
from gambit_gym.agents.mets_structure import MixedEffectStructure, structure_from_embeddings

NAMES = ["meTS-Lin", "meTS-GLM", "meTS-Fa", "HierTS", "LinTS-Disjoint", "LinUCB-Disjoint",
         "GLM-TS", "UCB-GLM"]
GLM_NAMES = {"meTS-GLM", "GLM-TS", "UCB-GLM"}


def spd(rng, n, scale=1.0):
    A = rng.standard_normal((n, n))
    return scale * (A @ A.T / n + 0.5 * np.eye(n))


def small_structure(rng, K=4, L=2, d=2, sigma=0.7):
    return MixedEffectStructure(
        b=rng.uniform(-1, 1, (K, L)), mu_psi=rng.standard_normal(L * d),
        sigma_psi=spd(rng, L * d, 2.0), sigma_0=np.stack([spd(rng, d) for _ in range(K)]),
        sigma=sigma)


def spec_for(K, d, horizon=100, **extra):
    return EnvDescription(n_actions=K, action_space=spaces.Discrete(K),
                          observation_space=spaces.Box(-1, 1, (K, d), np.float32),
                          horizon=horizon, extra=extra)


def feed(agent, rng, K, d, n, plays):
    """Feed ``n`` observations on the actions in ``plays``; return the data."""
    data = []
    for t in range(n):
        obs = rng.uniform(-1, 1, (K, d))
        a = plays[t % len(plays)]
        y = float(rng.standard_normal())
        agent.update(obs, a, y, {})
        data.append((a, obs[a], y))
    return data


def brute_force_posterior(st, data):
    """Condition the joint Gaussian of (ψ, θ_1..θ_K) on the data; return mean and covariance."""
    K, d, p = st.n_actions, st.dim, st.n_effects * st.dim
    W = st.mixing()
    # z = (ψ, θ) = A ψ + (0, ε), ε_i ~ N(0, Σ_0,i)
    A = np.vstack([np.eye(p)] + [W[i] for i in range(K)])
    noise = np.zeros((p + K * d, p + K * d))
    for i in range(K):
        noise[p + i * d:p + (i + 1) * d, p + i * d:p + (i + 1) * d] = st.sigma_0[i]
    mean = A @ st.mu_psi
    cov = A @ st.sigma_psi @ A.T + noise
    H = np.zeros((len(data), p + K * d))
    y = np.zeros(len(data))
    for s, (a, x, r) in enumerate(data):
        H[s, p + a * d:p + (a + 1) * d] = x
        y[s] = r
    S = H @ cov @ H.T + st.sigma**2 * np.eye(len(data))
    gain = cov @ H.T @ np.linalg.inv(S)
    return mean + gain @ (y - H @ mean), cov - gain @ H @ cov


# --- posterior algebra ------------------------------------------------------------------------
def test_stable_prior_adjusted_terms_match_the_inverse_forms():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((5, 3))
    G, B, S0 = X.T @ X, X.T @ rng.standard_normal(5), spd(rng, 3)
    Gbar, bbar = prior_adjusted(G, B, S0)
    np.testing.assert_allclose(Gbar, np.linalg.inv(S0 + np.linalg.inv(G)), rtol=1e-10)
    np.testing.assert_allclose(bbar, Gbar @ np.linalg.solve(G, B), rtol=1e-10)
    # singular G (one observation) and G = 0 stay finite and exact
    x = rng.standard_normal(3)
    Gbar1, bbar1 = prior_adjusted(np.outer(x, x), 2.0 * x, S0)
    np.testing.assert_allclose(Gbar1, np.outer(x, x) / (1 + x @ S0 @ x), atol=1e-12)
    np.testing.assert_allclose(bbar1, 2.0 * x / (1 + x @ S0 @ x), atol=1e-12)
    Gbar0, bbar0 = prior_adjusted(np.zeros((3, 3)), np.zeros(3), S0)
    assert not Gbar0.any() and not bbar0.any()


@pytest.mark.parametrize("plays", [[0], [0, 1, 1, 2], [0, 1, 2, 3]])
def test_effect_and_conditional_posteriors_equal_brute_force_conditioning(plays):
    rng = np.random.default_rng(len(plays))
    st = small_structure(rng)
    agent = MeTSLin(structure=st)
    agent.reset(spec_for(4, 2), seed=0)
    data = feed(agent, rng, 4, 2, 9, plays)
    mean, cov = brute_force_posterior(st, data)
    p = 4
    mu_bar, cov_bar = agent.effect_posterior()
    np.testing.assert_allclose(mu_bar[0], mean[:p], rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(cov_bar[0], cov[:p, :p], rtol=1e-9, atol=1e-10)
    # θ | ψ from the joint: mean and covariance, block-diagonal across actions
    psi = rng.standard_normal(p)
    k = np.linalg.solve(cov[:p, :p], cov[:p, p:]).T
    cond_mean = mean[p:] + k @ (psi - mean[:p])
    cond_cov = cov[p:, p:] - k @ cov[:p, p:]
    got_mean, got_cov = agent.conditional_posterior(psi[None])
    np.testing.assert_allclose(got_mean[0].ravel(), cond_mean, rtol=1e-8, atol=1e-9)
    for i in range(4):
        blk = cond_cov[2 * i:2 * i + 2, 2 * i:2 * i + 2]
        np.testing.assert_allclose(got_cov[0, i], blk, rtol=1e-8, atol=1e-10)
        for j in range(4):
            if j != i:
                np.testing.assert_allclose(cond_cov[2 * i:2 * i + 2, 2 * j:2 * j + 2], 0,
                                           atol=1e-9)


def test_incremental_effect_precision_equals_recomputation():
    rng = np.random.default_rng(3)
    st = small_structure(rng, K=6, L=3, d=2)
    agent = MeTSLin(structure=st)
    agent.reset(spec_for(6, 2), seed=0)
    feed(agent, rng, 6, 2, 300, list(rng.integers(0, 6, 50)))
    P, h = effect_natural_params(agent._W[0], agent._Gbar[0], agent._bbar[0], st.mu_psi,
                                 np.linalg.inv(st.sigma_psi))
    np.testing.assert_allclose(agent._P[0], P, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(agent._h[0], h, rtol=1e-10, atol=1e-10)


def test_hierts_matches_its_own_formulas():
    rng = np.random.default_rng(4)
    st = small_structure(rng, K=5, L=3, d=2)
    agent = HierTS(structure=st)
    agent.reset(spec_for(5, 2), seed=0)
    feed(agent, rng, 5, 2, 30, [0, 1, 2, 4])
    one = st.single_effect()
    np.testing.assert_allclose(one.mu_psi, st.mu_psi.reshape(3, 2).mean(0))
    Sq_inv = np.linalg.inv(one.sigma_psi)
    Gbar, bbar = prior_adjusted(agent._lik.G[0], agent._lik.B[0], st.sigma_0)
    prec = Sq_inv + Gbar.sum(0)
    mean = np.linalg.solve(prec, Sq_inv @ one.mu_psi + bbar.sum(0))
    got_mean, got_cov = agent.effect_posterior()
    np.testing.assert_allclose(got_mean[0], mean, rtol=1e-10)
    np.testing.assert_allclose(got_cov[0], np.linalg.inv(prec), rtol=1e-10)


def run_agent(agent, env_id, seed, steps, **env_kwargs):
    env = gym.make(env_id, **env_kwargs).unwrapped
    obs, _ = env.reset(seed=seed)
    agent.reset(env.describe(), seed=seed)
    actions, regret = [], 0.0
    for _ in range(steps):
        a = agent.act(obs)
        nxt, r, _, _, info = env.step(a)
        agent.update(obs, a, r, info)
        actions.append(a)
        regret += info["regret"]
        obs = nxt
    return actions, regret


def test_mets_with_one_effect_and_unit_loadings_equals_hierts():
    kw = {"n_actions": 12, "n_effects": 1, "b_low": 1.0 - 1e-12, "b_high": 1.0}
    env = gym.make("MixedEffectLinear-v0", **kw).unwrapped
    env.reset(seed=0)
    spec = env.describe()
    st = MixedEffectStructure.from_description(spec)
    st1 = MixedEffectStructure(np.ones((12, 1)), st.mu_psi, st.sigma_psi, st.sigma_0, st.sigma)
    a1, _ = run_agent(MeTSLin(structure=st1), "MixedEffectLinear-v0", 0, 150, **kw)
    a2, _ = run_agent(HierTS(structure=st1), "MixedEffectLinear-v0", 0, 150, **kw)
    assert a1 == a2


def test_factored_posterior_keeps_diagonal_blocks_and_equals_joint_for_one_effect():
    rng = np.random.default_rng(5)
    st = small_structure(rng, K=5, L=3, d=2)
    st = MixedEffectStructure(st.b, st.mu_psi, np.kron(np.diag([1.0, 2.0, 3.0]), np.eye(2)),
                              st.sigma_0, st.sigma)
    joint, fa = MeTSLin(structure=st), MeTSFa(structure=st)
    for ag in (joint, fa):
        ag.reset(spec_for(5, 2), seed=0)
        feed(ag, np.random.default_rng(9), 5, 2, 40, [0, 1, 3])
    mask = np.kron(np.eye(3), np.ones((2, 2)))
    np.testing.assert_allclose(fa.effect_precision(), joint.effect_precision() * mask)
    assert np.abs(joint.effect_precision() * (1 - mask)).max() > 1e-3
    one = MixedEffectStructure(st.b[:, :1], st.mu_psi[:2], np.eye(2), st.sigma_0, st.sigma)
    kw = {"n_actions": 5, "n_effects": 1}
    assert (run_agent(MeTSLin(structure=one), "MixedEffectLinear-v0", 1, 60, **kw)[0]
            == run_agent(MeTSFa(structure=one), "MixedEffectLinear-v0", 1, 60, **kw)[0])


def test_factored_needs_block_diagonal_effect_prior():
    st = small_structure(np.random.default_rng(0))
    with pytest.raises(ValueError, match="block-diagonal"):
        MeTSFa(structure=st).reset(spec_for(4, 2), seed=0)


# --- Laplace --------------------------------------------------------------------------------
def test_laplace_with_a_gaussian_likelihood_is_exact():
    rng = np.random.default_rng(6)
    R, K, d = 2, 3, 2
    m = rng.standard_normal((R, K, d))
    P0 = np.stack([[np.linalg.inv(spd(rng, d)) for _ in range(K)] for _ in range(R)])
    sigma = np.array([0.5, 2.0])
    exact = GaussianStats(R, K, d, sigma)
    lap = LaplaceStats(m, P0, family="gaussian", sigma=sigma)
    for _ in range(20):
        rows, acts = np.arange(R), rng.integers(0, K, R)
        x, y = rng.standard_normal((R, d)), rng.standard_normal(R)
        exact.add(rows, acts, x, y)
        lap.add(rows, acts, x, y)
    np.testing.assert_allclose(lap.G, exact.G, atol=1e-10)
    np.testing.assert_allclose(lap.B, exact.B, atol=1e-9)


def test_logistic_laplace_is_at_the_map_with_curvature_from_all_the_data():
    rng = np.random.default_rng(7)
    d, n = 2, 400
    m, P0 = np.array([0.2, -0.1]), np.linalg.inv(spd(rng, d))
    lap = LaplaceStats(m[None, None], P0[None, None])
    theta_true = np.array([1.5, -2.0])
    X = rng.uniform(-1, 1, (n, d))
    y = (rng.random(n) < 1 / (1 + np.exp(-X @ theta_true))).astype(float)
    for i in range(n):
        lap.add(np.array([0]), np.array([0]), X[i:i + 1], y[i:i + 1])

    def neg_log_post(th):
        z = X @ th
        return -(y @ z - np.logaddexp(0, z).sum()) + 0.5 * (th - m) @ P0 @ (th - m)

    ref = optimize.minimize(neg_log_post, np.zeros(d), method="BFGS", options={"gtol": 1e-10}).x
    theta0 = lap.theta0[0, 0]
    np.testing.assert_allclose(theta0, ref, atol=1e-5)
    p = 1 / (1 + np.exp(-X @ theta0))
    np.testing.assert_allclose(lap.G[0, 0], (X * (p * (1 - p))[:, None]).T @ X, rtol=1e-10)
    # the disjoint Laplace posterior mean is the MAP itself
    cov = np.linalg.inv(P0 + lap.G[0, 0])
    np.testing.assert_allclose(cov @ (P0 @ m + lap.B[0, 0]), theta0, atol=1e-8)


def test_logistic_laplace_is_defined_under_separation():
    lap = LaplaceStats(np.zeros((1, 1, 2)), np.eye(2)[None, None])
    for x, y in [([1.0, 0.0], 1.0), ([-1.0, 0.0], 0.0), ([0.5, 0.1], 1.0)]:
        lap.add(np.array([0]), np.array([0]), np.array([x]), np.array([y]))
    assert np.all(np.isfinite(lap.theta0)) and np.abs(lap.theta0).max() < 10
    assert np.linalg.eigvalsh(lap.G[0, 0]).min() >= 0


# --- protocol -------------------------------------------------------------------------------
def env_for(name):
    return "MixedEffectLogistic-v0" if name in GLM_NAMES else "MixedEffectLinear-v0"


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_decisions(name):
    kw = {"n_actions": 10}
    a1, _ = run_agent(agents.make(name), env_for(name), 3, 40, **kw)
    a2, _ = run_agent(agents.make(name), env_for(name), 3, 40, **kw)
    assert a1 == a2


@pytest.mark.parametrize("name", NAMES)
def test_batched_agent_takes_the_same_decisions_as_single_agents(name):
    R, steps, seed = 3, 30, 11
    env_id, kw = env_for(name), {"n_actions": 10}
    singles = [run_agent(agents.make(name), env_id, seed + r, steps, **kw)[0] for r in range(R)]
    envs = [gym.make(env_id, **kw).unwrapped for _ in range(R)]
    obs = np.stack([e.reset(seed=seed + r)[0] for r, e in enumerate(envs)])
    batched = agents.make(name)
    batched.reset_batch([e.describe() for e in envs], seed)
    got = []
    for _ in range(steps):
        acts = batched.act_batch(obs)
        steps_ = [e.step(int(a)) for e, a in zip(envs, acts)]
        batched.update_batch(obs, acts, [s[1] for s in steps_], [s[4] for s in steps_])
        obs = np.stack([s[0] for s in steps_])
        got.append(acts)
    assert np.array_equal(np.array(got).T, np.array(singles))


@pytest.mark.parametrize("name", NAMES)
def test_propensities_sum_to_one_and_do_not_change_decisions(name):
    env = gym.make(env_for(name), n_actions=8).unwrapped
    obs, _ = env.reset(seed=0)
    agent, twin = agents.make(name), agents.make(name)
    for ag in (agent, twin):
        ag.reset(env.describe(), seed=0)
    probs = agent.action_probabilities(obs, n_samples=300)
    assert probs.shape == (8,) and np.all(probs >= 0)
    assert probs.sum() == pytest.approx(1.0)
    assert agent.act(obs) == twin.act(obs)


@pytest.mark.parametrize("name", ["meTS-Lin", "meTS-GLM", "LinTS-Disjoint"])
def test_propensities_match_empirical_frequencies(name):
    env = gym.make(env_for(name), n_actions=5).unwrapped
    obs, _ = env.reset(seed=1)
    agent = agents.make(name)
    agent.reset(env.describe(), seed=1)
    for _ in range(15):
        a = agent.act(obs)
        nxt, r, _, _, info = env.step(a)
        agent.update(obs, a, r, info)
        obs = nxt
    n = 3000
    probs = agent.action_probabilities(obs, n_samples=n)
    freq = np.bincount([agent.act(obs) for _ in range(n)], minlength=5) / n
    se = np.sqrt(probs * (1 - probs) / n + freq * (1 - freq) / n) + 1e-3
    assert np.all(np.abs(probs - freq) < 5 * se), (probs, freq)


def test_ucb_propensity_is_the_argmax():
    env = gym.make("MixedEffectLinear-v0", n_actions=6).unwrapped
    obs, _ = env.reset(seed=0)
    agent = agents.make("LinUCB-Disjoint")
    agent.reset(env.describe(), seed=0)
    probs = agent.action_probabilities(obs, n_samples=50)
    assert probs[agent.act(obs)] == 1.0


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"likelihood": "probit"}, ValueError, "likelihood"),
        ({"sigma": -1.0}, ValueError, "sigma"),
        ({"structure": "gmm"}, TypeError, "MixedEffectStructure"),
    ],
)
def test_invalid_agent_arguments(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        MeTSLin(**kwargs)


def test_agent_misuse_raises_clear_errors():
    agent = MeTSLin()
    with pytest.raises(RuntimeError, match="reset"):
        agent.act(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="structure"):
        agent.reset(spec_for(4, 2), seed=0)
    with pytest.raises(ValueError, match="replicates must be a positive integer"):
        MixedLinTS().reset_batch(spec_for(4, 2), 0, 0)
    st = small_structure(np.random.default_rng(0))
    single = MeTSLin(structure=st)
    single.reset(spec_for(4, 2), seed=0)
    with pytest.raises(ValueError, match="shape"):
        single.act(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="must be an integer in 0..3"):
        single.update(np.zeros((4, 2)), 7, 1.0, {})


# --- structure learning ---------------------------------------------------------------------
def test_gmm_structure_recovers_clusters_from_offline_embeddings():
    rng = np.random.default_rng(0)
    centres = np.array([[5.0, 0.0], [-5.0, 0.0], [0.0, 5.0]])
    labels = rng.integers(0, 3, 60)
    emb = centres[labels] + 0.3 * rng.standard_normal((60, 2))
    st = structure_from_embeddings(emb, 3, seed=0)
    assert st.b.shape == (60, 3)
    np.testing.assert_allclose(st.b.sum(1), 1.0)
    hard = st.b.argmax(1)
    # one-to-one match between components and clusters
    assert len({(lab, h) for lab, h in zip(labels, hard)}) == 3
    v = emb.var(0)
    np.testing.assert_allclose(np.diag(st.sigma_0[0]), 0.25 * v)
    np.testing.assert_allclose(np.diag(st.sigma_psi)[:2], 0.75 * v)
    found = st.mu_psi.reshape(3, 2)
    assert np.abs(np.sort(found[:, 0]) - np.sort(centres[:, 0])).max() < 0.5
    other = structure_from_embeddings(emb, 3, seed=0, param_dim=4, param_prior_var=2.0)
    assert other.dim == 4 and other.sigma_0.shape == (60, 4, 4)
    np.testing.assert_allclose(other.b, st.b)


# --- ordering -------------------------------------------------------------------------------
def batched_regret(name, env_id, runs, horizon, **env_kwargs):
    envs = [gym.make(env_id, horizon=horizon, **env_kwargs).unwrapped for _ in range(runs)]
    obs = np.stack([e.reset(seed=100 + r)[0] for r, e in enumerate(envs)])
    agent = agents.make(name)
    agent.reset_batch([e.describe() for e in envs], 100)
    total = np.zeros(runs)
    for _ in range(horizon):
        acts = agent.act_batch(obs)
        out = [e.step(int(a)) for e, a in zip(envs, acts)]
        agent.update_batch(obs, acts, [o[1] for o in out], [o[4] for o in out])
        total += [o[4]["regret"] for o in out]
        obs = np.stack([o[0] for o in out])
    return total.mean()


def test_mets_beats_disjoint_baselines_on_the_linear_env():
    regret = {n: batched_regret(n, "MixedEffectLinear-v0", 6, 500)
              for n in ("meTS-Lin", "LinTS-Disjoint", "LinUCB-Disjoint")}
    assert regret["meTS-Lin"] < 0.8 * regret["LinTS-Disjoint"] < regret["LinUCB-Disjoint"], regret


def test_mets_glm_beats_linear_mets_on_the_logistic_env():
    regret = {n: batched_regret(n, "MixedEffectLogistic-v0", 6, 400)
              for n in ("meTS-GLM", "meTS-Lin")}
    assert regret["meTS-GLM"] < 0.6 * regret["meTS-Lin"], regret


# --- GAMBIT envs ----------------------------------------------------------------------------
class FakeSimulator:
    """Two clear style clusters of prompts; no rewards anywhere."""

    def __init__(self, K):
        self.table = np.stack([np.where(np.arange(K)[:, None] < K // 2, 1.0, -1.0)
                               * np.ones((K, 3)) + 0.01 * c for c in range(12)])

    def mean_embeddings(self, context):
        return self.table[int(context)]


def gambit_spec(K):
    return EnvDescription(n_actions=K, action_space=spaces.Discrete(K),
                          observation_space=spaces.MultiDiscrete([3, 4]), n_contexts=12,
                          simulator=FakeSimulator(K), noise_sd=2.0, horizon=100)


def test_gambit_structure_clusters_prompts_from_the_simulator_only():
    from gambit_gym.agents.mets_structure import gambit_features, gambit_structure

    st = gambit_structure(gambit_spec(16), n_effects=2)
    hard = st.b.argmax(1)
    assert len(set(hard[:8])) == 1 and len(set(hard[8:])) == 1 and hard[0] != hard[8]
    assert st.dim == 6 and st.sigma == 2.0 and st.mu_psi[0] == 77.0
    np.testing.assert_array_equal(gambit_features(np.array([[2, 3], [0, 0]])),
                                  [[1, 0, 1, 0, 0, 1], [1, 0, 0, 0, 0, 0]])


def test_mets_runs_on_gambit_observations():
    agent = MeTSLin(n_effects=2)
    agent.reset(gambit_spec(16), seed=0)
    rng = np.random.default_rng(0)
    for _ in range(20):
        obs = np.array([rng.integers(3), rng.integers(4)])
        a = agent.act(obs)
        agent.update(obs, a, 80.0 + rng.standard_normal(), {})
    assert agent.action_probabilities(obs, n_samples=100).sum() == pytest.approx(1.0)


@pytest.mark.parametrize("name", ["meTS-Lin", "LinTS-Disjoint"])
def test_propensities_through_the_runner_are_positive_on_the_chosen_action(name):
    # K = 100: the chosen action is often missing from the Monte Carlo draws; it gets the
    # add-one estimate, and the decisions are those of a run without propensities
    from gambit_gym.bench import run

    with_p = run("MixedEffectLinear-v0", name, horizon=60, replicates=2, seed=7,
                 progress=False, propensities=True, n_propensity_samples=200)
    without = run("MixedEffectLinear-v0", name, horizon=60, replicates=2, seed=7,
                  progress=False)
    np.testing.assert_array_equal(with_p.actions, without.actions)
    assert np.all(with_p.propensities >= 1 / 201)
