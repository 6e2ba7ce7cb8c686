"""Aggregation of per-perturbation results into the LSFT note's tables (SPEC section 8)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = [
    "protocol_label",
    "per_perturbation",
    "performance_table",
    "fraction_improved_table",
    "summary_table",
    "combined_table",
    "to_markdown",
]

# (output column, per-perturbation column, aggregation)
_PERFORMANCE = [
    ("Local Pearson r", "local_pearson_r"),
    ("Baseline Pearson r", "global_pearson_r"),
    ("Improvement (r)", "improvement_r"),
    ("Local L2", "local_l2"),
    ("Baseline L2", "global_l2"),
    ("Improvement (L2)", "improvement_l2"),
    ("Train Size", "train_size"),
    ("Mean Similarity", "mean_similarity"),
    ("kNN Pearson r", "knn_pearson_r"),
    ("kNN L2", "knn_l2"),
    ("Local Pearson r (top 1000)", "local_pearson_delta_top1000"),
    ("Baseline Pearson r (top 1000)", "global_pearson_delta_top1000"),
    ("Local L2 (top 1000)", "local_l2_top1000"),
    ("Baseline L2 (top 1000)", "global_l2_top1000"),
]


def per_perturbation(lsft_rows: pd.DataFrame, global_rows: pd.DataFrame) -> pd.DataFrame:
    """Join LSFT shard rows with the global fit's metrics and compute improvements.

    ``Δr = r_local − r_global``, ``ΔL2 = L2_global − L2_local`` (positive = better), likewise for the
    kNN reference and the top-1000-gene metrics.
    """
    glob = global_rows.rename(columns={m: f"global_{m}" for m in ("pearson_r", "l2", "pearson_delta_top1000", "l2_top1000")})
    keep = ["baseline", "condition"] + [c for c in glob.columns if c.startswith("global_")]
    keep += [c for c in ("synthetic_stand_in",) if c in glob.columns]
    df = lsft_rows.merge(glob[keep], on=["baseline", "condition"], how="left", validate="many_to_one")
    if df["global_pearson_r"].isna().all() and len(df):
        raise ValueError("LSFT rows do not match any global-fit rows (baseline/condition mismatch)")
    df["improvement_r"] = df["local_pearson_r"] - df["global_pearson_r"]
    df["improvement_l2"] = df["global_l2"] - df["local_l2"]
    df["knn_improvement_r"] = df["knn_pearson_r"] - df["global_pearson_r"]
    df["knn_improvement_l2"] = df["global_l2"] - df["knn_l2"]
    df["improvement_r_top1000"] = df["local_pearson_delta_top1000"] - df["global_pearson_delta_top1000"]
    df["improvement_l2_top1000"] = df["global_l2_top1000"] - df["local_l2_top1000"]
    return df.sort_values(["baseline", "top_pct", "condition"], kind="stable").reset_index(drop=True)


def _group(df: pd.DataFrame, extra: Sequence[str] = ()) -> pd.core.groupby.DataFrameGroupBy:
    return df.groupby([*extra, "baseline", "top_pct"], sort=True)


def _pct(value: float) -> str:
    return f"{value:g}%"


def performance_table(df: pd.DataFrame, by_dataset: bool = False) -> pd.DataFrame:
    """Table 1: means per (baseline, K) in the seed's column layout, then kNN, top-1000 and coverage."""
    extra = ["dataset"] if by_dataset else []
    g = _group(df, extra)
    out = g[[col for _, col in _PERFORMANCE]].mean()
    out.columns = [name for name, _ in _PERFORMANCE]
    out["Test Perturbations"] = g.size()
    out["Genes"] = g["n_genes"].first()
    if "synthetic_stand_in" in df.columns:
        out["Synthetic Stand-in"] = g["synthetic_stand_in"].first()
    out = out.reset_index().rename(columns={"baseline": "Baseline", "top_pct": "Top %", "dataset": "Dataset"})
    out["Top %"] = out["Top %"].map(_pct)
    return out


