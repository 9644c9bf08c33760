"""The harness keeps the safety and cost outcomes beside regret: runner, store, analysis.

Real envs on a small scored bank (tests/safety_helpers.py), real agents, a real SQLite store;
the sums are checked against the env's own step info collected by hand.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from safety_helpers import safety_bank

import gambit_gym  # noqa: F401
from gambit_gym.bench import run
from gambit_gym.bench.analysis import summarise
from gambit_gym.bench.executors import SerialExecutor, sweep
from gambit_gym.bench.store import ResultStore
from gambit_gym.bench.suites import Setting, Suite

COST = {"price_per_1k_tokens": 3.0, "price_per_1k_prompt_tokens": 0.5,
        "latency_s_per_generation": 0.2}


@pytest.fixture(scope="module")
def bank_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("safety") / "bank.parquet"
    safety_bank(path)
    return str(path)


def _by_hand(env_id, env_kwargs, actions, seed):
    """Step R single envs with the run's actions; the per-step outcomes from their info."""
    out = {k: np.zeros(actions.shape) for k in ("unsafe_delivered", "tokens", "prompt_tokens",
                                                 "cost", "latency_s", "delivered")}
    for r in range(actions.shape[0]):
        env = gym.make(env_id, horizon=actions.shape[1], **env_kwargs)
        env.reset(seed=seed + r)
        for t in range(actions.shape[1]):
            info = env.step(int(actions[r, t]))[4]
            for k in out:
                out[k][r, t] = info[k]
    return out


@pytest.mark.parametrize("agent", ["Random", "StdTS"])
@pytest.mark.parametrize("extra", [{}, {"safety_filter": "redraw", "max_redraws": 1}])
def test_runner_outcomes_equal_the_envs_info(bank_path, agent, extra):
    env_kwargs = {"bank": bank_path, "cost_model": COST, **extra}
    result = run("GambitIHS-v0", agent, horizon=30, replicates=3, seed=5,
                 env_kwargs=env_kwargs, progress=False)
    hand = _by_hand("GambitIHS-v0", env_kwargs, result.actions, 5)
    assert set(result.outcomes) == set(hand)
    for k, v in hand.items():
        np.testing.assert_array_equal(result.outcomes[k], v, err_msg=k)
    totals = result.outcome_totals()
    # output and input tokens at their own prices
    assert (totals["prompt_tokens"] > 0).all()
    np.testing.assert_allclose(totals["cost"], totals["tokens"] * 3.0 / 1000
                               + totals["prompt_tokens"] * 0.5 / 1000)
    if not extra:
        assert totals["unsafe_delivered"].sum() > 0  # the bank's prompts 1..4 are unsafe
    else:
        assert totals["unsafe_delivered"].sum() == 0  # a filter delivers nothing unsafe


def test_store_and_analysis_keep_the_totals(bank_path, tmp_path):
    env_kwargs = {"bank": bank_path, "cost_model": COST}
    suite = Suite("safety_sums", "harness sums", tuple(
        Setting(env_id="GambitIHS-Optional-v0", agent=a, env_kwargs=env_kwargs,
                tags=("reference",) if a == "Random" else ())
        for a in ("Random", "StdTS")), replicates=4, horizon=25, seed=3)
    store = ResultStore(tmp_path / "s.sqlite")
    sweep(suite, store, executor=SerialExecutor(), chunk=2, progress=False, propensities=False)
    stats = {s.agent: s for s in summarise(store.records())}
    for agent, s in stats.items():
        direct = run("GambitIHS-Optional-v0", agent, horizon=25, replicates=4, seed=3,
                     env_kwargs=env_kwargs, progress=False)
        for k, v in direct.outcome_totals().items():
            np.testing.assert_allclose(s.outcomes[k], v, err_msg=f"{agent} {k}")
        np.testing.assert_allclose(s.final_regret, direct.final_regret())


def test_envs_without_outcomes_store_none(tmp_path):
    result = run("MixedEffectLinear-v0", "Random", horizon=5, replicates=2, seed=0,
                 progress=False)
    assert result.outcomes == {}
