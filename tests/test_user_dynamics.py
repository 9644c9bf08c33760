"""Non-stationary users (gambit_gym.envs.user_dynamics) checked against their stated model.

Each dynamic is recomputed here, independently of the env's code, from what a user of the env
holds: the stationary env's rewards for the same seed and actions (the same bank row and
noise), the bank's embeddings, and the model's formulas with the parameters passed. Long runs
check the random parts (missing rate, disengagement hazard, drift variance) statistically.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import gambit_gym  # noqa: F401  (registers the ids)
from gambit_gym.envs.registration import ENV_IDS
from gambit_gym.envs.user_dynamics import DYNAMICS_KWARGS

DYNAMIC_IDS = [row[0] for row in ENV_IDS
               if any(k in row[3] for k in DYNAMICS_KWARGS)]


def _standardised(tables, z):
    """The bank-standardised true embedding (the model's x), computed here from the bank."""
    bank = tables.bank
    true = bank.scores[:, bank.dimension_index(tables.true_names)].astype(np.float64)
    return (np.asarray(z, dtype=np.float64) - true.mean(axis=0)) / true.std(axis=0)


def _context_base(tables):
    """b_c: the mean stationary reward of every bank message in each context, ``(12,)``."""
    n = len(tables.bank)
    ctx = np.asarray(tables.bank.context_ids)
    return np.array([tables.row_reward[:n][ctx == c].mean() for c in range(12)])


def _paired_run(env_id, steps, seed=0, policy=None, **kwargs):
    """Step a dynamic id and its stationary id with the same seed and actions."""
    dyn = gym.make(env_id, horizon=steps, **kwargs)
    stationary = "GambitIHS-Optional-v0" if dyn.unwrapped.config.optional else "GambitIHS-v0"
    ref = gym.make(stationary, horizon=steps,
                   **{k: v for k, v in kwargs.items() if k not in DYNAMICS_KWARGS})
    dyn.reset(seed=seed)
    ref.reset(seed=seed)
    rng = np.random.default_rng(seed)
    out = []
    for t in range(steps):
        a = int(rng.integers(dyn.action_space.n)) if policy is None else policy(t)
        state = dyn.unwrapped.user_state
        _, y, term, _, info = dyn.step(a)
        _, r, _, _, ref_info = ref.step(a)
        out.append((a, y, r, info, ref_info, state, term))
    return dyn.unwrapped, out


def test_every_dynamic_id_is_in_the_contract_tests():
    """The contract tests run every registered id but the live one (tests/test_env_contract.py)."""
    from gambit_gym.envs.registration import registered_ids

    assert len(DYNAMIC_IDS) >= 6
    assert set(DYNAMIC_IDS) <= set(registered_ids()) - {"GambitIHS-Live-v0"}


@pytest.mark.parametrize("env_id", ["GambitIHS-v0", "GambitIHS-Optional-v0", "GambitIHS-1D-v0"])
def test_options_off_give_the_stationary_env_exactly(env_id):
    """Every option at its off value: the same run as the id without them (no new draws)."""
    off = dict(habituation=0.0, disengagement=0.0, missing_rate=0.0, reward_delay=0,
               drift_sd=0.0, change_point=None)
    a, b = gym.make(env_id, noise_level=2, **off), gym.make(env_id, noise_level=2)
    oa, ia = a.reset(seed=4)
    ob, ib = b.reset(seed=4)
    assert np.array_equal(oa, ob)
    for t in range(40):
        sa, sb = a.step(t % a.action_space.n), b.step(t % b.action_space.n)
        assert np.array_equal(sa[0], sb[0]) and sa[1:4] == sb[1:4]
        assert set(sa[4]) == set(sb[4]) and "reward_observed" not in sa[4]


def test_habituation_matches_its_model_and_its_parameters_are_recovered():
    """y = b_c + exp(-η max(0, x̂·m_t)) (r - b_c), m_{t+1} = λ m_t + x̂_t; fit η and λ back."""
    eta, lam = 1.0, 0.8
    env, run = _paired_run("GambitIHS-Habituation-v0", 1500, noise_sd=0.0)
    tables = env.tables
    base = _context_base(tables)
    x = _standardised(tables, np.array([info["embedding"] for _, _, _, info, _, _, _ in run]))
    x_hat = x / np.linalg.norm(x, axis=1, keepdims=True)
    c = np.array([info["context_id"] for _, _, _, info, _, _, _ in run])
    y = np.array([step[1] for step in run])
    r = np.array([step[2] for step in run])

    def similarity(lam_):
        m, out = np.zeros(x.shape[1]), np.zeros(len(x))
        for t in range(len(x)):
            out[t] = max(0.0, float(x_hat[t] @ m))
            m = lam_ * m + x_hat[t]
        return out

    s = similarity(lam)
    np.testing.assert_allclose(y, base[c] + np.exp(-eta * s) * (r - base[c]), atol=1e-9)
    # the decay rate is what was asked for: the log of the kept share of the effect falls
    # linearly in the similarity with slope -η, and λ is the memory that fits best
    keep = np.abs(r - base[c]) > 0.05
    ratio = np.log((y - base[c])[keep] / (r - base[c])[keep])
    slope = np.polyfit(s[keep], ratio, 1)[0]
    assert slope == pytest.approx(-eta, abs=1e-6)
    grid = np.round(np.arange(0.5, 0.96, 0.05), 2)
    errors = [np.abs(base[c] + np.exp(-eta * similarity(g)) * (r - base[c]) - y).max()
              for g in grid]
    assert grid[int(np.argmin(errors))] == lam
    assert (s > 0.5).mean() > 0.2  # the dynamic bites: many messages lose much of their effect


def test_habituation_recovers_with_time_when_nothing_is_sent():
    """Optional env: after a run of one prompt, λ^g of the memory is left after g silent steps."""
    env = gym.make("GambitIHS-Optional-v0", habituation=1.0, habituation_memory=0.7,
                   noise_sd=0.0, horizon=40)
    env.reset(seed=1)
    for _ in range(10):
        env.step(1)
    m10 = env.unwrapped.user_state.memory.copy()
    for g in range(1, 6):
        env.step(0)  # send nothing
        np.testing.assert_allclose(env.unwrapped.user_state.memory, 0.7 ** g * m10)


def _model_expected(tables, state, t, context, dyn):
    """E[reward] of every action now, recomputed from the bank cells and the model."""
    base = _context_base(tables)
    out = []
    for a in range(len(tables.arm_prompts)):
        start, count = tables.offsets[a, context], tables.counts[a, context]
        rows = np.arange(start, start + count)
        r = tables.row_reward[rows]
        if tables.arm_prompts[a] < 0:  # "send nothing": unchanged
            out.append(r.mean())
            continue
        x = _standardised(tables, tables.bank.scores[rows][:, tables.bank.dimension_index(
            tables.true_names)])
        effect = r - base[context]
        if dyn.get("change_point") is not None and t >= dyn["change_point"]:
            effect = -effect
        effect = effect + x @ state.drift[0]
        sim = np.maximum(x / np.linalg.norm(x, axis=1, keepdims=True) @ state.memory[0], 0)
        out.append((base[context] + np.exp(-dyn.get("habituation", 0.0) * sim) * effect).mean())
    return np.array(out)


@pytest.mark.parametrize("env_id, dyn", [
    ("GambitIHS-Habituation-v0", {"habituation": 1.0}),
    ("GambitIHS-Drift-v0", {"drift_sd": 0.05}),
    ("GambitIHS-ChangePoint-v0", {"change_point": 200}),
    ("GambitIHS-Missing-v0", {}),
    ("GambitIHS-Delayed-v0", {}),
    ("GambitIHS-Disengage-v0", {}),
])
def test_regret_is_exact_against_the_one_step_greedy_oracle(env_id, dyn):
    """info's expected rewards are the model's, over the bank cell; regret is max - chosen."""
    env, run = _paired_run(env_id, 260, noise_level=1)
    tables = env.tables
    for t, (a, _, _, info, ref_info, state, _) in enumerate(run):
        c = int(info["context_id"])
        e = _model_expected(tables, state, t, c, dyn) if state is not None and \
            env_id not in ("GambitIHS-Missing-v0", "GambitIHS-Delayed-v0",
                           "GambitIHS-Disengage-v0") else tables.expected[c]
        assert info["expected_reward"] == pytest.approx(e[a], abs=1e-9)
        assert info["optimal_expected_reward"] == pytest.approx(e.max(), abs=1e-9)
        assert info["regret"] == pytest.approx(e.max() - e[a], abs=1e-9)
        if not dyn:  # observation dynamics do not change what the user does
            assert info["regret"] == ref_info["regret"]


def test_change_point_reverses_every_message_effect():
    env, run = _paired_run("GambitIHS-ChangePoint-v0", 400, noise_sd=0.0)
    base = _context_base(env.tables)
    for t, (_a, y, r, info, _ref_info, _, _) in enumerate(run):
        c = int(info["context_id"])
        assert y == pytest.approx(r if t < 200 else 2 * base[c] - r, abs=1e-9)
        best = env.tables.expected[c].argmax() if t < 200 else env.tables.expected[c].argmin()
        assert info["optimal_action"] == best


def test_drift_is_a_random_walk_with_the_stated_step_sd():
    sd, steps, r = 0.05, 1500, 20
    vec = gym.make_vec("GambitIHS-Drift-v0", r, vectorization_mode="vector_entry_point",
                       horizon=steps, drift_sd=sd, noise_sd=0.0)
    ref = gym.make_vec("GambitIHS-v0", r, vectorization_mode="vector_entry_point",
                       horizon=steps, noise_sd=0.0)
    vec.reset(seed=2)
    ref.reset(seed=2)
    tables = vec.unwrapped.tables
    deltas = [vec.unwrapped.user_state.drift.copy()]
    rng = np.random.default_rng(0)
    for _ in range(steps - 1):
        a = rng.integers(5, size=r)
        before = vec.unwrapped.user_state.drift.copy()
        _, y, _, _, info = vec.step(a)
        _, y0, _, _, _ = ref.step(a)
        x = _standardised(tables, info["embedding"])
        np.testing.assert_allclose(y, y0 + (x * before).sum(axis=1), atol=1e-9)
        deltas.append(vec.unwrapped.user_state.drift.copy())
    steps_taken = np.diff(np.array(deltas), axis=0).ravel()
    assert np.all(np.array(deltas)[0] == 0)
    n = steps_taken.size
    assert abs(steps_taken.mean()) < 4 * sd / np.sqrt(n)
    assert steps_taken.var() == pytest.approx(sd ** 2, rel=4 * np.sqrt(2 / n))


def test_missing_rewards_at_the_stated_rate_and_otherwise_the_stationary_ones():
    p, steps, r = 0.3, 500, 40
    vec = gym.make_vec("GambitIHS-Missing-v0", r, vectorization_mode="vector_entry_point",
                       horizon=steps, noise_level=2)
    ref = gym.make_vec("GambitIHS-v0", r, vectorization_mode="vector_entry_point",
                       horizon=steps, noise_level=2)
    vec.reset(seed=9)
    ref.reset(seed=9)
    seen = []
    for t in range(steps):
        a = np.full(r, t % 5)
        _, y, _, _, info = vec.step(a)
        _, y0, _, _, info0 = ref.step(a)
        ok = info["reward_observed"]
        assert ok.dtype == np.bool_ and np.all(info["reward_step"] == t)
        np.testing.assert_array_equal(y[ok], y0[ok])
        assert np.all(y[~ok] == 0.0)
        np.testing.assert_array_equal(info["regret"], info0["regret"])
        seen.append(ok)
    missing = 1 - np.mean(seen)
    assert missing == pytest.approx(p, abs=4 * np.sqrt(p * (1 - p) / (steps * r)))


def test_delayed_rewards_arrive_exactly_k_steps_late():
    k = 2
    env, run = _paired_run("GambitIHS-Delayed-v0", 50, noise_level=3)
    for t, (_, y, _, info, _, _, _) in enumerate(run):
        if t < k:
            assert y == 0.0 and not info["reward_observed"] and info["reward_step"] == -1
        else:
            assert info["reward_observed"] and info["reward_step"] == t - k
            assert y == run[t - k][2]  # the stationary reward of step t - k, bit for bit


def test_delay_and_missing_compose():
    env, run = _paired_run("GambitIHS-Delayed-v0", 300, missing_rate=0.5, reward_delay=3)
    ref_env, ref_run = _paired_run("GambitIHS-Missing-v0", 300, missing_rate=0.5)
    for t in range(3, 300):
        info, late = run[t][3], ref_run[t - 3]
        assert bool(info["reward_observed"]) == bool(late[3]["reward_observed"])
        assert run[t][1] == late[1]


def _survival(kappa, beta, steps):
    burden, alive, out = 0.0, 1.0, []
    for _ in range(steps):
        out.append(alive)  # engaged at this step: rewards observed
        burden = beta * burden + 1.0
        alive *= np.exp(-kappa * burden)
    return np.array(out)


def test_disengagement_follows_the_burden_hazard():
    """Always messaging: P(still reporting at t) = Π exp(-κ B_s); sending nothing: never leaves."""
    kappa, beta, steps, r = 0.01, 0.9, 60, 3000
    vec = gym.make_vec("GambitIHS-Disengage-v0", r, vectorization_mode="vector_entry_point",
                       horizon=steps, disengagement=kappa, burden_memory=beta)
    vec.reset(seed=0)
    seen = np.array([vec.step(np.ones(r, dtype=np.int64))[4]["reward_observed"]
                     for _ in range(steps)])
    expected = _survival(kappa, beta, steps)
    se = np.sqrt(expected * (1 - expected) / r) + 1e-12
    assert np.all(np.abs(seen.mean(axis=1) - expected) <= 4.5 * se + 1e-9)
    assert expected[-1] < 0.1  # the dynamic bites within the run
    # once gone, gone: observed flags never come back
    assert np.all(np.diff(seen.astype(int), axis=0) <= 0)
    vec.reset(seed=0)
    quiet = [vec.step(np.zeros(r, dtype=np.int64))[4]["reward_observed"] for _ in range(steps)]
    assert np.all(quiet)


def test_terminate_mode_ends_the_episode_in_the_single_env_only():
    env = gym.make("GambitIHS-Disengage-Terminate-v0", disengagement=0.05, horizon=500)
    env.reset(seed=3)
    for _t in range(500):
        _, _, terminated, truncated, info = env.step(1)
        if terminated:
            break
    assert terminated and not truncated and info["reward_observed"]
    with pytest.raises(RuntimeError, match="disengaged"):
        env.step(1)
    with pytest.raises(ValueError, match="share one clock"):
        gym.make_vec("GambitIHS-Disengage-v0", 2, vectorization_mode="vector_entry_point",
                     disengage_mode="terminate")
    sync = gym.make_vec("GambitIHS-Disengage-Terminate-v0", 2, vectorization_mode="sync",
                        disengagement=0.05)
    sync.reset(seed=0)
    ends = [sync.step(np.ones(2, dtype=np.int64))[2] for _ in range(200)]
    assert np.any(ends)
    sync.close()


BAD = [
    ({"habituation": -1.0}, ValueError, r"habituation must be a finite number >= 0"),
    ({"habituation_memory": 1.0}, ValueError, r"habituation_memory must be in \[0, 1\)"),
    ({"burden_memory": True}, ValueError, r"burden_memory must be a finite number"),
    ({"missing_rate": 1.0}, ValueError, r"missing_rate must be in \[0, 1\)"),
    ({"missing_rate": "0.3"}, ValueError, r"missing_rate must be a finite number"),
    ({"reward_delay": -1}, ValueError, r"reward_delay must be a non-negative integer"),
    ({"reward_delay": 1.5}, ValueError, r"reward_delay must be a non-negative integer"),
    ({"change_point": True}, ValueError, r"change_point must be a non-negative integer"),
    ({"drift_sd": float("nan")}, ValueError, r"drift_sd must be a finite number >= 0"),
    ({"disengage_mode": "quit"}, ValueError, r"disengage_mode must be one of"),
    ({"habituaton": 1.0}, TypeError, r"unexpected keyword argument 'habituaton'.*habituation"),
]


@pytest.mark.parametrize("kwargs, error, pattern", BAD, ids=[str(k) for k, _, _ in BAD])
def test_bad_dynamics_kwargs_are_refused(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        gym.make("GambitIHS-v0", **kwargs)
    with pytest.raises(error, match=pattern):
        gym.make_vec("GambitIHS-v0", 2, vectorization_mode="vector_entry_point", **kwargs)


def test_population_env_refuses_dynamics_rather_than_ignoring_them():
    from gambit_gym.envs import gambit_population_v0

    with pytest.raises(ValueError, match="population env does not model user dynamics"):
        gambit_population_v0.parallel_env(n_users=2, horizon=5, habituation=1.0)
    gambit_population_v0.parallel_env(n_users=2, horizon=5, habituation=0.0)  # off: fine


@pytest.mark.parametrize("env_id, has_table", [("GambitIHS-Habituation-v0", False),
                                               ("GambitIHS-Drift-v0", False),
                                               ("GambitIHS-ChangePoint-v0", False),
                                               ("GambitIHS-Missing-v0", True),
                                               ("GambitIHS-Delayed-v0", True)])
def test_a_fixed_oracle_table_is_published_only_where_the_oracle_is_fixed(env_id, has_table):
    from gambit_gym.agents import make

    desc = gym.make(env_id).unwrapped.describe()
    assert ("expected_rewards" in desc.extra) == has_table
    oracle = make("Oracle")
    if has_table:
        oracle.reset(desc, seed=0)
    else:
        with pytest.raises(ValueError, match="no fixed table"):
            oracle.reset(desc, seed=0)


def test_live_env_refuses_dynamics():
    from gambit_gym.envs.config import make_config

    with pytest.raises(ValueError, match="need the response bank"):
        make_config("live", missing_rate=0.2)


@pytest.mark.parametrize("env_id", [i for i in DYNAMIC_IDS
                                    if i != "GambitIHS-Disengage-Terminate-v0"])
def test_vector_replicate_r_is_the_single_env_seeded_seed_plus_r(env_id):
    """Bit for bit, with many replicates sharing contexts (the oracle is computed per group)."""
    r, steps = 16, 40
    vec = gym.make_vec(env_id, r, vectorization_mode="vector_entry_point", horizon=steps,
                       noise_level=1)
    vec.reset(seed=30)
    rng = np.random.default_rng(1)
    actions = rng.integers(vec.single_action_space.n, size=(steps, r))
    out = [vec.step(a) for a in actions]
    for i in (0, 5, 15):
        env = gym.make(env_id, horizon=steps, noise_level=1)
        env.reset(seed=30 + i)
        for t in range(steps):
            _, y, term, trunc, info = env.step(int(actions[t, i]))
            assert y == out[t][1][i] and trunc == out[t][3][i]
            for key in ("expected_reward", "optimal_expected_reward", "regret",
                        "optimal_action", "reward_observed", "reward_step"):
                assert info[key] == out[t][4][key][i], (t, key)
