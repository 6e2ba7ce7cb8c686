"""The progress bar of a dataset: worst acceptable and best achievable performance (SPEC 7, seed 003).

* **WAP** (worst acceptable performance) = the best of the null methods on the test set: ``train
  mean`` (mean Δ of all training perturbations, ``ctrl`` excluded), ``no change`` (Δ̂ = 0; its
  Pearson r is undefined, NaN, so it only competes on L2) and ``random perturbation embedding`` (the
  ridge model with the training-PCA gene embedding and seeded N(0, 1) perturbation embedding,
  exactly baseline ``lpm_randomPertEmb`` for the same seed).
* **BAP** (best achievable performance) = the tighter, i.e. worse, of two cheater bounds: the
  ``idealized baseline (uses test data)`` (:func:`idealized_embedding`) and the
  ``sampling-noise ceiling`` (:mod:`lsftbench.evaluation.noise_ceiling`); metrics the ceiling does not bound
  (the discrimination score, ranks: :mod:`lsftbench.evaluation.registry`) take the idealized baseline alone.
* ``% of gap closed = 100 · (score − WAP) / (BAP − WAP)`` (:func:`gap_closed`, the only place it is computed);
  for L2 and MAE (lower is better) the same formula on −L2, which gives the same number. NaN when BAP is not
  better than WAP.

The null and cheater methods' predictions are computed from the dataset's pseudobulk and one split (no
embedding files are needed, :func:`null_predictions`) and saved; the tables score them like every other
method, on the genes every compared method predicts (SPEC 7, one gene set per comparison), and
:func:`progress_bar_table` takes every method's score and every bound over the same perturbations: those of
the common test set where every compared method has the metric defined.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from ..data.conditions import CTRL
from ..data.mean_expression import MeanExpression, training_mean_delta
from ..embeddings.build import Embedding, build_embedding, pert_columns_from_rows, training_pca_gene_scores
from ..embeddings.pca import pca_scores
from ..io import read_json, read_npz, write_npz
from ..labels import Labels
from ..model.global_fit import global_predictions
from ..model.problem import make_problem
from .registry import label, lower_is_better, metric
from .test_sets import defined_pairs

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
    "COMPETING_KINDS",
    "PROGRESS_COLUMNS",
    "NullPredictions",
    "train_mean_delta",
    "idealized_embedding",
    "random_pert_embedding",
    "null_predictions",
    "null_predictions_from_files",
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
#: The kinds of method of the comparison frame that get a row of the progress bar (the others are its bounds).
COMPETING_KINDS = {"external model": "external", "global fit": "global", "LSFT": "LSFT", "kNN": "kNN"}
PROGRESS_COLUMNS = [
    "Baseline", "Top %", "Method", "Metric", "Score", "WAP", "WAP method", "BAP", "BAP method", "% of gap closed",
    # every bound's mean (the figure draws the ones that do not bind too) and the ceiling's perturbations
    "train mean", "no change", "random perturbation embedding", "idealized baseline (uses test data)",
    "sampling-noise ceiling", "Perturbations", "Ceiling Perturbations",
]
_KEYS = ["Baseline", "Top %", "Method"]


def _delta(pseudobulk: ad.AnnData | MeanExpression, conditions: Sequence[str]) -> np.ndarray:
    """Δ (genes × ``conditions``) from a pseudobulk."""
    x = np.asarray(pseudobulk.X, dtype=np.float64)
    names = pd.Index(pseudobulk.obs_names)
    return (x[names.get_indexer(list(conditions))] - x[names.get_loc(CTRL)]).T


def _as_anndata(pseudobulk: ad.AnnData | MeanExpression) -> ad.AnnData:
    import anndata as ad

    if isinstance(pseudobulk, ad.AnnData):
        return pseudobulk
    return ad.AnnData(
        X=np.asarray(pseudobulk.X, dtype=np.float64), obs=pd.DataFrame(index=pseudobulk.obs_names), var=pd.DataFrame(index=pseudobulk.var_names)
    )


def train_mean_delta(pseudobulk: ad.AnnData | MeanExpression, split: dict[str, list[str]]) -> np.ndarray:
    """``m`` = mean Δ of the training perturbations (``ctrl`` excluded) over all measured genes.

    The ``train mean`` null prediction and the centre of the centred Pearson r (SPEC 7):
    :func:`lsftbench.data.mean_expression.training_mean_delta`, for an AnnData's pandas names too.
    """
    return training_mean_delta(MeanExpression(np.asarray(pseudobulk.X), Labels(pseudobulk.obs_names), Labels(pseudobulk.var_names)), split)


def idealized_embedding(
    pseudobulk: ad.AnnData | MeanExpression,
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
    names = pd.Index(pseudobulk.obs_names)
    x = np.asarray(pseudobulk.X, dtype=np.float64)
    expr = pd.DataFrame(x[names.get_indexer(columns)].T, index=pseudobulk.var_names, columns=columns)
    scores = training_pca_gene_scores(expr, columns, dim)
    if pert == "response":
        conds, b, missing = columns, pca_scores(_delta(pseudobulk, columns).T, dim).T, []
    elif pert == "gene_rows":
        conds, b, missing = pert_columns_from_rows(scores, columns)
    else:
        raise ValueError(f"pert must be 'response' or 'gene_rows', got {pert!r}")
    return Embedding(
        genes=Labels(pseudobulk.var_names, name="gene"),
        A=scores.to_numpy(),
        conditions=Labels(conds, name="condition"),
        B=np.asarray(b, dtype=np.float64),
        gene_type="idealized_pca",
        pert_type=f"idealized_{pert}",
        info={"uses_test_data": True, "not_predictable": sorted(missing)},
    )


def random_pert_embedding(pseudobulk: ad.AnnData | MeanExpression, split: dict[str, list[str]], dim: int, seed: int) -> Embedding:
    """Training-PCA gene embedding and seeded N(0, 1) perturbation embedding (= ``lpm_randomPertEmb``)."""
    spec = {"model": "ridge", "gene": {"type": "training_pca"}, "pert": {"type": "random", "seed": seed}}
    return build_embedding(spec, _as_anndata(pseudobulk), split, dim, dataset="progress_bar")


@dataclass
class NullPredictions:
    """The null and idealized methods' predicted Δ for one split's test perturbations, over all measured genes.

    Also what scoring them (and every other method) on a gene set needs: the observed Δ of the test
    perturbations, the control mean and the training mean Δ.
    """

    genes: list[str]  # the measured genes (the pseudobulk's)
    test: list[str]  # the split's test perturbations that the pseudobulk has
    observed: np.ndarray  # genes × test: observed Δ
    ctrl_mean: np.ndarray  # x̄_ctrl
    train_mean: np.ndarray  # mean Δ of the training perturbations, ctrl excluded
    predicted: dict[str, tuple[list[str], np.ndarray]]  # method → (its test perturbations, genes × those Δ̂)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write to ``.npz`` (atomically)."""
        methods = list(self.predicted)
        arrays = {f"predicted_{i}": self.predicted[m][1] for i, m in enumerate(methods)}
        arrays.update({f"conditions_{i}": np.asarray(self.predicted[m][0], dtype=str) for i, m in enumerate(methods)})
        write_npz(path, genes=np.asarray(self.genes, dtype=str), test=np.asarray(self.test, dtype=str),
                  observed=self.observed, ctrl_mean=self.ctrl_mean, train_mean=self.train_mean,
                  methods=np.asarray(json.dumps(methods)), **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> NullPredictions:
        """Read a file written by :meth:`save`."""
        z = read_npz(path)
        methods = json.loads(str(z["methods"]))
        predicted = {m: (z[f"conditions_{i}"].tolist(), z[f"predicted_{i}"]) for i, m in enumerate(methods)}
        return cls(z["genes"].tolist(), z["test"].tolist(), z["observed"], z["ctrl_mean"], z["train_mean"], predicted)


def null_predictions(
    pseudobulk: ad.AnnData | MeanExpression,
    split: dict[str, list[str]],
    *,
    dim: int = 10,
    ridge: float = 0.1,
    random_seed: int = 1,
    idealized_pert: Literal["response", "gene_rows"] = "response",
) -> NullPredictions:
    """The null methods' and the idealized baseline's predictions of one split's test perturbations.

    Parameters
    ----------
    pseudobulk
        The dataset's pseudobulk (conditions × genes means, ``ctrl`` included).
    split
        ``{"train", "val", "test"}`` condition lists (one protocol and seed).
    dim, ridge
        ``pca_dim`` and ``ridge_penalty`` of the baselines.
    random_seed
        Seed of the random perturbation embedding (use ``lpm_randomPertEmb``'s to reproduce it).
    idealized_pert
        Perturbation embedding of the idealized baseline (:func:`idealized_embedding`).

    Returns
    -------
    NullPredictions
        Methods in the order of ``NULL_METHODS`` then ``IDEALIZED``, each over every test condition it can predict.
    """
    measured = set(pseudobulk.obs_names)
    test = [c for c in split["test"] if c in measured]
    obs = _delta(pseudobulk, test)
    m = train_mean_delta(pseudobulk, split)
    names = pd.Index(pseudobulk.obs_names)
    ctrl = np.asarray(pseudobulk.X, dtype=np.float64)[names.get_loc(CTRL)]
    predicted = {
        TRAIN_MEAN: (test, np.repeat(m[:, None], len(test), axis=1)),
        NO_CHANGE: (test, np.zeros_like(obs)),
    }
    for method, emb in ((RANDOM_PERT, random_pert_embedding(pseudobulk, split, dim, random_seed)),
                        (IDEALIZED, idealized_embedding(pseudobulk, split, dim, idealized_pert))):
        problem = make_problem(pseudobulk, {**split, "test": test}, emb)
        if not problem.genes.equals(pd.Index(pseudobulk.var_names)):
            raise AssertionError("null/cheater embeddings must cover every measured gene")
        predicted[method] = (list(problem.test), global_predictions(problem, ridge))
    return NullPredictions([str(g) for g in pseudobulk.var_names], test, obs, ctrl.copy(), m, predicted)


def null_predictions_from_files(
    pseudobulk: str | os.PathLike[str], split: str | os.PathLike[str], **settings: Any
) -> NullPredictions:
    """:func:`null_predictions` of a pseudobulk h5ad and a split JSON (rule ``progress_methods``); ``settings`` are
    its keywords."""
    from ..data.mean_expression import read_mean_expression

    return null_predictions(read_mean_expression(pseudobulk), read_json(split), **settings)


def progress_bar_table(
    frame: pd.DataFrame,
    ceiling: pd.DataFrame | None,
    *,
    metrics: Sequence[str] = ("pearson_r", "l2"),
    ceiling_columns: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """The progress-bar table of one dataset and split seed: see the module docstring.

    Parameters
    ----------
    frame
        One row per (method, test perturbation) of one seed, all on one gene set (the comparison frame of
        :func:`lsftbench.report.aggregate.dataset_frames`): columns ``method``, ``kind``, ``baseline``,
        ``top_pct``, ``condition`` and the metrics. Methods of the :data:`COMPETING_KINDS` get rows; the
        ``null method`` and ``uses test data`` kinds (:data:`NULL_METHODS`, :data:`IDEALIZED`) are the bounds.
    ceiling
        Per-condition noise ceiling (:func:`lsftbench.evaluation.noise_ceiling.noise_ceiling`) on the same genes,
        or ``None``.
    metrics
        The metrics to report (labels from :mod:`lsftbench.evaluation.registry`).
    ceiling_columns
        Metric → ceiling column when they differ, e.g. ``{"centered_pearson_r": "centered_pearson_r_seed1"}``.

    Returns
    -------
    pandas.DataFrame
        :data:`PROGRESS_COLUMNS`: one row per (Baseline, Top %, Method, Metric). Per metric, every score and every
        bound is the mean over the same perturbations, ``Perturbations``: the common test set's perturbations where
        every compared method (bounds included) has the metric defined (:func:`defined_pairs`); a method whose
        metric is undefined everywhere (``no change`` for Pearson r) does not compete. The noise ceiling (metrics
        it bounds only) is the mean over those of them with enough cells (``Ceiling Perturbations``).
    """
    ceiling_columns = dict(ceiling_columns or {})
    rows = _competitors(frame)
    parts = []
    for name in metrics:
        if name not in frame.columns:
            raise ValueError(f"the comparison frame has no column {name!r}")
        keep = set(defined_pairs(frame, name)["condition"])
        values = frame[frame["condition"].isin(keep)].groupby("method", sort=False)[name].mean()
        means = {m: float(values[m]) for m in (*NULL_METHODS, IDEALIZED) if m in values.index and np.isfinite(values[m])}
        n_ceiling = 0
        if ceiling is not None and metric(name).ceiling:
            column = ceiling_columns.get(name, name)
            bound = ceiling.set_index("condition")
            lacking = sorted(keep - set(bound.index))
            if lacking:
                raise ValueError(f"{NOISE_CEILING} has no score for {len(lacking)} common test conditions "
                                 f"(e.g. {lacking[:3]})")
            column_values = bound.loc[sorted(keep), column].to_numpy(dtype=np.float64)
            n_ceiling = int(np.isfinite(column_values).sum())
            if n_ceiling:
                means[NOISE_CEILING] = float(np.nanmean(column_values))
        lower = lower_is_better(name)
        wap, wap_method = _pick(means, NULL_METHODS, best=True, lower=lower)
        bap, bap_method = _pick(means, CHEATER_METHODS, best=False, lower=lower)
        part = rows[_KEYS].copy()
        part["Metric"] = label(name)
        part["Score"] = [float(values.get(m, np.nan)) for m in rows["method"]]
        part["WAP"], part["WAP method"], part["BAP"], part["BAP method"] = wap, wap_method, bap, bap_method
        part["% of gap closed"] = gap_closed(part["Score"].to_numpy(), wap, bap, lower)
        for method in (*NULL_METHODS, *CHEATER_METHODS):
            part[method] = means.get(method, np.nan)
        part["Perturbations"] = len(keep)
        part["Ceiling Perturbations"] = n_ceiling
        parts.append(part)
    return pd.concat(parts, ignore_index=True)[PROGRESS_COLUMNS]


def _competitors(frame: pd.DataFrame) -> pd.DataFrame:
    """The progress bar's rows: each model of one's own, then each baseline × K (LSFT, kNN), then each global fit."""
    methods = frame.drop_duplicates("method")
    methods = methods[methods["kind"].isin(list(COMPETING_KINDS))]
    rows = pd.DataFrame({"method": methods["method"].to_numpy(), "kind": methods["kind"].to_numpy(),
                         "Baseline": methods["baseline"].to_numpy(), "Method": methods["kind"].map(COMPETING_KINDS).to_numpy(),
                         "top_pct": methods["top_pct"].to_numpy(dtype=np.float64)})
    rows["Top %"] = [COMPETING_KINDS[k] if k in ("external model", "global fit") else f"{p:g}%"
                     for k, p in zip(rows["kind"], rows["top_pct"])]
    order = {"external model": 0, "LSFT": 1, "kNN": 1, "global fit": 2}
    within = {"LSFT": 0, "kNN": 1, "external model": 0, "global fit": 0}
    rows["_group"] = rows["kind"].map(order)
    rows["_within"] = rows["kind"].map(within)
    rows["_pct"] = rows["top_pct"].fillna(0.0)
    external = rows[rows["_group"] == 0]  # models in their own order
    rest = rows[rows["_group"] > 0].sort_values(["_group", "Baseline", "_pct", "_within"], kind="stable")
    return pd.concat([external, rest], ignore_index=True)


def gap_closed(score: np.ndarray | float, wap: float, bap: float, lower_is_better: bool) -> np.ndarray:
    """``100 · (score − WAP) / (BAP − WAP)``; NaN when BAP is not better than WAP (SPEC 7, seed 003).

    The one place the % of gap closed is computed: the progress bar, the leaderboard and the figures use it."""
    better = (wap - bap) if lower_is_better else (bap - wap)
    if not np.isfinite(better) or better <= 0:
        return np.full(np.shape(score), np.nan)
    return 100.0 * (np.asarray(score, dtype=np.float64) - wap) / (bap - wap)


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
    they differ); ``Perturbations`` and ``Ceiling Perturbations`` are summed over the seeds. Extra columns: ``Seeds``, ``Score SD`` and ``% of gap closed SD`` (standard deviations
    of the per-seed values, ddof 1). A seed whose gap is undefined (BAP not better than WAP) is left out
    of the gap's mean and SD.
    """
    stacked = pd.concat(list(tables), ignore_index=True)
    keys = [*_KEYS, "Metric"]
    grouped = stacked.groupby(keys, sort=False, dropna=False)
    numbers = ["Score", "WAP", "BAP", "% of gap closed", *NULL_METHODS, *CHEATER_METHODS]
    pooled = grouped[numbers].mean()
    counts = ["Perturbations", "Ceiling Perturbations"]
    pooled[counts] = grouped[counts].sum()
    pooled["WAP method"] = grouped["WAP method"].agg(lambda s: " / ".join(dict.fromkeys(s)))
    pooled["BAP method"] = grouped["BAP method"].agg(lambda s: " / ".join(dict.fromkeys(s)))
    pooled["Seeds"] = grouped.size()
    pooled["Score SD"] = grouped["Score"].std()
    pooled["% of gap closed SD"] = grouped["% of gap closed"].std()
    return pooled.reset_index()[[*PROGRESS_COLUMNS, "Seeds", "Score SD", "% of gap closed SD"]]
