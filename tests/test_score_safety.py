"""``gambit-gym score-safety`` on a real bank file: safety columns added, texts and style
scores (and their checksum) untouched, precomputed encodings checked before use; and the
builder's safety columns for new banks.
"""

from __future__ import annotations

import numpy as np
import pytest

from gambit_gym.cli import main
from gambit_gym.text.bank import SAFETY_CATEGORIES, ResponseBank
from gambit_gym.text.safety import MiniLMSafetyClassifier, quantize
from gambit_gym.text.safety_labels import load_labels


@pytest.fixture(scope="module")
def small_bank(tmp_path_factory):
    """48 labelled real messages as a 2-prompt bank, saved without safety columns."""
    recs = load_labels()[:48]
    p = np.repeat([0, 1], 24)
    c = np.tile(np.arange(12).repeat(2), 2)
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("bank") / "plain.parquet"
    ResponseBank.from_arrays([r["text"] for r in recs], p, c, rng.normal(size=(48, 3)),
                             ("a", "b", "c"), {"seed": 0}).save(path)
    return path


def test_score_safety_adds_columns_and_keeps_the_content(small_bank, tmp_path, minilm, capsys):
    out = tmp_path / "scored.parquet"
    assert main(["score-safety", "--bank", str(small_bank), "--out", str(out), "--device",
                 "cpu", "--no-progress"]) == 0
    assert "48 messages scored by minilm-logreg-rules" in capsys.readouterr().out
    plain, scored = ResponseBank.load(small_bank), ResponseBank.load(out)
    assert plain.safety is None and scored.checksum == plain.checksum
    clf = MiniLMSafetyClassifier(encoder=minilm)
    np.testing.assert_array_equal(scored.safety, quantize(clf.score(list(scored.texts))))
    assert scored.safety_categories == SAFETY_CATEGORIES
    assert dict(zip(SAFETY_CATEGORIES, scored.safety_thresholds)) == clf.thresholds
    assert scored.safety_classifier["head_sha256"] == clf.metadata()["head_sha256"]
    th = np.array([clf.thresholds[k] for k in SAFETY_CATEGORIES], np.float32)
    np.testing.assert_array_equal(scored.unsafe, (scored.safety >= th).any(axis=1))


def test_precomputed_encodings_are_checked_then_used(small_bank, tmp_path, minilm, capsys):
    bank = ResponseBank.load(small_bank)
    enc = minilm.encode(list(bank.texts))
    good, bad = tmp_path / "enc.npy", tmp_path / "shuffled.npy"
    np.save(good, enc)
    np.save(bad, enc[::-1])
    fresh = tmp_path / "fresh.parquet"
    main(["score-safety", "--bank", str(small_bank), "--out", str(fresh), "--device", "cpu",
          "--no-progress"])
    inplace = tmp_path / "inplace.parquet"
    inplace.write_bytes(small_bank.read_bytes())
    assert main(["score-safety", "--bank", str(inplace), "--encodings", str(good),
                 "--device", "cpu", "--no-progress"]) == 0  # no --out: replaces the bank
    np.testing.assert_allclose(ResponseBank.load(inplace).safety,
                               ResponseBank.load(fresh).safety, atol=1.001e-3)
    capsys.readouterr()
    assert main(["score-safety", "--bank", str(small_bank), "--out", str(tmp_path / "x.pq"),
                 "--encodings", str(bad), "--device", "cpu", "--no-progress"]) == 2
    assert "do not match a fresh MiniLM encoding" in capsys.readouterr().err
    assert not (tmp_path / "x.pq").exists()


def test_missing_bank_is_one_line(tmp_path, capsys):
    assert main(["score-safety", "--bank", str(tmp_path / "none.parquet")]) == 2
    assert "does not exist" in capsys.readouterr().err
