"""Reading one (dataset, protocol)'s fits and LSFT shards back for the tables (SPEC 7, 7.1, 7.2).

The metrics that compare a test perturbation with the others — the PerturBench ranks, the
discrimination score, the spread ratio of the mode-collapse check — are computed here, once all
shards exist, over the common test set of each split seed (the perturbations every method can
predict), from the predictions the fit and LSFT jobs saved beside their metrics. The DE-gene
metrics (SPEC 7.2) need the dataset's differential expression and are computed here for every row.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.conditions import target_positions
from ..evaluation.de import DEResults, de_metrics
from ..evaluation.metrics import COMPARISON_COLUMNS, comparison_metrics
from ..evaluation.progress_bar import PROGRESS_METRICS, pool_progress_bars, progress_bar_table
from ..evaluation.statistics import common_test_set
from ..io import read_npz, read_parquet
from ..labels import Labels
from .tables import per_perturbation

__all__ = [
    "DatasetFrames",
    "ComparisonSettings",
    "dataset_frames",
    "unpredictable_frame",
    "add_comparison_columns",
    "add_model_comparison_columns",
    "add_spread",
    "progress_tables",
]


@dataclass
class DatasetFrames:
    """What the tables of one (dataset, protocol) are made from."""

    per_perturbation: pd.DataFrame  # one row per (seed, baseline, K, test perturbation), ranks included
    coverage: pd.DataFrame  # per (seed, baseline): n_test, n_test_predictable, n_genes
    unpredictable: pd.DataFrame  # seed, baseline, condition, reason
    common_sizes: dict[int, int]  # common test set size per seed
    spread: pd.DataFrame  # seed, baseline, top_pct (NaN for the global fit), method, spread over the common test set
    models: pd.DataFrame  # one row per (seed, model, test perturbation): a model of one's own, scored (SPEC 7.3)
    dropped_training: pd.DataFrame | None = None  # seed, baseline, condition, reason: training perturbations not used
    dims: pd.DataFrame | None = None  # seed, baseline, model, gene, pert: the embeddings' dimensions


@dataclass(frozen=True)
class ComparisonSettings:
    """What the comparison metrics depend on: ``metrics.rank_distance``, ``metrics.exclude_target_gene``
    (ranks; the discrimination score always leaves the target out, as cell-eval does) and ``metrics.de_fdr``."""

    rank_distance: str = "l2"
    exclude_target_gene: bool = False
    de_fdr: float = 0.05


def _predictions_path(metrics_path: str | os.PathLike[str]) -> str:
    """The ``.npz`` of predictions written beside a fit's or shard's metrics ``.parquet``."""
    return str(Path(metrics_path).with_suffix(".npz"))


def dataset_frames(
    global_metrics: Sequence[str | os.PathLike[str]],
    global_predictions: Sequence[str | os.PathLike[str]],
    lsft_metrics: Sequence[str | os.PathLike[str]],
    settings: ComparisonSettings = ComparisonSettings(),
    de: DEResults | str | os.PathLike[str] | None = None,
    model_metrics: Sequence[str | os.PathLike[str]] = (),
    model_predictions: Sequence[str | os.PathLike[str]] = (),
) -> DatasetFrames:
    """Read every seed's global fits, LSFT shards and models of one's own; join them and add the comparison
    and DE metrics.

    ``global_predictions`` are the fits' ``.npz`` files in the order of ``global_metrics``; each LSFT
    shard's predictions are the ``.npz`` beside its ``.parquet``; ``model_predictions`` likewise for the
    models' ``model_metrics``. ``de`` is the dataset's differential expression
    (:class:`lsftbench.evaluation.de.DEResults` or its file); without it the DE-gene metrics are left out.
    The common test set of each seed holds the perturbations every baseline and every model predicts
    (``in_common_test_set``).
    """
    glob = pd.concat(
        [read_parquet(m).assign(_predictions=str(pr)) for m, pr in zip(global_metrics, global_predictions, strict=True)],
        ignore_index=True,
    )
    lsft_rows = pd.concat(
        [read_parquet(path).assign(_predictions=_predictions_path(path)) for path in lsft_metrics], ignore_index=True
    )
    fit_paths = {(int(s), b): path for (s, b), path in glob.groupby(["seed", "baseline"])["_predictions"].first().items()}
    shard_paths = {
        (int(s), b, float(k)): sorted(set(paths))
        for (s, b, k), paths in lsft_rows.groupby(["seed", "baseline", "top_pct"])["_predictions"]
    }
    glob, lsft_rows = glob.drop(columns="_predictions"), lsft_rows.drop(columns="_predictions")
    models, model_paths = None, {}
    if model_metrics:
        models = pd.concat([read_parquet(m).assign(_predictions=str(pr))
                            for m, pr in zip(model_metrics, model_predictions, strict=True)], ignore_index=True)
        model_paths = {(int(s), m): p for (s, m), p in models.groupby(["seed", "model"])["_predictions"].first().items()}
        models = models.drop(columns="_predictions")
    df = per_perturbation(lsft_rows, glob)
    common = common_test_set(df)
    common_sets = {int(s): set(g["condition"]) for s, g in common.groupby("seed")}
    if models is not None:  # a model that predicts fewer perturbations shrinks the common test set, as a baseline does
        for (seed, _), rows in models.groupby(["seed", "model"]):
            common_sets[int(seed)] = common_sets.get(int(seed), set()) & set(rows["condition"])
    df["in_common_test_set"] = [c in common_sets.get(int(s), set()) for s, c in zip(df["seed"], df["condition"])]
    if de is not None and not isinstance(de, DEResults):
        de = DEResults.load(de)
    df, spread = add_comparison_columns(df, fit_paths, shard_paths, common_sets, settings, de)
    model_frame = pd.DataFrame()
    if models is not None:
        model_frame, model_spread = add_model_comparison_columns(models, model_paths, common_sets, settings, de)
        spread = pd.concat([spread, model_spread], ignore_index=True)
    coverage = glob.groupby(["seed", "baseline"], sort=True)[["n_test", "n_test_predictable", "n_genes"]].first().reset_index()
    unpredictable = unpredictable_frame(fit_paths)
    if models is not None:
        model_coverage = models.groupby(["seed", "model"], sort=True)[["n_test", "n_test_predictable", "n_genes"]].first()
        coverage = pd.concat([coverage, model_coverage.reset_index().rename(columns={"model": "baseline"})],
                             ignore_index=True)
        unpredictable = pd.concat([unpredictable, unpredictable_frame(model_paths)], ignore_index=True)
    return DatasetFrames(
        per_perturbation=df,
        coverage=coverage,
        unpredictable=unpredictable,
        common_sizes={s: len(c) for s, c in sorted(common_sets.items())},
        spread=spread,
        models=model_frame,
        dropped_training=unpredictable_frame(fit_paths, "not_trained"),
        dims=embedding_dims(fit_paths),
    )


def add_model_comparison_columns(
    models: pd.DataFrame,
    model_predictions: Mapping[tuple[int, str], str | os.PathLike[str]],
    common: Mapping[int, set[str]],
    settings: ComparisonSettings = ComparisonSettings(),
    de: DEResults | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The comparison and DE metrics of the models of one's own (as :func:`add_comparison_columns` for a
    global fit), added to their per-perturbation rows; and their spread ratios (method ``external``)."""
    parts, spreads = [], []
    for (seed, model), path in sorted(model_predictions.items()):
        z = read_npz(path)
        conds = pd.Index(z["conditions"])
        genes = Labels(z["genes"].tolist(), name="gene")
        de_here = de.select(list(conds)).restrict(list(genes)) if de is not None else None
        values, spread = _method_columns(z["predicted"], z["observed"], target_positions(conds, genes),
                                         _positions(conds, sorted(common.get(int(seed), set()))), settings, de_here)
        parts.append(pd.DataFrame({"seed": seed, "model": model, "condition": conds, **values}))
        spreads.append((seed, model, np.nan, "external", spread))
    out = models.merge(pd.concat(parts, ignore_index=True), on=["seed", "model", "condition"], how="left",
                       validate="one_to_one")
    out["in_common_test_set"] = [c in common.get(int(s), set()) for s, c in zip(out["seed"], out["condition"])]
    return out, pd.DataFrame(spreads, columns=["seed", "baseline", "top_pct", "method", "spread"])


