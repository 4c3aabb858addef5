"""The training loss curve of an evaluation report, as a PNG whose bytes depend only on the history.

matplotlib is imported only when there is a curve to draw, so rendering the report's text needs no plotting stack.
"""

from __future__ import annotations

import math
from pathlib import Path

from ..common.figures import save_png
from ..common.render import is_number


def _finite(value) -> bool:
    return is_number(value) and math.isfinite(value)


def plot_loss_curve(log_history: list[dict], path: Path, eval_points: dict[str, float] | None = None) -> Path | None:
    """Training loss (and any eval_loss) vs step as a PNG; None, writing nothing, when there is no loss to plot.

    Uses a bare ``Figure`` on the Agg canvas (no pyplot: no GUI backend, no global figure state), a fixed size
    and no Software metadata, so the same history gives the same bytes; written via a temp file + os.replace so
    a reader never sees half a PNG.
    """
    points = {"loss": [], "eval_loss": []}
    for i, entry in enumerate(log_history or []):
        step = entry.get("step", i)
        for key, series in points.items():
            if _finite(entry.get(key)) and is_number(step):
                series.append((step, entry[key]))
    if not points["loss"] and not points["eval_loss"]:
        return None

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4), dpi=110, layout="tight")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if points["loss"]:
        ax.plot(*zip(*points["loss"]), color="tab:blue", linewidth=1.5, label="training loss")
    if points["eval_loss"]:
        ax.plot(*zip(*points["eval_loss"]), "o", color="tab:orange", label="eval loss")
    colors = ["tab:red", "tab:green", "tab:purple", "tab:brown", "tab:gray"]
    for i, (label, value) in enumerate((eval_points or {}).items()):
        if _finite(value):
            ax.axhline(value, linestyle="--", linewidth=1.2, color=colors[i % len(colors)],
                       label=f"{label}: {value:.4f}")
    ax.set(title="Training loss", xlabel="step", ylabel="loss")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize="small")

    return save_png(fig, path)
