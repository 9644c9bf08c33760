"""torchrl's info reader for GAMBIT envs, with every key's spec written out.

torchrl's ``default_info_dict_reader`` takes numpy scalars and arrays as they are, so a reader
of the numeric keys needs nothing more (``default_info_dict_reader(["regret"])``). Reading the
string keys too (``text``, ``prompt``, ``context``, ``embedding_names``) needs their specs: a
reader left to infer them takes the reset step, whose info holds only ``context``, as zeros of
a numeric type, and then cannot stack those with the strings of later steps. :func:`info_reader`
gives torchrl all the specs. torchrl is imported when the function is called.

>>> from torchrl.envs import GymEnv  # doctest: +SKIP
>>> env = GymEnv("GambitIHS-v0")  # doctest: +SKIP
>>> env.set_info_dict_reader(info_reader(env))  # doctest: +SKIP
>>> env.rollout(5)["next", "regret"].shape  # doctest: +SKIP
torch.Size([5])
"""

from __future__ import annotations

from typing import Any

NUMERIC_KEYS: dict[str, str] = {"prompt_id": "int64", "expected_reward": "float64",
                                "optimal_action": "int64", "optimal_expected_reward": "float64",
                                "regret": "float64"}
STRING_KEYS: tuple[str, ...] = ("text", "prompt", "context", "embedding_names")


def info_reader(env: Any, keys: tuple[str, ...] | None = None) -> Any:
    """A ``default_info_dict_reader`` for a torchrl-wrapped GAMBIT env, with specs.

    Args:
        env: the torchrl env (``GymEnv`` / ``GymWrapper`` of a GAMBIT id or of its native
            vector env); its ``batch_size`` and the wrapped env's embedding size are read.
        keys: the info keys to read (default: all of them).
    """
    import torch
    from torchrl.data import NonTensor, Unbounded
    from torchrl.envs.libs.gym import default_info_dict_reader

    batch = tuple(env.batch_size)
    d = len(env._env.unwrapped.tables.working_names)
    specs: dict[str, Any] = {k: Unbounded(batch, dtype=getattr(torch, t))
                             for k, t in NUMERIC_KEYS.items()}
    specs["embedding"] = Unbounded((*batch, d), dtype=torch.float32)
    for k in STRING_KEYS:
        specs[k] = NonTensor(shape=batch)
    keys = tuple(specs) if keys is None else tuple(keys)
    unknown = sorted(set(keys) - set(specs))
    if unknown:
        raise ValueError(f"unknown GAMBIT info keys {unknown}; keys: {sorted(specs)}")
    return default_info_dict_reader(list(keys), spec={k: specs[k] for k in keys})
