"""The benchmark runner: R replicates of (env, agent) advanced together, one decision per step.

Replicate ``r`` is the env reset with seed ``seed + r`` and the agent reset with seed ``seed + r``.
Where the env id has a native vector env and the agent a batched form (``reset_batch`` /
``act_batch`` / ``update_batch``), all replicates advance in one call per step; otherwise R
single envs and R agent objects are stepped in a loop (same numbers, slower). Regret comes
from the env's ``info["regret"]``, never from the agent.

Fair by construction (see :mod:`gambit_gym.bench.agent_view`): every replicate has its own
agent object (a class or factory is called per replicate, an instance is deep-copied per
replicate), and agents receive only the deployed-app part of the step info (an
:class:`~gambit_gym.bench.agent_view.AgentInfo` that raises on the oracle fields).

>>> from gambit_gym.bench import run
>>> result = run("GambitIHS-v0", "StdTS", horizon=20, replicates=4, seed=0, progress=False)
>>> result.regret.shape
(4, 20)
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from gambit_gym._validate import (
    check_index,
    check_index_array,
    check_positive_int,
    check_propensities,
    check_propensity_rows,
    check_seed,
)
from gambit_gym.agents._batched import PROPENSITY_RSE
from gambit_gym.bench.agent_view import agent_description, agent_info, make_factory
from gambit_gym.bench.propensity import PropensityLog
from gambit_gym.bench.provenance import library_versions
from gambit_gym.core.protocol import WholeRunAgent
from gambit_gym.core.result import RunResult


def _agent_label(agent: Any) -> str:
    if isinstance(agent, str):
        return agent
    cls = agent if isinstance(agent, type) else type(agent)
    # a spawned worker imports the user's script as __mp_main__: the same class as __main__'s
    module = "__main__" if cls.__module__ == "__mp_main__" else cls.__module__
    return f"{module}:{cls.__qualname__}"


def _agent_version(agent: Any) -> str | None:
    """The agent's own version string (``version`` or ``__version__``), if it declares one."""
    for name in ("version", "__version__"):
        value = getattr(agent, name, None)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    return None


def _make_envs(env_id: str, replicates: int, env_kwargs: dict[str, Any]) -> tuple[Any, bool]:
    spec = gym.spec(env_id)
    if spec.vector_entry_point is not None:
        # same-step autoreset: were env_kwargs to set a horizon shorter than the run, every
        # step still carries a decision (and its regret), as the looped path's do
        envs = gym.make_vec(env_id, num_envs=replicates, vectorization_mode="vector_entry_point",
                            autoreset_mode="same_step", **env_kwargs)
        return envs, True
    return [gym.make(env_id, **env_kwargs) for _ in range(replicates)], False


def _describe(env: Any) -> Any:
    target = getattr(env, "unwrapped", env)
    if not hasattr(target, "describe"):
        raise TypeError(f"env {env!r} has no describe(); agents need an EnvDescription")
    return target.describe()


def _progress_bar(total: int, enabled: bool, desc: str) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="step", leave=False)


