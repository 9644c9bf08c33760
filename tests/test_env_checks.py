"""The shipped checker (gambit_gym.envs.checks.check_gambit_env) on every id and on broken envs.

Every registered id must pass the whole checker, as users call it. Each broken env below is the
real GambitEnv with one fault put in on purpose; the checker must reject each one with a message
that names the fault.
"""

import gymnasium as gym
import numpy as np
import pytest

import gambit_gym  # noqa: F401  (registers the ids)
from gambit_gym.envs.checks import check_gambit_env
from gambit_gym.envs.gambit_env import GambitEnv
from gambit_gym.envs.registration import registered_ids

FAST_IDS = [i for i in registered_ids() if i != "GambitIHS-Live-v0"]


@pytest.mark.parametrize("env_id", FAST_IDS)
def test_every_registered_id_passes_the_shipped_checker(env_id, env_kwargs):
    check_gambit_env(env_id, **env_kwargs(env_id))


def test_the_checker_accepts_kwargs_and_factories():
    check_gambit_env("GambitIHS-v0", n_prompts=3, noise_level=2)
    check_gambit_env(lambda: GambitEnv(preset="1d", n_prompts=4))
    with pytest.raises(TypeError, match="registered id"):
        check_gambit_env(lambda: GambitEnv(), n_prompts=3)


class BreaksLate(GambitEnv):
    """An int reward from the 4th step after a reset on."""

    _n = 0

    def reset(self, *, seed=None, options=None):
        self._n = 0
        return super().reset(seed=seed, options=options)

    def step(self, action):
        self._n += 1
        obs, r, term, trunc, info = super().step(action)
        return obs, (r if self._n < 4 else int(r)), term, trunc, info


def test_the_checker_takes_shorter_rollouts_for_slow_envs():
    """``steps`` sets each rollout's length: an env that breaks at its 4th step passes with
    steps=3 and fails with the default rollouts."""

    check_gambit_env(lambda: BreaksLate(preset="1d"), steps=3, verbose=False)
    with pytest.raises(AssertionError):
        check_gambit_env(lambda: BreaksLate(preset="1d"), verbose=False)
    for bad in (0, -2, True, 2.5):
        with pytest.raises(ValueError, match="steps must be a positive integer"):
            check_gambit_env("GambitIHS-v0", steps=bad)


# ------------------------------------------------------------------ broken on purpose
class DropsRegret(GambitEnv):
    """Wrong info keys: ``regret`` renamed."""

    def step(self, action):
        obs, r, term, trunc, info = super().step(action)
        info["regrets"] = info.pop("regret")
        return obs, r, term, trunc, info


class RegretNotOracle(GambitEnv):
    """Info present but wrong: regret measured from the wrong reference."""

    def step(self, action):
        obs, r, term, trunc, info = super().step(action)
        info["regret"] = abs(info["expected_reward"] - 80.0)
        return obs, r, term, trunc, info


class NumpyReward(GambitEnv):
    """Reward as a numpy scalar, not a Python float."""

    def step(self, action):
        obs, r, term, trunc, info = super().step(action)
        return obs, np.float32(r), term, trunc, info


class UnseededReset(GambitEnv):
    """Nondeterministic reset: ignores the seed it is given."""

    _draws = np.random.default_rng()

    def reset(self, *, seed=None, options=None):
        return super().reset(seed=int(self._draws.integers(2**31)), options=options)


class LeakyReset(GambitEnv):
    """State leaks across episodes: reset keeps the step counter, so a second seeded reset
    does not replay the first episode."""

    def reset(self, *, seed=None, options=None):
        t = self._t
        obs, info = super().reset(seed=seed, options=options)
        self._t = t
        return obs, info


class BoxActions(GambitEnv):
    """Bad spaces: a continuous action space for a choice of prompt."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.action_space = gym.spaces.Box(0.0, 4.0, shape=(1,))


class ObsOutsideSpace(GambitEnv):
    """Bad spaces: an observation space too small for the observations."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.observation_space = gym.spaces.MultiDiscrete([2, 2])


class ClipsActions(GambitEnv):
    """An out-of-range action accepted: clipped into range instead of refused."""

    def step(self, action):
        if isinstance(action, (int, np.integer)):
            action = int(np.clip(action, 0, self.action_space.n - 1))
        return super().step(action)


class IndexErrorOnBadAction(GambitEnv):
    """An out-of-range action fails deep inside with an IndexError, not a clear ValueError."""

    def step(self, action):
        if isinstance(action, (int, np.integer)) and not 0 <= action < self.action_space.n:
            return [][action]
        return super().step(action)


class ForgetsOnPickle(GambitEnv):
    """A pickled copy restarts its episode instead of continuing it."""

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._key ^= 1


@pytest.mark.parametrize("broken, message", [
    (DropsRegret, r"info lacks 'regret'"),
    (RegretNotOracle, r"regret != optimal - expected"),
    (NumpyReward, r"reward must be a Python float"),
    (UnseededReset, r"does not call `super\(\).reset\(seed=seed\)`"),
    (LeakyReset, r"Deterministic step observations are not equivalent"),
    (BoxActions, r"action_space must be gymnasium.spaces.Discrete"),
    (ObsOutsideSpace, r"outside observation_space"),
    (ClipsActions, r"action 5 was accepted"),
    (IndexErrorOnBadAction, r"action 5 raised IndexError.*must raise ValueError naming the "
                            r"range 0..4"),
    (ForgetsOnPickle, r"pickled env diverged"),
], ids=lambda x: x.__name__ if isinstance(x, type) else "")
def test_the_checker_rejects_a_broken_env_with_a_clear_message(broken, message):
    check_gambit_env(lambda: GambitEnv(preset="3d"))  # the unbroken env passes
    with pytest.raises(AssertionError, match=message):
        check_gambit_env(lambda: broken(preset="3d"))
