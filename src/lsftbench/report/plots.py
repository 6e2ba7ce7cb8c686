"""Figures of LSFT results (matplotlib, Agg backend), drawn from the result tables.

Inputs follow the table contracts of :mod:`lsftbench.report.tables` (performance tables with ``V``, ``V CI low``,
``V CI high`` columns, ``Baseline``, ``Top %`` strings such as ``"1%"``), the progress-bar table of
:mod:`lsftbench.evaluation.progress_bar` (``Baseline, Top %, Method, Metric, Score, WAP, WAP method, BAP, BAP method,
% of gap closed``) and the per-perturbation frame (``baseline, top_pct, improvement_r, ...``).

Every figure function returns a :class:`matplotlib.figure.Figure` whose title names the protocol (the
``seed_compat`` protocol is labelled as leaking test data). :func:`save_figure` writes PNG/SVG files
atomically and byte-identically across reruns and processes (fixed SVG hash salt, no timestamps, no
software version in the file metadata).
"""

from __future__ import annotations

import functools
import os
import re
import textwrap
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import ParamSpec, TypeVar

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from ..evaluation.progress_bar import gap_closed  # noqa: E402
from ..evaluation.registry import PROGRESS_METRICS, from_label, label  # noqa: E402
from ..io import atomic_path  # noqa: E402
from .notes import protocol_label  # noqa: E402

__all__ = [
    "RC_PARAMS",
    "forest_figure",
    "local_vs_global_figure",
    "progress_bar_figure",
    "improvement_distribution_figure",
    "leaderboard_figure",
    "figure_title",
    "save_figure",
    "dataset_label",
    "seeds_label",
]

#: rcParams used while drawing and saving: a fixed SVG hash salt makes element ids reproducible,
#: glyphs are stored as paths so the SVG does not depend on the viewer's fonts.
RC_PARAMS: dict[str, object] = {
    "svg.hashsalt": "lsftbench",
    "svg.fonttype": "path",
    "font.family": "DejaVu Sans",
    "font.size": 9.0,
    "path.simplify": True,
}

#: File metadata per format: no date and no software version, so reruns give identical bytes.
_METADATA: dict[str, dict[str, str | None]] = {
    "svg": {"Date": None, "Creator": None},
    "png": {"Software": None},
}

_COLOURS = {"global": "#7f7f7f", "LSFT": "#1f77b4", "kNN": "#ff7f0e", "external": "#2ca02c"}
_LEAK_COLOUR = "#b00020"

P = ParamSpec("P")
R = TypeVar("R")


def _styled(func: Callable[P, R]) -> Callable[P, R]:
    """Draw under :data:`RC_PARAMS` without changing the caller's global rcParams."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with plt.rc_context(RC_PARAMS):
            return func(*args, **kwargs)

    return wrapper


# ---------------------------------------------------------------------------------------------- labels


def figure_title(title: str, protocol: str) -> str:
    """``title`` followed by the protocol's label (wrapped), as used for every figure's suptitle."""
    label = "\n".join(textwrap.wrap(f"Protocol: {protocol_label(protocol)}", width=100))
    return f"{title}\n{label}"


def _suptitle(fig: Figure, title: str, protocol: str) -> None:
    """Set the figure title; the leaking ``seed_compat`` protocol is shown in red."""
    colour = _LEAK_COLOUR if protocol == "seed_compat" else "black"
    fig.suptitle(figure_title(title, protocol), color=colour, fontsize="medium")


def _pct_value(top: object) -> float:
    """Numeric K of a ``Top %`` cell (``"5%"`` → 5.0); ``"global"`` sorts first as −inf."""
    text = str(top).strip()
    if text in ("global", "external", ""):
        return float("-inf")
    match = re.fullmatch(r"([0-9.eE+-]+)\s*%?", text)
    if match is None:
        raise ValueError(f"cannot read a percentage from Top % value {top!r}")
    return float(match.group(1))


def _stand_in(row: pd.Series) -> str:
    """The synthetic stand-in parts of a table row (``""`` when real or unknown)."""
    for col in ("Synthetic Stand-in", "synthetic_stand_in"):
        value = row.get(col, "")
        if isinstance(value, str) and value:
            return value
    return ""


def _baseline_label(baseline: str, stand_in: str) -> str:
    """Baseline name, marked when an embedding is a synthetic stand-in."""
    return f"{baseline} (synthetic {stand_in})" if stand_in else baseline


def _sorted_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Rows ordered by baseline, then numeric K (the global fit first)."""
    order = table.assign(_k=table["Top %"].map(_pct_value))
    return order.sort_values(["Baseline", "_k"], kind="stable").drop(columns="_k").reset_index(drop=True)


