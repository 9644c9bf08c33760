"""Contract checks for gambit-gym environments, shipped so users can test their own variants.

Each ``check_*`` function raises ``AssertionError`` with a message saying what broke. The test
suite runs :func:`check_gambit_env` (all of them) over every registered id, and shows that each
check fails on an env broken on purpose (``tests/test_env_checks.py``).

>>> import gambit_gym
>>> from gambit_gym.envs.checks import check_gambit_env
>>> checks = check_gambit_env("GambitIHS-v0", n_prompts=3)  # doctest: +ELLIPSIS
ok    spaces: Discrete(K >= 2) actions; a seeded reset lands in the observation space
ok    gymnasium: ...
>>> len(checks)  # a factory works too: check_gambit_env(lambda: MyEnv(...))
6
"""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.utils.env_checker import check_env

STEP_INFO_TYPES: dict[str, type | tuple[type, ...]] = {
    "expected_reward": (float, np.floating),
    "optimal_action": (int, np.integer),
    "optimal_expected_reward": (float, np.floating),
    "regret": (float, np.floating),
}
GAMBIT_INFO_TYPES: dict[str, type | tuple[type, ...]] = {
    "text": str,
    "prompt_id": np.integer,
    "prompt": str,
    "embedding": np.ndarray,
    "embedding_names": np.ndarray,
    "context": str,
    "context_id": np.integer,
}


def check_info_values(info: dict[str, Any]) -> None:
    """Every info value is a number, a numpy scalar or array, or a str (nothing nested).

    That is what Gymnasium's vector envs batch into plain arrays, ``DictInfoToList`` splits
    back, and torchrl's default info reader stores without a custom reader (it reads
    ``value.dtype``: numpy scalars, arrays and ``np.str_`` have one).
    """
    for key, value in info.items():
        assert isinstance(value, (np.generic, np.ndarray)), \
            f"info[{key!r}] is a {type(value).__name__}: info values must be numpy scalars, " \
            "numpy arrays or np.str_ (torchrl's default info reader reads their dtype)"


def is_gambit(env: gym.Env) -> bool:
    """Whether an env is a GAMBIT env (carries texts and embeddings in its info)."""
    from gambit_gym.envs.gambit_env import GambitEnv

    return isinstance(env.unwrapped, GambitEnv)


