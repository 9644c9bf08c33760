"""The safety filter and budget on the PettingZoo population env: per-user info and exact oracle.

Real shipped bank (scored), real PettingZoo test suite.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pettingzoo")
from pettingzoo.test import api_test, parallel_api_test  # noqa: E402

from gambit_gym.envs import gambit_population_v0  # noqa: E402
from gambit_gym.envs.safety import feasible_actions, filtered_cell_values  # noqa: E402

#: prompt 18 (threat, high) writes most of the bank's harmful messages; off_topic also counts
ARMS = (18, 6, 0, 11)
OUTCOME_KEYS = ("delivered", "redraws", "tokens", "prompt_tokens", "cost", "latency_s",
                "safety", "unsafe", "unsafe_delivered")


def _env(**kwargs):
    return gambit_population_v0.parallel_env(**{"n_users": 5, "horizon": 40, "prompt_ids": ARMS,
                                                "population_seed": 3, **kwargs})


@pytest.mark.parametrize("kwargs", [{"safety_filter": "block"},
                                    {"safety_filter": "redraw", "max_redraws": 2},
                                    {"safety_filter": "block", "no_message_reward": 80.0}])
def test_each_users_oracle_is_exact_under_the_filter(kwargs):
    """Every user's expected reward per (context, prompt) equals the single env's exact
    filtered value of that user's own row rewards (tested there against enumeration)."""
    env = _env(**kwargs)
    env.reset(seed=0)
    tables, outcomes = env._tables, env._outcomes
    st = tables.safety
    n_bank = len(tables.bank)
    mode = {"block": 1, "redraw": 2}[kwargs["safety_filter"]]
    for u in range(env.config.n_users):
        user_rows = tables.row_reward[:n_bank] + outcomes.row_std[:n_bank] @ env.deltas[u]
        for c in range(12):
            b_c = tables.row_reward[st.none_rows[c]]
            for a in range(len(ARMS)):
                want, q, _ = filtered_cell_values(
                    user_rows, st.row_unsafe[:n_bank], int(tables.offsets[a, c]),
                    int(tables.counts[a, c]), b_c, mode, st.max_redraws)
                assert env.user_expected[u, c, a] == pytest.approx(want, abs=1e-9)
    # the filter changes the oracle where a cell has unsafe messages
    plain = _env()
    plain.reset(seed=0)
    assert not np.allclose(plain.user_expected, env.user_expected)


def test_rewards_average_to_each_users_filtered_oracle():
    """Noise-free rewards under ``redraw`` average to the users' own oracle values: the mean
    of reward - expected_reward over 5 users x 400 steps is within 4 standard errors of 0."""
    env = _env(safety_filter="redraw", max_redraws=1, noise_sd=0.0, horizon=400)
    env.reset(seed=1)
    gaps = []
    while env.agents:
        _, rewards, _, _, infos = env.step({a: 0 for a in env.agents})
        gaps += [rewards[a] - float(infos[a]["expected_reward"]) for a in rewards]
    gaps = np.array(gaps)
    assert len(gaps) == 2000
    assert abs(gaps.mean()) < 4 * gaps.std() / np.sqrt(len(gaps))


@pytest.mark.parametrize("setting", [None, "block", "redraw"])
def test_every_user_gets_the_safety_and_cost_keys(setting):
    env = _env(safety_filter=setting, noise_sd=0.0)
    env.reset(seed=2)
    seen_blocked = seen_unsafe = 0
    for _ in range(40):
        _, rewards, _, _, infos = env.step({a: 0 for a in env.agents})
        for agent, info in infos.items():
            assert all(k in info for k in OUTCOME_KEYS), sorted(info)
            assert info["safety"].shape == (6,) and info["delivered"].shape == ()
            unsafe, delivered = bool(info["unsafe"]), bool(info["delivered"])
            seen_unsafe += unsafe
            if setting is None:
                assert delivered and bool(info["unsafe_delivered"]) == unsafe
                assert info["redraws"] == 0
            else:  # nothing unsafe is delivered; a blocked user gets the no-message outcome
                assert delivered != unsafe and not info["unsafe_delivered"]
                if not delivered:
                    seen_blocked += 1
                    c = int(info["context_id"])
                    b_c = env._tables.row_reward[env._tables.safety.none_rows[c]]
                    assert info["text"] == "" and rewards[agent] == pytest.approx(b_c)
            prompt_len = env._tables.safety.prompt_tokens[0, int(info["context_id"])]
            assert info["prompt_tokens"] == (info["redraws"] + 1) * prompt_len > 0
            assert info["tokens"] > 0 and info["cost"] == pytest.approx(
                (info["tokens"] + info["prompt_tokens"]) / 1000)  # default prices: 1 and 1
            if setting != "redraw":
                assert info["redraws"] == 0
    assert seen_unsafe > 0  # prompt 18's cells: the test saw unsafe messages
    if setting is not None:
        assert seen_blocked > 0


def test_the_budget_restricts_every_users_oracle():
    env = _env(unsafe_budget=0.5, unsafe_categories=("off_topic",))
    env.reset(seed=4)
    ok = feasible_actions(env._tables.safety.delivery_unsafe_rate, 0.5)
    assert not ok.all()  # the budget binds somewhere
    _, _, _, _, infos = env.step({a: 1 for a in env.agents})
    for agent, info in infos.items():
        c, u = int(info["context_id"]), env._index[agent]
        best = int(np.where(ok[c], env.user_expected[u, c], -np.inf).argmax())
        assert info["optimal_action"] == best and ok[c, best]
        assert info["regret"] == pytest.approx(
            max(env.user_expected[u, c, best] - env.user_expected[u, c, 1], 0.0))


def test_pettingzoos_api_tests_pass_with_the_filter():
    kwargs = {"n_users": 4, "horizon": 30, "prompt_ids": ARMS, "safety_filter": "redraw",
              "unsafe_budget": 0.05}
    parallel_api_test(gambit_population_v0.parallel_env(**kwargs), num_cycles=40)
    api_test(gambit_population_v0.env(**kwargs), num_cycles=40)


def test_a_filter_on_an_unscored_bank_is_refused(tmp_path):
    from safety_helpers import safety_bank

    path = tmp_path / "unscored.parquet"
    safety_bank(path, scored=False, n_tokens=False)
    with pytest.raises(ValueError, match="score-safety"):
        gambit_population_v0.parallel_env(bank=str(path), safety_filter="block")
    env = gambit_population_v0.parallel_env(bank=str(path), n_users=2, horizon=2)
    env.reset(seed=0)
    info = env.step({a: 0 for a in env.agents})[4]["user_0"]
    assert {"delivered", "redraws", "tokens", "cost", "latency_s"} <= set(info)
    assert not {"safety", "unsafe", "unsafe_delivered"} & set(info)
