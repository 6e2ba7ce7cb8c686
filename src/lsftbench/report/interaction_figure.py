"""The TPR–FDP curves of the genetic-interaction analysis (SPEC 10, last bullet; the paper's Fig. 1).

Input: the stacked curves of :func:`lsftbench.evaluation.interactions.interaction_curves` (columns ``method,
direction, fdp, tpr``). One panel per direction (synergy, suppression), one curve per method: the step function
``T(q)`` = the largest TPR reached at FDP ≤ ``q`` (:func:`~lsftbench.evaluation.interactions.tpr_envelope`, whose
area is the table's AUC). The floor methods are drawn grey: ``additive`` (``ê ≡ 0``) dashed, ``no_change``
dotted; the FDP levels of the table (0.1, 0.2) as thin vertical lines. Saved with
:func:`lsftbench.report.plots.save_figure` (atomic, byte-identical PNG and SVG).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from ..evaluation.interactions import DIRECTIONS, FDP_LEVELS, tpr_envelope  # noqa: E402
from .plots import _styled, _suptitle, save_figure  # noqa: E402

__all__ = ["FLOOR_STYLE", "interaction_figure", "write_interaction_figure"]

#: The floor methods' line styles (grey); every other method gets the next colour of the default cycle.
FLOOR_STYLE: dict[str, dict[str, object]] = {
    "additive": {"color": "#7f7f7f", "linestyle": "--", "label": "additive (floor: ê ≡ 0)"},
    "no_change": {"color": "#7f7f7f", "linestyle": ":", "label": "no_change (floor)"},
}


def _step(fdp: np.ndarray, tpr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The envelope ``T(q)`` on ``[0, 1]`` as a polyline: 0 up to the first FDP, then a step at each FDP."""
    x = np.concatenate([[0.0], fdp, [1.0]])
    y = np.concatenate([[0.0], tpr, [tpr[-1] if tpr.size else 0.0]])
    return x, y


@_styled
def interaction_figure(
    curves: pd.DataFrame, title: str, protocol: str = "default", levels: Sequence[float] = FDP_LEVELS,
    empty: str | None = None,
) -> Figure:
    """TPR against FDP per direction (panels) and method (curves), the floor methods in grey.

    ``curves`` has columns ``method, direction, fdp, tpr``
    (:func:`~lsftbench.evaluation.interactions.interaction_curves`); methods are drawn in their order of first
    appearance, the floor methods (when present) as :data:`FLOOR_STYLE` says. A direction without true pairs says
    so in its panel; ``empty`` (e.g. "no test double with both singles in training") is what a panel without a
    curve says instead, when the seed had nothing to score.
    """
    methods = list(dict.fromkeys(curves["method"]))
    colours = iter(plt.rcParams["axes.prop_cycle"].by_key()["color"])
    styles = {m: FLOOR_STYLE.get(m) or {"color": next(colours), "linestyle": "-", "label": m} for m in methods}
    fig, axes = plt.subplots(1, len(DIRECTIONS), figsize=(12.0, 4.4), sharey=True)
    for ax, direction in zip(axes, DIRECTIONS, strict=True):
        panel = curves[curves["direction"] == direction]
        for level in levels:
            ax.axvline(level, color="#bbbbbb", linewidth=0.6, zorder=0)
        for method in methods:
            curve = panel[panel["method"] == method]
            if curve.empty or curve["tpr"].isna().all():
                continue
            x, y = _step(*tpr_envelope(curve))
            style = styles[method]
            ax.step(x, y, where="post", color=style["color"], linestyle=style["linestyle"], linewidth=1.3,
                    label=style["label"])
        if panel.empty or panel["tpr"].isna().all():
            ax.text(0.5, 0.5, empty or "no true pairs", ha="center", va="center", transform=ax.transAxes,
                    color="#555555")
        order = "descending" if direction == "synergy" else "ascending"
        ax.set_title(f"{direction}: pairs ranked by predicted ê ({order})", fontsize="small")
        ax.set_xlabel("false discovery proportion (FP / (FP + TP))")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.grid(linewidth=0.3, alpha=0.6)
    axes[0].set_ylabel("true positive rate (TP / all true pairs)\nbest at FDP ≤ x")
    legend = {}  # label → handle over both panels, in drawing order
    for ax in axes:
        legend.update((label, handle) for handle, label in zip(*ax.get_legend_handles_labels(), strict=True)
                      if label not in legend)
    # beside the panels (a figure's settings line goes below it): one column however many methods
    # on the last panel's right (the saved bounding box includes an axes' legend, a figure's settings line goes
    # below): one column however many methods
    axes[-1].legend(list(legend.values()), list(legend), loc="center left", bbox_to_anchor=(1.03, 0.5), ncol=1,
                    fontsize="small", frameon=False, borderpad=1.5)  # room for the text's rendered width
    _suptitle(fig, title, protocol)
    fig.tight_layout()
    return fig


def write_interaction_figure(
    curves: pd.DataFrame, outputs: Sequence[str | os.PathLike[str]], *, title: str, protocol: str = "default",
    provenance: str | None = None, empty: str | None = None,
) -> None:
    """Draw :func:`interaction_figure` and save it to every path of ``outputs`` (format from the suffix)."""
    save_figure(interaction_figure(curves, title, protocol=protocol, empty=empty), list(outputs), provenance=provenance)
