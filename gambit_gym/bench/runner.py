"""The benchmark runner: R replicates of (env, agent) advanced together, one decision per step.

Replicate ``r`` is the env reset with seed ``seed + r`` and the agent reset with seed ``seed + r``.
One loop steps every run: R envs behind Gymnasium's vector API (the env id's native vector env,
else a ``SyncVectorEnv`` of R single envs) and R agents behind the batched agent interface (a
:class:`~gambit_gym.core.batched.BatchedAgent` itself where the env is native, else R agent
objects behind :class:`~gambit_gym.bench.sync_agents.SyncAgents`: same numbers, slower). Regret
comes from the env's ``info["regret"]``, never from the agent. A
:class:`~gambit_gym.core.protocol.WholeRunAgent` (an RL library's learner) is handed the run.

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
    check_index_array,
    check_positive_int,
    check_propensity_rows,
    check_seed,
)
from gambit_gym.bench.agent_view import agent_description, agent_info, make_factory
from gambit_gym.bench.propensity import PropensityLog
from gambit_gym.bench.provenance import library_versions
from gambit_gym.bench.sync_agents import SyncAgents
from gambit_gym.core.batched import PROPENSITY_RSE, BatchedAgent
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
    """R envs behind the vector API, and whether they are the id's native vector env.

    Same-step autoreset either way: were ``env_kwargs`` to set a horizon shorter than the run,
    every step still carries a decision (and its regret). A ``SyncVectorEnv`` seeds env ``r``
    with ``seed + r``, as the native vector env seeds its replicates.
    """
    if gym.spec(env_id).vector_entry_point is not None:
        envs = gym.make_vec(env_id, num_envs=replicates, vectorization_mode="vector_entry_point",
                            autoreset_mode="same_step", **env_kwargs)
        return envs, True
    envs = gym.vector.SyncVectorEnv([lambda: gym.make(env_id, **env_kwargs)] * replicates,
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    return envs, False


def _describe(env: Any) -> Any:
    describe = getattr(getattr(env, "unwrapped", env), "describe", None)
    if describe is None:
        raise TypeError(f"env {env!r} has no describe(); agents need an EnvDescription")
    return describe()


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
        a :class:`RunResult` with ``regret``, ``rewards``, ``actions``, ``contexts``, (if
        asked) ``propensities``, each ``(R, T)``, and ``outcomes``: the safety and cost
        outcomes the env reports (:data:`OUTCOME_KEYS`), each ``(R, T)``.
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
    # a BatchedAgent runs all replicates itself where they share one description (a native
    # vector env); otherwise one agent object per replicate, behind the same interface
    batched = native and isinstance(agent_obj, BatchedAgent)
    agent = agent_obj if batched else SyncAgents(
        [agent_obj] + [make_agent() for _ in range(replicates - 1)])
    skipped = propensities and not batched and not agent.has_probabilities
    if skipped:  # a BatchedAgent always has them; a single agent may not
        warnings.warn(f"agent {label} has no action_probabilities(); its propensities are not "
                      "recorded (the other results are unchanged)", UserWarning, stacklevel=2)
        propensities = False
    bar = _progress_bar(horizon, progress, f"{label} on {env_id}")
    log = PropensityLog(replicates, horizon, n_propensity_samples,
                        propensity_rse) if propensities else None
    outcomes: dict[str, np.ndarray] = {}  # safety and cost per step, where the env reports them
    try:
        out = _loop(envs, native, agent, agent_obj, horizon, replicates, seed, log, bar,
                    outcomes)
    finally:
        if bar is not None:
            bar.close()
        envs.close()
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
                     agent_kwargs=agent_kwargs, metadata=metadata, outcomes=outcomes)


#: Step-info outcomes the runner keeps beside regret (:mod:`gambit_gym.envs.safety`).
OUTCOME_KEYS: tuple[str, ...] = ("unsafe_delivered", "delivered", "tokens", "prompt_tokens",
                                 "cost", "latency_s")


def _record_outcomes(outcomes: dict[str, np.ndarray] | None, where: Any, info: dict[str, Any],
                     shape: tuple[int, int]) -> None:
    """Store the step's safety and cost outcomes (:data:`OUTCOME_KEYS`) at ``where``."""
    if outcomes is None:
        return
    for key in OUTCOME_KEYS:
        if key in info:
            arr = outcomes.get(key)
            if arr is None:
                arr = outcomes[key] = np.zeros(shape)
            arr[where] = info[key]


