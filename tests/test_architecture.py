"""Imports run one way: core → text → envs → agents → bench → baselines → cli.

Every ``import`` in the package (at module level or inside a function) is read with ``ast`` and
its layer compared with the importing module's; an import of a higher layer fails the test with
the file, the line and the fix. docs/architecture.md explains the layers.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "gambit_gym"

#: Layer of each top-level part of the package, lowest first. The private helpers
#: (``_validate``, ``_paths``, ``_argtypes``) import nothing from the package and sit with core;
#: ``demo`` and ``__main__`` are command-line front ends; the package's ``__init__`` registers
#: the env ids, so it sits with envs.
LAYERS: dict[str, int] = {
    "core": 0, "_validate": 0, "_paths": 0, "_argtypes": 0,
    "text": 1,
    "envs": 2, "__init__": 2,
    "agents": 3,
    "bench": 4,
    "baselines": 5,
    "cli": 6, "demo": 6, "__main__": 6,
}


def _part(module: str) -> str | None:
    """The top-level part of ``gambit_gym.<part>...`` (None for other packages)."""
    pieces = module.split(".")
    if pieces[0] != "gambit_gym":
        return None
    return pieces[1] if len(pieces) > 1 else "__init__"


def _imports(source: str, path: Path) -> list[tuple[int, str]]:
    """``(line, part)`` of every gambit_gym part that ``source`` (the file ``path``) imports."""
    out = []
    here = path.relative_to(PACKAGE.parent).with_suffix("").parts
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, p) for a in node.names if (p := _part(a.name))]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this file's package
                base = list(here[:-node.level])
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            part = _part(module)
            if part == "__init__":  # `from gambit_gym import x`: x is a part or an attribute
                for alias in node.names:
                    if alias.name in LAYERS:
                        out.append((node.lineno, alias.name))
                    elif not alias.name.startswith("__"):  # __version__: metadata, no layer
                        out.append((node.lineno, "__init__"))
            elif part:
                out.append((node.lineno, part))
    return out


def upward_imports(path: Path, source: str | None = None) -> list[str]:
    """The imports in ``path`` that run upward, as readable messages."""
    rel = path.relative_to(PACKAGE)
    own = rel.parts[0] if len(rel.parts) > 1 else rel.stem
    if own not in LAYERS:
        return [f"{rel}: its part {own!r} has no layer; add it to LAYERS and "
                "docs/architecture.md"]
    source = path.read_text(encoding="utf-8") if source is None else source
    bad = []
    for line, part in _imports(source, path):
        if part not in LAYERS:
            bad.append(f"{rel}:{line} imports gambit_gym.{part}, which has no layer")
        elif LAYERS[part] > LAYERS[own]:
            bad.append(f"{rel}:{line} ({own}, layer {LAYERS[own]}) imports gambit_gym.{part} "
                       f"(layer {LAYERS[part]}): move what it needs down (to core or {own}), "
                       "or pass it in")
    return bad


def test_no_module_imports_upward():
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 50
    problems = [msg for f in files for msg in upward_imports(f)]
    assert not problems, "imports that run upward:\n" + "\n".join(problems)


@pytest.mark.parametrize(("where", "source", "n_bad"), [
    ("envs/x.py", "from gambit_gym.agents.base import EnvDescription\n", 1),
    ("envs/x.py", "def f():\n    from gambit_gym.bench import run\n", 1),  # lazy counts too
    ("core/x.py", "import gambit_gym.text.bank\n", 1),
    ("text/x.py", "from gambit_gym import agents\n", 1),
    ("text/x.py", "from gambit_gym import __version__\n", 0),
    ("agents/x.py", "from ..bench import runner\n", 1),  # relative imports resolved
    ("agents/x.py", "from . import base\nfrom gambit_gym.envs import dynamics\n", 0),
    ("bench/x.py", "from gambit_gym.core.result import RunResult\n", 0),
])
def test_the_check_sees_upward_imports(where, source, n_bad):
    assert len(upward_imports(PACKAGE / where, source)) == n_bad


# ------------------------------------------------------------------ one agent contract
def test_the_runner_dispatches_on_types_not_on_probed_methods():
    """The runner tells agents apart by their class (core.BatchedAgent, core.WholeRunAgent),
    never by ``hasattr`` or a string tag: a newcomer's agent is run the way its base says."""
    source = (PACKAGE / "bench" / "runner.py").read_text(encoding="utf-8")
    calls = [node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Name) and node.func.id == "hasattr"]
    assert not calls, f"bench/runner.py calls hasattr at lines {[c.lineno for c in calls]}"
    assert '"sb3"' not in source and "runner ==" not in source


def test_every_builtin_agent_has_one_of_the_two_core_bases():
    """Every built-in agent is a core BatchedAgent (the meTS family included) or a WholeRunAgent
    (an RL library's learner): one agent framework to copy."""
    from gambit_gym.agents._builtin import BUILTIN, RL
    from gambit_gym.agents.base import resolve
    from gambit_gym.core.batched import BatchedAgent
    from gambit_gym.core.protocol import WholeRunAgent

    wrong = []
    for name, (_path, family, _about) in BUILTIN.items():
        if family == RL:
            continue  # imports stable-baselines3; checked by its own tests
        cls = resolve(name)
        if not (isinstance(cls, type) and issubclass(cls, (BatchedAgent, WholeRunAgent))):
            wrong.append(name)
    assert not wrong, f"built-in agents on neither core base: {wrong}"
    for name in ("meTS-Lin", "meTS-GLM", "meTS-Fa", "HierTS", "LinTS-Disjoint",
                 "LinUCB-Disjoint", "GLM-TS", "UCB-GLM"):
        assert issubclass(resolve(name), BatchedAgent), name


def test_the_old_import_paths_of_the_moved_base_still_work():
    from gambit_gym.agents._batched import BatchedAgent as old_base
    from gambit_gym.agents._rng import CounterStreams as old_streams
    from gambit_gym.core import BatchedAgent
    from gambit_gym.core.streams import CounterStreams

    assert old_base is BatchedAgent and old_streams is CounterStreams


def test_one_interval_rule_no_normal_quantile_written_by_hand():
    """Every interval of a mean goes through core.intervals (Student-t): no literal 1.96 and no
    ``norm.ppf`` in the package or the benchmark scripts. A Wilson score interval (of a
    proportion, e.g. a classifier's accuracy on a labelled set) is another statistic and may
    keep its z."""
    roots = [PACKAGE, PACKAGE.parent / "benchmarks"]
    bad = []
    for path in sorted(p for root in roots for p in root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        exempt = {id(n) for f in ast.walk(tree)
                  if isinstance(f, ast.FunctionDef) and "wilson" in f.name.lower()
                  for n in ast.walk(f)}
        for node in ast.walk(tree):
            if id(node) in exempt:
                continue
            if isinstance(node, ast.Constant) and node.value == 1.96:
                bad.append(f"{path.name}:{node.lineno} 1.96")
            elif (isinstance(node, ast.Attribute) and node.attr == "ppf"
                  and isinstance(node.value, ast.Name) and node.value.id == "norm"):
                bad.append(f"{path.name}:{node.lineno} norm.ppf")
    assert not bad, "intervals computed outside core.intervals: " + ", ".join(bad)
