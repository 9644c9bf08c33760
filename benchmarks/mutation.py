"""Mutation testing of the core modules, by hand (never in CI): ``python benchmarks/mutation.py``.

A mutation score says how many deliberately broken copies of a module ("mutants": ``<`` turned
into ``<=``, ``+`` into ``-``, a constant changed, an argument dropped) the tests catch. A
survivor is a change no test notices: either a missing assertion or an equivalent mutant (one
that cannot change behaviour). See docs/testing.md for the scores and the survivors explained.

For each module this script copies the package, the tests and the config into a scratch
folder, writes a ``[mutmut]`` section naming only that module and only the fast test files that
exercise it, runs ``mutmut run`` there under ``timeout`` and prints the counts and the score
(killed + timeout) / checked. The working tree is never touched. Needs the
``mutation`` extra (``pip install -e .[test,mutation]``)::

    python benchmarks/mutation.py --list
    python benchmarks/mutation.py analysis ope         # one module at a time, in order
    python benchmarks/mutation.py analysis --survivors # also print each surviving mutant's diff
    python benchmarks/mutation.py --json scores.json analysis

Modules run one after another with one mutmut worker each (``--max-children``), so the run
stays gentle on a shared machine.
"""

from __future__ import annotations

import argparse
import configparser
import json
import os
import random
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Target:
    """One module under mutation and the tests each run uses.

    ``tests`` is the fast selection the score is measured with: each mutant runs in seconds,
    so the score is a lower bound of what the whole suite catches. ``before`` is what the suite
    had before mutation testing (``--before``); those tests run real envs and stores, a few
    seconds to a minute per mutant on a busy machine, so measure them with ``--sample``.
    """

    sources: tuple[str, ...]
    tests: tuple[str, ...]
    before: tuple[str, ...]


TARGETS: dict[str, Target] = {
    "analysis": Target(
        ("gambit_gym/bench/analysis.py",),
        ("tests/test_bench_analysis.py",),
        ("tests/test_bench_leaderboard.py",),
    ),
    "ope": Target(
        ("gambit_gym/bench/ope.py",),
        ("tests/test_bench_ope_exact.py",),
        ("tests/test_bench_ope.py",),
    ),
    "outcomes": Target(
        ("gambit_gym/envs/outcomes.py",),
        ("tests/test_outcomes.py",),
        ("tests/test_gambit_env.py", "tests/test_population_env.py"),
    ),
    "dynamics": Target(
        ("gambit_gym/envs/dynamics.py",),
        ("tests/test_dynamics_exact.py", "tests/test_user_dynamics.py",
         "tests/test_center_rewards.py"),
        ("tests/test_user_dynamics.py", "tests/test_center_rewards.py"),
    ),
    "user_dynamics": Target(
        ("gambit_gym/envs/user_dynamics.py",),
        ("tests/test_user_dynamics_exact.py",),
        ("tests/test_user_dynamics.py",),
    ),
    "bank": Target(
        ("gambit_gym/text/bank.py",),
        ("tests/test_bank_exact.py", "tests/test_invalid_bank.py"),
        ("tests/test_invalid_bank.py",),
    ),
    "posteriors": Target(
        ("gambit_gym/agents/stdts.py", "gambit_gym/agents/gambitts.py"),
        ("tests/test_posteriors_exact.py",),
        ("tests/test_agents.py",),
    ),
    "store": Target(
        ("gambit_gym/bench/store.py",),
        ("tests/test_store_exact.py",),
        ("tests/test_bench_store.py", "tests/test_invalid_store.py"),
    ),
}


def _existing(paths: tuple[str, ...]) -> list[str]:
    """The test selections whose file exists (a ``file::Class`` selection checks the file)."""
    return [p for p in paths if (ROOT / p.split("::")[0]).exists()]


def prepare(name: str, target: Target, work: Path, before: bool = False,
            resume: bool = False) -> Path:
    """Copy the package, tests and config into ``work/name`` with a [mutmut] section."""
    dest = work / (name + ("-before" if before else ""))
    if resume and (dest / "mutants").exists():
        return dest  # mutmut run picks up the mutants not yet checked
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "gambit_gym", dest / "gambit_gym", ignore=ignore)
    shutil.copytree(ROOT / "tests", dest / "tests", ignore=ignore)
    shutil.copy2(ROOT / "pyproject.toml", dest / "pyproject.toml")
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    cfg["mutmut"] = {
        "source_paths": "\ngambit_gym",
        "only_mutate": "\n" + "\n".join(target.sources),
        # -p no:cacheprovider: no .pytest_cache in the scratch copy; -x: a mutant is killed
        # at its first failing test
        "pytest_add_cli_args": "\n-p\nno:cacheprovider\n-x\n-q",
        "pytest_add_cli_args_test_selection": "\n" + "\n".join(
            _existing(target.before if before else target.tests)),
        # torch is not fork-safe after the suite ran in the parent: fork from a clean server
        "process_isolation": "forkserver",
        "use_git_change_detection": "false",
    }
    with open(dest / "setup.cfg", "w") as fh:
        cfg.write(fh)
    return dest