def check_gymnasium_contract(env: gym.Env) -> None:
    """Gymnasium's own ``check_env`` passes with no warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped, skip_render_check=True)


def check_spaces(env: gym.Env) -> None:
    """A ``Discrete`` action space of at least two actions and a seeded reset inside its space."""
    space = env.action_space
    assert isinstance(space, gym.spaces.Discrete), \
        f"action_space must be gymnasium.spaces.Discrete (one prompt index), got {space!r}"
    assert space.n >= 2 and space.start == 0, \
        f"action_space must be Discrete(n) with n >= 2 starting at 0, got {space!r}"
    assert isinstance(env.observation_space, gym.spaces.Space), \
        f"observation_space must be a gymnasium space, got {env.observation_space!r}"
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs), \
        f"reset's observation {obs!r} is outside observation_space {env.observation_space!r}"
    assert isinstance(info, dict), f"reset's info must be a dict, got {type(info).__name__}"


def rollout(env: gym.Env, seed: int, steps: int, policy_seed: int = 0) -> list[tuple[Any, ...]]:
    """``steps`` steps under a seeded uniform policy: (obs, reward, term, trunc, info) tuples."""
    rng = np.random.default_rng(policy_seed)
    obs, _ = env.reset(seed=seed)
    out = []
    for _ in range(steps):
        action = int(rng.integers(env.action_space.n))
        obs, reward, terminated, truncated, info = env.step(action)
        out.append((obs.copy(), reward, terminated, truncated, info, action))
        if terminated or truncated:
            obs, _ = env.reset()
    return out


def check_step_types_and_info(env: gym.Env, steps: int = 20, seed: int = 0) -> None:
    """Rewards are Python floats, flags Python bools, obs in the space, info keys typed."""
    for obs, reward, terminated, truncated, info, action in rollout(env, seed, steps):
        assert env.observation_space.contains(obs), f"observation {obs} outside the space"
        assert type(reward) is float, f"reward must be a Python float, got {type(reward)}"
        assert type(terminated) is bool and type(truncated) is bool, "flags must be bools"
        expected_types = dict(STEP_INFO_TYPES)
        if is_gambit(env):
            expected_types.update(GAMBIT_INFO_TYPES)
        for key, typ in expected_types.items():
            assert key in info, f"info lacks {key!r}"
            assert isinstance(info[key], typ), f"info[{key!r}] is {type(info[key])}, not {typ}"
        if is_gambit(env):
            check_info_values(info)
        assert info["regret"] >= 0, "regret must be >= 0"
        gap = info["optimal_expected_reward"] - info["expected_reward"]
        assert np.isclose(info["regret"], max(gap, 0.0)), "regret != optimal - expected"
        if action == info["optimal_action"]:
            assert info["regret"] == 0.0, "regret of the optimal action must be exactly 0"
        if is_gambit(env):
            assert info["embedding"].dtype == np.float32
            assert info["embedding"].shape == info["embedding_names"].shape


def check_determinism(env_factory: Callable[[], gym.Env], steps: int = 15,
                      seed: int = 123) -> None:
    """Two envs reset with the same seed give the same observations, rewards and info.

    Also: the reset observations agree, and a second seeded reset of the same env object
    replays the first episode (state left over from an earlier episode must not leak in).
    """
    first, second = env_factory(), env_factory()
    o1, _ = first.reset(seed=seed)
    o2, _ = second.reset(seed=seed)
    assert np.array_equal(o1, o2), \
        f"reset(seed={seed}) gave different observations: {o1!r} vs {o2!r}"
    a = rollout(first, seed, steps)
    b = rollout(second, seed, steps)
    _same_trajectory(a, b, "two envs reset with the same seed")
    _same_trajectory(a, rollout(first, seed, steps), "a second reset(seed) of the same env")
    c = rollout(env_factory(), seed + 1, steps)
    assert any(ra != rc for (_, ra, *_), (_, rc, *_) in zip(a, c)), \
        "different seeds gave identical rewards"


def _same_trajectory(a: list[tuple[Any, ...]], b: list[tuple[Any, ...]], what: str) -> None:
    for t, ((oa, ra, _, _, ia, _), (ob, rb, _, _, ib, _)) in enumerate(zip(a, b)):
        assert np.array_equal(oa, ob) and ra == rb, \
            f"{what} gave different trajectories (step {t}: reward {ra!r} vs {rb!r})"
        for key in ("text", "regret", "expected_reward", "embedding"):
            if key in ia:
                assert np.array_equal(ia[key], ib.get(key)), \
                    f"{what} gave different info[{key!r}] at step {t}"


def check_invalid_actions(env: gym.Env) -> None:
    """Out-of-range, float, NaN, array and None actions raise a ValueError naming the range."""
    env.reset(seed=0)
    n = int(env.action_space.n)
    for bad in (n, -1, 0.5, float("nan"), np.array([0, 1]), None, "0"):
        try:
            env.step(bad)
        except ValueError as exc:
            assert str(n - 1) in str(exc), f"error for action {bad!r} does not name the range"
        except Exception as exc:
            raise AssertionError(f"action {bad!r} raised {type(exc).__name__} ({exc}); it must "
                                 f"raise ValueError naming the range 0..{n - 1}") from exc
        else:
            raise AssertionError(f"action {bad!r} was accepted")


def check_pickle(env: gym.Env, steps: int = 5) -> None:
    """A pickled and restored env continues exactly like the original."""
    env.reset(seed=7)
    env.step(0)
    clone = pickle.loads(pickle.dumps(env))
    for _ in range(steps):
        o1, r1, *_ = env.step(0)
        o2, r2, *_ = clone.step(0)
        assert np.array_equal(o1, o2) and r1 == r2, "pickled env diverged"


def check_gambit_env(env: str | Callable[[], gym.Env], *, verbose: bool = True,
                     steps: int | None = None, **kwargs: Any) -> list[str]:
    """Run every contract check on a registered id (with env kwargs) or an env factory.

    Args:
        env: a registered id, made with ``gym.make(env, **kwargs)``, or a callable returning a
            fresh env each call (a user's own class, say); ``kwargs`` are then not allowed.
        verbose: print one line per check as it passes (``ok  name: what it checked``).
        steps: steps of each rollout the checks make (default: 20 for the step types, 15 for
            determinism, 5 after unpickling); fewer for an env whose step is slow, such as the
            live one (a second or more per step).
        **kwargs: env kwargs for a registered id.

    Returns:
        one line per check, ``"name: what it checked"`` (a skipped check says so).

    Raises:
        AssertionError: the first check that fails, with a message saying what broke.

    The determinism checks are skipped for an id registered ``nondeterministic=True`` (the
    live generator).
    """
    if isinstance(env, str):
        env_id = env

        def factory() -> gym.Env:
            return gym.make(env_id, **kwargs)
    else:
        if kwargs:
            raise TypeError("env kwargs go with a registered id; a factory builds its own env")
        factory = env
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int)
                              or steps < 1):
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    n_types, n_det, n_pickle = (20, 15, 5) if steps is None else (steps, steps, steps)
    spec = getattr(factory(), "spec", None)
    deterministic = not (spec is not None and spec.nondeterministic)
    checks: list[tuple[str, str, Callable[[], None] | None]] = [
        ("spaces", "Discrete(K >= 2) actions; a seeded reset lands in the observation space",
         lambda: check_spaces(factory())),
        ("gymnasium", "gymnasium.utils.env_checker.check_env passes without warnings",
         lambda: check_gymnasium_contract(factory())),
        ("step types and info", "float rewards, bool flags, typed info keys, regret = "
         "optimal - expected >= 0", lambda: check_step_types_and_info(factory(), steps=n_types)),
        ("determinism", "same seed, same trajectory (two envs, and a second reset of one); "
         "another seed differs", (lambda: check_determinism(factory, steps=n_det)) if deterministic
         else None),
        ("invalid actions", "out-of-range, float, NaN, array, None and str actions raise "
         "ValueError naming the range", lambda: check_invalid_actions(factory())),
        ("pickle", "a pickled env continues exactly like the original",
         lambda: check_pickle(factory(), steps=n_pickle)),
    ]
    ran = []
    for name, what, check in checks:
        if check is None:
            line = f"{name}: skipped (the id is registered nondeterministic)"
        else:
            check()
            line = f"{name}: {what}"
        ran.append(line)
        if verbose:
            print(("ok    " if check is not None else "skip  ") + line)
    return ran
