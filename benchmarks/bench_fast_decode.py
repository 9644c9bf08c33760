"""Is ``text/fast_decode.py`` worth keeping? Its sampler against ``transformers``' ``generate``.

The response-bank builder asks the same query many times. This script loads the packaged
SmolLM2 once and draws the same workload (``--queries`` distinct prompts x ``--copies`` drafts
each, ``--max-new-tokens``) three ways, on the CPU, in the same process:

* ``shared-prefix``: :class:`gambit_gym.text.fast_decode.SharedPrefixSampler` (what
  ``SmolLM2Generator`` uses by default);
* ``generate+cache``: ``transformers``' batched ``generate`` with each distinct query's prompt
  cache computed once and copied to its rows (``SmolLM2Generator(shared_prefix=False)``);
* ``generate``: plain batched ``model.generate`` over every row, prompt included.

It prints seconds per run (best of ``--repeats``) and each one's ratio to plain ``generate``.
Run by hand: ``python benchmarks/bench_fast_decode.py`` (about a minute on one thread).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import torch

from gambit_gym.text.generators import SamplingConfig, SmolLM2Generator
from gambit_gym.text.prompts import load_prompt_library


@dataclass
class Args:
    """Command-line arguments."""

    queries: int = 2
    copies: int = 16
    max_new_tokens: int = 40
    repeats: int = 2
    threads: int = 1


def parse() -> Args:
    """Read :class:`Args` from the command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, value in vars(Args()).items():
        p.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    return Args(**vars(p.parse_args()))


def _plain_generate(gen: SmolLM2Generator, prompts: list[str], seed: int) -> None:
    """Batched ``model.generate`` over every row (no prompt-cache sharing)."""
    tok, model = gen._tok, gen._model
    enc = tok([gen._render(p) for p in prompts], return_tensors="pt", padding=True,
              add_special_tokens=False)
    torch.manual_seed(seed)
    with torch.inference_mode():
        model.generate(**enc, do_sample=True, temperature=gen.sampling.temperature,
                       top_p=gen.sampling.top_p, top_k=0,
                       max_new_tokens=gen.sampling.max_new_tokens,
                       pad_token_id=tok.pad_token_id)


def main(args: Args) -> None:
    """Time the three decoders on one workload and print the table."""
    torch.set_num_threads(args.threads)
    sampling = SamplingConfig(max_new_tokens=args.max_new_tokens, system=None)
    gen = SmolLM2Generator(device="cpu", batch_size=args.queries * args.copies,
                           sampling=sampling, spare=0.0)
    gen.load()
    library = load_prompt_library()
    queries = [library.render(p, c) for p, c in zip(range(args.queries), range(args.queries))]
    prompts = [q for q in queries for _ in range(args.copies)]
    ways = {
        "shared-prefix": lambda s: gen._draft_shared(prompts, s),
        "generate+cache": lambda s: gen._draft_generate(prompts, s),
        "generate": lambda s: _plain_generate(gen, prompts, s),
    }
    assert gen._sampler is not None, "SmolLM2 should take the shared-prefix sampler"
    times = {}
    for name, fn in ways.items():
        fn(0)  # warm-up
        best = float("inf")
        for r in range(args.repeats):
            start = time.perf_counter()
            fn(r + 1)
            best = min(best, time.perf_counter() - start)
        times[name] = best
    print(f"SmolLM2-135M on CPU, {torch.get_num_threads()} thread(s): {args.queries} queries x "
          f"{args.copies} drafts, max_new_tokens={args.max_new_tokens}, best of {args.repeats}")
    print("| decoder | seconds | speed-up vs generate |")
    print("|---|---|---|")
    for name, t in times.items():
        print(f"| {name} | {t:.2f} | {times['generate'] / t:.2f}x |")


if __name__ == "__main__":
    main(parse())
