"""Envs whose agents see the full MiniLM sentence vector or its PCA (text/sentence_vectors.py).

The vectors are checked against fresh MiniLM encodings of the messages the env hands out, the
shipped PCA against fresh encodings of sampled bank rows, and the reward against the named-score
env's: the embedding an agent sees changes, the user does not.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import gambit_gym  # noqa: F401  (registers the ids)
from gambit_gym.text.bank import load_bank
from gambit_gym.text.sentence_vectors import (
    CACHE_ENV,
    DIM,
    PCA_DIMS,
    SHIPPED_PCA,
    BankPCA,
    load_pca,
    load_vectors,
)


def _run(env_id, steps=12, seed=5, **kwargs):
    env = gym.make(env_id, horizon=steps, **kwargs)
    env.reset(seed=seed)
    out = []
    for t in range(steps):
        out.append(env.step(t % env.action_space.n))
    return env.unwrapped, out


def test_embed_bank_writes_fresh_minilm_vectors_and_the_named_scores_are_their_projections(
        vector_bank, minilm):
    bank = load_bank(vector_bank)
    vectors = load_vectors(bank)
    assert vectors.shape == (len(bank), DIM) and vectors.dtype == np.float32
    rows = [0, 7, 100, len(bank) - 1]
    fresh = minilm.encode([str(bank.texts[i]) for i in rows])
    np.testing.assert_allclose(vectors[rows], fresh, atol=2e-5)
    # the bank's 20 style scores are the MiniLM embedder's linear projections of these vectors
    np.testing.assert_allclose(minilm.scores_from_encodings(np.asarray(vectors)), bank.scores,
                               atol=2e-3)


def test_minilm_env_hands_out_each_messages_own_vector_and_the_same_rewards(vector_bank,
                                                                           minilm):
    env, steps = _run("GambitIHS-MiniLM-v0", bank=vector_bank)
    _, ref_steps = _run("GambitIHS-v0", bank=vector_bank)
    texts = [info["text"] for *_, info in steps]
    fresh = minilm.encode(texts)
    for j, ((_, reward, _, _, info), (_, ref_reward, _, _, ref_info)) in enumerate(
            zip(steps, ref_steps)):
        assert info["embedding"].shape == (DIM,) and info["embedding"].dtype == np.float32
        np.testing.assert_allclose(info["embedding"], fresh[j], atol=2e-5)
        assert info["embedding_names"][0] == "minilm_000"
        assert reward == ref_reward and info["regret"] == ref_info["regret"]
        assert info["text"] == ref_info["text"]
    sim = env.simulator
    assert sim.mean_embedding_table.shape == (12, env.action_space.n, DIM)


def test_pca_env_on_another_bank_projects_its_vectors(vector_bank):
    bank = load_bank(vector_bank)
    pca, vectors = load_pca(bank), np.asarray(load_vectors(bank))
    _, steps = _run("GambitIHS-v0", bank=vector_bank, embedding="pca:4")
    index = {str(t): i for i, t in enumerate(bank.texts)}
    for *_, info in steps:
        want = pca.project(vectors[[index[info["text"]]]], 4)[0]
        np.testing.assert_allclose(info["embedding"], want, atol=4e-3, rtol=2e-3)
        assert list(info["embedding_names"]) == ["pc01", "pc02", "pc03", "pc04"]
    # standardised over the bank: each component has mean 0 and sd 1 there
    proj = pca.projections.astype(np.float64)
    np.testing.assert_allclose(proj.mean(axis=0), 0.0, atol=2e-3)
    np.testing.assert_allclose(proj.std(axis=0), 1.0, atol=2e-3)


def test_shipped_pca_matches_fresh_minilm_encodings_of_sampled_bank_rows(minilm):
    bank = load_bank()
    pca = load_pca(bank)
    assert pca.bank_checksum == bank.checksum
    assert pca.projections.shape == (len(bank), PCA_DIMS)
    assert pca.projections.dtype == np.float16
    np.testing.assert_allclose(pca.components @ pca.components.T, np.eye(PCA_DIMS), atol=1e-5)
    assert np.all(np.diff(pca.explained) <= 0)
    rows = np.random.default_rng(0).choice(len(bank), 24, replace=False)
    fresh = pca.project(minilm.encode([str(bank.texts[i]) for i in rows]))
    np.testing.assert_allclose(pca.projections[rows].astype(np.float32), fresh, atol=0.01)


def test_shipped_pca_file_is_small_enough_to_ship():
    assert SHIPPED_PCA.stat().st_size < 4_000_000
    assert BankPCA.load(SHIPPED_PCA).projections.nbytes == len(load_bank()) * PCA_DIMS * 2


def test_missing_vectors_raise_an_error_naming_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match="gambit-gym embed-bank"):
        gym.make("GambitIHS-MiniLM-v0")


def test_missing_pca_of_another_bank_names_the_command(vector_bank, tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match=f"gambit-gym embed-bank --bank {vector_bank}"):
        gym.make("GambitIHS-v0", bank=vector_bank, embedding="pca:3")


@pytest.mark.parametrize("value", ["pca:0", f"pca:{PCA_DIMS + 1}", "pca:x", "minilm", 3])
def test_bad_embedding_values_are_refused_naming_the_valid_ones(value):
    with pytest.raises(ValueError, match="'scores'.*'minilm384'.*'pca:k'"):
        gym.make("GambitIHS-v0", embedding=value)
