"""gambit_gym.bench.store on hand-built records and real SQLite files, every stored value pinned.

tests/test_bench_store.py and tests/test_invalid_store.py check the store through real sweeps
and the command line (kill -9, two writers, garbled files); this file pins, without running an
env, what one row holds (each column, each array's dtype on disk), what comes back, the order
and filters of reads, the claims of writers, resuming, merging rows between stores, stores of
before the provenance column, and each refusal's whole message. Fast, so that mutation testing
(benchmarks/mutation.py) can run it for every mutant.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from gambit_gym.bench.store import NotOwnerError, ResultStore
from gambit_gym.bench.suites import Setting, Suite
from gambit_gym.bench.units import Unit, UnitRecord, unit_to_dict

ENV = "GambitIHS-1D-v0"


def _unit(agent="Random", *, suite="s", env_kwargs=None, agent_kwargs=None, rep_start=0,
          n_reps=2, horizon=3):
    setting = Setting(env_id=ENV, agent=agent, env_kwargs=env_kwargs or {},
                      agent_kwargs=agent_kwargs or {}, panel="P", label="L",
                      tags=("t1", "t2"))
    return Unit(suite=suite, setting=setting, horizon=horizon, seed=7, rep_start=rep_start,
                n_reps=n_reps, propensity_samples=30, suite_fingerprint="fp")


def _record(unit=None, *, created=123.5, **changes):
    unit = unit or _unit()
    fields = dict(
        unit=unit,
        cum_mean=np.array([0.5, 1.25, 2.0]),
        cum_m2=np.array([0.0, 0.125, 0.5]),
        final_regret=np.array([1.5, 2.5]),
        actions=np.array([[0, 2, 1], [2, 2, 0]]),
        rewards=np.array([[0.1, -0.2, 1.0], [0.3, 0.0, 2.5]]),
        propensities=np.array([[0.5, 0.25, 0.1], [0.4, 1.0, 0.8]]),
        contexts=np.array([[0, 1, 1], [1, 0, 0]]),
        wall_time_s=1.25, versions={"numpy": "2.0", "gambit-gym": "0.1"},
        metadata={"z": 1, "path": Path("/x/y"), "a": [1, 2]}, created=created,
        provenance={"where": Path("/p"), "suite_fingerprint": "fp"},
        outcomes={"unsafe": np.array([1, 0]), "cost": np.array([0.5, 0.75])})
    fields.update(changes)
    return UnitRecord(**fields)


def _row(path, unit_id=None):
    with sqlite3.connect(path) as con:
        con.row_factory = sqlite3.Row
        sql = "SELECT * FROM units" + (" WHERE unit_id = ?" if unit_id else "")
        rows = con.execute(sql, (unit_id,) if unit_id else ()).fetchall()
    return [dict(r) for r in rows]


def _blob(data):
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _sql(path, *statements):
    with sqlite3.connect(path) as con:
        for st in statements:
            con.execute(st)


def _whole(exc_info, text):
    assert str(exc_info.value) == text


# ------------------------------------------------------------------ what one row holds
def test_every_column_of_a_row(tmp_path):
    path = tmp_path / "s.sqlite"
    store = ResultStore(path)
    unit = _unit(env_kwargs={"n": 3}, agent_kwargs={"b": 1, "a": 2})
    assert store.add(_record(unit)) is True
    (row,) = _row(path)
    blobs = {k: row.pop(k) for k in ("summary", "logs")}
    assert row == {
        "unit_id": unit.unit_id, "suite": "s", "env_id": ENV, "env_key": ENV + '{"n":3}',
        "agent": "Random", "agent_key": 'Random{"a":2,"b":1}', "panel": "P", "label": "L",
        "horizon": 3, "seed": 7, "rep_start": 0, "n_reps": 2, "wall_time_s": 1.25,
        "created": 123.5, "unit": json.dumps(unit_to_dict(unit), sort_keys=True),
        "versions": '{"gambit-gym": "0.1", "numpy": "2.0"}',
        "metadata": '{"a": [1, 2], "path": "/x/y", "z": 1}',
        "provenance": '{"suite_fingerprint": "fp", "where": "/p"}'}
    assert list(json.loads(row["unit"])) == sorted(json.loads(row["unit"]))
    summary = _blob(blobs["summary"])
    assert sorted(summary) == ["cum_m2", "cum_mean", "final_regret", "outcome_cost",
                               "outcome_unsafe"]
    for key in summary:
        assert summary[key].dtype == np.float64, key
    np.testing.assert_array_equal(summary["cum_mean"], [0.5, 1.25, 2.0])
    np.testing.assert_array_equal(summary["cum_m2"], [0.0, 0.125, 0.5])
    np.testing.assert_array_equal(summary["final_regret"], [1.5, 2.5])
    np.testing.assert_array_equal(summary["outcome_unsafe"], [1.0, 0.0])
    np.testing.assert_array_equal(summary["outcome_cost"], [0.5, 0.75])
    logs = _blob(blobs["logs"])
    assert sorted(logs) == ["actions", "contexts", "propensities", "rewards"]
    assert {k: v.dtype for k, v in logs.items()} == {
        "actions": np.int16, "contexts": np.int16, "propensities": np.float32,
        "rewards": np.float32}
    np.testing.assert_array_equal(logs["actions"], [[0, 2, 1], [2, 2, 0]])
    np.testing.assert_array_equal(logs["rewards"],
                                  np.float32([[0.1, -0.2, 1.0], [0.3, 0.0, 2.5]]))


def test_what_comes_back_field_by_field(tmp_path):
    store = ResultStore(tmp_path / "s.sqlite")
    record = _record()
    store.add(record)
    (back,) = store.records(logs=True)
    assert back.unit == record.unit and back.unit.setting.tags == ("t1", "t2")
    for name in ("cum_mean", "cum_m2", "final_regret"):
        np.testing.assert_array_equal(getattr(back, name), getattr(record, name))
        assert getattr(back, name).dtype == np.float64
    np.testing.assert_array_equal(back.actions, record.actions)
    np.testing.assert_array_equal(back.contexts, record.contexts)
    assert back.actions.dtype == back.contexts.dtype == np.int64
    # rewards and propensities are kept as float32: what comes back is float32's value
    np.testing.assert_array_equal(back.rewards, record.rewards.astype(np.float32))
    np.testing.assert_array_equal(back.propensities, record.propensities.astype(np.float32))
    assert back.rewards.dtype == back.propensities.dtype == np.float64
    assert back.rewards[0, 0] != 0.1 and back.rewards[0, 0] == float(np.float32(0.1))
    assert back.wall_time_s == 1.25 and type(back.wall_time_s) is float
    assert back.created == 123.5 and type(back.created) is float
    assert back.versions == {"numpy": "2.0", "gambit-gym": "0.1"}
    assert back.metadata == {"z": 1, "path": "/x/y", "a": [1, 2]}
    assert back.provenance == {"suite_fingerprint": "fp", "where": "/p"}
    assert sorted(back.outcomes) == ["cost", "unsafe"]
    np.testing.assert_array_equal(back.outcomes["unsafe"], [1.0, 0.0])
    assert back.outcomes["unsafe"].dtype == np.float64
    np.testing.assert_array_equal(back.outcomes["cost"], [0.5, 0.75])
    # without logs: empty (0, 0) actions and rewards, no propensities or contexts
    (short,) = store.records()
    assert short.actions.shape == short.rewards.shape == (0, 0)
    assert short.actions.dtype == np.int64 and short.rewards.dtype == np.float64
    assert short.propensities is None and short.contexts is None
    np.testing.assert_array_equal(short.final_regret, [1.5, 2.5])
    assert short.provenance == back.provenance and short.metadata == back.metadata


def test_a_store_opened_again_reads_its_provenance(tmp_path):
    path = tmp_path / "s.sqlite"
    ResultStore(path).add(_record())
    for kwargs in ({}, {"create": False}, {"read_only": True}):
        store = ResultStore(path, **kwargs)  # read before any write through this object
        assert store.records()[0].provenance == {"suite_fingerprint": "fp", "where": "/p"}
        assert store.raw_rows()[0]["provenance"] == '{"suite_fingerprint": "fp", "where": "/p"}'


def test_missing_logs_and_outcomes_stay_missing(tmp_path):
    path = tmp_path / "s.sqlite"
    store = ResultStore(path)
    store.add(_record(propensities=None, contexts=None, outcomes={}, metadata={},
                      provenance={}, versions={}))
    (back,) = store.records(logs=True)
    assert back.propensities is None and back.contexts is None
    assert back.outcomes == {} and back.metadata == {} and back.provenance == {}
    (row,) = _row(path)
    assert sorted(_blob(row["logs"])) == ["actions", "rewards"]
    assert sorted(_blob(row["summary"])) == ["cum_m2", "cum_mean", "final_regret"]
    assert row["provenance"] == row["metadata"] == row["versions"] == "{}"


def test_integer_arrays_are_narrowed_to_int16_only_when_they_fit(tmp_path):
    path = tmp_path / "s.sqlite"
    store = ResultStore(path)
    cases = {
        0: (np.array([[-32768, 32767, 0]]), np.int16),
        1: (np.array([[-32769, 0, 1]]), np.int64),
        2: (np.array([[0, 1, 32768]]), np.int64),
        3: (np.array([[0.0, 1.0, 2.0]]), np.float64),  # not integers: left as they are
        4: (np.zeros((1, 0), dtype=np.int64), np.int64),  # no steps at all
    }
    for start, (contexts, _) in cases.items():
        unit = _unit(rep_start=start, n_reps=1)
        store.add(_record(unit, actions=contexts, contexts=contexts,
                          rewards=np.zeros(contexts.shape), propensities=None,
                          final_regret=np.array([0.0])))
    for start, (contexts, dtype) in cases.items():
        unit = _unit(rep_start=start, n_reps=1)
        (row,) = _row(path, unit.unit_id)
        logs = _blob(row["logs"])
        assert logs["actions"].dtype == logs["contexts"].dtype == dtype, start
        (back,) = store.records(unit_id=unit.unit_id, logs=True)
        np.testing.assert_array_equal(back.contexts, contexts)
        np.testing.assert_array_equal(back.actions, contexts)
        assert back.actions.shape == contexts.shape


def test_created_defaults_to_the_time_of_writing(tmp_path):
    store = ResultStore(tmp_path / "s.sqlite")
    before = time.time()
    store.add(_record(created=0.0))
    after = time.time()
    (back,) = store.records()
    assert before <= back.created <= after


# ------------------------------------------------------------------ duplicates and resuming
def test_a_second_add_of_a_unit_changes_nothing(tmp_path):
    path = tmp_path / "s.sqlite"
    store = ResultStore(path)
    assert store.add(_record()) is True
    first = _row(path)
    assert store.add(_record(wall_time_s=9.0, final_regret=np.array([7.0, 8.0]))) is False
    assert _row(path) == first and len(store) == 1


def test_resuming_skips_exactly_the_stored_units(tmp_path):
    path = tmp_path / "s.sqlite"
    units = [_unit(agent, suite=suite, rep_start=r)
             for suite in ("a", "b") for agent in ("Random", "StdTS") for r in (0, 2)]
    first = ResultStore(path)
    for u in units[::3]:
        assert first.add(_record(u)) is True
    stored = {u.unit_id for u in units[::3]}
    again = ResultStore(path, create=False)  # a later sweep opens the same file
    assert again.unit_ids() == stored
    assert again.unit_ids("a") == {u.unit_id for u in units[::3] if u.suite == "a"}
    assert again.unit_ids("c") == set()
    todo = [u for u in units if u.unit_id not in again.unit_ids()]
    assert len(todo) == len(units) - len(stored)
    assert [again.add(_record(u)) for u in todo] == [True] * len(todo)
    assert [again.add(_record(u)) for u in units] == [False] * len(units)
    assert len(again) == len(units) == 8
    assert again.unit_ids() == {u.unit_id for u in units}


# ------------------------------------------------------------------ reading: order and filters
def test_records_order_and_filters(tmp_path):
    store = ResultStore(tmp_path / "s.sqlite")
    plain = dict(suite="b")
    units = [
        _unit("StdTS", rep_start=10, **plain),
        _unit("StdTS", rep_start=2, **plain),
        _unit("Random", env_kwargs={"n": 3}, **plain),
        _unit("Random", rep_start=4, **plain),
        _unit("Random", **plain),
        _unit("Random", agent_kwargs={"k": 1}, **plain),
        _unit("StdTS", suite="a"),
    ]
    for u in units:
        store.add(_record(u))

    def keys(records):
        return [(r.unit.suite, r.unit.setting.env_key, r.unit.setting.agent_key,
                 r.unit.rep_start) for r in records]

    assert keys(store.records()) == [
        ("a", ENV, "StdTS", 0),
        ("b", ENV, "Random", 0), ("b", ENV, "Random", 4),
        ("b", ENV, 'Random{"k":1}', 0),
        ("b", ENV, "StdTS", 2), ("b", ENV, "StdTS", 10),
        ("b", ENV + '{"n":3}', "Random", 0)]
    assert keys(store.records(suite="a")) == [("a", ENV, "StdTS", 0)]
    assert len(store.records(env_id=ENV)) == 7  # the plain id: every configuration
    assert keys(store.records(env_id=ENV + '{"n":3}')) == [("b", ENV + '{"n":3}', "Random", 0)]
    assert keys(store.records(agent="Random", suite="b")) == [
        ("b", ENV, "Random", 0), ("b", ENV, "Random", 4), ("b", ENV, 'Random{"k":1}', 0),
        ("b", ENV + '{"n":3}', "Random", 0)]
    assert keys(store.records(agent='Random{"k":1}')) == [("b", ENV, 'Random{"k":1}', 0)]
    assert keys(store.records(agent="StdTS", env_id=ENV, suite="b")) == [
        ("b", ENV, "StdTS", 2), ("b", ENV, "StdTS", 10)]
    assert keys(store.records(unit_id=units[3].unit_id)) == [("b", ENV, "Random", 4)]
    assert store.records(agent="Oracle") == [] and store.records(suite="c") == []


def test_suites_definitions_and_suites_with_units_only(tmp_path):
    store = ResultStore(tmp_path / "s.sqlite")
    assert store.suites() == {}
    settings = (Setting(ENV, "Random"), Setting(ENV, "StdTS"))
    suite = Suite("s", "first words", settings, replicates=4, horizon=3, seed=7)
    before = time.time()
    store.add_suite(suite)
    store.add(_record(_unit(suite="s")))
    store.add(_record(_unit(suite="other")))
    assert store.suites() == {
        "s": {"name": "s", "description": "first words", "replicates": 4, "horizon": 3,
              "seed": 7, "settings": 2},
        "other": {"name": "other"}}
    store.add_suite(Suite("s", "second words", settings[:1], replicates=4, horizon=3, seed=7))
    assert store.suites()["s"]["description"] == "second words"
    assert store.suites()["s"]["settings"] == 1
    ((name, definition, updated),) = store.suite_rows()
    assert name == "s" and before <= updated <= time.time()
    assert definition == ('{"description": "second words", "horizon": 3, "name": "s", '
                          '"replicates": 4, "seed": 7, "settings": 1}')


def test_info_counts_and_totals(tmp_path):
    store = ResultStore(tmp_path / "s.sqlite")
    assert store.info() == {"path": str(tmp_path / "s.sqlite"), "units": 0, "replicates": 0,
                            "compute_s": 0.0, "first": None, "last": None, "versions": []}
    store.add(_record(_unit(n_reps=2), created=100.0, wall_time_s=1.5))
    store.add(_record(_unit(rep_start=2, n_reps=3), created=50.0, wall_time_s=2.25,
                      final_regret=np.zeros(3)))
    store.add(_record(_unit(rep_start=5, n_reps=1), created=75.0, wall_time_s=0.25,
                      versions={"numpy": "9"}, final_regret=np.zeros(1)))
    info = store.info()
    assert info == {"path": str(tmp_path / "s.sqlite"), "units": 3, "replicates": 6,
                    "compute_s": 4.0, "first": 50.0, "last": 100.0, "versions": info["versions"]}
    assert type(info["units"]) is int and type(info["compute_s"]) is float
    assert sorted(info["versions"], key=len) == [{"numpy": "9"},
                                                 {"gambit-gym": "0.1", "numpy": "2.0"}]


# ------------------------------------------------------------------ schema
def test_a_new_store_has_its_schema_version_and_wal_journal(tmp_path):
    path = tmp_path / "deep" / "er" / "s.sqlite"  # missing folders are made
    ResultStore(path)
    with sqlite3.connect(path) as con:
        assert con.execute("SELECT key, value FROM meta").fetchall() == [("schema_version", "1")]
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        columns = [r[1] for r in con.execute("PRAGMA table_info(units)")]
    assert tables == {"units", "suites", "meta", "writers"}
    assert columns[-1] == "provenance" and len(columns) == 20
    # reopening keeps what is there, even an older version's number
    _sql(path, "UPDATE meta SET value = '0'")
    ResultStore(path, create=False)
    with sqlite3.connect(path) as con:
        assert con.execute("SELECT value FROM meta").fetchall() == [("0",)]


def _table(path, name):
    """(column, declared type, not null, default, primary key) of each column of a table."""
    with sqlite3.connect(path) as con:
        return [tuple(r[1:]) for r in con.execute(f"PRAGMA table_info({name})")]


TEXT, INT, REAL, BLOB = ("TEXT", 1, None, 0), ("INTEGER", 1, None, 0), ("REAL", 1, None, 0), \
    ("BLOB", 1, None, 0)
UNITS_TABLE = [
    ("unit_id", "TEXT", 0, None, 1), ("suite", *TEXT), ("env_id", *TEXT), ("env_key", *TEXT),
    ("agent", *TEXT), ("agent_key", *TEXT), ("panel", *TEXT), ("label", *TEXT),
    ("horizon", *INT), ("seed", *INT), ("rep_start", *INT), ("n_reps", *INT),
    ("wall_time_s", *REAL), ("created", *REAL), ("unit", *TEXT), ("versions", *TEXT),
    ("metadata", *TEXT), ("summary", *BLOB), ("logs", *BLOB),
    ("provenance", "TEXT", 1, "'{}'", 0)]


def test_the_schema_on_disk(tmp_path):
    path = tmp_path / "s.sqlite"
    ResultStore(path)
    assert _table(path, "units") == UNITS_TABLE
    assert _table(path, "suites") == [("name", "TEXT", 0, None, 1), ("definition", *TEXT),
                                      ("updated", *REAL)]
    assert _table(path, "meta") == [("key", "TEXT", 0, None, 1), ("value", *TEXT)]
    assert _table(path, "writers") == [("token", "TEXT", 0, None, 1), ("host", *TEXT),
                                       ("pid", *INT), ("started", *REAL)]
    with sqlite3.connect(path) as con:
        indexes = con.execute("SELECT name, tbl_name, sql FROM sqlite_master WHERE type = "
                              "'index' AND sql IS NOT NULL").fetchall()
    assert indexes == [("units_suite", "units", "CREATE INDEX units_suite ON units (suite)")]


def _old_store(path):
    """A store written before the provenance column (dropped here from a new one)."""
    store = ResultStore(path)
    store.add(_record(_unit(rep_start=0)))
    _sql(path, "ALTER TABLE units DROP COLUMN provenance", "PRAGMA wal_checkpoint(TRUNCATE)",
         "PRAGMA journal_mode=DELETE")


def _columns(path):
    with sqlite3.connect(path) as con:
        return [r[1] for r in con.execute("PRAGMA table_info(units)")]


def test_a_store_of_before_provenance_is_read_and_gains_the_column_on_write(tmp_path):
    path = tmp_path / "old.sqlite"
    _old_store(path)
    ro = ResultStore(path, read_only=True)
    (old,) = ro.records()
    assert old.provenance == {} and ro.raw_rows()[0]["provenance"] == "{}"
    assert "provenance" not in _columns(path)
    store = ResultStore(path, create=False)
    assert "provenance" not in _columns(path)  # opening alone changes nothing
    assert store.records()[0].provenance == {} and store.raw_rows()[0]["provenance"] == "{}"
    assert store.add(_record(_unit(rep_start=2), provenance={"x": 1})) is True
    assert _table(path, "units") == UNITS_TABLE
    assert [r.provenance for r in store.records()] == [{}, {"x": 1}]
    assert {r["unit_id"]: r["provenance"] for r in store.raw_rows()} == {
        old.unit.unit_id: "{}", _unit(rep_start=2).unit_id: '{"x": 1}'}
    assert store.add(_record(_unit(rep_start=4))) is True  # the column is added once
    assert len(ResultStore(path).records()) == 3


def test_two_writers_opened_on_a_store_of_before_provenance(tmp_path):
    path = tmp_path / "old.sqlite"
    _old_store(path)
    first, second = ResultStore(path), ResultStore(path)  # two sweeps resuming it
    assert first.add(_record(_unit(rep_start=2), provenance={"a": 1})) is True
    # the column is there now, added by the other writer: not added twice
    assert second.add(_record(_unit(rep_start=4), provenance={"b": 2})) is True
    assert _table(path, "units") == UNITS_TABLE
    assert [r.provenance for r in second.records()] == [{}, {"a": 1}, {"b": 2}]


def test_provenance_that_is_not_an_object_reads_as_empty(tmp_path):
    path = tmp_path / "s.sqlite"
    ResultStore(path).add(_record())
    _sql(path, "UPDATE units SET provenance = '[1, 2]'")
    assert ResultStore(path).records()[0].provenance == {}


# ------------------------------------------------------------------ merging
def test_raw_rows_copy_into_another_store_exactly(tmp_path):
    a = ResultStore(tmp_path / "a.sqlite")
    units = [_unit(agent, rep_start=r) for agent in ("StdTS", "Random") for r in (0, 2)]
    for u in units:
        a.add(_record(u))
    a.add_suite(Suite("s", "d", (Setting(ENV, "Random"),), replicates=4, horizon=3, seed=7))
    rows = a.raw_rows()
    assert [r["unit_id"] for r in rows] == sorted(u.unit_id for u in units)
    assert list(rows[0]) == ["unit_id", "suite", "env_id", "env_key", "agent", "agent_key",
                             "panel", "label", "horizon", "seed", "rep_start", "n_reps",
                             "wall_time_s", "created", "unit", "versions", "metadata",
                             "summary", "logs", "provenance"]
    assert rows == sorted(_row(tmp_path / "a.sqlite"), key=lambda r: r["unit_id"])
    b = ResultStore(tmp_path / "b.sqlite")
    b.add(_record(units[0], wall_time_s=99.0))  # already there: kept as it is
    assert b.add_raw(rows, a.suite_rows()) == 3
    assert b.add_raw(rows, a.suite_rows()) == 0
    assert b.suite_rows() == a.suite_rows()
    got = {r["unit_id"]: r for r in b.raw_rows()}
    assert sorted(got) == [r["unit_id"] for r in rows]
    for r in rows:
        if r["unit_id"] == units[0].unit_id:
            assert got[r["unit_id"]]["wall_time_s"] == 99.0
        else:
            assert got[r["unit_id"]] == r  # every column, the blobs byte for byte
    back = {r.unit.unit_id: r for r in b.records(logs=True)}
    for u in units[1:]:
        np.testing.assert_array_equal(back[u.unit_id].actions, [[0, 2, 1], [2, 2, 0]])
        assert back[u.unit_id].provenance == {"suite_fingerprint": "fp", "where": "/p"}


def test_suite_rows_are_ordered_and_replaced_on_merge(tmp_path):
    store = ResultStore(tmp_path / "s.sqlite")
    added = store.add_raw([], [("zeta", '{"name": "zeta"}', 2.0), ("alpha", '{"a": 1}', 1.0)])
    assert added == 0
    assert store.suite_rows() == [("alpha", '{"a": 1}', 1.0), ("zeta", '{"name": "zeta"}', 2.0)]
    store.add_raw([], [("alpha", '{"a": 2}', 3.0)])
    assert store.suite_rows()[0] == ("alpha", '{"a": 2}', 3.0)
    assert store.suites() == {"alpha": {"a": 2}, "zeta": {"name": "zeta"}}


def test_merge_into_a_store_of_before_provenance(tmp_path):
    old = tmp_path / "old.sqlite"
    _old_store(old)
    source = ResultStore(tmp_path / "new.sqlite")
    source.add(_record(_unit(rep_start=2), provenance={"y": 2}))
    target = ResultStore(old, create=False)
    assert target.add_raw(source.raw_rows(), []) == 1
    assert _columns(old)[-1] == "provenance"
    assert sorted(json.dumps(r.provenance) for r in target.records()) == ['{"y": 2}', "{}"]


def test_a_merge_with_a_bad_row_adds_nothing(tmp_path):
    source = ResultStore(tmp_path / "a.sqlite")
    source.add(_record(_unit(rep_start=0)))
    source.add(_record(_unit(rep_start=2)))
    good, bad = source.raw_rows()
    bad = dict(bad, suite={"not": "text"})
    path = tmp_path / "b.sqlite"
    target = ResultStore(path)
    with pytest.raises(ValueError) as exc:
        target.add_raw([good, bad], [("s", "{}", 1.0)])
    _whole(exc, f"{path} is damaged or not a results store: Error binding parameter 2: type "
                "'dict' is not supported")
    assert len(target) == 0 and target.suite_rows() == []


# ------------------------------------------------------------------ writers and their claims
def _writers(path):
    with sqlite3.connect(path) as con:
        return sorted(con.execute("SELECT token, host, pid, started FROM writers").fetchall())


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_claim_registers_this_process_and_release_drops_it(tmp_path):
    path = tmp_path / "s.sqlite"
    store = ResultStore(path)
    before = time.time()
    token = store.claim()
    after = time.time()
    assert re.fullmatch(r"[0-9a-f]{32}", token)
    ((tok, host, pid, started),) = _writers(path)
    assert (tok, host, pid) == (token, socket.gethostname(), os.getpid())
    assert before <= started <= after
    second = store.claim()
    assert second != token and len(_writers(path)) == 2
    assert store.add(_record(), writer=token) is True
    store.release(token)
    assert [w[0] for w in _writers(path)] == [second]
    with pytest.raises(NotOwnerError) as exc:
        store.add(_record(_unit(rep_start=2)), writer=token)
    _whole(exc, f"{path}: refusing unit {_unit(rep_start=2).unit_id} from a sweep that no "
                "longer owns this store (its process was stopped and a later sweep took "
                "over, or the write comes from another process); run `gambit-gym bench ... "
                "--resume` to finish the sweep")
    assert isinstance(exc.value, ValueError)
    assert len(store) == 1
    assert store.add(_record(_unit(rep_start=2)), writer=second) is True
    assert store.add(_record(_unit(rep_start=4))) is True  # no writer given: no check
    store.release(second)
    assert _writers(path) == []


def test_claim_drops_only_dead_writers_of_this_host(tmp_path):
    path = tmp_path / "s.sqlite"
    store = ResultStore(path)
    host, dead = socket.gethostname(), _dead_pid()
    _sql(path, f"INSERT INTO writers VALUES ('dead', '{host}', {dead}, 1.0)",
         f"INSERT INTO writers VALUES ('alive', '{host}', {os.getpid()}, 2.0)",
         f"INSERT INTO writers VALUES ('init', '{host}', 1, 3.0)",
         f"INSERT INTO writers VALUES ('elsewhere', 'another-host', {dead}, 4.0)")
    token = store.claim()
    assert [w[0] for w in _writers(path)] == sorted(["alive", "init", "elsewhere", token])


@pytest.mark.parametrize("host, pid", [("same", "other"), ("other", "same")])
def test_a_claim_of_another_process_or_host_is_refused(tmp_path, host, pid):
    path = tmp_path / "s.sqlite"
    store = ResultStore(path)
    host = socket.gethostname() if host == "same" else "another-host"
    pid = os.getpid() if pid == "same" else _dead_pid()
    _sql(path, f"INSERT INTO writers VALUES ('theirs', '{host}', {pid}, 1.0)")
    with pytest.raises(NotOwnerError, match=r"^.*refusing unit .* no longer owns this store"):
        store.add(_record(), writer="theirs")
    assert len(store) == 0


def test_pid_alive_counts_another_users_process_as_alive():
    from gambit_gym.bench.store import _pid_alive

    assert _pid_alive(os.getpid()) is True
    assert _pid_alive(_dead_pid()) is False
    if os.geteuid() != 0:
        assert _pid_alive(1) is True  # init: another user's, kill(1, 0) is refused
        return
    child = os.fork()
    if child == 0:  # as nobody, kill(1, 0) raises PermissionError
        code = 3
        try:
            os.setuid(65534)
            code = 0 if _pid_alive(1) is True else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_failed_claim_leaves_no_half_written_claim(tmp_path):
    path = tmp_path / "s.sqlite"
    _sql(path, "CREATE TABLE writers (token TEXT PRIMARY KEY, host TEXT, pid INTEGER)",
         f"INSERT INTO writers VALUES ('dead', '{socket.gethostname()}', {_dead_pid()})")
    store = ResultStore(path)
    with pytest.raises(ValueError) as exc:
        store.claim()
    _whole(exc, f"results store {path}: table writers has 3 columns but 4 values were supplied")
    with sqlite3.connect(path) as con:  # the stale claim it dropped is back: all undone
        assert [r[0] for r in con.execute("SELECT token FROM writers")] == ["dead"]


# ------------------------------------------------------------------ refusals, whole messages
def test_missing_store_and_directory_are_refused(tmp_path):
    missing = tmp_path / "missing.sqlite"
    for kwargs in (dict(create=False), dict(read_only=True), dict(read_only=True, create=True)):
        with pytest.raises(FileNotFoundError) as exc:
            ResultStore(missing, **kwargs)
        _whole(exc, f"no results store at {missing}")
    assert not missing.exists()
    with pytest.raises(ValueError) as exc:
        ResultStore(tmp_path)
    _whole(exc, f"{tmp_path} is a directory; the store is one SQLite file")


@pytest.mark.parametrize("read_only", [False, True])
def test_not_a_database_is_refused(tmp_path, read_only):
    path = tmp_path / "bytes.sqlite"
    path.write_bytes(b"x" * 4096)
    with pytest.raises(ValueError) as exc:
        ResultStore(path, read_only=read_only)
    _whole(exc, f"{path} is not a results store (SQLite): file is not a database")


def test_a_store_whose_table_pages_are_damaged_is_refused(tmp_path):
    path = tmp_path / "s.sqlite"
    ResultStore(path)
    _sql(path, "PRAGMA wal_checkpoint(TRUNCATE)", "PRAGMA journal_mode=DELETE")
    with sqlite3.connect(path) as con:
        page = con.execute("SELECT rootpage FROM sqlite_master WHERE name = 'meta'").fetchone()[0]
        size = con.execute("PRAGMA page_size").fetchone()[0]
    data = bytearray(path.read_bytes())
    data[(page - 1) * size: page * size] = b"\xff" * size
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError) as exc:
        ResultStore(path)
    _whole(exc, f"{path} is not a results store (SQLite): database disk image is malformed")


def test_foreign_sqlite_files_are_refused(tmp_path):
    other = tmp_path / "other.sqlite"
    _sql(other, "CREATE TABLE units (id INTEGER, name TEXT)")
    with pytest.raises(ValueError) as exc:
        ResultStore(other)
    _whole(exc, f"{other} is not a usable results store: no such column: suite")
    with pytest.raises(ValueError) as exc:
        ResultStore(other, read_only=True)
    _whole(exc, f"{other} is not a gambit-gym results store: its table 'units' lacks logs, "
                "suite, summary, unit, unit_id (a SQLite file written by another program?)")
    half = tmp_path / "half.sqlite"
    _sql(half, "CREATE TABLE units (suite TEXT)")
    with pytest.raises(ValueError) as exc:
        ResultStore(half)
    _whole(exc, f"{half} is not a gambit-gym results store: its table 'units' lacks logs, "
                "summary, unit, unit_id (a SQLite file written by another program?)")
    suites = tmp_path / "suites.sqlite"
    _sql(suites, "CREATE TABLE suites (name TEXT)")
    with pytest.raises(ValueError) as exc:
        ResultStore(suites)
    _whole(exc, f"{suites} is not a gambit-gym results store: its table 'suites' lacks "
                "definition (a SQLite file written by another program?)")


def _load_error(data):
    """What np.load says of these bytes (read without pickles)."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            {k: z[k] for k in z.files}
    except ValueError as exc:
        return str(exc)
    raise AssertionError("np.load read them")


