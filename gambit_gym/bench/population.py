"""The runner for the multi-user env ``gambit_population_v0``: regret per user and overall.

>>> from gambit_gym.bench.population import run_population
>>> res = run_population("pooled-poGAMBITTS", n_users=3, horizon=10, replicates=2,
...                      seed=0)  # doctest: +SKIP
>>> res.per_user_regret().shape  # doctest: +SKIP
(2, 3)

Replicate ``r`` resets the env with seed ``seed + r`` (a new population of users unless the env
has ``population_seed``) and the agent with the same seed. Regret comes from each user's
``info["regret"]`` (the env owns every user's oracle); agents see only the deployed-app part of
each user's info (see :mod:`gambit_gym.bench.agent_view`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gambit_gym._validate import check_positive_int

#: Population agents by name: the pooled models of :mod:`gambit_gym.agents.pooled`. Any other
#: registered (single-user) agent name runs as one independent copy per user.
POPULATION_AGENTS: dict[str, dict[str, Any]] = {
    "pooled-poGAMBITTS": {"pooling": "pooled"},
    "mixed-poGAMBITTS": {"pooling": "mixed"},
    "independent-poGAMBITTS": {"pooling": "independent"},
}


@dataclass
class PopulationResult:
    """Per-user arrays of a population run.

    Attributes:
        agent: the agent's name.
        users: the agent ids, ``(N,)``.
        regret: expected regret per replicate, user and step, ``(R, N, T)`` (0 where the user
            was not active).
        rewards: observed rewards, ``(R, N, T)`` (NaN where not active).
        actions: chosen actions, ``(R, N, T)`` (-1 where not active).
        active: whether the user acted, ``(R, N, T)`` bool.
        wall_time_s: wall-clock seconds.
        seed: base seed (replicate r uses ``seed + r``).
        env_kwargs: the env's kwargs.
        agent_kwargs: the agent's kwargs.
        metadata: anything else worth keeping.
    """

    agent: str
    users: tuple[str, ...]
    regret: np.ndarray
    rewards: np.ndarray
    actions: np.ndarray
    active: np.ndarray
    wall_time_s: float = 0.0
    seed: int = 0
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    agent_kwargs: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    def per_user_regret(self, horizon: int | None = None) -> np.ndarray:
        """Cumulative regret of each user after ``horizon`` steps (default all), ``(R, N)``."""
        return self.regret[:, :, :horizon].sum(axis=2)

    def overall_regret(self, horizon: int | None = None) -> np.ndarray:
        """Cumulative regret summed over users after ``horizon`` steps, ``(R,)``."""
        return self.per_user_regret(horizon).sum(axis=1)

    def cumulative_regret(self) -> np.ndarray:
        """Population cumulative regret per replicate and step, ``(R, T)``."""
        return np.cumsum(self.regret.sum(axis=1), axis=1)

    def summary(self, horizon: int | None = None) -> dict[str, Any]:
        """Mean overall regret (with its standard error) and mean regret per user."""
        overall = self.overall_regret(horizon)
        se = float(overall.std(ddof=1) / np.sqrt(len(overall))) if len(overall) > 1 else np.nan
        per_user = self.per_user_regret(horizon).mean(axis=0)
        return {"agent": self.agent, "overall": float(overall.mean()), "overall_se": se,
                "per_user": dict(zip(self.users, per_user.round(6).tolist()))}


def make_population_agent(agent: Any, agent_kwargs: dict[str, Any] | None = None) -> Any:
    """A population agent from a name, a factory or an instance.

    Names in :data:`POPULATION_AGENTS` give :class:`~gambit_gym.agents.pooled.PopulationGambitTS`;
    any other registered name or ``"module:Class"`` path gives one copy per user
    (:class:`~gambit_gym.agents.pooled.IndependentAgents`).
    """
    from gambit_gym.agents.pooled import IndependentAgents, PopulationGambitTS

    kwargs = dict(agent_kwargs or {})
    if isinstance(agent, str):
        if agent in POPULATION_AGENTS:
            return PopulationGambitTS(**{**POPULATION_AGENTS[agent], **kwargs})
        return IndependentAgents(agent, **kwargs)
    if all(hasattr(agent, m) for m in ("reset", "act", "update")) and not isinstance(agent,
                                                                                      type):
        if kwargs:
            raise ValueError("agent_kwargs were given but the agent is an instance")
        return agent
    if isinstance(agent, type) or isinstance(agent, Callable):  # type: ignore[arg-type]
        return agent(**kwargs)
    raise TypeError(f"cannot make a population agent from {agent!r}")


def run_population(agent: Any, *, horizon: int, replicates: int = 1, seed: int = 0,
                   n_users: int = 10, env_kwargs: dict[str, Any] | None = None,
                   agent_kwargs: dict[str, Any] | None = None,
                   blas_threads: int | None = 1) -> PopulationResult:
    """Run a population agent on ``gambit_population_v0`` for ``horizon`` steps.

    Args:
        agent: ``"pooled-poGAMBITTS"``, ``"mixed-poGAMBITTS"``, ``"independent-poGAMBITTS"``,
            any registered single-user agent name (one copy per user, e.g. ``"StdTS"``), a
            population-agent class, or an instance.
        horizon: T (passed to the env as ``horizon=``).
        replicates: R.
        seed: base seed; replicate r uses ``seed + r`` for the env and the agent.
        n_users: N.
        env_kwargs: other env kwargs (``spread``, ``active``, ``noise_sd``, ``bank``, …).
        agent_kwargs: the agent's kwargs.
        blas_threads: BLAS threads during the run (restored after; needs ``threadpoolctl``).
            The posteriors are small matrices, for which extra BLAS threads only spin against
            other work on the machine (10-20x slower on a busy 2-core box). None: leave as is.

    Returns:
        a :class:`PopulationResult` with arrays ``(R, N, T)``.
    """
    with _blas_limit(blas_threads):
        return _run_population(agent, horizon, replicates, seed, n_users, env_kwargs,
                               agent_kwargs)


def _blas_limit(threads: int | None) -> Any:
    import contextlib

    if threads is None:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional dependency
        return contextlib.nullcontext()
    return threadpool_limits(limits=int(threads), user_api="blas")


def _run_population(agent: Any, horizon: int, replicates: int, seed: int, n_users: int,
                    env_kwargs: dict[str, Any] | None,
                    agent_kwargs: dict[str, Any] | None) -> PopulationResult:
    from gambit_gym.envs.population import GambitPopulationEnv

    check_positive_int("horizon", horizon)
    check_positive_int("replicates", replicates)
    env_kwargs = dict(env_kwargs or {})
    start = time.perf_counter()
    env = GambitPopulationEnv(n_users=n_users, **{"horizon": int(horizon), **env_kwargs})
    users = tuple(env.possible_agents)
    shape = (int(replicates), len(users), int(horizon))
    regret, rewards = np.zeros(shape), np.full(shape, np.nan)
    actions, active = np.full(shape, -1, dtype=np.int64), np.zeros(shape, dtype=bool)
    index = {u: i for i, u in enumerate(users)}
    label = agent if isinstance(agent, str) else type(agent).__name__
    for r in range(int(replicates)):
        population_agent = make_population_agent(agent, agent_kwargs)
        obs, _ = env.reset(seed=int(seed) + r)
        population_agent.reset(env.describe(), users, int(seed) + r)
        for t in range(int(horizon)):
            current = {a: obs[a] for a in env.agents}
            chosen = population_agent.act(current)
            obs, rew, _, _, infos = env.step(chosen)
            population_agent.update(current, chosen, rew, _agent_infos(rew, infos))
            for a, action in chosen.items():
                i = index[a]
                regret[r, i, t] = infos[a]["regret"]
                rewards[r, i, t] = rew[a]
                actions[r, i, t] = action
                active[r, i, t] = True
    return PopulationResult(agent=label, users=users, regret=regret, rewards=rewards,
                            actions=actions, active=active,
                            wall_time_s=time.perf_counter() - start, seed=int(seed),
                            env_kwargs={"n_users": n_users, **env_kwargs},
                            agent_kwargs=dict(agent_kwargs or {}),
                            metadata={"env": "gambit_population_v0"})


def _agent_infos(rewards: dict[str, float],
                 infos: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Each user's step info as an agent may see it (no oracle fields; the env's context_id)."""
    from gambit_gym.bench.agent_view import agent_info

    return {a: agent_info(info, rewards.get(a)) for a, info in infos.items()}
