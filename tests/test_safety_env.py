"""The safety filter on GAMBIT envs: block / redraw semantics, the exact oracle under each
setting, the info fields, determinism, and existing ids unchanged without a filter.

Banks are real Parquet files with known unsafe rows (tests/safety_helpers.py).
"""

from __future__ import annotations

import hashlib
import itertools

import gymnasium as gym
import numpy as np
import pytest
from safety_helpers import PER_CELL, UNSAFE_PER_CELL, safety_bank

import gambit_gym  # noqa: F401
from gambit_gym.envs.safety import CostModel
from gambit_gym.text.bank import load_bank

SETTINGS = [({}, "none"), ({"safety_filter": "block"}, "block"),
            ({"safety_filter": "redraw", "max_redraws": 2}, "redraw2"),
            ({"safety_filter": "redraw", "max_redraws": 0}, "redraw0")]


@pytest.fixture(scope="module")
def bank_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("safety") / "bank.parquet"
    safety_bank(path)
    return str(path)


@pytest.fixture(scope="module")
def plain_bank_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("plain") / "bank.parquet"
    safety_bank(path, scored=False, n_tokens=False)
    return str(path)


def _brute_force_expected(bank, row_reward, prompt, context, none_reward, kwargs):
    """Enumerate every sequence of draws of the filter (independent of the formula)."""
    start, count = bank.offsets[prompt, context], bank.counts[prompt, context]
    rows = range(start, start + count)
    mode = kwargs.get("safety_filter")
    n_draws = 1 + (kwargs.get("max_redraws", 3) if mode == "redraw" else 0)
    total = 0.0
    for seq in itertools.product(rows, repeat=n_draws):
        value = None
        for j, r in enumerate(seq):
            if mode is None or not bank.unsafe[r]:
                value = row_reward[r]
                break
            if mode == "block" or j == n_draws - 1:
                value = none_reward
                break
        total += value
    return total / count ** n_draws


@pytest.mark.parametrize("kwargs, name", SETTINGS, ids=[s[1] for s in SETTINGS])
@pytest.mark.parametrize("env_id", ["GambitIHS-v0", "GambitIHS-Optional-v0"])
def test_oracle_is_exact_under_each_filter(bank_path, env_id, kwargs, name):
    env = gym.make(env_id, bank=bank_path, **kwargs).unwrapped
    tables = env.tables
    bank = load_bank(bank_path)
    n_bank = len(bank)
    base = gym.make(env_id, bank=bank_path).unwrapped.tables.expected  # unfiltered
    msg_base = base[:, 1:] if env.config.optional else base
    none = np.median(msg_base, axis=1)
    first = 1 if env.config.optional else 0
    for a in range(first, env.action_space.n):
        prompt = int(tables.arm_prompts[a])
        for c in range(12):
            want = _brute_force_expected(bank, tables.row_reward[:n_bank], prompt, c, none[c],
                                         kwargs)
            assert tables.expected[c, a] == pytest.approx(want, rel=1e-12, abs=1e-9)
    # the oracle and the regret follow the filtered values
    np.testing.assert_array_equal(tables.optimal_action, tables.expected.argmax(axis=1))
    np.testing.assert_allclose(tables.regret, tables.expected.max(axis=1)[:, None]
                               - tables.expected)
    q = tables.safety.unsafe_rate
    for a in range(first, env.action_space.n):
        assert np.all(q[:, a] == UNSAFE_PER_CELL[tables.arm_prompts[a]] / PER_CELL)


