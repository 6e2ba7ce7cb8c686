"""Reading one (dataset, protocol)'s global fits and LSFT shards back for the tables (SPEC 7, 7.1).

The rank metrics compare each test perturbation with all others, so they are computed here, once
all shards exist, over the common test set of each split seed (the perturbations every baseline
can predict) from the predictions the fit and LSFT jobs saved beside their metrics.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..evaluation.metrics import mode_collapse, rank_metrics
from ..evaluation.statistics import common_test_set
from .tables import per_perturbation

__all__ = ["DatasetFrames", "dataset_frames", "unpredictable_frame", "add_rank_columns", "add_mode_collapse", "progress_tables"]


@dataclass
class DatasetFrames:
    """What the tables of one (dataset, protocol) are made from."""

    per_perturbation: pd.DataFrame  # one row per (seed, baseline, K, test perturbation), ranks included
    coverage: pd.DataFrame  # per (seed, baseline): n_test, n_test_predictable, n_genes
    unpredictable: pd.DataFrame  # seed, baseline, condition, reason
    common_sizes: dict[int, int]  # common test set size per seed


def _predictions_path(metrics_path: str | os.PathLike[str]) -> str:
    """The ``.npz`` of predictions written beside a fit's or shard's metrics ``.parquet``."""
    return str(Path(metrics_path).with_suffix(".npz"))


def dataset_frames(
    global_metrics: Sequence[str | os.PathLike[str]],
    global_predictions: Sequence[str | os.PathLike[str]],
    lsft_metrics: Sequence[str | os.PathLike[str]],
    distance: str = "l2",
) -> DatasetFrames:
    """Read every seed's global fits and LSFT shards, join them and add the rank metrics.

    ``global_predictions`` are the fits' ``.npz`` files in the order of ``global_metrics``; each LSFT
    shard's predictions are the ``.npz`` beside its ``.parquet``.
    """
    glob = pd.concat(
        [pd.read_parquet(m).assign(_predictions=str(pr)) for m, pr in zip(global_metrics, global_predictions, strict=True)],
        ignore_index=True,
    )
    lsft_rows = pd.concat(
        [pd.read_parquet(path).assign(_predictions=_predictions_path(path)) for path in lsft_metrics], ignore_index=True
    )
    fit_paths = {(int(s), b): path for (s, b), path in glob.groupby(["seed", "baseline"])["_predictions"].first().items()}
    shard_paths = {
        (int(s), b, float(k)): sorted(set(paths))
        for (s, b, k), paths in lsft_rows.groupby(["seed", "baseline", "top_pct"])["_predictions"]
    }
    glob, lsft_rows = glob.drop(columns="_predictions"), lsft_rows.drop(columns="_predictions")
    df = per_perturbation(lsft_rows, glob)
    common = common_test_set(df)
    common_sets = {int(s): set(g["condition"]) for s, g in common.groupby("seed")}
    df = add_rank_columns(df, fit_paths, shard_paths, common_sets, distance=distance)
    coverage = glob.groupby(["seed", "baseline"], sort=True)[["n_test", "n_test_predictable", "n_genes"]].first().reset_index()
    return DatasetFrames(
        per_perturbation=df,
        coverage=coverage,
        unpredictable=unpredictable_frame(fit_paths),
        common_sizes={s: len(c) for s, c in sorted(common_sets.items())},
    )


def _npz(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def unpredictable_frame(fit_paths: Mapping[tuple[int, str], str | os.PathLike[str]]) -> pd.DataFrame:
    """``seed, baseline, condition, reason`` for every test perturbation a baseline cannot predict.

    ``fit_paths[(seed, baseline)]`` is the global fit's predictions ``.npz`` (its ``not_predictable`` JSON).
    """
    rows = []
    for (seed, baseline), path in fit_paths.items():
        reasons = json.loads(str(_npz(path)["not_predictable"]))
        rows += [(seed, baseline, cond, why) for cond, why in reasons.items()]
    return pd.DataFrame(rows, columns=["seed", "baseline", "condition", "reason"])


def add_rank_columns(
    df: pd.DataFrame,
    global_predictions: Mapping[tuple[int, str], str | os.PathLike[str]],
    lsft_predictions: Mapping[tuple[int, str, float], Sequence[str | os.PathLike[str]]],
    common: Mapping[int, set[str]],
    distance: str = "l2",
) -> pd.DataFrame:
    """Add ``{local,knn,global}_{rank,rank_transposed}`` computed over each seed's common test set.

    ``df`` is the per-perturbation frame (one row per seed, baseline, K, condition);
    ``global_predictions[(seed, baseline)]`` the global fit's ``.npz``;
    ``lsft_predictions[(seed, baseline, top_pct)]`` that K's shard ``.npz`` files. Rows outside the
    common test set get NaN ranks (a rank is only comparable over one test set).
    """
    df = df.copy()
    for col in ("rank", "rank_transposed"):
        for method in ("local", "knn", "global"):
            df[f"{method}_{col}"] = np.nan
    for (seed, baseline, pct), idx in df.groupby(["seed", "baseline", "top_pct"]).groups.items():
        keep = sorted(common.get(int(seed), set()))
        if len(keep) < 2:
            continue
        glob = _npz(global_predictions[(int(seed), baseline)])
        gcols = pd.Index(glob["conditions"]).get_indexer(keep)
        observed = glob["observed"][:, gcols]
        preds = {"global": glob["predicted"][:, gcols]}
        shards = [_npz(p) for p in lsft_predictions[(int(seed), baseline, float(pct))]]
        conds = pd.Index(np.concatenate([s["conditions"] for s in shards]))
        lcols = conds.get_indexer(keep)
        for method in ("local", "knn"):
            preds[method] = np.concatenate([s[method] for s in shards], axis=1)[:, lcols].astype(np.float64)
        rows = df.loc[idx]
        where = rows.index[rows["condition"].isin(keep)]
        order = pd.Index(keep).get_indexer(df.loc[where, "condition"])
        for method, pred in preds.items():
            ranks = rank_metrics(pred, observed, distance=distance)
            df.loc[where, f"{method}_rank"] = ranks["rank"].to_numpy()[order]
            df.loc[where, f"{method}_rank_transposed"] = ranks["rank_transposed"].to_numpy()[order]
    return df


def _baseline_scores(rows: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """Means per Baseline / Top % / Method (LSFT, kNN, global) of one seed's common-set rows."""
    out = []
    for (baseline, pct), grp in rows.groupby(["baseline", "top_pct"], sort=True):
        for method, prefix in (("LSFT", "local"), ("kNN", "knn")):
            out.append({"Baseline": baseline, "Top %": f"{pct:g}%", "Method": method,
                        **{m: grp[f"{prefix}_{m}"].mean() for m in metrics}})
    for baseline, grp in rows.drop_duplicates(["baseline", "condition"]).groupby("baseline", sort=True):
        out.append({"Baseline": baseline, "Top %": "global", "Method": "global",
                    **{m: grp[f"global_{m}"].mean() for m in metrics}})
    return pd.DataFrame(out)


