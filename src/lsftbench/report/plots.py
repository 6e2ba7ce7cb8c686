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

from ..io import atomic_path  # noqa: E402
from .tables import protocol_label  # noqa: E402

__all__ = [
    "RC_PARAMS",
    "forest_figure",
    "local_vs_global_figure",
    "progress_bar_figure",
    "improvement_distribution_figure",
    "figure_title",
    "save_figure",
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

_COLOURS = {"global": "#7f7f7f", "LSFT": "#1f77b4", "kNN": "#ff7f0e"}
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
    if text == "global":
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
    seeds = f"{n_seeds} split seed{'s' if n_seeds != 1 else ''} pooled"
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
        for i, (column, label, key) in enumerate(series):
            pos = y + (i - (len(series) - 1) / 2) * height
            est, low, high = _ci(sub, column)
            ax.barh(pos, est, height=height * 0.92, color=_COLOURS[key], label=label, zorder=2)
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

_METRIC_ORDER = ("Pearson r", "L2")


def _progress_rows(table: pd.DataFrame, metric: str, methods: Sequence[str]) -> pd.DataFrame:
    """Rows of one metric: per baseline the global fit, then each method by K."""
    sub = table[(table["Metric"] == metric) & table["Method"].isin(methods)]
    sub = sub.assign(
        _k=sub["Top %"].map(_pct_value), _m=sub["Method"].map({m: i for i, m in enumerate(methods)})
    )
    return sub.sort_values(["Baseline", "_m", "_k"], kind="stable").drop(columns=["_k", "_m"]).reset_index(drop=True)


def _progress_label(row: pd.Series) -> str:
    name = _baseline_label(str(row["Baseline"]), _stand_in(row))
    if row["Method"] == "global":
        return f"{name} · global fit"
    return f"{name} · {row['Method']} top {row['Top %']}"


def _mark_bounds(ax: plt.Axes, wap: np.ndarray, bap: np.ndarray, wap_name: str, bap_name: str) -> None:
    """Name the WAP and BAP on a top axis when every row of the panel shares them."""
    if len(wap) == 0 or np.ptp(wap) > 0 or np.ptp(bap) > 0 or not np.isfinite([wap[0], bap[0]]).all():
        return
    top = ax.secondary_xaxis("top")
    top.set_xticks([wap[0], bap[0]], [f"WAP\n({wap_name})", f"BAP\n({bap_name})"], fontsize="x-small")
    ax.axvline(wap[0], color="#9a9a9a", linewidth=0.6, linestyle="--", zorder=0)
    ax.axvline(bap[0], color="#9a9a9a", linewidth=0.6, linestyle="--", zorder=0)


def _progress_panel(ax: plt.Axes, rows: pd.DataFrame, metric: str) -> None:
    """Bars from WAP to BAP, the filled part from WAP to the score, the score marked and annotated."""
    y = np.arange(len(rows), dtype=float)
    wap, bap, score = (rows[c].to_numpy(dtype=float) for c in ("WAP", "BAP", "Score"))
    colours = [_COLOURS.get(m, "#1f77b4") for m in rows["Method"]]
    ax.barh(y, bap - wap, left=wap, height=0.62, color="#e6e6e6", edgecolor="#9a9a9a", linewidth=0.6, zorder=1)
    ax.barh(y, score - wap, left=wap, height=0.62, color=colours, alpha=0.55, zorder=2)
    ax.scatter(score, y, marker="|", s=160, color="black", linewidths=1.6, zorder=3)
    for yi, gap in zip(y, rows["% of gap closed"].to_numpy(dtype=float)):
        text = "NA" if not np.isfinite(gap) else f"{gap:.0f}% of gap closed"
        ax.annotate(text, xy=(1.02, yi), xycoords=("axes fraction", "data"), va="center", fontsize="small")
    ax.set_yticks(y, [_progress_label(r) for _, r in rows.iterrows()])
    ax.set_ylim(len(rows) - 0.5, -0.5)
    if metric == "L2":
        ax.invert_xaxis()
        ax.set_xlabel("mean L2 (lower is better; axis reversed so right = better)")
    else:
        ax.set_xlabel(f"mean {metric} (higher is better)")
    wap_names, bap_names = (", ".join(sorted(set(rows[c].astype(str)))) for c in ("WAP method", "BAP method"))
    ax.set_title(f"{metric}\nWAP: {wap_names} · BAP: {bap_names}", fontsize="small")
    _mark_bounds(ax, wap, bap, wap_names, bap_names)
    ax.grid(axis="x", linewidth=0.3, alpha=0.6)


@_styled
def progress_bar_figure(
    table: pd.DataFrame, title: str, protocol: str = "default", methods: Sequence[str] = ("global", "LSFT")
) -> Figure:
    """Progress bars of one dataset: each baseline × K spanning WAP → BAP, one panel per metric.

    Parameters
    ----------
    table
        Progress-bar table (contract of :mod:`lsftbench.evaluation.progress_bar`): ``Baseline``, ``Top %``, ``Method``,
        ``Metric``, ``Score``, ``WAP``, ``WAP method``, ``BAP``, ``BAP method``, ``% of gap closed``.
    title
        First line of the figure title.
    protocol
        Protocol of the table (``"seed_compat"`` is labelled as leaking).
    methods
        Methods drawn, in this order within a baseline (``"global"``, ``"LSFT"``, ``"kNN"``).

    Returns
    -------
    Figure
        The grey bar is the WAP → BAP gap; the coloured part runs from the WAP to the score (black tick),
        annotated with the percentage of the gap closed. The BAP is named after its ``BAP method``
        (``idealized baseline (uses test data)`` or ``sampling-noise ceiling``).
    """
    metrics = [m for m in _METRIC_ORDER if m in set(table["Metric"])]
    if not metrics:
        raise ValueError(f"progress table has no rows for the metrics {_METRIC_ORDER}")
    panels = [_progress_rows(table, m, list(methods)) for m in metrics]
    n_rows = max(len(p) for p in panels)
    fig, axes = plt.subplots(1, len(metrics), figsize=(6.2 * len(metrics) + 1.5, 0.34 * n_rows + 2.6), squeeze=False)
    for ax, rows, metric in zip(axes[0], panels, metrics):
        _progress_panel(ax, rows, metric)
    handles: list[Patch | Line2D] = [Patch(facecolor="#e6e6e6", edgecolor="#9a9a9a", label="gap: WAP (worst acceptable) → BAP (best achievable)")]
    handles += [Patch(facecolor=_COLOURS[m], alpha=0.55, label=f"{'global fit' if m == 'global' else m}: WAP → score") for m in methods if m in _COLOURS]
    handles.append(Line2D([], [], color="black", marker="|", linestyle="", markersize=10, label="score"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize="small", frameon=False)
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
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(baselines) * len(pcts) + 2), 6.0))
    width = 0.8 / len(pcts)
    colours = plt.get_cmap("viridis")(np.linspace(0.15, 0.85, len(pcts)))
    for k, pct in enumerate(pcts):
        data = [df.loc[(df["baseline"] == b) & (df["top_pct"] == pct), "improvement_r"].dropna().to_numpy() for b in baselines]
        pos = np.arange(len(baselines)) + (k - (len(pcts) - 1) / 2) * width
        parts = ax.boxplot(data, positions=pos, widths=width * 0.9, patch_artist=True, showfliers=True, manage_ticks=False)
        for patch in parts["boxes"]:
            patch.set_facecolor(colours[k])
        ax.plot([], [], color=colours[k], linewidth=6, label=f"top {pct:g}%")
    ax.axhline(0, color="black", linewidth=0.7)
    first = df.groupby("baseline").first()
    ax.set_xticks(np.arange(len(baselines)), [_baseline_label(b, _stand_in(first.loc[b])) for b in baselines], rotation=35, ha="right")
    ax.set_ylabel("Δr = r(LSFT) − r(global)")
    ax.legend(fontsize="small")
    _suptitle(fig, title, protocol)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------- saving