@pytest.mark.parametrize("kwargs, name", SETTINGS, ids=[s[1] for s in SETTINGS])
def test_steps_average_to_the_oracle(bank_path, kwargs, name):
    """Many replicates of one fixed action: mean reward and blocked share match the oracle."""
    r, steps = 3000, 4
    env = gym.make_vec("GambitIHS-v0", num_envs=r, vectorization_mode="vector_entry_point",
                       bank=bank_path, noise_sd=0.0, **kwargs)
    tables = env.unwrapped.tables if hasattr(env, "unwrapped") else env.tables
    env.reset(seed=11)
    for a in range(tables.expected.shape[1]):
        rewards, ctx, delivered = [], [], []
        for _ in range(steps):
            obs_ctx = env.unwrapped._contexts.copy()
            _, rew, _, _, info = env.step(np.full(r, a))
            rewards.append(rew)
            ctx.append(obs_ctx)
            delivered.append(info["delivered"])
        rewards, ctx = np.concatenate(rewards), np.concatenate(ctx)
        expected = tables.expected[ctx, a]
        se = rewards.std() / np.sqrt(len(rewards)) + 1e-9
        assert abs(rewards.mean() - expected.mean()) < 5 * se + 1e-9
        q = UNSAFE_PER_CELL[tables.arm_prompts[a]] / PER_CELL
        mode = kwargs.get("safety_filter")
        beta = 0.0 if mode is None else q if mode == "block" else q ** (kwargs["max_redraws"]
                                                                        + 1)
        blocked = 1 - np.concatenate(delivered).mean()
        assert abs(blocked - beta) < 5 * np.sqrt(beta * (1 - beta) / len(rewards)) + 1e-9
    env.close()


def test_block_semantics_in_the_info(bank_path):
    env = gym.make("GambitIHS-v0", bank=bank_path, safety_filter="block", noise_sd=0.0,
                   prompt_ids=[2, 3], horizon=200)
    tables = env.unwrapped.tables
    env.reset(seed=0)
    seen = set()
    for _ in range(200):
        _, reward, _, _, info = env.step(1)
        c = int(info["context_id"])
        assert info["redraws"] == 0
        if info["unsafe"]:
            assert not info["delivered"] and not info["unsafe_delivered"]
            assert info["text"] == "" and np.all(info["embedding"] == 0)
            assert reward == tables.row_reward[tables.safety.none_rows[c]]
            assert info["safety"].max() >= 0.5
        else:
            assert info["delivered"] and info["text"] != ""
            assert info["safety"].max() < 0.5
        assert info["tokens"] > 0  # a blocked message was still generated (and paid for)
        seen.add(bool(info["unsafe"]))
    assert seen == {True, False}


def test_no_filter_delivers_unsafe_messages_and_reports_them(bank_path):
    env = gym.make("GambitIHS-v0", bank=bank_path, prompt_ids=[3], horizon=100)
    env.reset(seed=0)
    flags = []
    for _ in range(100):
        _, _, _, _, info = env.step(0)
        assert info["delivered"] and info["redraws"] == 0
        assert bool(info["unsafe_delivered"]) == bool(info["unsafe"])
        flags.append(bool(info["unsafe"]))
    assert 0.6 < np.mean(flags) < 0.9  # prompt 3: 3 of 4 messages unsafe


def test_redraw_semantics_and_tokens(bank_path):
    bank = load_bank(bank_path)
    env = gym.make("GambitIHS-v0", bank=bank_path, safety_filter="redraw", max_redraws=2,
                   prompt_ids=[3], horizon=300,
                   cost_model=CostModel(price_per_1k_tokens=2.0, latency_s_per_generation=0.5,
                                        latency_s_per_token=0.01,
                                        price_per_1k_prompt_tokens=0.25))
    env.reset(seed=4)
    counts = np.zeros(3, dtype=int)
    prompt_len = env.unwrapped.tables.safety.prompt_tokens[0]  # of the one prompt, per context
    for _ in range(300):
        _, _, _, _, info = env.step(0)
        r = int(info["redraws"])
        counts[r] += 1
        assert 0 <= r <= 2
        if info["delivered"]:
            assert not info["unsafe"]
            row = int(np.flatnonzero(bank.texts == str(info["text"]))[0])
            if r == 0:
                assert info["tokens"] == bank.n_tokens[row]
        else:
            assert r == 2 and info["unsafe"]
        lo, hi = (r + 1) * 10, (r + 1) * 16  # the helper's counts are 10..16 per message
        assert lo <= info["tokens"] <= hi
        # every draw sent the query once: its input tokens, priced apart from the output
        assert info["prompt_tokens"] == (r + 1) * prompt_len[info["context_id"]] > 0
        assert info["cost"] == pytest.approx(info["tokens"] * 2.0 / 1000
                                             + info["prompt_tokens"] * 0.25 / 1000)
        assert info["latency_s"] == pytest.approx((r + 1) * 0.5 + info["tokens"] * 0.01)
    assert counts.min() > 0  # every redraw count happened (q = 3/4)