def test_damaged_rows_are_refused_when_read(tmp_path):
    path = tmp_path / "s.sqlite"
    store = ResultStore(path)
    store.add(_record())
    head, tail = f"{path} holds a damaged unit (", "); it is not a store written by " \
        "gambit-gym bench, or it was edited"
    with sqlite3.connect(path) as con:
        con.execute("UPDATE units SET summary = ?", (b"PK\x03\x04" + bytes(40),))
    with pytest.raises(ValueError) as exc:
        store.records()
    _whole(exc, head + "BadZipFile: File is not a zip file" + tail)
    # bytes that are neither a zip nor an array are taken for a pickle, never loaded; numpy's
    # long reason is cut at 120 characters
    reason = _load_error(b"\x00\x01\x02\x03")
    assert len(reason) > 121
    _sql(path, "UPDATE units SET summary = X'00010203'")
    with pytest.raises(ValueError) as exc:
        store.records()
    _whole(exc, head + "ValueError: " + reason[:120] + tail)
    # an archive holding a pickled (object) array: never loaded either
    buf = io.BytesIO()
    np.savez(buf, cum_mean=np.array([{"a": 1}], dtype=object), cum_m2=np.zeros(3),
             final_regret=np.zeros(2))
    with sqlite3.connect(path) as con:
        con.execute("UPDATE units SET summary = ?", (buf.getvalue(),))
    with pytest.raises(ValueError) as exc:
        store.records()
    _whole(exc, head + "ValueError: " + _load_error(buf.getvalue())[:120] + tail)
    assert "allow_pickle" in str(exc.value)


