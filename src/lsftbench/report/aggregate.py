"""Reading one (dataset, protocol)'s fits, LSFT shards, models of one's own and null methods back for the tables
(SPEC 7, 7.1, 7.2, 7.3).

Two frames come out, both scored by :mod:`lsftbench.evaluation.comparison`:

* ``per_perturbation`` — each baseline's global fit, LSFT and kNN on the baseline's own genes, one row per
  (seed, baseline, K, test perturbation): the per-method tables (``lsft_performance``, ``de_metrics``,
  ``fraction_improved``). The fit and LSFT jobs scored them; the metrics that compare a perturbation with the
  others (ranks, discrimination scores, spread ratio) over each seed's common test set and the DE-gene metrics
  are added here, from the predictions the jobs saved beside their metrics.
* ``comparison`` — every method side by side (each model of one's own, each baseline's global fit, LSFT and kNN
  at each K, the null methods and the idealized baseline) on one gene set: the genes every compared method
  predicts (SPEC 7, one gene set per comparison), over each seed's common test set, one row per (seed, method,
  perturbation): the progress bar, the leaderboard and ``model_comparisons``. A method that predicts exactly
  those genes keeps its numbers; one that predicts more (every method, when a gene-table baseline predicts
  fewer genes) is scored again on them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.conditions import target_positions
from ..evaluation.comparison import (
    ComparisonSettings,
    GeneReference,
    ScoreCache,
    common_positions,
    comparison_and_de_columns,
    comparison_genes,
    genes_digest,
    score_on_genes,
)
from ..evaluation.de import DEResults
from ..evaluation.progress_bar import CHEATER_METHODS, NullPredictions, pool_progress_bars, progress_bar_table
from ..evaluation.registry import PROGRESS_METRICS
from ..evaluation.test_sets import common_test_set
from ..io import read_npz, read_parquet
from ..labels import Labels
from .leaderboard import LEADERBOARD_METRICS, method_label
from .tables import per_perturbation

__all__ = [
    "DatasetFrames",
    "ComparisonSettings",
    "dataset_frames",
    "unpredictable_frame",
    "add_spread",
    "progress_tables",
    "check_ceiling_genes",
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
    comparison: pd.DataFrame = field(default_factory=pd.DataFrame)  # every method on the comparison genes
    comparison_spread: pd.DataFrame = field(default_factory=pd.DataFrame)  # seed, method, spread on those genes
    comparison_genes: list[str] = field(default_factory=list)  # the genes every compared method predicts
    n_measured: int = 0  # the dataset's measured genes
    dropped_training: pd.DataFrame | None = None  # seed, baseline, condition, reason: training perturbations not used
    dims: pd.DataFrame | None = None  # seed, baseline, model, gene, pert: the embeddings' dimensions


#: Column prefix of each kind of baseline method in the per-perturbation frame.
_PREFIX = {"global fit": "global_", "LSFT": "local_", "kNN": "knn_"}
#: Spread-frame method of each kind.
_SPREAD_KIND = {"global fit": "global", "LSFT": "local", "kNN": "knn", "external model": "external"}


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
    null_predictions: Mapping[int, NullPredictions | str | os.PathLike[str]] | None = None,
) -> DatasetFrames:
    """Read every seed's global fits, LSFT shards, models of one's own and null methods; join them and score them
    (module docstring).

    ``global_predictions`` are the fits' ``.npz`` files in the order of ``global_metrics``; each LSFT shard's
    predictions are the ``.npz`` beside its ``.parquet``; ``model_predictions`` likewise for the models'
    ``model_metrics``. ``de`` is the dataset's differential expression
    (:class:`lsftbench.evaluation.de.DEResults` or its file); without it the DE-gene metrics are left out.
    ``null_predictions`` maps each split seed to its null methods' predictions (rule ``progress_methods``); without
    them no comparison frame is built. The common test set of each seed holds the perturbations every baseline
    and every model predicts (``in_common_test_set``).
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
    nulls = {int(s): n if isinstance(n, NullPredictions) else NullPredictions.load(n)
             for s, n in (null_predictions or {}).items()}
    scorer = _Scorer(settings, de, common_sets, nulls, [*fit_paths.values(), *model_paths.values()])
    df, spread = scorer.baselines(df, fit_paths, shard_paths)
    model_frame = pd.DataFrame()
    if models is not None:
        model_frame, model_spread = scorer.models(models, model_paths)
        spread = pd.concat([spread, model_spread], ignore_index=True)
    coverage = glob.groupby(["seed", "baseline"], sort=True)[["n_test", "n_test_predictable", "n_genes"]].first().reset_index()
    unpredictable = unpredictable_frame(fit_paths)
    if models is not None:
        model_coverage = models.groupby(["seed", "model"], sort=True)[["n_test", "n_test_predictable", "n_genes"]].first()
        coverage = pd.concat([coverage, model_coverage.reset_index().rename(columns={"model": "baseline"})],
                             ignore_index=True)
        unpredictable = pd.concat([unpredictable, unpredictable_frame(model_paths)], ignore_index=True)
    comparison, comparison_spread = scorer.comparison_frame(df, model_frame, spread)
    return DatasetFrames(
        per_perturbation=df,
        coverage=coverage,
        unpredictable=unpredictable,
        common_sizes={s: len(c) for s, c in sorted(common_sets.items())},
        spread=spread,
        models=model_frame,
        comparison=comparison,
        comparison_spread=comparison_spread,
        comparison_genes=scorer.genes or [],
        n_measured=len(scorer.measured),
        dropped_training=unpredictable_frame(fit_paths, "not_trained"),
        dims=embedding_dims(fit_paths),
    )


