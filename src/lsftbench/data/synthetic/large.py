"""Streaming writer of large synthetic GEARS-format h5ad files (benchmarks of genome-wide screens).

:func:`lsftbench.data.synthetic.datasets.make_dataset` builds the whole count matrix in memory, which is fine for
the pipeline's small offline datasets but not for a 2-million-cell screen. :func:`write_large_dataset`
writes the same kind of file row chunk by row chunk: peak memory depends on ``chunk_cells × n_genes``
and on the number of perturbations, never on the number of cells.

Model (vectorised per chunk, in the spirit of :mod:`lsftbench.data.synthetic.datasets`):

* gene ``g`` has a base proportion ``base_g`` (gamma-distributed) and a latent vector ``w_g`` (rank
  ``r``, heavy-tailed activity); perturbing gene ``p`` shifts the log-mean of every gene by
  ``effect_scale · w_g · (M w_p)`` (low rank, softly clipped to ±3) and knocks the target itself down by ``knockdown``;
* in a cell of library size ``L_c`` (log-normal), gene ``g`` is detected with probability
  ``1 − exp(−μ_cg)`` (``μ_cg = L_c base_g exp(shift)``, as for a Poisson count), and a detected gene
  has count ``1 + ⌊2 μ_cg V⌋``, ``V`` uniform (a cheap stand-in for the zero-truncated Poisson); the
  library-size scale is calibrated so that the expected fraction of nonzero entries is ``density``;
* values are library-size normalised to 10⁴ and ``log1p``'d (float32, CSR), as in GEARS's files.

The file layout is anndata's (``X`` a ``csr_matrix`` group written with h5py; ``obs``, ``var``
written with :func:`anndata.io.write_elem`), so :func:`lsftbench.data.h5ad.open_perturb_data` and
backed anndata read it like any GEARS ``perturb_processed.h5ad``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import anndata as ad
import h5py
import numpy as np
import pandas as pd

from ...io import atomic_path
from ..conditions import CTRL

__all__ = ["LargeSpec", "K562_SIZED", "GENOME_WIDE", "write_large_dataset", "calibrate_library_size"]


MAX_LOG_SHIFT = 3.0


@dataclass(frozen=True)
class LargeSpec:
    """Shape and effect structure of a large synthetic screen."""

    n_cells: int
    n_genes: int
    n_perts: int
    ctrl_fraction: float = 0.08
    n_unmeasured: int | None = None  # default: 1 % of the perturbations
    rank: int = 10
    density: float = 0.10
    effect_scale: float = 0.6
    knockdown: float = 1.5
    library_sd: float = 0.3
    seed: int = 1
    #: When set, the measured targets are the first ones of one random ranking of the genes drawn with this seed,
    #: so datasets of different sizes share their targets (as the real screens' perturbed genes overlap).
    target_ranking_seed: int | None = None


#: The size of the Replogle K562 essential screen as used by the published LSFT code.
K562_SIZED = LargeSpec(n_cells=35_610, n_genes=5_000, n_perts=1_087)
#: A genome-wide screen (as in Replogle et al. 2022, many knocked-down genes are not among the measured ones).
GENOME_WIDE = LargeSpec(n_cells=2_000_000, n_genes=8_000, n_perts=10_000, n_unmeasured=2_000)


def calibrate_library_size(base: np.ndarray, density: float) -> float:
    """Library size ``L`` with ``mean_g(1 − exp(−L·base_g)) = density`` (bisection on log L)."""
    if not 0 < density < 1:
        raise ValueError(f"density must be in (0, 1), got {density}")
    lo, hi = -10.0, 40.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        frac = float(np.mean(-np.expm1(-np.exp(mid) * base)))
        lo, hi = (mid, hi) if frac < density else (lo, mid)
    return float(np.exp(0.5 * (lo + hi)))


def write_large_dataset(
    path: str | os.PathLike[str], spec: LargeSpec, chunk_cells: int = 4_000, h5_chunk: int = 1 << 20
) -> dict[str, Any]:
    """Write a synthetic GEARS-format h5ad of ``spec``'s size, streaming over row chunks.

    Parameters
    ----------
    path
        Destination ``.h5ad`` (written atomically).
    spec
        Sizes, density and effect structure.
    chunk_cells
        Cells generated at a time (memory ≈ a few × ``chunk_cells · n_genes · 4`` bytes).
    h5_chunk
        HDF5 chunk length (elements) of ``X/data`` and ``X/indices``.

    Returns
    -------
    dict
        Summary: ``n_cells``, ``n_genes``, ``n_conditions``, ``nnz``, ``density``, ``bytes``.
    """
    n_unmeasured = spec.n_unmeasured if spec.n_unmeasured is not None else max(1, spec.n_perts // 100)
    n_measured_targets = spec.n_perts - n_unmeasured
    if n_measured_targets > spec.n_genes or n_unmeasured < 0:
        raise ValueError(f"more perturbed measured genes than genes: {spec}")
    n_ctrl = max(1, int(round(spec.n_cells * spec.ctrl_fraction)))
    if spec.n_cells - n_ctrl < spec.n_perts:
        raise ValueError(f"fewer perturbed cells than perturbations: {spec}")

    rng = np.random.default_rng(spec.seed)
    width = max(5, len(str(spec.n_genes + n_unmeasured)))
    genes = np.array([f"GENE{i:0{width}d}" for i in range(1, spec.n_genes + 1)])
    unmeasured = np.array([f"GENE{i:0{width}d}" for i in range(spec.n_genes + 1, spec.n_genes + n_unmeasured + 1)])
    if spec.target_ranking_seed is None:
        measured_rows = rng.choice(spec.n_genes, n_measured_targets, replace=False)
    else:
        measured_rows = np.random.default_rng(spec.target_ranking_seed).permutation(spec.n_genes)[:n_measured_targets]
    target_rows = np.concatenate([measured_rows, -np.ones(n_unmeasured, int)])
    rng.shuffle(target_rows)
    unmeasured_iter = iter(unmeasured)
    targets = [genes[r] if r >= 0 else next(unmeasured_iter) for r in target_rows]
    conditions = np.array([CTRL] + [f"{g}+{CTRL}" for g in targets], dtype=object)

    # Latent programmes: genes × rank loadings with heavy-tailed activity; a perturbation's effect
    # direction is M w_target (unmeasured targets get their own draw).
    w = rng.normal(size=(spec.n_genes, spec.rank)) / np.sqrt(spec.rank)
    w *= rng.gamma(0.8, 1.0, size=(spec.n_genes, 1))
    w_unmeasured = rng.normal(size=(n_unmeasured, spec.rank)) / np.sqrt(spec.rank)
    mixing = rng.normal(size=(spec.rank, spec.rank)) / np.sqrt(spec.rank) + np.eye(spec.rank)
    w_target = np.empty((spec.n_perts, spec.rank))
    w_target[target_rows >= 0] = w[target_rows[target_rows >= 0]]
    w_target[target_rows < 0] = w_unmeasured
    factors = np.zeros((spec.rank, len(conditions)), dtype=np.float32)  # column 0: ctrl, no effect
    factors[:, 1:] = spec.effect_scale * (mixing @ w_target.T)
    w32 = w.astype(np.float32)
    kd_rows = np.concatenate([[-1], target_rows])

    base = rng.gamma(0.6, 1.0, size=spec.n_genes) + 0.02
    base /= base.sum()
    lib = calibrate_library_size(base, spec.density)
    log_base = np.log(base).astype(np.float32)

    # Cells per condition (every perturbation ≥ 5 cells when possible), interleaved at random.
    n_pert_cells = spec.n_cells - n_ctrl
    per = np.full(spec.n_perts, min(5, n_pert_cells // spec.n_perts))
    rest = n_pert_cells - per.sum()
    per += rng.multinomial(rest, rng.dirichlet(np.full(spec.n_perts, 20.0)))
    codes = np.repeat(np.arange(len(conditions), dtype=np.int32), np.concatenate([[n_ctrl], per]))
    rng.shuffle(codes)

    obs_names = pd.Index([f"cell{i:0{len(str(spec.n_cells))}d}" for i in range(spec.n_cells)], name=None)
    obs = pd.DataFrame(
        {
            "condition": pd.Categorical.from_codes(codes, categories=pd.Index(conditions.astype(str))),
            "cell_type": pd.Categorical.from_codes(np.zeros(spec.n_cells, dtype=np.int8), categories=["K562"]),
            "control": (codes == 0).astype(np.int8),
        },
        index=obs_names,
    )
    var = pd.DataFrame({"gene_name": genes}, index=[f"ENSSYN{i:08d}" for i in range(spec.n_genes)])
    skeleton = ad.AnnData(obs=obs, var=var)
    skeleton.uns["synthetic_large"] = {k: v for k, v in asdict(spec).items() if v is not None}
    del obs, obs_names

    nnz = 0
    with atomic_path(path) as tmp:
        skeleton.write_h5ad(tmp)
        del skeleton
        with h5py.File(tmp, "r+") as f:
            if "X" in f:
                del f["X"]
            x = f.create_group("X")
            x.attrs["encoding-type"] = "csr_matrix"
            x.attrs["encoding-version"] = "0.1.0"
            x.attrs["shape"] = np.array([spec.n_cells, spec.n_genes], dtype=np.int64)
            kw = dict(maxshape=(None,), chunks=(h5_chunk,))
            data_ds = x.create_dataset("data", shape=(0,), dtype=np.float32, **kw)
            idx_ds = x.create_dataset("indices", shape=(0,), dtype=np.int32, **kw)
            indptr_ds = x.create_dataset("indptr", shape=(spec.n_cells + 1,), dtype=np.int64)
            indptr_ds[0] = 0
            seeds = np.random.SeedSequence([spec.seed, 7919]).spawn((spec.n_cells + chunk_cells - 1) // chunk_cells)
            for k, start in enumerate(range(0, spec.n_cells, chunk_cells)):
                stop = min(start + chunk_cells, spec.n_cells)
                crng = np.random.default_rng(seeds[k])
                c = codes[start:stop]
                m = stop - start
                log_mean = factors[:, c].T @ w32.T  # m × genes: low-rank log-fold changes
                # soft clip at ±MAX_LOG_SHIFT: the heavy-tailed loadings would otherwise give a few
                # absurd fold changes
                log_mean *= 1.0 / MAX_LOG_SHIFT
                np.tanh(log_mean, out=log_mean)
                log_mean *= MAX_LOG_SHIFT
                log_mean += log_base[None, :]
                log_lib = np.log(lib) + crng.normal(0, spec.library_sd, size=m).astype(np.float32)
                log_mean += log_lib[:, None]
                kd = kd_rows[c]
                hit = np.flatnonzero(kd >= 0)
                log_mean[hit, kd[hit]] -= spec.knockdown
                mean = np.exp(log_mean, out=log_mean)
                # Detected iff U > exp(−μ) (probability 1 − exp(−μ) = P(Poisson(μ) > 0)); then
                # V = (U − e^−μ) / (1 − e^−μ) is again uniform and sets the count 1 + ⌊2μV⌋.
                p_zero = np.exp(np.negative(mean))
                u = crng.random(size=mean.shape, dtype=np.float32)
                flat = np.flatnonzero(u > p_zero)
                rows, cols = np.divmod(flat, spec.n_genes)
                mu = mean.ravel()[flat].astype(np.float64)
                pz = p_zero.ravel()[flat].astype(np.float64)
                v = (u.ravel()[flat] - pz) / (1.0 - pz)
                del mean, log_mean, u, p_zero, pz
                counts = 1.0 + np.floor(2.0 * mu * v)
                totals = np.bincount(rows, weights=counts, minlength=m)
                values = np.log1p(counts * (1e4 / totals[rows])).astype(np.float32)
                row_nnz = np.bincount(rows, minlength=m)
                n_new = len(values)
                data_ds.resize((nnz + n_new,))
                idx_ds.resize((nnz + n_new,))
                data_ds[nnz : nnz + n_new] = values
                idx_ds[nnz : nnz + n_new] = cols.astype(np.int32)
                indptr_ds[start + 1 : stop + 1] = nnz + np.cumsum(row_nnz)
                nnz += n_new
    size = Path(path).stat().st_size
    return {
        "n_cells": spec.n_cells,
        "n_genes": spec.n_genes,
        "n_conditions": len(conditions),
        "nnz": int(nnz),
        "density": nnz / (spec.n_cells * spec.n_genes),
        "bytes": int(size),
    }
