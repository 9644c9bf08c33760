"""The prompt library: a system instruction and 40 prompts rendered for each context.

The library is versioned data (``gambit_gym/data/prompt_library.json``): a system instruction,
a query template, the wording of the locations and step buckets, a one-sentence definition of
each of the 20 style dimensions, and 40 prompts (a ``high`` and a ``low`` version of each
dimension, ids ``2 * d`` and ``2 * d + 1`` in the order of
:data:`~gambit_gym.text.dimensions.STYLE_DIMENSIONS`). :meth:`PromptLibrary.render` fills the
template for one prompt and one :class:`~gambit_gym.text.contexts.Context`.

Example:
    >>> from gambit_gym.text.prompts import load_prompt_library
    >>> lib = load_prompt_library()
    >>> len(lib), lib.prompts[0].dimension, lib.prompts[0].polarity
    (40, 'optimism', 'high')
    >>> "at work" in lib.render(0, 4)
    True
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gambit_gym.text.contexts import ALL_CONTEXTS, LOCATIONS, STEP_BUCKETS, Context

DEFAULT_LIBRARY_PATH = Path(__file__).resolve().parent.parent / "data" / "prompt_library.json"
#: Named, versioned prompt libraries shipped with the package (``load_prompt_library("v2")``):
#: v1 made the shipped bank ``ihs_smollm2_bank.parquet``; v2 is the bank-v2 design (few-shot
#: format examples, style instructions, the quality filter; see docs/bank_report.md).
LIBRARY_FILES = {"v1": DEFAULT_LIBRARY_PATH,
                 "v2": DEFAULT_LIBRARY_PATH.with_name("prompt_library_v2.json")}


@dataclass(frozen=True)
class Prompt:
    """One prompt of the library.

    Attributes:
        id: index in the library (0..n-1).
        dimension: the style dimension it targets.
        polarity: ``"high"`` or ``"low"``.
        style: the style instruction inserted into the template.
    """

    id: int
    dimension: str
    polarity: str
    style: str


@dataclass(frozen=True)
class PromptLibrary:
    """A system instruction and prompts, rendered per context.

    Attributes:
        name: library name, e.g. ``"ihs-steps"``.
        version: version string of the data.
        system: the system instruction sent with every query.
        template: the query template (``str.format`` fields ``steps``, ``location``,
            ``dimension``, ``dimension_title``, ``definition``, ``style``, ``polarity``).
        locations: wording of each location name.
        steps: wording of each step bucket name.
        definitions: one-sentence definition of each dimension.
        prompts: the prompts, ``prompts[i].id == i``.
        description: free text.
        few_shot: example turns ``(user, assistant)`` sent before every query, written by us
            to show the format (2-3 sentences to the user about walking today) in a neutral
            style; empty in v1.
        quality_filter: the :class:`~gambit_gym.text.generators.quality.QualityFilter`
            version a build of this library applies (``"quality v1"``), or None (v1: cleaning
            only).
        max_attempts: drafts per query the build allows (None: the generator's setting).
    """

    name: str
    version: str
    system: str
    template: str
    locations: dict[str, str]
    steps: dict[str, str]
    definitions: dict[str, str]
    prompts: tuple[Prompt, ...]
    description: str = ""
    few_shot: tuple[tuple[str, str], ...] = ()
    quality_filter: str | None = None
    max_attempts: int | None = None

    def __post_init__(self) -> None:
        for i, p in enumerate(self.prompts):
            if p.id != i:
                raise ValueError(f"prompt ids must be 0..n-1 in order; prompt {i} has id {p.id}")
            if p.polarity not in ("high", "low"):
                raise ValueError(f"prompt {i}: polarity must be 'high' or 'low', not "
                                 f"{p.polarity!r}")
            if p.dimension not in self.definitions:
                raise ValueError(f"prompt {i}: dimension {p.dimension!r} has no definition")
        missing = [n for n in LOCATIONS if n not in self.locations]
        missing += [n for n in STEP_BUCKETS if n not in self.steps]
        if missing:
            raise ValueError(f"the library has no wording for {missing}")

    def __len__(self) -> int:
        return len(self.prompts)

    def render(self, prompt_id: int, context: Context | int) -> str:
        """The query for one prompt in one context.

        Args:
            prompt_id: index into :attr:`prompts`.
            context: a :class:`Context` or a context id (0..11).

        Returns:
            The user message sent to the generator (the system instruction is separate).
        """
        if not isinstance(context, Context):
            context = Context.from_id(int(context))
        if not 0 <= prompt_id < len(self.prompts):
            raise IndexError(f"prompt id {prompt_id} is outside 0..{len(self.prompts) - 1}")
        p = self.prompts[prompt_id]
        return self.template.format(
            steps=self.steps[context.step_bucket_name],
            location=self.locations[context.location_name],
            dimension=p.dimension,
            dimension_title=p.dimension.replace("-", " ").capitalize(),
            definition=self.definitions[p.dimension],
            style=p.style,
            polarity=p.polarity,
        )

    def render_all(self) -> list[list[str]]:
        """Every rendered query, ``[prompt_id][context_id]``."""
        return [[self.render(p.id, c) for c in ALL_CONTEXTS] for p in self.prompts]

    def prompt_id(self, dimension: str, polarity: str) -> int:
        """Id of the prompt for a dimension and polarity."""
        for p in self.prompts:
            if p.dimension == dimension and p.polarity == polarity:
                return p.id
        raise KeyError(f"no {polarity!r} prompt for dimension {dimension!r}")

    def to_dict(self) -> dict[str, Any]:
        """The library as plain JSON-able data (stored in bank metadata).

        The v2 fields (``few_shot``, ``quality_filter``, ``max_attempts``) appear only when
        set, so a v1 library's data is what it always was.
        """
        extra: dict[str, Any] = {}
        if self.few_shot:
            extra["few_shot"] = [list(turn) for turn in self.few_shot]
        if self.quality_filter is not None:
            extra["quality_filter"] = self.quality_filter
        if self.max_attempts is not None:
            extra["max_attempts"] = self.max_attempts
        return {
            "name": self.name, "version": self.version, "description": self.description,
            "system": self.system, "template": self.template,
            "locations": dict(self.locations), "steps": dict(self.steps),
            "definitions": dict(self.definitions),
            "prompts": [
                {"id": p.id, "dimension": p.dimension, "polarity": p.polarity, "style": p.style}
                for p in self.prompts
            ],
            **extra,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PromptLibrary:
        """Build a library from :meth:`to_dict` data (or the JSON file's content)."""
        try:
            return cls(
                name=str(data["name"]), version=str(data["version"]),
                system=str(data["system"]), template=str(data["template"]),
                locations=dict(data["locations"]), steps=dict(data["steps"]),
                definitions=dict(data["definitions"]),
                prompts=tuple(Prompt(int(p["id"]), str(p["dimension"]), str(p["polarity"]),
                                     str(p["style"])) for p in data["prompts"]),
                description=str(data.get("description", "")),
                few_shot=tuple((str(u), str(a)) for u, a in data.get("few_shot", ())),
                quality_filter=data.get("quality_filter"),
                max_attempts=data.get("max_attempts"),
            )
        except KeyError as exc:
            raise ValueError(f"prompt library data lacks the key {exc.args[0]!r}") from None


def load_prompt_library(path: str | os.PathLike | None = None) -> PromptLibrary:
    """Load a prompt library from JSON.

    Args:
        path: a JSON file in the format of ``gambit_gym/data/prompt_library.json``, a name of
            :data:`LIBRARY_FILES` (``"v1"``, ``"v2"``), or None for v1 (the library of the
            shipped bank).
    """
    if path is not None and str(path) in LIBRARY_FILES:
        path = LIBRARY_FILES[str(path)]
    p = Path(path) if path is not None else DEFAULT_LIBRARY_PATH
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"prompt library {str(p)!r} does not exist") from None
    except ValueError as exc:
        raise ValueError(f"prompt library {str(p)!r} is not valid JSON: {exc}") from None
    return PromptLibrary.from_dict(data)
