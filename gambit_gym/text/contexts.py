"""The user's context in the Intern Health Study setting.

The app knows two things when it sends a message: where the user is (``home``, ``work``,
``other``) and yesterday's step count, bucketed into four ranges. The twelve combinations are
numbered ``0..11`` as ``location * 4 + step_bucket``; every part of gambit-gym uses this order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LOCATIONS: tuple[str, ...] = ("home", "work", "other")
STEP_BUCKETS: tuple[str, ...] = ("0-4,999", "5,000-9,999", "10,000-15,000", "more than 15,000")
N_CONTEXTS: int = len(LOCATIONS) * len(STEP_BUCKETS)
CONTEXT_NAMES: tuple[str, ...] = ("location", "step_bucket")


@dataclass(frozen=True)
class Context:
    """One of the 12 IHS contexts.

    Attributes:
        location: index into :data:`LOCATIONS`.
        step_bucket: index into :data:`STEP_BUCKETS` (0 = fewest steps).
    """

    location: int
    step_bucket: int

    def __post_init__(self) -> None:
        if not 0 <= self.location < len(LOCATIONS):
            raise ValueError(f"location must be in 0..{len(LOCATIONS) - 1}, got {self.location}")
        if not 0 <= self.step_bucket < len(STEP_BUCKETS):
            raise ValueError(
                f"step_bucket must be in 0..{len(STEP_BUCKETS) - 1}, got {self.step_bucket}"
            )

    @property
    def id(self) -> int:
        """The context id, ``location * 4 + step_bucket``."""
        return self.location * len(STEP_BUCKETS) + self.step_bucket

    @classmethod
    def from_id(cls, context_id: int) -> Context:
        """Build the context with the given id (0..11)."""
        if not 0 <= int(context_id) < N_CONTEXTS:
            raise ValueError(f"context id must be in 0..{N_CONTEXTS - 1}, got {context_id}")
        return cls(*divmod(int(context_id), len(STEP_BUCKETS)))

    @property
    def location_name(self) -> str:
        """The location as a word, e.g. ``"work"``."""
        return LOCATIONS[self.location]

    @property
    def step_bucket_name(self) -> str:
        """Yesterday's step range as text, e.g. ``"5,000-9,999"``."""
        return STEP_BUCKETS[self.step_bucket]

    @property
    def label(self) -> str:
        """``"<location>, <step bucket>"``, e.g. ``"work, 5,000-9,999"``: ``info["context"]``.

        A plain string (not a dict) so that every info value is a number, an array or a
        string, which Gymnasium's ``DictInfoToList`` and torchrl's info reader take as is.
        """
        return f"{self.location_name}, {self.step_bucket_name}"

    @classmethod
    def from_label(cls, label: str) -> Context:
        """The context of a :attr:`label` (what ``info["context"]`` holds)."""
        location, _, bucket = str(label).partition(", ")
        if location not in LOCATIONS or bucket not in STEP_BUCKETS:
            raise ValueError(f"not a context label: {label!r}; labels are "
                             f"'<location>, <step bucket>' with location in {LOCATIONS} and "
                             f"step bucket in {STEP_BUCKETS}")
        return cls(LOCATIONS.index(location), STEP_BUCKETS.index(bucket))

    def as_dict(self) -> dict[str, str]:
        """Names of the context's parts, ``{"location": ..., "step_bucket": ...}``."""
        return {"location": self.location_name, "step_bucket": self.step_bucket_name}

    def as_observation(self) -> np.ndarray:
        """The observation ``[location, step_bucket]`` (int64), as in ``MultiDiscrete([3, 4])``."""
        return np.array([self.location, self.step_bucket], dtype=np.int64)


ALL_CONTEXTS: tuple[Context, ...] = tuple(Context.from_id(i) for i in range(N_CONTEXTS))
#: ``info["context"]`` of each context id (see :attr:`Context.label`).
CONTEXT_LABELS: tuple[str, ...] = tuple(c.label for c in ALL_CONTEXTS)


def context_ids(observations: np.ndarray) -> np.ndarray:
    """Context ids of a batch of observations.

    Args:
        observations: int array ``(..., 2)`` of ``[location, step_bucket]``.

    Returns:
        int64 array ``(...)`` of ids in 0..11.
    """
    obs = np.asarray(observations, dtype=np.int64)
    return obs[..., 0] * len(STEP_BUCKETS) + obs[..., 1]


def context_definitions() -> list[dict[str, object]]:
    """The 12 contexts as plain records (stored in bank metadata)."""
    return [{"id": c.id, **c.as_dict()} for c in ALL_CONTEXTS]
