"""The multi-user PettingZoo env gambit_population_v0: API tests, determinism, schedule, oracle."""

import warnings

import numpy as np
import pytest

pytest.importorskip("pettingzoo")

from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test  # noqa: E402
from pettingzoo.utils.env import ParallelEnv  # noqa: E402

from gambit_gym.envs import gambit_population_v0  # noqa: E402

# PettingZoo heuristics that do not apply here: the observation is GambitIHS-v0's
# MultiDiscrete context, and context 0 (home, 0-4,999 steps) is the observation [0, 0].
BENIGN = ("Observation space for each agent probably", "Observation numpy array is all zeros")
SCHEDULE = {"user_1": (5, 12), "user_3": (0, 7)}


def _strict():
    ctx = warnings.catch_warnings()
    ctx.__enter__()
    warnings.simplefilter("error")
    for message in BENIGN:
        warnings.filterwarnings("ignore", message=message)
    return ctx


@pytest.mark.parametrize("active", [None, SCHEDULE], ids=["everyone", "join-and-leave"])
def test_parallel_api_test_passes(active):
    ctx = _strict()
    try:
        parallel_api_test(gambit_population_v0.parallel_env(n_users=4, horizon=40,
                                                            active=active), num_cycles=60)
    finally:
        ctx.__exit__(None, None, None)


def test_parallel_seed_test_passes():
    parallel_seed_test(lambda: gambit_population_v0.parallel_env(n_users=3, horizon=30))


@pytest.mark.parametrize("active", [None, SCHEDULE], ids=["everyone", "join-and-leave"])
def test_aec_conversion_passes_api_test(active):
    ctx = _strict()
    try:
        api_test(gambit_population_v0.env(n_users=4, horizon=30, active=active), num_cycles=60)
    finally:
        ctx.__exit__(None, None, None)


def test_module_convention():
    from pettingzoo.utils import wrappers
    from pettingzoo.utils.env import AECEnv

    raw = gambit_population_v0.raw_env(n_users=3)
    assert isinstance(raw, AECEnv) and not isinstance(raw, wrappers.BaseWrapper)
    wrapped = gambit_population_v0.env(n_users=3)
    assert isinstance(wrapped, wrappers.OrderEnforcingWrapper)
    assert isinstance(wrapped.env, wrappers.AssertOutOfBoundsWrapper)
    assert isinstance(gambit_population_v0.parallel_env(), ParallelEnv)
    env = gambit_population_v0.parallel_env()
    assert env.possible_agents == [f"user_{i}" for i in range(10)]
    assert env.metadata["name"] == "gambit_population_v0"


def _rollout(seed, steps=25, **kwargs):
    env = gambit_population_v0.parallel_env(n_users=5, horizon=steps, **kwargs)
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(123)
    trace = []
    while env.agents:
        actions = {a: int(rng.integers(env.action_space(a).n)) for a in env.agents}
        obs, rewards, _, _, infos = env.step(actions)
        trace.append((sorted(actions.items()), {a: o.tolist() for a, o in obs.items()},
                      rewards, {a: (i.get("text"), i.get("regret")) for a, i in infos.items()}))
    return trace, env.deltas.copy()


def test_multi_step_rollouts_are_deterministic_and_seed_dependent():
    first, d1 = _rollout(7, active=SCHEDULE)
    second, d2 = _rollout(7, active=SCHEDULE)
    other, d3 = _rollout(8, active=SCHEDULE)
    assert first == second and np.array_equal(d1, d2)
    assert first != other and not np.array_equal(d1, d3)


def test_users_have_their_own_contexts_and_coefficients():
    env = gambit_population_v0.parallel_env(n_users=6, spread=1.0, horizon=40)
    env.reset(seed=0)
    contexts = [env.state()]
    for _ in range(30):
        env.step({a: 0 for a in env.agents})
        contexts.append(env.state())
    contexts = np.array(contexts)
    assert len({tuple(col) for col in contexts.T}) == 6  # six different context streams
    assert np.unique(env.deltas.round(8), axis=0).shape[0] == 6


def test_zero_spread_makes_every_user_the_population():
    env = gambit_population_v0.parallel_env(n_users=3, spread=0.0, horizon=5)
    env.reset(seed=0)
    base = env.unwrapped._tables.expected
    for a in env.possible_agents:
        for c in range(12):
            np.testing.assert_allclose(env.expected_rewards(a, c), base[c])