def _row_label(row: pd.Series) -> str:
    """``baseline · top K%`` with the synthetic stand-in marked."""
    return f"{_baseline_label(str(row['Baseline']), _stand_in(row))} · top {row['Top %']}"


def _ci(table: pd.DataFrame, value: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Point estimate and CI bounds of one value label (NaN bounds when the CI columns are absent)."""
    est = table[value].to_numpy(dtype=float)
    nan = np.full(len(table), np.nan)
    low = table[f"{value} CI low"].to_numpy(dtype=float) if f"{value} CI low" in table else nan
    high = table[f"{value} CI high"].to_numpy(dtype=float) if f"{value} CI high" in table else nan
    return est, low, high


def _whiskers(ax: plt.Axes, y: np.ndarray, low: np.ndarray, high: np.ndarray, colour: str) -> None:
    """Horizontal CI whiskers with end caps; rows without a finite CI get none."""
    ok = np.isfinite(low) & np.isfinite(high)
    if not ok.any():
        return
    ax.hlines(y[ok], low[ok], high[ok], color=colour, linewidth=1.2, zorder=2)
    ax.plot(np.concatenate([low[ok], high[ok]]), np.concatenate([y[ok], y[ok]]), "|", color=colour, markersize=6, zorder=2)


def _excludes_zero(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """True where a finite CI lies entirely above or entirely below 0."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(low) & np.isfinite(high) & ((low > 0) | (high < 0))


def _points(ax: plt.Axes, x: np.ndarray, y: np.ndarray, filled: np.ndarray, colour: str, marker: str) -> None:
    """Markers at ``(x, y)``: filled where ``filled``, open (white face) elsewhere."""
    for mask, face in ((filled, colour), (~filled, "white")):
        if mask.any():
            ax.scatter(x[mask], y[mask], marker=marker, s=36, facecolors=face, edgecolors=colour, linewidths=1.2, zorder=3)


# ---------------------------------------------------------------------------------------------- (1) forest


def _forest_panel(ax: plt.Axes, table: pd.DataFrame, dataset: str, show_knn: bool) -> bool:
    """One dataset's forest panel; returns whether kNN points were drawn."""
    rows = _sorted_rows(table)
    y = np.arange(len(rows), dtype=float)
    est, low, high = _ci(rows, "Improvement (r)")
    knn_drawn = show_knn and "kNN Improvement (r)" in rows
    offset = 0.18 if knn_drawn else 0.0
    _whiskers(ax, y - offset, low, high, _COLOURS["LSFT"])
    _points(ax, est, y - offset, _excludes_zero(low, high), _COLOURS["LSFT"], "o")
    if knn_drawn:
        k_est, k_low, k_high = _ci(rows, "kNN Improvement (r)")
        _whiskers(ax, y + offset, k_low, k_high, _COLOURS["kNN"])
        _points(ax, k_est, y + offset, _excludes_zero(k_low, k_high), _COLOURS["kNN"], "D")
    ax.axvline(0.0, color="black", linewidth=0.8, zorder=1)
    ax.set_yticks(y, [_row_label(r) for _, r in rows.iterrows()])
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_title(dataset)
    ax.set_xlabel("Δr = r(LSFT) − r(global fit)")
    ax.grid(axis="x", linewidth=0.3, alpha=0.6)
    return knn_drawn


@_styled
def forest_figure(
    tables: Mapping[str, pd.DataFrame],
    n_seeds: int,
    protocol: str = "default",
    show_knn: bool = True,
    confidence: float = 0.95,
) -> Figure:
    """Forest plot of the LSFT improvement in Pearson r, one panel per dataset.

    Parameters
    ----------
    tables
        ``{dataset: pooled performance table}``; each needs ``Baseline``, ``Top %``, ``Improvement (r)`` and
        its ``CI low``/``CI high`` columns; ``kNN Improvement (r)`` (with CI columns) is drawn beside when
        present and ``show_knn``; ``Synthetic Stand-in`` marks row labels.
    n_seeds
        Number of split seeds pooled in the tables (named in the title).
    protocol
        Protocol of the tables (``"default"`` or ``"seed_compat"``, which is labelled as leaking).
    show_knn
        Draw the kNN-mean improvement (``r(kNN) − r(global)``) beside each LSFT point.
    confidence
        Level of the tables' intervals (config ``statistics.confidence``), named in the labels.

    Returns
    -------
    Figure
        One row per baseline × K in each panel; points whose CI excludes 0 are filled, others open.
    """
    level = _level(confidence)
    if not tables:
        raise ValueError("forest_figure needs at least one dataset table")
    n_rows = max(len(t) for t in tables.values())
    fig, axes = plt.subplots(
        1, len(tables), figsize=(4.6 * len(tables) + 2.4, 0.32 * n_rows + 2.4), squeeze=False
    )
    knn_any = False
    for ax, (dataset, table) in zip(axes[0], tables.items()):
        knn_any |= _forest_panel(ax, table, dataset, show_knn)
    handles = [
        Line2D([], [], marker="o", linestyle="", color=_COLOURS["LSFT"], label=f"LSFT − global ({level} CI excludes 0)"),
        Line2D([], [], marker="o", linestyle="", markerfacecolor="white", color=_COLOURS["LSFT"], label="LSFT − global (CI includes 0)"),
    ]
    if knn_any:
        handles.append(Line2D([], [], marker="D", linestyle="", color=_COLOURS["kNN"], label="kNN mean − global (filled: CI excludes 0)"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize="small", frameon=False)
    seeds = f"{n_seeds} split seeds pooled" if n_seeds != 1 else "one split seed"
    _suptitle(fig, f"Improvement of LSFT over the global fit, mean Pearson r with {level} CI ({seeds})", protocol)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


# ---------------------------------------------------------------------------------------------- (2) local vs global

def _level(confidence: float) -> str:
    """``0.95`` → ``"95 %"``."""
    return f"{100 * confidence:g} %"


_LVG_SERIES = (("Baseline Pearson r", "global fit", "global"), ("Local Pearson r", "LSFT", "LSFT"), ("kNN Pearson r", "kNN mean", "kNN"))


@_styled
def local_vs_global_figure(
    table: pd.DataFrame, title: str, protocol: str = "default", confidence: float = 0.95
) -> Figure:
    """Mean Pearson r of the global fit, LSFT and the kNN mean per baseline, one panel per K.

    Parameters
    ----------
    table
        One dataset's performance table (per seed or pooled): ``Baseline``, ``Top %`` and, for
        ``Baseline Pearson r``, ``Local Pearson r``, ``kNN Pearson r``, the value with its ``CI low`` and
        ``CI high`` columns (absent CI columns or NaN bounds: no error bar).
    title
        First line of the figure title.
    protocol
        Protocol of the table (``"seed_compat"`` is labelled as leaking).
    confidence
        Level of the table's intervals (config ``statistics.confidence``), named in the legend.

    Returns
    -------
    Figure
        Horizontal bars with CI error bars.
    """
    rows = _sorted_rows(table)
    pcts = sorted(rows["Top %"].unique(), key=_pct_value)
    baselines = sorted(rows["Baseline"].unique())
    series = [s for s in _LVG_SERIES if s[0] in rows]
    height = 0.8 / len(series)
    fig, axes = plt.subplots(
        1, len(pcts), figsize=(3.3 * len(pcts) + 2.2, 0.5 * len(baselines) + 2.2), sharey=True, sharex=True, squeeze=False
    )
    y = np.arange(len(baselines), dtype=float)
    for ax, pct in zip(axes[0], pcts):
        sub = rows[rows["Top %"] == pct].set_index("Baseline").reindex(baselines)
        for i, (column, legend_label, key) in enumerate(series):
            pos = y + (i - (len(series) - 1) / 2) * height
            est, low, high = _ci(sub, column)
            ax.barh(pos, est, height=height * 0.92, color=_COLOURS[key], label=legend_label, zorder=2)
            _whiskers(ax, pos, low, high, "black")
        ax.axvline(0.0, color="black", linewidth=0.6)
        ax.set_title(f"top {pct}")
        ax.set_xlabel("mean Pearson r (Δ, all genes)")
        ax.grid(axis="x", linewidth=0.3, alpha=0.6)
    stand_in = rows.groupby("Baseline").first()
    labels = [_baseline_label(b, _stand_in(stand_in.loc[b])) for b in baselines]
    axes[0][0].set_yticks(y, labels)
    axes[0][0].set_ylim(len(baselines) - 0.5, -0.5)
    handles, names = axes[0][0].get_legend_handles_labels()
    handles.append(Line2D([], [], color="black", marker="|", label=f"{_level(confidence)} CI"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize="small", frameon=False)
    _suptitle(fig, title, protocol)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


# ---------------------------------------------------------------------------------------------- (3) progress bar

#: The progress bar's panels, in order (another metric the table has, e.g. the leaderboard's primary one, follows).
_METRIC_ORDER = tuple(label(m) for m in PROGRESS_METRICS)
#: The visible range of the gap axis (% of gap closed); bars beyond it are clipped with an arrow.
_GAP_LIMITS = (-100.0, 140.0)
#: Short names of the reference methods drawn on the gap axis.
_BOUND_NAMES = {
    "train mean": "train mean",
    "no change": "no change",
    "random perturbation embedding": "random emb.",
    "idealized baseline (uses test data)": "idealized (test data)",
    "sampling-noise ceiling": "noise ceiling",
}


def _gap_label(value: float) -> str:
    """``"23%"``; ``"0%"`` (never ``"-0%"``) for a score a hair below the WAP; ``"NA"`` for no gap."""
    if not np.isfinite(value):
        return "NA"
    rounded = int(np.round(value))
    return f"{0 if rounded == 0 else rounded}%"


def _progress_rows(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Rows of one metric: per baseline the global fit, then LSFT at each K, with that K's kNN score beside it."""
    sub = table[table["Metric"] == metric]
    knn = sub[sub["Method"] == "kNN"].set_index(["Baseline", "Top %"])
    rows = sub[sub["Method"].isin(["external", "global", "LSFT"])].copy()
    keys = list(zip(rows["Baseline"], rows["Top %"], strict=True))
    for column, source in (("kNN gap", "% of gap closed"), ("kNN gap SD", "% of gap closed SD")):
        rows[column] = [knn[source].get(k, np.nan) if source in knn.columns else np.nan for k in keys]
    rows = rows.assign(_k=rows["Top %"].map(_pct_value), _m=rows["Method"].map({"external": -1, "global": 0, "LSFT": 1}),
                       _external=rows["Method"] != "external")  # models of one's own first
    return (rows.sort_values(["_external", "Baseline", "_m", "_k"], kind="stable")
            .drop(columns=["_k", "_m", "_external"]).reset_index(drop=True))


def _progress_label(row: pd.Series) -> str:
    name = _baseline_label(str(row["Baseline"]), _stand_in(row))
    if row["Method"] == "external":
        return f"{name} (external model)"
    return f"{name} · global fit" if row["Method"] == "global" else f"{name} · LSFT top {row['Top %']}"


def _bound_positions(rows: pd.DataFrame) -> dict[str, float]:
    """Each null and cheater method's mean on the gap axis (% of gap closed), where the table has it."""
    if not len(rows):
        return {}
    first = rows.iloc[0]
    wap, bap = float(first["WAP"]), float(first["BAP"])
    lower = _lower_is_better(str(first["Metric"]))
    out = {}
    for method in _BOUND_NAMES:
        value = float(first.get(method, np.nan)) if method in rows.columns else np.nan
        position = float(gap_closed(value, wap, bap, lower))
        if np.isfinite(position):
            out[method] = position
    return out


def _lower_is_better(metric_label: str) -> bool:
    """Direction of a metric named by its table label (the registry's)."""
    return not from_label(metric_label).higher_is_better


def _bound_groups(positions: dict[str, float], low: float, high: float, width: float = 8.0) -> list[tuple[list[str], float]]:
    """Bounds inside ``[low, high]``, those within ``width`` of each other drawn as one line with one label."""
    groups: list[tuple[list[str], list[float]]] = []
    for name, x in sorted(((n, x) for n, x in positions.items() if low <= x <= high), key=lambda item: item[1]):
        if groups and x - groups[-1][1][-1] <= width:
            groups[-1][0].append(name)
            groups[-1][1].append(x)
        else:
            groups.append(([name], [x]))
    return [(names, float(np.mean(xs))) for names, xs in groups]


def _progress_panel(ax: plt.Axes, rows: pd.DataFrame, metric: str, show_labels: bool) -> None:
    """One metric on the gap axis: 0 = WAP, 100 = BAP; the bar runs from 0 to the % of gap closed."""
    y = np.arange(len(rows), dtype=float)
    low, high = _GAP_LIMITS
    gap = rows["% of gap closed"].to_numpy(dtype=float)
    sd = rows["% of gap closed SD"].to_numpy(dtype=float) if "% of gap closed SD" in rows.columns else np.full(len(rows), np.nan)
    colours = [_COLOURS.get(m, "#1f77b4") for m in rows["Method"]]
    ax.axvspan(0, 100, color="#f0f0f0", zorder=0)
    shown = np.clip(np.nan_to_num(gap, nan=0.0), low, high)
    ax.barh(y, shown, left=0, height=0.62, color=colours, alpha=0.6, zorder=2)
    ax.errorbar(np.clip(gap, low, high), y, xerr=np.where(np.isfinite(sd), sd, 0.0), fmt="none", ecolor="black",
                elinewidth=0.7, capsize=2, zorder=3)
    knn = rows["kNN gap"].to_numpy(dtype=float)
    ax.scatter(np.clip(knn, low, high), y, marker="D", s=14, color=_COLOURS["kNN"], edgecolor="black", linewidth=0.4,
               zorder=4)
    box = dict(boxstyle="square,pad=0.1", facecolor="white", edgecolor="none", alpha=0.8)
    for yi, value in zip(y, gap):
        if np.isfinite(value) and (value < low or value > high):  # clipped: an arrow at the edge and the number
            edge, step = (low, 1) if value < low else (high, -1)
            ax.annotate("", xy=(edge, yi), xytext=(edge + 14 * step, yi),
                        arrowprops=dict(arrowstyle="-|>", color="black", lw=0.8), zorder=5)
            ax.text(edge + 16 * step, yi, _gap_label(value), va="center", ha="left" if step > 0 else "right",
                    fontsize="x-small", zorder=5, bbox=box)
        else:
            ax.text(high - 2, yi, _gap_label(value), va="center", ha="right", fontsize="x-small", color="#333333",
                    bbox=box, zorder=5)
    # the bounds: WAP and BAP bind (0 and 100); the other null methods and the other cheater bound are drawn too
    first = rows.iloc[0] if len(rows) else None
    binding = set() if first is None else {m for col in ("WAP method", "BAP method") for m in str(first[col]).split(" / ")}
    for names, x in _bound_groups(_bound_positions(rows), low, high):
        bind = bool(binding & set(names))
        ax.axvline(x, color="#555555" if bind else "#999999", linewidth=0.8 if bind else 0.6,
                   linestyle="-" if bind else ":", zorder=1)
        ax.text(x, -0.9, ", ".join(_BOUND_NAMES[n] for n in names), rotation=90, ha="center", va="bottom",
                fontsize="xx-small", color="#333333" if bind else "#777777")
    ax.set_xlim(low, high)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_yticks(y, [_progress_label(r) for _, r in rows.iterrows()])
    ax.tick_params(axis="y", labelleft=show_labels)
    if first is not None:
        wap, bap = float(first["WAP"]), float(first["BAP"])
        direction = "lower is better" if _lower_is_better(metric) else "higher is better"
        ax.set_title(f"{metric} ({direction})\nWAP {wap:.3g} ({first['WAP method']})\nBAP {bap:.3g} ({first['BAP method']})",
                     fontsize="x-small", pad=92)
    ax.set_xlabel("% of gap closed (0 = WAP, 100 = BAP)")
    ax.grid(axis="x", linewidth=0.3, alpha=0.6)


@_styled
def progress_bar_figure(table: pd.DataFrame, title: str, protocol: str = "default") -> Figure:
    """Progress bars of one dataset: how much of the gap from WAP to BAP each method closes, one panel per metric.

    Parameters
    ----------
    table
        Progress-bar table (contract of :mod:`lsftbench.evaluation.progress_bar`): ``Baseline``, ``Top %``, ``Method``,
        ``Metric``, ``Score``, ``WAP``, ``WAP method``, ``BAP``, ``BAP method``, ``% of gap closed`` and the
        means of the null and cheater methods; pooled tables add ``% of gap closed SD``.
    title
        First line of the figure title.
    protocol
        Protocol of the table (``"seed_compat"`` is labelled as leaking).

    Returns
    -------
    Figure
        Every panel shares one axis, the % of the gap closed (0 = WAP, 100 = BAP; right is better for
        every metric, L2 and MAE included). A bar per baseline's global fit and per LSFT top-K, the kNN
        mean of the same neighbours as a diamond on the LSFT row, the SD across split seeds as a whisker;
        the bounds that do not bind (other null methods, the other cheater bound) as dotted lines.
        Bars beyond the axis are clipped with an arrow and their number.
    """
    shown = list(dict.fromkeys(table["Metric"]))
    metrics = [m for m in _METRIC_ORDER if m in shown] + [m for m in shown if m not in _METRIC_ORDER]
    if not metrics:
        raise ValueError(f"progress table has no rows for the metrics {_METRIC_ORDER}")
    panels = [_progress_rows(table, m) for m in metrics]
    n_rows = max(len(p) for p in panels)
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.0 * len(metrics) + 3.4, 0.3 * n_rows + 3.2), squeeze=False)
    for k, (ax, rows, metric) in enumerate(zip(axes[0], panels, metrics, strict=True)):
        _progress_panel(ax, rows, metric, show_labels=k == 0)
    handles: list[Patch | Line2D] = [
        Patch(facecolor="#f0f0f0", label="the gap: WAP (best null method) → BAP (tighter cheater bound)"),
        Patch(facecolor=_COLOURS["global"], alpha=0.6, label="global fit"),
        Patch(facecolor=_COLOURS["LSFT"], alpha=0.6, label="LSFT"),
        Line2D([], [], marker="D", color=_COLOURS["kNN"], markeredgecolor="black", linestyle="", label="kNN (same neighbours)"),
        Line2D([], [], color="black", marker="|", linestyle="", markersize=8, label="± SD across split seeds"),
        Line2D([], [], color="#999999", linestyle=":", label="a bound that does not bind"),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize="small", frameon=False)
    _suptitle(fig, title, protocol)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


# ---------------------------------------------------------------------------------------------- (4) distribution


@_styled
def improvement_distribution_figure(df: pd.DataFrame, title: str, protocol: str = "default") -> Figure:
    """Per-perturbation improvement ``r_local − r_global`` by baseline, one box per K.

    Parameters
    ----------
    df
        Per-perturbation frame (``baseline``, ``top_pct``, ``improvement_r``, optionally
        ``synthetic_stand_in``); rows of all split seeds are pooled into one box.
    title
        First line of the figure title.
    protocol
        Protocol of the frame (``"seed_compat"`` is labelled as leaking).
    """
    baselines = sorted(df["baseline"].unique())
    pcts = sorted(df["top_pct"].unique())
    # One row per baseline, one horizontal box per K: the figure grows in height with the baselines instead of
    # becoming very wide, and the labels stay readable at any count.
    fig, ax = plt.subplots(figsize=(8.0, max(3.2, 0.28 * len(baselines) * len(pcts) + 1.6)))
    height = 0.8 / len(pcts)
    colours = plt.get_cmap("viridis")(np.linspace(0.2, 0.9, len(pcts)))
    for k, pct in enumerate(pcts):
        data = [df.loc[(df["baseline"] == b) & (df["top_pct"] == pct), "improvement_r"].dropna().to_numpy() for b in baselines]
        pos = np.arange(len(baselines)) - (k - (len(pcts) - 1) / 2) * height
        parts = ax.boxplot(
            data, positions=pos, widths=height * 0.85, orientation="horizontal", patch_artist=True, manage_ticks=False,
            flierprops={"marker": ".", "markersize": 3, "alpha": 0.5},
            medianprops={"color": "black", "linewidth": 2.2},
        )
        for patch in parts["boxes"]:
            patch.set_facecolor(colours[k])
            patch.set_alpha(0.85)
        ax.plot([], [], color=colours[k], linewidth=8, label=f"top {pct:g}%")
    ax.axvline(0, color="black", linewidth=0.8, linestyle="--")
    first = df.groupby("baseline").first()
    ax.set_yticks(np.arange(len(baselines)), [_baseline_label(b, _stand_in(first.loc[b])) for b in baselines], fontsize=10)
    ax.invert_yaxis()  # first baseline on top
    ax.tick_params(axis="x", labelsize=9)
    ax.set_xlabel("Δr = r(LSFT) − r(global), per test perturbation (black bar: median)", fontsize=10)
    ax.grid(axis="x", linewidth=0.4, alpha=0.5)
    ax.legend(fontsize="small", loc="best")
    _suptitle(fig, title, protocol)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------- (5) leaderboard

_KIND_STYLE = {
    "external model": ("#2ca02c", "*", 90),
    "global fit": ("#7f7f7f", "o", 28),
    "LSFT": ("#1f77b4", "o", 28),
    "kNN": ("#ff7f0e", "D", 22),
    "null method": ("black", "x", 30),
    "uses test data": (_LEAK_COLOUR, "^", 34),
}


def _bound_band(ax: plt.Axes, values: Sequence[float], colour: str, label: str) -> None:
    """A vertical band over the per-seed values of a bound (a line for one seed)."""
    values = np.asarray([v for v in values if np.isfinite(v)], dtype=float)
    if not values.size:
        return
    low, high = values.min(), values.max()
    if high > low:
        ax.axvspan(low, high, color=colour, alpha=0.18, zorder=0, label=label)
    else:
        ax.axvline(low, color=colour, alpha=0.6, linewidth=2, zorder=0, label=label)


@_styled
def leaderboard_figure(
    table: pd.DataFrame, progress: Sequence[pd.DataFrame], metric: str, title: str, protocol: str = "default",
    confidence: float = 0.95,
) -> Figure:
    """Every method of a leaderboard (:func:`lsftbench.report.leaderboard.leaderboard_table`) as a dot with its
    interval, in the leaderboard's order; the WAP and BAP of the progress bar as bands over their per-seed values.

    ``metric`` is the leaderboard's column label (e.g. ``"Pearson r"``); ``progress`` the per-seed progress-bar
    tables (their WAP and BAP rows of that metric).
    """
    rows = table.dropna(subset=[metric]).reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(8.5, 0.24 * len(rows) + 2.4))
    y = np.arange(len(rows), dtype=float)
    waps = [float(t.loc[t["Metric"] == metric, "WAP"].iloc[0]) for t in progress if (t["Metric"] == metric).any()]
    baps = [float(t.loc[t["Metric"] == metric, "BAP"].iloc[0]) for t in progress if (t["Metric"] == metric).any()]
    _bound_band(ax, waps, "#d62728", "WAP (best null method), range over seeds")
    _bound_band(ax, baps, "#2ca02c", "BAP (tighter cheater bound), range over seeds")
    for kind, (colour, marker, size) in _KIND_STYLE.items():
        sel = (rows["Kind"] == kind).to_numpy()
        if not sel.any():
            continue
        est = rows.loc[sel, metric].to_numpy(dtype=float)
        low = rows.loc[sel, f"{metric} CI low"].to_numpy(dtype=float) if f"{metric} CI low" in rows else est
        high = rows.loc[sel, f"{metric} CI high"].to_numpy(dtype=float) if f"{metric} CI high" in rows else est
        ax.errorbar(est, y[sel], xerr=[np.nan_to_num(est - low), np.nan_to_num(high - est)], fmt="none", ecolor=colour,
                    elinewidth=0.8, alpha=0.8, zorder=2)
        ax.scatter(est, y[sel], marker=marker, s=size, color=colour, zorder=3, label=kind)
    labels = []
    for _, r in rows.iterrows():
        note = " (external: not audited for leakage)" if r["Kind"] == "external model" else (
            " (uses test data)" if r["Kind"] == "uses test data" and "uses test data" not in str(r["Method"]) else "")
        labels.append(f"{int(r['Position'])}. {r['Method']}{note}")
    ax.set_yticks(y, labels, fontsize="x-small")
    ax.set_ylim(len(rows) - 0.5, -0.5)
    lower = _lower_is_better(metric)
    ax.set_xlabel(f"mean {metric} over the common test set with {_level(confidence)} CI "
                  f"({'lower' if lower else 'higher'} is better)")
    ax.grid(axis="x", linewidth=0.3, alpha=0.6)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.8 / max(len(rows), 1) - 0.04), ncol=3, fontsize="x-small",
              frameon=False)
    _suptitle(fig, title, protocol)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------- saving


