"""The agent protocol: what the runner, the CLI and a user's script call on an agent.

Single-replicate form below; the batched form (``reset_batch / act_batch / update_batch`` over R
replicates) is :class:`gambit_gym.core.batched.BatchedAgent`'s. Either form is accepted by
:func:`gambit_gym.bench.run`; docs/agents.md shows how to write one.
"""

from __future__ import annotations

import abc
from typing import Any, Protocol, runtime_checkable

import numpy as np

from gambit_gym.core.description import EnvDescription
from gambit_gym.core.result import RunResult

__all__ = ["Agent", "WholeRunAgent"]


@runtime_checkable
class Agent(Protocol):
    """The two-verb agent protocol (plus reset and propensities)."""

    def reset(self, spec: EnvDescription, seed: int | None = None) -> None:
        """Forget everything and prepare for ``spec``; all randomness is seeded from ``seed``."""

    def act(self, obs: Any) -> int:
        """Choose an action for observation ``obs``."""

    def update(self, obs: Any, action: int, reward: float, info: dict) -> None:
        """Learn from one step's outcome (``info`` is the env's step info)."""

    def action_probabilities(self, obs: Any, n_samples: int = 1000) -> np.ndarray:
        """``(n_actions,)`` probabilities that ``act(obs)`` picks each action, now."""




class WholeRunAgent(abc.ABC):
    """Base of agents that run a whole benchmark themselves (e.g. stable-baselines3 learners).

    RL libraries own their training loop, so :func:`gambit_gym.bench.run` hands an instance of
    this class the whole run instead of stepping it; :mod:`gambit_gym.baselines` subclasses it.
    A nominal base (not a structural protocol) so that a bandit agent that happens to have a
    ``run`` method is never mistaken for one.
    """

    @abc.abstractmethod
    def run(self, env_id: str, *, horizon: int, replicates: int = 1, seed: int = 0,
            env_kwargs: dict[str, Any] | None = None, device: str | None = None) -> RunResult:
        """Run ``replicates`` independent learners for ``horizon`` steps on ``env_id``.

        Replicate ``r`` uses seed ``seed + r``, as the bandit runner does.
        """
