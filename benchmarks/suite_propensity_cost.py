"""What recording propensities adds to each suite's CPU time, from two stores of the same units.

Run the study twice into two stores, without and with ``--propensities`` (one worker, so each
unit's CPU seconds are its own), then compare them::

    python benchmarks/reproduce_study.py --all --replicates 20 --workers 1 --store off.sqlite
    python benchmarks/reproduce_study.py --all --replicates 20 --workers 1 --store on.sqlite \
        --propensities
    python benchmarks/suite_propensity_cost.py off.sqlite on.sqlite

Per suite: the units found in both stores, their CPU seconds without and with propensities
(``metadata["cpu_time_s"]``, recorded by ``bench.units.execute``), the overhead, and the agents
whose units add the most CPU. Propensities are outside the unit id, so the two stores' units
pair up by id. CPU, not wall: on a shared machine wall time is mostly other jobs'.
"""

from __future__ import annotations

import argparse
from collections import defaultdict

from gambit_gym.bench.store import ResultStore

#: The 50% target of issue 23 (item 3), per suite.
TARGET = 0.5


def cpu_by_unit(path: str) -> dict[str, tuple[str, str, float]]:
    """``unit_id -> (suite, agent, CPU seconds)`` of the units that recorded their CPU."""
    out = {}
    for rec in ResultStore(path, read_only=True).records():
        cpu = rec.metadata.get("cpu_time_s")
        if cpu is not None:
            out[rec.unit.unit_id] = (rec.unit.suite, rec.unit.setting.agent, float(cpu))
    return out


def table(off: str, on: str) -> list[str]:
    """Markdown rows: suite, units, CPU without, CPU with, overhead, top agents."""
    a, b = cpu_by_unit(off), cpu_by_unit(on)
    per_suite: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    per_agent: dict[str, dict[str, list[float]]] = defaultdict(
        lambda: defaultdict(lambda: [0.0, 0.0]))
    for uid in a.keys() & b.keys():
        suite, agent, cpu_off = a[uid]
        cpu_on = b[uid][2]
        row = per_suite[suite]
        row[0] += 1
        row[1] += cpu_off
        row[2] += cpu_on
        per_agent[suite][agent][0] += cpu_off
        per_agent[suite][agent][1] += cpu_on
    lines = ["| suite | units | CPU without (s) | CPU with (s) | overhead | meets +50% | "
             "agents adding the most CPU (s added; their own overhead) |",
             "|---|---|---|---|---|---|---|"]
    for suite, (n, cpu_off, cpu_on) in per_suite.items():
        over = cpu_on / cpu_off - 1
        agents = sorted(per_agent[suite].items(), key=lambda kv: kv[1][0] - kv[1][1])
        top = "; ".join(f"{name} +{w - wo:.1f} ({(w / wo - 1):+.0%} of {wo:.1f})"
                        for name, (wo, w) in agents[:3])
        lines.append(f"| {suite} | {int(n)} | {cpu_off:.1f} | {cpu_on:.1f} | {over:+.0%} | "
                     f"{'yes' if over <= TARGET else 'no'} | {top} |")
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("off", help="the store written without --propensities")
    p.add_argument("on", help="the store written with --propensities")
    args = p.parse_args()
    print("\n".join(table(args.off, args.on)))


if __name__ == "__main__":
    main()
