"""What the fit and LSFT jobs write: one baseline's predictions, scored per test perturbation (SPEC 7).

:func:`score_global_fit` (rule ``global_fit``) and :func:`score_lsft_shard` (rule ``lsft``) run the
protocol's fit (:mod:`lsftbench.model.protocol`) and compute the per-perturbation metrics
(:func:`lsftbench.evaluation.metrics.metric_columns`); the result's ``write`` puts the table
(Parquet, one row per test perturbation) and the predictions (``.npz``, genes × tests, read back
for the rank metrics, which compare every test perturbation with all others) in place.

These jobs import neither pandas nor anndata nor SciPy (``tests/test_imports.py``): names are
:class:`lsftbench.labels.Labels` and tables are written from NumPy columns. :func:`score_model` (rule
``evaluate_model``) does the same for a model of one's own: its predictions are read from its file
(:mod:`lsftbench.model.external`) and scored exactly as a baseline's global fit.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..data.conditions import CTRL, target_positions
from ..io import constant_column, read_json, write_npz, write_parquet
from ..model.lsft import LsftResult, shard_tests
from ..model.problem import Problem
from ..model.protocol import LsftSettings, Protocol, get_protocol
from .coverage import unpredictable_reasons
from .metrics import metric_columns

__all__ = ["ScoredFit", "ScoredShard", "ScoredModel", "score_global_fit", "score_lsft_shard", "score_model", "key_columns"]

_KEY_TYPES = {"seed": np.int64}


def key_columns(keys: Mapping[str, Any], n_rows: int) -> dict[str, np.ndarray]:
    """The columns that name a job's rows (dataset, protocol, split seed, baseline or model), in ``keys``' order."""
    return {name: constant_column(n_rows, value, _KEY_TYPES.get(name, str)) for name, value in keys.items()}


def _targets(problem: Problem, tests: list[str], exclude: bool) -> np.ndarray | None:
    """Rows of each test perturbation's target gene(s) among the problem's genes, when they are excluded."""
    return target_positions(tests, problem.genes) if exclude else None


def _subgroups(split: str | os.PathLike[str], conditions: list[str]) -> np.ndarray:
    """Each condition's test subgroup from the split file (SPEC 10; "" where the file has none, as an older run's)."""
    groups = read_json(split).get("subgroups") or {}
    return np.asarray([groups.get(c, "") for c in conditions], dtype=str)


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else float("nan")


@dataclass
class ScoredFit:
    """A baseline's global fit on one (dataset, protocol, split seed), scored."""

    protocol: Protocol
    problem: Problem
    predicted: np.ndarray  # genes × predictable tests
    observed: np.ndarray
    table: dict[str, np.ndarray]
    keys: dict[str, Any] = field(default_factory=dict)

    def write(
        self, metrics: str | os.PathLike[str], predictions: str | os.PathLike[str], shared: str | os.PathLike[str]
    ) -> str:
        """Write the metrics table, the predictions and the LSFT products the K shards share; returns a log line."""
        problem = self.problem
        write_parquet(self.table, metrics)
        reasons = unpredictable_reasons(problem.test_not_predictable, problem.measured_genes, problem.embedding)
        reasons.update(problem.reasons)  # decided by the alignment (the additive model's training singles)
        write_npz(
            predictions,
            conditions=np.asarray(problem.test, dtype=str),
            genes=np.asarray(problem.genes, dtype=str),
            predicted=self.predicted,
            observed=self.observed,
            not_predictable=np.asarray(json.dumps(reasons)),  # why the other tests are not predictable
            # training perturbations the fit could not use, and why (listed in the summary table)
            not_trained=np.asarray(json.dumps(unpredictable_reasons(problem.train_not_used, problem.measured_genes,
                                                                    problem.embedding))),
            # the dimensions the embeddings have (PCA ones are capped by the rank of the training data)
            dims=np.asarray(json.dumps({"gene": int(problem.embedding.A.shape[1]) if problem.embedding.A.size else 0,
                                        "pert": int(problem.embedding.B.shape[0]), "model": problem.embedding.model})),
        )
        started = time.perf_counter()
        names = self.protocol.save_shared(problem, shared)
        return (f"LSFT products shared with the K shards: {', '.join(names) or 'none (nothing is refitted)'} "
                f"({time.perf_counter() - started:.2f} s)")

    def summary(self) -> str:
        """One log line: what was fitted and its mean scores."""
        k = self.keys
        return (f"{k.get('baseline')} on {k.get('dataset')} ({k.get('protocol')}, seed {k.get('seed')}): "
                f"mean Pearson r {_mean(self.table['pearson_r']):.4f}, mean L2 {_mean(self.table['l2']):.4f} over "
                f"{len(self.problem.test)} test perturbations ({len(self.problem.test_not_predictable)} not predictable)")


