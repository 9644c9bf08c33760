"""Units of work: one setting × one chunk of replicates, its id, and what it stores.

A sweep is cut into units so that a killed sweep loses only the units in flight. Replicate ``r``
of a setting always runs with seed ``suite.seed + r`` whatever the chunking, so a unit's result
does not depend on which executor ran it or on how the replicates were cut.

A unit's id is a hash of everything that determines its result (env id and kwargs, agent and
kwargs, horizon, seed, first replicate and count); the store keys on it, which is what makes
resuming duplicate-free.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from gambit_gym._validate import check_positive_int
from gambit_gym.agents._batched import PROPENSITY_RSE
from gambit_gym.bench.suites import Setting, Suite
from gambit_gym.core.result import RunResult

DEFAULT_CHUNK = 50


@dataclass(frozen=True)
class Unit:
    """One (setting, replicate chunk) of a sweep.

    Attributes:
        suite: the suite's name (part of the id: a suite's figures read its own units).
        setting: the env and agent configuration.
        horizon: steps T.
        seed: the suite's base seed; replicate ``r`` uses ``seed + r``.
        rep_start: the first replicate index of this chunk.
        n_reps: the number of replicates in the chunk.
        device: torch device for agents that use one (not part of the id).
        propensities: record each decision's propensity (Monte Carlo over the agent's
            randomisation; not part of the id: it does not change the decisions).
        propensity_samples: the most Monte Carlo draws per decision for propensities.
        propensity_rse: target relative standard error of each logged propensity (None:
            always ``propensity_samples`` draws); not part of the id.
        suite_fingerprint: :func:`~gambit_gym.bench.provenance.suite_fingerprint` of the suite
            the unit was planned from (provenance; not part of the id).
        suite_protocol: :func:`~gambit_gym.bench.provenance.suite_protocol` of it (the same).
    """

    suite: str
    setting: Setting
    horizon: int
    seed: int
    rep_start: int
    n_reps: int
    device: str | None = None
    propensities: bool = True
    propensity_samples: int = 1000
    propensity_rse: float | None = PROPENSITY_RSE
    suite_fingerprint: str = ""
    suite_protocol: str = ""

    @property
    def unit_id(self) -> str:
        """Hex digest of what determines the result."""
        s = self.setting
        key = {"suite": self.suite, "env_id": s.env_id, "env_kwargs": s.env_kwargs,
               "agent": s.agent, "agent_kwargs": s.agent_kwargs, "horizon": self.horizon,
               "seed": self.seed, "rep_start": self.rep_start, "n_reps": self.n_reps}
        text = json.dumps(key, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    @property
    def run_seed(self) -> int:
        """The seed passed to the runner (its replicate ``i`` uses ``run_seed + i``)."""
        return self.seed + self.rep_start


def plan(suite: Suite, chunk: int = DEFAULT_CHUNK, device: str | None = None,
         propensities: bool = True, propensity_samples: int = 1000,
         propensity_rse: float | None = PROPENSITY_RSE) -> list[Unit]:
    """The units of a suite: every setting, its replicates cut into chunks of ``chunk``.

    Raises:
        ValueError: ``chunk`` is not a positive integer.
    """
    from gambit_gym.bench.provenance import suite_fingerprint, suite_protocol

    check_positive_int("chunk", chunk)
    fingerprint, protocol = suite_fingerprint(suite), suite_protocol(suite)
    units = []
    for setting in suite.settings:
        for start in range(0, suite.replicates, chunk):
            units.append(Unit(suite=suite.name, setting=setting, horizon=suite.horizon,
                              seed=suite.seed, rep_start=start,
                              n_reps=min(chunk, suite.replicates - start), device=device,
                              propensities=propensities,
                              propensity_samples=propensity_samples,
                              suite_fingerprint=fingerprint, suite_protocol=protocol,
                              propensity_rse=propensity_rse))
    return units


@dataclass
class UnitRecord:
    """What the store keeps of a completed unit: enough to redraw every figure.

    Attributes:
        unit: the unit.
        cum_mean: per-step mean over the chunk's replicates of cumulative regret, ``(T,)``.
        cum_m2: per-step sum of squared deviations of cumulative regret, ``(T,)``
            (variance = ``cum_m2 / (n - 1)``; kept as M2 so chunks merge exactly).
        final_regret: cumulative regret at T per replicate, ``(n_reps,)``.
        actions: chosen actions, ``(n_reps, T)``.
        rewards: observed rewards, ``(n_reps, T)``.
        propensities: probability of each chosen action, ``(n_reps, T)``, or None.
        contexts: context ids, ``(n_reps, T)``, or None.
        wall_time_s: seconds the unit's run took.
        versions: package and platform versions.
        metadata: the runner's metadata, and ``cpu_time_s``: the unit's CPU seconds where
            :func:`execute` ran it (absent in stores written before it was recorded).
        created: unix time the record was made.
        provenance: where the numbers came from (:mod:`gambit_gym.bench.provenance`): library
            versions, machine, bank checksum, suite fingerprint, agent spec; ``{}`` for units
            of stores written before it was recorded.
        outcomes: each safety and cost outcome the env reported, summed over the steps of each
            replicate, ``{key: (n_reps,)}`` (cumulative unsafe deliveries, tokens, cost...;
            ``{}`` where the env reports none or the store predates them).
    """

    unit: Unit
    cum_mean: np.ndarray
    cum_m2: np.ndarray
    final_regret: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    propensities: np.ndarray | None = None
    contexts: np.ndarray | None = None
    wall_time_s: float = 0.0
    versions: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    created: float = 0.0
    provenance: dict[str, Any] = field(default_factory=dict)
    outcomes: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n_reps(self) -> int:
        """Replicates in this record."""
        return int(self.final_regret.shape[0])

    @classmethod
    def from_result(cls, unit: Unit, result: RunResult) -> UnitRecord:
        """Summarise a runner result for storage."""
        from gambit_gym.bench.provenance import collect

        cum = np.cumsum(np.asarray(result.regret, dtype=np.float64), axis=1)
        mean = cum.mean(axis=0)
        m2 = ((cum - mean) ** 2).sum(axis=0)
        return cls(
            unit=unit, cum_mean=mean, cum_m2=m2, final_regret=cum[:, -1].copy(),
            actions=np.asarray(result.actions),
            rewards=np.asarray(result.rewards),
            propensities=None if result.propensities is None else np.asarray(
                result.propensities),
            contexts=None if result.contexts is None else np.asarray(result.contexts),
            wall_time_s=float(result.wall_time_s), versions=versions(),
            metadata=_jsonable(result.metadata), created=time.time(),
            provenance=collect(unit, result.metadata),
            outcomes=result.outcome_totals() if hasattr(result, "outcome_totals") else {},
        )


def merge_moments(records: list[UnitRecord]) -> tuple[int, np.ndarray, np.ndarray]:
    """Combine per-chunk moments of cumulative regret (Chan et al.'s pairwise update).

    Returns:
        ``(n, mean (T,), variance (T,))`` over all the records' replicates (``ddof=1``; NaN
        where ``n < 2``).
    """
    n = 0
    mean: np.ndarray | None = None
    m2: np.ndarray | None = None
    for rec in records:
        nb = rec.n_reps
        if mean is None or m2 is None:
            n, mean, m2 = nb, rec.cum_mean.copy(), rec.cum_m2.copy()
            continue
        delta = rec.cum_mean - mean
        total = n + nb
        mean = mean + delta * nb / total
        m2 = m2 + rec.cum_m2 + delta ** 2 * n * nb / total
        n = total
    if mean is None or m2 is None:
        raise ValueError("no records to merge")
    var = m2 / (n - 1) if n > 1 else np.full_like(m2, np.nan)
    return n, mean, var


def execute(unit: Unit, progress: bool = False) -> UnitRecord:
    """Run one unit with the real runner and summarise it (what every executor calls).

    The record's ``metadata["cpu_time_s"]`` is the CPU seconds (user + system, every thread of
    the process) that running and summarising the unit took: on a shared machine wall time is
    mostly other jobs' waiting, CPU time is the work's own (a sweep's workers run one unit at
    a time with one thread each, so it is this unit's alone).
    """
    import warnings

    from gambit_gym.bench import run

    cpu_start = time.process_time()
    s = unit.setting
    with warnings.catch_warnings():  # the sweep says it once, before it starts (preflight)
        warnings.filterwarnings("ignore", message=".*has no action_probabilities",
                                category=UserWarning)
        result = run(s.env_id, s.agent, horizon=unit.horizon, replicates=unit.n_reps,
                     seed=unit.run_seed, env_kwargs=dict(s.env_kwargs),
                     agent_kwargs=dict(s.agent_kwargs), device=unit.device, progress=progress,
                     propensities=unit.propensities,
                     n_propensity_samples=unit.propensity_samples,
                     propensity_rse=unit.propensity_rse)
    record = UnitRecord.from_result(unit, result)
    record.metadata["cpu_time_s"] = time.process_time() - cpu_start
    return record


@dataclass(frozen=True)
class UnitFailure:
    """A unit whose run raised: reported by the sweep, never stored (``--resume`` retries it).

    Attributes:
        unit: the unit.
        error: ``"ExceptionType: message"``.
        traceback: the formatted traceback.
    """

    unit: Unit
    error: str
    traceback: str = ""

    def describe(self) -> str:
        """One line: which unit failed and why."""
        s, u = self.unit.setting, self.unit
        return (f"{s.agent_key} on {s.env_key}, replicates {u.rep_start}.."
                f"{u.rep_start + u.n_reps - 1}: {self.error}")


def execute_safely(unit: Unit) -> UnitRecord | UnitFailure:
    """:func:`execute`, with an exception of the agent or env returned as a failure."""
    import traceback

    try:
        return execute(unit)
    except Exception as exc:  # one bad setting must not stop a sweep
        message = str(exc).splitlines()[0] if str(exc) else ""
        return UnitFailure(unit, f"{type(exc).__name__}: {message}", traceback.format_exc())


def versions() -> dict[str, str]:
    """Versions of the packages that shape a result, and the platform.

    The versions are :func:`~gambit_gym.bench.provenance.library_versions`' (one collector).
    """
    from gambit_gym.bench.provenance import library_versions

    return {**library_versions(), "platform": platform.platform()}

def unit_to_dict(unit: Unit) -> dict[str, Any]:
    """A JSON-ready dict of a unit."""
    d = asdict(unit)
    d["setting"]["tags"] = list(unit.setting.tags)
    return d


def unit_from_dict(d: dict[str, Any]) -> Unit:
    """Inverse of :func:`unit_to_dict`."""
    s = dict(d["setting"])
    s["tags"] = tuple(s.get("tags", ()))
    return Unit(**{**d, "setting": Setting(**s)})  # fields added later take their defaults


def _jsonable(value: Any) -> Any:
    """``value`` with numpy scalars/arrays turned into plain Python (unknowns as strings)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist() if value.size <= 64 else f"array{value.shape}"
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
