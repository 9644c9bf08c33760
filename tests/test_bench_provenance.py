"""Provenance in every stored unit; old stores still read; the leaderboard refuses mixtures."""

import os
import shutil
import sqlite3
import sys

import numpy as np
import pytest
from bench_helpers import VersionedRandom

from gambit_gym.bench import suites
from gambit_gym.bench.executors import SerialExecutor, sweep
from gambit_gym.bench.leaderboard import Leaderboard
from gambit_gym.bench.provenance import (
    ProvenanceMismatch,
    file_sha256,
    suite_fingerprint,
    suite_protocol,
)
from gambit_gym.bench.store import ResultStore
from gambit_gym.text.bank import default_bank_path


def tiny_suite() -> suites.Suite:
    return suites.get("one_d").narrow(replicates=2, horizon=10,
                                      agents=["Random", "Oracle"]).with_agent(
        VersionedRandom)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    store = ResultStore(tmp_path_factory.mktemp("prov") / "p.sqlite")
    sweep(tiny_suite(), store, executor=SerialExecutor(), chunk=1, progress=False,
          propensities=False)
    return store


def test_every_unit_carries_its_provenance(store):
    records = store.records()
    assert len(records) == 6
    fingerprint = suite_fingerprint(tiny_suite())
    bank = file_sha256(default_bank_path())
    for rec in records:
        prov = rec.provenance
        assert set(prov["versions"]) >= {"python", "numpy", "torch", "gambit_gym", "gymnasium"}
        assert prov["versions"]["python"] == sys.version.split()[0]
        assert prov["versions"]["numpy"] == np.__version__
        assert prov["machine"]["host"] and prov["machine"]["cpus"] >= 1
        assert prov["bank"] == {"file": default_bank_path().name, "sha256": bank}
        assert prov["suite"] == {"name": "one_d", "fingerprint": fingerprint,
                                 "protocol": suite_protocol(tiny_suite())}
        assert prov["env"]["id"] == "GambitIHS-1D-v0"
    agents = {rec.unit.setting.agent: rec.provenance["agent"] for rec in records}
    assert agents["Random"] == {"name": "Random", "class": "gambit_gym.agents.classic:RandomAgent",
                                "kwargs": {}, "version": None}
    assert agents["bench_helpers:VersionedRandom"]["version"] == "2.1-test"
    assert agents["bench_helpers:VersionedRandom"]["class"] == "bench_helpers:VersionedRandom"


def test_fingerprint_follows_the_definition_and_protocol_the_run():
    base = suites.get("one_d")
    assert suite_fingerprint(base) == suite_fingerprint(suites.get("one_d"))
    for other in (base.narrow(replicates=3), base.narrow(horizon=7), base.narrow(seed=1),
                  suites.get("scale_arms")):
        assert suite_fingerprint(other) != suite_fingerprint(base)
        assert suite_protocol(other) != suite_protocol(base)
    for same_run in (base.narrow(agents=["Random", "Oracle"]), base.with_agent(VersionedRandom)):
        assert suite_fingerprint(same_run) != suite_fingerprint(base)
        assert suite_protocol(same_run) == suite_protocol(base)


def test_leaderboard_shows_provenance(store):
    board = Leaderboard.from_store(store, reps=100)
    md = board.render("md")
    assert f"sha256 {file_sha256(default_bank_path())}" in md
    assert f"fingerprint {suite_fingerprint(tiny_suite())}" in md
    assert "bench_helpers:VersionedRandom {} version 2.1-test" in md
    import json

    doc = json.loads(board.render("json"))
    assert doc["provenance"]["units"] == 6 and doc["provenance"]["without_provenance"] == 0


def _copy(store, tmp_path, name):
    path = tmp_path / name
    shutil.copy(store.path, path)
    return path


@pytest.mark.parametrize("field, value, message", [
    ("$.bank.sha256", "0" * 64, "two different response banks"),
    ("$.suite.protocol", "feedfacefeedface", "holds units of suite 'one_d' run two ways"),
])
def test_leaderboard_refuses_mixed_banks_and_suite_definitions(store, tmp_path, field, value,
                                                               message):
    path = _copy(store, tmp_path, "mixed.sqlite")
    with sqlite3.connect(path) as con:
        con.execute(f"UPDATE units SET provenance = json_set(provenance, '{field}', ?) "
                    "WHERE agent = 'Oracle'", (value,))
    with pytest.raises(ProvenanceMismatch, match=message) as info:
        Leaderboard.from_store(ResultStore(path), reps=100)
    assert "mixed.sqlite" in str(info.value) and "\n" not in str(info.value)


def _old_layout(store, tmp_path):
    path = _copy(store, tmp_path, "old.sqlite")
    con = sqlite3.connect(path)  # the layout before provenance was recorded
    with con:
        con.execute("ALTER TABLE units DROP COLUMN provenance")
        con.execute("UPDATE units SET unit = json_remove(unit, '$.suite_fingerprint')")
    con.close()  # checkpoints the write-ahead log into the file
    return path


def _columns(path):
    with sqlite3.connect(path) as con:
        return {row[1] for row in con.execute("PRAGMA table_info(units)")}


def test_store_of_before_provenance_still_reads(store, tmp_path):
    path = _old_layout(store, tmp_path)
    before = path.read_bytes()
    assert "provenance" not in _columns(path)
    for read_only in (True, False):
        old = ResultStore(path, read_only=read_only, create=False)
        records = old.records()
        assert len(records) == 6 and all(r.provenance == {} for r in records)
        assert all(r.unit.suite_fingerprint == "" for r in records)
        board = Leaderboard.from_store(old, reps=100)
        assert board.provenance["without_provenance"] == 6
        assert "6 (6 written before provenance was recorded)" in board.render("md")
        if read_only:
            with pytest.raises(ValueError, match="read-only"):
                old.add(records[0])
            assert path.read_bytes() == before  # mode=ro: not a byte changed
    assert "provenance" not in _columns(path)  # reading does not change the layout
    # the first write adds the column, empty for the old units
    new = store.records()[0]
    moved = type(new)(**{**new.__dict__, "unit": type(new.unit)(
        **{**new.unit.__dict__, "rep_start": 99})})
    assert ResultStore(path).add(moved)
    assert "provenance" in _columns(path)
    provs = [r.provenance for r in ResultStore(path).records()]
    assert provs.count({}) == 6 and len(provs) == 7


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only files")
def test_read_only_store_of_before_provenance_reads_as_it_is(store, tmp_path):
    path = _old_layout(store, tmp_path)
    path.chmod(0o444)
    path.parent.chmod(0o555)
    try:
        records = ResultStore(path, create=False).records()
        assert len(records) == 6 and all(r.provenance == {} for r in records)
        assert "provenance" not in _columns(path)
    finally:
        path.parent.chmod(0o755)
        path.chmod(0o644)
