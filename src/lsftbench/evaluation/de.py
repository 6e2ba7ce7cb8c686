"""Differential expression from the cells and the DE-gene metrics (SPEC 7.2).

* :func:`differential_expression`: per perturbation and gene, Welch's t-test of its cells against the
  ``ctrl`` cells (``scipy.stats.ttest_ind_from_stats``, two-sided) from the per-condition means and
  variances the pseudobulk pass gathered (:func:`lsftbench.data.pseudobulk.pseudobulk`, no second
  pass over ``X``); genes with zero variance in both groups get p = 1. Benjamini–Hochberg within each
  perturbation (``scipy.stats.false_discovery_control``), so a perturbation's DE set does not depend
  on which others are evaluated. On GEARS files the 20 genes of ``uns["top_non_dropout_de_20"]`` are
  kept for GEARS's own DE metrics; elsewhere the 20 genes of smallest p stand in for them.
* :func:`de_metrics`: for predictions Δ̂ of perturbations with DE set ``D_t`` (q < ``metrics.de_fdr``):
  ``de_overlap`` (cell-eval's ``overlap_at_N``: the top-|D_t| genes by |Δ̂| that are in D_t),
  ``de_top{20,50,100}`` (the same for the N genes of smallest p), ``de_direction`` (share of D_t
  with the observed sign), ``de_spearman`` (over D_t), and GEARS's ``pearson_de_delta`` and ``mse_de``
  over its 20 genes. NaN where ``|D_t| < 3`` (counted in the tables).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import h5py
import numpy as np

from ..data.conditions import CTRL
from ..io import DamagedFileError, atomic_h5py_file
from .registry import names

__all__ = [
    "DE_METRICS",
    "TOP_N",
    "GEARS_DE_KEY",
    "DEResults",
    "TESTS",
    "de_results",
    "significance_order",
    "welch_pvalues",
    "differential_expression",
    "differential_expression_from_files",
    "read_gears_de_genes",
    "de_metrics",
    "DEReference",
]

log = logging.getLogger(__name__)

#: The DE-set sizes of ``de_top{N}``.
TOP_N = (20, 50, 100)
#: The per-perturbation DE metrics, in table order (the registry's ``de`` family).
DE_METRICS = names("de")
#: The DE tests (``metrics.de_test``) and how the tables name them.
TESTS = {"welch": "Welch's t-test", "wilcoxon": "the Wilcoxon rank-sum test (cell-eval/pdex's)"}
#: GEARS's per-perturbation list of its top-20 non-dropout DE genes (gene ids of ``var_names``).
GEARS_DE_KEY = "top_non_dropout_de_20"
#: Fewest genes in a DE set for the DE metrics to be defined.
MIN_DE_GENES = 3


def welch_pvalues(
    means: np.ndarray, variances: np.ndarray, n_cells: np.ndarray, ctrl: int
) -> tuple[np.ndarray, np.ndarray]:
    """Welch's t statistic and two-sided p-value of every condition (rows) against row ``ctrl``, per gene.

    ``means`` and ``variances`` (ddof 1) are conditions × genes, ``n_cells`` per condition: the
    numbers ``scipy.stats.ttest_ind(cells_t, cells_ctrl, equal_var=False)`` computes from the cells.
    A gene with zero variance in both groups has t = 0 and p = 1; a condition with fewer than two
    cells NaN. The ``ctrl`` row is NaN.
    """
    from scipy import stats

    n = np.asarray(n_cells, dtype=np.float64)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        res = stats.ttest_ind_from_stats(
            means, np.sqrt(variances), n, means[ctrl][None, :], np.sqrt(variances[ctrl])[None, :], n[ctrl],
            equal_var=False,
        )
    t, p = np.array(res.statistic, dtype=np.float64), np.array(res.pvalue, dtype=np.float64)
    flat = (variances == 0) & (variances[ctrl][None, :] == 0)
    t[flat], p[flat] = 0.0, 1.0
    t[ctrl], p[ctrl] = np.nan, np.nan
    return t, p


@dataclass
class DEResults:
    """Differential expression of every perturbation against ``ctrl`` (SPEC 7.2).

    ``pvalue`` and ``statistic`` (conditions × genes) are the test's, ``qvalue`` its Benjamini–Hochberg
    q-values within each perturbation (they define the DE sets); ``test`` names the test (``welch`` or
    ``wilcoxon``). :attr:`order` is each perturbation's full significance ordering of the genes (smallest p
    first, larger |statistic| first among equal p, then gene order): the ``de_top{N}`` sets are its first
    entries after the excluded genes are dropped. ``gears_top20`` holds the 20 genes of GEARS's own metrics
    (``-1`` padded), from ``uns["top_non_dropout_de_20"]`` when ``gears_source`` is ``"uns"``, else the 20
    genes of smallest p.
    """

    conditions: list[str]
    genes: list[str]
    n_cells: np.ndarray
    pvalue: np.ndarray
    statistic: np.ndarray
    qvalue: np.ndarray
    gears_top20: np.ndarray
    gears_source: str
    test: str = "welch"
    _order: np.ndarray | None = field(default=None, repr=False)

    @property
    def order(self) -> np.ndarray:
        """Conditions × genes: every gene of each perturbation by significance (see the class docstring)."""
        if self._order is None:
            self._order = significance_order(self.pvalue, self.statistic)
        return self._order

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write to an HDF5 file (atomically)."""
        with atomic_h5py_file(path) as f:
            f.create_dataset("conditions", data=np.asarray(self.conditions, dtype=object), dtype=h5py.string_dtype())
            f.create_dataset("genes", data=np.asarray(self.genes, dtype=object), dtype=h5py.string_dtype())
            for key in ("n_cells", "pvalue", "statistic", "qvalue", "gears_top20"):
                f.create_dataset(key, data=getattr(self, key))
            f.attrs["gears_source"] = self.gears_source
            f.attrs["test"] = self.test
            f.attrs["description"] = f"{TESTS[self.test]} against the ctrl cells, BH within each perturbation (SPEC 7.2)"

    @classmethod
    def load(cls, path: str | os.PathLike[str], conditions: Sequence[str] | None = None) -> DEResults:
        """Read a file written by :meth:`save`; only the rows of ``conditions`` when given (``KeyError`` for one
        not in the file; :class:`lsftbench.io.DamagedFileError` for an unreadable file)."""
        try:
            return cls._load(path, conditions)
        except KeyError:
            raise
        except (OSError, ValueError, TypeError) as err:
            raise DamagedFileError.from_error(path, err) from None

    @classmethod
    def _load(cls, path: str | os.PathLike[str], conditions: Sequence[str] | None) -> DEResults:
        with h5py.File(path, "r") as f:
            if "pvalue" not in f:
                raise ValueError("no p-values: written by an older differential_expression rule; rerun it "
                                 "(snakemake --forcerun differential_expression)")
            names = f["conditions"].asstr()[...].tolist()
            rows = slice(None)
            if conditions is not None:
                position = {c: i for i, c in enumerate(names)}
                missing = [c for c in conditions if c not in position]
                if missing:
                    raise KeyError(f"{path}: no differential expression for {missing[:5]}")
                rows = [position[c] for c in conditions]
                names = list(conditions)

            def read(key: str) -> np.ndarray:
                data = f[key]
                if isinstance(rows, slice):
                    return data[...]
                order = np.argsort(rows)
                out = np.empty((len(rows), *data.shape[1:]), dtype=data.dtype)
                if len(rows):
                    out[order] = data[np.asarray(rows)[order]]
                return out

            return cls(names, f["genes"].asstr()[...].tolist(), read("n_cells"), read("pvalue"), read("statistic"),
                       read("qvalue"), read("gears_top20"), str(f.attrs["gears_source"]), str(f.attrs["test"]))

    def select(self, conditions: Sequence[str]) -> DEResults:
        """The rows of ``conditions`` (``KeyError`` for one without DE results)."""
        position = {c: i for i, c in enumerate(self.conditions)}
        missing = [c for c in conditions if c not in position]
        if missing:
            raise KeyError(f"no differential expression for {missing[:5]}")
        rows = np.asarray([position[c] for c in conditions], dtype=np.int64)
        order = None if self._order is None else self._order[rows]
        return DEResults(list(conditions), self.genes, self.n_cells[rows], self.pvalue[rows], self.statistic[rows],
                         self.qvalue[rows], self.gears_top20[rows], self.gears_source, self.test, order)

    def restrict(self, genes: Sequence[str]) -> DEResults:
        """The same results over ``genes`` (a subset of :attr:`genes`, e.g. a baseline's genes): DE sets and
        gene lists keep only those genes, in their order of significance among all genes (``KeyError`` for an
        unknown gene)."""
        genes = list(genes)
        if genes == self.genes:
            return self
        position = {g: i for i, g in enumerate(self.genes)}
        missing = [g for g in genes if g not in position]
        if missing:
            raise KeyError(f"genes without differential expression: {missing[:5]}")
        cols = np.asarray([position[g] for g in genes], dtype=np.int64)
        new_index = np.full(len(self.genes), -1, dtype=np.int64)  # old position → new (-1: not kept)
        new_index[cols] = np.arange(len(cols))
        mapped = new_index[self.order]
        # every kept gene stands once in each row: dropping the others keeps the significance order
        order = mapped[mapped >= 0].reshape(len(self.conditions), len(cols))
        gears = new_index[np.where(self.gears_top20 >= 0, self.gears_top20, 0)]
        gears[self.gears_top20 < 0] = -1
        return DEResults(self.conditions, genes, self.n_cells, self.pvalue[:, cols], self.statistic[:, cols],
                         self.qvalue[:, cols], _compress(gears, 20), self.gears_source, self.test, order)

    def de_sets(self, fdr: float) -> np.ndarray:
        """Boolean conditions × genes: q < ``fdr``."""
        with np.errstate(invalid="ignore"):
            return self.qvalue < fdr