@pytest.mark.parametrize("kwargs, name", SETTINGS, ids=[s[1] for s in SETTINGS])
@pytest.mark.parametrize("env_id", ["GambitIHS-v0", "GambitIHS-Optional-v0",
                                    "GambitIHS-Habituation-v0", "GambitIHS-Missing-v0"])
def test_single_and_vector_env_agree_and_repeat(bank_path, env_id, kwargs, name):
    r, steps = 3, 25
    vec = gym.make_vec(env_id, num_envs=r, vectorization_mode="vector_entry_point",
                       bank=bank_path, horizon=steps, **kwargs)
    singles = [gym.make(env_id, bank=bank_path, horizon=steps, **kwargs) for _ in range(r)]
    vec.reset(seed=7)
    for i, env in enumerate(singles):
        env.reset(seed=7 + i)
    rng = np.random.default_rng(0)
    for _ in range(steps):
        acts = rng.integers(vec.single_action_space.n, size=r)
        _, rew, _, _, info = vec.step(acts)
        for i, env in enumerate(singles):
            _, ri, _, _, si = env.step(int(acts[i]))
            assert ri == rew[i]
            for key in ("delivered", "redraws", "tokens", "cost", "unsafe", "unsafe_delivered",
                        "regret", "expected_reward", "text"):
                assert np.array_equal(si[key], info[key][i]), key
            np.testing.assert_array_equal(si["safety"], info["safety"][i])
    vec.close()


def test_stateful_user_oracle_under_the_filter_starts_at_the_filtered_table(bank_path):
    env = gym.make("GambitIHS-Habituation-v0", bank=bank_path, safety_filter="redraw",
                   max_redraws=1).unwrapped
    env.reset(seed=0)
    for c in range(12):  # a fresh user (no memory yet): the stationary filtered values
        np.testing.assert_allclose(env.expected_rewards(c), env.tables.expected[c], rtol=1e-12)


