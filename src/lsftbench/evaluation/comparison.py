"""Scores that need every method's predictions at once (SPEC 7, 7.1, 7.2), and one gene set per comparison.

* :func:`comparison_and_de_columns` — a method's PerturBench ranks, cell-eval discrimination scores and
  spread ratio over a test set (each prediction against the other perturbations' observations), and its
  DE-gene metrics (SPEC 7.2), for every column of its predictions.
* :func:`comparison_genes` — the genes every compared method predicts (SPEC 7, "One gene set per
  comparison"): a table that puts methods side by side scores all of them on these genes, bounds included.
* :func:`score_on_genes` — every per-perturbation metric of a method's predictions on a gene set (the
  expression metrics of :func:`lsftbench.evaluation.metrics.metric_columns`, then the comparison and DE
  metrics), with the reference quantities (control mean, training mean) of that gene set.

The report stage reads the fits, shards and models from their files and calls these functions
(:mod:`lsftbench.report.aggregate`); nothing here formats a table.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..data.conditions import target_positions
from ..data.mean_expression import top_expressed
from ..labels import Labels
from .de import DEReference, DEResults, de_metrics
from .metrics import COMPARISON_COLUMNS, comparison_metrics, mean_pairwise_distance, metric_columns

__all__ = [
    "ComparisonSettings",
    "ScoreCache",
    "comparison_and_de_columns",
    "common_positions",
    "comparison_genes",
    "genes_digest",
    "GeneReference",
    "score_on_genes",
]


@dataclass(frozen=True)
class ComparisonSettings:
    """What the comparison and DE metrics depend on: ``metrics.rank_distance``, ``metrics.exclude_target_gene``
    (every metric; the discrimination score always leaves the target out, as cell-eval does), ``metrics.de_fdr``
    and ``metrics.top_genes`` (the top-gene metrics when a method is scored on another gene set)."""

    rank_distance: str = "l2"
    exclude_target_gene: bool = False
    de_fdr: float = 0.05
    top_genes: int = 1000


class ScoreCache:
    """Comparison and DE metrics already computed, by a digest of their inputs; and what they share.

    Methods whose predictions, observations, test set and targets are byte for byte those of a method scored
    before (e.g. the kNN of every baseline with the same perturbation embedding) share its numbers instead of
    computing them again. Methods scored on the same observations (every method of a split seed) share what
    depends on the observations alone: the denominator of the spread ratio, the DE selection and the DE sets,
    top-N lists and observed ranks of the DE-gene metrics (:class:`lsftbench.evaluation.de.DEReference`).
    """

    def __init__(self) -> None:
        self._seen: dict[tuple[bytes, ...], tuple[dict[str, np.ndarray], float]] = {}
        self._shared: dict[tuple, object] = {}

    @staticmethod
    def digest(a: np.ndarray) -> bytes:
        """A fingerprint of an array's bytes, dtype and shape."""
        data = np.ascontiguousarray(a).view(np.uint8).data
        return hashlib.sha256(data).digest() + repr((a.dtype.str, a.shape)).encode()

    @classmethod
    def key(cls, *arrays: np.ndarray) -> tuple[bytes, ...]:
        return tuple(cls.digest(a) for a in arrays)

    def get(self, key: tuple[bytes, ...]) -> tuple[dict[str, np.ndarray], float] | None:
        hit = self._seen.get(key)
        return None if hit is None else ({k: v.copy() for k, v in hit[0].items()}, hit[1])

    def put(self, key: tuple[bytes, ...], value: tuple[dict[str, np.ndarray], float]) -> None:
        self._seen[key] = value

    def shared(self, key: tuple, make: Callable[[], Any]) -> Any:
        """The value of ``make()`` stored under ``key`` (computed on first use)."""
        if key not in self._shared:
            self._shared[key] = make()
        return self._shared[key]

    def de_selection(self, de: DEResults, conditions: Sequence[str], genes: Sequence[str]) -> DEResults:
        """``de.select(conditions).restrict(genes)``, once per (``de``, conditions, genes)."""
        _held, selection = self.shared(("de", id(de), tuple(conditions), tuple(genes)),  # held: ``de`` outlives its id
                                       lambda: (de, _with_order(de.select(list(conditions)).restrict(list(genes)))))
        return selection


