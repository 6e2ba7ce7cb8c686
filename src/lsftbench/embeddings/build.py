"""Gene embeddings ``A`` (genes × d) and perturbation embeddings ``B`` (d × conditions), SPEC section 4.

A baseline is described by a spec (from ``config.yaml``)::

    {"model": "ridge", "gene": {"type": "training_pca"}, "pert": {"type": "random", "seed": 1}}

Embedding types and whether LSFT recomputes them on the local training set:

=================  ============================================================  ===============
type               source                                                        LSFT refit
=================  ============================================================  ===============
``training_pca``   PCA scores of the training pseudobulk (genes × train conds);  yes
                   a perturbation is the score row of its target gene
``random``         i.i.d. N(0, 1), seeded                                        no (subset)
``dataset_pca``    PCA over the conditions of another dataset's pseudobulk,      no (subset)
                   matched by target-gene symbol
``table``,         a gene table (user TSV/CSV/Parquet, or extracted from scGPT /  no (subset)
``scgpt``, …       scFoundation checkpoints or the GO graph), by gene symbol
=================  ============================================================  ===============

``ctrl`` always has the zero perturbation embedding. A double perturbation ``A+B`` has ``b_A + b_B``, the sum
of its genes' embeddings as a single of each gene would have them (SPEC 10; a random embedding draws a gene that
has no single condition after all conditions' draws, so the singles' draws do not change). Conditions without an
embedding (target gene, or a double's gene, not measured or not in a table) are listed in ``Embedding.info`` as
not predictable; they are never silently dropped.

The training PCA is the same for every baseline of one (dataset, split): :func:`training_pca`
computes it once, :meth:`TrainingPCA.save` / :meth:`TrainingPCA.load` keep it in a small file, and
``build_embedding(..., training_scores=...)`` uses it instead of recomputing it. The pseudobulk may
be an AnnData or a :class:`lsftbench.data.mean_expression.MeanExpression` (read with h5py, no anndata import).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..data.conditions import CTRL, condition_genes, is_double, single_gene
from ..io import read_json, read_npz, write_npz
from ..labels import Labels
from ..specs import TABLE_TYPES, uses_training_pca
from .pca import pca_scores

if TYPE_CHECKING:  # anndata and pandas are slow to import; fit and LSFT jobs never need them
    import anndata as ad
    import pandas as pd

    from ..data.mean_expression import MeanExpression

    Pseudobulk = ad.AnnData | MeanExpression

__all__ = [
    "Embedding",
    "REFIT_TYPES",
    "TABLE_TYPES",
    "TrainingPCA",
    "build_embedding",
    "training_pca",
    "training_pca_gene_scores",
    "pert_columns_from_rows",
    "embedding_from_files",
    "training_pca_from_files",
]

REFIT_TYPES = frozenset({"training_pca"})


@dataclass
class Embedding:
    """Embeddings of one baseline on one dataset.

    Attributes
    ----------
    genes
        Gene symbols with a row in ``A`` (the genes the baseline predicts).
    A
        Gene embedding, ``len(genes) × d_A`` (empty for the mean-response model).
    conditions
        Conditions with a column in ``B`` (train, val and test conditions that have an embedding).
    B
        Perturbation embedding, ``d_B × len(conditions)``.
    gene_type, pert_type
        Embedding types (see module docstring); ``training_pca`` parts are refit by LSFT.
    model
        ``"ridge"`` (``Y ≈ A K B``), ``"mean"`` (mean response) or ``"additive"`` (``Δ_A + Δ_B`` of the training
        singles, SPEC 10); for the last two ``B`` only drives the LSFT / kNN neighbours.
    info
        Coverage and provenance (not predictable conditions, dropped genes, synthetic flags).
    """

    genes: Labels
    A: np.ndarray
    conditions: Labels
    B: np.ndarray
    gene_type: str
    pert_type: str
    model: str = "ridge"
    info: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write to ``.npz`` (atomically)."""
        write_npz(
            path,
            genes=np.asarray(self.genes, dtype=str),
            A=self.A,
            conditions=np.asarray(self.conditions, dtype=str),
            B=self.B,
            meta=np.asarray(
                json.dumps({"gene_type": self.gene_type, "pert_type": self.pert_type, "model": self.model, "info": self.info})
            ),
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Embedding:
        """Read an embedding written by :meth:`save`."""
        z = read_npz(path, ("meta", "genes", "A", "conditions", "B"))
        meta = json.loads(str(z["meta"]))
        return cls(
            genes=Labels(z["genes"].tolist(), name="gene"),
            A=z["A"],
            conditions=Labels(z["conditions"].tolist(), name="condition"),
            B=z["B"],
            gene_type=meta["gene_type"],
            pert_type=meta["pert_type"],
            model=meta["model"],
            info=meta["info"],
        )

    def column(self, condition: str) -> np.ndarray:
        """``B[:, condition]``."""
        return self.B[:, self.conditions.get_loc(condition)]


def training_pca_gene_scores(expr: pd.DataFrame, train_conditions: list[str], dim: int) -> pd.DataFrame:
    """PCA gene scores of the training pseudobulk expression (SPEC 4, first bullet).

    ``expr`` is genes × conditions of mean expression ``x̄``; the PCA runs on the training columns
    (``ctrl`` included), each column centred over genes. Returns genes × d scores.
    """
    import pandas as pd  # noqa: PLC0415 - the fit and LSFT jobs import this module without pandas

    scores = pca_scores(expr[train_conditions].to_numpy(), dim)
    return pd.DataFrame(scores, index=expr.index, columns=[f"pc_{k}" for k in range(scores.shape[1])])


@dataclass(frozen=True)
class TrainingPCA:
    """PCA gene scores of one dataset's training pseudobulk (SPEC 4), shared by all its baselines.

    Attributes
    ----------
    genes
        All measured genes, in pseudobulk order (the rows of ``scores``).
    scores
        genes × k scores, ``k = min(dim, rank bound)``.
    train
        The training conditions the PCA was fitted on (``split["train"]``, in order).
    dim
        The requested dimension (``pca_dim``).
    """

    genes: Labels
    scores: np.ndarray
    train: tuple[str, ...]
    dim: int

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write to an uncompressed ``.npz`` (atomically)."""
        write_npz(
            path,
            genes=np.asarray(self.genes, dtype=str),
            scores=np.asarray(self.scores, dtype=np.float64),
            train=np.asarray(self.train, dtype=str),
            dim=np.asarray(self.dim),
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TrainingPCA:
        """Read a file written by :meth:`save`."""
        z = read_npz(path, ("genes", "scores", "train", "dim"))
        return cls(genes=Labels(z["genes"].tolist(), name="gene"), scores=z["scores"],
                   train=tuple(z["train"].tolist()), dim=int(z["dim"]))

    def check(self, genes: Sequence[str], split: dict[str, list[str]], dim: int) -> None:
        """Raise ``ValueError`` unless this PCA was computed for these genes, training conditions and ``dim``."""
        problems = []
        if not self.genes.equals(genes):
            problems.append("its genes differ from the pseudobulk's")
        if list(self.train) != list(split["train"]):
            problems.append("it was fitted on other training conditions (another split)")
        if self.dim != dim:
            problems.append(f"its dimension is {self.dim}, not pca_dim = {dim}")
        if problems:
            raise ValueError("training_scores do not belong to this dataset and split: " + "; ".join(problems))


def training_pca(pb: Pseudobulk, split: dict[str, list[str]], dim: int) -> TrainingPCA:
    """The training PCA of one (dataset, split): PCA gene scores of the training conditions' mean expression.

    The same numbers as :func:`training_pca_gene_scores` on the genes × conditions expression.
    """
    train = list(split["train"])
    rows = pb.obs_names.get_indexer(train)
    if (rows < 0).any():
        raise KeyError(f"training conditions not in the pseudobulk: {[c for c, r in zip(train, rows) if r < 0][:5]}")
    scores = pca_scores(np.asarray(pb.X, dtype=np.float64)[rows].T, dim)  # genes × train conditions
    return TrainingPCA(genes=Labels(pb.var_names, name="gene"), scores=scores, train=tuple(train), dim=int(dim))


def pert_columns_from_rows(rows: pd.DataFrame, conditions: list[str]) -> tuple[list[str], np.ndarray, list[str]]:
    """Perturbation embedding from a table indexed by gene symbol.

    Each single perturbation takes the row of its target gene, a double ``A+B`` the sum of its genes' rows
    (SPEC 10), ``ctrl`` the zero vector. Returns ``(conditions with an embedding, B, conditions without one)``.
    """
    return _pert_columns(rows.index, rows.to_numpy(dtype=np.float64), conditions)


def _pert_columns(names: Any, values: np.ndarray, conditions: list[str]) -> tuple[list[str], np.ndarray, list[str]]:
    """:func:`pert_columns_from_rows` on row names (a :class:`Labels` or pandas index) and their values."""
    kept, cols, missing = [], [], []
    zero = np.zeros(values.shape[1])
    for cond in conditions:
        gene = single_gene(cond)
        if cond == CTRL:
            kept.append(cond)
            cols.append(zero)
        elif gene is not None and gene in names:
            kept.append(cond)
            cols.append(values[names.get_loc(gene)])
        elif is_double(cond) and all(g in names for g in condition_genes(cond)):
            first, second = condition_genes(cond)
            kept.append(cond)
            cols.append(values[names.get_loc(first)] + values[names.get_loc(second)])
        else:
            missing.append(cond)
    b = np.column_stack(cols) if cols else np.zeros((values.shape[1], 0))
    return kept, b, missing


def _random_pert_columns(rng: np.random.Generator, conditions: list[str], dim: int) -> tuple[list[str], np.ndarray]:
    """Seeded N(0, 1) perturbation embedding: one draw per condition (row i: ``conditions[i]``, split conditions are
    unique), ``ctrl`` zero; a double takes the sum of its genes' draws as singles (SPEC 10): the draw of the gene's
    single condition, or, for a gene without one, a draw after all the conditions' (in order of first appearance),
    so the singles' draws are the same with or without doubles."""
    draws = rng.standard_normal((len(conditions), dim))
    gene_draw = {}
    for i, cond in enumerate(conditions):
        gene = single_gene(cond)
        if gene is not None:
            gene_draw.setdefault(gene, draws[i])
    extra = list(dict.fromkeys(g for c in conditions if is_double(c) for g in condition_genes(c) if g not in gene_draw))
    if extra:
        gene_draw.update(zip(extra, rng.standard_normal((len(extra), dim))))
    conds, cols = [], []
    for i, cond in enumerate(conditions):
        if cond == CTRL:
            conds.append(cond)
            cols.append(np.zeros(dim))
        elif single_gene(cond) is not None:
            conds.append(cond)
            cols.append(draws[i])
        elif is_double(cond):
            first, second = condition_genes(cond)
            conds.append(cond)
            cols.append(gene_draw[first] + gene_draw[second])
    return conds, (np.column_stack(cols) if cols else np.zeros((dim, 0)))


def _dataset_pca_rows(source: Pseudobulk, dim: int, restrict_to: list[str] | None) -> tuple[Labels, np.ndarray]:
    """PCA scores over the conditions of a source pseudobulk, one row per target-gene symbol (its first condition)."""
    obs = list(source.obs_names) if restrict_to is None else list(restrict_to)
    x = np.asarray(source.X, dtype=np.float64)[source.obs_names.get_indexer(obs)]
    scores = pca_scores(x, dim)  # conditions as observations, genes centred
    first: dict[str, int] = {}
    for i, cond in enumerate(obs):
        gene = single_gene(cond)
        if gene is not None and gene not in first:
            first[gene] = i
    return Labels(first, name="gene"), scores[list(first.values())]


def build_embedding(
    spec: dict[str, Any],
    pb: Pseudobulk,
    split: dict[str, list[str]],
    dim: int,
    *,
    dataset: str,
    source_pseudobulk: Pseudobulk | None = None,
    source_dataset: str | None = None,
    gene_table: pd.DataFrame | None = None,
    pert_table: pd.DataFrame | None = None,
    training_scores: TrainingPCA | None = None,
) -> Embedding:
    """Build the embeddings of one baseline (SPEC sections 4-5).

    Parameters
    ----------
    spec
        Baseline spec with ``model``, ``gene`` and ``pert`` parts (see module docstring).
    pb
        Pseudobulk of the dataset (conditions × genes mean expression): an AnnData or a
        :class:`lsftbench.data.mean_expression.MeanExpression`.
    split
        ``{"train", "val", "test"}`` condition lists.
    dim
        ``pca_dim``: dimension of PCA and random embeddings.
    source_pseudobulk, source_dataset
        For ``dataset_pca`` perturbation embeddings: the source dataset's pseudobulk and name.
    gene_table, pert_table
        For ``table`` embeddings: gene tables indexed by gene symbol.
    training_scores
        The dataset's :func:`training_pca` for this split and ``dim``, computed once and loaded;
        used instead of recomputing it (same numbers). Checked against ``pb``, ``split`` and ``dim``.
    """
    model = spec.get("model", "ridge")
    gene_spec = spec.get("gene", {"type": "training_pca"})
    pert_spec = spec.get("pert", {"type": "training_pca"})
    n_vars = len(pb.var_names)
    all_conditions = [c for part in ("train", "val", "test") for c in split.get(part, [])]
    info: dict[str, Any] = {"n_measured_genes": int(n_vars)}
    if uses_training_pca(spec):
        if training_scores is None:
            training_scores = training_pca(pb, split, dim)
        else:
            training_scores.check(pb.var_names, split, dim)

    # Gene embedding A
    gtype = gene_spec["type"]
    if model in ("mean", "additive"):
        genes, a = pb.var_names, np.zeros((n_vars, 0))
        gtype = "none"
    elif gtype == "training_pca":
        genes, a = training_scores.genes, training_scores.scores
    elif gtype == "random":
        rng = np.random.default_rng(int(gene_spec.get("seed", 1)))
        genes, a = pb.var_names, rng.standard_normal((n_vars, int(gene_spec.get("dim", dim))))
    elif gtype in TABLE_TYPES:
        if gene_table is None:
            raise ValueError(f"gene embedding of type {gtype!r} needs a gene table")
        genes = pb.var_names[pb.var_names.isin(gene_table.index)]
        a = gene_table.loc[genes].to_numpy(dtype=np.float64)
        info["genes_dropped_not_in_table"] = int(n_vars - len(genes))
    else:
        raise ValueError(f"unknown gene embedding type {gtype!r}")

    # Perturbation embedding B
    ptype = pert_spec["type"]
    pert_names: Any = None  # the genes with a row of the perturbation embedding
    if ptype == "training_pca":
        pert_names = training_scores.genes
        conds, b, missing = _pert_columns(pert_names, training_scores.scores, all_conditions)
    elif ptype == "random":
        rng = np.random.default_rng(int(pert_spec.get("seed", 1)))
        pdim = int(pert_spec.get("dim", dim))
        conds, b = _random_pert_columns(rng, all_conditions, pdim)
        kept = set(conds)
        missing = [c for c in all_conditions if c not in kept]
    elif ptype == "dataset_pca":
        if source_pseudobulk is None:
            raise ValueError("perturbation embedding of type 'dataset_pca' needs the source pseudobulk")
        same = source_dataset == dataset
        names, rows = _dataset_pca_rows(source_pseudobulk, dim, split["train"] if same else None)
        if same:
            # Fitted on training conditions only (above): test/val conditions get no (leaking) embedding.
            info["source_is_target"] = True
        pert_names = names
        conds, b, missing = _pert_columns(names, rows, all_conditions)
    elif ptype in TABLE_TYPES:
        if pert_table is None:
            raise ValueError(f"perturbation embedding of type {ptype!r} needs a gene table")
        pert_names = pert_table.index
        conds, b, missing = pert_columns_from_rows(pert_table, all_conditions)
    else:
        raise ValueError(f"unknown perturbation embedding type {ptype!r}")

    info["synthetic_parts"] = [
        side for side, part in (("gene", gene_spec), ("pert", pert_spec))
        if "synthetic" in (part.get("checkpoint"), part.get("path")) and (side == "pert" or model == "ridge")
    ]
    info["not_predictable"] = sorted(set(missing))
    if pert_names is not None and any(is_double(c) for c in missing):  # which genes of a double lack an embedding
        info["double_genes_without_embedding"] = {
            c: [g for g in condition_genes(c) if g not in pert_names] for c in missing if is_double(c)
        }
    predictable = set(conds)
    info["n_test_predictable"] = sum(c in predictable for c in split["test"])
    info["n_test"] = len(split["test"])
    info["n_genes"] = len(genes)
    return Embedding(
        genes=Labels(genes, name="gene"),
        A=np.asarray(a, dtype=np.float64),
        conditions=Labels(conds, name="condition"),
        B=np.asarray(b, dtype=np.float64),
        gene_type=gtype,
        pert_type=ptype,
        model=model,
        info=info,
    )


def _table_inputs(inputs: Mapping[str, str | os.PathLike[str]]) -> dict[str, str | os.PathLike[str]]:
    """The gene-table files among a rule's inputs (``gene_table``, ``pert_table``)."""
    return {key: inputs[key] for key in ("gene_table", "pert_table") if key in inputs}


def read_tables(
    spec: dict[str, Any], inputs: Mapping[str, str | os.PathLike[str]], pb: Pseudobulk, *, baseline: str,
    min_table_genes: int,
) -> dict[str, pd.DataFrame]:
    """The baseline's gene tables named in ``inputs``, checked against the dataset (empty without tables).

    pandas is imported only here: baselines without a table do not pay for it. A table matching
    (almost) none of the dataset's names is an error, not NA or zero rows in the tables.
    """
    paths = _table_inputs(inputs)
    if not paths:
        return {}
    from .gene_tables import read_baseline_tables  # noqa: PLC0415

    return read_baseline_tables(spec, paths, pb.var_names, pb.obs_names, min_genes=min_table_genes, baseline=baseline)


def embedding_from_files(
    spec: dict[str, Any],
    inputs: Mapping[str, str | os.PathLike[str]],
    dim: int,
    *,
    dataset: str,
    baseline: str,
    min_table_genes: int,
) -> Embedding:
    """:func:`build_embedding` from the files of the rule ``embedding`` (default protocol).

    ``inputs``: ``pseudobulk`` and ``split``, and where the baseline needs them ``training_pca`` (the
    rule ``training_pca``'s file), ``source_pseudobulk`` (``dataset_pca``) and ``gene_table`` /
    ``pert_table``. The pseudobulks are read with h5py (:func:`read_mean_expression`): importing
    anndata would cost more than the job's work.
    """
    from ..data.mean_expression import read_mean_expression  # noqa: PLC0415

    pb = read_mean_expression(inputs["pseudobulk"])
    source = read_mean_expression(inputs["source_pseudobulk"]) if "source_pseudobulk" in inputs else None
    return build_embedding(
        spec,
        pb,
        read_json(inputs["split"]),
        dim,
        dataset=dataset,
        source_pseudobulk=source,
        source_dataset=spec.get("pert", {}).get("dataset"),
        # one PCA per (dataset, split seed), not one per baseline
        training_scores=TrainingPCA.load(inputs["training_pca"]) if "training_pca" in inputs else None,
        **read_tables(spec, inputs, pb, baseline=baseline, min_table_genes=min_table_genes),
    )


def training_pca_from_files(pseudobulk: str | os.PathLike[str], split: str | os.PathLike[str], dim: int) -> TrainingPCA:
    """:func:`training_pca` of a pseudobulk h5ad and a split JSON (the rule ``training_pca``)."""
    from ..data.mean_expression import read_mean_expression  # noqa: PLC0415

    return training_pca(read_mean_expression(pseudobulk), read_json(split), dim)