def score_global_fit(
    protocol: str | Protocol,
    pseudobulk: str | os.PathLike[str],
    split: str | os.PathLike[str],
    embedding: str | os.PathLike[str],
    *,
    ridge: float,
    top_genes: int,
    min_predictable_tests: int,
    keys: Mapping[str, Any],
    exclude_target_gene: bool = False,
) -> ScoredFit:
    """Fit one baseline on all training conditions, predict and score its test perturbations.

    With ``exclude_target_gene`` each perturbation's target gene(s) are left out of its metrics (SPEC 7).

    Raises
    ------
    ValueError
        When the baseline can predict fewer than ``min_predictable_tests`` test perturbations.
    """
    protocol = get_protocol(protocol)
    problem = protocol.load_problem(str(pseudobulk), str(split), str(embedding), top_genes, predict_all=True)
    n_test = len(problem.test) + len(problem.test_not_predictable)
    if len(problem.test) < min_predictable_tests:
        raise ValueError(
            f"{embedding}: baseline {keys.get('baseline')} can predict only {len(problem.test)} of the {n_test} test "
            f"perturbations of {keys.get('dataset')} (fewer than metrics.min_predictable_tests = "
            f"{min_predictable_tests}); not predictable: {problem.test_not_predictable[:10]}"
        )
    predicted = protocol.global_predictions(problem, ridge)
    observed = problem.y[:, problem.col(problem.test)]
    exclude = _targets(problem, problem.test, exclude_target_gene)
    n_rows = len(problem.test)
    table = {
        **key_columns(keys, n_rows),
        "condition": np.asarray(problem.test, dtype=str),
        "subgroup": _subgroups(split, problem.test),
        # centred r: m over all training perturbations (SPEC 7); ranks: in the aggregation, over the common test set
        **metric_columns(predicted, observed, problem.top_idx, problem.train_mean, exclude),
        "n_genes": constant_column(n_rows, len(problem.genes), np.int64),
        "n_test": constant_column(n_rows, n_test, np.int64),
        "n_test_predictable": constant_column(n_rows, len(problem.test), np.int64),
        "synthetic_stand_in": constant_column(n_rows, ",".join(problem.embedding.info.get("synthetic_parts", [])), str),
    }
    return ScoredFit(protocol, problem, predicted, observed, table, dict(keys))


@dataclass
class ScoredShard:
    """LSFT and kNN predictions of one shard (dataset, protocol, split seed, baseline, K %, chunk), scored."""

    result: LsftResult
    table: dict[str, np.ndarray]
    genes: list[str]
    keys: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def write(self, metrics: str | os.PathLike[str], predictions: str | os.PathLike[str]) -> None:
        """Write the metrics table and the LSFT and kNN predictions (float32, for the rank metrics)."""
        write_parquet(self.table, metrics)
        write_npz(
            predictions,
            conditions=np.asarray(self.result.conditions, dtype=str),
            genes=np.asarray(self.genes, dtype=str),
            local=self.result.local.astype(np.float32),
            knn=self.result.knn.astype(np.float32),
        )

    def summary(self) -> str:
        """One log line: the shard's size and mean scores."""
        k = self.keys
        return (f"{k.get('baseline')} on {k.get('dataset')} ({k.get('protocol')}, seed {k.get('seed')}), top "
                f"{k.get('pct')}%: {len(self.result.conditions)} perturbations, {self.result.n_neighbours} neighbours "
                f"each, mean local r {_mean(self.table['local_pearson_r']):.4f}, mean kNN r "
                f"{_mean(self.table['knn_pearson_r']):.4f}")


