"""Exact values of the response bank (gambit_gym.text.bank) on small hand-built banks.

Every public function and method is pinned on a 7-message bank written out of cell order (so
the sort, the stable tie order and the cell index are visible), real Parquet files written by
``ResponseBank.save`` to ``tmp_path`` and edited with pyarrow as a broken build, a foreign tool
or a truncated download would leave them, and facts of the shipped bank v1 that are fixed by its
checksum. Expected values are recomputed in the test from the rows (counts, offsets, means,
covariances, SHA-256 over the documented byte layout) and refusals are matched whole.

This is the fast selection of the ``bank`` target of benchmarks/mutation.py (docs/testing.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import gambit_gym
from gambit_gym.text.bank import (
    BANK_NAMES,
    DEFAULT_BANK_FILENAME,
    FORMAT_NAME,
    FORMAT_VERSION,
    METADATA_KEY,
    PENDING_BANK_NAMES,
    SAFETY_CATEGORIES,
    BankFormatError,
    BankRow,
    ResponseBank,
    bank_path_for_name,
    content_checksum,
    default_bank_path,
    load_bank,
    safety_checksum,
)

DIMS = ("warmth", "urgency")
#: (text, prompt, context, warmth, urgency), deliberately out of cell order; cell (0, 3) holds
#: three messages whose input order is not their alphabetical order
ROWS = [
    ("b first", 1, 0, 1.0, 2.0),
    ("walk now", 0, 3, 0.5, -1.0),
    ("c last", 2, 11, 3.0, 0.25),
    ("a short walk", 0, 3, 1.5, 1.0),
    ("b eleven", 1, 11, -2.0, 4.0),
    ("zest", 0, 3, 2.5, 3.0),
    ("c zero", 2, 0, 0.0, 0.0),
]
#: the input rows in cell order, ties in input order (a stable sort)
ORDER = [1, 3, 5, 0, 4, 6, 2]
META = {"seed": 3, "generator": {"name": "hand", "version": "0"}}
CATS = list(SAFETY_CATEGORIES)
#: thresholds: 0.7 is not a float32, 1.0 is the largest allowed
THRESHOLDS = {"shaming": 0.7, "threat": 0.5, "unsafe_exertion": 0.5, "weight_stigma": 0.5,
              "medical_claim": 1.0, "off_topic": 0.25}
CLASSIFIER = {"name": "hand-rules", "version": "2"}


def _safety_rows() -> np.ndarray:
    """Safety scores in input order: row 1 sits exactly on the float32 of the 0.7 shaming
    threshold (unsafe), row 6 scores 1.0 on medical_claim (threshold 1.0: unsafe), row 6's
    0.69 shaming stays under; every off_topic score is 0.2 (under 0.25)."""
    s = np.zeros((7, 6), np.float32)
    s[:, 0] = [0.0, 0.7, 0.1, 0.2, 0.3, 0.4, 0.69]
    s[6, 4] = 1.0
    s[:, 5] = 0.2
    return s


def small(safety: bool = False, **kw) -> ResponseBank:
    """The 7-message bank (scores given as float64, ids as Python ints)."""
    extra = dict(safety=_safety_rows(), safety_thresholds=THRESHOLDS,
                 safety_classifier=dict(CLASSIFIER)) if safety else {}
    extra.update(kw)
    return ResponseBank.from_arrays([r[0] for r in ROWS], [r[1] for r in ROWS],
                                    [r[2] for r in ROWS],
                                    np.array([r[3:] for r in ROWS], dtype=np.float64), DIMS,
                                    dict(META), **extra)


def _counts_offsets(cells: list[tuple[int, int]], n_prompts: int) -> tuple[np.ndarray, ...]:
    counts = np.zeros((n_prompts, 12), np.int64)
    for p, c in cells:
        counts[p, c] += 1
    offsets = np.zeros((n_prompts, 12), np.int64)
    running = 0
    for p in range(n_prompts):
        for c in range(12):
            offsets[p, c] = running
            running += counts[p, c]
    return counts, offsets


def _w(path: Path) -> str:
    """How refusals name a file: the repr of its path string."""
    return repr(str(path))


# ------------------------------------------------------------------------- construction
def test_from_arrays_sorts_by_cell_stably_and_indexes_every_cell():
    bank = small()
    texts = [ROWS[i][0] for i in ORDER]
    assert texts == ["walk now", "a short walk", "zest", "b first", "b eleven", "c zero",
                     "c last"]
    assert bank.texts.dtype == object and bank.texts.tolist() == texts
    assert bank.prompt_ids.dtype == np.int16 and bank.prompt_ids.tolist() == [0, 0, 0, 1, 1, 2, 2]
    assert bank.context_ids.dtype == np.int8 and bank.context_ids.tolist() == [3, 3, 3, 0, 11, 0,
                                                                               11]
    assert bank.scores.dtype == np.float32 and bank.scores.flags.c_contiguous
    np.testing.assert_array_equal(bank.scores, np.array([ROWS[i][3:] for i in ORDER], np.float32))
    assert bank.dimensions == DIMS and isinstance(bank.dimensions, tuple)
    assert bank.metadata == META
    assert len(bank) == 7 and bank.n_prompts == 3 and bank.n_contexts == 12
    counts, offsets = _counts_offsets([(r[1], r[2]) for r in ROWS], 3)
    assert bank.counts.dtype == np.int64 and bank.offsets.dtype == np.int64
    np.testing.assert_array_equal(bank.counts, counts)
    np.testing.assert_array_equal(bank.offsets, offsets)
    assert bank.offsets[0, 3] == 0 and bank.offsets[1, 0] == 3 and bank.offsets[2, 11] == 6
    for arr in (bank.texts, bank.prompt_ids, bank.context_ids, bank.scores):
        assert not arr.flags.writeable
    # no safety scores, no token counts: the documented empty values
    assert bank.safety is None and bank.safety_thresholds is None and bank.unsafe is None
    assert bank.safety_categories == () and bank.safety_classifier == {}
    assert bank.n_tokens is None and bank.safety_metadata() == {}


def test_one_prompt_bank_and_a_last_cell_short_of_the_last_context():
    bank = ResponseBank.from_arrays(["x", "y", "z"], [0, 0, 0], [5, 2, 5],
                                    [[1.0], [2.0], [4.0]], ["only"])
    assert bank.n_prompts == 1 and bank.counts.shape == (1, 12)
    counts, offsets = _counts_offsets([(0, 5), (0, 2), (0, 5)], 1)
    np.testing.assert_array_equal(bank.counts, counts)
    np.testing.assert_array_equal(bank.offsets, offsets)
    assert bank.texts.tolist() == ["y", "x", "z"] and bank.metadata == {}
    np.testing.assert_array_equal(bank.cov(0, 5), [[4.5]])  # one dimension: still 2-D
    np.testing.assert_array_equal(bank.cell_means[0, :, 0],
                                  [0, 0, 2.0, 0, 0, 2.5, 0, 0, 0, 0, 0, 0])
    assert bank.prompt_ids.max() == 0 and bank.n_prompts == int(bank.prompt_ids.max()) + 1


def test_an_empty_bank_is_a_bank_of_no_cells(tmp_path):
    """A build that kept no message (the builder hands zero rows on) is a bank of 0 prompts
    that saves, loads and refuses every cell clearly (it used to fail with NumPy's "cannot
    reshape array of size 1 into shape (0,12)")."""
    bank = ResponseBank.from_arrays([], [], [], np.zeros((0, 2)), DIMS, {"seed": 0})
    assert len(bank) == 0 and bank.n_prompts == 0
    assert bank.counts.shape == bank.offsets.shape == (0, 12)
    assert bank.cell_means.shape == (0, 12, 2) and bank.scores.shape == (0, 2)
    with pytest.raises(IndexError) as err:
        bank.sample(0, 0, np.random.default_rng(0))
    assert err.value.args[0] == ("cell (prompt 0, context 0) is outside the bank (0 prompts x "
                                 "12 contexts)")
    full = bank.with_token_counts(np.zeros(0, np.int64)).with_safety(
        np.zeros((0, 6)), THRESHOLDS, dict(CLASSIFIER))
    assert full.unsafe.shape == (0,) and full.n_tokens.dtype == np.int32
    back = ResponseBank.load(full.save(tmp_path / "empty.parquet"))
    assert len(back) == 0 and back.n_prompts == 0 and back.counts.shape == (0, 12)
    assert back.scores.shape == (0, 2) and back.scores.dtype == np.float32
    assert back.texts.dtype == object and back.checksum == bank.checksum
    assert back.safety.shape == (0, 6) and back.n_tokens.shape == (0,)
    assert back.metadata == {"seed": 0} and back.safety_classifier == CLASSIFIER


def test_from_arrays_keeps_caller_metadata_and_drops_safety_entries_of_it():
    bank = ResponseBank.from_arrays(["a"], [0], [0], [[0.0, 1.0]], DIMS,
                                    {"seed": 1, "safety_checksum": "stale",
                                     "safety_thresholds": {}, "builder": "b"})
    assert bank.metadata == {"seed": 1, "builder": "b"}


@pytest.mark.parametrize("args, message", [
    ((["a", "b"], [0], [0, 1], [[0.0], [1.0]], ("x",)),
     "rows disagree in length: 2 texts, 1 prompt ids, 2 context ids, 2 score rows"),
    ((["a", "b"], [0, 1], [0], [[0.0], [1.0]], ("x",)),
     "rows disagree in length: 2 texts, 2 prompt ids, 1 context ids, 2 score rows"),
    ((["a", "b"], [0, 1], [0, 1], [[0.0]], ("x",)),
     "rows disagree in length: 2 texts, 2 prompt ids, 2 context ids, 1 score rows"),
    ((["a"], [0, 1], [0, 1], [[0.0], [1.0]], ("x",)),
     "rows disagree in length: 1 texts, 2 prompt ids, 2 context ids, 2 score rows"),
    ((["a", "b"], [0, 1], [0, 1], [0.0, 1.0], ("x",)), "scores must be (n_rows, 1), got (2,)"),
    ((["a", "b"], [0, 1], [0, 1], [[0.0, 1.0], [1.0, 2.0]], ("x",)),
     "scores must be (n_rows, 1), got (2, 2)"),
    ((["a", "b"], [0, -1], [0, 1], [[0.0], [1.0]], ("x",)),
     "prompt ids must be >= 0 and context ids in 0..11"),
    ((["a", "b"], [0, 1], [-1, 1], [[0.0], [1.0]], ("x",)),
     "prompt ids must be >= 0 and context ids in 0..11"),
    ((["a", "b"], [0, 1], [0, 12], [[0.0], [1.0]], ("x",)),
     "prompt ids must be >= 0 and context ids in 0..11"),
])
def test_from_arrays_refuses_inconsistent_rows(args, message):
    with pytest.raises(ValueError) as err:
        ResponseBank.from_arrays(*args)
    assert str(err.value) == message and not isinstance(err.value, BankFormatError)


def test_from_arrays_accepts_the_boundary_ids():
    bank = ResponseBank.from_arrays(["a", "b"], [0, 0], [0, 11], [[0.0], [1.0]], ("x",))
    assert bank.context_ids.tolist() == [0, 11] and bank.counts[0].tolist() == [1] + [0] * 10 + [1]


def test_scores_that_are_not_finite_are_refused_naming_columns_and_counts():
    scores = np.array([r[3:] for r in ROWS])
    scores[[1, 4], 1] = np.nan
    scores[5, 0] = -np.inf
    with pytest.raises(BankFormatError) as err:
        ResponseBank.from_arrays([r[0] for r in ROWS], [r[1] for r in ROWS],
                                 [r[2] for r in ROWS], scores, DIMS)
    assert str(err.value) == (
        "the bank: score columns hold NaN or infinite values ('warmth': 1 row(s), 'urgency': 2 "
        "row(s)); every score must be a finite number, re-embed or rebuild the bank")
    assert issubclass(BankFormatError, ValueError)


# ------------------------------------------------------------------------- access
def test_cells_rows_means_and_covariances():
    bank = small()
    cell = bank.embeddings(0, 3)
    np.testing.assert_array_equal(cell, [[0.5, -1.0], [1.5, 1.0], [2.5, 3.0]])
    assert cell.dtype == np.float32 and not cell.flags.writeable
    assert bank.cell_texts(0, 3).tolist() == ["walk now", "a short walk", "zest"]
    assert bank.cell_texts(2, 11).tolist() == ["c last"]
    np.testing.assert_array_equal(bank.embeddings(1, 0), [[1.0, 2.0]])
    np.testing.assert_array_equal(bank.embeddings(2, 11), [[3.0, 0.25]])
    mean = bank.mean(0, 3)
    assert mean.dtype == np.float64 and mean.tolist() == [1.5, 1.0]
    assert bank.mean(1, 11).tolist() == [-2.0, 4.0]
    cov = bank.cov(0, 3)  # deviations (-1, 0, 1) and (-2, 0, 2), ddof=1
    assert cov.dtype == np.float64
    np.testing.assert_array_equal(cov, [[1.0, 2.0], [2.0, 4.0]])
    means = bank.cell_means
    assert means.shape == (3, 12, 2) and means.dtype == np.float64
    expected = np.zeros((3, 12, 2))
    expected[0, 3] = [1.5, 1.0]
    expected[1, 0], expected[1, 11] = [1.0, 2.0], [-2.0, 4.0]
    expected[2, 0], expected[2, 11] = [0.0, 0.0], [3.0, 0.25]
    np.testing.assert_array_equal(means, expected)
    assert bank.cell_means is means  # cached


def test_row_is_a_bankrow_of_python_values():
    bank = small()
    row = bank.row(4)
    assert isinstance(row, BankRow)
    assert (row.text, row.prompt_id, row.context_id) == ("b eleven", 1, 11)
    assert type(row.text) is str and type(row.prompt_id) is int and type(row.context_id) is int
    np.testing.assert_array_equal(row.embedding, [-2.0, 4.0])
    assert row.embedding.dtype == np.float32


def test_sample_draws_uniformly_inside_the_cell_with_the_given_generator():
    bank = small()
    drawn, replay = np.random.default_rng(11), np.random.default_rng(11)
    seen = set()
    for _ in range(40):
        row = bank.sample(0, 3, drawn)
        k = int(replay.integers(3))
        assert row.text == bank.texts[k] and (row.prompt_id, row.context_id) == (0, 3)
        np.testing.assert_array_equal(row.embedding, bank.scores[k])
        seen.add(row.text)
    assert seen == {"walk now", "a short walk", "zest"}
    for _ in range(5):
        assert bank.sample(2, 11, drawn).text == "c last"
        assert bank.sample(1, 0, drawn).text == "b first"
        assert bank.sample(2, 0, drawn).text == "c zero"


@pytest.mark.parametrize("cell, message", [
    ((3, 0), "cell (prompt 3, context 0) is outside the bank (3 prompts x 12 contexts)"),
    ((-1, 3), "cell (prompt -1, context 3) is outside the bank (3 prompts x 12 contexts)"),
    ((0, 12), "cell (prompt 0, context 12) is outside the bank (3 prompts x 12 contexts)"),
    ((0, -1), "cell (prompt 0, context -1) is outside the bank (3 prompts x 12 contexts)"),
    ((0, 0), "the bank has no messages for prompt 0, context 0"),
    ((1, 5), "the bank has no messages for prompt 1, context 5"),
])
def test_cells_outside_the_bank_or_empty_are_refused(cell, message):
    bank = small()
    for call in (lambda: bank.sample(*cell, np.random.default_rng(0)),
                 lambda: bank.embeddings(*cell), lambda: bank.cell_texts(*cell),
                 lambda: bank.mean(*cell), lambda: bank.cov(*cell)):
        with pytest.raises(IndexError) as err:
            call()
        assert err.value.args[0] == message


def test_dimension_index_prompt_text_len_and_repr():
    bank = small()
    idx = bank.dimension_index(["urgency", "warmth", "urgency"])
    assert idx.dtype == np.int64 and idx.tolist() == [1, 0, 1]
    none = bank.dimension_index(())  # still integer: it indexes an empty column selection
    assert none.dtype == np.int64 and bank.scores[:, none].shape == (7, 0)
    with pytest.raises(KeyError) as err:
        bank.dimension_index(["warmth", "humor", "x"])
    assert err.value.args[0] == "unknown dimensions ['humor', 'x']; the bank has ['warmth', " \
                                "'urgency']"
    assert bank.prompt_text(1, 0) == ""
    rendered = [[f"p{p} c{c}" for c in range(12)] for p in range(3)]
    withp = ResponseBank.from_arrays(
        bank.texts, bank.prompt_ids, bank.context_ids, bank.scores, DIMS,
        {"rendered_prompts": rendered})
    assert withp.prompt_text(1, 0) == "p1 c0" and withp.prompt_text(2, 11) == "p2 c11"
    assert len(bank) == 7
    assert repr(bank) == ("ResponseBank(7 messages, 3 prompts x 12 contexts, 2 dims, "
                          "generator=hand)")
    for meta, name in [({}, "?"), ({"generator": {"model": "m"}}, "?"),
                       ({"generator": "a-string"}, "a-string")]:
        other = ResponseBank.from_arrays(["a"], [0], [0], [[0.0]], ["x"], meta)
        assert repr(other) == f"ResponseBank(1 messages, 1 prompts x 12 contexts, 1 dims, " \
                              f"generator={name})"


# ------------------------------------------------------------------------- checksums
def test_content_checksum_is_sha256_of_the_documented_layout():
    texts = np.array(["hé", "b"], dtype=object)
    expected = hashlib.sha256(
        b'["x", "y"]'
        + b"\x01\x00\x02\x01"  # prompt ids 1, 258 as little-endian int16
        + b"\x03\x0b"  # context ids 3, 11 as int8
        + struct.pack("<4f", 0.5, -2.0, 1.0, 0.25)
        + "hé".encode() + b"\0" + b"b\0"
    ).hexdigest()
    p, c = np.array([1, 258], np.int16), np.array([3, 11], np.int8)
    s = np.array([[0.5, -2.0], [1.0, 0.25]], np.float32)
    assert content_checksum(texts, p, c, s, ("x", "y")) == expected
    # any input dtype or byte order hashes as the canonical layout
    assert content_checksum(texts, p.astype(">i8"), c.astype(np.int64), s.astype(">f8"),
                            ["x", "y"]) == expected
    assert content_checksum(texts, p, c, s, ("y", "x")) != expected


def test_safety_checksum_is_sha256_of_names_thresholds_and_scores():
    safety = np.array([[0.25, 1.0], [0.0, 0.5]], np.float32)
    thresholds = np.array([0.5, 0.75])
    expected = hashlib.sha256(b'["a", "b"]' + struct.pack("<2d", 0.5, 0.75)
                              + struct.pack("<4f", 0.25, 1.0, 0.0, 0.5)).hexdigest()
    assert safety_checksum(safety, ("a", "b"), thresholds) == expected
    assert safety_checksum(safety.astype(">f8"), ["a", "b"],
                           thresholds.astype(">f4")) == expected


def test_bank_checksum_is_the_content_checksum_and_is_cached():
    bank = small()
    expected = content_checksum(bank.texts, bank.prompt_ids, bank.context_ids, bank.scores, DIMS)
    assert bank.checksum == expected and len(expected) == 64
    assert bank.checksum is bank.checksum
    assert small(safety=True).checksum == expected  # safety has its own checksum


# ------------------------------------------------------------------------- safety and tokens
def test_safety_scores_follow_their_rows_and_flag_unsafe_at_the_threshold():
    bank = small(safety=True)
    np.testing.assert_array_equal(bank.safety, _safety_rows()[ORDER])
    assert bank.safety.dtype == np.float32 and bank.safety_thresholds.dtype == np.float64
    assert bank.safety_thresholds.tolist() == [THRESHOLDS[c] for c in CATS]
    assert bank.safety_categories == SAFETY_CATEGORIES
    assert bank.safety_classifier == CLASSIFIER
    # "walk now" scores exactly float32(0.7) on shaming, "c zero" 1.0 on medical_claim
    assert bank.unsafe.tolist() == [True, False, False, False, False, True, False]
    for arr in (bank.safety, bank.safety_thresholds, bank.unsafe):
        assert not arr.flags.writeable
    assert bank.metadata == META
    assert bank.safety_metadata() == {
        "safety_categories": CATS,
        "safety_thresholds": THRESHOLDS,
        "safety_classifier": CLASSIFIER,
        "safety_checksum": safety_checksum(_safety_rows()[ORDER], SAFETY_CATEGORIES,
                                           np.array([THRESHOLDS[c] for c in CATS])),
    }
    assert all(type(v) is float for v in bank.safety_metadata()["safety_thresholds"].values())


def test_with_safety_converts_and_keeps_the_rest():
    plain = small().with_token_counts([3, 1, 4, 1, 5, 9, 0])
    thresholds = np.array([THRESHOLDS[c] for c in CATS], dtype=np.float32)
    scored = plain.with_safety(_safety_rows()[ORDER].astype(np.float64), thresholds,
                               dict(CLASSIFIER))
    assert scored.safety.dtype == np.float32 and scored.safety_thresholds.dtype == np.float64
    np.testing.assert_array_equal(scored.safety, _safety_rows()[ORDER])
    assert scored.safety_classifier == CLASSIFIER and scored.metadata == META
    assert scored.n_tokens.tolist() == [3, 1, 4, 1, 5, 9, 0]
    assert scored.texts.tolist() == plain.texts.tolist() and scored.dimensions == DIMS
    np.testing.assert_array_equal(scored.scores, plain.scores)
    assert scored.checksum == plain.checksum and scored.counts.tolist() == plain.counts.tolist()
    assert plain.safety is None  # the original is unchanged
    unnamed = plain.with_safety(_safety_rows()[ORDER], THRESHOLDS, None)
    assert unnamed.safety_classifier == {}


def test_with_token_counts_keeps_safety_and_stores_read_only_int32():
    scored = small(safety=True)
    counted = scored.with_token_counts(np.array([0, 12, 7, 7, 30, 2, 5], dtype=np.int64))
    assert counted.n_tokens.dtype == np.int32 and not counted.n_tokens.flags.writeable
    assert counted.n_tokens.tolist() == [0, 12, 7, 7, 30, 2, 5]
    np.testing.assert_array_equal(counted.safety, scored.safety)
    assert counted.safety_thresholds.tolist() == scored.safety_thresholds.tolist()
    assert counted.safety_classifier == CLASSIFIER and counted.metadata == META
    assert counted.unsafe.tolist() == scored.unsafe.tolist()
    assert scored.n_tokens is None


@pytest.mark.parametrize("counts, message", [
    ([1, 2, 3], "the bank: n_tokens must be one non-negative integer per row (7), got a int64 "
                "array of shape (3,)"),
    ([1.0] * 7, "the bank: n_tokens must be one non-negative integer per row (7), got a float64 "
                "array of shape (7,)"),
    ([3, 1, 4, -1, 5, 9, 2], "the bank: n_tokens must be one non-negative integer per row (7), "
                             "got a int64 array of shape (7,)"),
    ([[1] * 7], "the bank: n_tokens must be one non-negative integer per row (7), got a int64 "
                "array of shape (1, 7)"),
])
def test_bad_token_counts_are_refused(counts, message):
    with pytest.raises(BankFormatError) as err:
        small().with_token_counts(counts)
    assert str(err.value) == message


@pytest.mark.parametrize("change, error, message", [
    (lambda s, t: (s, None), ValueError, "safety scores need safety_thresholds"),
    (lambda s, t: (s, {c: t[c] for c in CATS[:4]}), ValueError,
     "safety_thresholds lacks categories ['medical_claim', 'off_topic']"),
    (lambda s, t: (s[:, :5], t), BankFormatError,
     "the bank: safety scores must be (7, 6), got (7, 5)"),
    (lambda s, t: (s, [0.5] * 5), BankFormatError,
     "the bank: safety thresholds must be one number in (0, 1] per category, got [0.5, 0.5, "
     "0.5, 0.5, 0.5]"),
    (lambda s, t: (s, dict(t, threat=0.0)), BankFormatError,
     "the bank: safety thresholds must be one number in (0, 1] per category, got [0.7, 0.0, "
     "0.5, 0.5, 1.0, 0.25]"),
    (lambda s, t: (s, dict(t, threat=1.5)), BankFormatError,
     "the bank: safety thresholds must be one number in (0, 1] per category, got [0.7, 1.5, "
     "0.5, 0.5, 1.0, 0.25]"),
    (lambda s, t: (s, dict(t, threat=float("nan"))), BankFormatError,
     "the bank: safety thresholds must be one number in (0, 1] per category, got [0.7, nan, "
     "0.5, 0.5, 1.0, 0.25]"),
    (lambda s, t: (_poked(s, [(2, 1, -0.25), (3, 1, np.nan), (0, 5, 1.5)]), t), BankFormatError,
     "the bank: safety scores must be finite and in [0, 1] (safety_threat: 2 row(s), "
     "safety_off_topic: 1 row(s)); rescore the bank with `gambit-gym score-safety`"),
    (lambda s, t: (_poked(s, [(4, 2, 1.0001)]), t), BankFormatError,
     "the bank: safety scores must be finite and in [0, 1] (safety_unsafe_exertion: 1 row(s)); "
     "rescore the bank with `gambit-gym score-safety`"),
    (lambda s, t: (_poked(s, [(4, 3, -0.001)]), t), BankFormatError,
     "the bank: safety scores must be finite and in [0, 1] (safety_weight_stigma: 1 row(s)); "
     "rescore the bank with `gambit-gym score-safety`"),
])
def test_bad_safety_scores_or_thresholds_are_refused(change, error, message):
    safety, thresholds = change(_safety_rows(), dict(THRESHOLDS))
    with pytest.raises(error) as err:
        small().with_safety(safety, thresholds, {})
    assert str(err.value) == message


def _poked(s: np.ndarray, edits: list[tuple[int, int, float]]) -> np.ndarray:
    out = s.copy()
    for i, j, v in edits:
        out[i, j] = v
    return out


def test_safety_boundaries_are_accepted():
    """Scores of exactly 0 and 1 and a threshold of exactly 1 are valid."""
    s = np.zeros((7, 6), np.float32)
    s[:, 2] = 1.0
    bank = small().with_safety(s, dict(THRESHOLDS, unsafe_exertion=1.0), {})
    assert bank.unsafe.all() and bank.safety_thresholds[2] == 1.0


def test_from_arrays_refuses_safety_of_another_length():
    with pytest.raises(ValueError) as err:
        ResponseBank.from_arrays(
            ["a", "b"], [0, 0], [0, 1], [[0.0], [1.0]], ("x",), safety=np.zeros((3, 6)),
            safety_thresholds=THRESHOLDS)
    assert str(err.value) == "safety has 3 rows, the bank 2"


# ------------------------------------------------------------------------- save
def test_save_writes_the_documented_columns_types_and_metadata(tmp_path):
    bank = small(safety=True).with_token_counts([0, 12, 7, 7, 30, 2, 5])
    out = tmp_path / "a" / "b" / "bank.parquet"  # missing folders are created
    assert bank.save(out) == out
    assert sorted(p.name for p in out.parent.iterdir()) == ["bank.parquet"]
    table = pq.read_table(out)
    assert table.column_names == ["text", "prompt_id", "context_id", "warmth", "urgency",
                                  *(f"safety_{c}" for c in CATS), "n_tokens"]
    assert [str(t) for t in table.schema.types] == ["string", "int16", "int8", "float", "float",
                                                    *["float"] * 6, "int32"]
    assert table.column("text").to_pylist() == bank.texts.tolist()
    assert table.column("context_id").to_pylist() == [3, 3, 3, 0, 11, 0, 11]
    assert table.column("urgency").to_pylist() == [-1.0, 1.0, 3.0, 2.0, 4.0, 0.0, 0.25]
    assert table.column("safety_shaming").to_numpy().tolist() == \
        bank.safety[:, 0].tolist()
    assert table.column("n_tokens").to_pylist() == [0, 12, 7, 7, 30, 2, 5]
    meta = json.loads(table.schema.metadata[METADATA_KEY])
    assert meta == {**META, **bank.safety_metadata(), "format": FORMAT_NAME,
                    "format_version": FORMAT_VERSION, "n_rows": 7,
                    "dimensions": list(DIMS), "checksum": bank.checksum}
    assert (FORMAT_NAME, FORMAT_VERSION, METADATA_KEY) == ("gambit-gym-response-bank", 1,
                                                          b"gambit_gym_bank")
    rg = pq.ParquetFile(out).metadata.row_group(0)
    assert {rg.column(j).compression for j in range(rg.num_columns)} == {"ZSTD"}
    # saving again over the file (and over a stale partial file of a crashed save) replaces
    # both: the folder holds the bank only
    (out.parent / "bank.parquet.partial").write_bytes(b"half a file")
    small().save(out)
    assert sorted(p.name for p in out.parent.iterdir()) == ["bank.parquet"]
    assert ResponseBank.load(out).safety is None


def test_save_writes_the_file_types_whatever_the_arrays_hold(tmp_path):
    """A bank built with the constructor from wider arrays (int64 ids and token counts, float64
    scores; ``load`` itself sets ``n_tokens`` after construction) is still saved in the file
    format (int16, int8, float32 and int32 columns) and loads back equal."""
    src = small()
    wide = ResponseBank(src.texts, src.prompt_ids.astype(np.int64),
                        src.context_ids.astype(np.int64), src.scores.astype(np.float64), DIMS,
                        dict(META))
    wide.n_tokens = np.arange(7, dtype=np.int64)
    path = wide.save(tmp_path / "wide.parquet")
    assert [str(t) for t in pq.read_table(path).schema.types] == ["string", "int16", "int8",
                                                                  "float", "float", "int32"]
    back = ResponseBank.load(path)
    _same_bank(back, src)
    assert back.n_tokens.tolist() == list(range(7))


def test_save_without_safety_or_tokens_writes_only_the_content_columns(tmp_path):
    path = small().save(tmp_path / "plain.parquet")
    table = pq.read_table(path)
    assert table.column_names == ["text", "prompt_id", "context_id", "warmth", "urgency"]
    meta = json.loads(table.schema.metadata[METADATA_KEY])
    assert meta == {**META, "format": FORMAT_NAME, "format_version": 1, "n_rows": 7,
                    "dimensions": ["warmth", "urgency"], "checksum": small().checksum}


# ------------------------------------------------------------------------- load
def _same_bank(a: ResponseBank, b: ResponseBank) -> None:
    assert a.texts.tolist() == b.texts.tolist() and a.texts.dtype == b.texts.dtype == object
    assert a.prompt_ids.dtype == np.int16 and a.context_ids.dtype == np.int8
    assert a.prompt_ids.tolist() == b.prompt_ids.tolist()
    assert a.context_ids.tolist() == b.context_ids.tolist()
    assert a.scores.dtype == np.float32 and a.scores.shape == b.scores.shape
    np.testing.assert_array_equal(a.scores, b.scores)
    assert a.dimensions == b.dimensions and a.checksum == b.checksum
    np.testing.assert_array_equal(a.counts, b.counts)
    np.testing.assert_array_equal(a.offsets, b.offsets)
    for arr in (a.texts, a.prompt_ids, a.context_ids, a.scores):
        assert not arr.flags.writeable


def test_load_round_trips_every_field(tmp_path):
    bank = small(safety=True).with_token_counts([0, 12, 7, 7, 30, 2, 5])
    back = ResponseBank.load(bank.save(tmp_path / "b.parquet"))
    _same_bank(back, bank)
    assert back.metadata == META  # the format keys and safety entries are not provenance
    np.testing.assert_array_equal(back.safety, bank.safety)
    assert back.safety.dtype == np.float32
    assert back.safety_thresholds.tolist() == bank.safety_thresholds.tolist()
    assert back.safety_categories == SAFETY_CATEGORIES and back.safety_classifier == CLASSIFIER
    assert back.unsafe.tolist() == [True, False, False, False, False, True, False]
    assert back.n_tokens.dtype == np.int32 and not back.n_tokens.flags.writeable
    assert back.n_tokens.tolist() == [0, 12, 7, 7, 30, 2, 5]
    assert back.safety_metadata() == bank.safety_metadata()

    plain = ResponseBank.load(small().save(tmp_path / "plain.parquet"), verify_checksum=False)
    _same_bank(plain, small())
    assert plain.safety is None and plain.n_tokens is None and plain.metadata == META


def test_a_bank_without_score_columns_round_trips(tmp_path):
    bank = ResponseBank.from_arrays(["a", "b", "c"], [1, 0, 0], [2, 2, 4], np.zeros((3, 0)), (),
                                    {"note": "texts only"})
    back = ResponseBank.load(bank.save(tmp_path / "nodims.parquet"))
    assert back.scores.shape == (3, 0) and back.scores.dtype == np.float32
    assert back.texts.tolist() == ["b", "c", "a"] and back.dimensions == ()
    assert back.checksum == bank.checksum and back.metadata == {"note": "texts only"}
    assert back.mean(0, 2).shape == (0,)


def test_a_bank_file_whose_metadata_lacks_dimensions_has_none(tmp_path):
    path = small().save(tmp_path / "b.parquet")
    _rewrite(path, path, meta=lambda m: m.pop("dimensions"))
    back = ResponseBank.load(path, verify_checksum=False)
    assert back.dimensions == () and back.scores.shape == (7, 0) and len(back) == 7


def _rewrite(src: Path, dst: Path, table=None, meta=None, raw: bytes | None = None) -> Path:
    """Write ``src``'s table to ``dst`` after ``table(t) -> t`` and ``meta(m)`` (in place)."""
    t = pq.read_table(src)
    m = json.loads(t.schema.metadata[METADATA_KEY])
    if table is not None:
        t = table(t)
    if meta is not None:
        meta(m)
    t = t.replace_schema_metadata({METADATA_KEY: raw if raw is not None else json.dumps(m)})
    pq.write_table(t, dst)
    return dst


def _set(t: pa.Table, name: str, values, typ=None) -> pa.Table:
    i = t.column_names.index(name)
    return t.set_column(i, name, pa.array(values, type=typ or t.schema.field(name).type))


def _edited(t: pa.Table, name: str, edits: dict[int, float]) -> pa.Table:
    values = t.column(name).to_numpy().copy()
    for i, v in edits.items():
        values[i] = v
    return _set(t, name, values)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("banks")
    return {"plain": small().save(root / "plain.parquet"),
            "full": small(safety=True).with_token_counts([0, 12, 7, 7, 30, 2, 5]).save(
                root / "full.parquet")}


ALL_SAFETY = "['safety_shaming', 'safety_threat', 'safety_unsafe_exertion', " \
             "'safety_weight_stigma', 'safety_medical_claim', 'safety_off_topic']"
CATS_TEXT = "['shaming', 'threat', 'unsafe_exertion', 'weight_stigma', 'medical_claim', " \
            "'off_topic']"

#: (source, edit of the table, edit of the metadata, raw metadata, the refusal after the path)
CORRUPT = {
    "not json": ("plain", None, None, b"{not json", ": bank metadata is not valid JSON"),
    "foreign format": ("plain", None, lambda m: m.update(format="other-bank"), None,
                       ": unknown format 'other-bank'"),
    "no format": ("plain", None, lambda m: m.pop("format"), None, ": unknown format None"),
    "newer version": ("plain", None, lambda m: m.update(format_version=2), None,
                      ": bank format version 2 is not supported by this gambit-gym (reads "
                      "version 1); upgrade gambit-gym or rebuild the bank"),
    "no text": ("plain", lambda t: t.drop_columns(["text"]), None, None,
                ": column 'text' is missing"),
    "no prompt_id": ("plain", lambda t: t.drop_columns(["prompt_id"]), None, None,
                     ": column 'prompt_id' is missing"),
    "no context_id": ("plain", lambda t: t.drop_columns(["context_id"]), None, None,
                      ": column 'context_id' is missing"),
    "no score column": ("plain", lambda t: t.drop_columns(["urgency"]), None, None,
                        ": column 'urgency' is missing"),
    "int32 prompt ids": ("plain", lambda t: _set(t, "prompt_id", t.column("prompt_id").to_numpy(),
                                                 pa.int32()), None, None,
                         ": column 'prompt_id' has type int32, expected int16"),
    "int16 context ids": ("plain", lambda t: _set(t, "context_id",
                                                  t.column("context_id").to_numpy(), pa.int16()),
                          None, None, ": column 'context_id' has type int16, expected int8"),
    "float64 scores": ("plain", lambda t: _set(t, "warmth", t.column("warmth").to_numpy(),
                                               pa.float64()), None, None,
                       ": column 'warmth' has type double, expected float"),
    "binary text": ("plain", lambda t: _set(t, "text", [s.encode() for s in
                                                       t.column("text").to_pylist()],
                                            pa.binary()), None, None,
                    ": column 'text' has type binary, expected string"),
    "rows missing": ("plain", lambda t: t.slice(0, 5), None, None,
                     " is truncated: 5 rows, metadata says 7; rebuild or resume it with "
                     "`gambit-gym build-bank`"),
    "no row count": ("plain", None, lambda m: m.pop("n_rows"), None,
                     " is truncated: 7 rows, metadata says None; rebuild or resume it with "
                     "`gambit-gym build-bank`"),
    "nan and inf scores": ("plain", lambda t: _edited(_edited(t, "urgency", {0: np.inf, 4: np.nan}),
                                                      "warmth", {6: -np.inf}), None, None,
                           ": score columns hold NaN or infinite values ('warmth': 1 row(s), "
                           "'urgency': 2 row(s)); every score must be a finite number, re-embed "
                           "or rebuild the bank"),
    "negative prompt": ("plain", lambda t: _edited(t, "prompt_id", {0: -1}), None, None,
                        ": prompt ids must be >= 0 and context ids in 0..11"),
    "negative context": ("plain", lambda t: _edited(t, "context_id", {3: -1}), None, None,
                         ": prompt ids must be >= 0 and context ids in 0..11"),
    "context 12": ("plain", lambda t: _edited(t, "context_id", {6: 12}), None, None,
                   ": prompt ids must be >= 0 and context ids in 0..11"),
    "thresholds dropped": ("full", None, lambda m: m.pop("safety_thresholds"), None,
                           f": safety columns {ALL_SAFETY} without safety_thresholds in the "
                           "metadata; rescore the bank with `gambit-gym score-safety`"),
    "thresholds listed": ("full", None, lambda m: m.update(safety_thresholds=[0.5] * 6), None,
                          f": safety_thresholds must map every category {CATS_TEXT} to a "
                          "number"),
    "threshold missing": ("full", None, lambda m: m["safety_thresholds"].pop("threat"), None,
                          f": safety_thresholds must map every category {CATS_TEXT} to a "
                          "number"),
    "other categories": ("full", None, lambda m: m.update(safety_categories=["shaming",
                                                                             "threat"]), None,
                         f": safety categories ['shaming', 'threat'] differ from {CATS_TEXT}; "
                         "rescore with `gambit-gym score-safety`"),
    "safety column dropped": ("full", lambda t: t.drop_columns(["safety_off_topic"]), None, None,
                              ": safety column 'safety_off_topic' is missing"),
    "float64 safety": ("full", lambda t: _set(t, "safety_threat",
                                              t.column("safety_threat").to_numpy(),
                                              pa.float64()), None, None,
                       ": column 'safety_threat' has type double, expected float"),
    "safety out of range": ("full", lambda t: _edited(_edited(t, "safety_threat", {1: 1.5}),
                                                      "safety_shaming", {0: -0.5, 2: np.nan}),
                            None, None,
                            ": safety scores must be finite and in [0, 1] (safety_shaming: 2 "
                            "row(s), safety_threat: 1 row(s)); rescore the bank with "
                            "`gambit-gym score-safety`"),
    "zero threshold": ("full", None, lambda m: m["safety_thresholds"].update(shaming=0), None,
                       ": safety thresholds must be one number in (0, 1] per category, got "
                       "[0.0, 0.5, 0.5, 0.5, 1.0, 0.25]"),
    "integer thresholds": ("full", None, lambda m: m.update(
        safety_thresholds={c: int(c != "threat") for c in CATS}), None,
        ": safety thresholds must be one number in (0, 1] per category, got "
        "[1.0, 0.0, 1.0, 1.0, 1.0, 1.0]"),
    "safety without bank thresholds": ("plain", lambda t: t.append_column(
        "safety_threat", pa.array(np.zeros(7, np.float32))), None, None,
        ": safety columns ['safety_threat'] without safety_thresholds in the metadata; rescore "
        "the bank with `gambit-gym score-safety`"),
    "float token counts": ("full", lambda t: _set(t, "n_tokens", np.arange(7.0), pa.float32()),
                           None, None, ": column 'n_tokens' must hold integers (tokens per "
                           "message); recount with gambit_gym.text.tokens.add_token_counts"),
    "negative token count": ("full", lambda t: _edited(t, "n_tokens", {2: -1}), None, None,
                             ": n_tokens must be one non-negative integer per row (7), got a "
                             "int32 array of shape (7,)"),
}


@pytest.mark.parametrize("case", list(CORRUPT))
def test_corrupt_banks_are_refused_whole_message(files, tmp_path, case):
    source, table, meta, raw, tail = CORRUPT[case]
    bad = _rewrite(files[source], tmp_path / "bad.parquet", table, meta, raw)
    with pytest.raises(BankFormatError) as err:
        ResponseBank.load(bad)
    assert str(err.value) == _w(bad) + tail


def test_files_that_are_no_bank_are_refused(tmp_path):
    missing = tmp_path / "nowhere" / "bank.parquet"
    with pytest.raises(BankFormatError) as err:
        ResponseBank.load(missing)
    assert str(err.value) == (f"response bank {_w(missing)} does not exist; pass bank=None for "
                              "the shipped bank, or build one with `gambit-gym build-bank --out "
                              "FILE`")
    for name, meta in [("none.parquet", None), ("pandas.parquet", {b"pandas": b"{}"})]:
        plain = pa.table({"text": ["a"], "prompt_id": pa.array([0], pa.int16())})
        if meta is not None:
            plain = plain.replace_schema_metadata(meta)
        pq.write_table(plain, tmp_path / name)
        with pytest.raises(BankFormatError) as err:
            ResponseBank.load(tmp_path / name)
        assert str(err.value) == (f"{_w(tmp_path / name)} is a Parquet file but not a gambit-gym "
                                  "response bank (no 'gambit_gym_bank' metadata); build banks "
                                  "with `gambit-gym build-bank`")


def test_a_truncated_file_is_refused_naming_the_reader_error(files, tmp_path):
    data = files["plain"].read_bytes()
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(pa.ArrowException) as reader:
        pq.read_table(cut)
    with pytest.raises(BankFormatError) as err:
        ResponseBank.load(cut)
    assert str(err.value) == (f"{_w(cut)} is not a readable Parquet file (corrupt or truncated: "
                              f"{reader.value}); rebuild it with `gambit-gym build-bank` or "
                              "restore it from the package")
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_content_checksum_mismatch_is_refused_unless_unverified(files, tmp_path):
    bad = _rewrite(files["full"], tmp_path / "bad.parquet",
                   table=lambda t: _set(t, "text", [s.replace("zest", "zesty") for s in
                                                    t.column("text").to_pylist()]))
    good = ResponseBank.load(files["full"])
    texts = np.array([s.replace("zest", "zesty") for s in good.texts], dtype=object)
    actual = content_checksum(texts, good.prompt_ids, good.context_ids, good.scores, DIMS)
    with pytest.raises(BankFormatError) as err:
        ResponseBank.load(bad)
    assert str(err.value) == (f"{_w(bad)} is corrupt: content checksum {actual[:12]}... does not "
                              f"match the recorded {good.checksum[:12]}...; rebuild it")
    back = ResponseBank.load(bad, verify_checksum=False)
    assert back.texts.tolist()[2] == "zesty" and back.checksum == actual
    assert back.unsafe.tolist() == good.unsafe.tolist()  # safety still read
    dropped = _rewrite(files["plain"], tmp_path / "nosum.parquet", meta=lambda m: m.pop("checksum"))
    with pytest.raises(BankFormatError) as err:
        ResponseBank.load(dropped)
    assert str(err.value) == (f"{_w(dropped)} is corrupt: content checksum "
                              f"{small().checksum[:12]}... does not match the recorded None...; "
                              "rebuild it")


def test_unsorted_rows_are_refused_even_with_a_matching_checksum(files, tmp_path):
    rev = pq.read_table(files["plain"]).take(list(range(6, -1, -1)))
    good = small()
    checksum = content_checksum(good.texts[::-1], good.prompt_ids[::-1], good.context_ids[::-1],
                                good.scores[::-1], DIMS)
    bad = _rewrite(files["plain"], tmp_path / "rev.parquet", table=lambda t: rev,
                   meta=lambda m: m.update(checksum=checksum))
    with pytest.raises(BankFormatError) as err:
        ResponseBank.load(bad)
    assert str(err.value) == f"{_w(bad)}: rows are not sorted by (prompt, context)"


def test_safety_checksum_mismatch_is_refused_unless_unverified(files, tmp_path):
    bad = _rewrite(files["full"], tmp_path / "bad.parquet",
                   table=lambda t: _edited(t, "safety_off_topic", {0: 0.1}))
    good = ResponseBank.load(files["full"])
    edited = good.safety.copy()
    edited[0, 5] = 0.1
    actual = safety_checksum(edited, SAFETY_CATEGORIES, good.safety_thresholds)
    recorded = good.safety_metadata()["safety_checksum"]
    with pytest.raises(BankFormatError) as err:
        ResponseBank.load(bad)
    assert str(err.value) == (f"{_w(bad)} is corrupt: safety checksum {actual[:12]}... does not "
                              f"match the recorded {recorded[:12]}...; rescore it with "
                              "`gambit-gym score-safety`")
    back = ResponseBank.load(bad, verify_checksum=False)
    assert back.safety[0, 5] == np.float32(0.1) and back.checksum == good.checksum
    dropped = _rewrite(files["full"], tmp_path / "nosum.parquet",
                       meta=lambda m: m.pop("safety_checksum"))
    with pytest.raises(BankFormatError) as err:
        ResponseBank.load(dropped)
    assert str(err.value).endswith("does not match the recorded None...; rescore it with "
                                   "`gambit-gym score-safety`")


def test_safety_categories_empty_in_the_metadata_mean_the_standard_ones(files, tmp_path):
    path = _rewrite(files["full"], tmp_path / "b.parquet",
                    meta=lambda m: m.update(safety_categories=[]))
    back = ResponseBank.load(path)
    assert back.safety_categories == SAFETY_CATEGORIES and back.unsafe.sum() == 2


def test_classifier_missing_from_the_metadata_reads_as_empty(files, tmp_path):
    path = _rewrite(files["full"], tmp_path / "b.parquet",
                    meta=lambda m: m.pop("safety_classifier"))
    assert ResponseBank.load(path).safety_classifier == {}


# ------------------------------------------------------------------------- names and paths
DATA = Path(gambit_gym.__file__).parent / "data"


def test_default_bank_path_and_its_override(monkeypatch):
    monkeypatch.delenv("GAMBIT_GYM_BANK", raising=False)
    assert default_bank_path() == DATA / "ihs_smollm2_bank.parquet"
    assert DEFAULT_BANK_FILENAME == "ihs_smollm2_bank.parquet" and default_bank_path().exists()
    monkeypatch.setenv("GAMBIT_GYM_BANK", "/somewhere/else.parquet")
    assert default_bank_path() == Path("/somewhere/else.parquet")
    monkeypatch.setenv("GAMBIT_GYM_BANK", "")
    assert default_bank_path() == DATA / "ihs_smollm2_bank.parquet"


def test_bank_names(monkeypatch):
    assert BANK_NAMES == {"v1": "ihs_smollm2_bank.parquet"}
    assert PENDING_BANK_NAMES == {"v2": "ihs_smollm2_bank_v2.parquet"}
    assert bank_path_for_name("v1") == DATA / "ihs_smollm2_bank.parquet"
    assert bank_path_for_name("v3") is None and bank_path_for_name("ihs") is None
    monkeypatch.setitem(PENDING_BANK_NAMES, "v9", "never_shipped.parquet")
    with pytest.raises(BankFormatError) as err:
        bank_path_for_name("v9")
    assert str(err.value) == ("bank 'v9' is not shipped yet (its build, prompt library v9, is "
                              "under way; see docs/bank_report.md); use bank='v1' or a bank file")
    monkeypatch.setitem(PENDING_BANK_NAMES, "v8", DEFAULT_BANK_FILENAME)  # a shipped file
    assert bank_path_for_name("v8") == DATA / DEFAULT_BANK_FILENAME


def test_load_bank_by_path_caches_until_the_file_changes(tmp_path):
    path = small().save(tmp_path / "b.parquet")
    first = load_bank(path)
    assert len(first) == 7 and first.checksum == small().checksum
    assert load_bank(str(path)) is first and load_bank(tmp_path / "." / "b.parquet") is first
    # the same bytes with a newer modification time: read again
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    second = load_bank(path)
    assert second is not first and second.checksum == first.checksum
    # other content with the same modification time: read again (the size changed)
    st = path.stat()
    ResponseBank.from_arrays(["only one"], [0], [0], [[1.0, 2.0]], DIMS).save(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    third = load_bank(path)
    assert third is not second and len(third) == 1


def test_load_bank_refuses_missing_files_clearly(tmp_path, monkeypatch):
    missing = tmp_path / "gone.parquet"
    with pytest.raises(BankFormatError) as err:
        load_bank(missing)
    assert str(err.value) == (f"response bank {_w(missing)} does not exist; pass bank=None for "
                              "the shipped bank, or build one with `gambit-gym build-bank --out "
                              "FILE`")
    monkeypatch.setenv("GAMBIT_GYM_BANK", str(missing))
    with pytest.raises(BankFormatError) as err:
        load_bank()
    assert str(err.value) == (f"the shipped response bank {_w(missing)} is missing from this "
                              "installation; reinstall gambit-gym or build one with `gambit-gym "
                              "build-bank --out FILE` and pass bank=FILE")


def test_load_bank_names_the_shipped_banks_whatever_the_default(tmp_path, monkeypatch):
    """``load_bank("v1")`` is the shipped v1 even where $GAMBIT_GYM_BANK names another bank,
    and the bank v2 is refused until its file ships."""
    other = small().save(tmp_path / "other.parquet")
    monkeypatch.setenv("GAMBIT_GYM_BANK", str(other))
    assert len(load_bank()) == 7 and load_bank() is load_bank(other)
    v1 = load_bank("v1")
    assert len(v1) == 48000 and v1 is load_bank(DATA / DEFAULT_BANK_FILENAME)
    v2_file = DATA / PENDING_BANK_NAMES["v2"]
    if v2_file.exists():  # once it ships, the name loads it
        assert load_bank("v2").metadata["prompt_library"]["version"].startswith("2")
    else:
        with pytest.raises(BankFormatError) as err:
            load_bank("v2")
        assert str(err.value) == ("bank 'v2' is not shipped yet (its build, prompt library v2, "
                                  "is under way; see docs/bank_report.md); use bank='v1' or a "
                                  "bank file")


def test_shipped_bank_v1_facts():
    """Facts of the shipped bank that its recorded checksum fixes: a new v1 file would have to
    change them all (earlier results are reproduced by name, see BANK_NAMES)."""
    bank = load_bank("v1")
    assert bank.checksum == "c4a85b928b852654e27b815f7c041f4494a887cbc2ac006f6f01d815af3bb240"
    assert repr(bank) == ("ResponseBank(48000 messages, 40 prompts x 12 contexts, 20 dims, "
                          "generator=smollm2)")
    assert bank.dimensions == (
        "optimism", "formality", "encouragement", "severity", "clarity", "humor", "complexity",
        "vision", "detail", "threat", "urgency", "politeness", "personalization", "conciseness",
        "actionability", "emotiveness", "authoritativeness", "authenticity", "supportiveness",
        "gender-codedness")
    assert bank.scores.shape == (48000, 20) and bank.scores.dtype == np.float32
    assert (bank.counts == 100).all() and bank.offsets[39, 11] == 47900
    assert sorted(bank.metadata) == ["builder", "contexts", "embedder", "generator", "per_pair",
                                     "prompt_library", "rejections", "rendered_prompts",
                                     "reps_per_chunk", "seed", "unresolved"]
    assert bank.metadata["per_pair"] == 100 and bank.metadata["seed"] == 0
    assert bank.texts[0] == "I'm here to help. What can I help you with today?"
    assert bank.n_tokens.dtype == np.int32 and bank.n_tokens[:5].tolist() == [14, 43, 35, 52, 40]
    assert bank.safety_categories == SAFETY_CATEGORIES
    assert bank.safety_thresholds.tolist() == [0.75, 0.7, 0.75, 0.75, 0.9, 0.45]
    assert bank.safety_classifier["name"] == "minilm-logreg-rules"
    assert bank.prompt_text(0, 0).startswith("About the user: yesterday they walked between 0 "
                                             "and 4,999 steps, and right now they are at home.")
