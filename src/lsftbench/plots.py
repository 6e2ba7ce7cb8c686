"""Figures of one dataset's LSFT results (matplotlib, Agg backend)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .io import atomic_path  # noqa: E402

__all__ = ["local_vs_global_figure", "improvement_distribution_figure", "save_figure"]


def _label(df: pd.DataFrame, baseline: str) -> str:
    """Baseline name, marked when an embedding is a synthetic stand-in."""
    if "synthetic_stand_in" in df.columns:
        parts = df.loc[df["baseline"] == baseline, "synthetic_stand_in"]
        if len(parts) and parts.iloc[0]:
            return f"{baseline} (synthetic {parts.iloc[0]})"
    return baseline


def _pct_order(df: pd.DataFrame) -> list[float]:
    return sorted(df["top_pct"].unique())


def local_vs_global_figure(df: pd.DataFrame, title: str) -> plt.Figure:
    """Mean Pearson r per baseline: global fit, and LSFT and kNN for each K."""
    baselines = sorted(df["baseline"].unique())
    pcts = _pct_order(df)
    fig, axes = plt.subplots(1, len(pcts), figsize=(3.2 * len(pcts) + 1.5, 0.45 * len(baselines) + 1.8), sharey=True, squeeze=False)
    y = np.arange(len(baselines))
    for ax, pct in zip(axes[0], pcts):
        sub = df[df["top_pct"] == pct].groupby("baseline")[["global_pearson_r", "local_pearson_r", "knn_pearson_r"]].mean()
        sub = sub.reindex(baselines)
        ax.barh(y - 0.27, sub["global_pearson_r"], height=0.26, label="global fit", color="#888888")
        ax.barh(y, sub["local_pearson_r"], height=0.26, label="LSFT", color="#1f77b4")
        ax.barh(y + 0.27, sub["knn_pearson_r"], height=0.26, label="kNN mean", color="#ff7f0e")
        ax.set_title(f"top {pct:g}%")
        ax.set_xlabel("mean Pearson r (Δ, all genes)")
        ax.axvline(0, color="black", linewidth=0.5)
    axes[0][0].set_yticks(y, [_label(df, b) for b in baselines])
    axes[0][0].invert_yaxis()
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize="small", frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


def improvement_distribution_figure(df: pd.DataFrame, title: str) -> plt.Figure:
    """Per-perturbation improvement ``r_local − r_global`` by baseline, one box per K."""
    baselines = sorted(df["baseline"].unique())
    pcts = _pct_order(df)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(baselines) * len(pcts) + 2), 6.0))
    width = 0.8 / len(pcts)
    colors = plt.get_cmap("viridis")(np.linspace(0.15, 0.85, len(pcts)))
    for k, pct in enumerate(pcts):
        data = [
            df.loc[(df["baseline"] == b) & (df["top_pct"] == pct), "improvement_r"].dropna().to_numpy() for b in baselines
        ]
        pos = np.arange(len(baselines)) + (k - (len(pcts) - 1) / 2) * width
        parts = ax.boxplot(data, positions=pos, widths=width * 0.9, patch_artist=True, showfliers=True, manage_ticks=False)
        for patch in parts["boxes"]:
            patch.set_facecolor(colors[k])
        ax.plot([], [], color=colors[k], linewidth=6, label=f"top {pct:g}%")
    ax.axhline(0, color="black", linewidth=0.7)
    ax.set_xticks(np.arange(len(baselines)), [_label(df, b) for b in baselines], rotation=35, ha="right")
    ax.set_ylabel("Δr = r(LSFT) − r(global)")
    ax.legend(fontsize="small")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def save_figure(fig: plt.Figure, paths: Sequence[str | os.PathLike[str]]) -> None:
    """Save one figure to several files (format from the suffix), atomically, then close it."""
    for path in paths:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=150, format=os.path.splitext(str(path))[1][1:])
    plt.close(fig)
