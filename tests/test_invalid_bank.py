"""The response-bank loader given damaged banks: NaN or infinite scores (named by column and
row count), cell ids out of range; an env built on such a bank refuses to start.

Banks are real Parquet files written by ``ResponseBank.save`` and then edited as a broken
build or a hostile sender would. Tables of (edit, message pattern).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import gambit_gym  # noqa: F401
from gambit_gym.text.bank import BankFormatError, ResponseBank


@pytest.fixture(scope="module")
def good_bank(tmp_path_factory):
    rng = np.random.default_rng(0)
    n = 2 * 12 * 2
    p = np.repeat(np.arange(2), 24)
    c = np.tile(np.repeat(np.arange(12), 2), 2)
    path = tmp_path_factory.mktemp("bank") / "good.parquet"
    ResponseBank.from_arrays([f"message {i}" for i in range(n)], p, c,
                             rng.normal(size=(n, 3)), ("a", "b", "c"), {"seed": 0}).save(path)
    return path


def _poke(src, dst, column, values):
    table = pq.read_table(src)
    col = table.column(column).to_numpy().copy()
    for i, v in values.items():
        col[i] = v
    idx = table.column_names.index(column)
    table = table.set_column(idx, column, pa.array(col, type=table.schema.field(column).type))
    pq.write_table(table, dst)
    return dst


@pytest.mark.parametrize("column, values, pattern", [
    ("b", {3: np.nan, 7: np.nan}, r"score columns hold NaN or infinite values \('b': 2 row"),
    ("c", {0: np.inf}, r"\('c': 1 row"),
    ("a", {1: -np.inf}, r"\('a': 1 row"),
    ("context_id", {0: 12}, r"context ids in 0\.\.11"),
    ("prompt_id", {0: -3}, r"prompt ids must be >= 0"),
])
def test_bank_loader_refuses(good_bank, tmp_path, column, values, pattern):
    bad = _poke(good_bank, tmp_path / "bad.parquet", column, values)
    with pytest.raises(BankFormatError, match=pattern):
        ResponseBank.load(bad)


def test_bank_from_arrays_refuses_nan_naming_the_column():
    with pytest.raises(BankFormatError, match=r"'y': 1 row"):
        ResponseBank.from_arrays(["a b c d e"] * 2, [0, 0], [0, 1],
                                 [[0.0, 1.0], [0.0, np.nan]], ("x", "y"))


def test_env_with_a_nan_bank_refuses_to_build(good_bank, tmp_path):
    bad = _poke(good_bank, tmp_path / "nan.parquet", "a", {0: np.nan})
    with pytest.raises(BankFormatError, match="NaN"):
        gym.make("GambitIHS-v0", bank=str(bad))