def save_figure(fig: Figure, paths: Sequence[str | os.PathLike[str]], dpi: int = 150) -> None:
    """Save one figure to several files (format from the suffix), atomically, then close it.

    PNG and SVG files carry no timestamp or software version and SVG ids use a fixed hash salt, so the
    same figure gives the same bytes in every run and process.
    """
    with plt.rc_context(RC_PARAMS):
        for path in paths:
            fmt = os.path.splitext(str(path))[1][1:].lower()
            with atomic_path(path) as tmp:
                fig.savefig(tmp, dpi=dpi, format=fmt, metadata=_METADATA.get(fmt))
    plt.close(fig)


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
) -> None:
    """The figures of one (dataset, protocol) (rule ``figures``), each to the ``outputs`` named after it.

    ``performance`` and ``progress`` are the pooled ``lsft_performance.csv`` and ``progress_bar.csv``,
    ``per_perturbation`` the dataset's ``per_perturbation.parquet``.
    """
    figures = {
        "local_vs_global": lambda: local_vs_global_figure(
            pd.read_csv(performance), f"LSFT vs global fit: {dataset} (split seeds pooled)", protocol=protocol,
            confidence=confidence,
        ),
        "improvement_distribution": lambda: improvement_distribution_figure(
            pd.read_parquet(per_perturbation), f"Per-perturbation improvement: {dataset}", protocol=protocol
        ),
        "progress_bar": lambda: progress_bar_figure(
            pd.read_csv(progress), f"Progress bar: {dataset} (split seeds pooled)", protocol=protocol
        ),
    }
    for name, make in figures.items():
        save_figure(make(), [o for o in outputs if Path(o).stem == name])


def write_forest_figure(
    performance: Mapping[str, str | os.PathLike[str]], outputs: Sequence[str | os.PathLike[str]], *, n_seeds: int,
    protocol: str, confidence: float = 0.95,
) -> None:
    """The forest plot across datasets (rule ``forest_figure``) from each dataset's pooled performance table."""
    tables = {dataset: pd.read_csv(path) for dataset, path in performance.items()}
    save_figure(forest_figure(tables, n_seeds=n_seeds, protocol=protocol, confidence=confidence), list(outputs))
