"""How hard a GAMBIT env is for an agent that models one working dimension linearly.

A misspecified env (the outcome depends on optimism, the agent sees another dimension) is hard
or easy depending on how the working dimension *ranks* the prompts, more than on its overall
correlation with optimism. :func:`ranking_floor` measures that directly.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

__all__ = ["cell_means", "ranking_floor"]


def _made(env: Any) -> Any:
    """The env itself, or a new one when given an id."""
    return gym.make(env) if isinstance(env, str) else env


def cell_means(env: Any, dim: int = 0) -> np.ndarray:
    """Mean of working dimension ``dim`` over each (context, action) cell of the env's bank.

    A view of the env simulator's ``mean_embedding_table`` (the exact cell means poGAMBITTS
    acts on).

    Args:
        env: an env id or a made GAMBIT env.
        dim: index into the env's working dimensions.

    Returns:
        ``(12, K)`` float64 array.
    """
    return _made(env).unwrapped.simulator.mean_embedding_table[:, :, dim]


def ranking_floor(env: Any, dim: int = 0) -> float:
    """Expected regret per step of the best a reward model linear in one working dim can do.

    Such a model (working dim, context one-hots, intercept) scores action k in context c as
    ``theta * m[c, k]`` (``m``: :func:`cell_means`), so once learned it sends the action with
    the highest ``m`` in every context, or the lowest when ``theta < 0``. The sign of ``theta``
    is that of a least-squares fit of the cells' true expected rewards on ``m`` within contexts
    (what the model converges to when it sees every cell). The floor is the regret of that
    ranking averaged over the 12 contexts, which the envs draw uniformly. It is 0 when the
    dimension's extreme prompt is the best prompt in every context, whatever its correlation
    with the outcome's dimension; multiply by the horizon to compare with cumulative regret.

    Args:
        env: an env id or a made GAMBIT env.
        dim: index into the env's working dimensions.
    """
    env = _made(env)
    tables = env.unwrapped.tables
    m = cell_means(env, dim)
    expected = tables.expected
    mc, ec = m - m.mean(1, keepdims=True), expected - expected.mean(1, keepdims=True)
    sign = 1.0 if (mc * ec).sum() >= 0 else -1.0
    pick = (sign * m).argmax(axis=1)
    return float((tables.optimal_reward - expected[np.arange(len(pick)), pick]).mean())
