"""The custom-agent path: BaseAgent's defaults, agents without propensities, and the documented
snippets (docs/agents.md run in-process, docs/harness.md's sweep run as a plain script)."""

import copy
import os
import re
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import gambit_gym  # noqa: F401
from gambit_gym.agents import BaseAgent
from gambit_gym.bench import run
from gambit_gym.bench.executors import _is_main_guard

ROOT = Path(__file__).resolve().parent.parent


def _python_blocks(doc: str, after: str = "") -> list[str]:
    text = (ROOT / "docs" / doc).read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text[text.index(after):], re.S)


class _EpsGreedyMC(BaseAgent):
    """ε-greedy with a deterministic greedy choice; propensities left to BaseAgent's estimate."""

    def __init__(self, epsilon=0.3):
        self.epsilon = epsilon

    def setup(self, spec):
        self.means = np.zeros((spec.n_contexts, self.n_actions))
        self.calls = 0

    def act(self, obs):
        self.calls += 1  # a counter act advances: must not drift across the estimate's draws
        if self.rng.random() < self.epsilon:
            return int(self.rng.integers(self.n_actions))
        return int(np.argmax(self.means[self.context_id(obs)]))

    def update(self, obs, action, reward, info):
        c = info["context_id"]
        self.means[c, action] += 0.1 * (reward - self.means[c, action])

    def exact(self, obs):
        p = np.full(self.n_actions, self.epsilon / self.n_actions)
        p[int(np.argmax(self.means[self.context_id(obs)]))] += 1 - self.epsilon
        return p


class _NoPropensities:
    """A protocol agent without action_probabilities (uniform random)."""

    def reset(self, spec, seed=None):
        self.rng, self.k = np.random.default_rng(seed), spec.n_actions

    def act(self, obs):
        return int(self.rng.integers(self.k))

    def update(self, obs, action, reward, info):
        pass


def _spec():
    return gym.make("GambitIHS-v0").unwrapped.describe()


def test_base_agent_estimates_propensities_from_act_draws():
    agent = _EpsGreedyMC()
    agent.reset(_spec(), seed=4)
    agent.means[1] = [0.0, 3.0, 1.0, 0.0, 0.0]
    obs = np.array([0, 1])
    n = 4000
    est = agent.action_probabilities(obs, n_samples=n)
    exact = agent.exact(obs)
    assert est.sum() == pytest.approx(1.0)
    assert np.all(np.abs(est - exact) <= 4 * np.sqrt(exact * (1 - exact) / n) + 1e-12)
    assert agent.calls == 0  # the agent itself was not stepped
    again = _EpsGreedyMC()
    again.reset(_spec(), seed=4)
    again.means[1] = agent.means[1]
    np.testing.assert_array_equal(again.action_probabilities(obs, n_samples=n), est)


def test_base_agent_propensities_never_change_the_decisions():
    with_p = run("GambitIHS-v0", _EpsGreedyMC, horizon=40, replicates=2, seed=1,
                 progress=False, propensities=True, n_propensity_samples=50)
    without = run("GambitIHS-v0", _EpsGreedyMC, horizon=40, replicates=2, seed=1,
                  progress=False)
    np.testing.assert_array_equal(with_p.actions, without.actions)
    assert with_p.propensities.shape == (2, 40) and np.all(with_p.propensities <= 1)
    assert with_p.propensities.mean() > 0.5  # mostly greedy picks (1 - ε + ε/K = 0.76)


def test_base_agent_errors_say_what_to_do():
    class NoAct(BaseAgent):
        pass

    agent = NoAct()
    with pytest.raises(RuntimeError, match="call reset"):
        agent.action_probabilities(np.array([0, 0]))
    agent.reset(_spec(), seed=0)
    with pytest.raises(NotImplementedError, match="must implement act"):
        agent.act(np.array([0, 0]))
    with pytest.raises(ValueError, match="n_samples"):
        agent.action_probabilities(np.array([0, 0]), n_samples=0)


def test_an_agent_without_propensities_runs_with_a_notice():
    with pytest.warns(UserWarning, match="no action_probabilities.*not recorded"):
        res = run("GambitIHS-v0", _NoPropensities, horizon=20, replicates=2, seed=0,
                  progress=False, propensities=True)
    plain = run("GambitIHS-v0", _NoPropensities, horizon=20, replicates=2, seed=0,
                progress=False)
    assert res.propensities is None
    assert res.metadata["propensities_skipped"]
    np.testing.assert_array_equal(res.regret, plain.regret)


def test_the_agents_doc_snippets_run():
    blocks = _python_blocks("agents.md", after="## Subclass `BaseAgent`")
    namespace: dict = {}
    exec(blocks[0], namespace)  # the BaseAgent subclass
    run_block = next(b for b in blocks if "run(" in b)
    exec(run_block.replace("horizon=1000, replicates=50", "horizon=100, replicates=3"),
         namespace)
    assert namespace["result"].regret.shape == (3, 100)


