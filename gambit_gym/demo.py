"""``gambit-gym demo``: messages with their style embeddings, and two agents' regret.

The main job a new user runs after installing: it steps ``GambitIHS-v0`` a few times, printing
each generated message with its embedding and regret, then compares a two-stage agent
(poGAMBITTS) with a prompts-as-arms agent (StdTS) over a short benchmark.
"""

from __future__ import annotations

import argparse
import textwrap

import gymnasium as gym
import numpy as np


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``gambit-gym demo``."""
    from gambit_gym._argtypes import comma_list

    parser.add_argument("--env", default="GambitIHS-v0", help="environment id")
    parser.add_argument("--messages", type=int, default=3, help="messages to print")
    parser.add_argument("--replicates", type=int, default=50, help="replicates per agent")
    parser.add_argument("--horizon", type=int, default=300, help="steps per replicate")
    parser.add_argument("--seed", type=int, default=0, help="seed of the env and the agents")
    parser.add_argument("--agents", type=comma_list, default="poGAMBITTS,StdTS",
                        metavar="A,B", help="agents to compare (comma-separated; "
                        "gambit-gym agents lists them)")


def run(args: argparse.Namespace) -> int:
    """Print messages, embeddings and a regret summary."""
    import gambit_gym  # noqa: F401  (registers ids)
    from gambit_gym._validate import check_positive_int
    from gambit_gym.bench import run as run_benchmark

    check_positive_int("--messages", args.messages, minimum=0)
    check_positive_int("--replicates", args.replicates)
    check_positive_int("--horizon", args.horizon)
    env = gym.make(args.env)
    rng = np.random.default_rng(args.seed)
    env.reset(seed=args.seed)
    print(f"== {args.env}: {env.action_space.n} prompts, bank: {env.unwrapped.tables.bank}")
    for _ in range(args.messages):
        action = int(rng.integers(env.action_space.n))
        _, reward, _, _, info = env.step(action)
        scores = ", ".join(f"{n}={v:+.2f}" for n, v in
                           zip(info["embedding_names"], info["embedding"]))
        location, bucket = str(info["context"]).split(", ", 1)  # "work, 5,000-9,999"
        print(f"\ncontext: {location}, yesterday {bucket} steps; prompt {info['prompt_id']}")
        print(textwrap.fill(info["text"], 96, initial_indent="  > ", subsequent_indent="    "))
        print(f"  embedding: {scores}")
        print(f"  reward {reward:.3f}  expected {info['expected_reward']:.3f}  "
              f"regret {info['regret']:.3f}")
    print(f"\n== regret after {args.horizon} steps, {args.replicates} replicates "
          "(mean, 95% interval)")
    for agent in args.agents:
        result = run_benchmark(args.env, agent, horizon=args.horizon,
                               replicates=args.replicates, seed=args.seed, progress=False)
        s = result.summary()
        print(f"  {agent:<12} {s['mean']:8.2f}  [{s['low']:.2f}, {s['high']:.2f}]  "
              f"({result.wall_time_s:.1f} s)")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    configure(parser)
    raise SystemExit(run(parser.parse_args()))