def _with_order(de: DEResults) -> DEResults:
    """``de`` with its significance ordering computed (it is kept with the selection and shared)."""
    de.order  # noqa: B018 - computes and keeps it
    return de


def comparison_and_de_columns(
    pred: np.ndarray,
    observed: np.ndarray,
    targets: np.ndarray,
    keep: np.ndarray,
    settings: ComparisonSettings,
    de: DEResults | None,
    cache: ScoreCache | None = None,
    de_key: np.ndarray | None = None,
) -> tuple[dict[str, np.ndarray], float]:
    """One method's comparison and DE metrics for every column of ``pred``, and its spread ratio over ``keep``.

    Parameters
    ----------
    pred, observed
        genes × perturbations predicted and observed Δ.
    targets
        The target genes' rows per perturbation (p × 2, ``-1`` padding: :func:`target_positions`).
    keep
        Positions of the test set the comparison metrics are over (the common test set); the other columns get
        NaN ranks and discrimination scores. Fewer than two: every comparison metric is NaN.
    settings
        :class:`ComparisonSettings`.
    de
        The DE results of the perturbations of ``pred``'s columns on ``pred``'s genes, or ``None`` (no DE metrics).
    cache, de_key
        With ``cache``, a method whose inputs (and ``de_key``, naming the conditions and genes ``de`` was selected
        for) repeat those of an earlier one reuses its numbers, and one whose observations, test set, targets and
        ``de_key`` repeat shares what depends on them alone (``de_key`` must then name ``de``'s selection: a
        cache serves one dataset's DE results).
    """
    key = None
    obs_spread, de_reference = None, None
    if cache is not None:
        key = cache.key(pred, observed, targets, keep, *(() if de_key is None else (de_key,)))
        hit = cache.get(key)
        if hit is not None:
            return hit
        _, obs_key, targets_key, keep_key, *de_part = key
        if len(keep) >= 2:
            obs_spread = cache.shared(("spread", obs_key, keep_key),
                                      lambda: mean_pairwise_distance(np.asarray(observed, dtype=np.float64)[:, keep]))
        if de is not None and de_part:
            exclude = targets if settings.exclude_target_gene else None
            ref_key = ("de_reference", obs_key, b"" if exclude is None else targets_key, de_part[0], settings.de_fdr)
            de_reference = cache.shared(ref_key, lambda: DEReference(observed, de, settings.de_fdr, exclude))
    n = pred.shape[1]
    out = {name: np.full(n, np.nan) for name in COMPARISON_COLUMNS}
    spread = float("nan")
    if len(keep) >= 2:
        values, spread = comparison_metrics(pred[:, keep], observed[:, keep], targets[keep],
                                            rank_distance=settings.rank_distance,
                                            exclude_target_gene=settings.exclude_target_gene, obs_spread=obs_spread)
        for name, column in values.items():
            out[name][keep] = column
    if de is not None:
        out.update(de_metrics(pred, observed, de, settings.de_fdr,
                              exclude=targets if settings.exclude_target_gene else None, reference=de_reference))
    if cache is not None and key is not None:
        cache.put(key, (out, spread))
    return out, spread


def common_positions(conditions: Labels | Sequence[str], names: Sequence[str]) -> np.ndarray:
    """Positions of ``names`` (sorted, as the ranks take them) among ``conditions``; none for fewer than two.

    ``ValueError`` when one of ``names`` is not among ``conditions``.
    """
    if len(names) < 2:
        return np.zeros(0, dtype=np.intp)
    labels = conditions if isinstance(conditions, Labels) else Labels(list(conditions), name="condition")
    positions = labels.get_indexer(list(names))
    if (positions < 0).any():
        raise ValueError(f"common test perturbations without predictions: {list(np.asarray(names)[positions < 0][:5])}")
    return positions