def score_lsft_shard(
    protocol: str | Protocol,
    pseudobulk: str | os.PathLike[str],
    split: str | os.PathLike[str],
    embedding: str | os.PathLike[str],
    shared: str | os.PathLike[str] | None,
    *,
    top_pct: float,
    chunk: int,
    n_chunks: int,
    settings: LsftSettings,
    top_genes: int,
    keys: Mapping[str, Any],
    exclude_target_gene: bool = False,
) -> ScoredShard:
    """LSFT and the kNN reference for chunk ``chunk`` of ``n_chunks`` of the predictable test perturbations.

    ``shared`` is the directory of products the global fit wrote for this baseline (default protocol),
    memory-mapped instead of recomputed. More chunks than test perturbations are capped (the shards past
    the cap are empty, with a warning).
    """
    protocol = get_protocol(protocol)
    problem = protocol.load_problem(str(pseudobulk), str(split), str(embedding), top_genes, predict_all=False)
    tests, n_used = shard_tests(problem.test, chunk, n_chunks)
    warnings = []
    if n_used < n_chunks:
        warnings.append(
            f"lsft.test_chunks = {n_chunks} but only {len(problem.test)} test perturbations are predictable: capped "
            f"to {n_used} chunks; chunk {chunk} is {'empty' if not tests else f'{len(tests)} perturbations'}"
        )
    result = protocol.lsft(problem, top_pct, tests, settings, shared=shared or None)
    observed = problem.y[:, problem.col(tests)]
    exclude = _targets(problem, tests, exclude_target_gene)
    local = metric_columns(result.local, observed, problem.top_idx, problem.train_mean, exclude)  # centred r: SPEC 7
    knn = metric_columns(result.knn, observed, problem.top_idx, problem.train_mean, exclude)
    n_rows = len(tests)
    table = {
        **key_columns(keys, n_rows),
        "top_pct": constant_column(n_rows, top_pct, np.float64),
        "condition": np.asarray(tests, dtype=str),
        "subgroup": _subgroups(split, tests),
        **{f"local_{name}": values for name, values in local.items()},
        **{f"knn_{name}": values for name, values in knn.items()},
        "train_size": constant_column(n_rows, result.n_neighbours, np.int64),
        "n_train_candidates": constant_column(n_rows, len(protocol.neighbour_candidates(problem)), np.int64),
        "mean_similarity": np.asarray(result.mean_similarity, dtype=np.float64),
        "neighbours": np.asarray([";".join(n) for n in result.neighbours], dtype=str),
    }
    for name, value in protocol.lsft_columns(settings).items():
        table[name] = constant_column(n_rows, value, bool if isinstance(value, bool) else str)
    table["n_genes"] = constant_column(n_rows, len(problem.genes), np.int64)
    return ScoredShard(result, table, list(problem.genes), {**keys, "pct": f"{top_pct:g}"}, warnings)


