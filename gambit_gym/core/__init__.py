"""What every layer shares; it imports nothing else from the package.

- :class:`~gambit_gym.core.description.EnvDescription`: what an agent may know about an env.
- :class:`~gambit_gym.core.protocol.Agent` and
  :class:`~gambit_gym.core.protocol.WholeRunAgent`: what the runner calls.
- :class:`~gambit_gym.core.batched.BatchedAgent`: the one base of batched agents.
- :mod:`~gambit_gym.core.counter_rng`: counter-based random numbers (envs and agents), and
  :class:`~gambit_gym.core.streams.CounterStreams`, an agent's per-replicate streams.
- :class:`~gambit_gym.core.result.RunResult`: what a run returns.
- :func:`~gambit_gym.core.intervals.mean_interval`: the one 95% interval (Student-t).

Imports run one way: core → text → envs → agents → bench → baselines, cli
(docs/architecture.md; ``tests/test_architecture.py`` enforces it).
"""

from gambit_gym.core.batched import BatchedAgent
from gambit_gym.core.description import EnvDescription
from gambit_gym.core.intervals import mean_interval, t_quantile
from gambit_gym.core.protocol import Agent, WholeRunAgent
from gambit_gym.core.result import RunResult

__all__ = ["Agent", "BatchedAgent", "EnvDescription", "RunResult", "WholeRunAgent", "mean_interval",
           "t_quantile"]