def significance_order(pvalue: np.ndarray, statistic: np.ndarray) -> np.ndarray:
    """Each row's genes by significance: smallest p first, larger |statistic| first among equal p, then gene order
    (a row of undefined p-values keeps gene order)."""
    pvalue = np.asarray(pvalue, dtype=np.float64)
    defined = np.isfinite(pvalue).all(axis=1)
    order = np.tile(np.arange(pvalue.shape[1], dtype=np.int64), (pvalue.shape[0], 1))
    if defined.any():
        keys = (-np.abs(np.asarray(statistic, dtype=np.float64)[defined]), pvalue[defined])
        order[defined] = np.lexsort(keys, axis=-1)
    return order


def _compress(lists: np.ndarray, width: int) -> np.ndarray:
    """Each row's non-negative entries moved to its front, in order, ``-1`` padded to ``width``."""
    lists = np.asarray(lists, dtype=np.int64)
    out = np.full((lists.shape[0], width), -1, dtype=np.int64)
    front = np.take_along_axis(lists, np.argsort(lists < 0, axis=1, kind="stable"), axis=1)[:, :width]
    out[:, : front.shape[1]] = front
    return out


def de_results(
    pvalue: np.ndarray,
    statistic: np.ndarray,
    n_cells: np.ndarray,
    conditions: Sequence[str],
    genes: Sequence[str],
    test: str,
    gears_genes: Mapping[str, Sequence[str]] | None = None,
) -> DEResults:
    """:class:`DEResults` of a test's p-values and statistics (perturbations × genes, ``ctrl`` not among them):
    Benjamini–Hochberg within each perturbation (``scipy.stats.false_discovery_control``) and GEARS's 20 genes.

    ``gears_genes`` maps a condition to the 20 gene symbols of GEARS's ``top_non_dropout_de_20``
    (:func:`read_gears_de_genes`); ``None`` (not a GEARS file): the 20 genes of smallest p stand in for them.
    """
    from scipy import stats

    if test not in TESTS:
        raise ValueError(f"test must be one of {sorted(TESTS)}, got {test!r}")
    pvalue = np.asarray(pvalue, dtype=np.float64)
    q = np.full(pvalue.shape, np.nan)
    defined = np.isfinite(pvalue).all(axis=1)
    if defined.any():
        q[defined] = stats.false_discovery_control(pvalue[defined], axis=1)
    names = list(conditions)
    order = significance_order(pvalue, statistic)
    gears = np.full((len(names), 20), -1, dtype=np.int64)
    source = "smallest p"
    if gears_genes:
        source = "uns"
        position = {g: i for i, g in enumerate(genes)}
        for row, condition in enumerate(names):
            listed = [position[g] for g in gears_genes.get(condition, []) if g in position][:20]
            gears[row, : len(listed)] = listed
    else:
        n = min(20, pvalue.shape[1])
        gears[defined, :n] = order[defined, :n]
    return DEResults(names, list(genes), np.asarray(n_cells), pvalue, np.asarray(statistic, dtype=np.float64), q,
                     gears, source, test, order)


