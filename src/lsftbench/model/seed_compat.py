"""The LSFT note's published protocol (SPEC section 9.1): **it leaks test data**, for comparison only.

This module computes what the published code computes — ``src/goal_3_prediction/lsft/lsft.py`` of
``kushminer/crispr-perturbation-manifold-benchmarks`` and what it imports for Δ, embeddings,
ridge fits and metrics — step by step (``docs/seed_compat.md`` records the side-by-side check):

* Δ from :func:`published_pseudobulk`: means in the dtype of ``X`` (float32 in GEARS files),
  summed in the published code's order; conditions (columns) in the order of their first cell;
  ``ctrl`` a training column and an LSFT neighbour candidate;
* PCA is scikit-learn's ``PCA(n_components=k, random_state=seed)`` with its automatic solver
  (randomized SVD, covariance eigendecomposition or full SVD, by shape) on float32 Δ:
  ``A = fit_transform(Y_train)`` (genes as observations), ``B_train = fit_transform(Y_trainᵀ)ᵀ``
  and ``B_test`` = the same PCA applied to the test perturbations' **own observed Δ** (the leak,
  which also drives the LSFT neighbour search);
* random embeddings: ``numpy.random.default_rng(seed).normal(0, 1, ...)`` with the run's seed;
  ``A`` is ``genes × d``; ``B_train`` (``d × n_train``) and ``B_test`` (``d × n_test``) are two
  consecutive draws of one generator. Each LSFT refit draws again from a fresh generator: a random
  ``A`` of ``genes × k``, or a random ``B`` of ``k × n`` followed by ``k × 1`` for the test;
* gene and perturbation tables (scGPT, scFoundation, GEARS GO): every gene and condition is kept,
  missing ones get a zero row / column; a condition is looked up as ``name.replace("+ctrl", "")``;
  GEARS' embedding is the published loader's spectral embedding (:func:`gears_go_table`) and
  scGPT's the raw ``encoder.embedding.weight`` rows (:func:`scgpt_encoder_table`);
* LSFT: sklearn cosine similarity of the global ``B`` columns; ``n = max(1, ceil(n_train·(K/100)))``
  in floating point; the ``n`` most similar by ``numpy.argsort``; PCA and random parts refit on the
  neighbours with ``k = min(d, n, n_genes)``, table parts kept; the centre depends on the published
  version (:data:`PUBLISHED_VERSIONS`).

Every output of this protocol carries :data:`LEAK_LABEL`. scikit-learn is imported inside the
functions that need it, so LSFT and fit jobs of the default protocol never pay its import.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..data.conditions import CTRL
from ..embeddings.build import TABLE_TYPES, Embedding
from ..formats import SCGPT_FILES
from ..io import read_json
from .lsft import LsftResult
from .problem import Problem

if TYPE_CHECKING:
    import anndata as ad
    from sklearn.decomposition import PCA

__all__ = [
    "LEAK_LABEL",
    "SPLIT_NOTE",
    "SEED_PCA",
    "PUBLISHED_CODE",
    "PUBLISHED_VERSIONS",
    "DEFAULT_VERSION",
    "published_center",
    "published_pseudobulk",
    "build_seed_embedding",
    "seed_embedding_from_files",
    "seed_global_predictions",
    "seed_lsft",
    "scgpt_encoder_table",
    "gears_go_table",
    "published_gene_table",
]

LEAK_LABEL = "seed_compat: LEAKS TEST DATA (each test perturbation's observed expression defines its own embedding)"
SPLIT_NOTE = (
    "seed_compat split: the published split cannot be regenerated (the published code shuffles "
    "list(set(conditions)), whose order depends on PYTHONHASHSEED); pass the published split file "
    "(datasets.<name>.split_file) to reproduce published numbers"
)
SEED_PCA = "seed_pca"
PUBLISHED_CODE = "github.com/kushminer/crispr-perturbation-manifold-benchmarks src/goal_3_prediction/lsft/lsft.py"
#: Published versions of the LSFT code and the centre each subtracts before a local refit:
#: ``969de7a`` (the last commit before the fix; unchanged since the initial commit, and how the
#: published tables were made) centres on the neighbours' mean Δ; ``v1.0.0`` (from 3aa826e "fix:
#: use global centering reference in LSFT retraining") on the mean Δ of all training columns.
PUBLISHED_VERSIONS: dict[str, str] = {"969de7a": "local", "v1.0.0": "global"}
DEFAULT_VERSION = "969de7a"
#: Spectral dimensions of the published GEARS GO loader (its default; ``pca_dim`` is not passed).
GO_COMPONENTS = 10
#: Ridge the published GEARS GO loader adds to the adjacency diagonal.
GO_DIAGONAL = 1e-6
_ARPACK_SEED = 20240917


def published_center(version: str) -> str:
    """``"local"`` or ``"global"``: the LSFT centre of a published version (:data:`PUBLISHED_VERSIONS`)."""
    if version not in PUBLISHED_VERSIONS:
        raise ValueError(f"unknown published version {version!r}; expected one of {sorted(PUBLISHED_VERSIONS)}")
    return PUBLISHED_VERSIONS[version]


def _pca(n_components: int, seed: int) -> PCA:
    """The published PCA: scikit-learn defaults (automatic solver) with ``random_state=seed``."""
    from sklearn.decomposition import PCA

    return PCA(n_components=n_components, random_state=seed)


def _fit_scores(pca: PCA, x: np.ndarray) -> np.ndarray:
    """``pca.fit_transform(x)``; a one-observation fit has no variance (sklearn warns dividing by 0)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return pca.fit_transform(x)


