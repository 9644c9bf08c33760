"""Accepting results from other machines: merge stores, and validate a store by re-running.

A leaderboard maintainer receives stores run elsewhere (a suite split over machines with
``gambit-gym bench --shard I/N``, or a submitter's own agent). :func:`merge_stores` combines
them into a new store: a unit found in two inputs with the same numbers is kept once; the same
unit id with different numbers, or units of one env column on two response banks, or one
suite run with another R, T or seed (:mod:`gambit_gym.bench.provenance`) are refused before
anything is written. A submitter's store of a suite with their agent added (``--add-agent``)
merges with the maintainer's: the suite's shared units are identical and kept once.
:func:`validate_store` re-runs a random sample of a store's units on a few replicates and
checks every number reproduces bit for bit, so a submission can be accepted without trusting
it: a replicate's result depends only on its seed, whatever the machine ran.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gambit_gym.bench.provenance import check_consistent
from gambit_gym.bench.store import ResultStore


class MergeConflict(ValueError):
    """Two stores hold the same unit with different numbers."""


@dataclass
class MergeReport:
    """What :func:`merge_stores` did.

    Attributes:
        out: the merged store.
        units: units written.
        duplicates: units found in more than one input with identical numbers (kept once).
        per_input: units read from each input, by path.
    """

    out: Path
    units: int
    duplicates: int
    per_input: dict[str, int] = field(default_factory=dict)


def _arrays(blob: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(blob), allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Names of the arrays whose values differ between two rows of one unit.

    Compared: the summary (regret moments, per-replicate regret at T) and the logged actions,
    rewards and contexts. Propensities are not: they are Monte Carlo estimates whose sample
    count (or absence, ``--no-propensities``) is not part of the unit id, so two honest runs
    of a unit may differ in them; the first input's are kept.
    """
    out = []
    for column in ("summary", "logs"):
        xa, xb = _arrays(a[column]), _arrays(b[column])
        xa.pop("propensities", None)
        xb.pop("propensities", None)
        for key in sorted(set(xa) | set(xb)):
            if key not in xa or key not in xb or xa[key].shape != xb[key].shape \
                    or not np.array_equal(xa[key], xb[key], equal_nan=True):
                out.append(key)
    return out


def _describe(row: dict[str, Any]) -> str:
    first = int(row["rep_start"])
    return (f"unit {row['unit_id']} ({row['agent_key']} on {row['env_key']}, suite "
            f"{row['suite']!r}, replicates {first}..{first + int(row['n_reps']) - 1})")


def merge_stores(out: str | Path, inputs: list[str | Path]) -> MergeReport:
    """Merge result stores into a new store ``out``; inputs are only read.

    Everything is checked before ``out`` is created, so a refused merge writes nothing.

    Raises:
        ValueError: no inputs, ``out`` already exists or is one of the inputs, or an input is
            not a results store.
        MergeConflict: a unit id with different numbers in two inputs.
        ProvenanceMismatch: units of one env column on two banks, or of one suite run with two
            protocols (R, T, seed).
    """
    out = Path(out)
    paths = [Path(p) for p in inputs]
    if not paths:
        raise ValueError("nothing to merge: give the stores to merge after OUT")
    if out.exists():
        raise ValueError(f"{out} already exists; merge writes a new store: give a new file "
                         "name (to add to a store, merge it with the new ones into a new file)")
    for p in paths:
        if p.resolve() == out.resolve():
            raise ValueError(f"{p} is both an input and OUT; give a new file for OUT")
    kept: dict[str, tuple[dict[str, Any], str]] = {}
    suites: dict[str, tuple[tuple[str, str, float], str]] = {}
    duplicates = 0
    per_input: dict[str, int] = {}
    for p in paths:
        store = ResultStore(p, read_only=True)
        rows = store.raw_rows()
        per_input[str(p)] = len(rows)
        for row in rows:
            uid = row["unit_id"]
            if uid not in kept:
                kept[uid] = (row, str(p))
                continue
            first, where = kept[uid]
            diff = _differences(first, row)
            if diff:
                raise MergeConflict(
                    f"{_describe(row)} is in {where} and {p} with different results "
                    f"({', '.join(diff)} differ); one of them is not an honest run of it: check "
                    "each with gambit-gym validate, and merge the one that passes")
            duplicates += 1
        for name, definition, updated in store.suite_rows():
            if name in suites:
                (_, seen, _), where = suites[name]
                a, b = json.loads(seen), json.loads(definition)
                run = ("replicates", "horizon", "seed")
                if [a.get(k) for k in run] != [b.get(k) for k in run]:
                    raise ValueError(
                        f"suite {name!r} was run with other replicates, horizon or seed in "
                        f"{where} ({', '.join(f'{k} {a.get(k)}' for k in run)}) than in {p} "
                        f"({', '.join(f'{k} {b.get(k)}' for k in run)}); run every part with "
                        "the same --replicates, --horizon and --seed")
                if b.get("settings", 0) > a.get("settings", 0):  # e.g. with --add-agent
                    suites[name] = ((name, definition, updated), str(p))
            else:
                suites[name] = ((name, definition, updated), str(p))
    check_consistent((row["env_key"], row["suite"], json.loads(row["provenance"] or "{}"),
                      where) for row, where in kept.values())
    merged = ResultStore(out)
    written = merged.add_raw([row for row, _ in kept.values()],
                             [entry for entry, _ in suites.values()])
    return MergeReport(out=out, units=written, duplicates=duplicates, per_input=per_input)