def differential_expression(
    means: np.ndarray,
    variances: np.ndarray,
    n_cells: np.ndarray,
    conditions: Sequence[str],
    genes: Sequence[str],
    gears_genes: Mapping[str, Sequence[str]] | None = None,
) -> DEResults:
    """Welch's t-test of every perturbation against ``ctrl`` and BH within each perturbation (:func:`de_results`).

    Parameters
    ----------
    means, variances, n_cells
        The pseudobulk's ``X``, ``layers["variance"]`` and ``obs["n_cells"]`` (conditions × genes).
    conditions, genes
        Their names (``ctrl`` among the conditions).
    gears_genes
        Condition → the 20 gene symbols of GEARS's ``top_non_dropout_de_20`` (:func:`read_gears_de_genes`),
        or ``None`` (not a GEARS file): then the 20 genes of smallest p are GEARS's stand-in.
    """
    conditions = list(conditions)
    ctrl = conditions.index(CTRL)
    t, p = welch_pvalues(np.asarray(means, dtype=np.float64), np.asarray(variances, dtype=np.float64), n_cells, ctrl)
    keep = [i for i, c in enumerate(conditions) if c != CTRL]
    return de_results(p[keep], t[keep], np.asarray(n_cells)[keep], [conditions[i] for i in keep], genes, "welch",
                      gears_genes)


