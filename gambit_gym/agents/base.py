"""The agent registry (and, re-exported from :mod:`gambit_gym.core`, the agent protocol).

An agent is anything with ``reset / act / update / action_probabilities`` (see :class:`Agent`).
Agents are registered by name, like environments, so that the benchmark harness, the CLI and a
user's script can all say ``make("poGAMBITTS", n_sim_draws=50)``. A user's own class, or a
``"module:Class"`` path, is accepted wherever a name is.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from gambit_gym.agents._builtin import BUILTIN
from gambit_gym.core.description import EnvDescription
from gambit_gym.core.protocol import Agent

__all__ = ["Agent", "EnvDescription", "make", "names", "register", "resolve"]


#: name -> factory (a callable or a ``"module:attr"`` path). The built-in agents come from the
#: data table :data:`gambit_gym.agents._builtin.BUILTIN`, imported only when made.
_REGISTRY: dict[str, Callable[..., Any] | str] = {
    name: path for name, (path, _family, _about) in BUILTIN.items()}


def register(name: str, factory: Callable[..., Any] | str) -> None:
    """Register an agent factory (a class, a callable or a ``"module:attr"`` path) by name."""
    if name in _REGISTRY:
        raise ValueError(f"agent name {name!r} is already registered")
    _REGISTRY[name] = factory


def names() -> list[str]:
    """Registered agent names, sorted."""
    return sorted(_REGISTRY)


def resolve(name_or_class: str | type | Callable[..., Any]) -> Callable[..., Any]:
    """The factory behind a registered name, a ``"module:Class"`` path, or a class itself."""
    if not isinstance(name_or_class, str):
        if not callable(name_or_class):
            raise ValueError(f"an agent must be a registered name, a 'module:Class' path, or an "
                             f"agent class or factory; got {name_or_class!r} "
                             f"({type(name_or_class).__name__})")
        return name_or_class
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
