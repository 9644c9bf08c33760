"""How long does a ``GambitIHS-Live-v0`` step take on a CPU? (issue 18 target: <= 1.5 s.)

Makes the live env (the models load here, at ``make``, with a progress message), then times
``--steps`` steps of two single envs sharing the loaded models, alternating step by step so
both see the same machine load:

* ``old``: the decoding the live env used before (eight drafts of each query in one batch, run
  until all have ended, then cleaned and filtered; ``early_stop`` off, ``spare=7``): the
  reference measured in the same run;
* ``new``: the live env's default (:mod:`gambit_gym.text.generators.first_accepted`: drafts
  ``--drafts`` at a time with their own random streams, stopped at the first accepted one, the
  constant prefix's keys/values computed once).

Both have the same model, prompts, temperature, top-p, token limit, cleaning and quality
filter. For each it prints wall and CPU seconds (user + sys of this process, all threads) per
step, where the time went (prefill, decode steps, cleaning + filter, style embedding), the
load average, the ratio new/old and the ratio to the 1.5 s target; then the native vector env
(``--replicates`` replicates in one ``generate`` call) on the new path.

Run by hand: ``python benchmarks/bench_live_step.py --threads 2`` (a few minutes on 2 cores
after the models load).
"""

from __future__ import annotations

import argparse
import copy
import os
import resource
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import gambit_gym  # noqa: F401  (registers the ids)
from gambit_gym.envs.live import LIVE_DRAFTS, LIVE_MAX_NEW_TOKENS
from gambit_gym.text.generators import SamplingConfig

TARGET_S = 1.5


def cpu_s() -> float:
    """User + system CPU seconds of this process so far (every thread)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Timers:
    """Wall seconds spent in wrapped callables, by label (reset per step)."""

    def __init__(self) -> None:
        self.acc: dict[str, float] = defaultdict(float)

    def wrap(self, obj: Any, name: str, label: str) -> None:
        """Replace ``obj.name`` with a timed wrapper (on this instance only)."""
        inner: Callable[..., Any] = getattr(obj, name)

        def timed(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            try:
                return inner(*a, **k)
            finally:
                self.acc[label] += time.perf_counter() - t

        setattr(obj, name, timed)

    def take(self) -> dict[str, float]:
        """The seconds by label since the last call."""
        out, self.acc = dict(self.acc), defaultdict(float)
        return out


def main() -> None:
    """Time old and new live steps and print seconds per step and ratios."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--replicates", type=int, default=4, help="vector env replicates")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--drafts", type=int, default=LIVE_DRAFTS, help="new path: drafts per pass")
    ap.add_argument("--max-new-tokens", type=int, default=LIVE_MAX_NEW_TOKENS)
    ap.add_argument("--no-old", action="store_true", help="skip the old path (reference)")
    ap.add_argument("--v2-steps", type=int, default=0,
                    help="also time this many generate + embed calls with the bank-v2 prompt "
                         "library (system, few-shot turns, v2 queries), old and new")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch threads {torch.get_num_threads()}, load average at start "
          f"{os.getloadavg()[0]:.1f}")

    t0 = time.perf_counter()
    env = gym.make("GambitIHS-Live-v0", horizon=args.steps + 1)
    print(f"make (models load): {time.perf_counter() - t0:.1f} s")
    live = env.unwrapped._live
    new = live.generator
    new.sampling = SamplingConfig(**{**vars(new.sampling),
                                     "max_new_tokens": args.max_new_tokens})
    new.spare = float(args.drafts - 1)
    old = copy.copy(new)
    old.sampling = copy.copy(new.sampling)
    old.early_stop, old.spare = False, 7.0
    old.rejection_reasons = {}
    envs = {"new": env}
    if not args.no_old:
        envs["old"] = gym.make("GambitIHS-Live-v0", horizon=args.steps + 1, generator=old,
                               embedder=live.embedder)
    gens = {"new": new, "old": old}
    timers = Timers()
    sampler = new._sampler
    timers.wrap(sampler, "prefill", "prefill")
    timers.wrap(sampler, "_decode_step", "decode steps")
    timers.wrap(live.embedder, "embed", "style embedding")
    for g in gens.values():
        timers.wrap(g, "_screen", "clean+filter")
    new.generate([str(live.tables.prompt_texts[0, 0])], seed=0)  # builds the prefix cache
    decoder = new.__dict__["_first_accepted"]
    timers.wrap(decoder, "continue_prefix", "prefill")
    timers.take()
    for e in envs.values():
        e.reset(seed=0)
    rng = np.random.default_rng(0)
    rows: dict[str, list[tuple[float, float]]] = defaultdict(list)
    parts: dict[str, dict[str, float]] = {k: defaultdict(float) for k in envs}
    counts = {k: gens[k].rejections for k in envs}
    loads = [os.getloadavg()[0]]
    steps0, tokens0 = decoder.steps, decoder.tokens
    for _ in range(args.steps):
        a = int(rng.integers(env.action_space.n))
        for name, e in envs.items():
            w, c = time.perf_counter(), cpu_s()
            _, _, _, _, info = e.step(a)
            rows[name].append((time.perf_counter() - w, cpu_s() - c))
            for label, sec in timers.take().items():
                parts[name][label] += sec
            print(f"  {name} step: wall {rows[name][-1][0]:.2f} s, cpu {rows[name][-1][1]:.2f} s:"
                  f" {info['text']}", flush=True)
        loads.append(os.getloadavg()[0])
    print(f"load average (1 min) during the steps: {min(loads):.1f}-{max(loads):.1f}")
    med = {k: (statistics.median(r[0] for r in v), statistics.median(r[1] for r in v))
           for k, v in rows.items()}
    for name in envs:
        wall, cpu = med[name]
        rejected = gens[name].rejections - counts[name]
        share = ", ".join(f"{label} {sec / args.steps:.2f}" for label, sec in
                          sorted(parts[name].items()))
        print(f"{name}: median wall {wall:.2f} s, cpu {cpu:.2f} s per step "
              f"(wall/{TARGET_S} s target {wall / TARGET_S:.2f}); drafts rejected "
              f"{rejected} over {args.steps} steps; mean wall s per step in: {share}")
    print(f"new path: {(decoder.steps - steps0) / args.steps:.1f} decode steps and "
          f"{(decoder.tokens - tokens0) / args.steps:.0f} draft tokens per step "
          f"({args.drafts} drafts per pass, token limit {args.max_new_tokens})")
    if "old" in med:
        print(f"ratio new/old: wall {med['new'][0] / med['old'][0]:.2f}, "
              f"cpu {med['new'][1] / med['old'][1]:.2f}")
    print(f"target <= {TARGET_S} s per single step: "
          f"{'met' if med['new'][0] <= TARGET_S else 'NOT met'} (median wall)")

    if args.v2_steps:
        v2_library(args, {k: gens[k] for k in envs}, live.embedder, rng)

    venv = gym.make_vec("GambitIHS-Live-v0", num_envs=args.replicates,
                        vectorization_mode="vector_entry_point", horizon=args.steps + 1,
                        generator=new, embedder=live.embedder)
    venv.reset(seed=0)
    vector = []
    for _ in range(args.steps):
        acts = rng.integers(venv.single_action_space.n, size=args.replicates)
        w, c = time.perf_counter(), cpu_s()
        venv.step(acts)
        vector.append((time.perf_counter() - w, cpu_s() - c))
    vw = statistics.median(v[0] for v in vector)
    vc = statistics.median(v[1] for v in vector)
    print(f"vector step (new path), R={args.replicates}: median wall {vw:.2f} s, cpu {vc:.2f} s"
          f" ({vw / args.replicates:.2f} s wall per replicate); load average "
          f"{os.getloadavg()[0]:.1f}")


