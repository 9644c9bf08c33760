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


def test_shipped_bank_carries_its_token_counts():
    """The shipped bank has the n_tokens column and the envs read it (not the estimate)."""
    import gymnasium as gym

    import gambit_gym  # noqa: F401
    from gambit_gym.text.bank import load_bank

    bank = load_bank()
    assert bank.n_tokens is not None and bank.n_tokens.shape == (len(bank),)
    assert 0 < bank.n_tokens.min() and bank.n_tokens.max() < 200
    env = gym.make("GambitIHS-v0")
    assert env.unwrapped.tables.safety.token_source == "bank"
    env.reset(seed=0)
    for _ in range(5):
        info = env.step(1)[4]
        row = int(np.flatnonzero(bank.texts == str(info["text"]))[0])
        assert info["tokens"] == bank.n_tokens[row]


@pytest.mark.slow
def test_shipped_counts_are_smollm2_tokens():
    pytest.importorskip("transformers")
    from gambit_gym.text.bank import load_bank
    from gambit_gym.text.tokens import count_tokens

    bank = load_bank()
    rows = np.arange(0, len(bank), 997)
    np.testing.assert_array_equal(count_tokens(bank.texts[rows]), bank.n_tokens[rows])
