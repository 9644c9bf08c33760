"""The live treatment of ``GambitIHS-Live-v0``: a real generator and embedder at every step.

:class:`LiveTreatment` loads both models when the env is made (with a progress message on
stderr), never inside a step, and gives the generator what the bank's prompt library gave the
bank's generator (system instruction, few-shot turns) plus the bank's quality filter
(:class:`~gambit_gym.text.generators.quality.QualityFilter`), so a live message passes the
same checks a bank message did. :meth:`LiveTreatment.draw` writes the messages of a whole
batch of replicates in one ``generate`` call and scores them in one ``embed`` call: the
single env is a batch of one, the vector env a batch of R.

Every message is also scored by the packaged safety classifier on the same MiniLM encoding, so
``info`` has the bank envs' safety keys whatever the filter, and ``safety_filter="block"`` /
``"redraw"`` act on the generated message (redraws batched over the replicates still unsafe).
The oracle stays the scored bank's (docs/safety.md, "The filter on the live env").

The default SmolLM2 generator runs with ``early_stop`` (:mod:`gambit_gym.text.generators.
first_accepted`): each query's drafts are sampled :data:`LIVE_DRAFTS` at a time in one batch,
each draft with its own random stream, and decoding stops as soon as the first draft in draw
order that passes cleaning and the filter is complete, which is what sequential rejection
sampling returns, so the message has the bank's distribution; the keys/values of the constant
system/few-shot prefix are computed once. The per-step cost on a CPU, against the earlier
decoding (eight drafts run to the end) in the same run, is measured by
``benchmarks/bench_live_step.py``.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np

from gambit_gym.core import counter_rng

#: Sampling of the default live generator: shorter than the bank's 60 tokens (2-3 sentences
#: fit).
LIVE_MAX_NEW_TOKENS = 48
#: Drafts of a query sampled together in one pass of the default live generator (a speed
#: setting only: the first accepted draft in draw order is the same whatever it is).
LIVE_DRAFTS = 8
LIVE_SPARE = float(LIVE_DRAFTS - 1)


class LiveTreatment:
    """Generates, filters and scores the messages of live steps.

    Args:
        tables: the env's tables (the bank gives the prompts, dimensions and library).
        generator: a generator, or None for SmolLM2-135M-Instruct on ``device``.
        embedder: a style embedder, or None for MiniLM on ``device``.
        device: for the default models (``"cpu"`` when None).
        progress: print what is loading, and how long it took, to stderr.
        safety_filter: None, ``"block"`` or ``"redraw"`` (:mod:`gambit_gym.envs.safety`).
        max_redraws: N, the redraws of ``"redraw"`` before it blocks.
        unsafe_categories: the categories that make a message unsafe (None: all six).

    Every message is scored by the packaged safety classifier
    (:class:`~gambit_gym.text.safety.MiniLMSafetyClassifier`), whatever the filter: with a
    MiniLM embedder (the default) it reads the embedder's encoding of the message, so MiniLM is
    loaded once and each message encoded once. A message is unsafe when a counted category
    reaches the classifier's threshold for it.
    """

    def __init__(self, tables: Any, generator: Any, embedder: Any, device: str | None,
                 progress: bool = True, safety_filter: str | None = None,
                 max_redraws: int = 0, unsafe_categories: tuple[str, ...] | None = None
                 ) -> None:
        from gambit_gym.text.generators import SamplingConfig
        from gambit_gym.text.generators.quality import QualityFilter
        from gambit_gym.text.prompts import PromptLibrary

        device = device or "cpu"
        if generator is None:
            from gambit_gym.text.generators import SmolLM2Generator

            generator = SmolLM2Generator(
                device=device, batch_size=64, spare=LIVE_SPARE, early_stop=True,
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
        from gambit_gym.envs.safety import FILTER_MODES

        self.mode = FILTER_MODES[safety_filter]
        self.max_redraws = int(max_redraws) if self.mode == 2 else 0
        self.safety, self._unsafe_cols, self._unsafe_limits, same = _classifier(
            tables.bank, embedder, device, unsafe_categories)
        #: whether the bank's safety columns (the oracle's unsafe rates) were written by the
        #: head that scores the live messages
        self.bank_scored_by_same_head = same
        self._shared_encoding = hasattr(embedder, "encode") and \
            hasattr(embedder, "scores_from_encodings")
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
    def seed_for(keys: np.ndarray, t: int, stream: int = counter_rng.STREAM_GENERATOR) -> int:
        """The generation seed of a step: a function of every replicate's key and ``t``.

        ``stream`` is :data:`~gambit_gym.core.counter_rng.STREAM_GENERATOR` for a step's first
        draw and :data:`~gambit_gym.envs.safety.STREAM_REDRAW` ``+ j`` for its redraw ``j``.
        """
        from gambit_gym.text.generators import derive_seed

        seeds = [counter_rng.hash64(int(k), t, stream) >> 33 for k in keys]
        return seeds[0] if len(seeds) == 1 else derive_seed(*seeds)

    def score(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Style scores ``(n, D)`` and safety scores ``(n, 6)`` of messages.

        With a MiniLM embedder the texts are encoded once and both the style axes and the
        safety heads read that encoding; the safety scores are rounded as a bank stores them
        (:func:`~gambit_gym.text.safety.quantize`), so a live message and a bank message with
        the same text get the same ``unsafe`` verdict.
        """
        from gambit_gym.text.safety import quantize

        if self._shared_encoding:
            enc = np.asarray(self.embedder.encode(texts), dtype=np.float32)
            z = self.embedder.scores_from_encodings(enc)
            safety = self.safety.score_encodings(texts, enc)
        else:
            z = self.embedder.embed(texts)
            safety = self.safety.score(texts)
        return np.asarray(z, dtype=np.float32), quantize(safety)

    def unsafe(self, safety: np.ndarray) -> np.ndarray:
        """Whether each message is unsafe: a counted category at or over its threshold."""
        return (safety[:, self._unsafe_cols] >= self._unsafe_limits).any(axis=1)

    def _tokens(self, texts: list[str]) -> np.ndarray:
        """Completion tokens of messages: the generator's own tokenizer, else the estimate."""
        counter = getattr(self.generator, "count_tokens", None)
        if counter is not None:
            return np.asarray(counter(list(texts)), dtype=np.int64)
        from gambit_gym.text.tokens import estimate_tokens

        return np.asarray(estimate_tokens(list(texts)), dtype=np.int64)

    def _prompt_lengths(self, prompts: list[str], actions: np.ndarray,
                        contexts: np.ndarray) -> np.ndarray:
        """Input tokens of one generation of each query.

        The generator's own count of what it sends where it has one (a local Hugging Face
        model), else the tables' (exact for the shipped bank's library, else estimated).
        """
        counter = getattr(self.generator, "count_prompt_tokens", None)
        if counter is not None:
            return np.asarray(counter(prompts), dtype=np.int64)
        return np.asarray(self.tables.safety.prompt_tokens[actions, contexts], dtype=np.int64)

    def _generate(self, prompts: list[str], seed: int) -> tuple[list[str], float]:
        start = time.perf_counter()
        texts = [str(x) for x in self.generator.generate(prompts, seed=seed)]
        return texts, time.perf_counter() - start

    def draw(self, actions: np.ndarray, contexts: np.ndarray, keys: np.ndarray, t: int,
             noise_sd: float, cost: Any) -> tuple[list[str], np.ndarray, np.ndarray,
                                                  dict[str, np.ndarray]]:
        """Messages, working embeddings ``(R, d_w)``, rewards ``(R,)`` and outcome entries.

        One ``generate`` call for the whole batch and one encoding pass, and under
        ``safety_filter="redraw"`` one more of each per redraw round for the replicates whose
        message is still unsafe (redraw ``j`` seeded from stream ``STREAM_REDRAW + j`` of their
        keys, so the first draw is the unfiltered env's). A replicate's message depends on the
        others' queries through the shared seed and batch, so a vector run is reproducible as a
        whole, for the same seeds and actions.

        A blocked replicate gets the no-message outcome (empty text, zero embedding, the
        context's ``no_message_reward``), as in the bank envs. The outcome entries (arrays
        ``(R,)``, the bank envs' info keys): ``delivered``, ``redraws``, ``tokens`` (every
        draw's completion tokens: the endpoint's reported usage for a batch of one where the
        generator keeps a ``usage`` record, else the generator's tokenizer or the estimate of
        :mod:`gambit_gym.text.tokens`), ``cost`` and ``latency_s`` (the measured wall time of
        the step's generate calls, the same for every replicate), ``prompt_tokens`` (every
        draw's input tokens: the endpoint's reported ``prompt_tokens`` for a batch of one where
        it reports usage, else the query's count, see :meth:`_prompt_lengths`), ``safety``
        ``(R, 6)`` (the last message drawn), ``unsafe`` and ``unsafe_delivered``.
        """
        from gambit_gym.envs.safety import STREAM_REDRAW

        actions = np.asarray(actions, dtype=np.int64)
        contexts = np.asarray(contexts, dtype=np.int64)
        keys = np.asarray(keys, dtype=np.uint64)
        prompts = [str(self.tables.prompt_texts[a, c]) for a, c in zip(actions, contexts)]
        n = len(prompts)
        usage = getattr(self.generator, "usage", None)
        before = dict(usage) if isinstance(usage, dict) else None
        texts, wall = self._generate(prompts, self.seed_for(keys, t))
        z_all, safety = self.score(texts)
        unsafe = self.unsafe(safety)
        tokens = self._tokens(texts)
        redraws = np.zeros(n, dtype=np.int64)
        for j in range(1, self.max_redraws + 1):
            again = np.flatnonzero(unsafe)
            if not len(again):
                break
            fresh, took = self._generate([prompts[i] for i in again],
                                         self.seed_for(keys[again], t, STREAM_REDRAW + j))
            wall += took
            z_new, s_new = self.score(fresh)
            for i, text in zip(again, fresh):
                texts[i] = text
            z_all[again], safety[again] = z_new, s_new
            unsafe[again] = self.unsafe(s_new)
            redraws[again] += 1
            tokens[again] += self._tokens(fresh)
        prompt_tokens = (redraws + 1) * self._prompt_lengths(prompts, actions, contexts)
        if n == 1 and before is not None and usage.get("calls", 0) > before.get("calls", 0):
            tokens = np.array([usage["completion_tokens"] - before["completion_tokens"]],
                              dtype=np.int64)
            prompt_tokens = np.array([usage["prompt_tokens"] - before["prompt_tokens"]],
                                     dtype=np.int64)
        delivered = ~unsafe if self.mode else np.ones(n, dtype=np.bool_)
        z_all = z_all[:, self._true]
        mean = np.asarray(self.tables.outcome.mean_reward(z_all[:, self._true_dims], contexts),
                          dtype=np.float64)
        z_working = z_all[:, self._working].copy()
        if not delivered.all():  # blocked: the no-message outcome of the bank envs
            blocked = np.flatnonzero(~delivered)
            none_rows = self.tables.safety.none_rows[contexts[blocked]]
            mean[blocked] = self.tables.row_reward[none_rows]
            z_working[blocked] = 0.0
            for i in blocked:
                texts[i] = ""
        if noise_sd:
            noise = np.array([counter_rng.normal(int(k), t, counter_rng.STREAM_NOISE)
                              for k in keys])
        else:
            noise = np.zeros(n)
        rewards = mean + noise_sd * noise
        outcome = {"delivered": delivered.astype(np.bool_), "redraws": redraws,
                   "tokens": tokens, "prompt_tokens": prompt_tokens,
                   "cost": np.asarray(cost.cost(tokens.astype(np.float64),
                                                prompt_tokens.astype(np.float64)),
                                      dtype=np.float64) * np.ones(n),
                   "latency_s": np.full(n, wall, dtype=np.float64),
                   "safety": safety, "unsafe": unsafe.astype(np.bool_),
                   "unsafe_delivered": (unsafe & delivered).astype(np.bool_)}
        return texts, z_working, rewards, outcome

    def step_info(self, outcome: dict[str, np.ndarray]) -> dict[str, Any]:
        """The outcome entries of a batch of one as the single env's info values.

        As :func:`gambit_gym.envs.safety.outcome_info` gives them: 0-d bool arrays, numpy
        scalars, the ``(6,)`` scores.
        """
        return {"delivered": np.array(bool(outcome["delivered"][0])),
                "redraws": np.int64(outcome["redraws"][0]),
                "tokens": np.int64(outcome["tokens"][0]),
                "prompt_tokens": np.int64(outcome["prompt_tokens"][0]),
                "cost": np.float64(outcome["cost"][0]),
                "latency_s": np.float64(outcome["latency_s"][0]),
                "safety": outcome["safety"][0].copy(),
                "unsafe": np.array(bool(outcome["unsafe"][0])),
                "unsafe_delivered": np.array(bool(outcome["unsafe_delivered"][0]))}


def _classifier(bank: Any, embedder: Any, device: str,
                categories: tuple[str, ...] | None) -> tuple[Any, list[int], np.ndarray, bool]:
    """The safety classifier, the counted columns, their thresholds, and whether the bank agrees.

    The last item says whether the bank's safety columns were written by the same head. The
    classifier shares the embedder's MiniLM where it has one. Its own thresholds decide
    (they go with its scores); where the bank was scored by another head (the shipped bank's
    columns are head v1's), live verdicts and the oracle's unsafe rates come from different
    heads, which docs/safety.md counts among the live oracle's approximations.
    """
    from gambit_gym.text.bank import SAFETY_CATEGORIES
    from gambit_gym.text.safety import MiniLMSafetyClassifier

    clf = MiniLMSafetyClassifier(device=device,
                                 encoder=embedder if hasattr(embedder, "encode") else None)
    cols = [SAFETY_CATEGORIES.index(c) for c in (categories or SAFETY_CATEGORIES)]
    limits = np.array([clf.thresholds[SAFETY_CATEGORIES[j]] for j in cols], dtype=np.float32)
    bank_head = (getattr(bank, "safety_classifier", None) or {}).get("head_sha256")
    return clf, cols, limits, bank_head == clf.metadata()["head_sha256"]
