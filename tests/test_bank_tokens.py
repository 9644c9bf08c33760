"""The bank's optional ``n_tokens`` column and the token estimate (gambit_gym.text.tokens)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from safety_helpers import PER_CELL, UNSAFE_PER_CELL, safety_bank

from gambit_gym.text.bank import BankFormatError, ResponseBank
from gambit_gym.text.tokens import bank_token_counts, estimate_tokens


def test_token_counts_round_trip_beside_the_safety_scores(tmp_path):
    bank = safety_bank(tmp_path / "b.parquet")
    loaded = ResponseBank.load(tmp_path / "b.parquet")
    np.testing.assert_array_equal(loaded.n_tokens, bank.n_tokens)
    assert loaded.n_tokens.dtype == np.int32
    assert loaded.checksum == bank.checksum  # counts derive from the texts: not content
    for p, k in enumerate(UNSAFE_PER_CELL):  # the helper's known unsafe rows
        for c in range(12):
            start = loaded.offsets[p, c]
            assert loaded.unsafe[start:start + PER_CELL].sum() == k
    again = loaded.with_safety(loaded.safety, loaded.safety_thresholds, {})
    np.testing.assert_array_equal(again.n_tokens, bank.n_tokens)


def test_counts_come_from_the_bank_or_the_estimate():
    counts, source = bank_token_counts(safety_bank())
    assert source == "bank" and counts.tolist()[:8] == [10, 11, 12, 13, 14, 15, 16, 10]
    plain = safety_bank(n_tokens=False)
    counts, source = bank_token_counts(plain)
    assert source == "estimate"
    np.testing.assert_array_equal(counts, estimate_tokens(plain.texts))
    assert estimate_tokens(["", "abcd", "abcde", "x" * 41]).tolist() == [0, 1, 2, 11]


@pytest.mark.parametrize("values, pattern", [
    (pa.array([1.5] * 240, type=pa.float32()), "must hold integers"),
    (pa.array([-1] * 240, type=pa.int32()), "non-negative integer per row"),
])
def test_bad_token_columns_are_refused(tmp_path, values, pattern):
    safety_bank(tmp_path / "b.parquet")
    table = pq.read_table(tmp_path / "b.parquet")
    table = table.set_column(table.column_names.index("n_tokens"), "n_tokens", values)
    pq.write_table(table, tmp_path / "bad.parquet")
    with pytest.raises(BankFormatError, match=pattern):
        ResponseBank.load(tmp_path / "bad.parquet")