_LIST_MUTANTS = """
import sys
from pathlib import Path
from mutmut.__main__ import create_file_mutants
from mutmut.mutation.data import SourceFileMutationData
for src in sys.argv[1:]:
    result = create_file_mutants(Path(src))
    if result.error:
        raise result.error
    data = SourceFileMutationData(path=Path(src))
    data.load()
    print("\\n".join(data.exit_code_by_key))
"""


def mutant_names(dest: Path, target: Target) -> list[str]:
    """Every mutant's name for the target's sources (generated in ``dest/mutants``)."""
    out = subprocess.run([sys.executable, "-c", _LIST_MUTANTS, *target.sources], cwd=dest,
                         env=_env(), capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if "__mutmut_" in line]


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH="", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
                HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")


def run(name: str, dest: Path, timeout_s: int, children: int,
        names: list[str] | None = None) -> dict:
    """Run mutmut in ``dest`` (bounded by ``timeout``) and return its counts and score.

    With ``names``, only those mutants run (a random sample); the counts are then over them.
    """
    env = _env()
    mutmut = [sys.executable, "-m", "mutmut"]
    start = time.perf_counter()
    proc = subprocess.run(["timeout", str(timeout_s), *mutmut, "run",
                           "--max-children", str(children), *(names or [])],
                          cwd=dest, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    subprocess.run([*mutmut, "export-cicd-stats"], cwd=dest, env=env, capture_output=True)
    stats_path = dest / "mutants" / "mutmut-cicd-stats.json"
    if not stats_path.exists():
        tail = (proc.stdout + proc.stderr)[-3000:]
        raise SystemExit(f"{name}: mutmut produced no results (exit {proc.returncode}):\n{tail}")
    stats = json.loads(stats_path.read_text())
    if names:
        stats.update(_counts_of(dest, names))
    caught = stats["killed"] + stats["timeout"]
    checked = caught + stats["survived"] + stats["no_tests"] + stats["suspicious"] \
        + stats["segfault"]
    stats["checked"] = checked
    stats["not_checked"] = stats["total"] - stats["skipped"] - checked
    # over the mutants checked (all of them unless the run timed out)
    stats["score"] = round(100.0 * caught / checked, 1) if checked else float("nan")
    stats["seconds"] = round(elapsed, 1)
    stats["timed_out"] = proc.returncode == 124
    return stats


def _counts_of(dest: Path, names: list[str]) -> dict[str, int]:
    """mutmut's counts restricted to ``names`` (read from ``mutmut results --all``)."""
    out = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"],
                         cwd=dest, env=_env(), capture_output=True, text=True).stdout
    status = dict(line.strip().rsplit(": ", 1) for line in out.splitlines()
                  if ": " in line)
    counts = {k: 0 for k in ("killed", "survived", "no_tests", "skipped", "suspicious",
                             "timeout", "segfault")}
    words = {"killed": "killed", "survived": "survived", "no tests": "no_tests",
             "skipped": "skipped", "suspicious": "suspicious", "timeout": "timeout",
             "segfault": "segfault"}
    for n in names:
        key = words.get(status.get(n, ""))
        if key:
            counts[key] += 1
    counts["total"] = len(names)
    return counts


def _checked_count(dest: Path) -> int:
    """How many mutants the last run in ``dest`` checked (any status but not checked/skipped)."""
    out = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"],
                         cwd=dest, env=_env(), capture_output=True, text=True).stdout
    done = {"killed", "survived", "no tests", "timeout", "suspicious", "segfault"}
    return sum(1 for line in out.splitlines()
               if ": " in line and line.strip().rsplit(": ", 1)[1] in done)


def survivors(dest: Path) -> list[str]:
    """The names of the surviving (and untested) mutants, from ``mutmut results``."""
    out = subprocess.run([sys.executable, "-m", "mutmut", "results"], cwd=dest,
                         capture_output=True, text=True).stdout
    return [line.strip() for line in out.splitlines()
            if line.strip().endswith((": survived", ": no tests"))]


def recheck(dest: Path, target: Target) -> tuple[list[str], list[str]]:
    """Re-run the survivors of the last run in ``dest`` against the current tests.

    Each survivor is switched on the way mutmut runs it: the current tests are copied into the
    scratch copy's ``mutants/`` tree (mutmut's trampolined sources, every mutant in place) and
    the selection runs there with ``MUTANT_UNDER_TEST`` naming the mutant. Returns (now killed,
    still surviving). Much cheaper than a whole new run when only a few tests were added.

    Not ``mutmut apply``: it writes a mutant over the *first* function of that name in the file,
    whatever its class, so where a module has methods of the same name in several classes
    (gambitts.py: ``_probabilities``, ``_act``, ``_setup``, ``__post_init__`` of poGAMBITTS and
    foGAMBITTS) a survivor in the second class was re-run as a change to the first one.
    """
    names = [line.split(":")[0] for line in survivors(dest)]
    run_dir = dest / "mutants"
    for folder in (dest / "tests", run_dir / "tests"):
        shutil.copytree(ROOT / "tests", folder, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    tests = _existing(target.tests)

    def fails(mutant: str) -> bool:
        env = dict(_env(), PYTHONPATH=str(run_dir), MUTANT_UNDER_TEST=mutant)
        return subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p",
                               "no:cacheprovider", *tests], cwd=run_dir, env=env,
                              capture_output=True).returncode != 0

    # the set-up itself: the selection passes on the original code and fails when every
    # mutated function raises (mutmut's own check), so a failure below is the mutant's doing
    if names and (fails("") or not fails("fail")):
        raise SystemExit(f"recheck: the selection {tests} does not pass on the original code, "
                         f"or does not reach the trampolined sources, in {run_dir}")
    killed, alive = [], []
    for mutant in names:
        (killed if fails(mutant) else alive).append(mutant)
    return killed, alive


