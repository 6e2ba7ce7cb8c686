"""The count model shared by the synthetic datasets (:mod:`~.datasets` for singles, :mod:`~.doubles` for doubles).

* every gene symbol of a shared pool has a latent vector ``w_g`` (rank ``r``), the same in every
  dataset, so perturbation embeddings transfer between datasets by gene symbol;
* perturbing gene ``g`` shifts the log-mean of every gene ``h`` by ``scale * w_h · (M w_g)``, with a
  dataset-specific ``r × r`` mixing matrix ``M`` (different effect structure per dataset), and
  moves the target gene itself by a fixed amount (a knockdown, or a CRISPRa activation);
* counts ``~ NB(mean = library size × base proportion × exp(shift), dispersion)``, then library-size
  normalised (``scanpy.pp.normalize_total``) and ``log1p``'d, as in GEARS's processed files.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
import scipy.sparse as sp

from ..conditions import CTRL

__all__ = ["GENE_POOL_SIZE", "LIBRARY_SD", "TARGET_SUM", "gene_pool", "essential_ranking", "essential_candidates",
           "latent_loadings", "perturbation_shifts", "base_proportions", "draw_cells", "draw_counts", "gears_anndata", "gears_obs"]

GENE_POOL_SIZE = 3000
#: Standard deviation of a cell's log library size.
LIBRARY_SD = 0.3
#: Counts per cell after ``normalize_total``.
TARGET_SUM = 1e4
_POOL_SEED = 20250101


def gene_pool(size: int = GENE_POOL_SIZE) -> np.ndarray:
    """Gene symbols shared by all synthetic datasets (``SYN0001`` …); ``size`` above :data:`GENE_POOL_SIZE` extends
    the pool (``SYN3001`` …) for a dataset measuring more genes, the first :data:`GENE_POOL_SIZE` unchanged."""
    return np.array([f"SYN{i:04d}" for i in range(1, max(size, GENE_POOL_SIZE) + 1)])


def essential_ranking() -> np.ndarray:
    """Pool indices in a fixed "essentiality" order; datasets perturb genes from its head."""
    rng = np.random.default_rng(_POOL_SEED + 1)
    return np.concatenate([rng.permutation(400), 400 + rng.permutation(GENE_POOL_SIZE - 400)])


def _loadings(rng: np.random.Generator, n_genes: int) -> np.ndarray:
    full = rng.normal(size=(n_genes, 8)) / np.sqrt(8)
    # Heavier-tailed activity: a minority of genes carry most of the programme signal.
    activity = rng.gamma(shape=0.8, scale=1.0, size=(n_genes, 1))
    return full * activity


def latent_loadings(rank: int, size: int = GENE_POOL_SIZE) -> pd.DataFrame:
    """True latent gene vectors ``w_g`` (pool genes × rank), identical across datasets. ``size`` above
    :data:`GENE_POOL_SIZE` extends the pool (:func:`gene_pool`): the extra genes' vectors are drawn the same way
    from a stream of their own, so the first :data:`GENE_POOL_SIZE` rows do not change."""
    full = _loadings(np.random.default_rng(_POOL_SEED), GENE_POOL_SIZE)
    if size > GENE_POOL_SIZE:
        full = np.vstack([full, _loadings(np.random.default_rng(_POOL_SEED + 2), size - GENE_POOL_SIZE)])
    cols = [f"factor_{k}" for k in range(rank)]
    return pd.DataFrame(full[:, :rank], index=pd.Index(gene_pool(size), name="gene"), columns=cols)


def essential_candidates(n_genes: int, n_targets: int) -> np.ndarray:
    """Pool indices perturbed genes are drawn from: the first ``1.15 n_targets`` measured genes of the shared
    "essential gene" ranking, so datasets overlap by symbol as the real screens do (Adamson's targets are
    mostly among K562's)."""
    ranking = essential_ranking()
    return ranking[ranking < n_genes][: int(np.ceil(1.15 * n_targets))]


def perturbation_shifts(
    rank: int,
    mixing_seed: int,
    effect_scale: float,
    measured: np.ndarray,
    perturbed: np.ndarray,
    target_shift: float,
    max_shift: float | None = None,
    pool_size: int = GENE_POOL_SIZE,
) -> np.ndarray:
    """True log-mean shifts (measured genes × perturbed genes): ``effect_scale · w_h · (M w_g)`` with the pool's
    latent vectors and the mixing matrix ``M`` of ``mixing_seed`` (softly clipped to ``± max_shift`` when given:
    ``max_shift · tanh(shift / max_shift)``), plus ``target_shift`` on the perturbed gene's own row when it is
    measured (negative: a knockdown). ``pool_size``: the pool the genes are from (:func:`gene_pool`)."""
    w = latent_loadings(rank, pool_size)
    mixing = np.random.default_rng(mixing_seed).normal(size=(rank, rank)) / np.sqrt(rank) + np.eye(rank)
    shifts = effect_scale * w.loc[measured].to_numpy() @ mixing @ w.loc[perturbed].to_numpy().T
    if max_shift is not None:
        shifts = max_shift * np.tanh(shifts / max_shift)
    target_row = pd.Index(measured).get_indexer(perturbed)
    for j, row in enumerate(target_row):
        if row >= 0:
            shifts[row, j] += target_shift
    return shifts


def base_proportions(rng: np.random.Generator, n_genes: int) -> np.ndarray:
    """Each gene's share of a control cell's counts (gamma-distributed, summing to 1)."""
    base = rng.gamma(shape=0.6, scale=1.0, size=n_genes) + 0.02
    return base / base.sum()


def draw_cells(
    rng: np.random.Generator, names: list[str], shifts: np.ndarray, n_ctrl: int, cells_per_pert: int
) -> tuple[np.ndarray, np.ndarray]:
    """The cells: ``n_ctrl`` control cells and ``max(5, Poisson(cells_per_pert))`` of each condition of ``names``
    (whose log-mean shifts are the columns of ``shifts``), interleaved at random as in a real screen.

    Returns the per-cell condition names and log-mean shifts (cells × genes).
    """
    n_genes = shifts.shape[0]
    conditions = [CTRL] * n_ctrl
    log_shift_rows = [np.zeros((n_ctrl, n_genes))]
    for j, name in enumerate(names):
        n_cells = max(5, int(rng.poisson(cells_per_pert)))
        conditions += [name] * n_cells
        log_shift_rows.append(np.broadcast_to(shifts[:, j], (n_cells, n_genes)))
    log_shift = np.vstack(log_shift_rows)
    order = rng.permutation(len(conditions))
    return np.asarray(conditions, dtype=object)[order], log_shift[order]


def draw_counts(
    rng: np.random.Generator, base: np.ndarray, log_shift: np.ndarray, library_size: float, dispersion: float
) -> np.ndarray:
    """Negative-binomial counts (cells × genes, float32): a log-normal library size (sd :data:`LIBRARY_SD`) times
    ``base`` times ``exp(log_shift)`` is the mean, ``dispersion`` the gamma shape of the Poisson rate."""
    libsize = rng.lognormal(np.log(library_size), LIBRARY_SD, size=(log_shift.shape[0], 1))
    mean = libsize * base[None, :] * np.exp(log_shift)
    lam = rng.gamma(shape=dispersion, scale=mean / dispersion)
    return rng.poisson(lam).astype(np.float32)


def gears_anndata(counts: np.ndarray, conditions: np.ndarray, measured: np.ndarray, cell_type: str) -> ad.AnnData:
    """GEARS's processed layout of the counts: ``normalize_total`` to 10⁴ and ``log1p`` (CSR float32), obs
    ``condition`` (categorical), ``cell_type``, ``control``; var ``gene_name``."""
    var = pd.DataFrame({"gene_name": measured}, index=[f"ENSSYN{i:07d}" for i in range(len(measured))])
    adata = ad.AnnData(X=sp.csr_matrix(counts), obs=gears_obs(conditions, cell_type), var=var)
    sc.pp.normalize_total(adata, target_sum=TARGET_SUM)
    sc.pp.log1p(adata)
    adata.X = sp.csr_matrix(adata.X, dtype=np.float32)
    return adata


def gears_obs(conditions: np.ndarray, cell_type: str) -> pd.DataFrame:
    """The cells' ``obs`` of :func:`gears_anndata`: ``condition`` (categorical), ``cell_type``, ``control``."""
    conditions = np.asarray(conditions, dtype=object)
    return pd.DataFrame(
        {
            "condition": pd.Categorical(conditions),
            "cell_type": cell_type,
            "control": (conditions == CTRL).astype(int),
        },
        index=[f"cell{i:06d}" for i in range(len(conditions))],
    )
