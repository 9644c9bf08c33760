"""How long does a ``GambitIHS-Live-v0`` step take on a CPU? (issue 18 target: <= 1.5 s.)

Makes the live env (the models load here, at ``make``, with a progress message), then times
``--steps`` steps of the single env and of the native vector env (every replicate's message in
one batched ``generate`` call), with the quality filter on. As a reference measured in the same
run and process, it times one bare SmolLM2 forward batch of the same shape with no filter
(``reference``), and prints each figure's ratio to it, so a reading taken on a loaded machine
can be compared with one taken on an idle one.

Run by hand: ``python benchmarks/bench_live_step.py --threads 2`` (about a minute or two after
the models load, on 2 cores).
"""

from __future__ import annotations

import argparse
import statistics
import time

import gymnasium as gym
import numpy as np
import torch

import gambit_gym  # noqa: F401  (registers the ids)


def main() -> None:
    """Time live steps and print seconds per step and ratios to the reference."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--replicates", type=int, default=4, help="vector env replicates")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    env = gym.make("GambitIHS-Live-v0", horizon=args.steps + 1)
    print(f"make (models load): {time.perf_counter() - t0:.1f} s")
    live = env.unwrapped._live
    gen = live.generator
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    single = []
    rejected = gen.rejections
    for _ in range(args.steps):
        a = int(rng.integers(env.action_space.n))
        t = time.perf_counter()
        _, _, _, _, info = env.step(a)
        single.append(time.perf_counter() - t)
        print(f"  single step {single[-1]:.2f} s: {info['text']}")
    rejected = gen.rejections - rejected

    venv = gym.make_vec("GambitIHS-Live-v0", num_envs=args.replicates,
                        vectorization_mode="vector_entry_point", horizon=args.steps + 1,
                        generator=gen, embedder=live.embedder)
    venv.reset(seed=0)
    vector = []
    for _ in range(args.steps):
        acts = rng.integers(venv.single_action_space.n, size=args.replicates)
        t = time.perf_counter()
        venv.step(acts)
        vector.append(time.perf_counter() - t)

    # reference: the same query's drafts sampled once, no filter, no embedding
    prompt = str(live.tables.prompt_texts[0, 0])
    saved = gen.quality
    gen.quality = None
    ref = []
    for s in range(args.steps):
        t = time.perf_counter()
        gen._draft([prompt], seed=s)
        ref.append(time.perf_counter() - t)
    gen.quality = saved
    r = statistics.median(ref)
    s1, sv = statistics.median(single), statistics.median(vector)
    print(f"reference (one query's {1 + int(np.ceil(gen.spare))} drafts, "
          f"{gen.sampling.max_new_tokens} tokens, no filter): {r:.2f} s")
    print(f"single-env step: median {s1:.2f} s (max {max(single):.2f}), ratio {s1 / r:.2f}; "
          f"drafts rejected {rejected} over {args.steps} steps")
    print(f"vector step, R={args.replicates}: median {sv:.2f} s ({sv / args.replicates:.2f} s "
          f"per replicate), ratio {sv / r:.2f}")
    print(f"target <= 1.5 s per single step: {'met' if s1 <= 1.5 else 'NOT met'}")


if __name__ == "__main__":
    main()