def _loop(envs: Any, native: bool, agent: Any, agent_obj: Any, horizon: int, replicates: int,
          seed: int, log: PropensityLog | None, bar: Any,
          outcomes: dict[str, np.ndarray] | None = None) -> tuple:
    """The runner's one loop: R envs (vector API) and R agents (batched interface), T steps."""
    regret = np.zeros((replicates, horizon))
    rewards = np.zeros((replicates, horizon))
    actions = np.zeros((replicates, horizon), dtype=np.int64)
    props = None if log is None else log.values
    contexts: np.ndarray | None = np.zeros((replicates, horizon), dtype=np.int64)
    obs, _ = envs.reset(seed=seed)
    if native:  # every replicate has the same description
        desc = agent_description(_describe(envs), agent_obj)
        k = desc.n_actions
        agent.reset_batch(desc, seed, replicates)
    else:  # each env describes its own problem (e.g. a mixed-effect env draws one per seed)
        descs = [agent_description(_describe(env), agent_obj) for env in envs.envs]
        k = descs[0].n_actions
        agent.reset_batch(descs, seed, replicates)
    single = isinstance(agent, SyncAgents)
    act_name = "act()" if single else "act_batch()"
    probabilities_name = "action_probabilities()" if single else "action_probabilities_batch()"
    rows = np.arange(replicates)
    for t in range(horizon):
        if log is not None:  # from the state the action is taken in
            p = log.batch(agent, obs)
        a = check_index_array(f"the actions returned by {act_name}", agent.act_batch(obs), k,
                              (replicates,))
        if log is not None:
            p = check_propensity_rows(probabilities_name, p, k, a)
        next_obs, r, terminated, _, info = _step_info(*envs.step(a))
        if t < horizon - 1 and np.any(terminated):
            ended = int(np.flatnonzero(terminated)[0])
            raise RuntimeError(f"replicate {ended}'s episode ended (terminated) at step {t}, "
                               f"before the horizon {horizon}: the runner scores every replicate "
                               "over the whole horizon, so it needs an env that does not "
                               "terminate early (e.g. a disengage_mode other than 'terminate')")
        contexts = _record_contexts(contexts, np.s_[:, t], info)
        _record_outcomes(outcomes, np.s_[:, t], info, (replicates, horizon))
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


def _step_info(obs: Any, reward: Any, terminated: Any, truncated: Any,
               info: dict[str, Any]) -> tuple:
    """A vector step whose ``info`` is that of the step taken, also where an episode ended.

    With same-step autoreset, a ``SyncVectorEnv`` returns, for a replicate whose episode just
    ended, the *reset's* info and puts the step's own under ``final_info``: the step's entries
    (its regret, its context) are put back in their rows here.
    """
    final = info.get("final_info")
    if not isinstance(final, dict):
        return obs, reward, terminated, truncated, info
    ended = np.asarray(info.get("_final_info", terminated | truncated), dtype=bool)
    merged = {k: v for k, v in info.items() if k not in ("final_info", "_final_info",
                                                         "final_obs", "_final_obs")}
    for key, value in final.items():
        if key.startswith("_") or isinstance(value, dict):
            continue
        value = np.asarray(value)
        here = merged.get(key)
        if here is None or np.shape(here) != value.shape:
            merged[key] = value
        else:
            mask = ended.reshape((-1,) + (1,) * (value.ndim - 1))
            merged[key] = np.where(mask, value, here)
    return obs, reward, terminated, truncated, merged


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
