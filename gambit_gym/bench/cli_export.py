"""``gambit-gym export-obp``: a run's logged decisions in Open Bandit Pipeline's layout."""

from __future__ import annotations

import argparse
import sys

from gambit_gym.bench import ope
from gambit_gym.bench.store import ResultStore


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the command's arguments."""
    parser.add_argument("store", metavar="STORE", help="results store written by bench")
    parser.add_argument("--out", required=True, metavar="FILE.npz",
                        help="where to write the bandit_feedback dict (npz; read it with "
                             "gambit_gym.bench.ope.load)")
    parser.add_argument("--suite", metavar="NAME", help="the run's suite")
    parser.add_argument("--env", metavar="ENV_ID",
                        help="the run's env id, or its configuration as the leaderboard names "
                             "it (e.g. 'GambitIHS-v0{\"n_prompts\":3}')")
    parser.add_argument("--agent", metavar="AGENT", help="the logging agent")
    parser.add_argument("--unit", metavar="UNIT_ID", help="one stored unit, by id")
    parser.add_argument("--n-actions", type=int, metavar="K",
                        help="number of actions (default: largest logged action + 1)")


def run(args: argparse.Namespace) -> int:
    """Export the selected units' logs (they must be one env config and one agent config)."""
    store = ResultStore(args.store, create=False)
    if not (args.unit or (args.env and args.agent)):
        raise ValueError("choose the run with --unit ID, or with --env and --agent "
                         "(and --suite where several suites ran them)")
    records = store.records(suite=args.suite, env_id=args.env, agent=args.agent,
                            unit_id=args.unit, logs=True)
    if not records:
        raise ValueError("no stored units match; see gambit-gym leaderboard STORE --format csv")
    configs = {(r.unit.suite, r.unit.setting.env_key, r.unit.setting.agent_key, r.unit.horizon)
               for r in records}
    if len(configs) > 1:
        listing = "; ".join(f"suite={c[0]} env={c[1]} agent={c[2]} T={c[3]}"
                            for c in sorted(configs))
        raise ValueError(f"the selection spans {len(configs)} runs ({listing}); narrow it "
                         "with --suite/--env/--agent/--unit")
    feedback = ope.from_records(records, n_actions=args.n_actions)
    path = ope.save(feedback, args.out)
    print(f"{feedback['n_rounds']} rounds, {feedback['n_actions']} actions -> {path}",
          file=sys.stderr)
    return 0