def unpredictable_frame(
    fit_paths: Mapping[tuple[int, str], str | os.PathLike[str]], key: str = "not_predictable"
) -> pd.DataFrame:
    """``seed, baseline, condition, reason`` for every test perturbation a baseline cannot predict
    (``key="not_trained"``: every training perturbation its fit could not use).

    ``fit_paths[(seed, baseline)]`` is the global fit's predictions ``.npz`` (its ``not_predictable`` and
    ``not_trained`` JSON).
    """
    rows = []
    for (seed, baseline), path in fit_paths.items():
        z = read_npz(path, [key], missing_ok=True)  # only this small member, not the predictions
        reasons = json.loads(str(z[key])) if key in z else {}
        rows += [(seed, baseline, cond, why) for cond, why in reasons.items()]
    return pd.DataFrame(rows, columns=["seed", "baseline", "condition", "reason"])


def embedding_dims(fit_paths: Mapping[tuple[int, str], str | os.PathLike[str]]) -> pd.DataFrame:
    """``seed, baseline, model, gene, pert``: the dimensions of each fit's embeddings (from its ``dims`` JSON)."""
    rows = []
    for (seed, baseline), path in fit_paths.items():
        z = read_npz(path, ["dims"], missing_ok=True)
        if "dims" in z:
            d = json.loads(str(z["dims"]))
            rows.append((seed, baseline, d["model"], d["gene"], d["pert"]))
    return pd.DataFrame(rows, columns=["seed", "baseline", "model", "gene", "pert"])


