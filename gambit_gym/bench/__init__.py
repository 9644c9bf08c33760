"""gambit_gym.bench: the runner, experiment suites, results store, leaderboard and reports."""

from gambit_gym.bench.result import RunResult
from gambit_gym.bench.runner import run

__all__ = ["RunResult", "run"]
