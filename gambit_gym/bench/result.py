"""Moved to :mod:`gambit_gym.core.result` (the baselines return it too); re-exported here."""

from gambit_gym.core.result import RunResult

__all__ = ["RunResult"]
