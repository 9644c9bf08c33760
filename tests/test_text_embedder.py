import json

import numpy as np
import pytest

from gambit_gym.text.dimensions import STYLE_DIMENSIONS
from gambit_gym.text.embedder import (
    DEFAULT_REFERENCE,
    StyleEmbedder,
    VAEStyleEmbedder,
    graded_messages,
    load_anchors,
    make_embedder,
)


@pytest.fixture(scope="module")
def emb(minilm):
    return minilm


def test_anchors_are_ours_and_complete():
    anchors = load_anchors()
    assert set(anchors) == set(STYLE_DIMENSIONS)
    for name, a in anchors.items():
        assert len(a["high"]) >= 8 and len(a["low"]) >= 8, name
        assert not set(a["high"]) & set(a["low"])


def test_minilm_shapes_and_protocol(emb):
    assert isinstance(emb, StyleEmbedder) and emb.names == STYLE_DIMENSIONS
    out = emb.embed(["Walk ten minutes after lunch today.", "You can do it!", ""])
    assert out.shape == (3, 20) and out.dtype == np.float32 and np.isfinite(out).all()
    assert emb.embed([]).shape == (0, 20)
    np.testing.assert_allclose(emb.embed(["You can do it!"])[0], out[1], atol=1e-5)


@pytest.mark.parametrize("dim,high,low", [
    ("detail", "Walk 2,400 more steps, about 22 minutes or 1.1 miles, before 5:30 pm.",
     "Try to be a bit more active."),
    ("humor", "Your shoes are lonely and filed a complaint, take them dancing down the street!",
     "Please complete your daily step goal."),
    ("urgency", "Stand up right now and walk immediately, no waiting!",
     "Whenever you feel like it later this week, a walk could be nice."),
    ("politeness", "Could you please take a short walk today? Thank you kindly!",
     "Get moving. No excuses."),
    ("optimism", "Today will be wonderful, and you are sure to reach your goal!",
     "You probably won't reach your goal today, it rarely works out."),
])
def test_minilm_orientation_on_unseen_sentences(emb, dim, high, low):
    j = STYLE_DIMENSIONS.index(dim)
    s = emb.embed([high, low])
    assert s[0, j] > s[1, j]


def test_reference_stats_are_current(emb):
    """The shipped reference entry matches the shipped anchors (else it is recomputed)."""
    ref = json.loads(DEFAULT_REFERENCE.read_text())
    assert len(ref["texts"]) >= 200
    assert emb._stats_key() in ref["stats"]
    scores = emb.embed(ref["texts"][:200])
    assert abs(float(scores.mean())) < 0.5


def test_graded_messages_levels():
    texts, levels = graded_messages(load_anchors()["detail"], levels=11, per_level=3, seed=1)
    assert len(texts) == 33 and levels.min() == 0 and levels.max() == 10
    again, _ = graded_messages(load_anchors()["detail"], levels=11, per_level=3, seed=1)
    assert texts == again


@pytest.mark.slow
def test_vae_embedder_small(emb, tmp_path):
    ref = json.loads(DEFAULT_REFERENCE.read_text())
    small = tmp_path / "ref.json"
    small.write_text(json.dumps({"texts": ref["texts"][::24], "stats": {}}))
    vae = VAEStyleEmbedder(device="cpu", per_level=2, epochs=100, reference_path=small)
    vae._model = emb._model or emb._load()  # share the loaded encoder
    vae.device = "cpu"
    out = vae.embed(["Walk 2,400 more steps, about 22 minutes, before 5:30 pm.",
                     "Try to be a bit more active."])
    assert out.shape == (2, 20) and out.dtype == np.float32 and np.isfinite(out).all()
    # each latent is oriented to grow with the graded level it was fitted on
    corr = np.array(list(vae.level_correlation.values()))
    assert len(corr) == 20 and np.median(corr) > 0.3, vae.level_correlation
    assert vae.metadata()["name"] == "minilm-vae-1d"


def test_make_embedder_errors():
    with pytest.raises(ValueError, match="unknown embedder"):
        make_embedder("bert")