class _SameMethods:
    """Methods whose predictions, observations, test set and targets are byte for byte those of a method
    computed before share its comparison and DE metrics (e.g. the kNN of every baseline with the same
    perturbation embedding): the key is a digest of the inputs, the value the columns and spread ratio."""

    def __init__(self) -> None:
        self._seen: dict[tuple[bytes, ...], tuple[dict[str, np.ndarray], float]] = {}

    @staticmethod
    def key(*arrays: np.ndarray) -> tuple[bytes, ...]:
        return tuple(
            hashlib.sha256(np.ascontiguousarray(a).view(np.uint8).data).digest() + repr((a.dtype.str, a.shape)).encode()
            for a in arrays
        )

    def get(self, key: tuple[bytes, ...]) -> tuple[dict[str, np.ndarray], float] | None:
        hit = self._seen.get(key)
        return None if hit is None else ({k: v.copy() for k, v in hit[0].items()}, hit[1])

    def put(self, key: tuple[bytes, ...], value: tuple[dict[str, np.ndarray], float]) -> None:
        self._seen[key] = value


def _method_columns(
    pred: np.ndarray,
    observed: np.ndarray,
    targets: np.ndarray,
    keep: np.ndarray,
    settings: ComparisonSettings,
    de: DEResults | None,
    same: _SameMethods | None = None,
    de_key: np.ndarray | None = None,
) -> tuple[dict[str, np.ndarray], float]:
    """One method's comparison and DE metrics for every column of ``pred`` (NaN outside ``keep`` for
    the metrics over the common test set) and its spread ratio over ``keep``.

    With ``same``, a method whose inputs (and ``de_key``, the conditions and genes ``de`` was selected for) repeat
    those of an earlier one reuses its numbers instead of computing them again."""
    key = None
    if same is not None:
        key = same.key(pred, observed, targets, keep, *(() if de_key is None else (de_key,)))
        hit = same.get(key)
        if hit is not None:
            return hit
    n = pred.shape[1]
    out = {name: np.full(n, np.nan) for name in COMPARISON_COLUMNS}
    spread = float("nan")
    if len(keep) >= 2:
        values, spread = comparison_metrics(pred[:, keep], observed[:, keep], targets[keep],
                                            rank_distance=settings.rank_distance,
                                            exclude_target_gene=settings.exclude_target_gene)
        for name, column in values.items():
            out[name][keep] = column
    if de is not None:
        out.update(de_metrics(pred, observed, de, settings.de_fdr,
                              exclude=targets if settings.exclude_target_gene else None))
    if same is not None and key is not None:
        same.put(key, (out, spread))
    return out, spread


def _positions(conditions: pd.Index, names: Sequence[str]) -> np.ndarray:
    """Positions of ``names`` (sorted, as the ranks take them) among ``conditions``; none for fewer than two."""
    if len(names) < 2:
        return np.zeros(0, dtype=np.intp)
    positions = conditions.get_indexer(names)
    if (positions < 0).any():
        raise ValueError(f"common test perturbations without predictions: {list(np.asarray(names)[positions < 0][:5])}")
    return positions