@dataclass(frozen=True)
class UnitCheck:
    """One re-run unit.

    Attributes:
        unit_id: the unit.
        what: agent, env and replicates, for the report.
        replicates: replicates re-run.
        mismatches: what did not reproduce (empty: bit for bit).
    """

    unit_id: str
    what: str
    replicates: int
    mismatches: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether every number reproduced."""
        return not self.mismatches


def _first_diff(name: str, stored: np.ndarray, fresh: np.ndarray) -> str | None:
    if stored.shape != fresh.shape:
        return f"{name}: stored shape {stored.shape}, re-run {fresh.shape}"
    bad = np.argwhere(~((stored == fresh) | (np.isnan(stored) & np.isnan(fresh)))
                      if stored.dtype.kind == "f" else stored != fresh)
    if bad.size == 0:
        return None
    at = tuple(int(i) for i in bad[0])
    return (f"{name} differs at {len(bad)} place(s), first {at}: stored {stored[at]!r}, "
            f"re-run {fresh[at]!r}")


def check_unit(record: Any, replicates: int) -> UnitCheck:
    """Re-run a stored unit's first ``replicates`` replicates and compare bit for bit.

    Compared: each replicate's cumulative regret at T (float64, as stored), actions, rewards (as
    stored, float32) and context ids; and the stored per-step mean regret curve against the
    stored per-replicate regrets (a summary edited apart from them is caught too).
    """
    from gambit_gym.bench.runner import run

    u, s = record.unit, record.unit.setting
    n = min(int(replicates), record.n_reps)
    result = run(s.env_id, s.agent, horizon=u.horizon, replicates=n, seed=u.run_seed,
                 env_kwargs=dict(s.env_kwargs), agent_kwargs=dict(s.agent_kwargs),
                 device=u.device, progress=False, propensities=False)
    cum = np.cumsum(np.asarray(result.regret, dtype=np.float64), axis=1)
    found = [
        _first_diff("final regret", record.final_regret[:n], cum[:, -1]),
        _first_diff("actions", record.actions[:n], np.asarray(result.actions, dtype=np.int64)),
        _first_diff("rewards", record.rewards[:n],
                    np.asarray(result.rewards).astype(np.float32).astype(np.float64)),
    ]
    if record.contexts is not None and result.contexts is not None:
        found.append(_first_diff("contexts", record.contexts[:n],
                                 np.asarray(result.contexts, dtype=np.int64)))
    if not np.isclose(record.cum_mean[-1], record.final_regret.mean(), rtol=1e-9, atol=1e-9):
        found.append(f"summary: stored mean regret at T {record.cum_mean[-1]!r} is not the mean "
                     f"of the stored replicates' {record.final_regret.mean()!r}")
    first = u.rep_start
    what = f"{s.agent_key} on {s.env_key}, replicates {first}..{first + n - 1}"
    return UnitCheck(u.unit_id, what, n, tuple(m for m in found if m))


def validate_store(store: ResultStore, suite: str, *, units: int = 5, replicates: int = 2,
                   seed: int = 0) -> list[UnitCheck]:
    """Re-run a random sample of a suite's stored units and check they reproduce.

    Args:
        store: the store to check (only read).
        suite: the suite whose units are sampled.
        units: how many units to re-run (all of them if the suite has fewer).
        replicates: replicates re-run per unit (its first ones).
        seed: seed of the sample (a maintainer picks their own; the submitter cannot know it).

    Returns:
        One :class:`UnitCheck` per re-run unit.

    Raises:
        ValueError: the store holds no units of the suite, or bad ``units``/``replicates``.
    """
    for name, value in (("units", units), ("replicates", replicates)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    records = store.records(suite=suite, logs=True)
    if not records:
        have = ", ".join(sorted(store.suites())) or "none"
        raise ValueError(f"{store.path} holds no units of suite {suite!r} (suites: {have})")
    rng = np.random.default_rng(seed)
    picked = sorted(rng.choice(len(records), size=min(units, len(records)), replace=False))
    return [check_unit(records[i], replicates) for i in picked]