def _cleaned(condition: str) -> str:
    """The published code's name for a condition's table lookup (``GENE+ctrl`` -> ``GENE``)."""
    return condition.replace("+ctrl", "")


def _rows(table: pd.DataFrame, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``table`` for ``names``, zeros where a name is absent, and the absent mask."""
    values = table.reindex(pd.Index(names)).to_numpy(dtype=np.float64)
    absent = ~np.isfinite(values).all(axis=1)
    values[absent] = 0.0
    return values, absent


# --------------------------------------------------------------------------------------------
# Δ
# --------------------------------------------------------------------------------------------


def published_pseudobulk(path: str | os.PathLike[str]) -> ad.AnnData:
    """Mean expression per condition as the published code computes it, for exact parity.

    The published code reads the whole ``X`` (float32 in GEARS files) and averages in that dtype:
    each perturbation's cells densified (``X[rows].toarray().mean(axis=0)``, a sequential float32
    sum), ``ctrl`` with the sparse matrix's own ``mean`` (its Δ baseline). Float32 rounding makes
    these means differ from the default protocol's float64 pseudobulk in the last bits, and some
    published results (a PCA component of a local fit with ``n <= d`` neighbours spans rounding
    noise) depend on those bits.

    Returns
    -------
    AnnData
        conditions × genes in the dtype of ``X``; conditions in order of their first cell (the
        published column order), the ``ctrl`` row holding the published Δ baseline, so Δ =
        ``X[c] - X["ctrl"]`` is the published Δ of every perturbation. ``var["ctrl_delta"]`` is the
        published Δ of ``ctrl`` itself (dense minus sparse mean of the same cells: rounding noise,
        which decides the published Pearson r wherever ``ctrl`` is the single neighbour).
        ``obs["n_cells"]``, gene symbols as var names, ``uns["protocol"] = "seed_compat"``.
    """
    import anndata as ad
    import scipy.sparse as sp

    from ..data.h5ad import cell_conditions, gene_symbols, open_perturb_data

    adata = open_perturb_data(path, backed=False, check_targets=False)  # the published code reads it all
    codes, order = pd.factorize(cell_conditions(adata).to_numpy())
    counts = np.bincount(codes)
    bounds = np.concatenate([[0], np.cumsum(counts)])
    grouped = adata.X[np.argsort(codes, kind="stable")]  # each condition's rows, in cell order, contiguous
    means, ctrl_delta = [], None
    for k, condition in enumerate(order):
        block = grouped[bounds[k] : bounds[k + 1]]  # the rows (and values) of X[cells of condition]
        dense = np.asarray((block.toarray() if sp.issparse(block) else block).mean(axis=0)).ravel()
        if condition == CTRL:  # the baseline is the sparse matrix's mean; ctrl's own column the dense one
            baseline = np.asarray(block.mean(axis=0)).ravel()
            ctrl_delta, dense = dense - baseline, baseline
        means.append(dense)
    obs = pd.DataFrame({"n_cells": counts}, index=pd.Index([str(c) for c in order], name="condition"))
    var = pd.DataFrame({"ctrl_delta": ctrl_delta}, index=gene_symbols(adata, path))
    pb = ad.AnnData(X=np.vstack(means), obs=obs, var=var)
    pb.uns["protocol"] = "seed_compat"
    return pb


# --------------------------------------------------------------------------------------------
# Global embeddings
# --------------------------------------------------------------------------------------------


def build_seed_embedding(
    spec: dict[str, Any],
    pb: ad.AnnData,
    split: dict[str, list[str]],
    dim: int,
    *,
    seed: int,
    gene_table: pd.DataFrame | None = None,
    pert_table: pd.DataFrame | None = None,
) -> Embedding:
    """Embeddings of one baseline as the published code builds them (train and test columns).

    Parameters
    ----------
    spec
        The baseline's spec; a ``random`` part's own ``seed`` is not used (the published code
        draws with the run's ``seed``), and a ``dim`` other than ``dim`` is an error.
    pb
        :func:`published_pseudobulk` of the dataset (anything else is an error); its condition
        order is the column order.
    split
        The split (``val`` is unused).
    dim
        ``pca_dim`` of the published code.
    seed
        The published code's ``--seed``: PCA ``random_state`` and the random embeddings' seed.
    gene_table, pert_table
        Tables of the ``scgpt``/``scfoundation``/``table`` gene part and the ``go_graph``/``table``
        perturbation part (see :func:`scgpt_encoder_table` and :func:`gears_go_table`).
    """
    model = spec.get("model", "ridge")
    gene = spec.get("gene", {"type": "training_pca"}) if model != "mean" else {"type": "none"}
    pert = spec.get("pert", {"type": "training_pca"})
    for part in (gene, pert):
        if part.get("type") == "random" and int(part.get("dim", dim)) != dim:
            raise ValueError(f"seed_compat draws random embeddings of pca_dim = {dim} dimensions, not {part['dim']}")
    if pb.uns.get("protocol") != "seed_compat":
        raise ValueError("protocol seed_compat needs the published pseudobulk (lsftbench.model.seed_compat.published_pseudobulk)")
    members = set(split["train"]), set(split["test"])
    train, test = ([c for c in pb.obs_names if c in m] for m in members)
    absent = members[0].union(members[1]).difference(pb.obs_names)
    if absent:
        raise ValueError(f"split conditions without cells in the data: {sorted(absent)[:10]}")
    x = np.asarray(pb.X)
    # float64 difference of the stored means, rounded once: the published float32 subtraction
    ctrl = pb.obs_names.get_loc(CTRL)
    delta = (x.astype(np.float64) - x[ctrl]).astype(x.dtype)  # conditions × genes
    delta[ctrl] = pb.var["ctrl_delta"].to_numpy(dtype=x.dtype)
    y_train = delta[pb.obs_names.get_indexer(train)].T
    y_test = delta[pb.obs_names.get_indexer(test)].T
    genes = list(pb.var_names)
    a, gtype, missing_genes = _global_gene_embedding(gene, y_train, genes, dim, seed, gene_table)
    b, ptype, missing_conds = _global_pert_embedding(pert, y_train, y_test, train + test, dim, seed, pert_table)
    info = {
        "protocol": "seed_compat",
        "leaks_test_data": ptype == SEED_PCA,
        "published_code": PUBLISHED_CODE,
        "seed": int(seed),
        "pca_dim": int(dim),
        "delta_dtype": str(x.dtype),
        "ctrl_delta": delta[ctrl].astype(np.float64).tolist(),
        "not_predictable": [],
        "n_test_predictable": len(test),
        "n_test": len(test),
        "n_genes": len(genes),
        "genes_with_zero_embedding": missing_genes,
        "conditions_with_zero_embedding": missing_conds,
        # as the default protocol marks them: the parts built from a generated stand-in, not real weights
        "synthetic_parts": [
            side for side, part in (("gene", gene), ("pert", pert))
            if "synthetic" in (part.get("checkpoint"), part.get("path")) and (side == "pert" or model != "mean")
        ],
    }
    return Embedding(pd.Index(genes, name="gene"), a, pd.Index(train + test, name="condition"), b,
                     gtype, ptype, model, info)


def seed_embedding_from_files(
    spec: dict[str, Any], inputs: Mapping[str, str | os.PathLike[str]], dim: int, *, seed: int, baseline: str,
    min_table_genes: int,
) -> Embedding:
    """:func:`build_seed_embedding` from the files of the rule ``embedding``: the published pseudobulk
    (``pseudobulk``, read with anndata: it carries its protocol in ``.uns``), ``split`` and the tables."""
    import anndata as ad

    from ..embeddings.build import read_tables

    pb = ad.read_h5ad(inputs["pseudobulk"])
    tables = read_tables(spec, inputs, pb, baseline=baseline, min_table_genes=min_table_genes)
    return build_seed_embedding(spec, pb, read_json(inputs["split"]), dim, seed=seed, **tables)


def _global_gene_embedding(
    part: dict[str, Any], y_train: np.ndarray, genes: list[str], dim: int, seed: int, table: pd.DataFrame | None
) -> tuple[np.ndarray, str, list[str]]:
    """``A`` (genes × d), its type and the genes given zero rows."""
    kind = part["type"]
    if kind == "none":
        return np.zeros((len(genes), 0)), kind, []
    if kind == "training_pca":
        return _fit_scores(_pca(dim, seed), y_train), SEED_PCA, []
    if kind == "random":
        return np.random.default_rng(seed).normal(0, 1, size=(len(genes), dim)), kind, []
    if kind in TABLE_TYPES and kind != "go_graph":
        if table is None:
            raise ValueError(f"gene embedding type {kind!r} needs its gene table")
        a, absent = _rows(table, genes)
        return a, kind, [g for g, gone in zip(genes, absent, strict=True) if gone]
    raise ValueError(f"gene embedding type {kind!r} is not available under protocol seed_compat")


def _global_pert_embedding(
    part: dict[str, Any],
    y_train: np.ndarray,
    y_test: np.ndarray,
    conditions: list[str],
    dim: int,
    seed: int,
    table: pd.DataFrame | None,
) -> tuple[np.ndarray, str, list[str]]:
    """``B`` (d × (train + test)), its type and the conditions given zero columns."""
    kind = part["type"]
    if kind == "training_pca":
        pca = _pca(dim, seed)
        b_train = _fit_scores(pca, y_train.T).T
        return np.hstack([b_train, pca.transform(y_test.T).T]), SEED_PCA, []  # test columns: the leak
    if kind == "random":
        rng = np.random.default_rng(seed)
        b_train = rng.normal(0, 1, size=(dim, y_train.shape[1]))
        return np.hstack([b_train, rng.normal(0, 1, size=(dim, y_test.shape[1]))]), kind, []
    if kind in ("go_graph", "table"):
        if table is None:
            raise ValueError(f"perturbation embedding type {kind!r} needs its table")
        rows, absent = _rows(table, [_cleaned(c) for c in conditions])
        return rows.T, kind, [c for c, gone in zip(conditions, absent, strict=True) if gone]
    raise ValueError(f"perturbation embedding type {kind!r} is not available under protocol seed_compat")


# --------------------------------------------------------------------------------------------
# Global fit and LSFT
# --------------------------------------------------------------------------------------------


def _train_columns(problem: Problem) -> list[str]:
    """Training conditions in the embedding's (first-cell) order, ``ctrl`` included."""
    train = set(problem.train)
    return [c for c in problem.embedding.conditions if c in train]


def _published_y(problem: Problem, conditions: list[str]) -> np.ndarray:
    """Δ of ``conditions`` in the published dtype, ``ctrl`` holding its published (rounding-noise) Δ."""
    info = problem.embedding.info
    y = problem.y[:, problem.col(conditions)].astype(info["delta_dtype"])
    if CTRL in conditions:
        y[:, conditions.index(CTRL)] = np.asarray(info["ctrl_delta"], dtype=y.dtype)
    return y


def seed_global_predictions(problem: Problem, ridge: float) -> np.ndarray:
    """Global fit of the published code: predicted Δ for the test conditions (genes × tests).

    Centre = mean float32 Δ over all training columns (``ctrl`` included); ``mean_response``
    predicts that centre, the ridge models ``A K b_t + centre``.
    """
    emb = problem.embedding
    train = _train_columns(problem)
    y = _published_y(problem, train)
    center = y.mean(axis=1)
    if emb.model == "mean":
        return np.repeat(center.astype(np.float64)[:, None], len(problem.test), axis=1)
    return _fit_predict(y, emb.A, problem.b(train), problem.b(problem.test), ridge, center)


def _fit_predict(
    y: np.ndarray, a: np.ndarray, b: np.ndarray, b_new: np.ndarray, ridge: float, center: np.ndarray
) -> np.ndarray:
    """``A K b_new + centre`` for the ridge ``K`` of ``Y - centre ≈ A K B``, in the published dtypes.

    The model is :func:`lsftbench.model.ridge.solve_y_axb`'s; here ``Y - centre`` stays in the Δ dtype
    (float32) and ``AᵀYBᵀ`` is formed in the embeddings' dtypes, as in the published code. A fit
    with ``n <= d`` neighbours has a local PCA component that spans rounding noise, and the
    published prediction depends on those bits (see ``docs/seed_compat.md``).
    """
    yc = y - center[:, None]
    left = np.linalg.solve(a.T @ a + ridge * np.eye(a.shape[1]), a.T @ yc @ b.T)
    k = np.linalg.solve(b @ b.T + ridge * np.eye(b.shape[0]), left.T).T
    return a @ k @ b_new + center[:, None]


def seed_lsft(
    problem: Problem, top_pct: float, ridge: float, version: str = DEFAULT_VERSION, tests: list[str] | None = None
) -> LsftResult:
    """LSFT as the published code runs it (see the module docstring).

    The ``mean_response`` model predicts the neighbours' mean Δ (the kNN prediction): the published
    LSFT cannot run that model (its gene source ``"mean"`` raises), so those rows have no published
    counterpart.

    Parameters
    ----------
    problem
        A problem built from :func:`build_seed_embedding`'s embedding.
    top_pct
        ``K`` in percent.
    ridge
        Ridge penalty.
    version
        Published version (:data:`PUBLISHED_VERSIONS`): its centre for the local refit.
    tests
        Test conditions to run (default: all predictable ones).
    """
    from sklearn.metrics.pairwise import cosine_similarity

    local_center = published_center(version) == "local"
    emb = problem.embedding
    tests = problem.test if tests is None else list(tests)
    candidates = _train_columns(problem)
    n = max(1, int(np.ceil(len(candidates) * (top_pct / 100))))
    sims = cosine_similarity(problem.b(tests).T, problem.b(candidates).T)
    y32 = _published_y(problem, candidates)
    center_global = y32.mean(axis=1)
    local, knn, chosen = [], [], []
    for i, t in enumerate(tests):
        idx = np.argsort(sims[i])[-n:]
        idx = idx[np.argsort(sims[i][idx])[::-1]]
        chosen.append(idx)
        knn.append(y32[:, idx].astype(np.float64).mean(axis=1))
        if emb.model == "mean":
            local.append(knn[-1])
            continue
        y_sel = y32[:, idx]
        y_t = problem.y[:, problem.col([t])].astype(y32.dtype)
        a, b_sel, b_t = _local_embeddings(problem, y_sel, y_t, [candidates[j] for j in idx], t)
        center = y_sel.mean(axis=1) if local_center else center_global
        local.append(_fit_predict(y_sel, a, b_sel, b_t, ridge, center)[:, 0].astype(np.float64))
    return LsftResult(
        conditions=tests,
        local=np.column_stack(local) if local else np.zeros((len(problem.genes), 0)),
        knn=np.column_stack(knn) if knn else np.zeros((len(problem.genes), 0)),
        n_neighbours=n,
        mean_similarity=np.array([sims[i][idx].mean() for i, idx in enumerate(chosen)], dtype=np.float64),
        neighbours=[[candidates[j] for j in idx] for idx in chosen],
    )


def _local_embeddings(
    problem: Problem, y_sel: np.ndarray, y_t: np.ndarray, neighbours: list[str], test: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``A``, ``B`` of the neighbours and ``b`` of the test for one local refit."""
    emb = problem.embedding
    seed, n_genes = int(emb.info["seed"]), y_sel.shape[0]
    k = min(int(emb.info["pca_dim"]), y_sel.shape[1], n_genes)
    if emb.gene_type == SEED_PCA:
        a = _fit_scores(_pca(k, seed), y_sel)
    elif emb.gene_type == "random":
        a = np.random.default_rng(seed).normal(0, 1, size=(n_genes, k))
    else:
        a = emb.A
    if emb.pert_type == SEED_PCA:
        pca = _pca(k, seed)
        b_sel = _fit_scores(pca, y_sel.T).T
        b_t = pca.transform(y_t.T).T  # the local leak
    elif emb.pert_type == "random":
        rng = np.random.default_rng(seed)
        b_sel = rng.normal(0, 1, size=(k, y_sel.shape[1]))
        b_t = rng.normal(0, 1, size=(k, 1))
    else:
        b_sel, b_t = problem.b(neighbours), problem.b([test])
    return a, b_sel, b_t


# --------------------------------------------------------------------------------------------
# Published embedding tables
# --------------------------------------------------------------------------------------------


def scgpt_encoder_table(checkpoint_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """scGPT gene table as the published loader reads it: raw ``encoder.embedding.weight`` rows.

    Unlike :func:`lsftbench.embeddings.pretrained.extract_scgpt` (the default protocol), no encoder
    LayerNorm is applied. Rows are named by ``vocab.json`` (token → id); special tokens (starting
    with ``<``) are left out (no dataset gene carries such a name).
    """
    from ..data.h5ad import InputDataError
    from ..embeddings.gene_tables import make_gene_table
    from ..embeddings.pretrained import _read_scgpt_vocab, _tensor, _torch_load

    directory = Path(checkpoint_dir)
    model_file = directory / SCGPT_FILES[0]
    vocab = _read_scgpt_vocab(directory / "vocab.json")
    weights = _tensor(_torch_load(model_file), "encoder.embedding.weight", model_file, ndim=2)
    genes = sorted((i, t) for t, i in vocab.items() if not t.startswith("<"))
    if genes and genes[-1][0] >= weights.shape[0]:
        raise InputDataError(model_file, f"vocab.json has ids up to {genes[-1][0]} but encoder.embedding.weight "
                                         f"has {weights.shape[0]} rows")
    return make_gene_table([t for _, t in genes], weights[[i for i, _ in genes]], model_file)


def gears_go_table(csv_path: str | os.PathLike[str], n_components: int = GO_COMPONENTS) -> pd.DataFrame:
    """GEARS GO perturbation table as the published Python loader computes it.

    ``W`` = the edge list's ``importance`` as a sparse matrix (duplicated edges summed),
    ``M = W + Wᵀ + 10⁻⁶ I``; the table is ``U Λ^½`` for the ``min(n_components, n - 1)`` largest
    *algebraic* eigenvalues of ``M`` (ARPACK, ``Λ`` clipped at 0), in decreasing order. (The
    default protocol's :func:`lsftbench.embeddings.go_graph.go_graph_embedding` follows the paper's R code
    instead.) Eigenvector signs are fixed for determinism; predictions never depend on them.
    """
    import scipy.sparse as sp
    from scipy.sparse.linalg import eigsh

    from ..embeddings.gene_tables import make_gene_table
    from ..embeddings.go_graph import read_go_edges
    from ..embeddings.pca import fix_signs

    genes, sources, targets, weights = read_go_edges(csv_path)
    n = len(genes)
    w = sp.coo_matrix((weights, (sources, targets)), shape=(n, n)).tocsr()
    matrix = (w + w.T + sp.diags(np.full(n, GO_DIAGONAL))).tocsr()
    k = min(n_components, n - 1)
    v0 = np.random.default_rng(_ARPACK_SEED).uniform(-1.0, 1.0, n)
    values, vectors = eigsh(matrix, k=k, which="LA", v0=v0)
    order = np.argsort(values)[::-1]
    values, vectors = values[order], fix_signs(vectors[:, order])
    return make_gene_table(genes, vectors * np.sqrt(np.clip(values, 0, None)), csv_path)


def published_gene_table(kind: str, inputs: Mapping[str, str | os.PathLike[str]]) -> pd.DataFrame:
    """The table the published loaders build for an embedding of type ``kind`` (rule ``seed_compat_gene_table``):
    ``scgpt`` from the checkpoint files (:func:`scgpt_encoder_table`), ``go_graph`` from ``csv`` (:func:`gears_go_table`)."""
    if kind == "scgpt":
        return scgpt_encoder_table(Path(inputs[SCGPT_FILES[0]]).parent)
    if kind == "go_graph":
        return gears_go_table(inputs["csv"])
    raise ValueError(f"the published code builds no {kind!r} table (expected scgpt or go_graph)")
