"""Bandit agents and the agent protocol (docs/agents.md: writing your own).

>>> from gambit_gym import agents
>>> agent = agents.make("StdTS")  # doctest: +SKIP
"""

from gambit_gym.agents.base import Agent, EnvDescription, make, names, register, resolve
from gambit_gym.agents.simple import BaseAgent

__all__ = ["Agent", "BaseAgent", "EnvDescription", "make", "names", "register", "resolve"]