def test_info_has_the_users_own_oracle_and_matches_the_reward_model():
    env = gambit_population_v0.parallel_env(n_users=4, spread=2.0, horizon=3000, noise_sd=0.0)
    env.reset(seed=1)
    sums, counts = {}, {}
    for _ in range(400):
        actions = {a: 1 for a in env.agents}
        ctx = {a: env.state()[int(a[5:])] for a in env.agents}
        _, rewards, _, _, infos = env.step(actions)
        for a, info in infos.items():
            expected = env.expected_rewards(a, ctx[a])
            assert info["expected_reward"] == pytest.approx(expected[1])
            assert info["regret"] == pytest.approx(expected.max() - expected[1])
            assert info["optimal_action"] == int(expected.argmax())
            for key in ("text", "embedding", "prompt", "prompt_id", "embedding_names"):
                assert key in info
            sums[a, ctx[a]] = sums.get((a, ctx[a]), 0.0) + rewards[a]
            counts[a, ctx[a]] = counts.get((a, ctx[a]), 0) + 1
    # with no noise, the mean reward per (user, context) converges to that user's oracle
    a, c = max(counts, key=counts.get)
    assert sums[a, c] / counts[a, c] == pytest.approx(env.expected_rewards(a, c)[1], abs=0.3)


def test_schedule_joins_and_leaves():
    env = gambit_population_v0.parallel_env(n_users=4, horizon=20, active=SCHEDULE)
    obs, _ = env.reset(seed=0)
    assert sorted(obs) == ["user_0", "user_2", "user_3"]
    seen = []
    for _ in range(20):
        seen.append(list(env.agents))
        obs, rewards, _, truncs, infos = env.step({a: 0 for a in env.agents})
    assert "user_1" not in seen[4] and "user_1" in seen[5] and "user_1" in seen[11]
    assert "user_1" not in seen[12] and "user_3" in seen[6] and "user_3" not in seen[7]
    assert env.agents == []


def test_population_seed_fixes_the_users_across_resets():
    env = gambit_population_v0.parallel_env(n_users=3, population_seed=11)
    env.reset(seed=0)
    d0 = env.deltas.copy()
    env.reset(seed=1)
    np.testing.assert_array_equal(d0, env.deltas)


@pytest.mark.parametrize("kwargs, error, pattern", [
    (dict(n_users=0), ValueError, "n_users must be"),
    (dict(spread=-1.0), ValueError, "spread must be"),
    (dict(preset="mlp"), ValueError, "needs a linear outcome"),
    (dict(preset="optional"), ValueError, "not supported"),
    (dict(n_users=2, active={"user_5": (0, 3)}), ValueError, "unknown users"),
    (dict(n_users=2, active=[(0, 3)]), ValueError, "pairs for 2 users"),
    (dict(n_users=2, horizon=10, active={"user_1": (4, 2)}), ValueError, "start < stop"),
    (dict(noise_levle=1), TypeError, "noise_level"),
])
def test_invalid_arguments_raise_clear_errors(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        gambit_population_v0.parallel_env(**kwargs)


def test_invalid_actions_and_unknown_users_raise():
    env = gambit_population_v0.parallel_env(n_users=2, horizon=5)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action must be an integer in 0\.\.\d+, got 99"):
        env.step({"user_0": 99, "user_1": 0})
    with pytest.raises(ValueError, match="not in env.agents"):
        env.step({"user_7": 0})


def test_each_reward_uses_that_users_own_coefficients_exactly():
    """Noise-free, each reward equals the population outcome of the delivered bank message plus
    the user's own random effect on it: ``(coef + δ_u) · standardise(z_true(row))``. A reward
    that ignored δ_u, or took another user's, is off by at least ``min_gap`` below."""
    env = gambit_population_v0.parallel_env(n_users=4, spread=2.0, horizon=60, noise_sd=0.0)
    env.reset(seed=5)
    raw = env.unwrapped
    tables, outcomes = raw._tables, raw._outcomes
    bank = tables.bank
    true_scores = bank.scores[:, bank.dimension_index(tables.true_names)]
    rng = np.random.default_rng(0)
    gaps = []
    for _ in range(50):
        actions = {a: int(rng.integers(5)) for a in env.agents}
        ctx = {a: int(env.state()[int(a[5:])]) for a in env.agents}
        _, rewards, _, _, infos = env.step(actions)
        for name, reward in rewards.items():
            u, a, c = int(name[5:]), actions[name], ctx[name]
            start, count = tables.offsets[a, c], tables.counts[a, c]
            rows = [start + i for i in range(count)
                    if tables.texts[start + i] == infos[name]["text"]]
            assert rows, "the delivered message is not in its (action, context) block"
            row = rows[0]
            population = float(tables.outcome.mean_reward(true_scores[row][None],
                                                          np.array([c]))[0])
            own = outcomes.row_std[row] @ raw.deltas[u]
            assert reward == pytest.approx(population + own, abs=1e-6)  # float32 scores
            others = [outcomes.row_std[row] @ raw.deltas[v] for v in range(4) if v != u]
            gaps.append(min(abs(own - o) for o in [0.0, *others]))
    assert np.median(gaps) > 0.05, np.median(gaps)  # the check above tells users apart