def comparison_genes(measured: Sequence[str], gene_sets: Iterable[Sequence[str]]) -> list[str]:
    """The genes every one of ``gene_sets`` holds, in the order of ``measured`` (the dataset's genes).

    With no gene set, every measured gene. A gene set with a gene outside ``measured`` is an error.
    """
    measured = list(measured)
    keep = np.ones(len(measured), dtype=bool)
    index = Labels(measured, name="gene")
    for genes in gene_sets:
        rows = index.get_indexer(list(genes))
        if (rows < 0).any():
            raise ValueError(f"genes outside the dataset's: {list(np.asarray(genes)[rows < 0][:5])}")
        held = np.zeros(len(measured), dtype=bool)
        held[rows] = True
        keep &= held
    return [g for g, k in zip(measured, keep, strict=True) if k]


def genes_digest(genes: Sequence[str]) -> str:
    """A short fingerprint of a gene list (names and order), kept with scores computed on it."""
    return hashlib.sha1("\n".join(genes).encode()).hexdigest()[:16]


@dataclass
class GeneReference:
    """What scoring on a gene set needs from the dataset (one split seed), over its measured genes."""

    genes: Labels  # the measured genes
    ctrl_mean: np.ndarray  # x̄_ctrl (the top-gene metrics take the genes of highest control mean)
    train_mean: np.ndarray  # mean Δ of the training perturbations (the centre of the centred Pearson r)


def score_on_genes(
    pred: np.ndarray,
    observed: np.ndarray,
    conditions: Sequence[str],
    genes: Sequence[str],
    subset: Sequence[str],
    reference: GeneReference,
    keep: Sequence[str],
    settings: ComparisonSettings,
    de: DEResults | None,
    cache: ScoreCache | None = None,
) -> tuple[dict[str, np.ndarray], float]:
    """Every per-perturbation metric of one method on the genes ``subset`` (SPEC 7, one gene set per comparison).

    Parameters
    ----------
    pred, observed
        genes × perturbations predicted and observed Δ over ``genes`` (the method's own genes).
    conditions
        The perturbations of the columns.
    genes, subset
        The method's genes and the genes to score on (all among ``genes``).
    reference
        The dataset's control mean and training mean Δ over its measured genes: the top-gene metrics take the
        ``settings.top_genes`` genes of ``subset`` with highest control mean, the centred r centres on the
        training mean over ``subset``.
    keep
        The test set of the comparison metrics (condition names).
    settings, de, cache
        As in :func:`comparison_and_de_columns`; ``de`` covers (at least) ``conditions`` × ``subset``.

    Returns
    -------
    (columns, spread)
        :func:`metric_columns`' columns (with the centred r), :data:`COMPARISON_COLUMNS`, the DE metrics with
        ``de``, one value per column of ``pred``; the spread ratio over ``keep``.
    """
    own = Labels(list(genes), name="gene")
    rows = own.get_indexer(list(subset))
    if (rows < 0).any():
        raise ValueError(f"{int((rows < 0).sum())} genes to score on are not among the method's genes")
    identity = len(rows) == len(own) and np.array_equal(rows, np.arange(len(own)))
    pred_s = np.asarray(pred, dtype=np.float64) if identity else np.asarray(pred, dtype=np.float64)[rows]
    obs_s = np.asarray(observed, dtype=np.float64) if identity else np.asarray(observed, dtype=np.float64)[rows]
    measured_rows = reference.genes.get_indexer(list(subset))
    if (measured_rows < 0).any():
        raise ValueError("genes to score on are not among the dataset's measured genes")
    subset_labels = Labels(list(subset), name="gene")
    targets = target_positions(conditions, subset_labels)
    exclude = targets if settings.exclude_target_gene else None
    top_idx = top_expressed(reference.ctrl_mean[measured_rows], settings.top_genes)
    out = metric_columns(pred_s, obs_s, top_idx, reference.train_mean[measured_rows], exclude)
    de_here = None
    if de is not None:
        de_here = (cache.de_selection(de, conditions, subset) if cache is not None
                   else de.select(list(conditions)).restrict(list(subset)))
    de_key = np.asarray([*conditions, *subset], dtype=str)
    values, spread = comparison_and_de_columns(pred_s, obs_s, targets, common_positions(conditions, sorted(keep)),
                                               settings, de_here, cache, de_key)
    out.update(values)
    return out, spread