def test_unscored_bank_info_and_the_clear_error(plain_bank_path):
    env = gym.make("GambitIHS-v0", bank=plain_bank_path)
    env.reset(seed=0)
    info = env.step(0)[4]
    assert {"delivered", "redraws", "tokens", "cost", "latency_s"} <= set(info)
    assert not {"safety", "unsafe", "unsafe_delivered"} & set(info)
    text = str(info["text"])
    assert info["tokens"] == -(-len(text) // 4.06) or info["tokens"] == np.ceil(len(text) / 4.06)
    for kw in ({"safety_filter": "block"}, {"safety_filter": "redraw"}):
        with pytest.raises(ValueError, match="has none: score the bank with `gambit-gym "
                                             "score-safety`"):
            gym.make("GambitIHS-v0", bank=plain_bank_path, **kw)


@pytest.mark.parametrize("kwargs, error, pattern", [
    ({"safety_filtre": "block"}, TypeError, "unexpected keyword argument 'safety_filtre'.*"
                                            "safety_filter"),
    ({"safety_filter": "drop"}, ValueError, "None, 'block' or 'redraw'"),
    ({"safety_filter": "redraw", "max_redraws": -1}, ValueError, "non-negative integer"),
    ({"safety_filter": "block", "max_redraws": 2}, ValueError, "applies to "
                                                               "safety_filter='redraw'"),
    ({"no_message_reward": 80.0}, ValueError, "pass safety_filter= too"),
    ({"cost_model": {"price": 1}}, ValueError, "price_per_1k_tokens"),
    ({"cost_model": {"price_per_1k_tokens": -1}}, ValueError, "price_per_1k_tokens"),
    ({"unsafe_budget": 1.5}, ValueError, r"rate in \[0, 1\]"),
])
def test_bad_safety_kwargs_are_refused(bank_path, kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        gym.make("GambitIHS-v0", bank=bank_path, **kwargs)
    with pytest.raises(error, match=pattern):
        gym.make_vec("GambitIHS-v0", num_envs=2, vectorization_mode="vector_entry_point",
                     bank=bank_path, **kwargs)


def test_budget_oracle_picks_the_best_prompt_under_the_budget(bank_path):
    # prompts 0..4 have unsafe rates 0, .25, .5, .75, 1 and rising rewards (safety_helpers)
    free = gym.make("GambitIHS-Optional-v0", bank=bank_path, n_prompts=5).unwrapped.tables
    safe = gym.make("GambitIHS-Optional-v0", bank=bank_path, n_prompts=5,
                    unsafe_budget=0.3).unwrapped.tables
    np.testing.assert_array_equal(free.expected, safe.expected)
    rates = safe.safety.delivery_unsafe_rate
    for c in range(12):
        ok = np.flatnonzero(rates[c] <= 0.3)
        assert safe.optimal_action[c] == ok[np.argmax(safe.expected[c, ok])]
        assert safe.regret[c, safe.optimal_action[c]] == 0.0
    assert np.any(free.optimal_action != safe.optimal_action)
    # with a filter nothing unsafe is delivered: the budget no longer binds
    blocked = gym.make("GambitIHS-Optional-v0", bank=bank_path, n_prompts=5,
                       unsafe_budget=0.0, safety_filter="block").unwrapped.tables
    np.testing.assert_array_equal(blocked.optimal_action, blocked.expected.argmax(axis=1))


#: Trajectory hashes of existing ids, computed on main before the safety filter existed
#: (commit 8a02d56; /tmp script: 40 seeded random-policy steps of the single env, 40 of the
#: native vector env with 3 replicates): the unfiltered envs must not change.
MAIN_HASHES = {"GambitIHS-v0": "85aec22d1ebc55ec", "GambitIHS-1D-v0": "637424455b4ac7fe",
               "GambitIHS-Optional-v0": "5be78539b0a63cc6",
               "GambitIHS-Habituation-v0": "ad8c62d1b099604a",
               "GambitIHS-Missing-v0": "a72a5f3054f75219",
               "GambitIHS-Delayed-v0": "4d811bd82f835a9c"}


@pytest.mark.parametrize("env_id", sorted(MAIN_HASHES))
def test_existing_ids_unchanged_without_a_filter(env_id):
    h = hashlib.sha256()
    env = gym.make(env_id, horizon=40)
    obs, _ = env.reset(seed=5)
    rng = np.random.default_rng(0)
    for _ in range(40):
        obs, r, term, trunc, info = env.step(int(rng.integers(env.action_space.n)))
        h.update(obs.tobytes())
        h.update(np.float64(r).tobytes())
        for k in ("text", "regret", "expected_reward", "embedding", "prompt_id"):
            h.update(str(info[k]).encode() if k == "text" else np.asarray(info[k]).tobytes())
    v = gym.make_vec(env_id, num_envs=3, vectorization_mode="vector_entry_point", horizon=40)
    obs, _ = v.reset(seed=5)
    for _ in range(40):
        obs, r, term, trunc, info = v.step(rng.integers(v.single_action_space.n, size=3))
        h.update(obs.tobytes())
        h.update(r.tobytes())
        h.update(np.asarray(info["regret"]).tobytes())
    assert h.hexdigest()[:16] == MAIN_HASHES[env_id]


@pytest.mark.parametrize("kwargs, name", SETTINGS[1:3], ids=[s[1] for s in SETTINGS[1:3]])
def test_filtered_envs_pass_the_contract_checks(bank_path, kwargs, name):
    from gambit_gym.envs import checks

    make = lambda: gym.make("GambitIHS-Optional-v0", bank=bank_path, **kwargs)  # noqa: E731
    checks.check_gymnasium_contract(make())
    checks.check_step_types_and_info(make(), steps=30)
    checks.check_determinism(make)
    checks.check_pickle(make())


def test_unsafe_categories_choose_what_counts(bank_path):
    bank = load_bank(bank_path)
    cols = [bank.safety_categories.index(c) for c in ("threat", "shaming")]
    want = (bank.safety[:, cols] >= np.asarray(bank.safety_thresholds)[cols]).any(axis=1)
    assert 0 < want.sum() < bank.unsafe.sum()
    env = gym.make("GambitIHS-v0", bank=bank_path, unsafe_categories=["shaming", "threat"],
                   safety_filter="block").unwrapped
    np.testing.assert_array_equal(env.tables.safety.row_unsafe[:len(bank)], want)
    assert env.describe().extra["unsafe_categories"] == ("shaming", "threat")
    flags = env.simulator.cell_unsafe(0, 3)
    start = env.tables.offsets[0, 3]
    np.testing.assert_array_equal(flags, want[start:start + len(flags)])
    with pytest.raises(ValueError, match="non-empty subset"):
        gym.make("GambitIHS-v0", bank=bank_path, unsafe_categories=["rudeness"])