def read_gears_de_genes(path: str | os.PathLike[str]) -> dict[str, list[str]] | None:
    """GEARS's ``uns["top_non_dropout_de_20"]`` of a ``perturb_processed.h5ad``, as condition → gene symbols.

    The keys are GEARS's ``<cell_type>_<condition>_<dose>`` names (e.g. ``K562_AARS+ctrl_1+1``) and the
    values gene ids of ``var_names``; both are mapped as GEARS builds them (``obs["cell_type"]``,
    ``var["gene_name"]``). ``None`` when the file has no such entry (not a GEARS file).
    """
    with h5py.File(path, "r") as f:
        if "uns" not in f or GEARS_DE_KEY not in f["uns"]:
            return None
        group = f["uns"][GEARS_DE_KEY]
        lists = {key: [str(v) for v in group[key].asstr()[...].tolist()] for key in group}
        var = f["var"]
        ids = var[var.attrs["_index"]].asstr()[...].tolist()
        symbols = _strings(var["gene_name"]) if "gene_name" in var else ids
        cell_types = _strings(f["obs"]["cell_type"]) if "cell_type" in f["obs"] else []
        conditions = _strings(f["obs"]["condition"]) if "condition" in f["obs"] else []
    symbol_of = dict(zip(ids, symbols, strict=True))
    prefixes = sorted({f"{ct}_" for ct in cell_types}, key=len, reverse=True)
    known = set(conditions)
    out: dict[str, list[str]] = {}
    for key, genes in lists.items():
        name = key.rsplit("_", 1)[0]  # drop the dose
        name = next((name[len(pre):] for pre in prefixes if name.startswith(pre)), name.split("_", 1)[-1])
        if known and name not in known:
            log.warning("%s: uns[%r] key %r names no condition of the file; ignored", path, GEARS_DE_KEY, key)
            continue
        out[name] = [symbol_of.get(g, g) for g in genes]
    return out


