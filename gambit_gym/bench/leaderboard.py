"""The leaderboard: agents × env configurations, aggregated from scored statistics.

It only aggregates what :mod:`gambit_gym.bench.analysis` computed. Agents are ranked by the
interquartile mean (IQM) of their per-replicate normalised scores over every run on every env
column, with a stratified-bootstrap 95% interval (:mod:`gambit_gym.bench.aggregates`); an
agent's rank is shown as the range of ranks its interval allows (``2–3`` where it overlaps its
neighbours'), so a tie is never hidden behind a point rank. Beside it: median, mean and
optimality gap with their intervals, and the probability that each agent beats each other one.
Below it the per-cell table stays: per cell the mean cumulative regret at T with its 95%
interval, the normalised score (Random 0, Oracle 1) and the rank within the env column (1 =
lowest regret). Output as Markdown, CSV, JSON (every aggregate and the pairwise
probability-of-improvement matrix) or HTML.
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

from gambit_gym.bench.aggregates import (
    DEFAULT_REPS,
    DEFAULT_SEED,
    METRIC_NAMES,
    METRICS,
    Aggregates,
    Interval,
    aggregate,
)
from gambit_gym.bench.analysis import SettingStats, summarise
from gambit_gym.bench.labels import config_label
from gambit_gym.bench.provenance import check_consistent, summarise_provenance
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
    score_note: str = ""


@dataclass
class Row:
    """One agent's row."""

    agent: str
    cells: dict[str, Cell] = field(default_factory=dict)
    score: float = float("nan")
    mean_rank: float = float("nan")
    rank: int = 0
    iqm: Interval | None = None
    rank_range: tuple[int, int] | None = None

    @property
    def rank_text(self) -> str:
        """``"2"``, or ``"2–4"`` where the IQM interval allows several ranks."""
        if self.rank_range is None:
            return str(self.rank)
        best, worst = self.rank_range
        return str(best) if best == worst else f"{best}–{worst}"


