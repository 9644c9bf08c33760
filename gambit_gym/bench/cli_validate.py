"""``gambit-gym validate``: re-run a sample of a store's units and check they reproduce."""

from __future__ import annotations

import argparse
import sys

from gambit_gym.bench.store import ResultStore
from gambit_gym.bench.submissions import validate_store


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the command's arguments."""
    parser.add_argument("store", metavar="STORE", help="results store to check (only read)")
    parser.add_argument("--suite", required=True, metavar="NAME",
                        help="the suite whose units are sampled")
    parser.add_argument("--units", type=int, default=5, metavar="N",
                        help="units to re-run, drawn at random (default 5)")
    parser.add_argument("--replicates", type=int, default=2, metavar="R",
                        help="replicates re-run per unit, its first ones (default 2)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the random sample (pick your own; default 0)")


def run(args: argparse.Namespace) -> int:
    """Print one line per re-run unit; exit status 1 if any did not reproduce."""
    checks = validate_store(ResultStore(args.store, read_only=True), args.suite,
                            units=args.units, replicates=args.replicates, seed=args.seed)
    for check in checks:
        status = "ok" if check.ok else "MISMATCH"
        print(f"{status} {check.unit_id} {check.what}")
        for mismatch in check.mismatches:
            print(f"    {mismatch}")
    bad = sum(not c.ok for c in checks)
    print(f"{len(checks) - bad} of {len(checks)} units reproduce bit for bit"
          + ("" if not bad else f"; {bad} do not: do not accept this store"), file=sys.stderr)
    return 1 if bad else 0
