"""The leaderboard: agents × env configurations, aggregated from scored statistics.

It only aggregates what :mod:`gambit_gym.bench.analysis` computed: per cell the mean cumulative
regret at T with its 95% interval, the normalised score (Random 0, Oracle 1) and the rank
within the env column (1 = lowest regret); per agent an overall score (the mean of its scores
over the columns where it has one) and an overall rank by that score (ties broken by mean
per-env rank). Output as Markdown, CSV, JSON or HTML.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gambit_gym.bench.analysis import SettingStats, summarise
from gambit_gym.bench.store import ResultStore

FORMATS: tuple[str, ...] = ("md", "csv", "json", "html")


@dataclass
class Cell:
    """One agent on one env column."""

    mean: float
    ci_low: float
    ci_high: float
    n: int
    score: float
    rank: float


@dataclass
class Row:
    """One agent's row."""

    agent: str
    cells: dict[str, Cell] = field(default_factory=dict)
    score: float = float("nan")
    mean_rank: float = float("nan")
    rank: int = 0


@dataclass
class Leaderboard:
    """Agents × env columns.

    Attributes:
        columns: env column names (env id + kwargs, with ``@T=`` where horizons differ).
        rows: agent rows, best first.
    """

    columns: list[str]
    rows: list[Row]

    @classmethod
    def from_stats(cls, stats: list[SettingStats]) -> Leaderboard:
        """Aggregate pooled statistics (``summarise(..., by_suite=False)``)."""
        horizons: dict[str, set[int]] = {}
        for s in stats:
            horizons.setdefault(s.env_key, set()).add(s.horizon)

        def column(s: SettingStats) -> str:
            return s.env_key if len(horizons[s.env_key]) == 1 else f"{s.env_key}@T={s.horizon}"

        columns = sorted(dict.fromkeys(column(s) for s in stats), key=_natural)
        rows: dict[str, Row] = {}
        for col in columns:
            cells = [s for s in stats if column(s) == col]
            ranks = _average_ranks([c.mean for c in cells])
            for s, rank in zip(cells, ranks):
                row = rows.setdefault(s.agent_key, Row(agent=s.agent_key))
                row.cells[col] = Cell(mean=s.mean, ci_low=s.ci_low, ci_high=s.ci_high, n=s.n,
                                      score=s.score, rank=float(rank))
        for row in rows.values():
            scores = [c.score for c in row.cells.values() if np.isfinite(c.score)]
            row.score = float(np.mean(scores)) if scores else float("nan")
            row.mean_rank = float(np.mean([c.rank for c in row.cells.values()]))
        ordered = sorted(rows.values(), key=lambda r: (
            -r.score if np.isfinite(r.score) else math.inf, r.mean_rank, r.agent))
        for i, row in enumerate(ordered, start=1):
            row.rank = i
        return cls(columns=columns, rows=ordered)

    @classmethod
    def from_store(cls, store: ResultStore, suite: str | None = None) -> Leaderboard:
        """Score a store (optionally one suite) and aggregate.

        Raises:
            ValueError: the store holds no results (for that suite).
        """
        records = store.records(suite=suite)
        if not records:
            where = f" for suite {suite!r}" if suite else ""
            raise ValueError(f"{store.path} holds no results{where}; run gambit-gym bench first")
        return cls.from_stats(summarise(records, by_suite=False))

    # ------------------------------------------------------------------ outputs
    def to_records(self) -> list[dict[str, Any]]:
        """Long format: one dict per (agent, env column)."""
        out = []
        for row in self.rows:
            for col in self.columns:
                cell = row.cells.get(col)
                if cell is None:
                    continue
                out.append({"agent": row.agent, "env": col, "replicates": cell.n,
                            "mean_regret": cell.mean, "ci_low": cell.ci_low,
                            "ci_high": cell.ci_high, "score": cell.score, "rank": cell.rank,
                            "overall_score": row.score, "overall_rank": row.rank})
        return out

    def to_csv(self) -> str:
        """CSV, long format."""
        buf = io.StringIO()
        fields = ["agent", "env", "replicates", "mean_regret", "ci_low", "ci_high", "score",
                  "rank", "overall_score", "overall_rank"]
        writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        for rec in self.to_records():
            writer.writerow({k: _num(v) for k, v in rec.items()})
        return buf.getvalue()

    def to_json(self) -> str:
        """JSON: the columns and, per agent, its overall score and rank and its cells."""
        doc = {"columns": self.columns, "rows": [
            {"agent": r.agent, "rank": r.rank, "score": _finite(r.score),
             "mean_rank": _finite(r.mean_rank),
             "cells": {col: {"mean_regret": _finite(c.mean), "ci_low": _finite(c.ci_low),
                             "ci_high": _finite(c.ci_high), "replicates": c.n,
                             "score": _finite(c.score), "rank": c.rank}
                       for col, c in r.cells.items()}}
            for r in self.rows]}
        return json.dumps(doc, indent=2)

    def _cell_text(self, cell: Cell | None) -> str:
        if cell is None:
            return "–"
        half = (cell.ci_high - cell.ci_low) / 2
        text = f"{cell.mean:.1f} ± {half:.1f}" if np.isfinite(half) else f"{cell.mean:.1f}"
        if np.isfinite(cell.score):
            text += f" ({cell.score:.2f})"
        return text + f" #{cell.rank:g}"

    def to_markdown(self) -> str:
        """A Markdown table for a README: mean regret at T ± 95% half-width (score) #rank."""
        head = ["Rank", "Agent", "Score"] + self.columns
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in self.rows:
            cells = [str(r.rank), r.agent, _fmt(r.score)] + [
                self._cell_text(r.cells.get(c)) for c in self.columns]
            lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
        lines.append("")
        lines.append("Cells: mean cumulative regret at T ± half-width of its 95% interval "
                     "(score: 0 = uniform random, 1 = oracle) #rank within the env. "
                     "Score column: mean score over envs.")
        return "\n".join(lines) + "\n"

    def to_html(self, full_page: bool = True) -> str:
        """An HTML table (a whole page unless ``full_page`` is False)."""
        esc = html.escape
        head = "".join(f"<th>{esc(h)}</th>" for h in ["Rank", "Agent", "Score"] + self.columns)
        body = []
        for r in self.rows:
            cells = [f"<td>{r.rank}</td>", f"<td>{esc(r.agent)}</td>", f"<td>{_fmt(r.score)}</td>"]
            for col in self.columns:
                cell = r.cells.get(col)
                title = "" if cell is None else (
                    f' title="95% CI [{cell.ci_low:.2f}, {cell.ci_high:.2f}], n={cell.n}"')
                cells.append(f"<td{title}>{esc(self._cell_text(cell))}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        table = (f'<table class="leaderboard"><thead><tr>{head}</tr></thead>'
                 f'<tbody>{"".join(body)}</tbody></table>')
        if not full_page:
            return table
        return ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>gambit-gym "
                "leaderboard</title></head><body><h1>Leaderboard</h1>" + table
                + "</body></html>\n")

    def render(self, fmt: str) -> str:
        """The leaderboard in one of :data:`FORMATS`.

        Raises:
            ValueError: an unknown format.
        """
        renderers = {"md": self.to_markdown, "csv": self.to_csv, "json": self.to_json,
                     "html": self.to_html}
        if fmt not in renderers:
            raise ValueError(f"unknown format {fmt!r}; formats: {', '.join(FORMATS)}")
        return renderers[fmt]()


def _average_ranks(values: list[float]) -> np.ndarray:
    """Ranks 1..n of ``values`` (ascending), ties given the mean of their ranks."""
    x = np.asarray(values, dtype=np.float64)
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(1, len(x) + 1)
    for v in np.unique(x):
        tie = x == v
        ranks[tie] = ranks[tie].mean()
    return ranks


def _natural(text: str) -> list[Any]:
    """Sort key that orders embedded numbers by value (K=3 before K=15)."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part)
            for part in re.split(r"(\d+)", text)]


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def _fmt(x: float) -> str:
    return f"{x:.2f}" if np.isfinite(x) else "–"


def _num(v: Any) -> Any:
    if isinstance(v, float):
        return "" if not np.isfinite(v) else f"{v:.6g}"
    return v
