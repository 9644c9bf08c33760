"""Which agent comparisons a figure's data supports: 95% intervals clear of each other or not.

Reads ``gambit-gym leaderboard STORE --suite SUITE --format json`` on stdin and prints, per env
column, the learning agents ordered by mean regret at T with ``<`` between neighbours whose
95% intervals do not overlap (the lower one is told apart) and ``~`` where they overlap (not
told apart), then every pair that is told apart. The Oracle and Random rows are left out.

Usage::

    gambit-gym leaderboard study_all.sqlite --suite var_decomp_nonlinear --format json \\
        | python benchmarks/figure_comparisons.py
"""

from __future__ import annotations

import itertools
import json
import sys

SKIP = ("Oracle", "Random")


def main() -> None:
    data = json.load(sys.stdin)
    for col in data["columns"]:
        cells = [(r["agent"], r["cells"][col]) for r in data["rows"]
                 if r["agent"] not in SKIP and r["cells"].get(col)]
        cells.sort(key=lambda x: x[1]["mean_regret"])
        chain = cells[0][0]
        for (_, a), (name_b, b) in zip(cells, cells[1:]):
            chain += (" < " if a["ci_high"] < b["ci_low"] else " ~ ") + name_b
        print(f"{col}: {chain}")
        clear = [f"{x} < {y}" for (x, a), (y, b) in itertools.combinations(cells, 2)
                 if a["ci_high"] < b["ci_low"]]
        close = [f"{x} ~ {y}" for (x, a), (y, b) in itertools.combinations(cells, 2)
                 if not a["ci_high"] < b["ci_low"]]
        print(f"  told apart ({len(clear)}): " + "; ".join(clear))
        print(f"  not told apart ({len(close)}): " + ("; ".join(close) or "none"))


if __name__ == "__main__":
    main()