@dataclass
class Leaderboard:
    """Agents × env columns.

    Attributes:
        columns: env column names (env id + kwargs, with ``@T=`` where horizons differ).
        rows: agent rows, best first (by IQM; agents with no normalised score last).
        aggregates: IQM, median, mean, optimality gap, probability of improvement and
            performance profiles over the per-replicate scores (None where no column has a
            Random row to normalise by).
        provenance: where the units came from
            (:func:`~gambit_gym.bench.provenance.summarise_provenance`; None when built from
            statistics alone).
    """

    columns: list[str]
    rows: list[Row]
    aggregates: Aggregates | None = None
    provenance: dict[str, Any] | None = None

    @classmethod
    def from_stats(cls, stats: list[SettingStats], *, reps: int = DEFAULT_REPS,
                   seed: int = DEFAULT_SEED, confidence: float = 0.95) -> Leaderboard:
        """Aggregate pooled statistics (``summarise(..., by_suite=False)``).

        Args:
            stats: the pooled statistics.
            reps: bootstrap resamples of each interval.
            seed: the bootstrap's base seed (same stats and seed, same intervals).
            confidence: interval coverage.
        """
        names = dict(zip(map(id, stats), column_names(stats)))

        def column(s: SettingStats) -> str:
            return names[id(s)]

        columns = sorted(dict.fromkeys(column(s) for s in stats), key=_natural)
        rows: dict[str, Row] = {}
        for col in columns:
            cells = [s for s in stats if column(s) == col]
            ranks = _average_ranks([c.mean for c in cells])
            for s, rank in zip(cells, ranks):
                row = rows.setdefault(s.agent_key, Row(agent=s.agent_key))
                row.cells[col] = Cell(mean=s.mean, ci_low=s.ci_low, ci_high=s.ci_high, n=s.n,
                                      score=s.score, rank=float(rank),
                                      score_note=s.score_note)
        for row in rows.values():
            scores = [c.score for c in row.cells.values() if np.isfinite(c.score)]
            row.score = float(np.mean(scores)) if scores else float("nan")
            row.mean_rank = float(np.mean([c.rank for c in row.cells.values()]))
        table: dict[str, dict[str, np.ndarray]] = {}
        for s in stats:
            runs = s.replicate_scores()
            if runs.size and np.all(np.isfinite(runs)):
                table.setdefault(s.agent_key, {})[column(s)] = runs
        aggs = aggregate(table, reps=reps, seed=seed, confidence=confidence) if table else None
        if aggs is not None:
            for agent in aggs.agents:
                rows[agent].iqm = aggs.metrics[agent]["iqm"]
                rows[agent].rank_range = aggs.rank_range[agent]
        ordered = sorted(rows.values(), key=lambda r: (
            -r.iqm.point if r.iqm is not None else math.inf,
            -r.score if np.isfinite(r.score) else math.inf, r.mean_rank, r.agent))
        for i, row in enumerate(ordered, start=1):
            row.rank = i
            if row.iqm is None and aggs is not None:  # unscored: below every scored agent
                row.rank_range = (len(aggs.agents) + 1, len(ordered))
        return cls(columns=columns, rows=ordered, aggregates=aggs)

    @classmethod
    def from_store(cls, store: ResultStore, suite: str | None = None, *,
                   reps: int = DEFAULT_REPS, seed: int = DEFAULT_SEED) -> Leaderboard:
        """Score a store (optionally one suite) and aggregate.

        Raises:
            ValueError: the store holds no results (for that suite).
            ProvenanceMismatch: (a ValueError) an env column mixes units of two response
                banks, or units of one suite run with another R, T or seed.
        """
        records = store.records(suite=suite)
        if not records:
            where = f" for suite {suite!r}" if suite else ""
            raise ValueError(f"{store.path} holds no results{where}; run gambit-gym bench first")
        check_consistent((r.unit.setting.env_key, r.unit.suite, r.provenance,
                          f"unit {r.unit.unit_id[:12]} of {store.path.name}") for r in records)
        board = cls.from_stats(summarise(records, by_suite=False), reps=reps, seed=seed)
        board.provenance = summarise_provenance(records)
        return board

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
                            "overall_score": row.score, "overall_rank": row.rank,
                            "rank_range": row.rank_text,
                            "iqm": row.iqm.point if row.iqm else float("nan"),
                            "iqm_low": row.iqm.low if row.iqm else float("nan"),
                            "iqm_high": row.iqm.high if row.iqm else float("nan")})
        return out

    def to_csv(self) -> str:
        """CSV, long format."""
        buf = io.StringIO()
        fields = ["agent", "env", "replicates", "mean_regret", "ci_low", "ci_high", "score",
                  "rank", "overall_score", "overall_rank", "rank_range", "iqm", "iqm_low",
                  "iqm_high"]
        writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        for rec in self.to_records():
            writer.writerow({k: _num(v) for k, v in rec.items()})
        return buf.getvalue()

    def to_json(self) -> str:
        """JSON: the rows and every aggregate.

        Per agent its rank, rank range, IQM, score and cells; under ``aggregates`` every
        aggregate with its interval, the pairwise probability of improvement
        (``probability_of_improvement[x][y]`` = P(x beats y)) and the performance profiles.
        """
        doc = {"columns": self.columns, "rows": [
            {"agent": r.agent, "rank": r.rank,
             "rank_range": list(r.rank_range) if r.rank_range else None,
             "iqm": r.iqm.to_dict() if r.iqm else None, "score": _finite(r.score),
             "mean_rank": _finite(r.mean_rank),
             "cells": {col: {"mean_regret": _finite(c.mean), "ci_low": _finite(c.ci_low),
                             "ci_high": _finite(c.ci_high), "replicates": c.n,
                             "score": _finite(c.score), "rank": c.rank}
                       for col, c in r.cells.items()}}
            for r in self.rows],
            "aggregates": self.aggregates.to_dict() if self.aggregates else None,
            "score_notes": self.score_notes(),
            "provenance": self.provenance}
        return json.dumps(doc, indent=2)

    def score_notes(self) -> list[str]:
        """Why scores are missing: one line per env column where some are (empty if none)."""
        notes = []
        for col in self.columns:
            reasons = dict.fromkeys(r.cells[col].score_note for r in self.rows
                                    if col in r.cells and r.cells[col].score_note)
            if reasons:
                notes.append(f"No score on {config_label(col)}: {'; '.join(reasons)}.")
        return notes

    def _cell_text(self, cell: Cell | None) -> str:
        if cell is None:
            return "–"
        half = (cell.ci_high - cell.ci_low) / 2
        text = f"{cell.mean:.1f} ± {half:.1f}" if np.isfinite(half) else f"{cell.mean:.1f}"
        if np.isfinite(cell.score):
            text += f" ({cell.score:.2f})"
        return text + f" #{cell.rank:g}"

    def _aggregate_rows(self) -> list[list[str]]:
        """Rows of the aggregate table: rank range, agent, each metric with its interval."""
        out = []
        for r in self.rows:
            cells = [r.rank_text, config_label(r.agent)]
            if self.aggregates is not None and r.agent in self.aggregates.metrics:
                cells += [_interval(self.aggregates.metrics[r.agent][m]) for m in METRICS]
                runs = self.aggregates.n_runs[r.agent]
                cells += [str(len(runs)), str(sum(runs.values()))]
            else:
                cells += ["–"] * (len(METRICS) + 2)
            out.append(cells)
        return out

    def _aggregate_head(self) -> list[str]:
        return (["Rank", "Agent"] + [f"{METRIC_NAMES[m]} [95% CI]" for m in METRICS]
                + ["Envs", "Runs"])

    def _aggregate_note(self) -> str:
        aggs = self.aggregates
        how = "" if aggs is None else (
            f" {aggs.confidence:.0%} stratified-bootstrap intervals ({aggs.reps} resamples, "
            f"seed {aggs.seed}).")
        return ("Ranked by IQM (interquartile mean of the normalised scores of every run on "
                "every env: uniform random 0, oracle 1; higher is better; optimality gap: "
                "lower is better). A rank range such as 2–3 means the IQM intervals overlap: "
                "those agents are not told apart. Envs: the env configurations an agent's "
                "aggregates cover (an agent that ran on fewer is ranked on those alone: compare "
                "it on the per-env table)." + how)

    def to_markdown(self) -> str:
        """Markdown for a README: aggregates, probability of improvement, per-cell table.

        Per-cell entries: mean regret at T ± 95% half-width (score) #rank.
        """
        lines: list[str] = []
        if self.aggregates is not None:
            lines += _md_table(self._aggregate_head(), self._aggregate_rows())
            lines += ["", self._aggregate_note(), "", "Probability of improvement P(row > "
                      "column), averaged over the envs both ran:", ""]
            head, body = self._improvement_table()
            lines += _md_table(head, body)
            lines.append("")
        head = ["Rank", "Agent", "Score"] + [config_label(c) for c in self.columns]
        body = [[r.rank_text, config_label(r.agent), _fmt(r.score)]
                + [self._cell_text(r.cells.get(c)) for c in self.columns] for r in self.rows]
        lines += _md_table(head, body)
        lines.append("")
        lines.append("Cells: mean cumulative regret at T ± half-width of its 95% interval "
                     "(score: 0 = uniform random, 1 = oracle) #rank within the env. "
                     "Score column: mean score over envs.")
        for note in self.score_notes():
            lines += ["", note]
        if self.provenance is not None:
            lines += ["", "Provenance:", ""]
            lines += _md_table(["What", "Value"], self._provenance_rows())
        return "\n".join(lines) + "\n"

    def _provenance_rows(self) -> list[list[str]]:
        """(what, value) rows: suites and fingerprints, banks, agents, versions, machines."""
        p = self.provenance or {}
        rows = [["units", f"{p.get('units', 0)} ({p.get('without_provenance', 0)} written "
                          "before provenance was recorded)"]]
        for name, prints in p.get("suites", {}).items():
            rows.append([f"suite {name}", "fingerprint " + ", ".join(prints)])
        for bank in p.get("banks", []):
            rows.append([f"bank {bank.get('file')}", f"sha256 {bank.get('sha256')}, read by "
                         f"{len(bank['envs'])} env configurations"])
        for agent, spec in p.get("agents", {}).items():
            text = f"{spec.get('class')} {json.dumps(spec.get('kwargs') or {}, sort_keys=True)}"
            if spec.get("version"):
                text += f" version {spec['version']}"
            rows.append([f"agent {agent}", text])
        for i, v in enumerate(p.get("versions", []), start=1):
            rows.append([f"versions ({i})", ", ".join(f"{k} {val}" for k, val in
                                                      sorted(v.items()))])
        if p.get("machines"):
            rows.append(["machines", ", ".join(p["machines"])])
        return rows

    def _improvement_table(self) -> tuple[list[str], list[list[str]]]:
        """Head and rows of the probability-of-improvement matrix (agents in rank order)."""
        assert self.aggregates is not None
        agents = [r.agent for r in self.rows if r.agent in self.aggregates.metrics]
        body = []
        for x in agents:
            row = [config_label(x)]
            for y in agents:
                iv = self.aggregates.improvement[x].get(y)
                row.append("–" if iv is None or not np.isfinite(iv.point) else
                           f"{iv.point:.2f} [{iv.low:.2f}, {iv.high:.2f}]")
            body.append(row)
        return ["P(row > column)"] + [config_label(a) for a in agents], body

    def to_html(self, full_page: bool = True) -> str:
        """HTML tables: aggregates, probability of improvement, per cell.

        A whole page unless ``full_page`` is False.
        """
        esc = html.escape
        parts = []
        if self.aggregates is not None:
            parts.append(_html_table(self._aggregate_head(), self._aggregate_rows(),
                                     "aggregates"))
            parts.append(f"<p>{esc(self._aggregate_note())}</p>")
            head, body = self._improvement_table()
            parts.append(_html_table(head, body, "improvement"))
        head = "".join(f"<th>{esc(h)}</th>" for h in ["Rank", "Agent", "Score"]
                       + [config_label(c) for c in self.columns])
        body = []
        for r in self.rows:
            cells = [f"<td>{esc(r.rank_text)}</td>",
                     f"<td title=\"{esc(r.agent)}\">{esc(config_label(r.agent))}</td>",
                     f"<td>{_fmt(r.score)}</td>"]
            for col in self.columns:
                cell = r.cells.get(col)
                title = "" if cell is None else (
                    f' title="95% CI [{cell.ci_low:.2f}, {cell.ci_high:.2f}], n={cell.n}"')
                cells.append(f"<td{title}>{esc(self._cell_text(cell))}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        parts.append(f'<table class="leaderboard"><thead><tr>{head}</tr></thead>'
                     f'<tbody>{"".join(body)}</tbody></table>')
        parts += [f'<p class="note">{esc(note)}</p>' for note in self.score_notes()]
        if self.provenance is not None:
            parts.append("<p>Provenance: where these units were run, on which bank, suite "
                         "definition and agent code.</p>")
            parts.append(_html_table(["What", "Value"], self._provenance_rows(), "provenance"))
        if not full_page:
            return "\n".join(parts)
        return ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>gambit-gym "
                "leaderboard</title></head><body><h1>Leaderboard</h1>" + "\n".join(parts)
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