def fraction_improved_table(df: pd.DataFrame) -> pd.DataFrame:
    """Table 2: share of test perturbations whose local fit beats the global one (improvement > 0)."""
    g = _group(df)
    out = pd.DataFrame(
        {
            "Fraction Improved (Pearson r)": g["improvement_r"].apply(lambda s: float((s > 0).mean())),
            "Fraction Improved (L2)": g["improvement_l2"].apply(lambda s: float((s > 0).mean())),
            "kNN Fraction Improved (Pearson r)": g["knn_improvement_r"].apply(lambda s: float((s > 0).mean())),
            "kNN Fraction Improved (L2)": g["knn_improvement_l2"].apply(lambda s: float((s > 0).mean())),
        }
    ).reset_index()
    out = out.rename(columns={"baseline": "Baseline", "top_pct": "Top %"})
    out["Top %"] = out["Top %"].map(_pct)
    return out


def protocol_label(protocol: str) -> str:
    """How a protocol is named in every table and figure; the leaking one says so."""
    if protocol == "seed_compat":
        from .seed_compat import LEAK_LABEL

        return LEAK_LABEL
    return "default (SPEC sections 2-6): no test perturbation's expression is used for its own prediction"


def summary_table(
    df: pd.DataFrame, coverage: pd.DataFrame, skipped: dict[str, str], protocol: str = "default"
) -> pd.DataFrame:
    """Table 3: summary statistics as (Statistic, Value) rows."""
    perf = performance_table(df)
    best = perf.loc[perf["Local Pearson r"].idxmax()] if len(perf) else None
    rows = [
        ("Protocol", protocol_label(protocol)),
        ("Test perturbations", int(coverage["n_test"].max()) if len(coverage) else 0),
        ("Overall mean improvement (Pearson r)", f"{df['improvement_r'].mean():.4f}"),
        ("Overall mean improvement (L2)", f"{df['improvement_l2'].mean():.4f}"),
        ("Overall mean kNN improvement (Pearson r)", f"{df['knn_improvement_r'].mean():.4f}"),
        (
            "Best configuration (highest local Pearson r)",
            f"{best['Baseline']} at {best['Top %']} (local r {best['Local Pearson r']:.4f}, improvement {best['Improvement (r)']:.4f})"
            if best is not None
            else "none",
        ),
    ]
    for _, row in coverage.iterrows():
        rows.append(
            (
                f"Coverage of {row['baseline']}",
                f"{row['n_test_predictable']} of {row['n_test']} test perturbations predictable; {row['n_genes']} genes",
            )
        )
    if "synthetic_stand_in" in df.columns:
        for name, parts in df.groupby("baseline")["synthetic_stand_in"].first().items():
            if parts:
                rows.append((f"Synthetic stand-in in {name}", f"{parts} embedding from a generated stand-in, not real model weights"))
    for name, why in skipped.items():
        rows.append((f"Not run: {name}", why))
    return pd.DataFrame(rows, columns=["Statistic", "Value"])


def combined_table(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Table 1 across datasets, with a leading Dataset column."""
    df = pd.concat([f.assign(dataset=name) for name, f in frames.items()], ignore_index=True)
    return performance_table(df, by_dataset=True)


def to_markdown(df: pd.DataFrame, title: str | None = None, note: str | None = None) -> str:
    """Render a table as GitHub Markdown (floats to 4 decimals, fraction columns as percentages)."""

    def fmt(col: str, value: object) -> str:
        if isinstance(value, (float, np.floating)):
            if np.isnan(value):
                return "NA"
            return f"{100 * value:.2f}%" if col.startswith(("Fraction", "kNN Fraction")) else f"{value:.4f}"
        return str(value)

    lines = []
    if title:
        lines += [f"## {title}", ""]
    if note:
        lines += [note, ""]
    lines.append("| " + " | ".join(df.columns) + " |")
    lines.append("|" + "|".join("---" for _ in df.columns) + "|")
    for _, row in df.iterrows():
        lines.append("| " + " | ".join(fmt(c, row[c]) for c in df.columns) + " |")
    return "\n".join(lines) + "\n"
