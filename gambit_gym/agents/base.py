"""The agent protocol, the description an agent receives, and the agent registry.

An agent is anything with ``reset / act / update / action_probabilities`` (see :class:`Agent`).
Agents are registered by name, like environments, so that the benchmark harness, the CLI and a
user's script can all say ``make("poGAMBITTS", n_sim_draws=50)``. A user's own class, or a
``"module:Class"`` path, is accepted wherever a name is.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np


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


_REGISTRY: dict[str, Callable[..., Any]] = {}


def register(name: str, factory: Callable[..., Any] | str) -> None:
    """Register an agent factory (a class, a callable or a ``"module:attr"`` path) by name."""
    if name in _REGISTRY:
        raise ValueError(f"agent name {name!r} is already registered")
    _REGISTRY[name] = factory


def names() -> list[str]:
    """Registered agent names, sorted."""
    _load_builtin()
    return sorted(_REGISTRY)


def resolve(name_or_class: str | type | Callable[..., Any]) -> Callable[..., Any]:
    """The factory behind a registered name, a ``"module:Class"`` path, or a class itself."""
    if not isinstance(name_or_class, str):
        if not callable(name_or_class):
            raise ValueError(f"an agent must be a registered name, a 'module:Class' path, or an "
                             f"agent class or factory; got {name_or_class!r} "
                             f"({type(name_or_class).__name__})")
        return name_or_class
    _load_builtin()
    if name_or_class in _REGISTRY:
        factory = _REGISTRY[name_or_class]
        return _import_path(factory) if isinstance(factory, str) else factory
    if ":" in name_or_class:
        return _import_path(name_or_class)
    raise KeyError(
        f"unknown agent {name_or_class!r}; registered agents: {', '.join(names())}; "
        "or pass a class or a 'module:Class' path"
    )


def make(name_or_class: str | type | Callable[..., Any], **kwargs: Any) -> Any:
    """Build an agent by registered name, ``"module:Class"`` path or class, with ``kwargs``."""
    return resolve(name_or_class)(**kwargs)


def _import_path(path: str) -> Callable[..., Any]:
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ValueError(f"agent path {path!r} must look like 'package.module:ClassName'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = ""
        if isinstance(exc, ModuleNotFoundError) and exc.name and module_name.startswith(exc.name):
            hint = (f"; if {module_name.replace('.', '/')}.py is your own file, run from its "
                    "folder with that folder on the path (PYTHONPATH=. gambit-gym ...), or "
                    "pip install its package")
        raise ImportError(
            f"cannot import module {module_name!r} for agent {path!r}: {exc}{hint}"
        ) from exc
    target = getattr(module, attr, None)
    if target is None:
        raise ValueError(f"module {module_name!r} has no attribute {attr!r} (agent {path!r}); "
                         f"check the class name after the ':'")
    if not callable(target):
        raise ValueError(f"agent {path!r} names a {type(target).__name__}, not an agent class "
                         "or factory")
    return target


_BUILTIN_LOADED = False


def _load_builtin() -> None:
    """Import the modules that register the built-in agents (lazily, to keep imports light)."""
    global _BUILTIN_LOADED
    if _BUILTIN_LOADED:
        return
    _BUILTIN_LOADED = True
    from gambit_gym.agents import _builtin  # noqa: F401  (registers on import)
