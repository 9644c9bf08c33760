"""``gambit-gym list``: the registered ids with their dims, K, noise sd and outcome model."""

from __future__ import annotations

import argparse

from gambit_gym.envs.config import make_config
from gambit_gym.envs.registration import ENV_IDS


def env_table() -> list[dict[str, str]]:
    """One row per registered id: id, outcome, true dims, working dims, K, noise sd, about."""
    rows = []
    for env_id, _, vector_entry, kwargs, about in ENV_IDS:
        if "preset" in kwargs:
            cfg = make_config(kwargs["preset"])
            outcome = f"{cfg.outcome} ({cfg.outcome_facts})" if cfg.outcome == "linear" \
                else "mlp (64 ReLU)"
            rows.append({
                "id": env_id, "outcome": outcome, "dims": ", ".join(cfg.true_dims),
                "working dims": ", ".join(cfg.working_dims), "K": str(cfg.n_actions),
                "noise sd (level 0)": f"{cfg.effective_noise_sd:.3f}",
                "vector": "native" if vector_entry else "sync/async",
                "about": about,
            })
        else:
            rows.append({"id": env_id, "outcome": "-", "dims": "-", "working dims": "-",
                         "K": str(kwargs.get("n_actions", kwargs.get("K", "see docs"))),
                         "noise sd (level 0)": "-",
                         "vector": "native" if vector_entry else "sync/async", "about": about})
    return rows


def format_markdown(rows: list[dict[str, str]]) -> str:
    """The table as GitHub Markdown."""
    headers = list(rows[0])
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(r[h] for h in headers) + " |" for r in rows]
    return "\n".join(lines)


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``gambit-gym list``."""
    parser.add_argument("--format", choices=["text", "md"], default="text",
                        help="plain columns (default) or Markdown")


def run(args: argparse.Namespace) -> int:
    """Print the table."""
    rows = env_table()
    if args.format == "md":
        print(format_markdown(rows))
        return 0
    headers = [h for h in rows[0] if h != "about"]
    rows = [{h: (v if len(v) <= 40 else v[:37] + "...") for h, v in r.items()} for r in rows]
    widths = {h: max(len(h), *(len(r[h]) for r in rows)) for h in headers}
    print("  ".join(h.ljust(widths[h]) for h in headers))
    for r in rows:
        print("  ".join(r[h].ljust(widths[h]) for h in headers))
    return 0
