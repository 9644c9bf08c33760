"""The constrained benchmark: GambitIHS-Safe-v0, the Safe-poGAMBITTS agent, the ``safe`` suite
and the leaderboard's two-objective view (docs/safety.md)."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
from safety_helpers import safety_bank

import gambit_gym  # noqa: F401
from gambit_gym.agents import make
from gambit_gym.bench import run, suites
from gambit_gym.bench.analysis import summarise
from gambit_gym.bench.executors import SerialExecutor, sweep
from gambit_gym.bench.objectives import objective_rows, plot_tradeoff, render
from gambit_gym.bench.store import ResultStore
from gambit_gym.envs.config import SAFE_BUDGET


@pytest.fixture(scope="module")
def bank_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("safety") / "bank.parquet"
    safety_bank(path)
    return str(path)


def test_safe_id_states_its_budget():
    spec = gym.spec("GambitIHS-Safe-v0")
    from gambit_gym.envs.registration import ENV_IDS

    row = next(r for r in ENV_IDS if r[0] == "GambitIHS-Safe-v0")
    assert f"{SAFE_BUDGET:g}" in row[4]
    env = gym.make("GambitIHS-Safe-v0").unwrapped
    desc = env.describe()
    assert desc.extra["unsafe_budget"] == SAFE_BUDGET and desc.extra["optional"]
    tables = env.tables
    rates = tables.safety.delivery_unsafe_rate
    best = tables.optimal_action
    assert np.all(rates[np.arange(12), best] <= SAFE_BUDGET)  # the oracle keeps the budget
    assert spec.kwargs == {"preset": "safe"}
    # its prompts: "send nothing" and the 10 of highest expected reward
    free = gym.make("GambitIHS-v0", n_prompts=40).unwrapped.tables
    means = free.expected.mean(axis=0)
    top = free.arm_prompts[np.argsort(-means, kind="stable")[:10]]
    np.testing.assert_array_equal(tables.arm_prompts[1:], top)
    assert tables.arm_prompts[0] == -1
    # the budget binds: the unconstrained best prompt breaks it in some context
    unconstrained = tables.expected.argmax(axis=1)
    assert np.any(rates[np.arange(12), unconstrained] > SAFE_BUDGET)


def test_safe_agent_respects_the_budget_on_a_small_bank(bank_path):
    """Prompts with unsafe rates 0, .25, .5, .75; budget .3: the agent stays within it."""
    r = run("GambitIHS-Safe-v0", "Safe-poGAMBITTS", horizon=150, replicates=6, seed=1,
            env_kwargs={"bank": bank_path, "n_prompts": 4, "unsafe_budget": 0.3},
            progress=False)
    rate = r.outcome_totals()["unsafe_delivered"] / 150
    assert rate.max() <= 0.3
    free = run("GambitIHS-Safe-v0", "poGAMBITTS", horizon=150, replicates=6, seed=1,
               env_kwargs={"bank": bank_path, "n_prompts": 4, "unsafe_budget": 0.3},
               progress=False)
    # the unconstrained agent goes for the best prompts, unsafe or not, over the budget
    free_rate = free.outcome_totals()["unsafe_delivered"] / 150
    assert free_rate.max() > 0.3 and free_rate.mean() > rate.mean()


def test_safe_agent_single_and_batched_agree(bank_path):
    kwargs = {"bank": bank_path, "n_prompts": 4, "unsafe_budget": 0.3, "horizon": 30}
    batched = run("GambitIHS-Safe-v0", "Safe-poGAMBITTS", horizon=30, replicates=3, seed=2,
                  env_kwargs=kwargs, progress=False)
    for i in range(3):
        env = gym.make("GambitIHS-Safe-v0", **kwargs)
        obs, _ = env.reset(seed=2 + i)
        agent = make("Safe-poGAMBITTS")
        agent.reset(env.unwrapped.describe(), 2 + i)
        for t in range(30):
            a = agent.act(obs)
            nxt, rew, _, _, info = env.step(a)
            agent.update(obs, a, rew, info)
            assert a == batched.actions[i, t]
            obs = nxt


@pytest.mark.parametrize("kwargs, pattern", [
    ({"confidence": 1.0}, r"confidence must be in \(0, 1\)"),
    ({"unsafe_budget": 2}, r"rate in \[0, 1\]"),
    ({"n_safety_draws": 0}, "n_safety_draws"),
])
def test_safe_agent_bad_kwargs(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        make("Safe-poGAMBITTS", **kwargs)


def test_safe_agent_needs_a_budget_and_scores(bank_path, tmp_path):
    env = gym.make("GambitIHS-v0", bank=bank_path)
    with pytest.raises(ValueError, match="needs a budget"):
        make("Safe-poGAMBITTS").reset(env.unwrapped.describe(), 0)
    plain = tmp_path / "plain.parquet"
    safety_bank(plain, scored=False)
    env = gym.make("GambitIHS-v0", bank=str(plain))
    with pytest.raises(ValueError, match="score-safety"):
        make("Safe-poGAMBITTS", unsafe_budget=0.1).reset(env.unwrapped.describe(), 0)


def test_safe_suite_keeps_the_violation_under_the_budget(tmp_path):
    """The ``safe`` suite at small R and T: Safe-poGAMBITTS's unsafe-delivery rate is under
    the budget in every replicate; the two-objective view reports it and draws it."""
    suite = suites.get("safe").narrow(replicates=4, horizon=200,
                                      agents=["Safe-poGAMBITTS", "poGAMBITTS"])
    store = ResultStore(tmp_path / "safe.sqlite")
    sweep(suite, store, executor=SerialExecutor(), chunk=4, progress=False,
          propensities=False)
    rows = objective_rows(summarise(store.records(), by_suite=False))
    safe = next(r for r in rows if r.agent_key == "Safe-poGAMBITTS")
    assert safe.budget == SAFE_BUDGET
    assert safe.violation == 0.0 and safe.over_budget == 0.0
    assert safe.unsafe_rate <= SAFE_BUDGET
    oracle = next(r for r in rows if r.agent_key == "Oracle" and r.env_key ==
                  "GambitIHS-Safe-v0")
    assert oracle.regret == 0.0
    blocked = [r for r in rows if "block" in r.env_key]
    assert blocked and all(r.unsafe_rate == 0.0 for r in blocked)
    text = render(rows, "md")
    assert "| Safe-poGAMBITTS |" in text
    assert f"budget on the unsafe-delivery rate {SAFE_BUDGET:g}" in text
    assert json.loads(render(rows, "json"))[0]["env_key"].startswith("GambitIHS-Safe-v0")
    png = plot_tradeoff(rows, tmp_path / "tradeoff.png")
    assert png.stat().st_size > 10_000
    from gambit_gym.cli import main

    out = tmp_path / "view.md"
    assert main(["leaderboard", str(tmp_path / "safe.sqlite"), "--view", "safety", "--plot",
                 str(tmp_path / "cli.png"), "--output", str(out)]) == 0
    assert out.read_text() == text and (tmp_path / "cli.png").is_file()
