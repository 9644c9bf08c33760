"""``gambit-gym report``: a static HTML report (opens from disk, no server)."""

from __future__ import annotations

import argparse

from gambit_gym.bench.report import write_report
from gambit_gym.bench.store import ResultStore


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the command's arguments."""
    parser.add_argument("store", metavar="STORE", help="results store written by bench")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="directory for index.html, figures/ and leaderboard files")


def run(args: argparse.Namespace) -> int:
    """Write the report and print the page's path."""
    print(write_report(ResultStore(args.store, create=False), args.out))
    return 0