def add_comparison_columns(
    df: pd.DataFrame,
    global_predictions: Mapping[tuple[int, str], str | os.PathLike[str]],
    lsft_predictions: Mapping[tuple[int, str, float], Sequence[str | os.PathLike[str]]],
    common: Mapping[int, set[str]],
    settings: ComparisonSettings = ComparisonSettings(),
    de: DEResults | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Add ``{local,knn,global}_{rank,rank_transposed,ds_l1,ds_l2,ds_cosine}`` over each seed's common test
    set and, with ``de``, the DE-gene metrics (:data:`lsftbench.evaluation.de.DE_METRICS`, and ``n_de``).

    ``df`` is the per-perturbation frame (one row per seed, baseline, K, condition);
    ``global_predictions[(seed, baseline)]`` the global fit's ``.npz``;
    ``lsft_predictions[(seed, baseline, top_pct)]`` that K's shard ``.npz`` files. Rows outside the
    common test set get NaN ranks and scores (they are only comparable over one test set); the DE
    metrics are defined for every row. Also returns the spread ratios (``seed, baseline, top_pct,
    method, spread``; ``top_pct`` NaN for the global fit).
    """
    global_parts, lsft_parts, spreads = [], [], []
    same = _SameMethods()
    for (seed, baseline), fit_path in sorted(global_predictions.items()):
        glob = read_npz(fit_path)
        conds = pd.Index(glob["conditions"])
        genes = Labels(glob["genes"].tolist(), name="gene")
        observed = glob["observed"]
        targets = target_positions(conds, genes)
        common_names = sorted(common.get(int(seed), set()))
        de_here = de.select(list(conds)).restrict(list(genes)) if de is not None else None
        values, spread = _method_columns(glob["predicted"], observed, targets, _positions(conds, common_names),
                                         settings, de_here)
        global_parts.append(pd.DataFrame({"seed": seed, "baseline": baseline, "condition": conds,
                                          **{f"global_{k}": v for k, v in values.items()}}))
        spreads.append((seed, baseline, np.nan, "global", spread))
        for (s, b, pct), paths in lsft_predictions.items():
            if (s, b) != (int(seed), baseline):
                continue
            shards = [read_npz(path) for path in paths]
            shard_conds = pd.Index(np.concatenate([sh["conditions"] for sh in shards]))
            cols = conds.get_indexer(shard_conds)  # LSFT predicts a subset of the global fit's tests (mean_response)
            if (cols < 0).any():
                raise ValueError(f"LSFT shards of {baseline}, seed {s}, top {pct:g}% hold test perturbations its global "
                                 f"fit lacks: {list(shard_conds[cols < 0][:5])}")
            keep = _positions(shard_conds, common_names)
            de_shard = de_here.select(list(shard_conds)) if de_here is not None else None
            for method in ("local", "knn"):
                pred = np.concatenate([sh[method] for sh in shards], axis=1).astype(np.float64)
                values, spread = _method_columns(pred, observed[:, cols], targets[cols], keep, settings, de_shard,
                                                 same, np.asarray([*shard_conds, *genes], dtype=str))
                lsft_parts.append(pd.DataFrame({"seed": seed, "baseline": baseline, "top_pct": float(pct),
                                                "condition": shard_conds, "_method": method,
                                                **{f"{method}_{k}": v for k, v in values.items()}}))
                spreads.append((seed, baseline, float(pct), method, spread))
    out = df.merge(pd.concat(global_parts, ignore_index=True), on=["seed", "baseline", "condition"], how="left",
                   validate="many_to_one")
    for method in ("local", "knn"):
        parts = [p.drop(columns="_method") for p in lsft_parts if p["_method"].iloc[0] == method] if lsft_parts else []
        if parts:
            out = out.merge(pd.concat(parts, ignore_index=True), on=["seed", "baseline", "top_pct", "condition"],
                            how="left", validate="one_to_one")
    spread = pd.DataFrame(spreads, columns=["seed", "baseline", "top_pct", "method", "spread"])
    return out, spread


#: ``Top %`` of a model of one's own in the progress-bar table (its predictions have no K).
EXTERNAL = "external"


def _baseline_scores(rows: pd.DataFrame, metrics: Sequence[str], models: pd.DataFrame | None = None) -> pd.DataFrame:
    """Means per Baseline / Top % / Method (LSFT, kNN, global; a model of one's own: ``external``) of one
    seed's common-set rows."""
    out = []
    if models is not None:
        for model, grp in models.groupby("model", sort=False):
            out.append({"Baseline": model, "Top %": EXTERNAL, "Method": EXTERNAL, **{m: grp[m].mean() for m in metrics}})
    for (baseline, pct), grp in rows.groupby(["baseline", "top_pct"], sort=True):
        for method, prefix in (("LSFT", "local"), ("kNN", "knn")):
            out.append({"Baseline": baseline, "Top %": f"{pct:g}%", "Method": method,
                        **{m: grp[f"{prefix}_{m}"].mean() for m in metrics}})
    for baseline, grp in rows.drop_duplicates(["baseline", "condition"]).groupby("baseline", sort=True):
        out.append({"Baseline": baseline, "Top %": "global", "Method": "global",
                    **{m: grp[f"global_{m}"].mean() for m in metrics}})
    return pd.DataFrame(out)


def progress_tables(
    df: pd.DataFrame,
    method_frames: Mapping[int, pd.DataFrame],
    ceiling: pd.DataFrame,
    metrics: Sequence[str] = PROGRESS_METRICS,
    models: pd.DataFrame | None = None,
) -> tuple[dict[int, pd.DataFrame], pd.DataFrame]:
    """Per-seed progress-bar tables over each seed's common test set, and their pooled version; the models of
    one's own (``models``, their per-perturbation rows) get rows of Method ``external``."""
    common = common_test_set(df)
    per_seed = {}
    for seed, frame in sorted(method_frames.items()):
        keep = common.loc[common["seed"] == seed, "condition"].tolist()
        rows = df[(df["seed"] == seed) & df["condition"].isin(keep)]
        mine = None if models is None or not len(models) else models[(models["seed"] == seed) & models["condition"].isin(keep)]
        per_seed[seed] = progress_bar_table(
            _baseline_scores(rows, metrics, mine), frame, ceiling, conditions=keep, metrics=metrics,
            ceiling_columns={"centered_pearson_r": f"centered_pearson_r_seed{seed}"},
        )
    pooled = pool_progress_bars(list(per_seed.values()))
    if "synthetic_stand_in" in df.columns:  # every figure and table marks the stand-ins
        stand_in = df.groupby("baseline")["synthetic_stand_in"].first().fillna("")
        for table in (*per_seed.values(), pooled):
            table["Synthetic Stand-in"] = table["Baseline"].map(stand_in).fillna("")
    return per_seed, pooled


#: Method → its name in the performance table's column labels.
_SPREAD_METHODS = {"local": "Local", "knn": "kNN", "global": "Baseline"}


def add_spread(table: pd.DataFrame, spread: pd.DataFrame, seed: int | None, threshold: float) -> pd.DataFrame:
    """Add ``Local/kNN/Baseline Spread`` (spread ratio over the common test set; pooled: the mean of the
    per-seed ratios) and ``Mode Collapse``, naming the methods whose spread is below ``threshold``
    (``metrics.mode_collapse_spread``), e.g. ``Baseline (spread 0.00)``.

    A model that predicts (nearly) the same response for every perturbation has a spread of about 0,
    whatever its distance to the observations (SPEC 7); ranks near 0.5 alone do not flag.
    """
    if seed is not None:
        spread = spread[spread["seed"] == seed]
    out = table.copy()
    flags: list[str] = []
    columns: dict[str, list[float]] = {f"{label} Spread": [] for label in _SPREAD_METHODS.values()}
    for _, row in out.iterrows():
        pct = _pct_value(row["Top %"])
        hits = []
        for method, label in _SPREAD_METHODS.items():
            rows = spread[(spread["baseline"] == row["Baseline"]) & (spread["method"] == method)]
            if method != "global":
                rows = rows[np.isclose(rows["top_pct"], pct)]
            value = float(rows["spread"].mean()) if len(rows) else np.nan
            columns[f"{label} Spread"].append(value)
            if np.isfinite(value) and value < threshold:
                hits.append(f"{label} (spread {value:.2f})")
        flags.append("; ".join(hits))
    for name, values in columns.items():
        out[name] = values
    out["Mode Collapse"] = flags
    return out


def _pct_value(top: object) -> float:
    """``1`` from ``"1%"``."""
    return float(str(top).rstrip("%"))