def test_a_damaged_suite_definition_is_refused(tmp_path):
    path = tmp_path / "s.sqlite"
    store = ResultStore(path)
    store.add_raw([], [("s", "7", 1.0)])
    with pytest.raises(ValueError) as exc:
        store.suites()
    _whole(exc, f"{path} holds a damaged suite definition ('int' object is not iterable); it "
                "is not a store written by gambit-gym bench, or it was edited")


def test_errors_of_a_store_that_changed_under_it(tmp_path):
    folder = tmp_path / "f"
    path = folder / "s.sqlite"
    store = ResultStore(path)
    _sql(path, "DROP TABLE units")
    with pytest.raises(ValueError) as exc:
        len(store)
    _whole(exc, f"results store {path}: no such table: units")
    shutil.rmtree(folder)
    with pytest.raises(ValueError) as exc:
        len(store)
    _whole(exc, f"cannot open results store {path}: unable to open database file (does its "
                "folder exist, and can it be written?)")


def _read_only_message(path):
    return (f"the results store {path} is read-only (file or folder permissions); copy it "
            "somewhere writable or give another --out")


def _copy_of_store(tmp_path):
    path = tmp_path / "ro" / "s.sqlite"
    store = ResultStore(path)
    store.add(_record())
    store.add_suite(Suite("s", "d", (Setting(ENV, "Random"),), replicates=2, horizon=3, seed=7))
    _sql(path, "PRAGMA wal_checkpoint(TRUNCATE)", "PRAGMA journal_mode=DELETE")
    return path