@dataclass
class ScoredModel:
    """A model's own predictions for one (dataset, split seed), scored as a global fit is (SPEC 7.3)."""

    table: dict[str, np.ndarray]
    conditions: list[str]
    genes: list[str]
    predicted: np.ndarray
    observed: np.ndarray
    missing: list[str]
    notes: list[str]
    keys: dict[str, Any] = field(default_factory=dict)

    def write(self, metrics: str | os.PathLike[str], predictions: str | os.PathLike[str]) -> None:
        """Write the metrics table and the predictions, in the layout of a global fit's."""
        write_parquet(self.table, metrics)
        reasons = {c: f"not in the predictions of {self.keys.get('model')}" for c in self.missing}
        write_npz(
            predictions,
            conditions=np.asarray(self.conditions, dtype=str),
            genes=np.asarray(self.genes, dtype=str),
            predicted=self.predicted,
            observed=self.observed,
            not_predictable=np.asarray(json.dumps(reasons)),
        )

    def summary(self) -> str:
        k = self.keys
        return (f"model {k.get('model')} on {k.get('dataset')} (seed {k.get('seed')}): mean Pearson r "
                f"{_mean(self.table['pearson_r']):.4f}, mean L2 {_mean(self.table['l2']):.4f} over {len(self.conditions)} "
                f"test perturbations ({len(self.missing)} not predicted)")


def score_model(
    path: str | os.PathLike[str],
    pseudobulk: str | os.PathLike[str],
    split: str | os.PathLike[str],
    *,
    quantity: str,
    top_genes: int,
    keys: Mapping[str, Any],
    exclude_target_gene: bool = False,
    scale: str = "log",
    condition_column: str | None = None,
    control_label: str | None = None,
    cell_level: str | bool = "auto",
    cell_totals: str | os.PathLike[str] | None = None,
) -> ScoredModel:
    """Read a model's predictions for one (dataset, split seed), check them and score every test perturbation.

    Δ̂ is the prediction minus the control mean (``quantity: expression``) or the prediction itself
    (``delta``); the metrics are those of a baseline's global fit, over all measured genes (the centred
    Pearson r centred on the mean Δ of all training perturbations). ``scale``, ``condition_column``,
    ``control_label`` and ``cell_level`` are the model's options (:func:`lsftbench.model.external.read_predictions`);
    ``cell_totals`` is the dataset's :func:`lsftbench.data.cell_totals.write_cell_totals` file, which
    ``scale: counts`` needs.
    """
    from ..data.cell_totals import read_count_target
    from ..data.mean_expression import read_mean_expression, require_conditions, top_expressed, training_mean_delta
    from ..model.external import read_predictions

    pb = read_mean_expression(pseudobulk)
    parts = read_json(split)
    require_conditions(pb, [c for part in ("train", "val", "test") for c in parts.get(part, [])], pseudobulk)
    x = np.asarray(pb.X, dtype=np.float64)
    ctrl = x[pb.obs_names.get_loc(CTRL)]
    genes = list(pb.var_names)
    count_target = read_count_target(cell_totals) if cell_totals else None
    preds = read_predictions(path, quantity=quantity, genes=genes, ctrl_mean=ctrl, split=parts,
                             model=str(keys.get("model")), dataset=str(keys.get("dataset")), seed=int(keys.get("seed", 0)),
                             scale=scale, condition_column=condition_column, control_label=control_label,
                             cell_level=cell_level, count_target=count_target)
    observed = (x[pb.obs_names.get_indexer(preds.conditions)] - ctrl).T
    train_mean = training_mean_delta(pb, parts)
    exclude = target_positions(preds.conditions, pb.var_names) if exclude_target_gene else None
    n_rows, n_test = len(preds.conditions), len(parts["test"])
    table = {
        **key_columns(keys, n_rows),
        "condition": np.asarray(preds.conditions, dtype=str),
        **metric_columns(preds.delta, observed, top_expressed(ctrl, top_genes), train_mean, exclude),
        "n_genes": constant_column(n_rows, len(genes), np.int64),
        "n_test": constant_column(n_rows, n_test, np.int64),
        "n_test_predictable": constant_column(n_rows, n_rows, np.int64),
        "quantity": constant_column(n_rows, quantity, str),
    }
    return ScoredModel(table, preds.conditions, genes, preds.delta, observed, preds.missing, preds.notes, dict(keys))