class _Scorer:
    """Scores every method of one (dataset, protocol): on its own genes for the per-method tables, and on the
    comparison genes (every method predicts them) for the tables that put methods side by side."""

    def __init__(
        self,
        settings: ComparisonSettings,
        de: DEResults | None,
        common: Mapping[int, set[str]],
        nulls: Mapping[int, NullPredictions],
        prediction_files: Sequence[str | os.PathLike[str]],
    ) -> None:
        self.settings, self.de, self.common, self.nulls = settings, de, common, nulls
        self.cache = ScoreCache()
        self.rescored: list[pd.DataFrame] = []  # comparison-frame rows of methods scored again on the genes
        self.rescored_spread: list[tuple[int, str, float]] = []
        self.measured: list[str] = next(iter(nulls.values())).genes if nulls else []
        gene_lists = [read_npz(path, ["genes"])["genes"].tolist() for path in prediction_files]
        self.genes: list[str] | None = comparison_genes(self.measured, gene_lists) if nulls else None
        self.references = {s: GeneReference(Labels(n.genes, name="gene"), n.ctrl_mean, n.train_mean)
                           for s, n in nulls.items()}

    def _keep(self, seed: int) -> list[str]:
        return sorted(self.common.get(int(seed), set()))

    def own_genes(
        self, pred: np.ndarray, observed: np.ndarray, conditions: Sequence[str], genes: Sequence[str], seed: int,
    ) -> tuple[dict[str, np.ndarray], float]:
        """Comparison and DE columns of a method on its own genes (the per-method tables); through the cache, so that
        methods with byte-identical inputs share their numbers and methods on the same observations what depends on
        those alone."""
        conds = Labels(list(conditions), name="condition")
        targets = target_positions(conds, Labels(list(genes), name="gene"))
        de_here = self.cache.de_selection(self.de, conditions, genes) if self.de is not None else None
        key = np.asarray([*conditions, *genes], dtype=str)
        return comparison_and_de_columns(pred, observed, targets, common_positions(conds, self._keep(seed)),
                                         self.settings, de_here, self.cache, key)

    def on_comparison_genes(
        self, pred: np.ndarray, observed: np.ndarray, conditions: Sequence[str], genes: Sequence[str], seed: int,
        kind: str, baseline: str, top_pct: float, label: str,
    ) -> None:
        """Score a method on the comparison genes when it predicts other genes too (else its own numbers serve)."""
        if self.genes is None or list(genes) == self.genes:
            return
        values, spread = score_on_genes(pred, observed, conditions, genes, self.genes, self.references[int(seed)],
                                        self._keep(seed), self.settings, self.de, self.cache)
        self.rescored.append(_method_rows(seed, label, kind, baseline, top_pct, conditions, values, self._keep(seed)))
        self.rescored_spread.append((int(seed), label, spread))

    def baselines(
        self,
        df: pd.DataFrame,
        global_predictions: Mapping[tuple[int, str], str | os.PathLike[str]],
        lsft_predictions: Mapping[tuple[int, str, float], Sequence[str | os.PathLike[str]]],
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Add ``{local,knn,global}_{rank,rank_transposed,ds_l1,ds_l2,ds_cosine}`` over each seed's common test set
        and, with DE results, the DE-gene metrics (:data:`lsftbench.evaluation.de.DE_METRICS`, and ``n_de``), all on
        each baseline's own genes; score the baselines that predict more than the comparison genes on those.

        ``df`` is the per-perturbation frame (one row per seed, baseline, K, condition);
        ``global_predictions[(seed, baseline)]`` the global fit's ``.npz``; ``lsft_predictions[(seed, baseline,
        top_pct)]`` that K's shard ``.npz`` files. Rows outside the common test set get NaN ranks and scores (they
        are only comparable over one test set); the DE metrics are defined for every row. Also returns the spread
        ratios (``seed, baseline, top_pct, method, spread``; ``top_pct`` NaN for the global fit).
        """
        global_parts, lsft_parts, spreads = [], [], []
        for (seed, baseline), fit_path in sorted(global_predictions.items()):
            fit = read_npz(fit_path)
            conds, genes = fit["conditions"].tolist(), fit["genes"].tolist()
            observed = fit["observed"]
            values, spread = self.own_genes(fit["predicted"], observed, conds, genes, seed)
            global_parts.append(pd.DataFrame({"seed": seed, "baseline": baseline, "condition": conds,
                                              **{f"global_{k}": v for k, v in values.items()}}))
            spreads.append((seed, baseline, np.nan, "global", spread))
            self.on_comparison_genes(fit["predicted"], observed, conds, genes, seed, "global fit", baseline, np.nan,
                                     method_label(baseline, "global fit"))
            position = Labels(conds, name="condition")
            for (s, b, pct), paths in lsft_predictions.items():
                if (s, b) != (int(seed), baseline):
                    continue
                shards = [read_npz(path) for path in paths]
                shard_conds = np.concatenate([sh["conditions"] for sh in shards]).tolist()
                cols = position.get_indexer(shard_conds)  # LSFT predicts a subset of the global fit's tests (mean_response)
                if (cols < 0).any():
                    raise ValueError(f"LSFT shards of {baseline}, seed {s}, top {pct:g}% hold test perturbations its "
                                     f"global fit lacks: {list(np.asarray(shard_conds)[cols < 0][:5])}")
                for method, kind in (("local", "LSFT"), ("knn", "kNN")):
                    pred = np.concatenate([sh[method] for sh in shards], axis=1).astype(np.float64)
                    values, spread = self.own_genes(pred, observed[:, cols], shard_conds, genes, seed)
                    lsft_parts.append(pd.DataFrame({"seed": seed, "baseline": baseline, "top_pct": float(pct),
                                                    "condition": shard_conds, "_method": method,
                                                    **{f"{method}_{k}": v for k, v in values.items()}}))
                    spreads.append((seed, baseline, float(pct), method, spread))
                    self.on_comparison_genes(pred, observed[:, cols], shard_conds, genes, seed, kind, baseline,
                                             float(pct), method_label(baseline, kind, float(pct)))
        out = df.merge(pd.concat(global_parts, ignore_index=True), on=["seed", "baseline", "condition"], how="left",
                       validate="many_to_one")
        for method in ("local", "knn"):
            parts = [p.drop(columns="_method") for p in lsft_parts if p["_method"].iloc[0] == method] if lsft_parts else []
            if parts:
                out = out.merge(pd.concat(parts, ignore_index=True), on=["seed", "baseline", "top_pct", "condition"],
                                how="left", validate="one_to_one")
        return out, pd.DataFrame(spreads, columns=["seed", "baseline", "top_pct", "method", "spread"])

    def models(
        self, models: pd.DataFrame, model_predictions: Mapping[tuple[int, str], str | os.PathLike[str]]
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The comparison and DE metrics of the models of one's own (as :meth:`baselines` for a global fit), added to
        their per-perturbation rows; and their spread ratios (method ``external``)."""
        parts, spreads = [], []
        for (seed, model), path in sorted(model_predictions.items()):
            z = read_npz(path)
            conds, genes = z["conditions"].tolist(), z["genes"].tolist()
            values, spread = self.own_genes(z["predicted"], z["observed"], conds, genes, seed)
            parts.append(pd.DataFrame({"seed": seed, "model": model, "condition": conds, **values}))
            spreads.append((seed, model, np.nan, "external", spread))
            self.on_comparison_genes(z["predicted"], z["observed"], conds, genes, seed, "external model", model, np.nan,
                                     method_label(model, "external model"))
        out = models.merge(pd.concat(parts, ignore_index=True), on=["seed", "model", "condition"], how="left",
                           validate="one_to_one")
        out["in_common_test_set"] = [c in self.common.get(int(s), set()) for s, c in zip(out["seed"], out["condition"])]
        return out, pd.DataFrame(spreads, columns=["seed", "baseline", "top_pct", "method", "spread"])

    def comparison_frame(
        self, df: pd.DataFrame, models: pd.DataFrame, spread: pd.DataFrame
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Every method on the comparison genes over each seed's common test set (module docstring), and their
        spread ratios (``seed, method, spread``); empty without null methods."""
        if self.genes is None:
            return pd.DataFrame(), pd.DataFrame(columns=["seed", "method", "spread"])
        rescored = {(int(r["seed"].iloc[0]), r["method"].iloc[0]) for r in self.rescored}
        parts = list(self.rescored)
        common = df[df["in_common_test_set"].astype(bool)]
        glob = common.drop_duplicates(["seed", "baseline", "condition"])
        for kind, prefix in _PREFIX.items():
            rows = glob if kind == "global fit" else common
            for keys, grp in rows.groupby(["seed", "baseline"] + ([] if kind == "global fit" else ["top_pct"]), sort=True):
                seed, baseline = int(keys[0]), keys[1]
                pct = np.nan if kind == "global fit" else float(keys[2])
                label = method_label(baseline, kind, pct)
                if (seed, label) not in rescored:
                    values = {m: grp[f"{prefix}{m}"].to_numpy() for m in LEADERBOARD_METRICS if f"{prefix}{m}" in grp}
                    parts.append(_method_rows(seed, label, kind, baseline, pct, grp["condition"].tolist(), values))
        if len(models):
            mine = models[models["in_common_test_set"].astype(bool)]
            for (seed, model), grp in mine.groupby(["seed", "model"], sort=False):
                label = method_label(model, "external model")
                if (int(seed), label) not in rescored:
                    values = {m: grp[m].to_numpy() for m in LEADERBOARD_METRICS if m in grp}
                    parts.append(_method_rows(int(seed), label, "external model", model, np.nan,
                                              grp["condition"].tolist(), values))
        null_spread = []
        for seed, nulls in sorted(self.nulls.items()):
            position = Labels(nulls.test, name="condition")
            for name, (conds, pred) in nulls.predicted.items():
                kind = "uses test data" if name in CHEATER_METHODS else "null method"
                observed = nulls.observed[:, position.get_indexer(conds)]
                values, ratio = score_on_genes(pred, observed, conds, nulls.genes, self.genes, self.references[seed],
                                               self._keep(seed), self.settings, self.de, self.cache)
                parts.append(_method_rows(seed, name, kind, "", np.nan, conds, values, self._keep(seed)))
                null_spread.append((seed, name, ratio))
        frame = pd.concat(parts, ignore_index=True)
        frame = frame[["seed", "method", "kind", "baseline", "top_pct", "condition",
                       *[m for m in LEADERBOARD_METRICS if m in frame.columns]]]
        own = spread.assign(method=[method_label(b, _kind_of(m), p)
                                    for b, p, m in zip(spread["baseline"], spread["top_pct"], spread["method"])])
        own = own[[(int(s), m) not in rescored for s, m in zip(own["seed"], own["method"])]][["seed", "method", "spread"]]
        ratios = pd.concat([own, pd.DataFrame(self.rescored_spread + null_spread, columns=["seed", "method", "spread"])],
                           ignore_index=True)
        return frame.reset_index(drop=True), ratios


def _kind_of(spread_method: str) -> str:
    return {v: k for k, v in _SPREAD_KIND.items()}[spread_method]


def _method_rows(
    seed: int, method: str, kind: str, baseline: str, top_pct: float, conditions: Sequence[str],
    values: Mapping[str, np.ndarray], keep: Sequence[str] | None = None,
) -> pd.DataFrame:
    """A method's rows of the comparison frame (only the perturbations of ``keep``, when given)."""
    frame = pd.DataFrame({"seed": int(seed), "method": method, "kind": kind, "baseline": baseline,
                          "top_pct": float(top_pct), "condition": list(conditions),
                          **{m: np.asarray(values[m], dtype=np.float64) for m in LEADERBOARD_METRICS if m in values}})
    if keep is not None:
        frame = frame[frame["condition"].isin(set(keep))]
    return frame.sort_values("condition", kind="stable")


def check_ceiling_genes(ceiling: pd.DataFrame, genes: Sequence[str], path: str | os.PathLike[str]) -> None:
    """``ValueError`` unless the noise ceiling was computed on ``genes`` (the comparison genes of the tables)."""
    if "genes_digest" not in ceiling.columns or not len(ceiling):
        raise ValueError(f"{path}: the noise ceiling does not say which genes it is over; rerun the rule noise_ceiling")
    if ceiling["genes_digest"].iloc[0] != genes_digest(list(genes)):
        raise ValueError(f"{path}: the noise ceiling is over {int(ceiling['n_genes'].iloc[0])} genes, not the {len(genes)} "
                         "genes every compared method predicts; rerun the rule noise_ceiling")


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


def progress_tables(
    comparison: pd.DataFrame,
    ceiling: pd.DataFrame | None,
    metrics: Sequence[str] = PROGRESS_METRICS,
    stand_in: Mapping[str, str] | None = None,
) -> tuple[dict[int, pd.DataFrame], pd.DataFrame]:
    """Per-seed progress-bar tables from the comparison frame (every method on one gene set, common test set), and
    their pooled version; ``stand_in`` (baseline → its synthetic parts) marks the stand-ins."""
    per_seed = {}
    for seed, frame in comparison.groupby("seed", sort=True):
        per_seed[int(seed)] = progress_bar_table(
            frame, ceiling, metrics=metrics, ceiling_columns={"centered_pearson_r": f"centered_pearson_r_seed{seed}"},
        )
    pooled = pool_progress_bars(list(per_seed.values()))
    if stand_in is not None:  # every figure and table marks the stand-ins
        for table in (*per_seed.values(), pooled):
            table["Synthetic Stand-in"] = table["Baseline"].map(dict(stand_in)).fillna("")
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
