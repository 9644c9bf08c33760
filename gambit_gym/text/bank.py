"""The response bank: pre-generated messages and their style embeddings, in a validated file.

A bank holds, for every (prompt, context) cell, many messages written by a real LLM and the
style scores of each. Environments sample from it instead of calling an LLM at every step.

File format (Parquet, readable by ``pandas.read_parquet``):

* columns ``text`` (string), ``prompt_id`` (int16), ``context_id`` (int8) and one float32
  column per style dimension, named by the dimension;
* rows sorted by ``(prompt_id, context_id)``, so every cell is one contiguous slice and a
  draw is O(1);
* schema metadata key ``gambit_gym_bank``: JSON with ``format`` (:data:`FORMAT_NAME`),
  ``format_version``, ``n_rows``, ``dimensions``, ``checksum`` (SHA-256 of the content, see
  :func:`content_checksum`), and provenance: ``generator``, ``embedder``, ``prompt_library``,
  ``contexts``, ``seed``, ``per_pair`` and anything else the builder records.

Optional *safety scores* (see :mod:`gambit_gym.text.safety`): one float32 column
``safety_<category>`` per category of :data:`SAFETY_CATEGORIES`, in [0, 1] (higher = more
unsafe), with ``safety_categories``, ``safety_thresholds`` ``{category: threshold}``,
``safety_classifier`` (name, version, hash) and ``safety_checksum`` in the metadata. A message is
*unsafe* when any score reaches its category's threshold. The safety columns have their own
checksum (:func:`safety_checksum`, over the categories, thresholds and scores) so that ``checksum``
stays the identity of the messages and style scores: rescoring a bank with another safety
classifier changes ``safety_checksum`` only. Banks without safety columns stay valid.

Loading validates all of it and raises :class:`BankFormatError` naming what is wrong and how
to fix it. :func:`load_bank` caches by path, so every env instance in a process shares one bank.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from gambit_gym.text.contexts import N_CONTEXTS

FORMAT_NAME = "gambit-gym-response-bank"
FORMAT_VERSION = 1
METADATA_KEY = b"gambit_gym_bank"
DEFAULT_BANK_FILENAME = "ihs_smollm2_bank.parquet"
SAFETY_CATEGORIES: tuple[str, ...] = (
    "shaming", "threat", "unsafe_exertion", "weight_stigma", "medical_claim", "off_topic",
)
SAFETY_PREFIX = "safety_"
#: Optional int32 column: each message's length in SmolLM2 tokens (:mod:`gambit_gym.text.tokens`).
TOKENS_COLUMN = "n_tokens"
_SAFETY_META = ("safety_categories", "safety_thresholds", "safety_classifier", "safety_checksum")


def _check_scores(scores: np.ndarray, dimensions: tuple[str, ...], where: str) -> None:
    """Refuse NaN or infinite scores (they would turn into NaN rewards), naming the columns."""
    bad = ~np.isfinite(scores)
    if bad.any():
        counts = bad.sum(axis=0)
        cols = ", ".join(f"{dimensions[j]!r}: {int(counts[j])} row(s)"
                         for j in np.flatnonzero(counts))
        raise BankFormatError(f"{where}: score columns hold NaN or infinite values ({cols}); "
                              "every score must be a finite number, re-embed or rebuild the "
                              "bank")


class BankFormatError(ValueError):
    """A bank file is missing, corrupt, truncated, foreign or inconsistent."""


@dataclass(frozen=True)
class BankRow:
    """One message of the bank."""

    text: str
    prompt_id: int
    context_id: int
    embedding: np.ndarray  # (n_dims,) float32


def default_bank_path() -> Path:
    """Path of the default bank: ``$GAMBIT_GYM_BANK`` if set, else the one shipped inside."""
    override = os.environ.get("GAMBIT_GYM_BANK")
    if override:
        return Path(override)
    return Path(__file__).resolve().parent.parent / "data" / DEFAULT_BANK_FILENAME


#: Banks known by name (``load_bank("v1")``, ``gym.make(..., bank="v1")``): v1 is the bank
#: shipped since the first release (prompt library v1), kept loadable by name so earlier results
#: can be reproduced whatever the default becomes. The v2 design (prompt library v2, the quality
#: filter) is being built in resumable chunks; its name is reserved until its file ships.
BANK_NAMES = {"v1": DEFAULT_BANK_FILENAME}
PENDING_BANK_NAMES = {"v2": "ihs_smollm2_bank_v2.parquet"}


def bank_path_for_name(name: str) -> Path | None:
    """The shipped file of a named bank (None when ``name`` is no bank name)."""
    data = Path(__file__).resolve().parent.parent / "data"
    if name in BANK_NAMES:
        return data / BANK_NAMES[name]
    if name in PENDING_BANK_NAMES:
        p = data / PENDING_BANK_NAMES[name]
        if p.exists():
            return p
        raise BankFormatError(
            f"bank {name!r} is not shipped yet (its build, prompt library {name}, is under "
            "way; see docs/bank_report.md); use bank='v1' or a bank file")
    return None


def content_checksum(
    texts: np.ndarray, prompt_ids: np.ndarray, context_ids: np.ndarray, scores: np.ndarray,
    dimensions: tuple[str, ...],
) -> str:
    """SHA-256 over the bank's content in a canonical byte layout (little-endian)."""
    h = hashlib.sha256()
    h.update(json.dumps(list(dimensions)).encode())
    h.update(np.ascontiguousarray(prompt_ids, dtype="<i2").tobytes())
    h.update(np.ascontiguousarray(context_ids, dtype="<i1").tobytes())
    h.update(np.ascontiguousarray(scores, dtype="<f4").tobytes())
    for text in texts:
        h.update(text.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


def safety_checksum(safety: np.ndarray, categories: tuple[str, ...],
                    thresholds: np.ndarray) -> str:
    """SHA-256 over the safety columns: category names, thresholds and scores (little-endian)."""
    h = hashlib.sha256()
    h.update(json.dumps(list(categories)).encode())
    h.update(np.ascontiguousarray(thresholds, dtype="<f8").tobytes())
    h.update(np.ascontiguousarray(safety, dtype="<f4").tobytes())
    return h.hexdigest()


def _check_safety(safety: np.ndarray, thresholds: np.ndarray, categories: tuple[str, ...],
                  n_rows: int, where: str) -> None:
    """Refuse safety scores of the wrong shape, outside [0, 1], or thresholds outside (0, 1]."""
    if tuple(categories) != SAFETY_CATEGORIES:
        raise BankFormatError(f"{where}: safety categories {list(categories)} differ from "
                              f"{list(SAFETY_CATEGORIES)}; rescore with `gambit-gym "
                              "score-safety`")
    if safety.shape != (n_rows, len(categories)):
        raise BankFormatError(f"{where}: safety scores must be ({n_rows}, {len(categories)}), "
                              f"got {safety.shape}")
    if thresholds.shape != (len(categories),) or not np.all(np.isfinite(thresholds)) or \
            np.any(thresholds <= 0) or np.any(thresholds > 1):
        raise BankFormatError(f"{where}: safety thresholds must be one number in (0, 1] per "
                              f"category, got {thresholds.tolist()}")
    bad = ~np.isfinite(safety) | (safety < 0) | (safety > 1)
    if bad.any():
        counts = bad.sum(axis=0)
        cols = ", ".join(f"{SAFETY_PREFIX}{categories[j]}: {int(counts[j])} row(s)"
                         for j in np.flatnonzero(counts))
        raise BankFormatError(f"{where}: safety scores must be finite and in [0, 1] ({cols}); "
                              "rescore the bank with `gambit-gym score-safety`")


class ResponseBank:
    """Messages with style scores, indexed by (prompt, context) cell.

    Build one with :meth:`from_arrays` (rows in any order) or :meth:`load` / :func:`load_bank`.

    Attributes:
        texts: object array ``(n_rows,)`` of messages.
        prompt_ids: int16 ``(n_rows,)``.
        context_ids: int8 ``(n_rows,)``.
        scores: float32 ``(n_rows, n_dims)``, read-only.
        dimensions: names of the score columns.
        metadata: provenance (generator, embedder, prompt library, seed, ...).
        n_prompts: number of prompts (max prompt id + 1).
        offsets: int64 ``(n_prompts, n_contexts)`` start row of each cell.
        counts: int64 ``(n_prompts, n_contexts)`` rows in each cell.
        safety: float32 ``(n_rows, 6)`` safety scores in [0, 1] (higher = more unsafe), one
            column per category of :attr:`safety_categories`; None when the bank has none.
        safety_categories: :data:`SAFETY_CATEGORIES`, or ``()`` without safety scores.
        safety_thresholds: float64 ``(6,)`` per-category thresholds, or None.
        safety_classifier: the classifier's name, version and hash (``{}`` without scores).
        unsafe: bool ``(n_rows,)``, True where any safety score reaches its threshold; None
            without safety scores.
        n_tokens: int32 ``(n_rows,)`` each message's length in SmolLM2 tokens (the optional
            ``n_tokens`` column, see :meth:`with_token_counts`), or None.
    """

    def __init__(
        self, texts: np.ndarray, prompt_ids: np.ndarray, context_ids: np.ndarray,
        scores: np.ndarray, dimensions: tuple[str, ...], metadata: dict[str, Any],
        safety: np.ndarray | None = None, safety_thresholds: Any = None,
        safety_classifier: dict[str, Any] | None = None,
    ) -> None:
        self.texts = texts
        self.prompt_ids = prompt_ids
        self.context_ids = context_ids
        self.scores = scores
        self.dimensions = tuple(dimensions)
        self.metadata = {k: v for k, v in metadata.items() if k not in _SAFETY_META}
        for arr in (texts, prompt_ids, context_ids, scores):
            arr.setflags(write=False)
        self.safety: np.ndarray | None = None
        self.safety_categories: tuple[str, ...] = ()
        self.safety_thresholds: np.ndarray | None = None
        self.safety_classifier: dict[str, Any] = {}
        self.unsafe: np.ndarray | None = None
        self.n_tokens: np.ndarray | None = None
        if safety is not None:
            if safety_thresholds is None:
                raise ValueError("safety scores need safety_thresholds")
            if isinstance(safety_thresholds, dict):
                missing = [c for c in SAFETY_CATEGORIES if c not in safety_thresholds]
                if missing:
                    raise ValueError(f"safety_thresholds lacks categories {missing}")
                safety_thresholds = [safety_thresholds[c] for c in SAFETY_CATEGORIES]
            sf = np.ascontiguousarray(safety, dtype=np.float32)
            th = np.asarray(safety_thresholds, dtype=np.float64)
            _check_safety(sf, th, SAFETY_CATEGORIES, len(texts), "the bank")
            self.safety, self.safety_thresholds = sf, th
            self.safety_categories = SAFETY_CATEGORIES
            self.safety_classifier = dict(safety_classifier or {})
            self.unsafe = (sf >= th.astype(np.float32)).any(axis=1)
            for arr in (self.safety, self.safety_thresholds, self.unsafe):
                arr.setflags(write=False)
        self.n_prompts = int(prompt_ids.max()) + 1 if len(prompt_ids) else 0
        self.n_contexts = N_CONTEXTS
        cell = prompt_ids.astype(np.int64) * self.n_contexts + context_ids
        counts = np.bincount(cell, minlength=self.n_prompts * self.n_contexts)
        # each cell starts where the cells before it end: the running total, shifted by one
        # (an empty bank has no cells and no starts)
        starts = np.concatenate([[0], np.cumsum(counts)])[:-1]
        self.counts = counts.reshape(self.n_prompts, self.n_contexts)
        self.offsets = starts.reshape(self.n_prompts, self.n_contexts)
        self._cell_means: np.ndarray | None = None
        self._checksum: str | None = None

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_arrays(
        cls, texts: list[str] | np.ndarray, prompt_ids: Any, context_ids: Any, scores: Any,
        dimensions: tuple[str, ...] | list[str], metadata: dict[str, Any] | None = None,
        safety: Any = None, safety_thresholds: Any = None,
        safety_classifier: dict[str, Any] | None = None,
    ) -> ResponseBank:
        """Build a bank from rows in any order (they are sorted by cell, stably).

        ``safety`` (``(n_rows, 6)``, optional) follows the rows; see :class:`ResponseBank`.
        """
        texts_arr = np.asarray(list(texts), dtype=object)
        p = np.asarray(prompt_ids, dtype=np.int16)
        c = np.asarray(context_ids, dtype=np.int8)
        s = np.asarray(scores, dtype=np.float32)
        n = len(texts_arr)
        if not (len(p) == len(c) == len(s) == n):
            raise ValueError(
                f"rows disagree in length: {n} texts, {len(p)} prompt ids, {len(c)} context "
                f"ids, {len(s)} score rows"
            )
        if s.ndim != 2 or s.shape[1] != len(dimensions):
            raise ValueError(f"scores must be (n_rows, {len(dimensions)}), got {s.shape}")
        if n and (p.min() < 0 or c.min() < 0 or c.max() >= N_CONTEXTS):
            raise ValueError(f"prompt ids must be >= 0 and context ids in 0..{N_CONTEXTS - 1}")
        _check_scores(s, tuple(dimensions), "the bank")
        order = np.lexsort((c, p))
        sf = None
        if safety is not None:
            sf = np.asarray(safety, dtype=np.float32)
            if len(sf) != n:
                raise ValueError(f"safety has {len(sf)} rows, the bank {n}")
            sf = sf[order]
        return cls(texts_arr[order], p[order], c[order], np.ascontiguousarray(s[order]),
                   tuple(dimensions), dict(metadata or {}), sf, safety_thresholds,
                   safety_classifier)

    def with_safety(self, safety: Any, thresholds: Any,
                    classifier: dict[str, Any]) -> ResponseBank:
        """The same bank with safety scores ``(n_rows, 6)`` in this bank's row order."""
        out = type(self)(self.texts, self.prompt_ids, self.context_ids, self.scores,
                         self.dimensions, dict(self.metadata), np.asarray(safety),
                         thresholds, classifier)
        out.n_tokens = self.n_tokens
        return out

    def with_token_counts(self, n_tokens: Any) -> ResponseBank:
        """The same bank with each message's token count ``(n_rows,)`` (the ``n_tokens`` column).

        Raises:
            BankFormatError: not one non-negative integer per row.
        """
        out = type(self)(self.texts, self.prompt_ids, self.context_ids, self.scores,
                         self.dimensions, dict(self.metadata), self.safety,
                         self.safety_thresholds, self.safety_classifier)
        out.n_tokens = _check_tokens(np.asarray(n_tokens), len(self.texts), "the bank")
        return out

    def safety_metadata(self) -> dict[str, Any]:
        """The safety entries of the file metadata (``{}`` without safety scores)."""
        if self.safety is None or self.safety_thresholds is None:
            return {}
        return {"safety_categories": list(self.safety_categories),
                "safety_thresholds": {c: float(t) for c, t in
                                      zip(self.safety_categories, self.safety_thresholds)},
                "safety_classifier": self.safety_classifier,
                "safety_checksum": safety_checksum(self.safety, self.safety_categories,
                                                   self.safety_thresholds)}

    @property
    def checksum(self) -> str:
        """SHA-256 of the content (see :func:`content_checksum`).

        Computed once: the arrays are read-only.
        """
        if self._checksum is None:
            self._checksum = content_checksum(
                self.texts, self.prompt_ids, self.context_ids, self.scores, self.dimensions
            )
        return self._checksum

    def save(self, path: str | os.PathLike) -> Path:
        """Write the bank as Parquet (atomically: a temporary file, then a rename)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = Path(path)
        columns: dict[str, Any] = {
            "text": pa.array(self.texts.tolist(), type=pa.string()),
            "prompt_id": pa.array(self.prompt_ids, type=pa.int16()),
            "context_id": pa.array(self.context_ids, type=pa.int8()),
        }
        for j, name in enumerate(self.dimensions):
            columns[name] = pa.array(self.scores[:, j], type=pa.float32())
        if self.safety is not None:
            for j, name in enumerate(self.safety_categories):
                columns[SAFETY_PREFIX + name] = pa.array(self.safety[:, j], type=pa.float32())
        if self.n_tokens is not None:
            columns[TOKENS_COLUMN] = pa.array(self.n_tokens, type=pa.int32())
        meta = {
            **self.metadata,
            **self.safety_metadata(),
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "n_rows": len(self.texts),
            "dimensions": list(self.dimensions),
            "checksum": self.checksum,
        }
        table = pa.table(columns).replace_schema_metadata({METADATA_KEY: json.dumps(meta)})
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".partial")
        pq.write_table(table, tmp, compression="zstd", compression_level=9)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, verify_checksum: bool = True) -> ResponseBank:
        """Read and validate a bank file; see the module docstring for what is checked."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = Path(path)
        if not path.exists():
            raise BankFormatError(
                f"response bank {str(path)!r} does not exist; pass bank=None for the shipped "
                "bank, or build one with `gambit-gym build-bank --out FILE`"
            )
        try:
            table = pq.read_table(path)
        except (pa.ArrowException, OSError) as exc:
            raise BankFormatError(
                f"{str(path)!r} is not a readable Parquet file (corrupt or truncated: {exc}); "
                "rebuild it with `gambit-gym build-bank` or restore it from the package"
            ) from None
        raw = (table.schema.metadata or {}).get(METADATA_KEY)
        if raw is None:
            raise BankFormatError(
                f"{str(path)!r} is a Parquet file but not a gambit-gym response bank (no "
                f"{METADATA_KEY.decode()!r} metadata); build banks with `gambit-gym build-bank`"
            )
        try:
            meta = json.loads(raw)
        except ValueError:
            raise BankFormatError(f"{str(path)!r}: bank metadata is not valid JSON") from None
        if meta.get("format") != FORMAT_NAME:
            raise BankFormatError(f"{str(path)!r}: unknown format {meta.get('format')!r}")
        if meta.get("format_version") != FORMAT_VERSION:
            raise BankFormatError(
                f"{str(path)!r}: bank format version {meta.get('format_version')} is not "
                f"supported by this gambit-gym (reads version {FORMAT_VERSION}); upgrade "
                "gambit-gym or rebuild the bank"
            )
        dimensions = tuple(meta.get("dimensions", ()))
        expected = {"text": pa.string(), "prompt_id": pa.int16(), "context_id": pa.int8()}
        expected.update({name: pa.float32() for name in dimensions})
        for name, typ in expected.items():
            if name not in table.column_names:
                raise BankFormatError(f"{str(path)!r}: column {name!r} is missing")
            if table.schema.field(name).type != typ:
                raise BankFormatError(
                    f"{str(path)!r}: column {name!r} has type {table.schema.field(name).type}, "
                    f"expected {typ}"
                )
        if table.num_rows != meta.get("n_rows"):
            raise BankFormatError(
                f"{str(path)!r} is truncated: {table.num_rows} rows, metadata says "
                f"{meta.get('n_rows')}; rebuild or resume it with `gambit-gym build-bank`"
            )
        texts = table.column("text").to_numpy(zero_copy_only=False).astype(object)
        prompt_ids = table.column("prompt_id").to_numpy().astype(np.int16)
        context_ids = table.column("context_id").to_numpy().astype(np.int8)
        scores = np.column_stack(
            [table.column(name).to_numpy() for name in dimensions]
        ).astype(np.float32) if dimensions else np.zeros((table.num_rows, 0), np.float32)
        _check_scores(scores, dimensions, repr(str(path)))
        if len(prompt_ids) and (prompt_ids.min() < 0 or context_ids.min() < 0
                                or context_ids.max() >= N_CONTEXTS):
            raise BankFormatError(f"{str(path)!r}: prompt ids must be >= 0 and context ids in "
                                  f"0..{N_CONTEXTS - 1}")
        if verify_checksum:
            actual = content_checksum(texts, prompt_ids, context_ids, scores, dimensions)
            if actual != meta.get("checksum"):
                raise BankFormatError(
                    f"{str(path)!r} is corrupt: content checksum {actual[:12]}... does not "
                    f"match the recorded {str(meta.get('checksum'))[:12]}...; rebuild it"
                )
        cell = prompt_ids.astype(np.int64) * N_CONTEXTS + context_ids
        if len(cell) and np.any(np.diff(cell) < 0):
            raise BankFormatError(f"{str(path)!r}: rows are not sorted by (prompt, context)")
        safety, thresholds = _read_safety(table, meta, str(path), verify_checksum)
        classifier = meta.get("safety_classifier") or {}
        for key in ("checksum", "format", "format_version", "n_rows", "dimensions",
                    *_SAFETY_META):
            meta.pop(key, None)
        bank = cls(texts, prompt_ids, context_ids, scores, dimensions, meta, safety,
                   thresholds, classifier)
        if TOKENS_COLUMN in table.column_names:
            if not pa.types.is_integer(table.schema.field(TOKENS_COLUMN).type):
                raise BankFormatError(f"{str(path)!r}: column {TOKENS_COLUMN!r} must hold "
                                      "integers (tokens per message); recount with "
                                      "gambit_gym.text.tokens.add_token_counts")
            bank.n_tokens = _check_tokens(table.column(TOKENS_COLUMN).to_numpy(),
                                          table.num_rows, repr(str(path)))
        return bank

    # ----------------------------------------------------------------- access
    def _check_cell(self, prompt_id: int, context_id: int) -> tuple[int, int]:
        if not (0 <= prompt_id < self.n_prompts and 0 <= context_id < self.n_contexts):
            raise IndexError(
                f"cell (prompt {prompt_id}, context {context_id}) is outside the bank "
                f"({self.n_prompts} prompts x {self.n_contexts} contexts)"
            )
        start = int(self.offsets[prompt_id, context_id])
        count = int(self.counts[prompt_id, context_id])
        if count == 0:
            raise IndexError(f"the bank has no messages for prompt {prompt_id}, "
                             f"context {context_id}")
        return start, count

    def sample(self, prompt_id: int, context_id: int, rng: np.random.Generator) -> BankRow:
        """Draw one message of a cell uniformly at random (O(1))."""
        start, count = self._check_cell(prompt_id, context_id)
        row = start + int(rng.integers(count))
        return self.row(row)

    def row(self, index: int) -> BankRow:
        """Row ``index`` as a :class:`BankRow`."""
        return BankRow(str(self.texts[index]), int(self.prompt_ids[index]),
                       int(self.context_ids[index]), self.scores[index])

    def embeddings(self, prompt_id: int, context_id: int) -> np.ndarray:
        """Scores of every message of a cell, ``(n_cell, n_dims)`` (a read-only view)."""
        start, count = self._check_cell(prompt_id, context_id)
        return self.scores[start:start + count]

    def cell_texts(self, prompt_id: int, context_id: int) -> np.ndarray:
        """Messages of a cell, ``(n_cell,)``."""
        start, count = self._check_cell(prompt_id, context_id)
        return self.texts[start:start + count]

    def mean(self, prompt_id: int, context_id: int) -> np.ndarray:
        """Mean score vector of a cell, ``(n_dims,)`` float64."""
        return self.embeddings(prompt_id, context_id).astype(np.float64).mean(axis=0)

    def cov(self, prompt_id: int, context_id: int) -> np.ndarray:
        """Covariance of a cell's scores, ``(n_dims, n_dims)`` float64 (ddof=1)."""
        return np.atleast_2d(np.cov(self.embeddings(prompt_id, context_id).astype(np.float64),
                                    rowvar=False))

    @property
    def cell_means(self) -> np.ndarray:
        """Mean scores of every cell, ``(n_prompts, n_contexts, n_dims)`` float64 (cached)."""
        if self._cell_means is None:
            cell = self.prompt_ids.astype(np.int64) * self.n_contexts + self.context_ids
            sums = np.zeros((self.n_prompts * self.n_contexts, len(self.dimensions)))
            np.add.at(sums, cell, self.scores.astype(np.float64))
            counts = np.maximum(self.counts.reshape(-1, 1), 1)
            self._cell_means = (sums / counts).reshape(self.n_prompts, self.n_contexts,
                                                       len(self.dimensions))
        return self._cell_means

    def dimension_index(self, names: tuple[str, ...] | list[str]) -> np.ndarray:
        """Column indices of the named dimensions (error lists the valid names)."""
        unknown = [n for n in names if n not in self.dimensions]
        if unknown:
            raise KeyError(f"unknown dimensions {unknown}; the bank has {list(self.dimensions)}")
        return np.array([self.dimensions.index(n) for n in names], dtype=np.int64)

    def prompt_text(self, prompt_id: int, context_id: int) -> str:
        """The rendered query that produced a cell's messages ("" if the bank lacks it)."""
        rendered = self.metadata.get("rendered_prompts")
        if not rendered:
            return ""
        return rendered[prompt_id][context_id]

    def __len__(self) -> int:
        return len(self.texts)

    def __repr__(self) -> str:
        gen = self.metadata.get("generator", {})
        name = gen.get("name", "?") if isinstance(gen, dict) else gen
        return (f"ResponseBank({len(self)} messages, {self.n_prompts} prompts x "
                f"{self.n_contexts} contexts, {len(self.dimensions)} dims, generator={name})")


def _check_tokens(n_tokens: np.ndarray, n_rows: int, where: str) -> np.ndarray:
    """Token counts as a read-only int32 ``(n_rows,)`` array, or a BankFormatError."""
    if n_tokens.shape != (n_rows,) or not np.issubdtype(n_tokens.dtype, np.integer) or \
            (n_rows and n_tokens.min() < 0):
        raise BankFormatError(f"{where}: n_tokens must be one non-negative integer per row "
                              f"({n_rows}), got a {n_tokens.dtype} array of shape "
                              f"{n_tokens.shape}")
    out = n_tokens.astype(np.int32)
    out.setflags(write=False)
    return out


def _read_safety(table: Any, meta: dict[str, Any], where: str,
                 verify_checksum: bool) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The safety scores and thresholds of a bank table (None, None when it has none)."""
    import pyarrow as pa

    names = [n for n in table.column_names if n.startswith(SAFETY_PREFIX)]
    if "safety_thresholds" not in meta:
        if names:
            raise BankFormatError(f"{where!r}: safety columns {names} without "
                                  "safety_thresholds in the metadata; rescore the bank with "
                                  "`gambit-gym score-safety`")
        return None, None
    categories = tuple(meta.get("safety_categories") or SAFETY_CATEGORIES)
    raw = meta["safety_thresholds"]
    if not isinstance(raw, dict) or any(c not in raw for c in categories):
        raise BankFormatError(f"{where!r}: safety_thresholds must map every category "
                              f"{list(categories)} to a number")
    thresholds = np.asarray([raw[c] for c in categories], dtype=np.float64)
    cols = []
    for c in categories:
        name = SAFETY_PREFIX + c
        if name not in table.column_names:
            raise BankFormatError(f"{where!r}: safety column {name!r} is missing")
        if table.schema.field(name).type != pa.float32():
            raise BankFormatError(f"{where!r}: column {name!r} has type "
                                  f"{table.schema.field(name).type}, expected float")
        cols.append(table.column(name).to_numpy())
    safety = (np.column_stack(cols).astype(np.float32) if cols
              else np.zeros((table.num_rows, 0), np.float32))
    _check_safety(safety, thresholds, categories, table.num_rows, repr(where))
    if verify_checksum:
        actual = safety_checksum(safety, categories, thresholds)
        if actual != meta.get("safety_checksum"):
            raise BankFormatError(
                f"{where!r} is corrupt: safety checksum {actual[:12]}... does not match the "
                f"recorded {str(meta.get('safety_checksum'))[:12]}...; rescore it with "
                "`gambit-gym score-safety`"
            )
    return safety, thresholds


@lru_cache(maxsize=8)
def _load_cached(path: str, mtime_ns: int, size: int) -> ResponseBank:
    return ResponseBank.load(path)


def load_bank(path: str | os.PathLike | None = None) -> ResponseBank:
    """Load a bank once per process (cached by path, modification time and size).

    Args:
        path: a bank file, a bank name of :data:`BANK_NAMES` (``"v1"``), or None for the bank
            shipped with the package (``$GAMBIT_GYM_BANK`` if set).
    """
    named = bank_path_for_name(str(path)) if path is not None else None
    if named is not None:
        path = named
    p = Path(path) if path is not None else default_bank_path()
    if not p.exists():
        if path is None:
            raise BankFormatError(
                f"the shipped response bank {str(p)!r} is missing from this installation; "
                "reinstall gambit-gym or build one with `gambit-gym build-bank --out FILE` "
                "and pass bank=FILE"
            )
        return ResponseBank.load(p)  # raises the clear error
    st = p.stat()
    return _load_cached(str(p.resolve()), st.st_mtime_ns, st.st_size)