def _strings(node: h5py.Group | h5py.Dataset) -> list[str]:
    """A string column of an anndata ``obs``/``var`` group: plain or categorical."""
    if isinstance(node, h5py.Group):  # categorical: codes into categories
        categories = node["categories"].asstr()[...]
        return categories[node["codes"][...]].tolist()
    return node.asstr()[...].tolist()


def differential_expression_from_files(
    pseudobulk: str | os.PathLike[str],
    data: str | os.PathLike[str] | None = None,
    test: str = "welch",
    *,
    chunk_size: int = 10_000,
    max_bytes: int = 1 << 30,
    allow_raw_counts: bool = False,
) -> DEResults:
    """The DE results of a dataset (rule ``differential_expression``), with GEARS's DE genes from the raw ``data``
    file when it has them.

    ``test="welch"``: :func:`differential_expression` of the pseudobulk h5ad's means and variances
    (``layers["variance"]``), no pass over the cells. ``test="wilcoxon"``: the rank-sum test of the cells of
    ``data`` (:func:`lsftbench.evaluation.rank_sum.rank_sum_test`, streamed in ``chunk_size`` cells within
    ``max_bytes``; ``allow_raw_counts`` as for the pseudobulk), in the pseudobulk's condition order.
    """
    if test not in TESTS:
        raise ValueError(f"test must be one of {sorted(TESTS)}, got {test!r}")
    if test == "wilcoxon":
        return _rank_sum_results(pseudobulk, data, chunk_size=chunk_size, max_bytes=max_bytes,
                                 allow_raw_counts=allow_raw_counts)
    with h5py.File(pseudobulk, "r") as f:
        if "layers" not in f or "variance" not in f["layers"]:
            raise ValueError(f"{pseudobulk}: no layers/variance (written by an older pseudobulk rule); rerun the rule "
                             "pseudobulk (snakemake --forcerun pseudobulk)")
        conditions = f["obs"][f["obs"].attrs["_index"]].asstr()[...].tolist()
        genes = f["var"][f["var"].attrs["_index"]].asstr()[...].tolist()
        means, variances = f["X"][...], f["layers"]["variance"][...]
        n_cells = f["obs"]["n_cells"][...]
    gears = read_gears_de_genes(data) if data is not None else None
    return differential_expression(means, variances, n_cells, conditions, genes, gears)


def _rank_sum_results(
    pseudobulk: str | os.PathLike[str], data: str | os.PathLike[str] | None, **options: Any
) -> DEResults:
    """:func:`de_results` of the rank-sum test of ``data``'s cells, checked against the pseudobulk's names."""
    from .rank_sum import rank_sum_test

    if data is None:
        raise ValueError("the Wilcoxon rank-sum test needs the cells: give the data file")
    with h5py.File(pseudobulk, "r") as f:
        conditions = f["obs"][f["obs"].attrs["_index"]].asstr()[...].tolist()
        genes = f["var"][f["var"].attrs["_index"]].asstr()[...].tolist()
    result = rank_sum_test(data, **options)
    if result.genes != genes or sorted(result.conditions) != sorted(c for c in conditions if c != CTRL):
        raise ValueError(f"{data}: its conditions or genes differ from those of {pseudobulk}; rerun the rule pseudobulk")
    rows = {c: i for i, c in enumerate(result.conditions)}
    order = [rows[c] for c in conditions if c != CTRL]
    gears = read_gears_de_genes(data)
    return de_results(result.pvalue[order], result.statistic[order], result.n_cells[order],
                      [result.conditions[i] for i in order], genes, "wilcoxon", gears)


