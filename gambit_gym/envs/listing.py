"""``gambit-gym list``: the registered ids with their dims, K, noise sd per level and outcome."""

from __future__ import annotations

import argparse

from gambit_gym.envs.config import make_config
from gambit_gym.envs.registration import ENV_IDS


def env_table() -> list[dict[str, str]]:
    """One row per registered id: id, outcome, dims, K, noise sd per level, vector env, about."""
    rows = []
    for env_id, _, vector_entry, kwargs, about in ENV_IDS:
        vector = "native" if vector_entry else "sync/async"
        if "preset" in kwargs:
            cfg = make_config(kwargs["preset"],
                              **{k: v for k, v in kwargs.items() if k != "preset"})
            outcome = f"{cfg.outcome} ({cfg.outcome_facts})" if cfg.outcome == "linear" \
                else "mlp (64 ReLU)"
            ladder = " / ".join(f"{sd:.2f}" for sd in cfg.noise_ladder)
            rows.append({
                "id": env_id, "outcome": outcome, "dims": ", ".join(cfg.true_dims),
                "working dims": ", ".join(cfg.working_dims) if cfg.embedding == "scores"
                else f"{cfg.embedding} (sentence vector)", "K": str(cfg.n_actions),
                "noise sd, levels 0-4": ladder, "vector": vector, "about": about,
            })
        elif env_id.startswith("MixedEffect"):
            from gambit_gym.envs.mixed_effect import MixedEffectConfig

            cfg = MixedEffectConfig(**kwargs)
            logistic = env_id.startswith("MixedEffectLogistic")
            noise = "Bernoulli rewards" if logistic else f"{cfg.noise_sd:g} (sigma, no levels)"
            rows.append({
                "id": env_id, "outcome": "logistic" if logistic else "linear",
                "dims": f"d = {cfg.dim}, L = {cfg.n_effects} effects", "working dims": "-",
                "K": str(cfg.n_actions), "noise sd, levels 0-4": noise, "vector": vector,
                "about": about,
            })
        else:
            rows.append({"id": env_id, "outcome": "-", "dims": "-", "working dims": "-",
                         "K": str(kwargs.get("n_actions", kwargs.get("K", "see docs"))),
                         "noise sd, levels 0-4": "-", "vector": vector, "about": about})
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
                        help="one block per id, or a Markdown table")


def run(args: argparse.Namespace) -> int:
    """Print the table (every column in full: rows wrap rather than lose their ends)."""
    rows = env_table()
    if args.format == "md":
        print(format_markdown(rows))
        return 0
    for r in rows:
        print(r["id"])
        for key, value in r.items():
            if key != "id":
                print(f"  {key + ':':<22}{value}")
    return 0