def test_read_only_open_reads_and_never_writes(tmp_path):
    path = _copy_of_store(tmp_path)
    data = path.read_bytes()
    store = ResultStore(path, read_only=True)
    assert store.read_only is True
    (back,) = store.records(logs=True)
    assert back.provenance == {"suite_fingerprint": "fp", "where": "/p"}
    assert len(store) == 1 and store.suites()["s"]["description"] == "d"
    assert store.info()["units"] == 1 and len(store.raw_rows()) == 1
    for write in (store.claim, lambda: store.add(_record(_unit(rep_start=2))),
                  lambda: store.add_suite(Suite("t", "d", (Setting(ENV, "Random"),))),
                  lambda: store.add_raw([], [])):
        with pytest.raises(ValueError) as exc:
            write()
        _whole(exc, _read_only_message(path))
    assert store.release("anything") is None
    assert path.read_bytes() == data
    assert sorted(os.listdir(path.parent)) == ["s.sqlite"]  # no -wal or -shm beside it


@pytest.fixture
def immutable(tmp_path):
    """A store file and folder that even root cannot write (chattr +i), or a skip."""
    path = _copy_of_store(tmp_path)
    paths = [str(path), str(path.parent)]
    if os.geteuid() != 0:
        os.chmod(path, 0o444)
        os.chmod(path.parent, 0o555)
    elif subprocess.run(["chattr", "+i", *paths], capture_output=True).returncode != 0:
        pytest.skip("cannot make a file that root cannot write here (chattr +i failed)")
    yield path
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", *paths], check=False)
    os.chmod(path.parent, 0o755)
    os.chmod(path, 0o644)


