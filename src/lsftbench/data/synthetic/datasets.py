"""Seeded synthetic GEARS-format datasets (the pipeline's offline default).

Counts are negative-binomial draws from a low-rank perturbation-effect model:

* every gene symbol of a shared pool has a latent vector ``w_g`` (rank ``r``), the same in every
  dataset, so perturbation embeddings transfer between datasets by gene symbol;
* perturbing gene ``g`` shifts the log-mean of every gene ``h`` by ``scale * w_h · (M w_g)``, with a
  dataset-specific ``r × r`` mixing matrix ``M`` (different effect structure per dataset), and
  knocks the target gene itself down by ``knockdown`` (log scale);
* counts ``~ NB(mean = library size × base proportion × exp(shift), dispersion)``, then library-size
  normalised (``scanpy.pp.normalize_total``) and ``log1p``'d, as in GEARS's processed files.

A few perturbed genes are drawn from outside the measured genes, as in the real screens.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
import scipy.sparse as sp

from ..conditions import CTRL
from .presets import PRESETS, SyntheticPreset

__all__ = ["SyntheticPreset", "PRESETS", "GENE_POOL_SIZE", "gene_pool", "essential_ranking", "latent_loadings", "make_dataset"]

GENE_POOL_SIZE = 3000
_POOL_SEED = 20250101


def gene_pool() -> np.ndarray:
    """Gene symbols shared by all synthetic datasets (``SYN0001`` …)."""
    return np.array([f"SYN{i:04d}" for i in range(1, GENE_POOL_SIZE + 1)])


def essential_ranking() -> np.ndarray:
    """Pool indices in a fixed "essentiality" order; datasets perturb genes from its head."""
    rng = np.random.default_rng(_POOL_SEED + 1)
    return np.concatenate([rng.permutation(400), 400 + rng.permutation(GENE_POOL_SIZE - 400)])


def latent_loadings(rank: int) -> pd.DataFrame:
    """True latent gene vectors ``w_g`` (pool genes × rank), identical across datasets."""
    rng = np.random.default_rng(_POOL_SEED)
    full = rng.normal(size=(GENE_POOL_SIZE, 8)) / np.sqrt(8)
    # Heavier-tailed activity: a minority of genes carry most of the programme signal.
    activity = rng.gamma(shape=0.8, scale=1.0, size=(GENE_POOL_SIZE, 1))
    full = full * activity
    cols = [f"factor_{k}" for k in range(rank)]
    return pd.DataFrame(full[:, :rank], index=pd.Index(gene_pool(), name="gene"), columns=cols)


def make_dataset(preset: str | SyntheticPreset, seed: int = 1, **overrides: Any) -> ad.AnnData:
    """Generate one GEARS-format dataset (``obs["condition"]``, ``var["gene_name"]``, CSR float32 ``X``).

    Parameters
    ----------
    preset
        A key of :data:`PRESETS` or a :class:`SyntheticPreset`.
    seed
        Seed for cell sampling and the choice of perturbed genes.
    **overrides
        Fields of :class:`SyntheticPreset` to replace (e.g. ``n_genes=50`` for tests); whole numbers
        written as floats (``1e3`` in a YAML config) count as integers.
    """
    p = PRESETS[preset] if isinstance(preset, str) else preset
    if overrides:
        p = replace(p, **{k: int(v) if float(v).is_integer() else v for k, v in overrides.items()})
    if p.n_genes + p.n_unmeasured > GENE_POOL_SIZE or p.n_perts - p.n_unmeasured > p.n_genes:
        raise ValueError(f"synthetic preset too large for the gene pool: {p}")
    rng = np.random.default_rng(seed)
    pool = gene_pool()
    measured = pool[: p.n_genes]
    # Perturbed genes come from one shared "essential gene" ranking, so datasets overlap by symbol
    # as the real screens do (Adamson's targets are mostly among K562's).
    ranking = essential_ranking()
    candidates = ranking[ranking < p.n_genes][: int(np.ceil(1.15 * (p.n_perts - p.n_unmeasured)))]
    perturbed = np.concatenate(
        [
            pool[rng.choice(candidates, p.n_perts - p.n_unmeasured, replace=False)],
            rng.choice(pool[p.n_genes :], p.n_unmeasured, replace=False),
        ]
    )
    rng.shuffle(perturbed)

    w = latent_loadings(p.rank)
    mixing = np.random.default_rng(p.mixing_seed).normal(size=(p.rank, p.rank)) / np.sqrt(p.rank) + np.eye(p.rank)
    w_measured = w.loc[measured].to_numpy()
    shifts = p.effect_scale * w_measured @ mixing @ w.loc[perturbed].to_numpy().T  # genes × perts
    target_row = pd.Index(measured).get_indexer(perturbed)
    for j, row in enumerate(target_row):
        if row >= 0:
            shifts[row, j] -= p.knockdown
    base = rng.gamma(shape=0.6, scale=1.0, size=p.n_genes) + 0.02
    base = base / base.sum()

    conditions = [CTRL] * p.n_ctrl
    log_shift_rows = [np.zeros((p.n_ctrl, p.n_genes))]
    for j, gene in enumerate(perturbed):
        n_cells = max(5, int(rng.poisson(p.cells_per_pert)))
        conditions += [f"{gene}+{CTRL}"] * n_cells
        log_shift_rows.append(np.broadcast_to(shifts[:, j], (n_cells, p.n_genes)))
    log_shift = np.vstack(log_shift_rows)
    order = rng.permutation(len(conditions))  # cells interleaved as in a real screen
    log_shift = log_shift[order]
    conditions = np.asarray(conditions, dtype=object)[order]

    libsize = rng.lognormal(np.log(p.library_size), 0.3, size=(len(conditions), 1))
    mean = libsize * base[None, :] * np.exp(log_shift)
    lam = rng.gamma(shape=p.dispersion, scale=mean / p.dispersion)
    counts = rng.poisson(lam).astype(np.float32)

    obs = pd.DataFrame(
        {
            "condition": pd.Categorical(conditions),
            "cell_type": p.cell_type,
            "control": (conditions == CTRL).astype(int),
        },
        index=[f"cell{i:06d}" for i in range(len(conditions))],
    )
    var = pd.DataFrame({"gene_name": measured}, index=[f"ENSSYN{i:07d}" for i in range(p.n_genes)])
    adata = ad.AnnData(X=sp.csr_matrix(counts), obs=obs, var=var)
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    adata.X = sp.csr_matrix(adata.X, dtype=np.float32)
    adata.uns["synthetic"] = {"seed": seed, **{k: v for k, v in asdict(p).items()}}
    return adata
