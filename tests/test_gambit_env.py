"""Behaviour of the GAMBIT envs: oracle, calibration, arms, vector env, bank errors."""

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest

import gambit_gym  # noqa: F401
from gambit_gym.envs.registration import registered_ids
from gambit_gym.envs.study import outcome_facts
from gambit_gym.text.bank import BankFormatError, default_bank_path

GAMBIT_IDS = [i for i in registered_ids() if i.startswith("GambitIHS") and "Live" not in i]
#: ids whose expected rewards depend on the user's state (habituation, drift, change point) are
#: checked against their own model in tests/test_user_dynamics.py
#: (the full-vector id, which needs `gambit-gym embed-bank` for the shipped bank, has the rewards
#: of GambitIHS-v0 exactly: tests/test_sentence_vectors.py)
STATIONARY_IDS = [i for i in GAMBIT_IDS if not {"habituation", "drift_sd", "change_point"}
                  & set(gym.spec(i).kwargs) and gym.spec(i).kwargs.get("embedding") != "minilm384"]


@pytest.fixture(scope="module")
def bank_frame():
    return pd.read_parquet(default_bank_path())


@pytest.mark.parametrize("env_id", STATIONARY_IDS)
def test_expected_reward_equals_bank_mean_computed_independently(env_id, bank_frame):
    env = gym.make(env_id)
    outcome = env.unwrapped.tables.outcome
    true_dims = list(env.unwrapped.config.true_dims)
    env.reset(seed=11)
    for step in range(12):
        action = step % env.action_space.n
        _, _, _, _, info = env.step(action)
        if info["prompt_id"] < 0:
            continue  # "send nothing" in the optional env: checked in its own test
        location, bucket = info["context"].split(", ", 1)  # e.g. "home, 0-4,999"
        ctx = env.unwrapped.tables.observations.tolist().index(
            [["home", "work", "other"].index(location),
             ["0-4,999", "5,000-9,999", "10,000-15,000", "more than 15,000"].index(bucket)])
        cell = bank_frame[(bank_frame.prompt_id == info["prompt_id"])
                          & (bank_frame.context_id == ctx)]
        z = cell[true_dims].to_numpy(dtype=np.float64)
        mean = outcome.mean_reward(z, np.full(len(z), ctx)).mean()
        assert info["expected_reward"] == pytest.approx(mean, rel=1e-12, abs=1e-9)
        assert info["text"] in set(cell.text)


@pytest.mark.parametrize("env_id", ["GambitIHS-v0", "GambitIHS-1D-v0", "GambitIHS-MLP-v0",
                                    "GambitIHS-Optional-v0"])
def test_each_arm_mean_reward_matches_expected_within_999_interval(env_id):
    env = gym.make(env_id, noise_level=2, horizon=100_000)
    env.reset(seed=5)
    k = env.action_space.n
    residuals = [[] for _ in range(k)]
    rng = np.random.default_rng(0)
    for _ in range(6000):
        a = int(rng.integers(k))
        _, reward, _, _, info = env.step(a)
        residuals[a].append(reward - info["expected_reward"])
    for a in range(k):
        res = np.asarray(residuals[a])
        half_width = 3.29 * res.std(ddof=1) / np.sqrt(len(res))
        assert abs(res.mean()) < half_width, f"arm {a}: mean residual {res.mean():.3f}"


@pytest.mark.parametrize("preset_id,facts_key", [("GambitIHS-v0", "3d"),
                                                  ("GambitIHS-1D-v0", "1d_optimism"),
                                                  ("GambitIHS-20D-v0", "20d")])
def test_linear_outcome_is_calibrated_to_the_study(preset_id, facts_key):
    env = gym.make(preset_id).unwrapped
    tables = env.tables
    facts = outcome_facts(facts_key)
    bank = tables.bank
    spread = tables.row_reward[:len(bank)].std()
    assert spread == pytest.approx(facts["noise_sd_ladder"][0], rel=1e-9)
    assert tables.row_reward[:len(bank)].mean() == pytest.approx(facts["intercept"], abs=1e-6)
    coef = tables.outcome.coef
    for j, name in enumerate(env.config.true_dims):
        study = facts[name] * (-1 if name == "optimism" else 1)
        assert np.sign(coef[j]) == np.sign(study)
    ratio = coef / np.array([facts[n] * (-1 if n == "optimism" else 1)
                             for n in env.config.true_dims])
    assert np.allclose(ratio, ratio[0])


def test_noise_levels_follow_the_study_ladder():
    ladder = outcome_facts("3d")["noise_sd_ladder"]
    for level, sd in enumerate(ladder):
        assert gym.make("GambitIHS-v0", noise_level=level).unwrapped.noise_sd == sd
    assert gym.make("GambitIHS-v0", noise_sd=3.5).unwrapped.noise_sd == 3.5
    with pytest.raises(ValueError, match="noise_level"):
        gym.make("GambitIHS-v0", noise_level=5)


def test_three_arms_are_highest_median_lowest():
    env = gym.make("GambitIHS-v0", n_prompts=3).unwrapped
    full = gym.make("GambitIHS-v0", n_prompts=40).unwrapped
    means = full.tables.expected.mean(axis=0)
    prompts = full.tables.arm_prompts
    order = prompts[np.argsort(-means, kind="stable")]
    assert env.tables.arm_prompts.tolist() == [order[0], order[20], order[39]]
    assert sorted(full.tables.arm_prompts.tolist()) == list(range(40))


def test_prompt_ids_override_and_conflict():
    env = gym.make("GambitIHS-v0", prompt_ids=[3, 7]).unwrapped
    assert env.tables.arm_prompts.tolist() == [3, 7] and env.action_space.n == 2
    with pytest.raises(ValueError, match="n_prompts or prompt_ids"):
        gym.make("GambitIHS-v0", prompt_ids=[3, 7], n_prompts=2)