# ---------------------------------------------------------------------------------------------------
# Metrics


def _exclude_targets(mask: np.ndarray, exclude: np.ndarray | None) -> np.ndarray:
    """``mask`` (genes × p) with each perturbation's excluded gene rows set False."""
    if exclude is None:
        return mask
    mask = mask.copy()
    for k in range(exclude.shape[1]):
        cols = np.flatnonzero(exclude[:, k] >= 0)
        mask[exclude[cols, k], cols] = False
    return mask


def _drop_excluded(lists: np.ndarray, exclude: np.ndarray | None, keep: int) -> np.ndarray:
    """Per perturbation (rows), the first ``keep`` entries of ``lists`` that are not excluded (``-1`` padded).

    ``-1`` entries of ``lists`` are padding and never kept; only the first ``keep`` + (excluded genes) entries
    of each row can be needed, so only they are read."""
    width = keep + (0 if exclude is None else exclude.shape[1])
    lists = lists[:, :width]
    if exclude is not None:
        hit = np.zeros(lists.shape, dtype=bool)
        for k in range(exclude.shape[1]):
            hit |= (lists == exclude[:, k : k + 1]) & (exclude[:, k : k + 1] >= 0)
        lists = np.where(hit, -1, lists)
    return _compress(lists, keep)


class _TopByMagnitude:
    """Which genes are among each column's ``k`` largest |Δ̂| (``allowed`` genes only; ties broken by gene
    order, i.e. the first ``k`` of a stable sort), for a different ``k`` per column.

    One sort of the magnitudes' values per column gives every threshold; the genes above a column's
    threshold are in, and of those equal to it the first ones by gene order fill up to ``k``.
    """

    def __init__(self, pred: np.ndarray, allowed: np.ndarray) -> None:
        self.magnitude = np.where(allowed, np.abs(pred), -np.inf)
        self.descending = -np.sort(-self.magnitude.T, axis=1).T  # each column's values sorted (contiguous rows)

    def within(self, k: np.ndarray) -> np.ndarray:
        """genes × p: gene g is among the ``k[i]`` largest of column i (``k[i] = 0``: none)."""
        n_genes, p = self.magnitude.shape
        k = np.clip(np.asarray(k, dtype=np.int64), 0, n_genes)
        threshold = self.descending[np.maximum(k - 1, 0), np.arange(p)]
        above = self.magnitude > threshold[None, :]
        equal = self.magnitude == threshold[None, :]
        need = k - above.sum(axis=0)
        out = above | equal
        tied = np.flatnonzero(equal.sum(axis=0) > need)  # more genes at the threshold than places left
        if len(tied):
            eq = equal[:, tied]
            out[:, tied] = above[:, tied] | (eq & (np.cumsum(eq, axis=0) <= need[None, tied]))
        out[:, k == 0] = False
        return out


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's ρ: Pearson's r of the average ranks (``scipy.stats.spearmanr``'s value; NaN for a constant side)."""
    rx, ry = _average_ranks(x), _average_ranks(y)
    rx -= rx.mean()
    ry -= ry.mean()
    denom = math.sqrt(float(rx @ rx) * float(ry @ ry))
    return float(rx @ ry) / denom if denom > 0 else math.nan


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their average rank (``scipy.stats.rankdata(method="average")``)."""
    return _segment_ranks(np.asarray(x), np.zeros(len(x), dtype=np.int64))


def _segment_ranks(values: np.ndarray, segment: np.ndarray) -> np.ndarray:
    """:func:`_average_ranks` within each run of equal ``segment`` labels (non-decreasing), all runs in one sort:
    the ranks are exact (half-)integers, so they equal those of one :func:`_average_ranks` call per run."""
    n = len(values)
    ranks = np.empty(n)
    if not n:
        return ranks
    if len(segment) and segment[-1] < 1 << 16:  # by value (NaN last), then a stable radix sort by segment
        by_value = np.argsort(values)
        order = by_value[np.argsort(segment[by_value].astype(np.uint16), kind="stable")]
    else:  # by segment, then value
        order = np.lexsort((values, segment))
    sorted_x, sorted_seg = values[order], segment[order]
    new_run = np.empty(n, dtype=bool)
    new_run[0] = True
    np.not_equal(sorted_x[1:], sorted_x[:-1], out=new_run[1:])
    new_run[1:] |= sorted_seg[1:] != sorted_seg[:-1]
    starts = np.flatnonzero(new_run)  # ties: equal values within one segment
    ends = np.empty_like(starts)
    ends[:-1], ends[-1] = starts[1:], n
    seg_start = np.searchsorted(sorted_seg, sorted_seg[starts], side="left")  # first position of each tie's segment
    ranks[order] = np.repeat((starts - seg_start + ends - seg_start + 1) / 2.0, ends - starts)
    return ranks


class DEReference:
    """What the DE-gene metrics need from the observations and the DE results alone (no prediction): each
    perturbation's DE set, its top-N lists, the centred ranks of its observed Δ over the DE set and GEARS's
    genes. Built once per (observations, DE results, FDR, excluded genes) and shared by every method scored on
    them (:func:`de_metrics`' ``reference``)."""

    def __init__(self, obs: np.ndarray, de: DEResults, fdr: float = 0.05, exclude: np.ndarray | None = None) -> None:
        obs = np.asarray(obs, dtype=np.float64)
        n_genes, p = obs.shape
        if len(de.genes) != n_genes or len(de.conditions) != p:
            raise ValueError(f"observations {obs.shape} and DE results ({len(de.genes)} genes, "
                             f"{len(de.conditions)} perturbations) do not match")
        self.shape = obs.shape
        self.allowed = _exclude_targets(np.ones((n_genes, p), dtype=bool), exclude)
        self.de_set = _exclude_targets(de.de_sets(fdr).T, exclude)  # genes × p
        self.n_de = self.de_set.sum(axis=0)
        self.defined = self.n_de >= MIN_DE_GENES
        top = _drop_excluded(de.order, exclude, max(TOP_N))  # the full order: at least min(N, n_de) genes each
        self.top: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # N → (its size per perturbation, genes × p)
        for n in TOP_N:
            n_eff = np.minimum(n, self.n_de)
            rows, cols = np.nonzero(self.defined[:, None] & (np.arange(top.shape[1])[None, :] < n_eff[:, None]))
            genes = top[rows, cols]
            if (genes < 0).any():  # cannot happen: n_eff ≤ |D_t| ≤ the genes left in the full order
                raise AssertionError("a DE top-N list is shorter than its DE set")
            in_top = np.zeros((n_genes, p), dtype=bool)
            in_top[genes, rows] = True
            self.top[n] = (n_eff, in_top)
        sign = np.sign(obs)  # -1, 0, 1 as int8; NaN as 2, which no sign equals (as NaN equals none)
        self.obs_sign = np.where(np.isnan(sign), 2, sign).astype(np.int8)
        # Spearman over each defined perturbation's DE set: the genes (gene order) and the observed side's centred
        # ranks and sum of squares
        cols_t, genes_t = np.nonzero(self.de_set[:, self.defined].T)
        self.spearman_cols = np.flatnonzero(self.defined)
        self.spearman_genes = self.spearman_cols[cols_t], genes_t
        self.spearman_segment = cols_t
        self.spearman_bounds = bounds = np.searchsorted(cols_t, np.arange(len(self.spearman_cols) + 1))
        obs_ranks = _segment_ranks(obs[genes_t, self.spearman_cols[cols_t]], cols_t)
        self.obs_ranks = []
        for k in range(len(self.spearman_cols)):
            ry = obs_ranks[bounds[k]:bounds[k + 1]].copy()
            ry -= ry.mean()
            self.obs_ranks.append((ry, float(ry @ ry)))
        # GEARS's genes: per perturbation with enough of them, the genes and the observed Δ on them
        gears = _drop_excluded(de.gears_top20, exclude, 20)
        self.gears = []
        for i in range(p):
            idx = gears[i][gears[i] >= 0]
            if len(idx) >= MIN_DE_GENES:
                b = obs[idx, i]
                self.gears.append((i, idx, b, bool(np.ptp(b) > 0)))


def de_metrics(
    pred: np.ndarray,
    obs: np.ndarray,
    de: DEResults,
    fdr: float = 0.05,
    exclude: np.ndarray | None = None,
    reference: DEReference | None = None,
) -> dict[str, np.ndarray]:
    """The DE-gene metrics of predictions ``pred`` (genes × p) of the perturbations of ``de`` (its rows).

    ``obs`` is the observed Δ on the same genes (``de.genes``). ``exclude`` (p × k gene rows, ``-1``
    padding) leaves each perturbation's target gene(s) out of its DE set, its top-N lists and GEARS's
    20 genes (``metrics.exclude_target_gene``). Returns :data:`DE_METRICS` arrays plus ``n_de`` (|D_t|).
    ``reference`` is the :class:`DEReference` of (``obs``, ``de``, ``fdr``, ``exclude``) when already built
    (then ``obs`` and ``de`` are not read again).
    """
    pred = np.asarray(pred, dtype=np.float64)
    n_genes, p = pred.shape
    if reference is None:
        obs = np.asarray(obs, dtype=np.float64)
        if obs.shape != pred.shape or len(de.genes) != n_genes or len(de.conditions) != p:
            raise ValueError(f"predictions {pred.shape}, observations {obs.shape} and DE results "
                             f"({len(de.genes)} genes, {len(de.conditions)} perturbations) do not match")
        reference = DEReference(obs, de, fdr, exclude)
    elif reference.shape != pred.shape:
        raise ValueError(f"predictions {pred.shape} and the DE reference {reference.shape} do not match")
    ref = reference
    de_set, n_de, defined = ref.de_set, ref.n_de, ref.defined
    out = {name: np.full(p, np.nan) for name in DE_METRICS}
    top_pred = _TopByMagnitude(pred, ref.allowed)
    with np.errstate(invalid="ignore", divide="ignore"):
        hits = (de_set & top_pred.within(n_de)).sum(axis=0)
        out["de_overlap"] = np.where(defined, hits / n_de, np.nan)
        for n in TOP_N:
            n_eff, in_top = ref.top[n]
            hits = (in_top & top_pred.within(n_eff)).sum(axis=0)
            out[f"de_top{n}"] = np.where(defined, hits / n_eff, np.nan)
        agree = de_set & (np.sign(pred) == ref.obs_sign)
        out["de_direction"] = np.where(defined, agree.sum(axis=0) / n_de, np.nan)
    cols, genes = ref.spearman_genes
    bounds = ref.spearman_bounds
    pred_ranks = _segment_ranks(pred[genes, cols], ref.spearman_segment)
    spearman = out["de_spearman"]
    for k, i in enumerate(ref.spearman_cols):
        rx = pred_ranks[bounds[k]:bounds[k + 1]].copy()
        rx -= rx.mean()
        ry, ry2 = ref.obs_ranks[k]
        denom = math.sqrt(float(rx @ rx) * ry2)
        spearman[i] = float(rx @ ry) / denom if denom > 0 else math.nan
    for i, idx, b, b_varies in ref.gears:
        a = pred[idx, i]
        if b_varies and np.ptp(a) > 0:
            out["pearson_de_delta"][i] = float(np.corrcoef(a, b)[0, 1])
        out["mse_de"][i] = float(np.mean((a - b) ** 2))
    out["n_de"] = n_de.astype(np.float64)
    return out
