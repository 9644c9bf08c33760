"""The results store: one SQLite file, one row per completed unit.

Why SQLite (see docs/harness.md): it is in the standard library; a row is written in one
transaction, so a record is either wholly there or absent after Ctrl-C or ``kill -9``; the
primary key on the unit id makes a second insert of the same unit a no-op, so resuming (or two
sweeps racing on one store) cannot duplicate; and WAL mode lets readers (the leaderboard, the
report) work while a sweep writes, with writers serialised by SQLite's own file locks.

Arrays are kept as compressed ``.npz`` blobs in two columns: ``summary`` (per-step moments of
cumulative regret and final regrets, and each replicate's total unsafe deliveries, tokens and
cost where the env reports them; small, read by leaderboards and plots) and ``logs``
(actions, rewards, propensities, contexts, read only by the off-policy export). The
``provenance`` column (JSON, :mod:`gambit_gym.bench.provenance`) was added later: a store
written before it is read as it is (provenance ``{}``) and gains the column, empty, on its next
write. ``read_only=True`` opens a store with SQLite's ``mode=ro`` (merge and validate read
other people's stores that way). A store in a folder that cannot be written, with no write-ahead
log beside it, is opened ``immutable`` (SQLite could not make the ``-shm`` index its WAL mode
needs): read, never written.
"""

from __future__ import annotations

import io
import json
import os
import socket
import sqlite3
import time
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from gambit_gym.bench.suites import Suite
from gambit_gym.bench.units import UnitRecord, unit_from_dict, unit_to_dict

SCHEMA_VERSION = 1
#: Summary-blob arrays ``outcome_<key>``: per-replicate totals of the safety and cost outcomes
#: (cumulative unsafe deliveries, tokens, cost; :attr:`UnitRecord.outcomes`). Stores written
#: before them simply lack them.
OUTCOME_PREFIX = "outcome_"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS units (
    unit_id     TEXT PRIMARY KEY,
    suite       TEXT NOT NULL,
    env_id      TEXT NOT NULL,
    env_key     TEXT NOT NULL,
    agent       TEXT NOT NULL,
    agent_key   TEXT NOT NULL,
    panel       TEXT NOT NULL,
    label       TEXT NOT NULL,
    horizon     INTEGER NOT NULL,
    seed        INTEGER NOT NULL,
    rep_start   INTEGER NOT NULL,
    n_reps      INTEGER NOT NULL,
    wall_time_s REAL NOT NULL,
    created     REAL NOT NULL,
    unit        TEXT NOT NULL,
    versions    TEXT NOT NULL,
    metadata    TEXT NOT NULL,
    summary     BLOB NOT NULL,
    logs        BLOB NOT NULL,
    provenance  TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS units_suite ON units (suite);
CREATE TABLE IF NOT EXISTS suites (
    name        TEXT PRIMARY KEY,
    definition  TEXT NOT NULL,
    updated     REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key         TEXT PRIMARY KEY,
    value       TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS writers (
    token       TEXT PRIMARY KEY,
    host        TEXT NOT NULL,
    pid         INTEGER NOT NULL,
    started     REAL NOT NULL
);
"""

_TABLES = {"units": {"unit_id", "suite", "unit", "summary", "logs"},
           "suites": {"name", "definition"}}


class NotOwnerError(ValueError):
    """A write from a sweep that no longer owns its place in the store (see :meth:`claim`)."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True

_COLUMNS = ("unit_id, suite, env_id, env_key, agent, agent_key, panel, label, horizon, seed, "
            "rep_start, n_reps, wall_time_s, created, unit, versions, metadata")


def _pack(arrays: dict[str, np.ndarray | None]) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: v for k, v in arrays.items() if v is not None})
    return buf.getvalue()


