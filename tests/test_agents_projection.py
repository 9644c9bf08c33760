"""poGAMBITTS-PCA (agents/projection.py): the projection it learns and the posterior on it."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import gambit_gym  # noqa: F401  (registers the ids)
from gambit_gym.agents import make
from gambit_gym.agents.projection import FIRST_REFIT
from gambit_gym.bench import run


def _played(env_id, steps, k=4, seed=0, replicates=3):
    """The agent after ``steps`` batched steps on the native vector env."""
    vec = gym.make_vec(env_id, replicates, vectorization_mode="vector_entry_point",
                       horizon=steps)
    obs, _ = vec.reset(seed=seed)
    agent = make("poGAMBITTS-PCA", n_components=k)
    agent.reset_batch(vec.unwrapped.describe(), seed, replicates)
    for _ in range(steps):
        a = agent.act_batch(obs)
        nxt, r, _, _, info = vec.step(a)
        agent.update_batch(obs, a, r, info)
        obs = nxt
    return agent


def test_basis_spans_the_principal_subspace_of_the_received_embeddings():
    agent = _played("GambitIHS-MiniLM-PCA32-v0", 4 * FIRST_REFIT)  # refits at 16, 32, 64
    z = agent.history_z[:, :agent.n_seen].astype(np.float64)
    for r in range(agent.replicates):
        cov = np.cov(z[r], rowvar=False, bias=True)
        top = np.linalg.eigvalsh(cov)[::-1][:agent.k]
        basis = agent.basis[r]
        np.testing.assert_allclose(basis.T @ basis, np.eye(agent.k), atol=1e-8)
        captured = np.trace(basis.T @ cov @ basis)
        assert captured >= 0.995 * top.sum(), (captured, top.sum())
        np.testing.assert_allclose(agent.scale[r] ** 2, np.diag(basis.T @ cov @ basis),
                                   rtol=1e-6)


def test_posterior_after_a_refit_is_the_closed_form_on_the_whole_history():
    steps = 2 * FIRST_REFIT  # the last update is a refit
    agent = _played("GambitIHS-MiniLM-PCA32-v0", steps)
    assert agent.n_seen == steps
    z = agent.history_z[:, :steps].astype(np.float64)
    for r in range(agent.replicates):
        proj = (z[r] - agent.center[r]) @ agent.basis[r] / agent.scale[r]
        phi = agent.features(agent.history_c[r, :steps], proj)  # (n, p)
        p = phi.shape[1]
        prec0 = np.full(p, agent.prior_precision)
        mu0 = np.full(p, agent.prior_mean)
        prec0[-1], mu0[-1] = agent.intercept_precision, agent.intercept_mean
        b = np.diag(prec0) + phi.T @ phi
        mu = np.linalg.solve(b, prec0 * mu0 + phi.T @ agent.history_y[r, :steps])
        np.testing.assert_allclose(agent.model.mu[r], mu, rtol=1e-7, atol=1e-7)


def test_before_the_first_refit_the_embedding_part_is_empty():
    agent = _played("GambitIHS-MiniLM-PCA32-v0", FIRST_REFIT - 1)
    assert not np.any(agent.basis) and np.all(agent.zbar == 0.0)


@pytest.mark.parametrize("kwargs, pattern", [({"n_components": 0}, "n_components"),
                                             ({"refit_every": -1}, "refit_every")])
def test_bad_arguments_are_refused(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        make("poGAMBITTS-PCA", **kwargs)


def test_it_beats_pogambitts_given_the_32_component_vector():
    """R = 8, T = 400: lower mean cumulative regret than poGAMBITTS on all 32 components."""
    def cumulative(agent):
        res = run("GambitIHS-MiniLM-PCA32-v0", agent, horizon=400, replicates=8, seed=0,
                  progress=False)
        return res.regret.sum(axis=1)

    good, bad = cumulative("poGAMBITTS-PCA"), cumulative("poGAMBITTS")
    se = np.sqrt(good.var(ddof=1) / len(good) + bad.var(ddof=1) / len(bad))
    assert bad.mean() - good.mean() > 2 * se, (good.mean(), bad.mean(), se)