def test_a_store_that_cannot_be_written_is_read_and_refuses_writes(immutable):
    store = ResultStore(immutable)  # not asked to be read-only: found so
    assert store.read_only is True
    assert len(store.records(logs=True)) == 1
    with pytest.raises(ValueError) as exc:
        store.claim()
    _whole(exc, _read_only_message(immutable))
    assert store.release("anything") is None


def test_a_store_made_read_only_after_opening_refuses_writes(tmp_path):
    path = _copy_of_store(tmp_path)
    store = ResultStore(path)
    assert store.read_only is False
    _sql(path, "PRAGMA wal_checkpoint(TRUNCATE)", "PRAGMA journal_mode=DELETE")
    paths = [str(path), str(path.parent)]
    if os.geteuid() != 0:
        os.chmod(path, 0o444)
        os.chmod(path.parent, 0o555)
    elif subprocess.run(["chattr", "+i", *paths], capture_output=True).returncode != 0:
        pytest.skip("cannot make a file that root cannot write here (chattr +i failed)")
    try:
        with pytest.raises(ValueError) as exc:
            store.claim()
        _whole(exc, _read_only_message(path))
        assert len(store) == 1
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", *paths], check=False)
        os.chmod(path.parent, 0o755)
        os.chmod(path, 0o644)


