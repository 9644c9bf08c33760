"""The result of a benchmark run: per-step arrays over replicates, plus provenance."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class RunResult:
    """What :func:`gambit_gym.bench.run` returns (and what RL baselines return too).

    Attributes:
        env_id: the environment id.
        agent: the agent's registered name (or ``module:Class`` path).
        regret: expected (pseudo-)regret per step, ``(R, T)`` float64.
        rewards: observed rewards, ``(R, T)`` float64.
        actions: chosen actions, ``(R, T)`` int64.
        propensities: probability of each chosen action under the agent, ``(R, T)``, or None.
        contexts: context ids (or None where contexts are not discrete), ``(R, T)``.
        wall_time_s: wall-clock seconds of the run.
        seed: base seed (replicate r uses ``seed + r``).
        env_kwargs: env kwargs.
        agent_kwargs: agent kwargs.
        metadata: versions, device and anything else worth keeping.
        outcomes: per-step outcomes beside the reward, ``(R, T)`` each, where the env reports
            them: ``unsafe_delivered`` (1 where an unsafe message reached the user),
            ``delivered``, ``tokens``, ``cost``, ``latency_s`` (``gambit_gym.envs.safety``).
    """

    env_id: str
    agent: str
    regret: np.ndarray
    rewards: np.ndarray
    actions: np.ndarray
    propensities: np.ndarray | None = None
    contexts: np.ndarray | None = None
    wall_time_s: float = 0.0
    seed: int = 0
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    agent_kwargs: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    outcomes: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def replicates(self) -> int:
        """R."""
        return int(self.regret.shape[0])

    @property
    def horizon(self) -> int:
        """T."""
        return int(self.regret.shape[1])

    @property
    def cumulative_regret(self) -> np.ndarray:
        """Cumulative regret per replicate and step, ``(R, T)``."""
        return np.cumsum(self.regret, axis=1)

    def final_regret(self) -> np.ndarray:
        """Cumulative regret at the horizon per replicate, ``(R,)``."""
        return self.regret.sum(axis=1)

    def outcome_totals(self) -> dict[str, np.ndarray]:
        """Each outcome summed over the steps of each replicate, ``{key: (R,)}``."""
        return {k: np.asarray(v, dtype=np.float64).sum(axis=1) for k, v in self.outcomes.items()}

    def summary(self, confidence: float = 0.95) -> dict[str, float]:
        """Mean cumulative regret at T with its Student-t interval (:mod:`~.core.intervals`)."""
        from gambit_gym.core.intervals import mean_interval

        final = self.final_regret()
        mean, half = mean_interval(final, confidence)
        return {"mean": mean, "low": mean - half, "high": mean + half, "replicates": len(final)}