def test_misspecified_env_reports_only_the_working_dimension():
    env = gym.make("GambitIHS-Misspec-Severity-v0")
    env.reset(seed=0)
    _, _, _, _, info = env.step(0)
    assert info["embedding_names"].tolist() == ["severity"]
    bank = env.unwrapped.tables.bank
    row = list(bank.texts).index(info["text"])
    assert info["embedding"][0] == bank.scores[row, bank.dimensions.index("severity")]
    assert env.unwrapped.tables.true_names == ("optimism",)


def test_optional_env_action_zero_sends_nothing_with_median_reward():
    env = gym.make("GambitIHS-Optional-v0")
    env.reset(seed=0)
    _, _, _, _, info = env.step(0)
    assert info["text"] == "" and info["prompt_id"] == -1
    expected = env.unwrapped.tables.expected
    assert np.allclose(expected[:, 0], np.median(expected[:, 1:], axis=1))
    low = gym.make("GambitIHS-Optional-v0", no_message_reward="min").unwrapped.tables.expected
    assert np.allclose(low[:, 0], low[:, 1:].min(axis=1))


def test_covariate_env_adds_the_study_context_terms():
    plain = gym.make("GambitIHS-v0").unwrapped.tables.expected
    cov = gym.make("GambitIHS-Covariates-v0").unwrapped.tables.expected
    diff = cov - plain  # (12, K): the same for every arm, set by the context
    assert np.allclose(diff, diff[:, :1])
    work_bucket0 = diff[4, 0]  # location work, bucket 1
    home_bucket0 = diff[0, 0]
    assert work_bucket0 - home_bucket0 == pytest.approx(0.07)
    assert diff[1, 0] - diff[0, 0] == pytest.approx(0.026)


@pytest.mark.parametrize("env_id", ["GambitIHS-v0", "GambitIHS-Optional-v0",
                                    "GambitIHS-Misspec-Clarity-v0"])
def test_vector_env_replicates_equal_single_envs(env_id):
    r, steps = 4, 30
    vec = gym.make_vec(env_id, num_envs=r, vectorization_mode="vector_entry_point",
                       noise_level=3, horizon=20, autoreset_mode="same_step")
    singles = [gym.make(env_id, noise_level=3, horizon=20) for _ in range(r)]
    obs, _ = vec.reset(seed=100)
    for i, env in enumerate(singles):
        single_obs, _ = env.reset(seed=100 + i)
        assert np.array_equal(obs[i], single_obs)
    rng = np.random.default_rng(1)
    for _ in range(steps):
        actions = rng.integers(vec.single_action_space.n, size=r)
        obs, rewards, _, truncated, info = vec.step(actions)
        for i, env in enumerate(singles):
            o, rew, _, trunc, inf = env.step(int(actions[i]))
            if trunc:
                o, _ = env.reset()
            assert trunc == truncated[i]
            assert np.array_equal(o, obs[i]) and rew == rewards[i]
            assert inf["text"] == info["text"][i] and inf["regret"] == info["regret"][i]
            assert np.array_equal(inf["embedding"], info["embedding"][i])


def test_vector_env_rejects_bad_actions():
    vec = gym.make_vec("GambitIHS-v0", num_envs=3, vectorization_mode="vector_entry_point")
    vec.reset(seed=0)
    for bad in (np.array([0, 1]), np.array([0.0, 1.0, 2.0]), np.array([0, 1, 99])):
        with pytest.raises(ValueError, match="actions"):
            vec.step(bad)
    for bad in (np.array([0, -1, 2]), np.array([0, 1, 5], dtype=np.int32)):
        with pytest.raises(ValueError, match=r"in 0\.\.4, got values"):
            vec.step(bad)
    vec.step(np.array([0, 4, 2], dtype=np.int32))  # any integer dtype in range is fine


def test_simulator_and_oracle_access():
    env = gym.make("GambitIHS-v0").unwrapped
    draws = env.simulate(1, 5, 10, np.random.default_rng(0))
    assert len(draws) == 10 and all(isinstance(t, str) and z.shape == (3,) for t, z in draws)
    cell_texts = set(env.simulator.cell_texts(1, 5))
    assert all(t in cell_texts for t, _ in draws)
    oracle = env.expected_rewards(5)
    assert oracle.shape == (5,) and np.allclose(oracle, env.tables.expected[5])
    assert np.allclose(env.simulator.mean_embeddings(5)[1],
                       env.simulator.cell_embeddings(1, 5).mean(axis=0), atol=1e-6)


def test_bank_is_shared_between_instances():
    a = gym.make("GambitIHS-v0").unwrapped
    b = gym.make("GambitIHS-v0", noise_level=3).unwrapped
    assert a.tables.bank is b.tables.bank and a.tables is b.tables


def test_missing_and_corrupt_bank_files_raise_clear_errors(tmp_path):
    with pytest.raises(BankFormatError, match="does not exist"):
        gym.make("GambitIHS-v0", bank=str(tmp_path / "nope.parquet"))
    corrupt = tmp_path / "corrupt.parquet"
    data = default_bank_path().read_bytes()
    corrupt.write_bytes(data[: len(data) // 2])
    with pytest.raises(BankFormatError, match="corrupt or truncated"):
        gym.make("GambitIHS-v0", bank=str(corrupt))
    foreign = tmp_path / "foreign.parquet"
    pd.DataFrame({"a": [1, 2]}).to_parquet(foreign)
    with pytest.raises(BankFormatError, match="not a gambit-gym response bank"):
        gym.make("GambitIHS-v0", bank=str(foreign))
