"""The progress bar of a dataset: worst acceptable and best achievable performance (SPEC 7, seed 003).

* **WAP** (worst acceptable performance) = the best of the null methods on the test set: ``train
  mean`` (mean Δ of all training perturbations, ``ctrl`` excluded), ``no change`` (Δ̂ = 0; its
  Pearson r is undefined, NaN, so it only competes on L2) and ``random perturbation embedding`` (the
  ridge model with the training-PCA gene embedding and seeded N(0, 1) perturbation embedding,
  exactly baseline ``lpm_randomPertEmb`` for the same seed).
* **BAP** (best achievable performance) = the tighter, i.e. worse, of two cheater bounds: the
  ``idealized baseline (uses test data)`` (:func:`idealized_embedding`) and the
  ``sampling-noise ceiling`` (:mod:`lsftbench.evaluation.noise_ceiling`).
* ``% of gap closed = 100 · (score − WAP) / (BAP − WAP)``; for L2 (lower is better) the same formula
  on −L2, which gives the same number. NaN when BAP is not better than WAP.

The null and cheater methods are computed from the dataset's pseudobulk and one split (no
embedding files are needed): see :func:`method_scores`. Scores are over all measured genes (the
pseudobulk's), top-1000 genes by control mean, as for the baselines.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from ..data.conditions import CTRL, target_positions
from ..data.mean_expression import MeanExpression, top_expressed, training_mean_delta
from ..embeddings.build import Embedding, build_embedding, pert_columns_from_rows, training_pca_gene_scores
from ..embeddings.pca import pca_scores
from ..io import read_json
from ..labels import Labels
from ..model.global_fit import global_predictions
from ..model.problem import make_problem
from .metrics import perturbation_metrics

if TYPE_CHECKING:
    import anndata as ad


__all__ = [
    "TRAIN_MEAN",
    "NO_CHANGE",
    "RANDOM_PERT",
    "IDEALIZED",
    "NOISE_CEILING",
    "NULL_METHODS",
    "CHEATER_METHODS",
    "METRIC_LABELS",
    "LOWER_IS_BETTER",
    "PROGRESS_METRICS",
    "PROGRESS_COLUMNS",
    "train_mean_delta",
    "idealized_embedding",
    "random_pert_embedding",
    "method_scores",
    "method_scores_from_files",
    "progress_bar_table",
    "gap_closed",
    "pool_progress_bars",
]

TRAIN_MEAN = "train mean"
NO_CHANGE = "no change"
RANDOM_PERT = "random perturbation embedding"
IDEALIZED = "idealized baseline (uses test data)"
NOISE_CEILING = "sampling-noise ceiling"
NULL_METHODS = (TRAIN_MEAN, NO_CHANGE, RANDOM_PERT)
CHEATER_METHODS = (IDEALIZED, NOISE_CEILING)

#: Per-perturbation metric column → ``Metric`` label of the progress-bar table.
METRIC_LABELS = {
    "pearson_r": "Pearson r",
    "l2": "L2",
    "pearson_delta_top1000": "Pearson r (top 1000)",
    "l2_top1000": "L2 (top 1000)",
    "centered_pearson_r": "Centred Pearson r",
    "mae": "MAE",
}
LOWER_IS_BETTER = frozenset({"l2", "l2_top1000", "mae"})
#: The metrics of the progress-bar table and figure (SPEC 7: r, centred r, L2, MAE).
PROGRESS_METRICS = ("pearson_r", "centered_pearson_r", "l2", "mae")
PROGRESS_COLUMNS = [
    "Baseline", "Top %", "Method", "Metric", "Score", "WAP", "WAP method", "BAP", "BAP method", "% of gap closed",
    # every bound's mean (the figure draws the ones that do not bind too) and the ceiling's perturbations
    "train mean", "no change", "random perturbation embedding", "idealized baseline (uses test data)",
    "sampling-noise ceiling", "Ceiling Perturbations",
]
_KEYS = ["Baseline", "Top %", "Method"]


def _delta(pb: ad.AnnData | MeanExpression, conditions: Sequence[str]) -> np.ndarray:
    """Δ (genes × ``conditions``) from a pseudobulk."""
    x = np.asarray(pb.X, dtype=np.float64)
    names = pd.Index(pb.obs_names)
    return (x[names.get_indexer(list(conditions))] - x[names.get_loc(CTRL)]).T


def _as_anndata(pb: ad.AnnData | MeanExpression) -> ad.AnnData:
    import anndata as ad

    if isinstance(pb, ad.AnnData):
        return pb
    return ad.AnnData(
        X=np.asarray(pb.X, dtype=np.float64), obs=pd.DataFrame(index=pb.obs_names), var=pd.DataFrame(index=pb.var_names)
    )


def train_mean_delta(pb: ad.AnnData | MeanExpression, split: dict[str, list[str]]) -> np.ndarray:
    """``m`` = mean Δ of the training perturbations (``ctrl`` excluded) over all measured genes.

    The ``train mean`` null prediction and the centre of the centred Pearson r (SPEC 7):
    :func:`lsftbench.data.mean_expression.training_mean_delta`, for an AnnData's pandas names too.
    """
    return training_mean_delta(MeanExpression(np.asarray(pb.X), Labels(pb.obs_names), Labels(pb.var_names)), split)


def idealized_embedding(
    pb: ad.AnnData | MeanExpression,
    split: dict[str, list[str]],
    dim: int,
    pert: Literal["response", "gene_rows"] = "response",
) -> Embedding:
    """Embeddings of the idealized baseline: PCA over training *and test* conditions (uses test data).

    ``A`` = SPEC 4 gene scores (genes × d) of the pseudobulk expression of the training (``ctrl``
    included) and test conditions. ``B``:

    * ``"response"`` (default, SPEC 7 (a) and seed 003): PCA(d) scores of ``Δ`` over the training
      and test conditions, conditions as observations (genes centred), so each condition's embedding
      is its own (test) response projected on the top components — the best linear embedding of
      dimension d for predicting the labels;
    * ``"gene_rows"``: SPEC 4 first bullet with test columns in the PCA (``B[:, c]`` = the score row
      of c's target gene; unmeasured targets are not predictable).
    """
    columns = list(dict.fromkeys([*split["train"], *split["test"]]))
    names = pd.Index(pb.obs_names)
    x = np.asarray(pb.X, dtype=np.float64)
    expr = pd.DataFrame(x[names.get_indexer(columns)].T, index=pb.var_names, columns=columns)
    scores = training_pca_gene_scores(expr, columns, dim)
    if pert == "response":
        conds, b, missing = columns, pca_scores(_delta(pb, columns).T, dim).T, []
    elif pert == "gene_rows":
        conds, b, missing = pert_columns_from_rows(scores, columns)
    else:
        raise ValueError(f"pert must be 'response' or 'gene_rows', got {pert!r}")
    return Embedding(
        genes=Labels(pb.var_names, name="gene"),
        A=scores.to_numpy(),
        conditions=Labels(conds, name="condition"),
        B=np.asarray(b, dtype=np.float64),
        gene_type="idealized_pca",
        pert_type=f"idealized_{pert}",
        info={"uses_test_data": True, "not_predictable": sorted(missing)},
    )


def random_pert_embedding(pb: ad.AnnData | MeanExpression, split: dict[str, list[str]], dim: int, seed: int) -> Embedding:
    """Training-PCA gene embedding and seeded N(0, 1) perturbation embedding (= ``lpm_randomPertEmb``)."""
    spec = {"model": "ridge", "gene": {"type": "training_pca"}, "pert": {"type": "random", "seed": seed}}
    return build_embedding(spec, _as_anndata(pb), split, dim, dataset="progress_bar")


def method_scores(
    pb: ad.AnnData | MeanExpression,
    split: dict[str, list[str]],
    *,
    dim: int = 10,
    ridge: float = 0.1,
    random_seed: int = 1,
    top_n: int = 1000,
    idealized_pert: Literal["response", "gene_rows"] = "response",
    exclude_target_gene: bool = False,
) -> pd.DataFrame:
    """Per-perturbation scores of the null and idealized methods on one split's test set.

    Parameters
    ----------
    pb
        The dataset's pseudobulk (conditions × genes means, ``ctrl`` included).
    split
        ``{"train", "val", "test"}`` condition lists (one protocol and seed).
    dim, ridge
        ``pca_dim`` and ``ridge_penalty`` of the baselines.
    random_seed
        Seed of the random perturbation embedding (use ``lpm_randomPertEmb``'s to reproduce it).
    top_n
        Genes of highest control mean in the top-1000 metrics.
    idealized_pert
        Perturbation embedding of the idealized baseline (:func:`idealized_embedding`).
    exclude_target_gene
        Leave each perturbation's target gene(s) out of its metrics (``metrics.exclude_target_gene``).

    Returns
    -------
    pandas.DataFrame
        ``method, condition`` and :func:`lsftbench.evaluation.metrics.perturbation_metrics` columns
        (``pearson_r, l2, pearson_delta_top1000, l2_top1000, centered_pearson_r``) for every test
        condition a method can predict, methods in the order of ``NULL_METHODS`` then ``IDEALIZED``.
    """
    measured = set(pb.obs_names)
    test = [c for c in split["test"] if c in measured]
    obs = _delta(pb, test)
    m = train_mean_delta(pb, split)
    names = pd.Index(pb.obs_names)
    ctrl = np.asarray(pb.X, dtype=np.float64)[names.get_loc(CTRL)]
    top_idx = top_expressed(ctrl, top_n)
    predictions = {
        TRAIN_MEAN: (test, np.repeat(m[:, None], len(test), axis=1)),
        NO_CHANGE: (test, np.zeros_like(obs)),
    }
    for method, emb in ((RANDOM_PERT, random_pert_embedding(pb, split, dim, random_seed)),
                        (IDEALIZED, idealized_embedding(pb, split, dim, idealized_pert))):
        problem = make_problem(pb, {**split, "test": test}, emb, top_n)
        if not problem.genes.equals(pd.Index(pb.var_names)):
            raise AssertionError("null/cheater embeddings must cover every measured gene")
        predictions[method] = (problem.test, global_predictions(problem, ridge))
    column = {c: i for i, c in enumerate(test)}
    frames = []
    for method, (conds, pred) in predictions.items():
        exclude = target_positions(conds, Labels(pb.var_names)) if exclude_target_gene else None
        rows = perturbation_metrics(pred, obs[:, [column[c] for c in conds]], top_idx, m, exclude)
        rows.insert(0, "condition", conds)
        rows.insert(0, "method", method)
        frames.append(rows)
    return pd.concat(frames, ignore_index=True)


def method_scores_from_files(
    pseudobulk: str | os.PathLike[str], split: str | os.PathLike[str], *, split_seed: int, **settings: Any
) -> pd.DataFrame:
    """:func:`method_scores` of a pseudobulk h5ad and a split JSON (rule ``progress_methods``), with a
    leading ``seed`` column. ``settings`` are :func:`method_scores`' keywords."""
    from ..data.mean_expression import read_mean_expression

    scores = method_scores(read_mean_expression(pseudobulk), read_json(split), **settings)
    scores.insert(0, "seed", int(split_seed))
    return scores


def progress_bar_table(
    baseline_scores: pd.DataFrame,
    method_frame: pd.DataFrame,
    ceiling: pd.DataFrame | None,
    *,
    conditions: Sequence[str] | None = None,
    metrics: Sequence[str] = ("pearson_r", "l2"),
    ceiling_columns: dict[str, str] | None = None,
) -> pd.DataFrame:
    """The progress-bar table of one dataset (one seed): see the module docstring.

    Parameters
    ----------
    baseline_scores
        One row per ``Baseline, Top %, Method`` (``Top %`` e.g. ``"1%"`` or ``"global"``; ``Method``
        ``LSFT``, ``kNN`` or ``global``) with one column per metric in ``metrics``: the mean over
        the common test set ``conditions``.
    method_frame
        Per-perturbation scores of the null and idealized methods (:func:`method_scores`).
    ceiling
        Per-condition noise ceiling (:func:`lsftbench.evaluation.noise_ceiling.noise_ceiling`), or ``None``.
    conditions
        The common test set the baseline means were taken over; default: the conditions every
        null/cheater method (and the ceiling) has.
    metrics
        Per-perturbation metric columns to report (labels in ``METRIC_LABELS``).
    ceiling_columns
        Metric → ceiling column when they differ, e.g. ``{"centered_pearson_r":
        "centered_pearson_r_seed1"}``.

    Returns
    -------
    pandas.DataFrame
        ``PROGRESS_COLUMNS``: one row per (Baseline, Top %, Method, Metric), with the mean of every null
        and cheater method (NaN where a method has no value) and ``Ceiling Perturbations``, how many of
        the test perturbations the noise ceiling is the mean over (those with enough cells). Method means
        ignore NaN values; a method whose metric is NaN for every perturbation (``no change`` for
        Pearson r) does not compete.
    """
    bounds = _bounds(method_frame, ceiling, conditions, metrics, ceiling_columns or {})
    rows = []
    for metric in metrics:
        if metric not in baseline_scores.columns:
            raise ValueError(f"baseline_scores has no column {metric!r}")
        wap, wap_method, bap, bap_method, means, n_ceiling = bounds[metric]
        part = baseline_scores[_KEYS].copy()
        part["Metric"] = METRIC_LABELS.get(metric, metric)
        part["Score"] = baseline_scores[metric].to_numpy(dtype=np.float64)
        part["WAP"], part["WAP method"], part["BAP"], part["BAP method"] = wap, wap_method, bap, bap_method
        part["% of gap closed"] = gap_closed(part["Score"].to_numpy(), wap, bap, metric in LOWER_IS_BETTER)
        for method in (*NULL_METHODS, *CHEATER_METHODS):
            part[method] = means.get(method, np.nan)
        part["Ceiling Perturbations"] = n_ceiling
        rows.append(part)
    return pd.concat(rows, ignore_index=True)[PROGRESS_COLUMNS]


def gap_closed(score: np.ndarray | float, wap: float, bap: float, lower_is_better: bool) -> np.ndarray:
    """``100 · (score − WAP) / (BAP − WAP)``; NaN when BAP is not better than WAP."""
    better = (wap - bap) if lower_is_better else (bap - wap)
    if not np.isfinite(better) or better <= 0:
        return np.full(np.shape(score), np.nan)
    return 100.0 * (np.asarray(score, dtype=np.float64) - wap) / (bap - wap)


def _bounds(
    method_frame: pd.DataFrame,
    ceiling: pd.DataFrame | None,
    conditions: Sequence[str] | None,
    metrics: Sequence[str],
    ceiling_columns: dict[str, str],
) -> dict[str, tuple[float, str, float, str, dict[str, float], int]]:
    """WAP, its method, BAP, its method, every method's mean and the ceiling's perturbations per metric,
    over the common test set."""
    per_method = {name: g.set_index("condition") for name, g in method_frame.groupby("method", sort=False)}
    if ceiling is not None:
        per_method[NOISE_CEILING] = ceiling.set_index("condition")
    if conditions is None:
        sets = [set(f.index) for f in per_method.values()]
        conditions = sorted(set.intersection(*sets)) if sets else []
    conditions = list(conditions)
    out = {}
    for metric in metrics:
        means: dict[str, float] = {}
        n_ceiling = 0
        for name, frame in per_method.items():
            column = ceiling_columns.get(metric, metric) if name == NOISE_CEILING else metric
            if column not in frame.columns:
                continue
            lacking = [c for c in conditions if c not in frame.index]
            if lacking:
                raise ValueError(f"{name} has no score for {len(lacking)} common test conditions (e.g. {lacking[:3]})")
            values = frame.loc[conditions, column].to_numpy(dtype=np.float64)
            if name == NOISE_CEILING:
                n_ceiling = int(np.isfinite(values).sum())
            if np.isfinite(values).any():
                means[name] = float(np.nanmean(values))
        lower = metric in LOWER_IS_BETTER
        out[metric] = (*_pick(means, NULL_METHODS, best=True, lower=lower),
                       *_pick(means, CHEATER_METHODS, best=False, lower=lower), means, n_ceiling)
    return out


def _pick(means: dict[str, float], methods: Sequence[str], best: bool, lower: bool) -> tuple[float, str]:
    """The best (``best``) or worst mean among ``methods`` (first in order on ties)."""
    candidates = [(means[m], m) for m in methods if m in means]
    if not candidates:
        return np.nan, ""
    sign = -1.0 if lower else 1.0  # on the "higher is better" scale
    key = (lambda item: sign * item[0]) if best else (lambda item: -sign * item[0])
    value, method = max(candidates, key=key)
    return value, method


def pool_progress_bars(tables: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Pool per-seed progress-bar tables (SPEC 7.1): every number is the mean of its per-seed values.

    ``Score``, ``WAP``, ``BAP`` and ``% of gap closed`` are the means over seeds of the per-seed values
    (so the pooled % of gap closed is the mean of the numbers its SD is over, not a ratio of pooled
    means); ``WAP method``/``BAP method`` list the methods chosen in the seeds (joined by ``" / "`` when
    they differ). Extra columns: ``Seeds``, ``Score SD`` and ``% of gap closed SD`` (standard deviations
    of the per-seed values, ddof 1). A seed whose gap is undefined (BAP not better than WAP) is left out
    of the gap's mean and SD.
    """
    stacked = pd.concat(list(tables), ignore_index=True)
    keys = [*_KEYS, "Metric"]
    grouped = stacked.groupby(keys, sort=False, dropna=False)
    numbers = ["Score", "WAP", "BAP", "% of gap closed", *NULL_METHODS, *CHEATER_METHODS, "Ceiling Perturbations"]
    pooled = grouped[numbers].mean()
    pooled["WAP method"] = grouped["WAP method"].agg(lambda s: " / ".join(dict.fromkeys(s)))
    pooled["BAP method"] = grouped["BAP method"].agg(lambda s: " / ".join(dict.fromkeys(s)))
    pooled["Seeds"] = grouped.size()
    pooled["Score SD"] = grouped["Score"].std()
    pooled["% of gap closed SD"] = grouped["% of gap closed"].std()
    return pooled.reset_index()[[*PROGRESS_COLUMNS, "Seeds", "Score SD", "% of gap closed SD"]]
