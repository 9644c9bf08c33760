"""center_rewards: one constant per configuration off every reward; zero-start learners learn."""

import gymnasium as gym
import numpy as np
import pytest

import gambit_gym  # noqa: F401  (registers the ids)
from gambit_gym.envs.registration import ENV_IDS, GAMBIT

GAMBIT_IDS = [row[0] for row in ENV_IDS if row[1] == GAMBIT and row[0] != "GambitIHS-Live-v0"]


@pytest.mark.parametrize("env_id", GAMBIT_IDS)
def test_centring_shifts_rewards_by_one_constant_and_leaves_regret_and_arms(env_id,
                                                                           env_kwargs):
    raw = gym.make(env_id, noise_level=2, **env_kwargs(env_id))
    centred = gym.make(env_id, noise_level=2, center_rewards=True, **env_kwargs(env_id))
    tables = raw.unwrapped.tables
    offset = centred.unwrapped.reward_offset
    assert offset == pytest.approx(tables.expected.mean()) and raw.unwrapped.reward_offset == 0
    assert abs(tables.expected.mean() - offset) < 1e-9
    raw.reset(seed=4)
    centred.reset(seed=4)
    rng = np.random.default_rng(0)
    shifts = []
    for _ in range(40):
        a = int(rng.integers(raw.action_space.n))
        o1, r1, _, _, i1 = raw.step(a)
        o2, r2, _, _, i2 = centred.step(a)
        assert np.array_equal(o1, o2) and i1["text"] == i2["text"]
        assert i1["regret"] == i2["regret"] and i1["optimal_action"] == i2["optimal_action"]
        assert i2["expected_reward"] == pytest.approx(i1["expected_reward"] - offset)
        if i1.get("reward_observed", True):  # an unobserved reward is 0.0, centred or not
            shifts.append(r1 - r2)
        ctx = i1["context"]
        assert np.argmax(raw.unwrapped.expected_rewards(ctx)) == \
            np.argmax(centred.unwrapped.expected_rewards(ctx))
    assert np.allclose(shifts, offset, rtol=0, atol=1e-9)
    if centred.unwrapped.config.dynamics.stateful_mean:
        return  # the oracle of a habituating or drifting user moves with its state
    # the centred oracle averages to 0 over contexts and arms
    all_ctx = np.stack([centred.unwrapped.expected_rewards(c) for c in range(12)])
    assert abs(all_ctx.mean()) < 1e-9


def test_vector_env_and_population_centre_the_same_way():
    single = gym.make("GambitIHS-v0", center_rewards=True)
    vec = gym.make_vec("GambitIHS-v0", num_envs=3, vectorization_mode="vector_entry_point",
                       center_rewards=True)
    vec.reset(seed=10)
    single.reset(seed=11)
    _, rewards, _, _, info = vec.step(np.array([0, 1, 2]))
    _, r, _, _, i = single.step(1)
    assert rewards[1] == r and info["expected_reward"][1] == i["expected_reward"]
    assert vec.unwrapped.reward_offset == single.unwrapped.reward_offset

    from gambit_gym.envs import gambit_population_v0

    raw = gambit_population_v0.parallel_env(n_users=2, horizon=5)
    cen = gambit_population_v0.parallel_env(n_users=2, horizon=5, center_rewards=True)
    raw.reset(seed=0)
    cen.reset(seed=0)
    r1 = raw.step({a: 1 for a in raw.agents})[1]
    r2 = cen.step({a: 1 for a in cen.agents})[1]
    for a in r1:
        assert r1[a] - r2[a] == pytest.approx(cen.reward_offset)


@pytest.mark.parametrize("bad", [1, "yes", None])
def test_center_rewards_must_be_a_bool(bad):
    with pytest.raises(ValueError, match="center_rewards must be True or False"):
        gym.make("GambitIHS-v0", center_rewards=bad)


def test_mixed_effect_ids_do_not_take_center_rewards():
    with pytest.raises(TypeError, match="unexpected keyword argument 'center_rewards'"):
        gym.make("MixedEffectLinear-v0", center_rewards=True)


def _one_hot(obs):
    x = np.zeros(12)
    x[int(obs[0]) * 4 + int(obs[1])] = 1.0
    return x


def _mabwiser_linucb_regret(env, seed, horizon):
    """MABWiser LinUCB as its docs show: fit on a warm start, then predict / partial_fit."""
    from mabwiser.mab import MAB, LearningPolicy

    k = env.action_space.n
    obs, _ = env.reset(seed=seed)
    mab = MAB(list(range(k)), LearningPolicy.LinUCB(alpha=1.0), seed=seed)
    total, warm = 0.0, ([], [], [])
    for a in np.random.default_rng(seed).permutation(k):
        x = _one_hot(obs)
        obs, r, _, _, info = env.step(int(a))
        for store, v in zip(warm, (int(a), r, x)):
            store.append(v)
        total += info["regret"]
    mab.fit(warm[0], warm[1], np.array(warm[2]))
    for _ in range(k, horizon):
        x = _one_hot(obs)[None]
        a = int(mab.predict(x))
        obs, r, _, _, info = env.step(a)
        mab.partial_fit([a], [r], x)
        total += info["regret"]
    return total


@pytest.mark.slow
def test_mabwiser_linucb_without_hand_centring_beats_random_clearly():
    pytest.importorskip("mabwiser")
    horizon = 1000
    env = gym.make("GambitIHS-v0", center_rewards=True, horizon=horizon)
    tables = env.unwrapped.tables
    uniform_per_step = (tables.optimal_reward[:, None] - tables.expected).mean()
    for seed in (0, 1):
        regret = _mabwiser_linucb_regret(env, seed, horizon)
        # uniform random's expected regret is about 0.54 per step (~540 over 1000)
        assert regret < 0.5 * uniform_per_step * horizon, (seed, regret)
