"""Shared pieces of the benchmark-harness tests: a user's own agents and a small real store."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from gambit_gym.agents.classic import RandomAgent
from gambit_gym.bench import suites
from gambit_gym.bench.executors import SerialExecutor, sweep
from gambit_gym.bench.store import ResultStore

TESTS_DIR = Path(__file__).resolve().parent
REPO = TESTS_DIR.parent


class MyRandom(RandomAgent):
    """A user's own agent class (here a thin subclass), entered as ``bench_helpers:MyRandom``."""


def slow_random(delay: float = 0.3, **kwargs):
    """A user's agent factory that takes ``delay`` seconds to build (for the kill test)."""
    time.sleep(delay)
    return RandomAgent(**kwargs)


def small_suites() -> list[suites.Suite]:
    """Two tiny suites on real envs with real agents."""
    return [
        suites.get("scale_arms").narrow(replicates=4, horizon=30,
                                        agents=["Random", "Oracle", "StdTS"]),
        suites.get("one_d").narrow(replicates=4, horizon=30,
                                   agents=["Random", "Oracle", "StdTS", "poGAMBITTS"]),
    ]


def make_small_store(path: Path) -> ResultStore:
    """Run :func:`small_suites` serially into a store at ``path``."""
    store = ResultStore(path)
    for suite in small_suites():
        sweep(suite, store, executor=SerialExecutor(), chunk=2, progress=False,
              propensity_samples=200)
    return store


def subprocess_env() -> dict[str, str]:
    """Environment for ``python -m gambit_gym`` subprocesses that can import this module."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(TESTS_DIR), env.get("PYTHONPATH", "")])
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def cli(*args: str) -> list[str]:
    """The command line of ``gambit-gym ARGS`` with this interpreter."""
    return [sys.executable, "-m", "gambit_gym", *args]


def broken_agent(**kwargs):
    """A user's agent factory that fails (the sweep's check must stop it before any unit)."""
    raise RuntimeError("this agent is broken on purpose")


class VersionedRandom(RandomAgent):
    """A user's agent that declares its own version string (recorded in the provenance)."""

    version = "2.1-test"


class FailsLater(RandomAgent):
    """A user's agent that fails after a few steps, past the sweep's one-step check (a sweep
    must report it and go on)."""

    def act_batch(self, obs):
        if self.t >= 3:
            raise RuntimeError("this agent is broken on purpose")
        return super().act_batch(obs)
