"""poGAMBITTS that learns a low-dimensional projection of a wide embedding online.

Where ``info["embedding"]`` is a message's full sentence vector (``GambitIHS-MiniLM-v0``: 384
numbers, of which the reward depends on a few directions nobody names), poGAMBITTS's linear
reward model has 392 coefficients to learn from a few hundred rewards. :class:`POGambitTSPCA`
fits it on ``k`` directions instead: the first ``k`` principal axes of the embeddings it has
received so far, each scaled to unit sd (so the study's prior, precision 1 per coefficient, is
on the scale of the named style scores). The basis is refitted as the messages accumulate (after
16, 32, 64, ... received messages, then every ``refit_every``), and at every refit the posterior
is recomputed exactly from the whole history in the new basis, so no information is lost when
the axes move. Acting projects the simulator's per-arm mean embeddings on the current basis.

The PCA is unsupervised: it finds the directions along which the messages the agent sees vary
most, which are the prompts' styles when prompts differ in style, whether or not the reward
follows them. Principal-components regression in a bandit in this sense is ours; the Bayesian
linear model and Thompson sampling are poGAMBITTS's (:mod:`gambit_gym.agents.gambitts`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np

from gambit_gym._validate import check_positive_int
from gambit_gym.agents._batched import gambit_contexts, require_simulator
from gambit_gym.agents.gambitts import POGambitTS, received_embeddings
from gambit_gym.core.description import EnvDescription

FIRST_REFIT = 16  #: messages received before the first basis (then doubling)
POWER_ITERATIONS = 12  #: subspace iterations per refit (warm-started from the last basis)
OVERSAMPLE = 10  #: extra directions iterated beside the k kept (faster, surer convergence)


@dataclass(eq=False)
class POGambitTSPCA(POGambitTS):
    """poGAMBITTS on the first ``n_components`` principal axes of the embeddings received.

    Args:
        n_components: k, the dimension of the learned projection.
        refit_every: messages between refits once the doubling schedule (16, 32, 64, ...)
            reaches it.
        n_sim_draws, noise, prior_mean, prior_precision, intercept_mean, intercept_precision,
            noise_a0, noise_b0, context_features, release_compat: as in :class:`POGambitTS`,
            for the reward model on the k projected features.
    """

    supported_envs: ClassVar[tuple[str, ...]] = ("GambitIHS-MiniLM-PCA32-v0",
                                                 "GambitIHS-MiniLM-v0", "GambitIHS-3of20-v0",
                                                 "GambitIHS-20D-v0")

    n_components: int = 8
    refit_every: int = 128

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive_int("n_components", self.n_components)
        check_positive_int("refit_every", self.refit_every)

    def _setup(self, spec: EnvDescription) -> None:
        require_simulator(spec, type(self).__name__)
        self.width = len(spec.embedding_names)
        if self.width == 0:
            raise ValueError(f"{type(self).__name__} needs an env with a working embedding")
        k = min(self.n_components, self.width)
        projected = replace(spec, embedding_names=tuple(f"pc{j + 1}" for j in range(k)))
        super()._setup(projected)  # the reward model and the arms' table, in k dims
        self.raw_zbar = np.asarray(spec.simulator.mean_embedding_table, dtype=np.float64)
        if self.n_sim_draws is not None:  # the subsampled means, in the full width
            self.raw_zbar = self._raw_subsampled(spec.simulator)
        else:
            self.raw_zbar = np.broadcast_to(self.raw_zbar, (self.replicates,
                                                            *self.raw_zbar.shape))
        self.k = k
        r = self.replicates
        self.center = np.zeros((r, self.width))
        self.basis = np.zeros((r, self.width, k))  # no axes before the first refit
        self.scale = np.ones((r, k))
        self.history_z = np.zeros((r, 64, self.width), dtype=np.float32)
        self.history_c = np.zeros((r, 64), dtype=np.int64)
        self.history_y = np.zeros((r, 64))
        self.n_seen = 0
        self.next_refit = FIRST_REFIT
        wide = min(k + OVERSAMPLE, self.width)
        start = np.random.default_rng(0).standard_normal((self.width, wide))  # fixed, no draw
        self._start = np.linalg.qr(start)[0]
        self._project_arms()

    def _raw_subsampled(self, sim: Any) -> np.ndarray:
        table = np.asarray(sim.mean_embedding_table)
        return self._subsampled_means(sim, table.shape)

    def _project(self, z: np.ndarray) -> np.ndarray:
        """Standardised components of raw embeddings ``(R, ..., width)``: ``(R, ..., k)``."""
        r = self.replicates
        shape = z.shape
        flat = (z.reshape(r, -1, self.width) - self.center[:, None]) @ self.basis
        return (flat / self.scale[:, None]).reshape(*shape[:-1], self.k)

    def _project_arms(self) -> None:
        self.zbar = self._project(self.raw_zbar)  # (R, 12, K, k): what poGAMBITTS acts on

    def _update(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
                info: dict[str, Any]) -> None:
        z = received_embeddings(self, info, self.width)
        contexts = gambit_contexts(obs)
        t = self.n_seen
        if t >= self.history_z.shape[1]:
            grow = self.history_z.shape[1]
            self.history_z = np.pad(self.history_z, ((0, 0), (0, grow), (0, 0)))
            self.history_c = np.pad(self.history_c, ((0, 0), (0, grow)))
            self.history_y = np.pad(self.history_y, ((0, 0), (0, grow)))
        self.history_z[:, t], self.history_c[:, t], self.history_y[:, t] = z, contexts, rewards
        self.n_seen += 1
        if self.n_seen == self.next_refit:
            self._refit()
            self.next_refit = min(2 * self.n_seen, self.n_seen + self.refit_every)
        else:
            self.model.update(self.features(contexts, self._project(z[:, None])[:, 0]), rewards)

    def _refit(self) -> None:
        """New principal axes of the received embeddings; the posterior recomputed under them.

        Subspace iteration on the sample covariance ``ZcᵀZc/n`` (never formed: ``O(n·width·k)``
        per iteration) with :data:`OVERSAMPLE` extra directions, warm-started from the last
        basis, then Rayleigh-Ritz to order the axes. (An exact eigen-decomposition of a
        384 x 384 covariance per replicate costs about a second each here.)
        """
        n = self.n_seen
        z = self.history_z[:, :n].astype(np.float64)  # (R, n, width)
        center = z.mean(axis=1)
        zc = z - center[:, None]
        start = np.broadcast_to(self._start, (self.replicates, *self._start.shape))
        q = np.concatenate([self.basis, start[:, :, self.k:]], axis=2) if np.any(self.basis) \
            else start
        for _ in range(POWER_ITERATIONS):
            q = np.linalg.qr(np.swapaxes(zc, 1, 2) @ (zc @ q))[0]
        small = np.swapaxes(zc @ q, 1, 2) @ (zc @ q) / n  # (R, k + oversampling, ...)
        values, vectors = np.linalg.eigh(small)
        values, vectors = values[:, ::-1][:, :self.k], vectors[:, :, ::-1][:, :, :self.k]
        axes = q @ vectors  # (R, width, k), largest variance first
        pick = np.abs(axes).argmax(axis=1)  # sign: each axis's largest loading positive
        signs = np.sign(np.take_along_axis(axes, pick[:, None, :], axis=1))
        self.basis = axes * np.where(signs == 0, 1.0, signs)
        self.center = center
        self.scale = np.sqrt(np.maximum(values, 1e-12))
        self._project_arms()
        self._setup_reward_model(self._projected_spec)
        phi = self.features(self.history_c[:, :n], self._project(z))
        for t in range(n):
            self.model.update(phi[:, t], self.history_y[:, t])

    @property
    def _projected_spec(self) -> EnvDescription:
        return self._spec_k

    def _setup_reward_model(self, spec: EnvDescription) -> None:
        self._spec_k = spec
        super()._setup_reward_model(spec)