def save_figure(fig: Figure, paths: Sequence[str | os.PathLike[str]], dpi: int = 150, provenance: str | None = None) -> None:
    """Save one figure to several files (format from the suffix), atomically, then close it.

    PNG and SVG files carry no timestamp or software version and SVG ids use a fixed hash salt, so the
    same figure gives the same bytes in every run and process. ``provenance`` (the settings the figure was
    made with) is printed small at the bottom and stored in the file's ``Description`` metadata.
    """
    with plt.rc_context(RC_PARAMS):
        bbox = None
        if provenance:  # under the figure; the bounding box is measured once for every format (no second draw)
            text = "\n".join(textwrap.wrap(provenance, width=int(fig.get_figwidth() * 19)))
            fig.text(0.005, -0.005, text, fontsize=5.5, color="#555555", ha="left", va="top", wrap=False)
            bbox = fig.get_tightbbox(fig.canvas.get_renderer()).padded(0.05)
        for path in paths:
            fmt = os.path.splitext(str(path))[1][1:].lower()
            metadata = dict(_METADATA.get(fmt) or {})
            if provenance and fmt in ("png", "svg", "pdf"):
                metadata["Description"] = provenance
            with atomic_path(path) as tmp:
                fig.savefig(tmp, dpi=dpi, format=fmt, metadata=metadata or None, bbox_inches=bbox)
    plt.close(fig)


