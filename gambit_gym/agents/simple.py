"""A base class for your own agent: the protocol with sensible defaults.

Subclass :class:`BaseAgent`, allocate your state in :meth:`~BaseAgent.setup`, choose in
:meth:`~BaseAgent.act` (drawing randomness from ``self.rng`` only) and learn in
:meth:`~BaseAgent.update`. Propensities come for free: unless you override
:meth:`~BaseAgent.action_probabilities` with a closed form, they are estimated by calling
``act`` ``n_samples`` times on a throwaway copy of the agent with its own random stream, so
computing them never changes the agent's decisions. docs/agents.md walks through an example.

>>> import numpy as np
>>> class AlwaysFirst(BaseAgent):
...     def act(self, obs):
...         return 0
>>> import gymnasium as gym, gambit_gym
>>> env = gym.make("GambitIHS-v0")
>>> agent = AlwaysFirst()
>>> agent.reset(env.unwrapped.describe(), seed=0)
>>> agent.action_probabilities(np.array([0, 1]), n_samples=10)
array([1., 0., 0., 0., 0.])
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from gambit_gym.core.description import EnvDescription
from gambit_gym.text.contexts import STEP_BUCKETS

_PROPENSITY_STREAM = 0x70726F70  # "prop": keeps the estimate's draws apart from act's


class BaseAgent:
    """The agent protocol (``reset / act / update / action_probabilities``) with defaults.

    What the defaults give a subclass:

    - :meth:`reset` stores ``self.spec`` (the :class:`EnvDescription`), ``self.n_actions``, and
      ``self.rng`` (a ``numpy.random.Generator`` seeded with ``seed``), then calls
      :meth:`setup` — override ``setup``, not ``reset``.
    - :meth:`update` does nothing (an agent that does not learn needs no override).
    - :meth:`action_probabilities` is a Monte Carlo estimate from ``act`` draws (see there).
    - :meth:`context_id` turns an IHS observation ``(location, step_bucket)`` into 0..11.

    Attributes:
        reads_oracle: leave False. Only a reference agent (the Oracle) sets it, to receive the
            env's oracle table in ``EnvDescription.extra``; the harness removes it otherwise.
    """

    reads_oracle = False

    # ------------------------------------------------------------------ the protocol
    def reset(self, spec: EnvDescription, seed: int | None = None) -> None:
        """Forget everything and prepare for ``spec``; all randomness comes from ``seed``.

        Args:
            spec: what the agent may know about the env (actions, spaces, embedding names, ...).
            seed: seed of ``self.rng``; None for fresh entropy.
        """
        self.spec = spec
        self.n_actions = int(spec.n_actions)
        self.rng = np.random.default_rng(seed)
        entropy = np.random.SeedSequence().entropy if seed is None else int(seed)
        self._propensity_entropy = int(entropy) % (1 << 63)
        self._propensity_calls = 0
        self.setup(spec)

    def setup(self, spec: EnvDescription) -> None:
        """Allocate the agent's state for ``spec`` (called by :meth:`reset`; default: nothing)."""

    def act(self, obs: Any) -> int:
        """Choose an action in ``0..n_actions-1`` for observation ``obs``.

        Draw randomness from ``self.rng`` only, and keep learning in :meth:`update`: the default
        propensity estimate replays ``act`` on a copy of the agent.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement act(obs) -> int")

    def update(self, obs: Any, action: int, reward: float, info: dict) -> None:
        """Learn from one step (default: nothing).

        Args:
            obs: the observation the action was taken in.
            action: the action taken.
            reward: the reward observed.
            info: what a deployed app would see of the step (``context``, ``context_id``,
                ``prompt_id``, ``prompt``, ``text``, ``embedding``, ``embedding_names``,
                ``reward``); run by the harness, the oracle fields are not there.
        """

    def action_probabilities(self, obs: Any, n_samples: int = 1000,
                             target_rse: float | None = None) -> np.ndarray:
        """``(n_actions,)`` probabilities that :meth:`act` picks each action now.

        The default is a Monte Carlo estimate: ``act(obs)`` is called on a deep copy of the
        agent whose ``rng`` is a separate, seeded stream (each call starts from the copy's
        state, so counters that ``act`` advances do not drift). The agent itself is not
        touched, so its decisions are the same with or without propensities.

        The action :meth:`act` is about to take is found first (acting once on a copy that
        keeps the agent's own ``rng`` state); it gets the add-one estimate ``(C + 1)/(S + 1)``
        for ``C`` hits in ``S`` draws, never 0, so that its importance weight is defined (the
        runner refuses a chosen action of probability 0); the other actions share the rest in
        proportion to their counts (an unchosen action of small probability can be 0). With
        ``target_rse`` (the harness passes ``--propensity-rse``) draws come in rounds (32, then
        doubling) until that action's relative standard error is at most ``target_rse`` or
        ``n_samples`` draws are spent; without it, ``n_samples`` draws.
        ``self.propensity_se`` and ``self.propensity_draws`` describe the last estimate.

        Override this method with the exact probabilities where your agent has them in closed
        form (ε-greedy, softmax, UCB): exact, and much faster.

        Args:
            obs: the observation.
            n_samples: the most Monte Carlo draws.
            target_rse: stop once the next action's relative standard error is this small.

        Returns:
            ``(n_actions,)`` estimated probabilities, summing to 1, positive on the action
            :meth:`act` takes next.
        """
        if not hasattr(self, "rng"):
            raise RuntimeError(f"{type(self).__name__}: call reset(spec, seed) first")
        n_samples = int(n_samples)
        if n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}")
        # the spec (which may hold a simulator's tables) is shared, not copied
        shadow = copy.deepcopy(self, memo={id(self.spec): self.spec})
        rng = np.random.default_rng([self._propensity_entropy, _PROPENSITY_STREAM,
                                     self._propensity_calls])
        self._propensity_calls += 1
        peek = copy.copy(shadow)
        peek.rng = copy.deepcopy(self.rng)  # the very draw act() is about to make
        chosen = int(peek.act(obs))
        counts = np.zeros(self.n_actions)
        done, size = 0, min(32, n_samples) if target_rse else n_samples
        while done < n_samples:
            for _ in range(min(size, n_samples - done)):
                draw = copy.copy(shadow)
                draw.rng = rng
                counts[int(draw.act(obs))] += 1
            done += min(size, n_samples - done)
            size = done  # double
            if target_rse and counts[chosen] > 0:
                p = counts[chosen] / done
                if np.sqrt((1 - p) / (p * done)) <= target_rse:
                    break
        freq = counts / done
        self.propensity_se = np.sqrt(freq * (1 - freq) / done)
        self.propensity_draws = done
        p_chosen = (counts[chosen] + 1.0) / (done + 1.0)
        others = done - counts[chosen]
        probs = counts * ((1.0 - p_chosen) / others if others else 0.0)
        probs[chosen] = p_chosen
        return probs

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def context_id(obs: Any) -> int:
        """The context id ``location * 4 + step_bucket`` (0..11) of an IHS observation."""
        location, step_bucket = (int(v) for v in np.asarray(obs).reshape(-1)[:2])
        return location * len(STEP_BUCKETS) + step_bucket
