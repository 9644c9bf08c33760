"""One rule for ``gym.make(id, max_episode_steps=N)`` on envs that truncate at their own horizon.

gambit-gym envs are registered without a ``TimeLimit`` (the horizon is the ``horizon=`` kwarg
and the env truncates itself), so a ``max_episode_steps`` larger than the horizon would be
silently capped by the env. Instead: when the user did not set ``horizon``, the env takes
``max_episode_steps`` as its horizon; when they set both and ``max_episode_steps`` is larger,
``gym.make`` raises a ValueError saying which to change. A smaller ``max_episode_steps`` is
honoured by Gymnasium's ``TimeLimit`` as usual.

Gymnasium applies ``max_episode_steps`` in a ``TimeLimit`` wrapper outside the env, which the
env is never told about, and ``gym.make_vec(..., vectorization_mode="vector_entry_point")``
refuses ids registered with extra wrappers, so no wrapper can carry it either. The vector env
receives it as a kwarg (``make_vec`` forwards it); the single env reads it, in
:func:`requested_max_episode_steps`, from the ``gym.make`` call that is building it.
"""

from __future__ import annotations

import sys


def horizon_with_spec_limit(limit: int | None, horizon: int, horizon_given: bool) -> int:
    """The horizon an env should use under ``max_episode_steps=limit``.

    Args:
        limit: ``max_episode_steps`` (None: no limit).
        horizon: the env's configured horizon.
        horizon_given: whether the user passed ``horizon=`` explicitly.

    Raises:
        ValueError: ``max_episode_steps`` is larger than an explicitly given horizon.
    """
    if limit is None or limit <= horizon:
        return horizon
    if horizon_given:
        raise ValueError(
            f"max_episode_steps={limit} is larger than horizon={horizon}, and the env "
            f"truncates at its horizon: pass horizon={limit} (or max_episode_steps <= "
            f"{horizon})")
    return int(limit)


def requested_max_episode_steps() -> int | None:
    """The ``max_episode_steps`` of the ``gym.make`` call on the stack, if any.

    Called from an env's ``__init__``: walks up to the frame running
    ``gymnasium.envs.registration.make`` (found by its code object, not by file name) and reads
    its ``max_episode_steps`` argument. None when the env is built any other way, or when
    ``max_episode_steps`` is None or -1 (Gymnasium's "no TimeLimit").
    """
    from gymnasium.envs import registration

    target = registration.make.__code__
    frame = sys._getframe(1)
    try:
        while frame is not None:
            if frame.f_code is target:
                value = frame.f_locals.get("max_episode_steps")
                return int(value) if isinstance(value, int) and value > 0 else None
            frame = frame.f_back
        return None
    finally:
        del frame
