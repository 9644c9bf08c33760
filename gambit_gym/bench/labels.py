"""How results are named and coloured for people: table headers, figure titles, line colours.

Stored results are keyed by canonical text (``GambitIHS-v0{"n_prompts":3}``), which is exact
but unreadable in a paper. This module turns keys into labels (``GambitIHS-v0 (K = 3)``),
sorts them the way a reader counts (K = 3, 5, 15, not 15, 3, 5), names the reward's unit for
axis labels, and gives every agent one fixed colour in every figure (the references Random
and Oracle grey and dashed), so that a line keeps its colour from one figure to the next.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

#: Readable names of the kwargs that suites vary (anything else is shown as ``name = value``).
_KWARG_LABELS: dict[str, str] = {
    "n_prompts": "K = {}",
    "noise_level": "noise {}",
    "noise_sd": "noise sd {}",
    "n_sim_draws": "draws = {}",
    "horizon": "T = {}",
    "n_users": "N = {}",
}

#: Reference agents: drawn grey and dashed, never in an agent colour.
REFERENCE_STYLE: dict[str, dict[str, Any]] = {
    "Random": {"color": "#9a9a9a", "linestyle": (0, (5, 3)), "lw": 1.2},
    "Oracle": {"color": "#505050", "linestyle": (0, (2, 2)), "lw": 1.2},
}

#: A fixed colour per built-in agent: the same agent has the same colour in every figure of
#: every report.
_FIXED_ORDER: tuple[str, ...] = (
    "poGAMBITTS", "foGAMBITTS", "ens-poGAMBITTS", "StdTS", "StdTS-Contextual", "ens-foGAMBITTS",
    "LinTS", "LinUCB", "UCB1", "EpsilonGreedy", "meTS-Lin", "meTS-GLM", "meTS-Fa", "HierTS",
    "LinTS-Disjoint", "LinUCB-Disjoint", "GLM-TS", "UCB-GLM", "PPO", "A2C", "DQN",
)
_PALETTE: tuple[str, ...] = (
    # tab10 without its grey (greys are for the references), then Dark2, then tab20's light
    # shades: the first ten agents, the ones most figures show, get the most distinct colours
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22",
    "#17becf", "#1b9e77", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#d95f02",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d",
    "#9edae5",
)
_FIXED: dict[str, str] = {name: _PALETTE[i] for i, name in enumerate(_FIXED_ORDER)}
#: Colours for lines that are not a built-in agent (user agents, kwargs variants), by hash:
#: strong hues that stay apart from one another.
_SPARE: tuple[str, ...] = ("#000075", "#808000", "#800000", "#469990", "#f032e6",
                           "#c0a000", "#4b4b00")


def split_key(key: str) -> tuple[str, dict[str, Any], int | None]:
    """``name{json}@T=1000`` → ``(name, kwargs, horizon or None)`` (the inverse of config_key)."""
    horizon = None
    match = re.fullmatch(r"(.*)@T=(\d+)", key)
    if match:
        key, horizon = match.group(1), int(match.group(2))
    brace = key.find("{")
    if brace > 0:
        try:
            kwargs = json.loads(key[brace:])
        except json.JSONDecodeError:
            return key, {}, horizon
        if isinstance(kwargs, dict):
            return key[:brace], kwargs, horizon
    return key, {}, horizon


def kwargs_label(kwargs: dict[str, Any]) -> str:
    """``{"n_prompts": 3, "noise_level": 2}`` → ``"K = 3, noise 2"``."""
    parts = []
    for name, value in kwargs.items():
        text = value if isinstance(value, (int, float, str)) else json.dumps(value)
        parts.append(_KWARG_LABELS.get(name, name + " = {}").format(text))
    return ", ".join(parts)


def config_label(key: str) -> str:
    """A readable label of an env or agent key.

    ``GambitIHS-v0{"n_prompts":3}`` → ``GambitIHS-v0 (K = 3)``; a ``@T=500`` suffix adds
    ``T = 500``; a class from the user's script (``__main__:MyAgent``) is ``MyAgent``.
    """
    name, kwargs, horizon = split_key(key)
    extra = kwargs_label(kwargs)
    if horizon is not None:
        extra = ", ".join(p for p in (extra, f"T = {horizon}") if p)
    if name.startswith("__main__:"):
        name = name.split(":", 1)[1]
    return f"{name} ({extra})" if extra else name


def panel_label(panel: str) -> str:
    """``"K=15"`` → ``"K = 15"`` (suites write panels compactly)."""
    return re.sub(r"\s*=\s*", " = ", panel)


def natural_key(text: str) -> list[Any]:
    """Sort key that orders embedded numbers by value: ``K=3 < K=5 < K=15``."""
    return [int(part) if part.isdigit() else part.lower()
            for part in re.split(r"(\d+)", str(text))]


def reward_unit(env_id: str) -> str:
    """The unit of an env's reward (and so of regret), for axis labels."""
    if env_id.startswith("GambitIHS") or env_id.startswith("gambit_population"):
        return "√steps"
    if env_id.startswith("MixedEffectLogistic"):
        return "success probability"
    return "reward units"


def noise_label(env_id: str, kwargs: dict[str, Any]) -> str:
    """The reward noise of an env configuration as a reader would name it."""
    if "noise_sd" in kwargs:
        return f"noise sd {kwargs['noise_sd']}"
    if "noise_level" in kwargs:
        return f"noise level {kwargs['noise_level']}"
    if env_id.startswith("GambitIHS"):
        return "noise level 0"
    if env_id.startswith("MixedEffectLogistic"):
        return "Bernoulli rewards"
    return "default noise"


def is_reference(label: str) -> bool:
    """Whether a line is a reference agent (Random or Oracle)."""
    return label in REFERENCE_STYLE


def line_styles(labels: list[str]) -> dict[str, dict[str, Any]]:
    """Matplotlib line kwargs per label: fixed colours, references grey and dashed.

    A built-in agent name always gets its own colour; any other label (a user's agent, a
    kwargs variant) gets one by a hash of its text, so it too is the same in every figure,
    moved to the next free colour only where two labels of one figure would collide.
    """
    styles: dict[str, dict[str, Any]] = {}
    used: set[str] = set()
    for label in labels:
        if label in REFERENCE_STYLE:
            styles[label] = dict(REFERENCE_STYLE[label])
        elif label in _FIXED:
            styles[label] = {"color": _FIXED[label], "linestyle": "-", "lw": 1.5}
            used.add(_FIXED[label])
    for label in labels:
        if label in styles:
            continue
        start = int(hashlib.sha1(label.encode()).hexdigest(), 16) % len(_SPARE)
        colour = next((_SPARE[(start + i) % len(_SPARE)] for i in range(len(_SPARE))
                       if _SPARE[(start + i) % len(_SPARE)] not in used), _SPARE[start])
        used.add(colour)
        styles[label] = {"color": colour, "linestyle": "-", "lw": 1.5}
    return styles