def test_the_harness_sweep_snippet_runs_as_a_script(tmp_path):
    code = _python_blocks("harness.md", after="### Your own agent")[0]
    assert "sweep(" in code and "with_agent(MyAgent" in code
    head, tail = code.split("# a quick look")
    # what the docs advise for every core: the sweep under the main guard
    guarded = head + 'if __name__ == "__main__":\n' + "".join(
        "    " + line + "\n" for line in ("# a quick look" + tail).splitlines())
    out = {}
    for name, text in (("plain", code), ("guarded", guarded)):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "my_sweep.py").write_text(text, encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.run([sys.executable, "my_sweep.py"], cwd=folder, env=env,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "BrokenProcessPool" not in proc.stderr
        assert ("running the units serially" in proc.stderr) is (name == "plain")
        assert "MyAgent" in proc.stdout and "StdTS" in proc.stdout
        out[name] = proc.stdout
    assert out["plain"] == out["guarded"]  # serial fallback and process pool: same numbers


@pytest.mark.parametrize("source, expected", [
    ('__name__ == "__main__"', True),
    ("'__main__' == __name__", True),
    ('__name__ != "__main__"', False),
    ('__name__ == "main"', False),
    ("x == 1", False),
])
def test_main_guard_detection(source, expected):
    import ast

    assert _is_main_guard(ast.parse(source, mode="eval").body) is expected


AGENTS_MODULE = '''
import numpy as np
from gambit_gym.agents import BaseAgent


class Greedy(BaseAgent):
    def __init__(self, epsilon=0.1):
        self.epsilon = epsilon

    def act(self, obs):
        if self.rng.random() < self.epsilon:
            return int(self.rng.integers(self.n_actions))
        return 0

    def action_probabilities(self, obs, n_samples=1000):
        p = np.full(self.n_actions, self.epsilon / self.n_actions)
        p[0] += 1 - self.epsilon
        return p


class Estimated(Greedy):
    action_probabilities = BaseAgent.action_probabilities


class NoProps:
    def reset(self, spec, seed=None):
        self.rng, self.k = np.random.default_rng(seed), spec.n_actions

    def act(self, obs):
        return int(self.rng.integers(self.k))

    def update(self, obs, action, reward, info):
        pass


class BadAction(Greedy):
    def act(self, obs):
        return 1.5


class BadProps(Greedy):
    def action_probabilities(self, obs, n_samples=1000):
        return np.ones(self.n_actions)


class Cheat(Greedy):
    def update(self, obs, action, reward, info):
        self.last = info["optimal_action"]
'''


def _bench(tmp_path, capsys, *extra):
    from gambit_gym.cli import main

    out = tmp_path / f"r{len(list(tmp_path.glob('r*.sqlite')))}.sqlite"
    code = main(["bench", "--suite", "one_d", "--agents", "StdTS", "--replicates", "2",
                 "--horizon", "10", "--executor", "serial", "--no-progress",
                 "--propensity-samples", "50", "--out", str(out), *extra])
    captured = capsys.readouterr()
    return code, captured.err


@pytest.mark.parametrize("agent, kwargs, pattern", [
    ("nowhere_xyz:Agent", None, r"cannot import module 'nowhere_xyz'.*PYTHONPATH=\."),
    ("my_agents:Missing", None, r"has no attribute 'Missing'"),
    ("my_agents:Greedy", '{"lr": 0.1}', r"kwargs \{'lr': 0.1\} failed.*unexpected keyword.*"
                                        r"--add-agent-kwargs"),
    ("my_agents:BadAction", None, r"act\(\) must return an int in 0..4, got 1.5"),
    ("my_agents:BadProps", None, r"action_probabilities\(\) must return 5 probabilities summing.*"
                                 r"--no-propensities"),
    ("my_agents:Cheat", None, r"info\['optimal_action'\] is evaluation-only"),
])
def test_add_agent_is_checked_before_the_sweep(tmp_path, capsys, monkeypatch, agent, kwargs,
                                               pattern):
    (tmp_path / "my_agents.py").write_text(AGENTS_MODULE, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    extra = ["--add-agent", agent] + (["--add-agent-kwargs", kwargs] if kwargs else [])
    code, err = _bench(tmp_path, capsys, *extra)
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert re.search(pattern, lines[0]), lines[0]
    assert not list(tmp_path.glob("r*.sqlite")) or "units run" not in err  # nothing ran


def test_add_agent_propensities_notices(tmp_path, capsys, monkeypatch):
    from gambit_gym.bench.leaderboard import Leaderboard
    from gambit_gym.bench.store import ResultStore

    (tmp_path / "my_agents.py").write_text(AGENTS_MODULE, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    code, err = _bench(tmp_path, capsys, "--add-agent", "my_agents:NoProps")
    assert code == 0, err
    assert "notice: my_agents:NoProps has no action_probabilities(): its propensities are " \
           "skipped" in err
    store = ResultStore(tmp_path / "r0.sqlite", create=False)
    props = {r.unit.setting.agent: r.propensities for r in store.records(logs=True)}
    assert props["my_agents:NoProps"] is None and props["StdTS"] is not None
    assert "my_agents:NoProps" in Leaderboard.from_store(store).render("md")
    code, err = _bench(tmp_path, capsys, "--add-agent", "my_agents:NoProps",
                       "--no-propensities")
    assert code == 0 and "notice" not in err
    code, err = _bench(tmp_path, capsys, "--add-agent", "my_agents:Estimated")
    assert code == 0 and "as long as act(); recording propensities will slow" in err
    code, err = _bench(tmp_path, capsys, "--add-agent", "my_agents:Greedy")
    assert code == 0 and "notice" not in err


def test_base_agent_adaptive_estimate_stops_early_and_never_logs_zero():
    agent = _EpsGreedyMC(epsilon=0.1)
    agent.reset(_spec(), seed=2)
    agent.means[1] = [0.0, 3.0, 1.0, 0.0, 0.0]
    obs = np.array([0, 1])
    upcoming = copy.deepcopy(agent).act(obs)  # what act() will choose next
    probs = agent.action_probabilities(obs, n_samples=4000, target_rse=0.1)
    assert agent.propensity_draws < 4000  # a likely action needs few draws
    exact = agent.exact(obs)[upcoming]
    s = agent.propensity_draws
    assert probs[upcoming] > 0
    assert abs(probs[upcoming] - exact) <= 4 * np.sqrt(exact * (1 - exact) / s) + 1 / (s + 1)
    assert agent.act(obs) == upcoming  # the estimate did not move the agent's stream