def run(env_id: str, agent: Any, *, horizon: int, replicates: int, seed: int,
        env_kwargs: dict[str, Any] | None = None, agent_kwargs: dict[str, Any] | None = None,
        device: str | None = None, progress: bool = True, propensities: bool = False,
        n_propensity_samples: int = 1000,
        propensity_rse: float | None = PROPENSITY_RSE) -> RunResult:
    """Run an agent on R replicates of an env for ``horizon`` steps.

    Args:
        env_id: a registered env id.
        agent: a registered agent name, a ``"module:Class"`` path, a class or factory
            (called once per replicate with ``agent_kwargs``), or an agent instance (with no
            ``agent_kwargs``; deep-copied once per replicate, never itself stepped).
        horizon: T, decisions per replicate (passed to the env as ``horizon=`` unless
            ``env_kwargs`` sets it).
        replicates: R.
        seed: base seed; replicate r uses ``seed + r`` for the env and the agent.
        env_kwargs: kwargs for the env.
        agent_kwargs: kwargs for the agent's constructor.
        device: torch device for agents that take one (``"cpu"``, ``"cuda"``); None: theirs.
        progress: show a tqdm progress bar.
        propensities: record the probability of each chosen action (Monte Carlo over the
            agent's randomisation; costs time). Skipped, with a warning, for an agent that
            has no ``action_probabilities``.
        n_propensity_samples: the most Monte Carlo draws per decision for propensities.
        propensity_rse: agents that sample their propensities draw until the chosen action's
            probability has at most this relative standard error (SE / p), within
            ``n_propensity_samples`` draws (None: always ``n_propensity_samples``); the
            achieved errors are summarised in ``metadata["propensity"]``.

    Returns:
        a :class:`RunResult` with ``regret``, ``rewards``, ``actions``, ``contexts`` and (if
        asked) ``propensities``, each ``(R, T)``.
    """
    horizon = check_positive_int("horizon", horizon)
    replicates = check_positive_int("replicates", replicates)
    n_propensity_samples = check_positive_int("n_propensity_samples", n_propensity_samples)
    seed = check_seed("seed", seed)
    if seed is None:
        raise ValueError("seed must be a non-negative integer (a run is reproducible), got None")
    for what, value in (("env_kwargs", env_kwargs), ("agent_kwargs", agent_kwargs)):
        if value is not None and not isinstance(value, Mapping):
            raise ValueError(f"{what} must be a dict of keyword arguments, got {value!r}")
    env_kwargs = dict(env_kwargs or {})
    agent_kwargs = dict(agent_kwargs or {})
    label = _agent_label(agent)
    make_agent = make_factory(agent, agent_kwargs, device)
    agent_obj = make_agent()
    if isinstance(agent_obj, WholeRunAgent):  # e.g. SB3: it owns its training loop
        result = agent_obj.run(env_id, horizon=horizon, replicates=replicates, seed=seed,
                               env_kwargs=env_kwargs, device=device)
        result.agent = label
        return result
    make_kwargs = {"horizon": horizon, **env_kwargs}
    start = time.perf_counter()
    envs, native = _make_envs(env_id, replicates, make_kwargs)
    batched = native and all(hasattr(agent_obj, m) for m in
                             ("reset_batch", "act_batch", "update_batch"))
    method = "action_probabilities_batch" if batched else "action_probabilities"
    skipped = propensities and not callable(getattr(agent_obj, method, None))
    if skipped:
        warnings.warn(f"agent {label} has no {method}(); its propensities are not recorded "
                      "(the other results are unchanged)", UserWarning, stacklevel=2)
        propensities = False
    bar = _progress_bar(horizon, progress, f"{label} on {env_id}")
    log = PropensityLog(replicates, horizon, check_positive_int(
        "n_propensity_samples", n_propensity_samples), propensity_rse) if propensities else None
    try:
        if batched:
            out = _run_batched(envs, agent_obj, horizon, replicates, seed, log, bar)
        else:
            agents = [agent_obj] + [make_agent() for _ in range(replicates - 1)]
            out = _run_looped(envs, native, agents, horizon, seed, log, bar)
    finally:
        if bar is not None:
            bar.close()
        if native:
            envs.close()
        else:
            for env in envs:
                env.close()
    regret, rewards, actions, props, contexts = out
    metadata = {"runner": "batched" if batched else "looped", "device": device,
                "agent_class": _agent_label(type(agent_obj)),
                "agent_version": _agent_version(agent_obj),
                "propensity_samples": n_propensity_samples if propensities else None,
                "propensities_skipped": "agent has no action_probabilities" if skipped else None,
                "propensity": None if log is None else log.summary(),
                "versions": library_versions()}
    return RunResult(env_id=env_id, agent=label, regret=regret, rewards=rewards, actions=actions,
                     propensities=props, contexts=contexts,
                     wall_time_s=time.perf_counter() - start, seed=seed, env_kwargs=env_kwargs,
                     agent_kwargs=agent_kwargs, metadata=metadata)


def _allocate(replicates: int, horizon: int,
              log: PropensityLog | None) -> tuple[np.ndarray | None, ...]:
    regret = np.zeros((replicates, horizon))
    rewards = np.zeros((replicates, horizon))
    actions = np.zeros((replicates, horizon), dtype=np.int64)
    return regret, rewards, actions, None if log is None else log.values


