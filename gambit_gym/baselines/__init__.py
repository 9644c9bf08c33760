"""Adapters to third-party RL libraries (imported lazily where they are heavy).

>>> from gambit_gym.baselines import run_sb3
"""

from gambit_gym.baselines.sb3 import (
    A2CBaseline,
    DQNBaseline,
    PPOBaseline,
    SB3Baseline,
    run_sb3,
)

__all__ = ["A2CBaseline", "DQNBaseline", "PPOBaseline", "SB3Baseline", "run_sb3"]