def _unpack(blob: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(blob), allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _small_int(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if a.size and np.issubdtype(a.dtype, np.integer) and a.min() >= -32768 and a.max() < 32768:
        return a.astype(np.int16)
    return a


class ResultStore:
    """A results store on one SQLite file (created on first use).

    Args:
        path: the store file (e.g. ``results.sqlite``).
        create: create the file if it is missing; when False a missing file is an error.
        read_only: open the existing file read-only (SQLite ``mode=ro``): nothing is ever
            written to it, writes raise ``ValueError``.

    Raises:
        FileNotFoundError: ``create`` is False and there is no store at ``path``.
    """

    def __init__(self, path: str | Path, *, create: bool = True,
                 read_only: bool = False) -> None:
        self.path = Path(path)
        self._open_read_only = read_only
        if (read_only or not create) and not self.path.is_file():
            raise FileNotFoundError(f"no results store at {self.path}")
        if self.path.is_dir():
            raise ValueError(f"{self.path} is a directory; the store is one SQLite file")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.read_only = read_only
        if read_only:  # opened with SQLite's mode=ro: the file is never changed
            with self._connect() as con:
                self._check_tables(con)
                self._provenance = self._has_provenance_column(con)
            return
        with self._connect() as con:
            try:
                con.executescript(_SCHEMA)
                con.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                            (str(SCHEMA_VERSION),))
            except sqlite3.OperationalError as exc:
                if "readonly" not in str(exc) and "read-only" not in str(exc):
                    raise ValueError(f"{self.path} is not a usable results store: {exc}") \
                        from None
                self.read_only = True  # reading still works; writing says why it cannot
            except sqlite3.DatabaseError as exc:
                raise ValueError(f"{self.path} is not a results store (SQLite): {exc}") \
                    from None
            self._check_tables(con)
            self._provenance = self._has_provenance_column(con)

    def _check_tables(self, con: sqlite3.Connection) -> None:
        """Refuse a SQLite file that is some other program's database (or a damaged store)."""
        for table, needed in _TABLES.items():
            try:
                have = {row[1] for row in con.execute(f"PRAGMA table_info({table})")}
            except sqlite3.DatabaseError as exc:
                raise ValueError(f"{self.path} is not a results store (SQLite): {exc}") \
                    from None
            missing = needed - have
            if missing:
                raise ValueError(f"{self.path} is not a gambit-gym results store: its table "
                                 f"{table!r} lacks {', '.join(sorted(missing))} (a SQLite file "
                                 "written by another program?)")

    def _writable(self) -> None:
        if self.read_only:
            raise ValueError(f"the results store {self.path} is read-only (file or folder "
                             "permissions); copy it somewhere writable or give another --out")

    @staticmethod
    def _has_provenance_column(con: sqlite3.Connection) -> bool:
        return "provenance" in {row[1] for row in con.execute("PRAGMA table_info(units)")}

    def _add_provenance_column(self, con: sqlite3.Connection) -> None:
        """Give a store of before provenance its column (empty) before the first write."""
        if not self._provenance and not self._has_provenance_column(con):
            con.execute("ALTER TABLE units ADD COLUMN provenance TEXT NOT NULL DEFAULT '{}'")
        self._provenance = True

    def _wal_is_empty(self) -> bool:
        """No write-ahead log with content beside the file (all of the store is in the file).

        A store is in WAL mode for good (the mode is kept in the file), and SQLite reads a WAL
        file only beside a ``-shm`` index it can create; in a folder that cannot be written
        (another user's, a read-only mount) it cannot, and says "unable to open database
        file". When there is no ``-wal`` file with content (no writer has the store open, and
        none left one behind) the file holds every unit, so :meth:`_connect` then opens it
        ``immutable``: read-only, with no ``-shm``.
        """
        wal = self.path.with_name(self.path.name + "-wal")
        return not wal.exists() or wal.stat().st_size == 0

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            if getattr(self, "_open_read_only", False):
                uri = f"{self.path.resolve().as_uri()}?mode=ro"
                con = sqlite3.connect(uri, uri=True, timeout=120.0, isolation_level=None)
            else:
                con = sqlite3.connect(self.path, timeout=120.0, isolation_level=None)
        except sqlite3.Error as exc:
            raise ValueError(f"cannot open results store {self.path}: {exc} (does its folder "
                             "exist, and can it be written?)") from None
        try:
            try:
                con.execute("PRAGMA journal_mode=WAL")
            except sqlite3.OperationalError as exc:
                if "unable to open" in str(exc) and self._wal_is_empty():
                    con.close()  # a WAL store in a folder that cannot be written: see below
                    con = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro&immutable=1",
                                          uri=True, timeout=120.0, isolation_level=None)
                elif "readonly" not in str(exc) and "read-only" not in str(exc):
                    raise ValueError(f"cannot open results store {self.path}: {exc}") from None
            except sqlite3.DatabaseError as exc:
                raise ValueError(f"{self.path} is not a results store (SQLite): {exc}") from None
            con.execute("PRAGMA synchronous=NORMAL")
            con.execute("PRAGMA busy_timeout=120000")
            try:
                yield con
            except sqlite3.OperationalError as exc:
                if "readonly" in str(exc) or "read-only" in str(exc):
                    raise ValueError(f"the results store {self.path} is read-only (file or "
                                     "folder permissions); copy it somewhere writable or give "
                                     "another --out") from None
                raise ValueError(f"results store {self.path}: {exc}") from None
            except sqlite3.DatabaseError as exc:
                raise ValueError(f"{self.path} is damaged or not a results store: {exc}") \
                    from None
        finally:
            con.close()

    # ------------------------------------------------------------------ writing
    def claim(self) -> str:
        """Register this process as a writer of the store; returns its token for :meth:`add`.

        A sweep claims the store when it starts and releases it (:meth:`release`) when it ends. The
        claims of writers on this host whose process is gone (a sweep killed with ``kill -9``)
        are dropped, so a write that arrives later under such a claim is refused; so is a write
        under a claim from any process other than the one that made it (a worker forked from
        the sweep, left behind after its parent died).
        """
        self._writable()
        token = uuid.uuid4().hex
        host = socket.gethostname()
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                for old, pid in con.execute("SELECT token, pid FROM writers WHERE host = ?",
                                            (host,)).fetchall():
                    if not _pid_alive(pid):
                        con.execute("DELETE FROM writers WHERE token = ?", (old,))
                con.execute("INSERT INTO writers VALUES (?, ?, ?, ?)",
                            (token, host, os.getpid(), time.time()))
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return token

    def release(self, token: str) -> None:
        """Drop a claim made by :meth:`claim` (the sweep is done)."""
        if self.read_only:
            return
        with self._connect() as con:
            con.execute("DELETE FROM writers WHERE token = ?", (token,))

    def add(self, record: UnitRecord, *, writer: str | None = None) -> bool:
        """Store a completed unit in one transaction.

        Args:
            record: the unit's record.
            writer: the token of the sweep writing it (from :meth:`claim`); when given, the
                write is refused unless that claim is still held by this process.

        Raises:
            NotOwnerError: ``writer`` is no longer a claim of this process.

        Returns:
            True if it was new, False if a record with the same unit id was already there
            (the store is left unchanged).
        """
        u, s = record.unit, record.unit.setting
        summary = _pack({"cum_mean": record.cum_mean, "cum_m2": record.cum_m2,
                         "final_regret": record.final_regret,
                         **{OUTCOME_PREFIX + k: np.asarray(v, dtype=np.float64)
                            for k, v in record.outcomes.items()}})
        logs = _pack({
            "actions": _small_int(record.actions),
            "rewards": record.rewards.astype(np.float32),
            "propensities": None if record.propensities is None
            else record.propensities.astype(np.float32),
            "contexts": None if record.contexts is None else _small_int(record.contexts),
        })
        row = (u.unit_id, u.suite, s.env_id, s.env_key, s.agent, s.agent_key, s.panel, s.label,
               u.horizon, u.seed, u.rep_start, u.n_reps, record.wall_time_s,
               record.created or time.time(), json.dumps(unit_to_dict(u), sort_keys=True),
               json.dumps(record.versions, sort_keys=True),
               json.dumps(record.metadata, sort_keys=True, default=str), summary, logs,
               json.dumps(record.provenance, sort_keys=True, default=str))
        self._writable()
        with self._connect() as con:
            self._add_provenance_column(con)
            con.execute("BEGIN IMMEDIATE")
            try:
                if writer is not None:
                    self._check_owner(con, writer, u.unit_id)
                cur = con.execute(f"INSERT OR IGNORE INTO units ({_COLUMNS}, summary, logs, "
                                  f"provenance) VALUES ({', '.join('?' * len(row))})", row)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            return cur.rowcount == 1

    def _check_owner(self, con: sqlite3.Connection, token: str, unit_id: str) -> None:
        row = con.execute("SELECT host, pid FROM writers WHERE token = ?", (token,)).fetchone()
        if row is None or row[1] != os.getpid() or row[0] != socket.gethostname():
            raise NotOwnerError(
                f"{self.path}: refusing unit {unit_id} from a sweep that no longer owns this "
                "store (its process was stopped and a later sweep took over, or the write comes "
                "from another process); run `gambit-gym bench ... --resume` to finish the sweep")

    def add_suite(self, suite: Suite) -> None:
        """Record a suite's definition (for the report's metadata)."""
        self._writable()
        definition = {"name": suite.name, "description": suite.description,
                      "replicates": suite.replicates, "horizon": suite.horizon,
                      "seed": suite.seed, "settings": len(suite.settings)}
        with self._connect() as con:
            con.execute("INSERT OR REPLACE INTO suites VALUES (?, ?, ?)",
                        (suite.name, json.dumps(definition, sort_keys=True), time.time()))

    # ------------------------------------------------------------------ reading
    def unit_ids(self, suite: str | None = None) -> set[str]:
        """Ids of the stored units (of one suite, or all)."""
        with self._connect() as con:
            if suite is None:
                rows = con.execute("SELECT unit_id FROM units").fetchall()
            else:
                rows = con.execute("SELECT unit_id FROM units WHERE suite = ?",
                                   (suite,)).fetchall()
        return {r[0] for r in rows}

    def __len__(self) -> int:
        with self._connect() as con:
            return int(con.execute("SELECT COUNT(*) FROM units").fetchone()[0])

    def suites(self) -> dict[str, dict[str, Any]]:
        """Stored suite definitions by name (suites with units but no definition included)."""
        with self._connect() as con:
            rows = con.execute("SELECT name, definition FROM suites").fetchall()
            names = [r[0] for r in con.execute("SELECT DISTINCT suite FROM units ORDER BY suite")]
        try:
            out = {str(name): dict(json.loads(d)) for name, d in rows}
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{self.path} holds a damaged suite definition ({exc}); it is not "
                             "a store written by gambit-gym bench, or it was edited") from None
        names = [str(n) for n in names]
        for name in names:
            out.setdefault(name, {"name": name})
        return out

    def records(self, *, suite: str | None = None, env_id: str | None = None,
                agent: str | None = None, unit_id: str | None = None,
                logs: bool = False) -> list[UnitRecord]:
        """Stored records, optionally filtered; arrays of the logs only when ``logs``.

        ``env_id`` and ``agent`` may also be full configuration keys, as the leaderboard names
        them (``'GambitIHS-v0{"n_prompts":3}'``), to pick one configuration.

        Records are ordered by (suite, env config, agent config, first replicate).
        """
        where, params = [], []
        env_column = "env_key" if env_id is not None and "{" in env_id else "env_id"
        agent_column = "agent_key" if agent is not None and "{" in agent else "agent"
        for column, value in (("suite", suite), (env_column, env_id), (agent_column, agent),
                              ("unit_id", unit_id)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        provenance = "provenance" if self._provenance else "'{}'"
        sql = (f"SELECT unit, wall_time_s, created, versions, metadata, {provenance}, summary"
               f"{', logs' if logs else ''} FROM units"
               + (f" WHERE {' AND '.join(where)}" if where else "")
               + " ORDER BY suite, env_key, agent_key, rep_start")
        with self._connect() as con:
            rows = con.execute(sql, params).fetchall()
        out = []
        for row in rows:
            try:
                out.append(self._record(row, logs))
            except (ValueError, KeyError, TypeError, AttributeError, OSError,
                    zipfile.BadZipFile) as exc:
                raise ValueError(f"{self.path} holds a damaged unit ({type(exc).__name__}: "
                                 f"{str(exc)[:120]}); it is not a store written by gambit-gym "
                                 "bench, or it was edited") from None
        return out

    @staticmethod
    def _record(row: tuple, logs: bool) -> UnitRecord:
        summary = _unpack(row[6])
        arrays = _unpack(row[7]) if logs else {}
        empty = np.zeros((0, 0))
        provenance = json.loads(row[5])
        return UnitRecord(
            unit=unit_from_dict(json.loads(row[0])), cum_mean=summary["cum_mean"],
            cum_m2=summary["cum_m2"], final_regret=summary["final_regret"],
            actions=arrays.get("actions", empty).astype(np.int64),
            rewards=arrays.get("rewards", empty).astype(np.float64),
            propensities=(arrays["propensities"].astype(np.float64)
                          if "propensities" in arrays else None),
            contexts=(arrays["contexts"].astype(np.int64) if "contexts" in arrays
                      else None),
            wall_time_s=float(row[1]), created=float(row[2]),
            versions=json.loads(row[3]), metadata=json.loads(row[4]),
            provenance=provenance if isinstance(provenance, dict) else {},
            outcomes={k[len(OUTCOME_PREFIX):]: v for k, v in summary.items()
                      if k.startswith(OUTCOME_PREFIX)})

    # ------------------------------------------------------------------ merging
    def raw_rows(self) -> list[dict[str, Any]]:
        """Every unit row as stored, blobs undecoded (what ``gambit-gym merge`` copies)."""
        provenance = "provenance" if self._provenance else "'{}' AS provenance"
        with self._connect() as con:
            con.row_factory = sqlite3.Row
            rows = con.execute(f"SELECT {_COLUMNS}, summary, logs, {provenance} FROM units "
                               "ORDER BY unit_id").fetchall()
        return [dict(r) for r in rows]

    def suite_rows(self) -> list[tuple[str, str, float]]:
        """The stored suite definitions as ``(name, definition JSON, updated)``."""
        with self._connect() as con:
            return [tuple(r) for r in con.execute("SELECT name, definition, updated FROM suites "
                                                  "ORDER BY name").fetchall()]

    def add_raw(self, rows: list[dict[str, Any]],
                suites: list[tuple[str, str, float]]) -> int:
        """Insert rows from :meth:`raw_rows` of other stores in one transaction.

        Returns:
            The number of rows that were new (a unit id already here is left as it is).
        """
        self._writable()
        names = f"{_COLUMNS}, summary, logs, provenance"
        keys = [k.strip() for k in names.split(",")]
        added = 0
        with self._connect() as con:
            self._add_provenance_column(con)
            con.execute("BEGIN IMMEDIATE")
            try:
                for row in rows:
                    cur = con.execute(f"INSERT OR IGNORE INTO units ({names}) VALUES "
                                      f"({', '.join('?' * len(keys))})",
                                      [row[k] for k in keys])
                    added += cur.rowcount
                con.executemany("INSERT OR REPLACE INTO suites VALUES (?, ?, ?)", suites)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return added

    def info(self) -> dict[str, Any]:
        """Counts and totals for the report's metadata."""
        with self._connect() as con:
            n, wall, first, last = con.execute(
                "SELECT COUNT(*), COALESCE(SUM(wall_time_s), 0), MIN(created), MAX(created) "
                "FROM units").fetchone()
            reps = con.execute("SELECT COALESCE(SUM(n_reps), 0) FROM units").fetchone()[0]
            versions = con.execute("SELECT DISTINCT versions FROM units").fetchall()
        return {"path": str(self.path), "units": int(n), "replicates": int(reps),
                "compute_s": float(wall), "first": first, "last": last,
                "versions": [json.loads(v[0]) for v in versions]}