def progress_tables(
    df: pd.DataFrame, method_frames: Mapping[int, pd.DataFrame], ceiling: pd.DataFrame, metrics: Sequence[str] = ("pearson_r", "l2")
) -> tuple[dict[int, pd.DataFrame], pd.DataFrame]:
    """Per-seed progress-bar tables over each seed's common test set, and their pooled version."""
    from ..evaluation.progress_bar import pool_progress_bars, progress_bar_table

    common = common_test_set(df)
    per_seed = {}
    for seed, frame in sorted(method_frames.items()):
        keep = common.loc[common["seed"] == seed, "condition"].tolist()
        rows = df[(df["seed"] == seed) & df["condition"].isin(keep)]
        per_seed[seed] = progress_bar_table(
            _baseline_scores(rows, metrics), frame, ceiling, conditions=keep, metrics=metrics,
            ceiling_columns={"centered_pearson_r": f"centered_pearson_r_seed{seed}"},
        )
    return per_seed, pool_progress_bars(list(per_seed.values()))


#: Method prefixes of the performance table's rank columns.
_RANK_METHODS = ("Local", "kNN", "Baseline")


def add_mode_collapse(table: pd.DataFrame, margin: float) -> pd.DataFrame:
    """Add ``Mode Collapse``: the methods of each row whose mean rank or mean transposed rank is
    within ``margin`` of 0.5 (:func:`lsftbench.evaluation.metrics.mode_collapse`), e.g. ``kNN (transposed rank 0.49)``.

    A model that predicts (nearly) the same response for every perturbation scores a transposed rank
    of about 0.5 however close that response is to the observations (SPEC 7). Empty when no method is
    flagged; the column is left out when the table has no rank columns.
    """
    columns = [(m, kind, f"{m} {label}") for m in _RANK_METHODS for kind, label in
               (("rank", "Rank"), ("transposed rank", "Transposed Rank"))]
    columns = [c for c in columns if c[2] in table.columns]
    if not columns:
        return table
    flags: list[str] = []
    for _, row in table.iterrows():
        hits = [f"{m} ({kind} {row[col]:.2f})" for m, kind, col in columns if mode_collapse(row[col], margin)]
        flags.append("; ".join(hits))
    out = table.copy()
    names = tuple(c[2] for c in columns)
    position = max(i for i, name in enumerate(out.columns) if str(name).startswith(names)) + 1
    out.insert(position, "Mode Collapse", flags)
    return out
