"""What the harness lets an agent see, and one agent object per replicate.

Two rules make a leaderboard fair by construction:

- **Deployed-app information only.** An env's step ``info`` has two parts: what a deployed app
  would see (the context, the prompt, the message text, its style embedding, the reward) and
  evaluation-only oracle fields (``expected_reward``, ``optimal_action``,
  ``optimal_expected_reward``, ``regret``). Gymnasium users stepping an env themselves get both;
  agents run by the harness get only the first, as an :class:`AgentInfo`, which raises a
  ``KeyError`` that explains itself when an oracle key is read. The oracle's table in
  ``EnvDescription.extra["expected_rewards"]`` is likewise removed from the description, except
  for agents that declare ``reads_oracle = True`` (the Oracle reference).
- **Replicates never share an agent.** A class or factory is called once per replicate; an
  agent instance is deep-copied once per replicate (the caller's instance is never touched).
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

#: Step-info keys an agent run by the harness receives (where the env provides them).
AGENT_KEYS: tuple[str, ...] = ("context", "context_id", "prompt_id", "prompt", "text",
                               "embedding", "embedding_names", "reward",
                               # user dynamics (gambit_gym.envs.user_dynamics): an app knows
                               # whether a day's steps came in, and which day they are for
                               "reward_observed", "reward_step",
                               # the safety filter and cost (gambit_gym.envs.safety): an app
                               # knows what its classifier said, what it sent and what it paid
                               "delivered", "redraws", "tokens", "prompt_tokens", "cost",
                               "latency_s", "safety", "unsafe", "unsafe_delivered")

#: Evaluation-only step-info keys: the env's oracle, kept by the runner for regret.
ORACLE_KEYS: frozenset[str] = frozenset({"expected_reward", "optimal_action",
                                         "optimal_expected_reward", "regret"})

#: ``EnvDescription.extra`` keys that reveal the oracle (given only to ``reads_oracle`` agents).
ORACLE_EXTRA_KEYS: frozenset[str] = frozenset({"expected_rewards", "oracle_feasible"})


def _oracle_message(key: str) -> str:
    return (f"info[{key!r}] is evaluation-only: agents run by the gambit-gym harness see only "
            f"what a deployed app would see ({', '.join(AGENT_KEYS)}). The oracle fields "
            f"({', '.join(sorted(ORACLE_KEYS))}) stay with the runner, which computes regret "
            "from them; read them from the env's own step info in your own Gymnasium loop")


class AgentInfo(dict):
    """A step ``info`` restricted to :data:`AGENT_KEYS`; reading an oracle key raises.

    It is a plain ``dict`` otherwise (``in``, ``get`` of other keys, iteration, pickling), so an
    agent written against the env's info keeps working as long as it uses deployed-app keys.

    >>> info = AgentInfo({"text": "Go for a walk", "reward": 1.5})
    >>> info["reward"]
    1.5
    >>> "regret" in info
    False
    >>> info["regret"]  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    KeyError: "info['regret'] is evaluation-only: ...
    """

    def __missing__(self, key: Any) -> Any:
        if key in ORACLE_KEYS:
            raise KeyError(_oracle_message(key))
        raise KeyError(key)

    def get(self, key: Any, default: Any = None) -> Any:
        """``dict.get``, except that an oracle key raises (a silent default would hide it)."""
        if key in ORACLE_KEYS:
            raise KeyError(_oracle_message(key))
        return super().get(key, default)


def agent_info(info: dict[str, Any], reward: Any, context_id: Any = None) -> AgentInfo:
    """The part of one step's ``info`` an agent may see, plus ``reward`` and ``context_id``.

    Works for a single env's info and a vector env's info (a dict of arrays with a leading
    replicate axis; the ``_key`` masks are dropped).

    Args:
        info: the env's step info.
        reward: the step's reward (a float, or ``(R,)`` for a vector env).
        context_id: the context id the action was taken in (int or ``(R,)``), or None where
            contexts are not discrete.
    """
    out = AgentInfo({k: info[k] for k in AGENT_KEYS if k in info})
    out["reward"] = reward
    if context_id is not None:
        out["context_id"] = context_id
    return out


def agent_description(desc: Any, agent: Any) -> Any:
    """``desc`` without the oracle's table, unless ``agent`` declares ``reads_oracle = True``."""
    if getattr(agent, "reads_oracle", False) or not dataclasses.is_dataclass(desc):
        return desc
    extra = getattr(desc, "extra", None)
    if not isinstance(extra, dict) or not ORACLE_EXTRA_KEYS & extra.keys():
        return desc
    kept = {k: v for k, v in extra.items() if k not in ORACLE_EXTRA_KEYS}
    return dataclasses.replace(desc, extra=kept)


def is_instance(agent: Any) -> bool:
    """Whether ``agent`` is an agent object (not a name, class, path or factory)."""
    if isinstance(agent, (str, type)):
        return False
    return hasattr(agent, "act") or not callable(agent)


def make_factory(agent: Any, agent_kwargs: dict[str, Any],
                 device: str | None) -> Callable[[], Any]:
    """A callable that returns a fresh agent object each time it is called.

    Args:
        agent: a registered name, a ``"module:Class"`` path, a class or factory (called with
            ``agent_kwargs``), or an agent instance (deep-copied on every call; no kwargs).
        agent_kwargs: constructor kwargs.
        device: torch device, passed as ``device=`` to constructors that take one.

    Raises:
        ValueError: ``agent_kwargs`` given with an instance.
        TypeError: an instance that cannot be deep-copied.
    """
    from gambit_gym.agents.base import resolve

    if is_instance(agent) and not hasattr(agent, "act"):
        resolve(agent)  # not an agent object, nor a name or factory: resolve says what is
    if is_instance(agent):
        if agent_kwargs:
            raise ValueError("agent_kwargs were given but the agent is an instance; pass its "
                             "name, class or 'module:Class' path instead")
        try:
            copy.deepcopy(agent)
        except Exception as exc:
            raise TypeError(
                f"the agent instance {type(agent).__qualname__} cannot be deep-copied "
                f"({type(exc).__name__}: {exc}); every replicate needs its own agent, so pass "
                "its class or a zero-argument factory instead") from exc
        return lambda: copy.deepcopy(agent)
    factory = resolve(agent) if isinstance(agent, str) else agent
    kwargs = dict(agent_kwargs)
    if device is not None and "device" not in kwargs:
        try:
            if "device" in inspect.signature(factory).parameters:
                kwargs["device"] = device
        except (TypeError, ValueError):
            pass
    return lambda: factory(**kwargs)
