"""Rendering of a bandit step: a notification as text (``ansi``) or as a phone card (``rgb_array``).

Both are pure functions of what the step showed the user, so the single env, the native vector
env and the population env draw the same picture. The image is drawn with matplotlib's Agg
canvas (no pyplot, no window, no global state); matplotlib is imported only when a frame is
drawn, so ``gym.make(..., render_mode="rgb_array")`` stays light and works without it (the
``bench`` extra installs it).
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

#: The render modes every gambit-gym env declares.
RENDER_MODES: list[str] = ["ansi", "rgb_array"]

_WIDTH_PX = 480
_DPI = 100
_WRAP = 58
_MAX_LINES = 7
_SCORE_RANGE = 4.0  # style scores are standardised; bars span -4..4 sd and clip beyond


def check_render_mode(owner: str, render_mode: str | None,
                      modes: Sequence[str] = RENDER_MODES) -> str | None:
    """``render_mode`` if it is None or one of ``modes``, else a ValueError naming them."""
    if render_mode is not None and render_mode not in modes:
        raise ValueError(f"{owner}: render_mode must be one of {list(modes)} or None, got "
                         f"{render_mode!r}")
    return render_mode


def _context_line(context: str | Mapping[str, Any] | None) -> str:
    if context is None or len(context) == 0:
        return "context: -"
    if isinstance(context, Mapping):
        return "context: " + ", ".join(f"{k}={v}" for k, v in context.items())
    from gambit_gym.text.contexts import Context

    try:
        c = Context.from_label(context)
    except ValueError:
        return f"context: {context}"
    return f"context: {c.location_name}, yesterday {c.step_bucket_name} steps"


def notification_text(context: str | Mapping[str, Any] | None, prompt: str | None,
                      message: str | None, reward: float | None,
                      regret: float | None = None) -> str:
    """The ``ansi`` frame: context, prompt, message and reward, one per line.

    Before the first step (``message`` None) it shows the context the next decision is in.
    """
    lines = [_context_line(context)]
    if message is None:
        lines.append("(no notification sent yet)")
        return "\n".join(lines) + "\n"
    lines.append("prompt: " + (prompt if prompt else "(none: no message sent)"))
    lines.append("message: " + (message if message else "(none)"))
    tail = f"reward: {reward:.3f}" if reward is not None else "reward: -"
    if regret is not None:
        tail += f"  (regret {regret:.3f})"
    lines.append(tail)
    return "\n".join(lines) + "\n"


def _figure(height_px: int) -> tuple[Any, Any]:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - matplotlib is in the test extras
        raise ImportError("render_mode='rgb_array' draws with matplotlib; install it with "
                          "pip install 'gambit-gym[bench]'") from exc
    fig = Figure(figsize=(_WIDTH_PX / _DPI, height_px / _DPI), dpi=_DPI)
    canvas = FigureCanvasAgg(fig)
    return fig, canvas


def _to_array(fig: Any, canvas: Any) -> np.ndarray:
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    return np.ascontiguousarray(rgba[..., :3], dtype=np.uint8)


def notification_card(context: str | Mapping[str, Any] | None, message: str | None,
                      scores: np.ndarray | None, score_names: Sequence[str],
                      reward: float | None, title: str = "Walk coach") -> np.ndarray:
    """The ``rgb_array`` frame: a phone notification card, ``(H, 480, 3)`` uint8.

    The card shows a header, the context, the message wrapped to the card's width and, below,
    the message's style scores as horizontal bars centred on 0 (clipped at ±4 sd), then the
    reward. ``H`` grows with the number of style dimensions.
    """
    from matplotlib.patches import FancyBboxPatch, Rectangle

    body = textwrap.wrap(message, _WRAP) if message else [
        "(no notification sent yet)" if message is None else "(no message sent)"]
    if len(body) > _MAX_LINES:
        body = body[:_MAX_LINES - 1] + [body[_MAX_LINES - 1][:_WRAP - 3] + "..."]
    names = list(score_names)
    n_bars = len(names) if scores is not None else 0
    line_px, bar_px = 17, 14
    height = 30 + 24 + 20 + line_px * len(body) + 12 + bar_px * n_bars + 34 + 20
    fig, canvas = _figure(height)
    fig.patch.set_facecolor("#20242b")
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, _WIDTH_PX)
    ax.set_ylim(height, 0)  # y grows downwards, in pixels
    ax.axis("off")
    ax.add_patch(FancyBboxPatch((12, 10), _WIDTH_PX - 24, height - 20,
                                boxstyle="round,pad=0,rounding_size=14",
                                facecolor="#f4f5f7", edgecolor="#c9ccd2"))
    y = 30.0
    ax.add_patch(Rectangle((28, y - 9), 16, 16, facecolor="#2f80ed"))
    ax.text(52, y, title, fontsize=9, fontweight="bold", va="center", color="#1d1f23")
    ax.text(_WIDTH_PX - 28, y, "now", fontsize=8, va="center", ha="right", color="#6b7280")
    y += 22
    ax.text(28, y, _context_line(context), fontsize=7.5, va="center", color="#4b5563")
    y += 20
    for line in body:
        ax.text(28, y, line, fontsize=8.5, va="center", color="#111827")
        y += line_px
    y += 8
    if scores is not None:
        values = np.clip(np.asarray(scores, dtype=float).reshape(-1), -_SCORE_RANGE,
                         _SCORE_RANGE)
        left, right = 150.0, _WIDTH_PX - 40.0
        mid, half = (left + right) / 2, (right - left) / 2
        for name, v in zip(names, values):
            ax.text(left - 8, y, name, fontsize=7, va="center", ha="right", color="#374151")
            ax.add_patch(Rectangle((left, y - 4), right - left, 8, facecolor="#e5e7eb"))
            width = half * v / _SCORE_RANGE
            ax.add_patch(Rectangle((mid, y - 4), width, 8,
                                   facecolor="#16a34a" if v >= 0 else "#dc2626"))
            y += bar_px
        ax.plot([mid, mid], [y - bar_px * n_bars - 6, y - 6], color="#6b7280", lw=0.8)
    y += 14
    tail = f"reward {reward:.3f}" if reward is not None else "reward -"
    ax.text(28, y, tail, fontsize=8, va="center", color="#111827", fontweight="bold")
    return _to_array(fig, canvas)


def arm_values_text(t: int, values: np.ndarray | None, action: int | None,
                    reward: float | None, regret: float | None) -> str:
    """The ``ansi`` frame of a plain K-armed round: the action, reward, regret and best arm."""
    if action is None or values is None:
        return f"round {t}: (no action yet)\n"
    best = int(np.argmax(values))
    return (f"round {t}: action {action} (expected {values[action]:.3f}), reward "
            f"{reward:.3f}, best action {best} (expected {values[best]:.3f}), regret "
            f"{regret:.3f}\n")


def arm_values_image(values: np.ndarray | None, action: int | None,
                     title: str) -> np.ndarray:
    """The ``rgb_array`` frame of a K-armed round, ``(320, 480, 3)`` uint8.

    Every arm's expected reward is a bar, the played arm's blue and the best arm's green.
    """
    fig, canvas = _figure(320)
    ax = fig.add_axes((0.1, 0.12, 0.86, 0.76))
    if values is not None:
        colours = np.array(["#9ca3af"] * len(values), dtype=object)
        colours[int(np.argmax(values))] = "#16a34a"
        if action is not None:
            colours[int(action)] = "#2f80ed"
        ax.bar(np.arange(len(values)), values, color=list(colours), width=0.9)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("action", fontsize=8)
    ax.set_ylabel("expected reward", fontsize=8)
    ax.tick_params(labelsize=7)
    return _to_array(fig, canvas)