@pytest.mark.parametrize("read_only", [True, False])
def test_a_wal_store_in_a_folder_that_cannot_be_written_is_read(tmp_path, read_only):
    path = tmp_path / "ro" / "s.sqlite"
    store = ResultStore(path)  # as a sweep leaves it: WAL mode, kept in the file
    store.add(_record())
    del store
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()
    assert sorted(os.listdir(path.parent)) == ["s.sqlite"]
    data = path.read_bytes()
    paths = [str(path), str(path.parent)]
    if os.geteuid() != 0:
        os.chmod(path, 0o444)
        os.chmod(path.parent, 0o555)
    elif subprocess.run(["chattr", "+i", *paths], capture_output=True).returncode != 0:
        pytest.skip("cannot make a file that root cannot write here (chattr +i failed)")
    try:
        store = ResultStore(path, read_only=read_only, create=False)
        assert store.read_only is True
        (back,) = store.records(logs=True)
        np.testing.assert_array_equal(back.actions, [[0, 2, 1], [2, 2, 0]])
        assert len(store) == 1 and len(store.raw_rows()) == 1
        with pytest.raises(ValueError) as exc:
            store.claim()
        _whole(exc, _read_only_message(path))
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", *paths], check=False)
        os.chmod(path.parent, 0o755)
        os.chmod(path, 0o644)
    assert path.read_bytes() == data


