"""The sampling-noise ceiling of the progress bar (SPEC 7, cheater bound (b)), from disjoint halves.

What a perfect model (one that predicts each perturbation's true mean change) is expected to score
against the observed Δ, which is itself a mean of finitely many cells. For every scored condition
``t`` with ``n_t ≥ 4`` cells and each of ``R`` seeded replicates, the cells are split at random into
disjoint halves ``H₁`` (``⌊n_t/2⌋`` cells) and ``H₂`` (the rest), ``Δ_h = mean(H_h) − x̄_ctrl``, and:

* correlations (Pearson r, centred r with a split's training mean, top-1000 r): the split-half
  correlation ``r_half = mean_R r(Δ_H₁, Δ_H₂)``, the Spearman–Brown reliability of the full-size mean
  ``ρ = 2 r_half / (1 + r_half)``, and the ceiling ``r* = √max(ρ, 0)``: for observation = truth +
  independent noise a perfect model's expected r is ``√ρ``. (Correlating a bootstrap redraw of the
  *same* cells with their mean gives r ≥ √½ even for a perturbation with no effect, which is why the
  halves are disjoint.)
* L2 (all and top-1000 genes): ``L2* = sqrt(mean_R ‖Δ_H₁ − Δ_H₂‖² · n₁n₂ / n_t²)``, the expected
  sampling error of the full-size mean (``Var(mean H₁ − mean H₂) = σ²·n_t/(n₁n₂)``, ``Var(mean) = σ²/n_t``);
* MAE: ``mean_R mean_g |Δ_H₁ − Δ_H₂| · √(n₁n₂) / n_t``.

Every number is over the genes the compared methods all predict (SPEC 7, one gene set per comparison:
``genes``, by default every measured gene) and, with ``exclude_target_gene``, without each perturbation's own
target gene(s), as the scores it bounds are; the top-1000 metrics take the genes of highest control mean among
them. The ceiling of a dataset is the mean over its test perturbations; perturbations with fewer than 4
cells get NaN (:data:`MIN_CELLS`) and are counted. The noise of ``x̄_ctrl`` (hundreds to thousands of
cells) is ignored. Rank metrics and the discrimination score have no noise ceiling.

cell-eval's ``--ceiling`` and the Virtual Cell Challenge 2026 "replicate" score the two halves against
each other and report ``ρ`` for correlations (replicate-vs-replicate agreement, with the same
Spearman–Brown step); ours is the level a perfect model reaches against the observed full-size mean,
``√ρ``. Both are in the output (``<metric>_reliability`` and ``<metric>``).

Streaming. The cells are read once, in row chunks (:func:`lsftbench.data.pseudobulk.row_chunks`):

* each condition's random halves are decomposed sequentially over fixed blocks of ``block_cells``
  cells in file order: given ``m`` places of ``H₁`` still to fill among the ``n`` cells of ``t`` not yet
  passed, the ``q`` cells of ``t`` in the block receive ``Hypergeometric(q, n − q, m)`` of them, spread
  uniformly over those ``q`` cells. This is exactly a uniform random half; each block's draws come from
  its own seeded stream (``SeedSequence(seed, spawn_key=(block,))``) for all replicates at once, so
  the result does not depend on the read chunk size or on how the replicates are batched (below);
* the sums of ``H₁`` and of all cells of ``t`` are added into one genes × (replicates + 1)
  accumulator per condition, cell by cell in file order (bit-identical sums for any chunking); ``H₂``
  is the total minus ``H₁``. A condition's accumulator is allocated when its first cell is read,
  scored after its last one and then reused, so only conditions that are "open" at the same time
  occupy memory.

Memory is ``(replicates + 1) × open conditions × genes × 8`` bytes plus one chunk, never proportional
to the number of cells; above ``max_bytes`` the replicates are processed in batches, one pass over the
file per batch (the same result).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..data.conditions import CTRL, target_positions
from ..data.h5ad import InputDataError, check_values, gene_symbols, open_perturb_data
from ..data.mean_expression import top_expressed
from ..data.pseudobulk import condition_codes, row_chunks
from ..io import read_json, read_npz
from ..labels import Labels
from .comparison import comparison_genes, genes_digest
from .metrics import centered_pearson_columns, metric_columns, pearson_columns

if TYPE_CHECKING:
    import anndata as ad

    from ..data.mean_expression import MeanExpression

__all__ = ["CeilingReplicates", "ceiling_replicates", "noise_ceiling", "noise_ceiling_from_files", "half_split_weights",
           "BASE_METRICS", "CORRELATIONS", "MIN_CELLS", "spearman_brown"]

log = logging.getLogger(__name__)

#: Metrics of every ceiling (the centred Pearson r is added per entry of ``centers``).
BASE_METRICS = ("pearson_r", "l2", "mae", "pearson_delta_top1000", "l2_top1000")
#: The correlation metrics (Spearman–Brown ceilings); the others are distances.
CORRELATIONS = ("pearson_r", "pearson_delta_top1000")
#: Fewest cells of a perturbation for its ceiling (two halves of at least two cells).
MIN_CELLS = 4
#: Elements of the replicates × conditions × genes block scored at once.
_SCORE_BLOCK = 1 << 20


def spearman_brown(r_half: np.ndarray | float) -> np.ndarray:
    """Reliability of a full-size mean from the correlation of two half-size means: ``2r / (1 + r)``."""
    r = np.asarray(r_half, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 2.0 * r / (1.0 + r)


@dataclass
class CeilingReplicates:
    """Per-replicate split-half statistics of each condition.

    Attributes
    ----------
    conditions
        Scored conditions.
    n_cells
        Cells of each condition.
    metrics
        Metric names (last axis of ``values``).
    values
        conditions × replicates × metrics: per replicate, ``r(Δ_H₁, Δ_H₂)`` for a correlation,
        ``‖Δ_H₁ − Δ_H₂‖²`` for ``l2``/``l2_top1000`` and ``mean_g |Δ_H₁ − Δ_H₂|`` for ``mae``; NaN for
        conditions with fewer than :data:`MIN_CELLS` cells.
    """

    conditions: list[str]
    n_cells: np.ndarray
    metrics: list[str]
    values: np.ndarray
    genes: list[str] | None = None  # the genes scored (None: not recorded)

    def frame(self) -> pd.DataFrame:
        """One row per condition: ``condition, n_cells, replicates, too_few_cells``, then per metric the
        ceiling ``<metric>`` (module docstring) and its split-half ingredient ``<metric>_half`` (mean over
        replicates); for a correlation also ``<metric>_reliability`` (Spearman–Brown ρ, cell-eval's
        ``--ceiling``); last ``n_genes`` and ``genes_digest`` (:func:`genes_digest`), the genes scored."""
        out = pd.DataFrame({"condition": self.conditions, "n_cells": self.n_cells})
        out["replicates"] = self.values.shape[1]
        out["too_few_cells"] = self.n_cells < MIN_CELLS
        n = self.n_cells.astype(np.float64)
        n1 = np.floor(n / 2)
        scale = n1 * (n - n1) / n**2  # variance of the full-size mean over that of the half difference
        finite = np.isfinite(self.values)
        count = finite.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            half = np.where(finite, self.values, 0.0).sum(axis=1) / count  # NaN for conditions never split
        for k, name in enumerate(self.metrics):
            h = half[:, k]
            if name in CORRELATIONS or name.startswith("centered_pearson_r"):
                rho = spearman_brown(h)
                out[name] = np.sqrt(np.clip(rho, 0.0, None))
                out[f"{name}_reliability"] = rho
            elif name == "mae":
                out[name] = h * np.sqrt(scale)
            else:
                out[name] = np.sqrt(h * scale)
            out[f"{name}_half"] = h
        if self.genes is not None:
            out["n_genes"] = len(self.genes)
            out["genes_digest"] = genes_digest(self.genes)
        return out


def noise_ceiling(
    path: str | os.PathLike[str],
    pb: ad.AnnData | MeanExpression,
    *,
    replicates: int = 100,
    seed: int = 0,
    conditions: Sequence[str] | None = None,
    centers: Mapping[str, np.ndarray] | None = None,
    top_n: int = 1000,
    chunk_size: int = 20_000,
    block_cells: int = 4096,
    max_bytes: int = 1 << 30,
    genes: Sequence[str] | None = None,
    exclude_target_gene: bool = False,
) -> pd.DataFrame:
    """Sampling-noise ceiling per condition (see the module docstring and :func:`ceiling_replicates`).

    Returns
    -------
    pandas.DataFrame
        :meth:`CeilingReplicates.frame`. Metrics: ``pearson_r``, ``l2``, ``mae``,
        ``pearson_delta_top1000``, ``l2_top1000`` (the ``top_n`` genes of highest control mean in
        ``pb``) and ``centered_pearson_r_<name>`` for each entry of ``centers``.
    """
    return ceiling_replicates(
        path, pb, replicates=replicates, seed=seed, conditions=conditions, centers=centers, top_n=top_n,
        chunk_size=chunk_size, block_cells=block_cells, max_bytes=max_bytes, genes=genes,
        exclude_target_gene=exclude_target_gene,
    ).frame()


def noise_ceiling_from_files(
    data: str | os.PathLike[str],
    pseudobulk: str | os.PathLike[str],
    splits: Mapping[int, str | os.PathLike[str]],
    gene_sources: Sequence[str | os.PathLike[str]] = (),
    **settings: Any,
) -> pd.DataFrame:
    """The noise ceiling of every test perturbation of the split seeds' ``splits`` (split seed → split JSON).

    The centred Pearson r of each seed is centred on that seed's training mean (column
    ``centered_pearson_r_seed<s>``). ``gene_sources`` are ``.npz`` files with a ``genes`` member: the embeddings
    of the baselines that predict only some genes (a gene table) and the scored predictions of the models of one's
    own. The ceiling is over the genes they all predict (:func:`comparison_genes`), as the progress bar's scores
    are. ``settings`` are :func:`noise_ceiling`'s keywords.
    """
    from ..data.mean_expression import read_mean_expression
    from .progress_bar import train_mean_delta

    pb = read_mean_expression(pseudobulk)
    parsed = {seed: read_json(path) for seed, path in splits.items()}
    tests = sorted({c for split in parsed.values() for c in split["test"]})
    centers = {f"seed{seed}": train_mean_delta(pb, split) for seed, split in parsed.items()}
    genes = comparison_genes(list(pb.var_names), [read_npz(path, ["genes"])["genes"].tolist() for path in gene_sources])
    return noise_ceiling(data, pb, conditions=tests, centers=centers, genes=genes, **settings)


def ceiling_replicates(
    path: str | os.PathLike[str],
    pb: ad.AnnData | MeanExpression,
    *,
    replicates: int = 100,
    seed: int = 0,
    conditions: Sequence[str] | None = None,
    centers: Mapping[str, np.ndarray] | None = None,
    top_n: int = 1000,
    chunk_size: int = 20_000,
    block_cells: int = 4096,
    max_bytes: int = 1 << 30,
    genes: Sequence[str] | None = None,
    exclude_target_gene: bool = False,
) -> CeilingReplicates:
    """Per-replicate split-half statistics (module docstring) of the ``conditions``.

    Parameters
    ----------
    path
        The cell-level GEARS h5ad the pseudobulk was computed from.
    pb
        Its pseudobulk (conditions × genes means, same genes in the same order): supplies ``x̄_ctrl``
        and the control-mean gene ranking of the top-``top_n`` metrics.
    replicates, seed
        Number of random splits into halves and the seed of their draws.
    conditions
        Conditions to score (default: every non-``ctrl`` condition of the file).
    centers
        Named training means ``m`` (genes) for the centred Pearson r, e.g. one per split.
    chunk_size
        Cells read at a time (does not change the result).
    block_cells
        Cells per block of the sequential hypergeometric decomposition (part of the random stream:
        results are reproducible for a given ``seed`` and ``block_cells``).
    max_bytes
        Budget of the accumulators; above it the replicates are split over several passes.
    genes
        The genes to score on (a subset of the pseudobulk's, in any order; default: all of them).
    exclude_target_gene
        Leave each condition's target gene(s) out of its every number (``metrics.exclude_target_gene``).
    """
    if replicates < 1 or chunk_size < 1 or block_cells < 1:
        raise ValueError("replicates, chunk_size and block_cells must be positive")
    setup = _Setup.build(path, pb, conditions, centers, top_n, genes, exclude_target_gene)
    plan = _Plan.build(setup.cell_target, len(setup.targets), chunk_size, setup.n_genes, replicates, max_bytes)
    values = np.full((len(setup.targets), replicates, len(setup.metrics)), np.nan)
    for r0 in range(0, replicates, plan.batch):
        r1 = min(r0 + plan.batch, replicates)
        _stream_pass(path, setup, plan, values, r0, r1, replicates, seed, chunk_size, block_cells)
    log.info(
        "noise ceiling of %s: %d conditions, %d replicates, %d pass(es), %d open conditions at most",
        path, len(setup.targets), replicates, plan.passes(replicates), plan.max_open,
    )
    return CeilingReplicates(setup.targets, setup.n_cells, setup.metrics, values, setup.genes)


@dataclass
class _Setup:
    """The file's cell → scored-condition map and the pseudobulk quantities the scores need."""

    targets: list[str]
    cell_target: np.ndarray  # per cell: index into ``targets`` or -1
    n_cells: np.ndarray
    n_genes: int
    ctrl: np.ndarray  # x̄_ctrl
    top_idx: np.ndarray  # into the scored genes
    centers: list[np.ndarray]  # over the scored genes
    metrics: list[str]
    genes: list[str]  # the scored genes
    rows: np.ndarray | None  # their rows among the measured genes (None: all, in order)
    exclude: np.ndarray | None  # per target: the rows of its target gene(s) among the scored genes (-1 padding)

    @classmethod
    def build(
        cls,
        path: str | os.PathLike[str],
        pb: ad.AnnData | MeanExpression,
        conditions: Sequence[str] | None,
        centers: Mapping[str, np.ndarray] | None,
        top_n: int,
        genes_scored: Sequence[str] | None = None,
        exclude_target_gene: bool = False,
    ) -> _Setup:
        adata = open_perturb_data(path, backed=True)
        try:
            codes, order = condition_codes(adata)
            genes = gene_symbols(adata, path)
        finally:
            if adata.isbacked:
                adata.file.close()
        if not pd.Index(pb.var_names).equals(pd.Index(genes)):
            raise InputDataError(path, "the pseudobulk's genes differ from the file's (names or order)")
        targets = [c for c in order if c != CTRL] if conditions is None else list(conditions)
        if len(set(targets)) != len(targets):
            raise ValueError("conditions to score contain duplicates")
        in_file = set(order)
        missing = [c for c in targets if c not in in_file or c == CTRL]
        if missing:
            raise InputDataError(path, f"{len(missing)} conditions to score have no cells or are ctrl: {missing[:5]}")
        pb_rows = pd.Index(pb.obs_names).get_indexer([CTRL, *targets])
        if (pb_rows < 0).any():
            raise InputDataError(path, "conditions to score are missing from the pseudobulk")
        x = np.asarray(pb.X, dtype=np.float64)
        ctrl = x[pb_rows[0]]
        n_cells = np.bincount(codes, minlength=len(order))[pd.Index(order).get_indexer(targets)]
        code_to_target = np.full(len(order), -1, dtype=np.int64)
        code_to_target[pd.Index(order).get_indexer(targets)] = np.where(n_cells >= MIN_CELLS, np.arange(len(targets)), -1)
        scored = [str(g) for g in genes] if genes_scored is None else [str(g) for g in genes_scored]
        rows = Labels([str(g) for g in genes], name="gene").get_indexer(scored)
        if (rows < 0).any():
            raise ValueError(f"genes to score on that the data does not measure: {list(np.asarray(scored)[rows < 0][:5])}")
        if len(rows) == len(genes) and np.array_equal(rows, np.arange(len(genes))):
            rows = None
        names, vectors = [], []
        for name, m in (centers or {}).items():
            m = np.asarray(m, dtype=np.float64).ravel()
            if m.shape != ctrl.shape:
                raise ValueError(f"center {name!r} has {m.size} genes, the data {ctrl.size}")
            names.append(f"centered_pearson_r_{name}")
            vectors.append(m if rows is None else m[rows])
        return cls(
            targets=targets,
            cell_target=code_to_target[codes],
            n_cells=n_cells,
            n_genes=len(genes),
            ctrl=ctrl,
            top_idx=top_expressed(ctrl if rows is None else ctrl[rows], top_n),
            centers=vectors,
            metrics=[*BASE_METRICS, *names],
            genes=scored,
            rows=rows,
            exclude=target_positions(targets, Labels(scored, name="gene")) if exclude_target_gene else None,
        )


@dataclass
class _Plan:
    """Read chunks, when each condition opens and closes, and the replicate batch size."""

    first_chunk: np.ndarray
    last_chunk: np.ndarray
    max_open: int
    batch: int

    @classmethod
    def build(
        cls, cell_target: np.ndarray, n_targets: int, chunk_size: int, n_genes: int, replicates: int, max_bytes: int
    ) -> _Plan:
        scored = np.flatnonzero(cell_target >= 0)
        chunk = scored // chunk_size
        first = np.full(n_targets, np.iinfo(np.int64).max, dtype=np.int64)
        last = np.full(n_targets, -1, dtype=np.int64)
        np.minimum.at(first, cell_target[scored], chunk)
        np.maximum.at(last, cell_target[scored], chunk)
        n_chunks = max(1, math.ceil(len(cell_target) / chunk_size))
        split = last >= 0  # conditions with cells to split (too few cells: none)
        opened = np.bincount(first[split], minlength=n_chunks + 1)
        closed = np.bincount(last[split] + 1, minlength=n_chunks + 1)
        max_open = int(np.cumsum(opened - closed).max(initial=0))
        per_replicate = max(1, max_open) * n_genes * 8
        batch = int(min(replicates, max(1, max_bytes // per_replicate - 1)))  # + 1 column: the condition's total
        if 2 * per_replicate > max_bytes:
            log.warning("one replicate needs %d bytes > max_bytes %d; using one replicate per pass", per_replicate, max_bytes)
        return cls(first_chunk=first, last_chunk=last, max_open=max_open, batch=batch)

    def passes(self, replicates: int) -> int:
        return math.ceil(replicates / self.batch)


def half_split_weights(
    cell_target: np.ndarray, n_cells: np.ndarray, replicates: int, seed: int, block_cells: int
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The cells of ``H₁`` (a uniform random ``⌊n_t/2⌋`` of each condition's ``n_t`` cells) for every replicate, by blocks.

    Parameters
    ----------
    cell_target
        Per cell (file order): index of its condition into ``n_cells``, or -1 (not split).
    n_cells
        Cells per condition (must match ``cell_target``).
    replicates, seed, block_cells
        See :func:`ceiling_replicates`.

    Yields
    ------
    (cells, reps, counts)
        For each block of ``block_cells`` cells in order: the cells (global index) in ``H₁`` of replicate
        ``reps``, sorted by cell then replicate; ``counts`` are 1.
    """
    n_cells = np.asarray(n_cells, dtype=np.int64)
    remaining_places = np.repeat((n_cells // 2)[None, :], replicates, axis=0)
    remaining_cells = n_cells.copy()
    for j, a in enumerate(range(0, len(cell_target), block_cells)):
        target = cell_target[a : a + block_cells]
        local = np.flatnonzero(target >= 0)
        if not local.size:
            yield (np.zeros(0, np.int64),) * 3
            continue
        order = local[np.argsort(target[local], kind="stable")]
        present, start, q = np.unique(target[order], return_index=True, return_counts=True)
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(j,))))
        # places of H₁ of each (replicate, condition) among this block's q cells
        k = rng.hypergeometric(np.broadcast_to(q, remaining_places[:, present].shape),
                               np.broadcast_to(remaining_cells[present] - q, remaining_places[:, present].shape),
                               remaining_places[:, present])
        remaining_places[:, present] -= k
        remaining_cells[present] -= q
        # the k cells of each group with the smallest uniform keys: a uniform subset of size k
        group = np.repeat(np.arange(len(present)), q)
        keys = group[None, :] + rng.random((replicates, len(order)))
        rank = np.argsort(np.argsort(keys, axis=1, kind="stable"), axis=1, kind="stable") - start[group][None, :]
        rep, pos = np.nonzero(rank < k[:, group])
        cells = a + order[pos]
        sort = np.lexsort((rep, cells))
        yield cells[sort], rep[sort], np.ones(len(sort), dtype=np.int64)
    if (remaining_places != 0).any() or (remaining_cells != 0).any():
        raise ValueError("cell_target and n_cells disagree: not every place of a half was filled")


class _Weights:
    """Serves the draw counts of consecutive cell ranges from the block stream of :func:`bootstrap_weights`."""

    def __init__(self, blocks: Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]], block_cells: int, n_obs: int) -> None:
        self.blocks, self.block_cells, self.n_obs = blocks, block_cells, n_obs
        self.covered = 0  # cells whose block has been drawn
        self.pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = [(np.zeros(0, np.int64),) * 3]

    def take(self, stop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Counts of the cells before ``stop`` not taken yet, sorted by cell then replicate."""
        while self.covered < min(stop, self.n_obs):
            self.pending.append(next(self.blocks))
            self.covered = min(self.covered + self.block_cells, self.n_obs)
        if self.covered >= self.n_obs:
            for _ in self.blocks:  # exhaust: runs the generator's final consistency check
                pass
        cells, reps, counts = (np.concatenate(parts) for parts in zip(*self.pending, strict=True))
        cut = int(np.searchsorted(cells, stop))
        self.pending = [(cells[cut:], reps[cut:], counts[cut:])]
        return cells[:cut], reps[:cut], counts[:cut]


def _stream_pass(
    path: str | os.PathLike[str],
    setup: _Setup,
    plan: _Plan,
    values: np.ndarray,
    r0: int,
    r1: int,
    replicates: int,
    seed: int,
    chunk_size: int,
    block_cells: int,
) -> None:
    """One pass over the file for replicates ``r0 … r1 − 1``: accumulate, score, store in ``values``."""
    n_rep, n_slots = r1 - r0, max(1, plan.max_open)
    acc = np.zeros((n_slots, setup.n_genes, n_rep + 1))  # per condition slot: genes × (H₁ sums per replicate, total)
    slot_of = np.full(len(setup.targets), -1, dtype=np.int64)
    free = list(range(n_slots - 1, -1, -1))
    n_obs = len(setup.cell_target)
    n_split = np.where(setup.n_cells >= MIN_CELLS, setup.n_cells, 0)  # conditions with too few cells are not split
    blocks = half_split_weights(setup.cell_target, n_split, replicates, seed, block_cells)
    weights = _Weights(blocks, block_cells, n_obs)
    for j, (start, block) in enumerate(row_chunks(path, n_obs, setup.n_genes, chunk_size)):
        _screen(block, path, start)
        for t in np.flatnonzero(plan.first_chunk == j):
            slot_of[t] = free.pop()
        cells, reps, _ = weights.take(start + block.shape[0])
        scored = np.flatnonzero(setup.cell_target[start : start + block.shape[0]] >= 0)
        keep = (reps >= r0) & (reps < r1)
        w = np.zeros((len(scored), n_rep + 1))
        w[np.searchsorted(scored, cells[keep] - start), reps[keep] - r0] = 1.0
        w[:, -1] = 1.0
        slots = slot_of[setup.cell_target[start + scored]]
        _accumulate(acc, slots, scored, w, block if sp.issparse(block) else sp.csr_matrix(block))
        closing = np.flatnonzero(plan.last_chunk == j)
        if closing.size:
            _score(acc, setup, closing, slot_of[closing], values[:, r0:r1])
            free.extend(slot_of[closing].tolist())
            slot_of[closing] = -1


def _screen(block: np.ndarray | sp.csr_matrix, path: str | os.PathLike[str], start: int) -> None:
    """:func:`check_values` when a cheap min/max screen finds NaN, inf or negative values."""
    data = block.data if sp.issparse(block) else block
    if data.size and not (data.min() >= 0 and data.max() < np.inf):
        check_values(block, path, start)


def _accumulate(acc: np.ndarray, slots: np.ndarray, local: np.ndarray, w: np.ndarray, block: sp.csr_matrix) -> None:
    """``acc[slots[k]] += outer(block[local[k]], w[k])`` for each drawn cell ``k``, in cell order.

    A cell's nonzero genes select contiguous replicate vectors of its condition's slot (distinct
    genes, so plain fancy-index ``+=`` is exact). Weights are small integers and values float32, so
    every product is exact and every sum is accumulated in cell order whatever the chunking.
    """
    starts = block.indptr[local].tolist()
    stops = block.indptr[local + 1].tolist()
    indices, data = block.indices, block.data
    for k, (a, b) in enumerate(zip(starts, stops, strict=True)):
        if b > a:
            acc[slots[k]][indices[a:b]] += data[a:b, None] * w[k]


def _score(acc: np.ndarray, setup: _Setup, targets: np.ndarray, slots: np.ndarray, out: np.ndarray) -> None:
    """Split-half statistics of the closed conditions ``targets`` (slots ``slots`` of ``acc``) into ``out``;
    zero their sums."""
    _, n_genes, width = acc.shape
    n_rep = width - 1
    step = max(1, _SCORE_BLOCK // max(1, width * n_genes))
    for a in range(0, len(targets), step):
        t, s = targets[a : a + step], slots[a : a + step]
        n = setup.n_cells[t].astype(np.float64)[:, None, None]
        n1 = np.floor(n / 2)
        half1 = acc[s, :, :n_rep]
        half2 = acc[s, :, n_rep:] - half1
        # genes × (condition, replicate) columns
        d1 = (half1 / n1 - setup.ctrl[:, None]).transpose(1, 0, 2).reshape(n_genes, -1)
        d2 = (half2 / (n - n1) - setup.ctrl[:, None]).transpose(1, 0, 2).reshape(n_genes, -1)
        if setup.rows is not None:
            d1, d2 = d1[setup.rows], d2[setup.rows]
        top = setup.top_idx
        if setup.exclude is None:
            diff = d1 - d2
            cols = [
                pearson_columns(d1, d2),
                np.einsum("gi,gi->i", diff, diff),
                np.abs(diff).mean(axis=0),
                pearson_columns(d1[top], d2[top]),
                np.einsum("gi,gi->i", diff[top], diff[top]),
            ]
            cols += [centered_pearson_columns(d1, d2, m) for m in setup.centers]
        else:  # every number without the condition's target gene(s), as the scores it bounds
            exclude = np.repeat(setup.exclude[t], n_rep, axis=0)  # one row per (condition, replicate) column
            scores = metric_columns(d1, d2, top, None, exclude)
            cols = [scores["pearson_r"], scores["l2"] ** 2, scores["mae"], scores["pearson_delta_top1000"],
                    scores["l2_top1000"] ** 2]
            cols += [metric_columns(d1, d2, top, m, exclude)["centered_pearson_r"] for m in setup.centers]
        out[t] = np.stack(cols, axis=-1).reshape(len(t), n_rep, -1)
        acc[s] = 0.0
