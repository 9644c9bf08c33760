"""Where a stored number came from: what every unit record carries besides its results.

A public leaderboard merges results run on other people's machines; to accept them it must
know, per unit, which package and libraries ran it, on which machine, against which response
bank (by checksum: two banks of the same name are not the same bank), under which suite
definition (by fingerprint: its settings, replicates R, horizon T and seed; and its protocol,
the R, T and seed alone), and which agent (class path, kwargs and the agent's own version
string if it has one). :func:`collect` builds that dict when a unit is summarised;
:func:`check_consistent` is what the leaderboard and ``gambit-gym merge`` use to refuse mixing,
in one env column, units of different banks or of one suite run with another R, T or seed.

Stores written before provenance existed hold none; their units read as provenance ``{}`` and
the checks skip them.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

_SHA_CACHE: dict[tuple[str, int, int], str] = {}


def suite_fingerprint(suite: Any) -> str:
    """Hex digest of a suite's definition: name, settings, R, T and seed (16 hex digits).

    Two sweeps share it exactly when they ran the same grid the same way; narrowing a suite
    (fewer replicates, another horizon, a subset of agents) or adding an agent changes it.
    """
    settings = sorted(
        [s.env_id, json.dumps(s.env_kwargs, sort_keys=True, default=str), s.agent,
         json.dumps(s.agent_kwargs, sort_keys=True, default=str)] for s in suite.settings)
    key = {"name": suite.name, "settings": settings, "replicates": suite.replicates,
           "horizon": suite.horizon, "seed": suite.seed}
    text = json.dumps(key, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def suite_protocol(suite: Any) -> str:
    """Hex digest of how a suite runs each env configuration: name, R, T and seed.

    The part of the fingerprint that must agree for units to share an env column: adding an
    agent (``--add-agent``) or leaving some out keeps it, so a submitter's agent run under the
    suite merges with the maintainer's store; another R, T or seed does not.
    """
    key = {"name": suite.name, "replicates": suite.replicates, "horizon": suite.horizon,
           "seed": suite.seed}
    text = json.dumps(key, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file (cached per path, size and modification time in this process)."""
    p = Path(path).resolve()
    st = p.stat()
    key = (str(p), st.st_size, st.st_mtime_ns)
    if key not in _SHA_CACHE:
        digest = hashlib.sha256()
        with p.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        _SHA_CACHE[key] = digest.hexdigest()
    return _SHA_CACHE[key]


def bank_file(env_id: str, env_kwargs: dict[str, Any]) -> Path | None:
    """The response bank an env configuration reads, or None for envs without one.

    The GAMBIT envs read ``env_kwargs['bank']`` or the shipped bank; the mixed-effect envs are
    synthetic and read none.
    """
    if env_kwargs.get("bank") is not None:
        return Path(str(env_kwargs["bank"]))
    import gymnasium as gym

    try:
        entry = str(gym.spec(env_id).entry_point)
    except gym.error.Error:
        return None
    if "gambit_env" not in entry and "population" not in entry:
        return None
    from gambit_gym.text.bank import default_bank_path

    return default_bank_path()