def _unwritable(folder):
    """Make a folder and its files unwritable (chattr +i as root); undo with the returned call."""
    paths = [str(folder), *(str(p) for p in folder.iterdir())]
    if os.geteuid() != 0:
        for p in paths:
            os.chmod(p, 0o555 if os.path.isdir(p) else 0o444)
    elif subprocess.run(["chattr", "+i", *paths], capture_output=True).returncode != 0:
        pytest.skip("cannot make a file that root cannot write here (chattr +i failed)")

    def undo():
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", *paths], check=False)
        for p in paths:
            os.chmod(p, 0o755 if os.path.isdir(p) else 0o644)
    return undo


@pytest.mark.parametrize("wal", ["empty", "with units"])
def test_a_wal_store_with_its_log_beside_it_in_a_folder_that_cannot_be_written(tmp_path, wal):
    source = tmp_path / "s.sqlite"
    writer = ResultStore(source)
    writer.add(_record())
    held = sqlite3.connect(source)  # a second connection: closing the store's does not
    held.execute("SELECT COUNT(*) FROM units").fetchall()  # checkpoint the log into the file
    writer.add(_record(_unit(rep_start=2)))
    log = source.with_name("s.sqlite-wal").read_bytes()
    assert len(log) > 0
    folder = tmp_path / "copy"
    folder.mkdir()
    path = folder / "s.sqlite"
    path.write_bytes(source.read_bytes())  # the file alone holds the first unit only
    path.with_name("s.sqlite-wal").write_bytes(b"" if wal == "empty" else log)
    held.close()
    undo = _unwritable(folder)
    try:
        if wal == "empty":  # nothing in the log: the file is the whole store
            assert len(ResultStore(path, read_only=True).records()) == 1
        else:  # the second unit is only in the log: never read the file alone
            with pytest.raises(ValueError) as exc:
                ResultStore(path, read_only=True)
            _whole(exc, f"cannot open results store {path}: unable to open database file")
    finally:
        undo()
