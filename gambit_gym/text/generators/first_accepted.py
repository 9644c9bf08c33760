"""The live env's ``generate``: each query's first accepted draft, decoding stopped there.

:func:`generate_first_accepted` is what :meth:`HFGenerator.generate
<gambit_gym.text.generators.HFGenerator.generate>` runs when ``early_stop`` is set (the live
env sets it) and the model runs on the shared-prefix sampler. It keeps everything that makes a
message a draw from the bank's treatment distribution (model, chat rendering, system
instruction, few-shot turns, temperature, top-p, token limit, cleaning and quality filter) and
changes only how the draws are scheduled (:mod:`gambit_gym.text.live_decode`):

* draft ``k`` of query ``i`` in a call with seed ``s`` has its own random stream,
  ``derive_seed(s, i, k)``; a pass samples drafts ``a*n .. a*n + n - 1`` of every open query
  in one batch (``n = 1 + ceil(spare)``, pass ``a < max_attempts``);
* the message is the first accepted draft in draft order: the result of sequential rejection
  sampling over that stream, whatever ``n`` is (so ``n`` is a speed setting only); drafts after
  it are not finished, judged or counted;
* when every draft of a query is rejected, the longest clean one is kept and counted as
  unresolved, as in :meth:`~.redraw.BaseGenerator.generate`.

Same seed and queries → same messages. The tokenised queries and the constant prefix's
keys/values are cached on the generator, so constant text is neither re-tokenised nor re-run.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from gambit_gym.text.generators.interface import derive_seed

if TYPE_CHECKING:  # pragma: no cover
    from gambit_gym.text.generators.hf import HFGenerator

#: Most distinct rendered queries whose token ids a generator keeps (the IHS library has 480).
TOKEN_CACHE_SIZE = 4096


def drafts_per_pass(spare: float) -> int:
    """Drafts of one query sampled together in a pass: the query itself plus its spares."""
    return 1 + math.ceil(spare)


def query_ids(gen: HFGenerator, prompt: str) -> list[int]:
    """The token ids of ``prompt`` rendered with the chat template (cached per settings)."""
    key = (prompt, gen.system, gen.few_shot)
    cache: dict[Any, list[int]] = gen.__dict__.setdefault("_ids_cache", {})
    if key not in cache:
        if len(cache) >= TOKEN_CACHE_SIZE:
            cache.clear()
        cache[key] = list(gen._tok(gen._render(prompt), add_special_tokens=False)["input_ids"])
    return cache[key]


def constant_prefix(gen: HFGenerator) -> list[int]:
    """The tokens every rendered query starts with (system instruction, few-shot turns, ...).

    Found as the common start of two queries that differ from their first character; a query
    that does not start with it (a tokenisation that merges across the boundary) is run whole.
    """
    a, b = query_ids(gen, "a"), query_ids(gen, "b")
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def generate_first_accepted(gen: HFGenerator, prompts: list[str], seed: int) -> list[str]:
    """One message per query: its first accepted draft (see the module docstring)."""
    import torch

    from gambit_gym.text.live_decode import FirstAcceptedDecoder, draft_uniforms

    gen.load()
    decoder = gen.__dict__.get("_first_accepted")
    if decoder is None or decoder.s is not gen._sampler:
        decoder = gen.__dict__["_first_accepted"] = FirstAcceptedDecoder(gen._sampler)
    tok, sampling = gen._tok, gen.sampling
    n = min(gen.batch_size, drafts_per_pass(gen.spare))
    head = constant_prefix(gen)
    prefix = decoder.prefix(head)
    runs: dict[str, tuple[Any, Any]] = {}  # identical queries share their prefill
    for p in prompts:
        if p not in runs:
            ids = query_ids(gen, p)
            if ids[:len(head)] == head and len(ids) > len(head):
                runs[p] = decoder.continue_prefix(prefix, torch.tensor(ids[len(head):]))
            else:
                cache, logits = gen._sampler.prefill(torch.tensor(ids, device=gen.device))
                runs[p] = cache, logits[-1:]
    eos = gen._eos_ids()
    result: list[str | None] = [None] * len(prompts)
    fallback = [""] * len(prompts)
    todo = list(range(len(prompts)))
    for attempt in range(sampling.max_attempts):
        if not todo:
            break
        gen._report(queued=len(todo))
        seeds = [derive_seed(seed, i, attempt * n + j) for i in todo for j in range(n)]
        uniforms = draft_uniforms(seeds, sampling.max_new_tokens)

        def judge(items: list[tuple[int, list[int]]], todo: list[int] = todo
                  ) -> list[tuple[str, str | None]]:
            texts = tok.batch_decode([ids for _, ids in items], skip_special_tokens=True)
            return gen._screen(texts, [prompts[todo[g]] for g, _ in items])

        settled = decoder.decode([runs[prompts[i]][0] for i in todo],
                                 [runs[prompts[i]][1] for i in todo], n, uniforms,
                                 sampling.temperature, sampling.top_p, eos, judge)
        still = []
        for i, done in zip(todo, settled):
            for msg, reason in done.verdicts:
                if reason is not None:
                    gen._reject(reason)
                    if msg and len(msg) > len(fallback[i]):
                        fallback[i] = msg
            if done.accepted is not None:
                result[i] = done.verdicts[done.accepted][0]
            else:
                still.append(i)
        gen._report(drafted=sum(len(d.drafts) for d in settled))
        todo = still
    return gen._settle(prompts, result, fallback, todo, sampling.max_attempts * n)
