"""stable-baselines3 PPO, A2C and DQN as online baselines on any registered gambit-gym env.

The learning run *is* the study: SB3 learns from the env's transitions with ``model.learn``
and every transition it takes is recorded — the regret from ``info["regret"]`` (the env owns
the oracle), the observed reward, the action, the decision's context and the probability the
policy gave that action. The result is a :class:`~gambit_gym.core.result.RunResult`, the same
type the bandit runner returns, so RL baselines enter the same tables and leaderboards.

Registered agent names ``PPO``, ``A2C`` and ``DQN`` map to :class:`PPOBaseline`,
:class:`A2CBaseline` and :class:`DQNBaseline`. They are not step-by-step agents: SB3 owns its
own loop, so they subclass :class:`~gambit_gym.core.protocol.WholeRunAgent` and
:func:`gambit_gym.bench.run` hands the whole run to :meth:`SB3Baseline.run`. :func:`run_sb3` is
the same entry point without the registry.

stable-baselines3 (and torch) are imported only when a run starts, so ``import gambit_gym``
stays light.

>>> from gambit_gym.baselines import run_sb3
>>> result = run_sb3("GambitIHS-v0", "PPO", horizon=64, replicates=1, seed=0)  # doctest: +SKIP
>>> result.regret.shape  # doctest: +SKIP
(1, 64)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gambit_gym._validate import check_number, check_positive_int
from gambit_gym.core.protocol import WholeRunAgent
from gambit_gym.core.result import RunResult

ALGORITHMS: tuple[str, ...] = ("PPO", "A2C", "DQN")
DEVICES: tuple[str, ...] = ("cpu", "cuda", "auto")


@dataclass
class SB3Baseline(WholeRunAgent):
    """An SB3 algorithm with hyperparameters suited to one decision per step.

    Why these defaults: a GAMBIT step is a whole decision — the next context is drawn
    independently of the action, so the action's value is its immediate reward and any
    discounted future return is noise that only slows learning. Hence ``gamma=0`` (a discount
    of 0.0-0.1 behaves the same; larger ones make the value target chase unrelated future
    rewards). Rollouts are short (``n_steps`` small) so the policy improves many times inside
    a study of a few hundred or thousand decisions, as a bandit would; the network is one small
    hidden layer since the observation is a one-hot of 12 contexts. Rewards sit near 83 (square
    root of daily steps) while the arms differ by about 0.5, so GAMBIT envs are built with
    ``center_rewards=True`` (pass ``env_kwargs={"center_rewards": False}`` for the raw scale):
    value and Q heads start at 0 and would otherwise spend much of the run learning the offset
    (DQN's regret is 1.5-1.9 times the centred run's; docs/ecosystem.md has the figures).
    Advantages are normalised (PPO, A2C). The recorded ``rewards`` are on the raw scale, like
    the bandit runner's.
    Raw against centred regret of these defaults: ``benchmarks/bench_off_the_shelf.py``.

    Attributes:
        algo: ``"PPO"``, ``"A2C"`` or ``"DQN"``.
        hyper: keyword arguments passed to the SB3 algorithm's constructor; they override the
            defaults of :data:`DEFAULT_HYPER` for this ``algo``.
        policy: SB3 policy name.
    """

    algo: str
    hyper: dict[str, Any] = field(default_factory=dict)
    policy: str = "MlpPolicy"

    def __post_init__(self) -> None:
        if self.algo not in ALGORITHMS:
            raise ValueError(f"algo must be one of {ALGORITHMS}, got {self.algo!r}")
        _check_hyper(self.algo, self.hyper)

    def hyperparameters(self) -> dict[str, Any]:
        """The constructor kwargs in force: the defaults for ``algo`` updated by ``hyper``."""
        return {**DEFAULT_HYPER[self.algo], **self.hyper}

    def run(self, env_id: str, *, horizon: int, replicates: int = 1, seed: int = 0,
            env_kwargs: dict[str, Any] | None = None, device: str | None = "cpu",
            verbose: int = 0, torch_threads: int | None = 1) -> RunResult:
        """Learn online for ``horizon`` steps in each of ``replicates`` independent runs.

        Replicate ``r`` seeds the env, the network and SB3's sampling with ``seed + r``, the
        bandit runner's convention. The env is built with ``horizon=horizon`` unless
        ``env_kwargs`` says otherwise (envs that take no ``horizon`` kwarg get none), and GAMBIT
        envs with ``center_rewards=True`` unless ``env_kwargs`` says otherwise.

        Args:
            env_id: a registered gambit-gym id.
            horizon: T, decisions per replicate.
            replicates: R.
            seed: base seed.
            env_kwargs: kwargs for ``gym.make``.
            device: ``"cpu"``, ``"cuda"`` or ``"auto"`` (None means ``"cpu"``).
            verbose: SB3's verbosity.
            torch_threads: torch's intra-op CPU threads during the run (restored after); the
                networks are tiny, so one thread is fastest and extra threads only contend
                with other work on the machine. None leaves torch's setting alone.

        Returns:
            a :class:`RunResult` with ``regret``, ``rewards``, ``actions``, ``propensities``
            and ``contexts`` of shape ``(R, T)``.
        """
        device = "cpu" if device is None else device
        if device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
        check_positive_int("horizon", horizon)
        check_positive_int("replicates", replicates)
        env_kwargs = dict(env_kwargs or {})
        import stable_baselines3
        import torch

        start = time.perf_counter()
        previous_threads = torch.get_num_threads()
        if torch_threads is not None:
            torch.set_num_threads(int(torch_threads))
        try:
            arrays = [self._run_one(env_id, int(horizon), int(seed) + r, env_kwargs, device,
                                    verbose) for r in range(int(replicates))]
        finally:
            torch.set_num_threads(previous_threads)
        regret, rewards, actions, props, contexts = (np.stack(a) for a in zip(*arrays))

        return RunResult(
            env_id=env_id, agent=self.algo, regret=regret, rewards=rewards, actions=actions,
            propensities=props, contexts=None if np.any(contexts < 0) else contexts,
            wall_time_s=time.perf_counter() - start, seed=int(seed), env_kwargs=env_kwargs,
            agent_kwargs=dict(self.hyper),
            metadata={"runner": "sb3", "device": device, "policy": self.policy,
                      "hyperparameters": _jsonable(self.hyperparameters()),
                      "stable_baselines3": stable_baselines3.__version__,
                      "torch": torch.__version__},
        )

    def _run_one(self, env_id: str, horizon: int, seed: int, env_kwargs: dict[str, Any],
                 device: str, verbose: int) -> tuple[np.ndarray, ...]:
        import gymnasium as gym
        import stable_baselines3 as sb3

        import gambit_gym  # noqa: F401  (registers the ids)

        kwargs = dict(env_kwargs)
        if "horizon" not in kwargs and _accepts_horizon(env_id):
            kwargs["horizon"] = horizon
        if _accepts_center_rewards(env_id):
            kwargs.setdefault("center_rewards", True)
        env = gym.make(env_id, **kwargs)
        # the result records rewards on the env's own scale, like the bandit runner's
        offset = float(getattr(env.unwrapped, "reward_offset", 0.0))
        recorder = _make_recorder(horizon, self.algo, offset)
        algo_cls = getattr(sb3, self.algo)
        hyper = self.hyperparameters()
        model = algo_cls(self.policy, env, seed=seed, device=device, verbose=verbose, **hyper)
        if not hyper.get("tensorboard_log"):
            # SB3's default logger makes an SB3-<date> folder in the temp directory on every
            # learn(); a baseline writes logs only where asked (tensorboard_log=DIR)
            model.set_logger(_quiet_logger(verbose))
        model.learn(total_timesteps=horizon, callback=recorder, progress_bar=False)
        env.close()
        if recorder.filled < horizon:  # pragma: no cover - SB3 always collects >= total steps
            raise RuntimeError(f"SB3 stopped after {recorder.filled} of {horizon} steps")
        return (recorder.regret, recorder.rewards, recorder.actions, recorder.propensities,
                recorder.contexts)


def _quiet_logger(verbose: int) -> Any:
    """An SB3 logger writing no files: stdout only when ``verbose``, else nothing."""
    import sys

    from stable_baselines3.common.logger import HumanOutputFormat, Logger

    return Logger(folder=None, output_formats=[HumanOutputFormat(sys.stdout)] if verbose else [])


class PPOBaseline(SB3Baseline):
    """SB3 PPO (registered as ``PPO``); see :class:`SB3Baseline` for the defaults' reasons.

    Args:
        policy: SB3 policy name.
        **hyper: PPO constructor kwargs overriding :data:`DEFAULT_HYPER`.
    """

    def __init__(self, policy: str = "MlpPolicy", **hyper: Any) -> None:
        super().__init__(algo="PPO", hyper=hyper, policy=policy)


class A2CBaseline(SB3Baseline):
    """SB3 A2C (registered as ``A2C``); see :class:`SB3Baseline` for the defaults' reasons.

    Args:
        policy: SB3 policy name.
        **hyper: A2C constructor kwargs overriding :data:`DEFAULT_HYPER`.
    """

    def __init__(self, policy: str = "MlpPolicy", **hyper: Any) -> None:
        super().__init__(algo="A2C", hyper=hyper, policy=policy)


class DQNBaseline(SB3Baseline):
    """SB3 DQN (registered as ``DQN``).

    With ``gamma=0`` the Q-target is the reward itself, so the target network plays no role;
    exploration is ε-greedy from 1.0 down to ``exploration_final_eps`` over the first
    ``exploration_fraction`` of the run, after ``learning_starts`` uniform warm-up steps.

    Args:
        policy: SB3 policy name.
        **hyper: DQN constructor kwargs overriding :data:`DEFAULT_HYPER`.
    """

    def __init__(self, policy: str = "MlpPolicy", **hyper: Any) -> None:
        super().__init__(algo="DQN", hyper=hyper, policy=policy)


_NET = {"net_arch": [32]}

#: Defaults per algorithm (see :class:`SB3Baseline` for why).
DEFAULT_HYPER: dict[str, dict[str, Any]] = {
    "PPO": dict(gamma=0.0, gae_lambda=1.0, n_steps=16, batch_size=16, n_epochs=4,
                learning_rate=1e-2, ent_coef=0.0, clip_range=0.2, normalize_advantage=True,
                policy_kwargs=_NET),
    "A2C": dict(gamma=0.0, gae_lambda=1.0, n_steps=8, learning_rate=3e-3, ent_coef=0.0,
                normalize_advantage=True, policy_kwargs=_NET),
    "DQN": dict(gamma=0.0, learning_rate=3e-3, buffer_size=10_000, learning_starts=50,
                batch_size=32, train_freq=1, gradient_steps=1, target_update_interval=100,
                exploration_fraction=0.2, exploration_initial_eps=1.0,
                exploration_final_eps=0.02, policy_kwargs=_NET),
}


_INT_HYPER = {"n_steps": 1, "batch_size": 1, "n_epochs": 1, "buffer_size": 1,
              "learning_starts": 0, "target_update_interval": 1}
_UNIT_HYPER = ("gamma", "gae_lambda", "exploration_fraction", "exploration_initial_eps",
               "exploration_final_eps", "tau")
_POSITIVE_HYPER = ("learning_rate", "clip_range", "max_grad_norm")
_NON_NEGATIVE_HYPER = ("ent_coef", "vf_coef")


def _check_hyper(algo: str, hyper: dict[str, Any]) -> None:
    """Refuse hyperparameters that SB3 would take silently or fail on deep inside ``learn``."""
    if "total_timesteps" in hyper:
        raise ValueError("total_timesteps is not a hyperparameter here: an online baseline learns "
                         "for the run's horizon (pass horizon=T to run, or --horizon to bench)")
    for name, minimum in _INT_HYPER.items():
        if name in hyper:
            check_positive_int(name, hyper[name], minimum=minimum)
    for name in _UNIT_HYPER:
        if name in hyper:
            check_number(name, hyper[name], minimum=0.0, maximum=1.0)
    for name in _POSITIVE_HYPER:
        if name in hyper and not callable(hyper[name]):
            check_number(name, hyper[name], minimum=0.0, strict=True)
    for name in _NON_NEGATIVE_HYPER:
        if name in hyper and not isinstance(hyper[name], str):
            check_number(name, hyper[name], minimum=0.0)
    if hyper:
        import inspect

        import stable_baselines3

        accepted = set(inspect.signature(getattr(stable_baselines3, algo)).parameters)
        unknown = sorted(set(hyper) - accepted - {"policy", "env"})
        if unknown:
            raise ValueError(f"{algo} does not take {', '.join(map(repr, unknown))}; its "
                             f"hyperparameters: {', '.join(sorted(accepted - {'policy', 'env'}))}")


def make_baseline(algo: str, **hyper: Any) -> SB3Baseline:
    """The baseline for ``algo`` with SB3 constructor kwargs ``hyper``."""
    policy = hyper.pop("policy", "MlpPolicy")
    return SB3Baseline(algo=algo, hyper=hyper, policy=policy)


def run_sb3(env_id: str, algo: str, horizon: int, replicates: int = 1, seed: int = 0,
            env_kwargs: dict[str, Any] | None = None, device: str | None = "cpu",
            torch_threads: int | None = 1, **hyper: Any) -> RunResult:
    """Run an SB3 algorithm online on a gambit-gym env (see :meth:`SB3Baseline.run`).

    Args:
        env_id: a registered id, e.g. ``"GambitIHS-v0"``.
        algo: ``"PPO"``, ``"A2C"`` or ``"DQN"``.
        horizon: T, decisions per replicate.
        replicates: R.
        seed: base seed; replicate r uses ``seed + r``.
        env_kwargs: kwargs for ``gym.make``.
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        torch_threads: torch CPU threads during the run (see :meth:`SB3Baseline.run`).
        **hyper: SB3 constructor kwargs overriding :data:`DEFAULT_HYPER`.

    Returns:
        the run's :class:`RunResult`, arrays ``(R, T)``.
    """
    return make_baseline(algo, **hyper).run(env_id, horizon=horizon, replicates=replicates,
                                            seed=seed, env_kwargs=env_kwargs, device=device,
                                            torch_threads=torch_threads)


def _accepts_horizon(env_id: str) -> bool:
    """Whether ``env_id`` is one of ours (every gambit-gym env takes ``horizon=``)."""
    from gambit_gym.envs.registration import registered_ids

    return env_id in registered_ids()


def _accepts_center_rewards(env_id: str) -> bool:
    """Whether ``env_id`` is a GAMBIT id (they take ``center_rewards=``)."""
    from gambit_gym.envs.config import USER_KWARGS
    from gambit_gym.envs.registration import ENV_IDS, GAMBIT

    return "center_rewards" in USER_KWARGS and any(
        row[0] == env_id and row[1] == GAMBIT for row in ENV_IDS)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    return repr(value)


def _make_recorder(horizon: int, algo: str, reward_offset: float = 0.0) -> Any:
    """An SB3 callback recording the first ``horizon`` transitions (built lazily)."""
    from stable_baselines3.common.callbacks import BaseCallback

    class _Recorder(BaseCallback):
        """Copies each transition's regret, reward, action, context and propensity."""

        def __init__(self) -> None:
            super().__init__(verbose=0)
            self.regret = np.zeros(horizon)
            self.rewards = np.zeros(horizon)
            self.actions = np.zeros(horizon, dtype=np.int64)
            self.propensities = np.full(horizon, np.nan)
            self.contexts = np.full(horizon, -1, dtype=np.int64)
            self.filled = 0

        def _on_step(self) -> bool:
            t = self.filled
            if t >= horizon:
                return True
            info = self.locals["infos"][0]
            if "regret" not in info:
                raise KeyError(f"the env's step info has no 'regret' key (keys: {sorted(info)})"
                               ": SB3 baselines need an env that reports its regret")
            action = int(np.asarray(self.locals["actions"]).reshape(-1)[0])
            obs = np.asarray(self.model._last_obs)
            self.regret[t] = float(info["regret"])
            self.rewards[t] = float(np.asarray(self.locals["rewards"]).reshape(-1)[0]) \
                + reward_offset
            self.actions[t] = action
            if obs.shape == (1, 2):
                from gambit_gym.text.contexts import context_ids

                self.contexts[t] = int(context_ids(obs)[0])
            self.propensities[t] = self._propensity(obs, action)
            self.filled += 1
            return True

        def _propensity(self, obs: np.ndarray, action: int) -> float:
            if algo in ("PPO", "A2C"):
                return float(np.exp(np.asarray(self.locals["log_probs"].cpu()).reshape(-1)[0]))
            model = self.model
            n = int(model.action_space.n)
            if model.num_timesteps - 1 < model.learning_starts:
                return 1.0 / n
            greedy, _ = model.policy.predict(obs, deterministic=True)
            eps = float(model.exploration_rate)
            return eps / n + (1.0 - eps) * float(int(np.asarray(greedy).reshape(-1)[0]) == action)

    return _Recorder()
