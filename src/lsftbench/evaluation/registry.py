"""The metric registry: every per-perturbation metric's name, label, direction, range and bound, written once.

Every table (performance, DE metrics, fraction improved, progress bar, leaderboard, model comparisons) and
every figure reads a metric's label and direction from here (:func:`metric`, :func:`label`,
:func:`lower_is_better`); no other module spells them out.

Families (SPEC 7, 7.2):

* ``expression`` — one perturbation's prediction against its own observation over genes (Pearson r, L2, MAE,
  their top-gene versions, the centred r); computed by the fit and LSFT jobs
  (:func:`lsftbench.evaluation.metrics.metric_columns`).
* ``comparison`` — one perturbation against the others of a test set (PerturBench ranks, cell-eval's
  discrimination scores); computed once every method's predictions exist
  (:mod:`lsftbench.evaluation.comparison`).
* ``de`` — on the perturbation's differentially expressed genes (:mod:`lsftbench.evaluation.de`).

``ceiling``: whether the sampling-noise ceiling bounds the metric (SPEC 7: correlations and distances); the
others (ranks, discrimination scores, DE metrics) take their best achievable performance from the idealized
baseline alone.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "Metric",
    "METRICS",
    "metric",
    "label",
    "lower_is_better",
    "names",
    "from_label",
    "PERFORMANCE_TABLE",
    "DE_TABLE",
    "PROGRESS_METRICS",
    "PRIMARY_SET",
]

Family = Literal["expression", "comparison", "de"]


@dataclass(frozen=True)
class Metric:
    """One per-perturbation metric.

    Attributes
    ----------
    name
        Column name in the per-perturbation frames (``pearson_r``; ``local_/knn_/global_<name>``).
    label
        How tables and figures name it (``{n}``: the top-gene count, ``metrics.top_genes``).
    key
        Short label inside other column names: ``Improvement (<key>)``, ``Undefined (<key>)``.
    suffix
        The per-perturbation improvement column ``improvement_<suffix>``.
    higher_is_better
        Direction (L2, MAE, ranks and MSE: lower is better).
    family
        ``expression``, ``comparison`` or ``de`` (module docstring).
    ceiling
        Bounded by the sampling-noise ceiling (else the idealized baseline alone bounds it).
    bounds
        The range of values (``math.inf`` for unbounded distances).
    table
        The per-method table that shows it: ``performance`` (``lsft_performance``) or ``de`` (``de_metrics``).
    tests
        The performance tables test LSFT against the global fit and kNN on it (Wilcoxon p, BH q).
    """

    name: str
    label: str
    key: str
    suffix: str
    higher_is_better: bool
    family: Family
    ceiling: bool
    bounds: tuple[float, float]
    table: Literal["performance", "de"] = "performance"
    tests: bool = False

    @property
    def top_genes(self) -> bool:
        """Computed over the top genes by control mean (its label names their count)."""
        return "{n}" in self.label

    def labels(self, top_genes: int = 1000) -> tuple[str, str]:
        """(label, key) with the top-gene count filled in."""
        return self.label.format(n=top_genes), self.key.format(n=top_genes)


_R = (-1.0, 1.0)
_DIST = (0.0, math.inf)
_UNIT = (0.0, 1.0)

#: Every metric, in table order.
METRICS: tuple[Metric, ...] = (
    Metric("pearson_r", "Pearson r", "r", "r", True, "expression", True, _R, tests=True),
    Metric("l2", "L2", "L2", "l2", False, "expression", True, _DIST, tests=True),
    Metric("pearson_delta_top1000", "Pearson r (top {n})", "r, top {n}", "r_top1000", True, "expression", True, _R),
    Metric("l2_top1000", "L2 (top {n})", "L2, top {n}", "l2_top1000", False, "expression", True, _DIST),
    Metric("centered_pearson_r", "Centred Pearson r", "centred r", "centered_r", True, "expression", True, _R),
    Metric("mae", "MAE", "MAE", "mae", False, "expression", True, _DIST),
    Metric("ds_l1", "Discrimination (L1)", "DS L1", "ds_l1", True, "comparison", False, _UNIT),
    Metric("rank", "Rank", "rank", "rank", False, "comparison", False, _UNIT),
    Metric("rank_transposed", "Transposed Rank", "transposed rank", "rank_transposed", False, "comparison", False, _UNIT),
    Metric("ds_l2", "Discrimination (L2)", "DS L2", "ds_l2", True, "comparison", False, _UNIT, table="de"),
    Metric("ds_cosine", "Discrimination (cosine)", "DS cosine", "ds_cosine", True, "comparison", False, _UNIT, table="de"),
    Metric("de_overlap", "DE overlap", "DE overlap", "de_overlap", True, "de", False, _UNIT, table="de"),
    Metric("de_top20", "DE top 20", "DE top 20", "de_top20", True, "de", False, _UNIT, table="de"),
    Metric("de_top50", "DE top 50", "DE top 50", "de_top50", True, "de", False, _UNIT, table="de"),
    Metric("de_top100", "DE top 100", "DE top 100", "de_top100", True, "de", False, _UNIT, table="de"),
    Metric("de_direction", "DE direction", "DE direction", "de_direction", True, "de", False, _UNIT, table="de"),
    Metric("de_spearman", "DE Spearman", "DE Spearman", "de_spearman", True, "de", False, _R, table="de"),
    Metric("pearson_de_delta", "Pearson r, DE genes", "r, DE genes", "pearson_de_delta", True, "de", False, _R,
           table="de"),
    Metric("mse_de", "MSE, DE genes", "MSE, DE genes", "mse_de", False, "de", False, _DIST, table="de"),
)
_BY_NAME = {m.name: m for m in METRICS}

#: The metrics of the ``lsft_performance`` and ``de_metrics`` tables, in order.
PERFORMANCE_TABLE = tuple(m.name for m in METRICS if m.table == "performance")
DE_TABLE = tuple(m.name for m in METRICS if m.table == "de")
#: The metrics of the progress bar (table and figure): r, centred r, L2, MAE and the L1 discrimination score.
PROGRESS_METRICS = ("pearson_r", "centered_pearson_r", "l2", "mae", "ds_l1")
#: The metrics the leaderboard shows in its Markdown and gives a % of gap closed (every one is in its CSV).
PRIMARY_SET = ("pearson_r", "l2", "mae", "ds_l1")


def metric(name: str) -> Metric:
    """The registry entry of ``name`` (``KeyError`` naming the known metrics otherwise)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r}; known: {', '.join(_BY_NAME)}") from None


def label(name: str, top_genes: int = 1000) -> str:
    """How tables and figures name metric ``name`` (``pearson_r`` → ``Pearson r``); an unknown name is its own label."""
    return _BY_NAME[name].labels(top_genes)[0] if name in _BY_NAME else name


def lower_is_better(name: str) -> bool:
    """Whether lower values of ``name`` are better (L2, MAE, ranks, MSE)."""
    return not metric(name).higher_is_better


def names(family: Family | None = None) -> tuple[str, ...]:
    """Every metric name (of one ``family``), in table order."""
    return tuple(m.name for m in METRICS if family is None or m.family == family)


def from_label(text: str) -> Metric:
    """The metric a table or figure names ``text`` (``"L2 (top 500)"`` → ``l2_top1000``); ``KeyError`` otherwise."""
    for m in METRICS:
        pattern = re.escape(m.label).replace(re.escape("{n}"), r"\d+")
        if re.fullmatch(pattern, text):
            return m
    raise KeyError(f"no metric is labelled {text!r}")