def v2_library(args: argparse.Namespace, gens: dict[str, Any], embedder: Any,
               rng: np.random.Generator) -> None:
    """Old and new ``generate`` + ``embed`` on bank-v2 queries (what a live step will cost once
    the v2 bank ships: its few-shot turns make the constant prefix longer and its messages
    shorter), alternating per query."""
    from gambit_gym.text.prompts import load_prompt_library

    lib = load_prompt_library("v2")
    for g in gens.values():
        g.system, g.few_shot = lib.system, lib.few_shot
    gens["new"].generate([lib.render(0, 0)], seed=0)  # the v2 prefix, computed once
    rows: dict[str, list[tuple[float, float]]] = defaultdict(list)
    loads = [os.getloadavg()[0]]
    for k in range(args.v2_steps):
        query = lib.render(int(rng.integers(len(lib.prompts))), int(rng.integers(12)))
        for name, g in gens.items():
            w, c = time.perf_counter(), cpu_s()
            text = g.generate([query], seed=1000 + k)
            embedder.embed(text)
            rows[name].append((time.perf_counter() - w, cpu_s() - c))
            print(f"  v2 {name}: wall {rows[name][-1][0]:.2f} s, cpu {rows[name][-1][1]:.2f} s:"
                  f" {text[0]}", flush=True)
        loads.append(os.getloadavg()[0])
    med = {k: (statistics.median(r[0] for r in v), statistics.median(r[1] for r in v))
           for k, v in rows.items()}
    for name, (wall, cpu) in med.items():
        print(f"v2 library, {name}: median wall {wall:.2f} s, cpu {cpu:.2f} s per generate + "
              f"embed (wall/{TARGET_S} s target {wall / TARGET_S:.2f}); load average "
              f"{min(loads):.1f}-{max(loads):.1f}")
    if "old" in med:
        print(f"v2 library, ratio new/old: wall {med['new'][0] / med['old'][0]:.2f}, "
              f"cpu {med['new'][1] / med['old'][1]:.2f}")


if __name__ == "__main__":
    main()
