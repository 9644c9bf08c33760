"""The live treatment of ``GambitIHS-Live-v0``: a real generator and embedder at every step.

:class:`LiveTreatment` loads both models when the env is made (with a progress message on
stderr), never inside a step, and gives the generator what the bank's prompt library gave the
bank's generator (system instruction, few-shot turns) plus the bank's quality filter
(:class:`~gambit_gym.text.generators.quality.QualityFilter`), so a live message passes the
same checks a bank message did. :meth:`LiveTreatment.draw` writes the messages of a whole
batch of replicates in one ``generate`` call and scores them in one ``embed`` call: the
single env is a batch of one, the vector env a batch of R.

For the default SmolLM2 generator, each query is sampled with seven spare drafts in the same
forward batch (``spare=7``), so a draft the filter rejects is almost always replaced without a
second pass; the per-step cost on a CPU is measured by ``benchmarks/bench_live_step.py``.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np

from gambit_gym.core import counter_rng

#: Sampling of the default live generator: shorter than the bank's 60 tokens (2-3 sentences
#: fit), and up to 8 drafts per query in one forward batch.
LIVE_MAX_NEW_TOKENS = 48
LIVE_SPARE = 7.0


class LiveTreatment:
    """Generates, filters and scores the messages of live steps.

    Args:
        tables: the env's tables (the bank gives the prompts, dimensions and library).
        generator: a generator, or None for SmolLM2-135M-Instruct on ``device``.
        embedder: a style embedder, or None for MiniLM on ``device``.
        device: for the default models (``"cpu"`` when None).
        progress: print what is loading, and how long it took, to stderr.
    """

    def __init__(self, tables: Any, generator: Any, embedder: Any, device: str | None,
                 progress: bool = True) -> None:
        from gambit_gym.text.generators import SamplingConfig
        from gambit_gym.text.generators.quality import QualityFilter
        from gambit_gym.text.prompts import PromptLibrary

        device = device or "cpu"
        if generator is None:
            from gambit_gym.text.generators import SmolLM2Generator

            generator = SmolLM2Generator(
                device=device, batch_size=64, spare=LIVE_SPARE,
                sampling=SamplingConfig(max_new_tokens=LIVE_MAX_NEW_TOKENS))
        if embedder is None:
            from gambit_gym.text.embedder import MiniLMStyleEmbedder

            embedder = MiniLMStyleEmbedder(device=device)
        lib_data = tables.bank.metadata.get("prompt_library", {})
        # The bank's messages were written under its library's system instruction (and
        # few-shot turns); a live generator without its own gets the same.
        system = lib_data.get("system")
        if system and hasattr(generator, "system") and not generator.system:
            generator.system = system
        if lib_data.get("few_shot") and hasattr(generator, "few_shot") \
                and not generator.few_shot:
            generator.few_shot = PromptLibrary.from_dict(lib_data).few_shot
        if hasattr(generator, "quality") and generator.quality is None:
            generator.quality = QualityFilter(
                encoder=embedder if hasattr(embedder, "encode") else None, device=device)
        self.generator, self.embedder, self.tables = generator, embedder, tables
        names = list(embedder.names)
        self._true = [names.index(n) for n in tables.bank.dimensions]
        self._working = np.array([tables.bank.dimensions.index(n)
                                  for n in tables.working_names])
        self._true_dims = tables.bank.dimension_index(tables.true_names)
        self.load(progress)

    def load(self, progress: bool = True) -> None:
        """Load the generator, the embedder and the filter's anchors now (not in a step)."""
        started = time.perf_counter()
        needs = getattr(self.generator, "_model", True) is None
        if progress and needs:
            params = getattr(self.generator, "_params", dict)()
            what = params.get("model", type(self.generator).__name__)
            print(f"GambitIHS-Live-v0: loading the generator ({what}) and the style embedder "
                  "(MiniLM); this takes a while on a CPU ...", file=sys.stderr, flush=True)
        if hasattr(self.generator, "load"):
            self.generator.load()
        self.embedder.embed(["Take a short walk today."])
        quality = getattr(self.generator, "quality", None)
        if quality is not None:
            quality.load()
        if progress and needs:
            print(f"GambitIHS-Live-v0: models ready in {time.perf_counter() - started:.1f} s",
                  file=sys.stderr, flush=True)

    @staticmethod
    def seed_for(keys: np.ndarray, t: int) -> int:
        """The generation seed of a step: a function of every replicate's key and ``t``."""
        from gambit_gym.text.generators import derive_seed

        seeds = [counter_rng.hash64(int(k), t, counter_rng.STREAM_GENERATOR) >> 33
                 for k in keys]
        return seeds[0] if len(seeds) == 1 else derive_seed(*seeds)

    def draw(self, actions: np.ndarray, contexts: np.ndarray, keys: np.ndarray, t: int,
             noise_sd: float, cost: Any) -> tuple[list[str], np.ndarray, np.ndarray,
                                                  dict[str, np.ndarray]]:
        """Messages, working embeddings ``(R, d_w)``, rewards ``(R,)`` and cost entries.

        One ``generate`` call for the whole batch and one ``embed`` call: a replicate's
        message depends on the others' queries through the shared seed and batch, so a
        vector run is reproducible as a whole, for the same seeds and actions. The cost
        entries (arrays ``(R,)``): ``delivered`` (always), ``redraws`` (0: the filter's
        redraws happen inside the generator), ``tokens`` (the endpoint's reported completion
        tokens for a batch of one where the generator keeps a ``usage`` record, else the
        estimate of :mod:`gambit_gym.text.tokens`), ``cost`` and ``latency_s`` (the measured
        wall time of the batched call, the same for every replicate).
        """
        from gambit_gym.text.tokens import estimate_tokens

        prompts = [str(self.tables.prompt_texts[a, c]) for a, c in zip(actions, contexts)]
        usage = getattr(self.generator, "usage", None)
        before = dict(usage) if isinstance(usage, dict) else None
        start = time.perf_counter()
        texts = self.generator.generate(prompts, seed=self.seed_for(keys, t))
        wall = time.perf_counter() - start
        n = len(prompts)
        if n == 1 and before is not None and usage.get("calls", 0) > before.get("calls", 0):
            tokens = np.array([usage["completion_tokens"] - before["completion_tokens"]],
                              dtype=np.int64)
        else:
            tokens = np.asarray(estimate_tokens(list(texts)), dtype=np.int64)
        outcome = {"delivered": np.ones(n, dtype=np.bool_), "redraws": np.zeros(n, np.int64),
                   "tokens": tokens, "cost": np.asarray(cost.cost(tokens.astype(np.float64)),
                                                        dtype=np.float64) * np.ones(n),
                   "latency_s": np.full(n, wall, dtype=np.float64)}
        z_all = np.asarray(self.embedder.embed(texts), dtype=np.float32)[:, self._true]
        mean = self.tables.outcome.mean_reward(z_all[:, self._true_dims],
                                               np.asarray(contexts, dtype=np.int64))
        if noise_sd:
            noise = np.array([counter_rng.normal(int(k), t, counter_rng.STREAM_NOISE)
                              for k in keys])
        else:
            noise = np.zeros(len(keys))
        rewards = np.asarray(mean, dtype=np.float64) + noise_sd * noise
        return list(texts), z_all[:, self._working].copy(), rewards, outcome