def column_names(stats: list[SettingStats]) -> list[str]:
    """The leaderboard column of each statistic.

    Its env key, with ``@T=`` where one env configuration was run at several horizons.
    """
    horizons: dict[str, set[int]] = {}
    for s in stats:
        horizons.setdefault(s.env_key, set()).add(s.horizon)
    return [s.env_key if len(horizons[s.env_key]) == 1 else f"{s.env_key}@T={s.horizon}"
            for s in stats]


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


def _interval(iv: Interval) -> str:
    if not np.isfinite(iv.point):
        return "–"
    return f"{iv.point:.2f} [{iv.low:.2f}, {iv.high:.2f}]"


def _md_table(head: list[str], body: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in body]
    return lines


def _html_table(head: list[str], body: list[list[str]], cls: str) -> str:
    esc = html.escape
    rows = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>"
                   for row in body)
    return (f'<table class="{cls}"><thead><tr>' + "".join(f"<th>{esc(h)}</th>" for h in head)
            + f"</tr></thead><tbody>{rows}</tbody></table>")


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def _fmt(x: float) -> str:
    return f"{x:.2f}" if np.isfinite(x) else "–"


def _num(v: Any) -> Any:
    if isinstance(v, float):
        return "" if not np.isfinite(v) else f"{v:.6g}"
    return v
