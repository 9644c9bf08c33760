"""gambit_gym.bench: the runner, experiment suites, results store, leaderboard and reports."""

from gambit_gym.bench.runner import run
from gambit_gym.core.result import RunResult

__all__ = ["RunResult", "run"]