def dataset_label(dataset: str, synthetic: bool) -> str:
    """A dataset's name in figure titles: a synthetic stand-in says so."""
    return f"{dataset} (synthetic data)" if synthetic else dataset


def seeds_label(seeds: Sequence[int]) -> str:
    """``split seeds 1, 2 pooled`` / ``split seed 1``: what a figure's numbers are over."""
    seeds = list(seeds)
    if len(seeds) > 1:
        return f"split seeds {', '.join(map(str, seeds))} pooled"
    return f"split seed {seeds[0]}" if seeds else "split seeds pooled"


# ---------------------------------------------------------------------------------------------- the rules' figures


def write_dataset_figures(
    performance: str | os.PathLike[str],
    per_perturbation: str | os.PathLike[str],
    progress: str | os.PathLike[str],
    outputs: Sequence[str | os.PathLike[str]],
    *,
    dataset: str,
    protocol: str,
    confidence: float = 0.95,
    leaderboard: str | os.PathLike[str] | None = None,
    seed_progress: Sequence[str | os.PathLike[str]] = (),
    primary_metric: str = "Pearson r",
    seeds: Sequence[int] = (),
    synthetic: bool = False,
    provenance: str | None = None,
) -> None:
    """The figures of one (dataset, protocol) (rule ``figures``), each to the ``outputs`` named after it.

    ``performance``, ``progress`` and ``leaderboard`` are the pooled ``lsft_performance.csv``,
    ``progress_bar.csv`` and ``leaderboard.csv``, ``per_perturbation`` the dataset's
    ``per_perturbation.parquet``, ``seed_progress`` each seed's ``progress_bar.csv`` (the bounds' spread).
    A ``synthetic`` dataset says so in every title; ``provenance`` goes under every figure.
    """
    name_text = dataset_label(dataset, synthetic)
    seeds_text = f" ({seeds_label(seeds)})"
    figures = {
        "leaderboard": lambda: leaderboard_figure(
            pd.read_csv(leaderboard), [pd.read_csv(path) for path in seed_progress], primary_metric,
            f"Leaderboard: {name_text}{seeds_text}", protocol=protocol, confidence=confidence,
        ),
        "local_vs_global": lambda: local_vs_global_figure(
            pd.read_csv(performance), f"LSFT vs global fit: {name_text}{seeds_text}", protocol=protocol,
            confidence=confidence,
        ),
        "improvement_distribution": lambda: improvement_distribution_figure(
            pd.read_parquet(per_perturbation), f"Per-perturbation improvement: {name_text}{seeds_text}", protocol=protocol
        ),
        "progress_bar": lambda: progress_bar_figure(
            pd.read_csv(progress), f"Progress bar: {name_text}{seeds_text}", protocol=protocol
        ),
    }
    for name, make in figures.items():
        paths = [o for o in outputs if Path(o).stem == name]
        if paths:
            save_figure(make(), paths, provenance=provenance)


def write_forest_figure(
    performance: Mapping[str, str | os.PathLike[str]], outputs: Sequence[str | os.PathLike[str]], *, n_seeds: int,
    protocol: str, confidence: float = 0.95, synthetic: Sequence[str] = (), provenance: str | None = None,
) -> None:
    """The forest plot across datasets (rule ``forest_figure``) from each dataset's pooled performance table;
    the ``synthetic`` datasets are marked in their panel titles."""
    tables = {dataset_label(dataset, dataset in synthetic): pd.read_csv(path) for dataset, path in performance.items()}
    save_figure(forest_figure(tables, n_seeds=n_seeds, protocol=protocol, confidence=confidence), list(outputs),
                provenance=provenance)
