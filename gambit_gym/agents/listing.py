"""``gambit-gym agents``: the registered agent names, their family and one line each."""

from __future__ import annotations

import argparse


def agent_table() -> list[dict[str, str]]:
    """One row per registered agent: name, family, what it does (built-ins in their order)."""
    from gambit_gym.agents._builtin import BUILTIN
    from gambit_gym.agents.base import _REGISTRY, names

    names()  # loads the built-ins
    rows = [{"name": n, "family": family, "about": about}
            for n, (_, family, about) in BUILTIN.items()]
    for name in sorted(set(_REGISTRY) - set(BUILTIN)):  # registered by the user's code
        factory = _REGISTRY[name]
        path = factory if isinstance(factory, str) else \
            f"{getattr(factory, '__module__', '?')}:{getattr(factory, '__qualname__', '?')}"
        rows.append({"name": name, "family": "registered", "about": path})
    return rows


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``gambit-gym agents``."""
    parser.add_argument("--format", choices=["text", "md"], default="text",
                        help="plain columns or a Markdown table")


def run(args: argparse.Namespace) -> int:
    """Print the table."""
    rows = agent_table()
    if args.format == "md":
        print("| agent | family | what it does |\n|---|---|---|")
        for r in rows:
            print(f"| `{r['name']}` | {r['family']} | {r['about']} |")
        return 0
    width = max(len(r["name"]) for r in rows)
    fam = max(len(r["family"]) for r in rows)
    for r in rows:
        print(f"{r['name']:<{width}}  {r['family']:<{fam}}  {r['about']}")
    print("\nAny 'module:Class' path works too (docs/agents.md: writing your own).")
    return 0
