"""What an agent may know about an environment before it acts: :class:`EnvDescription`.

Every env in the package builds one (``env.unwrapped.describe()``) and every agent receives one in
``reset``. It is *not* Gymnasium's ``EnvSpec`` (the registration record of an id): the agent
protocol's parameter is called ``spec`` for history, but it always holds an ``EnvDescription``.
It lives in the core because the envs build it and the agents read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

__all__ = ["EnvDescription"]


@dataclass(frozen=True)
class EnvDescription:
    """What an agent may know about an environment before it acts.

    Attributes:
        n_actions: number of actions ``K``.
        action_space: the env's action space.
        observation_space: the env's observation space.
        embedding_names: names of the *working* embedding dims (what ``info["embedding"]`` holds).
        context_names: names of the observation's parts.
        n_contexts: number of distinct contexts (12 for IHS; 0 where contexts are continuous).
        simulator: simulator access (an object with ``simulate`` / ``cell_embeddings`` /
            ``mean_embeddings``), or None where the configuration gives none.
        noise_sd: the env's reward noise sd (agents may use it only where their spec allows).
        horizon: episode length.
        extra: env-specific facts (e.g. feature dimension of a linear env).
    """

    n_actions: int
    action_space: gym.Space
    observation_space: gym.Space
    embedding_names: tuple[str, ...] = ()
    context_names: tuple[str, ...] = ()
    n_contexts: int = 0
    simulator: Any = None
    noise_sd: float | None = None
    horizon: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
