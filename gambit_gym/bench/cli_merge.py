"""``gambit-gym merge``: combine results stores from several machines or submitters."""

from __future__ import annotations

import argparse
import sys

from gambit_gym.bench.submissions import merge_stores


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the command's arguments."""
    parser.add_argument("out", metavar="OUT", help="the merged store to write (a new file)")
    parser.add_argument("inputs", metavar="STORE", nargs="+",
                        help="stores to merge (only read)")


def run(args: argparse.Namespace) -> int:
    """Merge; print what was merged."""
    report = merge_stores(args.out, args.inputs)
    read = ", ".join(f"{n} from {p}" for p, n in report.per_input.items())
    print(f"merged {report.units} units into {report.out} ({read}; {report.duplicates} "
          "identical duplicates kept once)", file=sys.stderr)
    return 0
