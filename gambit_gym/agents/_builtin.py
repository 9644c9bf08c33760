"""Registers the built-in agents by name (string entry points, imported on first use)."""

from gambit_gym.agents.base import register

# Each line: registered name -> "module:factory". Modules are imported only when the agent is made.
_BUILTIN: dict[str, str] = {}

for _name, _path in _BUILTIN.items():
    register(_name, _path)