def show(dest: Path, mutant: str) -> str:
    """The diff of one mutant (``mutmut show``)."""
    return subprocess.run([sys.executable, "-m", "mutmut", "show", mutant], cwd=dest,
                          capture_output=True, text=True).stdout


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and run each named module in turn, printing one line per module."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help=f"any of {', '.join(TARGETS)} (default: all)")
    parser.add_argument("--list", action="store_true", help="print the targets and exit")
    parser.add_argument("--work", type=Path, default=Path("/tmp/gambit-gym-mutation"),
                        help="scratch folder for the copies (default: %(default)s)")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per module")
    parser.add_argument("--max-children", type=int, default=1, help="mutmut workers")
    parser.add_argument("--survivors", action="store_true", help="print each survivor's diff")
    parser.add_argument("--before", action="store_true",
                        help="the tests that predate mutation testing (the 'before' score)")
    parser.add_argument("--resume", action="store_true",
                        help="continue an earlier (timed-out) run of the same module")
    parser.add_argument("--json", type=Path, help="also write the scores to this file")
    parser.add_argument("--sample", type=int, metavar="N",
                        help="run only a seeded random sample of N mutants per module (an "
                             "unbiased estimate of the score where the tests are slow)")
    parser.add_argument("--seed", type=int, default=0, help="seed of --sample")
    parser.add_argument("--recheck", action="store_true",
                        help="re-run only the survivors of the last run of each module against "
                             "the current tests (after adding tests) and print the new score")
    args = parser.parse_args(argv)
    if args.list:
        for name, t in TARGETS.items():
            print(f"{name:11s} {' '.join(t.sources)}\n{'':11s} tests: {' '.join(t.tests)}"
                  f"\n{'':11s} before: {' '.join(t.before)}")
        return
    unknown = [m for m in args.modules if m not in TARGETS]
    if unknown:
        parser.error(f"unknown module(s) {unknown}; choose from {list(TARGETS)}")
    scores = {}
    if args.recheck:
        for name in args.modules or list(TARGETS):
            dest = args.work / name
            killed, alive = recheck(dest, TARGETS[name])
            # the mutants the last run checked: all of them for a whole run, the sample's
            # for a --sample run (mutmut's own total counts every mutant of the module)
            checked = _checked_count(dest)
            caught = checked - len(alive)
            scores[name] = dict(checked=checked, caught=caught, survived=len(alive),
                                newly_killed=len(killed), survivors=alive,
                                score=round(100.0 * caught / checked, 1))
            print(f"{name:11s} score {scores[name]['score']:5.1f}%  checked {checked:4d}  "
                  f"caught {caught:4d}  survived {len(alive):3d}  ({len(killed)} of the last "
                  f"run's {len(killed) + len(alive)} survivors now killed)", flush=True)
            if args.survivors:
                for mutant in alive:
                    print(show(dest, mutant))
        if args.json:
            args.json.write_text(json.dumps(scores, indent=2) + "\n")
        return
    for name in args.modules or list(TARGETS):
        dest = prepare(name, TARGETS[name], args.work, args.before, args.resume)
        names = None
        if args.sample:
            every = mutant_names(dest, TARGETS[name])
            rng = random.Random(args.seed)
            names = sorted(rng.sample(every, min(args.sample, len(every))))
        stats = run(name, dest, args.timeout, args.max_children, names)
        if names:
            stats["population"] = len(every)
        scores[name] = stats
        print(f"{name:11s} score {stats['score']:5.1f}%  total {stats['total']:4d}  "
              f"checked {stats['checked']:4d}  "
              f"killed {stats['killed']:4d}  timeout {stats['timeout']:3d}  "
              f"survived {stats['survived']:4d}  no_tests {stats['no_tests']:4d}  "
              f"skipped {stats['skipped']:3d}  ({stats['seconds']:.0f} s"
              f"{', sample of ' + str(stats['population']) if 'population' in stats else ''}"
              f"{', TIMED OUT' if stats['timed_out'] else ''})", flush=True)
        if args.survivors:
            for line in survivors(dest):
                print(show(dest, line.split(":")[0]))
    if args.json:
        args.json.write_text(json.dumps(scores, indent=2) + "\n")


if __name__ == "__main__":
    main()