def bank_info(env_id: str, env_kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """``{"file": name, "sha256": digest}`` of the env configuration's bank, or None."""
    path = bank_file(env_id, env_kwargs)
    if path is None or not path.is_file():
        return None
    return {"file": path.name, "sha256": file_sha256(path)}


def machine() -> dict[str, Any]:
    """The machine a unit ran on: host name, OS, CPU architecture and count."""
    return {"host": socket.gethostname(), "platform": platform.platform(),
            "processor": platform.machine(), "cpus": os.cpu_count()}


def library_versions() -> dict[str, str]:
    """Versions of Python, the package and the libraries that shape a result."""
    import gambit_gym

    out = {"python": sys.version.split()[0], "gambit_gym": str(gambit_gym.__version__),
           "numpy": np.__version__}
    from importlib import metadata

    for name in ("torch", "gymnasium", "scipy"):
        module = sys.modules.get(name)
        if module is not None:
            out[name] = str(getattr(module, "__version__", "unknown"))
            continue
        try:  # installed but not imported by this run: read its version without importing it
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def collect(unit: Any, metadata: dict[str, Any]) -> dict[str, Any]:
    """The provenance of a unit just run (``metadata``: the runner's)."""
    s = unit.setting
    return {
        "versions": library_versions(),
        "machine": machine(),
        "bank": bank_info(s.env_id, dict(s.env_kwargs)),
        "suite": {"name": unit.suite, "fingerprint": unit.suite_fingerprint or None,
                  "protocol": unit.suite_protocol or None},
        # runners that build no agent object (the SB3 baselines) record no class: the name is
        # then the most specific reference there is
        "agent": {"name": s.agent, "class": metadata.get("agent_class") or s.agent,
                  "kwargs": json.loads(json.dumps(s.agent_kwargs, sort_keys=True, default=str)),
                  "version": metadata.get("agent_version")},
        "env": {"id": s.env_id,
                "kwargs": json.loads(json.dumps(s.env_kwargs, sort_keys=True, default=str))},
    }


def bank_sha(provenance: dict[str, Any]) -> str | None:
    """The bank checksum recorded in a provenance dict (None: no bank, or not recorded)."""
    bank = provenance.get("bank") or {}
    return bank.get("sha256")


def suite_print(provenance: dict[str, Any]) -> str | None:
    """The suite fingerprint recorded in a provenance dict (None if not recorded)."""
    return (provenance.get("suite") or {}).get("fingerprint")


def suite_proto(provenance: dict[str, Any]) -> str | None:
    """The suite protocol (name, R, T, seed) recorded in a provenance dict (None if not)."""
    return (provenance.get("suite") or {}).get("protocol")


class ProvenanceMismatch(ValueError):
    """Units that must not be mixed: different banks or suite definitions in one place."""


def check_consistent(items: Iterable[tuple[str, str, dict[str, Any], str]]) -> None:
    """Refuse to mix, in one env column, units of two banks or of two runs of one suite.

    Args:
        items: ``(column, suite name, provenance, where)`` per unit; ``column`` is where the
            units would be pooled (an env configuration), ``where`` names the unit's source
            (a store path) for the message.

    Raises:
        ProvenanceMismatch: one column holds units of two bank checksums, or units of one
            suite run with two protocols (:func:`suite_protocol`: another R, T or seed). Units
            without provenance (old stores) are not checked.
    """
    banks: dict[str, dict[str, str]] = {}
    protocols: dict[tuple[str, str], dict[str, str]] = {}
    for column, suite, prov, where in items:
        clash = _second_value(banks, column, bank_sha(prov), where)
        if clash is not None:
            (a, wa), (b, wb) = clash
            raise ProvenanceMismatch(
                f"env column {column} mixes units run on two different response banks "
                f"(sha256 {a[:12]}… from {wa}, {b[:12]}… from {wb}); results on different "
                "banks are not comparable: rerun on one bank, or keep them in separate "
                "stores")
        clash = _second_value(protocols, (column, suite), suite_proto(prov), where)
        if clash is not None:
            (a, wa), (b, wb) = clash
            raise ProvenanceMismatch(
                f"env column {column} holds units of suite {suite!r} run two ways "
                f"(protocol {a} from {wa}, {b} from {wb}: another number of replicates, "
                "horizon or seed); run every part with the same --replicates, --horizon "
                "and --seed, or pass --suite to look at one")


def _second_value(seen_by_key: dict[Any, dict[str, str]], key: Any, value: str | None,
                  where: str) -> tuple[tuple[str, str], tuple[str, str]] | None:
    """Record ``value`` under ``key``; the first two distinct values once ``key`` holds two.

    Returns ``((value, where first seen), (value, where first seen))`` for the first two
    distinct values of ``key``, else None. A None value (no provenance) is not recorded.
    """
    if value is None:
        return None
    seen = seen_by_key.setdefault(key, {})
    seen.setdefault(value, where)
    if len(seen) < 2:
        return None
    first, second = list(seen.items())[:2]
    return first, second


def summarise_provenance(records: Iterable[Any]) -> dict[str, Any]:
    """What the leaderboard shows of its units' provenance.

    Returns:
        ``{"agents": {agent key: {class, kwargs, version}}, "banks": [{file, sha256, envs}],
        "suites": {name: [fingerprints]}, "versions": [distinct library-version dicts],
        "machines": [distinct host names], "units": n, "without_provenance": n}``.
    """
    agents: dict[str, Any] = {}
    banks: dict[str, Any] = {}
    suites: dict[str, list[str]] = {}
    versions: list[dict[str, str]] = []
    machines: list[str] = []
    n = bare = 0
    for rec in records:
        n += 1
        prov, s = rec.provenance, rec.unit.setting
        if not prov:
            bare += 1
            continue
        agent = prov.get("agent") or {}
        agents.setdefault(s.agent_key, {"class": agent.get("class"),
                                        "kwargs": agent.get("kwargs"),
                                        "version": agent.get("version")})
        if prov.get("bank"):
            bank = banks.setdefault(prov["bank"].get("sha256"), {**prov["bank"], "envs": []})
            if s.env_key not in bank["envs"]:
                bank["envs"].append(s.env_key)
        fp = suite_print(prov)
        if fp is not None and fp not in suites.setdefault(rec.unit.suite, []):
            suites[rec.unit.suite].append(fp)
        if prov.get("versions") and prov["versions"] not in versions:
            versions.append(prov["versions"])
        host = (prov.get("machine") or {}).get("host")
        if host and host not in machines:
            machines.append(host)
    return {"agents": dict(sorted(agents.items())), "banks": list(banks.values()),
            "suites": dict(sorted(suites.items())), "versions": versions,
            "machines": sorted(machines), "units": n, "without_provenance": bare}
