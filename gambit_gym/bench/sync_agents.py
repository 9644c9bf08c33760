"""R single (step-wise) agents behind the batched agent interface.

The runner has one loop, written against the batched form (``reset_batch / act_batch /
update_batch / action_probabilities_batch``) of :class:`~gambit_gym.core.batched.BatchedAgent`.
An agent that has only the single protocol (``reset / act / update / action_probabilities``, e.g.
a user's :class:`~gambit_gym.agents.BaseAgent`) is put behind that interface here, one agent
object per replicate, the way Gymnasium's ``SyncVectorEnv`` and stable-baselines3's
``DummyVecEnv`` put single envs behind the vector API. The runner uses it also for a batched
agent on an env without a native vector env, whose replicates each describe their own problem
(the mixed-effect envs draw one per seed).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gambit_gym._validate import check_index, check_propensities
from gambit_gym.bench.agent_view import agent_info
from gambit_gym.bench.propensity import accepts_target_rse

__all__ = ["SyncAgents"]

#: How the runner names the methods in its error messages (the user wrote these).
ACT_NAME = "act()"
PROBABILITIES_NAME = "action_probabilities()"


class SyncAgents:
    """R single agents stepped in turn behind the batched interface.

    Args:
        agents: one agent object per replicate (never shared: replicates are independent).
    """

    def __init__(self, agents: Sequence[Any]) -> None:
        self.agents = list(agents)
        self.replicates = len(self.agents)
        self.propensity_se: np.ndarray | None = None
        self.propensity_draws: np.ndarray | None = None

    @property
    def has_probabilities(self) -> bool:
        """Whether the agents have ``action_probabilities`` (propensities can be recorded)."""
        return callable(getattr(self.agents[0], "action_probabilities", None))

    def reset_batch(self, spec: Any, seed: int, replicates: int) -> None:
        """Reset agent ``r`` with seed ``seed + r`` and ``spec`` (or ``spec[r]``, one each)."""
        specs = list(spec) if isinstance(spec, (list, tuple)) else [spec] * replicates
        if len(specs) != self.replicates or replicates != self.replicates:
            raise ValueError(f"need {self.replicates} descriptions and replicates, got "
                             f"{len(specs)} and {replicates}")
        for r, (agent, spec) in enumerate(zip(self.agents, specs)):
            agent.reset(spec, seed + r)
        self._n_actions = int(specs[0].n_actions)

    def act_batch(self, obs: np.ndarray) -> np.ndarray:
        """``(R,)`` actions, agent ``r`` acting on ``obs[r]``; each checked as its own."""
        return np.array([check_index(f"the action returned by {ACT_NAME}", agent.act(o),
                                     self._n_actions)
                         for agent, o in zip(self.agents, obs)], dtype=np.int64)

    def update_batch(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
                     info: dict[str, Any]) -> None:
        """Agent ``r`` learns from its own row of the step (``info`` holds arrays over R)."""
        for r, agent in enumerate(self.agents):
            reward = float(rewards[r])
            agent.update(obs[r], int(actions[r]), reward, agent_info(_row(info, r), reward))

    def action_probabilities_batch(self, obs: np.ndarray, n_samples: int = 1000,
                                   target_rse: float | None = None) -> np.ndarray:
        """``(R, K)``: each agent's ``action_probabilities(obs[r], n_samples)``, shape-checked.

        ``target_rse`` is passed to agents whose method takes it. Afterwards
        :attr:`propensity_se` / :attr:`propensity_draws` stack the agents' own, where they
        report them (None otherwise).
        """
        rows, ses, draws = [], [], []
        for agent, o in zip(self.agents, obs):
            method = agent.action_probabilities
            kwargs = {"target_rse": target_rse} if accepts_target_rse(method) else {}
            rows.append(check_propensities(PROBABILITIES_NAME, method(o, n_samples, **kwargs),
                                           self._n_actions))
            ses.append(getattr(agent, "propensity_se", None))
            draws.append(getattr(agent, "propensity_draws", None))
        known = all(s is not None for s in ses)
        self.propensity_se = (np.concatenate([np.atleast_2d(s) for s in ses]) if known
                              else None)
        self.propensity_draws = (np.concatenate([np.atleast_1d(d) for d in draws]) if known
                                 else None)
        return np.stack(rows)


def _row(info: dict[str, Any], r: int) -> dict[str, Any]:
    """Replicate ``r``'s entries of a vector env's info dict of arrays."""
    out: dict[str, Any] = {}
    for key, value in info.items():
        if key.startswith("_") or key in ("final_obs", "final_info"):
            continue
        if isinstance(value, dict):
            out[key] = _row(value, r)
        elif isinstance(value, np.ndarray) and value.ndim >= 1:
            out[key] = value[r]
        else:
            out[key] = value
    return out
