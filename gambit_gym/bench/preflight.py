"""Check a user's agent in the sweep's own process before any unit runs.

A mistake in ``--add-agent`` (a module not on the path, a bad kwarg, an ``act`` that returns
something else than an action, a missing ``action_probabilities``) used to surface as a failure
in every unit, after the workers had started. :func:`check_agent` instead imports the agent,
builds it with its kwargs, resets it and runs one step (``act``, ``update`` and, when
propensities are recorded, ``action_probabilities``) on each env configuration it will run on,
and raises one :class:`AgentCheckError` line saying what to fix. It returns notices (an agent
whose propensities are skipped or estimated) for the caller to print.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import numpy as np

from gambit_gym.core.protocol import WholeRunAgent


class AgentCheckError(ValueError):
    """The agent failed a check; the message is one line with the fix."""


def check_agent(agent: str, agent_kwargs: dict[str, Any],
                env_configs: Iterable[tuple[str, dict[str, Any]]], *, propensities: bool,
                n_samples: int = 1000, seed: int = 0,
                target_rse: float | None = None) -> list[str]:
    """Import, build, reset and step ``agent`` once on each env configuration.

    Args:
        agent: a registered name or ``"module:Class"`` path.
        agent_kwargs: its kwargs.
        env_configs: ``(env_id, env_kwargs)`` pairs it will run on.
        propensities: whether the sweep records propensities (then they are checked too).
        n_samples: the most Monte Carlo samples per decision the sweep will use.
        seed: seed of the check's env and agent.
        target_rse: the sweep's ``--propensity-rse``, passed to agents that take it.

    Returns:
        notices for the user (empty when there is nothing to say).

    Raises:
        AgentCheckError: what failed, on which env, and how to fix it.
    """
    import gymnasium as gym

    from gambit_gym.agents.base import resolve
    from gambit_gym.bench.agent_view import agent_description, agent_info

    name = f"agent {agent}"
    try:
        factory = resolve(agent)
    except (ImportError, KeyError, ValueError) as exc:
        raise AgentCheckError(f"{name}: {_first_line(exc)}") from None
    try:
        agent_obj = factory(**agent_kwargs)
    except Exception as exc:
        raise AgentCheckError(
            f"{name}: building it with kwargs {agent_kwargs!r} failed "
            f"({type(exc).__name__}: {_first_line(exc)}); pass only the kwargs its constructor "
            "takes (--add-agent-kwargs)") from None
    if isinstance(agent_obj, WholeRunAgent):
        return []  # runs whole through its own loop
    for method in ("reset", "act", "update"):
        if not callable(getattr(agent_obj, method, None)):
            raise AgentCheckError(
                f"{name}: it has no {method}() method; an agent needs reset(spec, seed), "
                "act(obs), update(obs, action, reward, info) (docs/agents.md; subclass "
                "gambit_gym.agents.BaseAgent)")
    has_props = callable(getattr(agent_obj, "action_probabilities", None))
    notices = []
    if propensities and not has_props:
        notices.append(f"{agent} has no action_probabilities(): its propensities are skipped "
                       "(stored as missing); the other agents' are recorded")
    seen = set()
    slow = False
    for env_id, env_kwargs in env_configs:
        key = (env_id, repr(sorted(env_kwargs.items())))
        if key in seen:
            continue
        seen.add(key)
        where = f"{name} on {env_id}{' ' + str(env_kwargs) if env_kwargs else ''}"
        env = gym.make(env_id, **env_kwargs)
        try:  # the same object on every env: reset() must forget everything anyway
            ratio = _one_step(agent_obj, env, where, propensities and has_props, n_samples, seed,
                              target_rse, agent_description, agent_info)
        finally:
            env.close()
        if ratio is not None and ratio > 20 and not slow:
            slow = True
            notices.append(
                f"{agent}: one action_probabilities() call (at most {n_samples} samples) took "
                f"{ratio:.0f}x as long as act(); recording propensities will slow this agent "
                "down about that much. Give action_probabilities a closed form, lower "
                "--propensity-samples, or skip them (--no-propensities)")
    return notices


def _one_step(agent: Any, env: Any, where: str, propensities: bool, n_samples: int, seed: int,
              target_rse: float | None, agent_description: Any,
              agent_info: Any) -> float | None:
    """Reset, (propensities,) act, step and update once; the propensity/act time ratio."""
    obs, _ = env.reset(seed=seed)
    desc = agent_description(env.unwrapped.describe(), agent)
    k = int(desc.n_actions)
    ratio = None
    try:
        agent.reset(desc, seed)
        if propensities:
            from gambit_gym.bench.propensity import accepts_target_rse

            method = agent.action_probabilities
            kwargs = {"target_rse": target_rse} if accepts_target_rse(method) else {}
            start = time.perf_counter()
            p = np.asarray(method(obs, n_samples, **kwargs), dtype=np.float64)
            t_props = time.perf_counter() - start
            if p.shape != (k,) or not np.all(np.isfinite(p)) or np.any(p < 0) \
                    or np.any(p > 1) or abs(p.sum() - 1.0) > 1e-4:
                raise AgentCheckError(
                    f"{where}: action_probabilities() must return {k} probabilities summing "
                    f"to 1, got {np.array2string(p, precision=3, threshold=12)}; fix "
                    "it, or skip propensities (--no-propensities, propensities=False)")
        start = time.perf_counter()
        action = agent.act(obs)
        t_act = time.perf_counter() - start
        if propensities:
            ratio = t_props / max(t_act, 1e-6)
        if isinstance(action, (bool, np.bool_)) or not isinstance(action, (int, np.integer)) \
                or not 0 <= int(action) < k:
            raise AgentCheckError(f"{where}: act() must return an int in 0..{k - 1}, got "
                                  f"{action!r}")
        next_obs, reward, *_, info = env.step(int(action))
        agent.update(obs, int(action), float(reward), agent_info(info, float(reward)))
    except AgentCheckError:
        raise
    except Exception as exc:
        raise AgentCheckError(f"{where}: {type(exc).__name__}: {_first_line(exc)}") from None
    return ratio


def _first_line(exc: BaseException) -> str:
    text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    return str(text).splitlines()[0] if str(text) else type(exc).__name__
