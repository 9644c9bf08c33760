"""Numbers from the GAMBITTS study, read from the facts file shipped with the package."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

FACTS_PATH = Path(__file__).resolve().parent.parent / "data" / "gambitts_study_facts.json"


@lru_cache(maxsize=1)
def study_facts() -> dict[str, Any]:
    """The parsed facts file (contexts, prompts, outcome coefficients, noise ladders, ...)."""
    return json.loads(FACTS_PATH.read_text())


def outcome_facts(name: str) -> dict[str, Any]:
    """One fitted outcome model of the study: ``1d_optimism``, ``3d``, ``20d``, ``mlp``, ..."""
    return study_facts()["outcome_models"][name]


def dimension_subset(n_dims: int) -> tuple[str, ...]:
    """The study's dimension subset of a given size (3, 5, 10, 15 or 20)."""
    subset = study_facts()["outcome_models"]["dimension_subsets_for_scaling"][str(n_dims)]
    if subset == "all":
        return tuple(study_facts()["prompts"]["dimensions_20"])
    return tuple(subset)