def _run_batched(envs: Any, agent: Any, horizon: int, replicates: int, seed: int,
                 log: PropensityLog | None, bar: Any) -> tuple:
    regret, rewards, actions, props = _allocate(replicates, horizon, log)
    contexts: np.ndarray | None = np.zeros((replicates, horizon), dtype=np.int64)
    obs, _ = envs.reset(seed=seed)
    desc = _describe(envs)
    agent.reset_batch(agent_description(desc, agent), seed, replicates)
    rows, k = np.arange(replicates), desc.n_actions
    for t in range(horizon):
        if log is not None:
            p = log.batch(agent, obs)
        a = check_index_array("the actions returned by act_batch()", agent.act_batch(obs), k,
                              (replicates,))
        if log is not None:
            p = check_propensity_rows("action_probabilities_batch()", p, k, a)
        next_obs, r, _, _, info = envs.step(a)
        contexts = _record_contexts(contexts, np.s_[:, t], info)
        agent.update_batch(obs, a, r, agent_info(info, r))
        regret[:, t] = info["regret"]
        rewards[:, t] = r
        actions[:, t] = a
        if log is not None:
            log.record(t, rows, p, a, agent)
        obs = next_obs
        if bar is not None:
            bar.update(1)
    return regret, rewards, actions, props, contexts


def _run_looped(envs: Any, native: bool, agents: list[Any], horizon: int, seed: int,
                log: PropensityLog | None, bar: Any) -> tuple:
    replicates = len(agents)
    regret, rewards, actions, props = _allocate(replicates, horizon, log)
    contexts: np.ndarray | None = np.zeros((replicates, horizon), dtype=np.int64)
    if native:  # a native vector env but an agent without a batched form: R agent objects
        obs, _ = envs.reset(seed=seed)
        desc = _describe(envs)
        k = desc.n_actions
        for r, ag in enumerate(agents):
            ag.reset(agent_description(desc, ag), seed + r)
        for t in range(horizon):
            if log is not None:  # from the state the action is taken in
                p = [log.single(ag, obs[r]) for r, ag in enumerate(agents)]
            a = np.array([check_index("the action returned by act()", ag.act(obs[r]), k)
                          for r, ag in enumerate(agents)], dtype=np.int64)
            if log is not None:
                p = check_propensity_rows("action_probabilities()", np.stack(p), k, a)
            next_obs, rew, _, _, info = envs.step(a)
            contexts = _record_contexts(contexts, np.s_[:, t], info)
            for r, ag in enumerate(agents):
                ag.update(obs[r], int(a[r]), float(rew[r]),
                          agent_info(_row(info, r), float(rew[r])))
            regret[:, t], rewards[:, t], actions[:, t] = info["regret"], rew, a
            if log is not None:
                for r, ag in enumerate(agents):
                    log.record(t, r, p[r], a[r], ag)
            obs = next_obs
            if bar is not None:
                bar.update(1)
        return regret, rewards, actions, props, contexts
    observations = []
    for r, (env, ag) in enumerate(zip(envs, agents)):
        o, _ = env.reset(seed=seed + r)
        desc = _describe(env)
        ag.reset(agent_description(desc, ag), seed + r)
        observations.append(o)
    k = desc.n_actions
    for t in range(horizon):
        for r, (env, ag) in enumerate(zip(envs, agents)):
            o = observations[r]
            if log is not None:
                p = log.single(ag, o)
            a = check_index("the action returned by act()", ag.act(o), k)
            if log is not None:
                p = check_propensities("action_probabilities()", p, k, a)
            next_o, rew, _, _, info = env.step(a)
            contexts = _record_contexts(contexts, (r, t), info)
            ag.update(o, a, float(rew), agent_info(info, float(rew)))
            regret[r, t], rewards[r, t], actions[r, t] = info["regret"], rew, a
            if log is not None:
                log.record(t, r, p, a, ag)
            observations[r] = next_o
        if bar is not None:
            bar.update(1)
    return regret, rewards, actions, props, contexts


def _record_contexts(contexts: np.ndarray | None, where: Any,
                     info: dict[str, Any]) -> np.ndarray | None:
    """Store the step's ``info["context_id"]`` (the env reports it) at ``where``.

    Returns None from the first step whose env reports no ``context_id`` (envs whose contexts
    are not discrete, e.g. the mixed-effect ones): the run then has no context record.
    """
    if contexts is None or "context_id" not in info:
        return None
    contexts[where] = info["context_id"]
    return contexts


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
