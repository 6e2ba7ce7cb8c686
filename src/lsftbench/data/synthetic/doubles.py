"""A seeded synthetic double-perturbation dataset (the stand-in for GEARS ``norman``) with planted genetic
interactions.

The count model is :mod:`lsftbench.data.synthetic.count_model`'s (shared gene pool and latent vectors, a
dataset-specific mixing matrix, negative-binomial counts, ``normalize_total`` + ``log1p``); the perturbations
are ``n_targets`` singles ``G+ctrl`` (CRISPR activation: each target's own log-mean rises by ``target_shift``)
and ``n_doubles`` distinct pairs ``A+B`` of them. With ``s_A`` the log-mean shift of single A, a double's shift
is of one of four types (:data:`INTERACTION_TYPES`):

* ``additive``: ``s_A + s_B``;
* ``synergy``: ``s_A + s_B + d`` on its affected genes, ``d ≈ interaction_size`` (uniform in ±25 %);
* ``suppression``: ``s_A + s_B − d`` on its affected genes;
* ``dominant``: ``s_A`` of one of its genes (the other's own activation kept), as if A's programme masked B's.

A synergistic or suppressive double's affected genes are ``interaction_share`` of the ``interaction_pool`` genes
of highest control expression (its own targets excepted). The truth is stored in ``uns["interaction_truth"]``
(:func:`make_doubles_dataset`), on the log-normalised scale of ``X``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from itertools import combinations
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd

from ..conditions import CTRL
from .count_model import (
    GENE_POOL_SIZE,
    LIBRARY_SD,
    TARGET_SUM,
    base_proportions,
    draw_cells,
    draw_counts,
    essential_candidates,
    gears_anndata,
    gears_obs,
    gene_pool,
    perturbation_shifts,
)
from .expectation import expected_log_normalised
from .presets import PRESETS, DoublesPreset, with_overrides

__all__ = ["INTERACTION_TYPES", "TRUTH_KEY", "make_doubles_dataset", "write_doubles_dataset", "InteractionPlan",
           "plan_interactions"]

INTERACTION_TYPES = ("additive", "synergy", "suppression", "dominant")
#: Where the planted truth is stored in ``uns``.
TRUTH_KEY = "interaction_truth"


@dataclass(frozen=True)
class InteractionPlan:
    """The planted interactions of the doubles (column ``j`` of every matrix is double ``j``).

    Attributes
    ----------
    pairs
        Per double, the positions of its two genes among the targets (in the order of its name ``A+B``).
    types
        Per double, one of :data:`INTERACTION_TYPES`.
    dominant
        Per double, the position (0 or 1) of the dominating gene in its pair; -1 unless ``dominant``.
    extra
        Genes × doubles: the log-mean shift added to the singles' sum (synergy > 0, suppression < 0).
    """

    pairs: np.ndarray
    types: np.ndarray
    dominant: np.ndarray
    extra: np.ndarray

    def double_shifts(self, singles: np.ndarray, target_rows: np.ndarray, target_shift: float) -> np.ndarray:
        """The doubles' log-mean shifts (genes × doubles) from the singles' (genes × targets)."""
        out = singles[:, self.pairs[:, 0]] + singles[:, self.pairs[:, 1]] + self.extra
        for j in np.flatnonzero(self.types == "dominant"):
            kept, masked = self.pairs[j, self.dominant[j]], self.pairs[j, 1 - self.dominant[j]]
            out[:, j] = singles[:, kept]
            if target_rows[masked] >= 0:
                out[target_rows[masked], j] += target_shift
        return out


def plan_interactions(
    rng: np.random.Generator, p: DoublesPreset, pairs: np.ndarray, base: np.ndarray, target_rows: np.ndarray
) -> InteractionPlan:
    """Draw each double's type (the preset's fractions, rounded, in random order), its affected genes and the
    size of its extra shift, and the dominating gene of a ``dominant`` double."""
    n = len(pairs)
    counts = [round(frac * n) for frac in (p.synergy_frac, p.suppression_frac, p.dominant_frac)]
    if sum(counts) > n:
        raise ValueError(f"interaction fractions of {p} add up to more than every double")
    types = np.array(["synergy"] * counts[0] + ["suppression"] * counts[1] + ["dominant"] * counts[2]
                     + ["additive"] * (n - sum(counts)), dtype=object)
    types = types[rng.permutation(n)]
    pool = np.argsort(-base, kind="stable")[: p.interaction_pool]
    n_affected = int(round(p.interaction_share * p.interaction_pool))
    extra = np.zeros((len(base), n))
    dominant = np.full(n, -1)
    for j, kind in enumerate(types):
        if kind in ("synergy", "suppression"):
            candidates = np.setdiff1d(pool, target_rows[pairs[j]])
            genes = rng.choice(candidates, min(n_affected, len(candidates)), replace=False)
            sign = 1.0 if kind == "synergy" else -1.0
            extra[genes, j] = sign * p.interaction_size * rng.uniform(0.75, 1.25, size=len(genes))
        elif kind == "dominant":
            dominant[j] = int(rng.integers(2))
    return InteractionPlan(pairs, types.astype(str), dominant, extra)


def make_doubles_dataset(preset: str | DoublesPreset = "norman", seed: int = 1, **overrides: Any) -> ad.AnnData:
    """Generate a GEARS-format double-perturbation dataset with a known genetic-interaction truth.

    Parameters
    ----------
    preset
        A key of :data:`~lsftbench.data.synthetic.presets.PRESETS` naming a :class:`DoublesPreset`, or one.
    seed
        Seed of the targets, pairs, interactions and cells.
    **overrides
        Fields of the preset to replace (e.g. ``n_doubles=20``).

    Returns
    -------
    AnnData
        Cells × genes as :func:`lsftbench.data.synthetic.datasets.make_dataset` writes them, conditions ``ctrl``,
        ``G+ctrl`` and ``A+B``; ``uns["synthetic"]`` (seed and preset) and ``uns["interaction_truth"]``:

        ``doubles``, ``type``, ``dominant_gene``
            Per double (the columns below): its name, its type (:data:`INTERACTION_TYPES`) and, for a
            ``dominant`` double, the gene whose shift it has ("" otherwise).
        ``genes``
            The rows below: the measured genes, in ``var["gene_name"]`` order.
        ``expected_nonadditivity``
            Genes × doubles, float64: the expected ``Δ_AB − (Δ_A + Δ_B)`` of the log-normalised means (Δ relative
            to the control), i.e. for infinitely many cells (:mod:`lsftbench.data.synthetic.expectation`). Not 0
            even for an additive double: ``log1p``, the library-size normalisation and the counting noise
            bend the sum of log-mean shifts.
        ``expected_delta``
            Genes × doubles: the expected ``Δ_AB``.
        ``synergy``, ``suppression``
            Genes × doubles, bool: the planted extra shift, positive resp. negative.
        ``interaction_pool``
            The genes interactions were planted in (the most expressed ones).
    """
    d = _design(preset, seed, overrides)
    conditions, log_shift = draw_cells(d.rng, d.names, d.shifts, d.p.n_ctrl, d.p.cells_per_pert)
    counts = draw_counts(d.rng, d.base, log_shift, d.p.library_size, d.p.dispersion)
    adata = gears_anndata(counts, conditions, d.measured, d.p.cell_type)
    d.annotate(adata)
    return adata


def write_doubles_dataset(
    path: str | os.PathLike[str], preset: str | DoublesPreset = "norman", seed: int = 1, *, chunk_cells: int = 5_000,
    **overrides: Any,
) -> dict[str, Any]:
    """:func:`make_doubles_dataset` for sizes whose dense count matrix does not fit in memory (a Norman-sized
    screen: 90,000 cells × 5,000 genes), written to ``path`` as an h5ad.

    The design (targets, pairs, planted interactions, the singles' and doubles' shifts, the base expression), the
    cells' conditions and ``uns`` are :func:`make_doubles_dataset`'s for the same ``preset``, ``seed`` and
    ``overrides``; the counts are drawn from the same model ``chunk_cells`` cells at a time (dense peak memory
    ``chunk_cells × n_genes``), so for the same seed they are other draws than :func:`make_doubles_dataset`'s. The
    sizes of the file, in the form of :func:`lsftbench.data.synthetic.large.write_large_dataset`'s report.
    """
    import scipy.sparse as sp

    from ...io import write_h5ad

    d = _design(preset, seed, overrides)
    p, rng = d.p, d.rng
    # the cells' conditions as draw_cells draws them (0: ctrl, j + 1: names[j]), then the counts chunk by chunk
    sizes = [p.n_ctrl] + [max(5, int(rng.poisson(p.cells_per_pert))) for _ in d.names]
    which = np.repeat(np.arange(len(sizes)), sizes)[rng.permutation(sum(sizes))]
    labels = np.asarray([CTRL, *d.names], dtype=object)
    table = np.vstack([np.zeros(p.n_genes), d.shifts.T])  # log-mean shift of each condition (rows) and gene
    parts, var = [], None
    for start in range(0, len(which), chunk_cells):
        rows = which[start : start + chunk_cells]
        counts = draw_counts(rng, d.base, table[rows], p.library_size, p.dispersion)
        part = gears_anndata(counts, labels[rows], d.measured, p.cell_type)  # per cell: as for all cells at once
        parts.append(part.X)
        var = part.var
        del counts, part
    x = sp.vstack(parts, format="csr", dtype=np.float32)
    del parts
    adata = ad.AnnData(X=x, obs=gears_obs(labels[which], p.cell_type), var=var)
    d.annotate(adata)
    write_h5ad(adata, path)
    return {"n_cells": int(x.shape[0]), "n_genes": int(x.shape[1]), "n_conditions": len(sizes), "nnz": int(x.nnz),
            "density": x.nnz / (x.shape[0] * x.shape[1]), "bytes": os.path.getsize(path)}


@dataclass(frozen=True)
class _Design:
    """Everything of a doubles dataset but its cells: drawn from ``rng``, which the cells then continue."""

    p: DoublesPreset
    seed: int
    rng: np.random.Generator
    measured: np.ndarray
    targets: np.ndarray
    names: list[str]
    shifts: np.ndarray  # genes × (singles, doubles)
    base: np.ndarray
    plan: InteractionPlan

    def annotate(self, adata: ad.AnnData) -> None:
        """``uns["synthetic"]`` and ``uns["interaction_truth"]``."""
        adata.uns["synthetic"] = {"seed": self.seed, **asdict(self.p)}
        adata.uns[TRUTH_KEY] = _truth(self.p, self.base, self.shifts, self.names, self.targets, self.plan,
                                      self.measured)


def _design(preset: str | DoublesPreset, seed: int, overrides: dict[str, Any]) -> _Design:
    p = with_overrides(PRESETS[preset] if isinstance(preset, str) else preset, overrides)
    if not isinstance(p, DoublesPreset):
        raise ValueError(f"{preset!r} is not a double-perturbation preset")
    if p.n_targets > p.n_genes or p.n_doubles > p.n_targets * (p.n_targets - 1) // 2:
        raise ValueError(f"synthetic doubles preset too large for its targets: {p}")
    rng = np.random.default_rng(seed)
    pool = max(p.n_genes, GENE_POOL_SIZE)  # more genes than the shared pool: the pool extended (gene_pool)
    measured = gene_pool(pool)[: p.n_genes]
    targets = gene_pool()[rng.choice(essential_candidates(p.n_genes, p.n_targets), p.n_targets, replace=False)]
    all_pairs = np.array(list(combinations(range(p.n_targets), 2)))
    pairs = all_pairs[np.sort(rng.choice(len(all_pairs), p.n_doubles, replace=False))]
    flip = rng.random(p.n_doubles) < 0.5  # names as a screen writes them: either gene first
    pairs[flip] = pairs[flip][:, ::-1]
    target_rows = pd.Index(measured).get_indexer(targets)  # every target is measured

    singles = perturbation_shifts(p.rank, p.mixing_seed, p.effect_scale, measured, targets, p.target_shift, p.max_shift,
                                  pool_size=pool)
    base = base_proportions(rng, p.n_genes)
    plan = plan_interactions(rng, p, pairs, base, target_rows)
    doubles = plan.double_shifts(singles, target_rows, p.target_shift)
    names = [f"{gene}+{CTRL}" for gene in targets] + [f"{targets[a]}+{targets[b]}" for a, b in pairs]
    return _Design(p, seed, rng, measured, targets, names, np.hstack([singles, doubles]), base, plan)


def _truth(
    p: DoublesPreset, base: np.ndarray, shifts: np.ndarray, names: list[str], targets: np.ndarray,
    plan: InteractionPlan, measured: np.ndarray,
) -> dict[str, np.ndarray]:
    """``uns["interaction_truth"]`` (see :func:`make_doubles_dataset`)."""
    log_shift = np.vstack([np.zeros(len(base)), shifts.T])  # ctrl, singles, doubles × genes
    mean = expected_log_normalised(base, log_shift, p.library_size, p.dispersion, LIBRARY_SD, TARGET_SUM)
    delta = (mean[1:] - mean[0]).T  # genes × (singles, doubles)
    single_delta, double_delta = delta[:, : p.n_targets], delta[:, p.n_targets :]
    nonadditivity = double_delta - single_delta[:, plan.pairs[:, 0]] - single_delta[:, plan.pairs[:, 1]]
    dominant_gene = [str(targets[plan.pairs[j, k]]) if k >= 0 else "" for j, k in enumerate(plan.dominant)]
    return {
        "doubles": np.array(names[p.n_targets :], dtype=str),
        "type": plan.types,
        "dominant_gene": np.array(dominant_gene, dtype=str),
        "genes": np.array(measured, dtype=str),
        "expected_nonadditivity": nonadditivity,
        "expected_delta": double_delta,
        "synergy": plan.extra > 0,
        "suppression": plan.extra < 0,
        "interaction_pool": np.array(measured[np.argsort(-base, kind="stable")[: p.interaction_pool]], dtype=str),
    }
