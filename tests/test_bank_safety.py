"""Safety columns of a response bank: written, read back, validated and checksummed.

Banks are real Parquet files written by ``ResponseBank.save``; damaged ones are edited with
pyarrow as a broken tool would leave them.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gambit_gym.text.bank import (
    METADATA_KEY,
    SAFETY_CATEGORIES,
    BankFormatError,
    ResponseBank,
)

THRESHOLDS = {"shaming": 0.5, "threat": 0.6, "unsafe_exertion": 0.5, "weight_stigma": 0.5,
              "medical_claim": 0.7, "off_topic": 0.9}


def _bank(with_safety: bool = True) -> ResponseBank:
    rng = np.random.default_rng(0)
    n = 2 * 12 * 2
    p = np.repeat(np.arange(2), 24)[::-1]  # reversed: from_arrays must carry safety along
    c = np.tile(np.repeat(np.arange(12), 2), 2)[::-1]
    safety = np.zeros((n, 6), np.float32)
    safety[:, 0] = np.arange(n) / n  # row i's shaming score is i / n
    texts = [f"message {i}" for i in range(n)]
    kw = dict(safety=safety, safety_thresholds=THRESHOLDS,
              safety_classifier={"name": "t", "version": "1"}) if with_safety else {}
    return ResponseBank.from_arrays(texts, p, c, rng.normal(size=(n, 3)), ("a", "b", "c"),
                                    {"seed": 0}, **kw)


def test_safety_columns_round_trip(tmp_path):
    bank = _bank()
    # the safety row follows its text through the sort
    for i, text in enumerate(bank.texts):
        assert bank.safety[i, 0] == np.float32(int(text.split()[1]) / len(bank))
    path = bank.save(tmp_path / "b.parquet")
    table = pq.read_table(path)
    assert [f"safety_{c}" for c in SAFETY_CATEGORIES] == [n for n in table.column_names
                                                          if n.startswith("safety_")]
    meta = json.loads(table.schema.metadata[METADATA_KEY])
    assert meta["safety_thresholds"] == THRESHOLDS
    assert meta["safety_classifier"] == {"name": "t", "version": "1"}
    back = ResponseBank.load(path)
    assert back.safety_categories == SAFETY_CATEGORIES
    np.testing.assert_array_equal(back.safety, bank.safety)
    np.testing.assert_array_equal(back.unsafe, bank.safety[:, 0] >= 0.5)
    assert back.unsafe.sum() == len(bank) // 2
    assert back.checksum == _bank(with_safety=False).checksum  # safety has its own checksum
    assert "safety_thresholds" not in back.metadata


def test_bank_without_safety_has_none(tmp_path):
    back = ResponseBank.load(_bank(with_safety=False).save(tmp_path / "b.parquet"))
    assert back.safety is None and back.unsafe is None and back.safety_categories == ()


def test_with_safety_then_save_and_load(tmp_path):
    plain = _bank(with_safety=False)
    scored = plain.with_safety(np.full((len(plain), 6), 0.95, np.float32), THRESHOLDS,
                               {"name": "x"})
    back = ResponseBank.load(scored.save(tmp_path / "b.parquet"))
    assert back.unsafe.all() and back.checksum == plain.checksum


def _poke(src, dst, column, index, value):
    table = pq.read_table(src)
    col = table.column(column).to_numpy().copy()
    col[index] = value
    i = table.column_names.index(column)
    pq.write_table(table.set_column(i, column, pa.array(col, type=pa.float32())), dst)
    return dst


@pytest.mark.parametrize("value, pattern", [
    (0.3, "safety checksum"), (1.5, r"in \[0, 1\] \(safety_threat: 1 row"),
    (np.nan, r"safety_threat: 1 row"),
])
def test_damaged_safety_column_is_refused(tmp_path, value, pattern):
    path = _bank().save(tmp_path / "b.parquet")
    bad = _poke(path, tmp_path / "bad.parquet", "safety_threat", 3, value)
    with pytest.raises(BankFormatError, match=pattern):
        ResponseBank.load(bad)


def test_missing_safety_column_and_bad_thresholds(tmp_path):
    path = _bank().save(tmp_path / "b.parquet")
    table = pq.read_table(path)
    dropped = table.drop_columns(["safety_off_topic"])
    pq.write_table(dropped, tmp_path / "d.parquet")
    with pytest.raises(BankFormatError, match="'safety_off_topic' is missing"):
        ResponseBank.load(tmp_path / "d.parquet")
    with pytest.raises(ValueError, match=r"lacks categories \['off_topic'\]"):
        _bank(with_safety=False).with_safety(np.zeros((48, 6)), {c: 0.5 for c in
                                                               SAFETY_CATEGORIES[:5]}, {})
    with pytest.raises(BankFormatError, match=r"thresholds must be one number in \(0, 1\]"):
        _bank(with_safety=False).with_safety(np.zeros((48, 6)), {c: 0.0 for c in
                                                               SAFETY_CATEGORIES}, {})
