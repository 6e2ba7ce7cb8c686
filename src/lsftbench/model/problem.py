"""The matrices one baseline is fitted on: Δ, expression and embeddings aligned on one dataset.

Names are :class:`lsftbench.labels.Labels` and matrices NumPy arrays: the fit and LSFT jobs that use
this module import neither pandas nor anndata (an AnnData pseudobulk is accepted all the same).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..data.conditions import CTRL, single_gene
from ..data.mean_expression import (
    MeanExpression,
    read_mean_expression,
    require_conditions,
    top_expressed,
    training_mean_delta,
)
from ..embeddings.build import Embedding
from ..io import read_json
from ..labels import Labels

if TYPE_CHECKING:
    import anndata as ad

__all__ = ["Problem", "make_problem", "load_problem"]


@dataclass
class Problem:
    """Everything a global fit or an LSFT shard needs, aligned and in float64.

    ``y`` holds Δ for the embedding's genes over ``conditions`` (train first, then test); ``expr_t``
    the mean expression of *all measured* genes over the training perturbations (for PCA refits).
    """

    embedding: Embedding
    genes: Labels  # rows of y (the embedding's genes)
    conditions: Labels  # columns of y: train (ctrl first) then test
    y: np.ndarray
    train: list[str]  # training conditions with an embedding, ctrl included
    train_perts: list[str]  # the same without ctrl (LSFT neighbour candidates)
    test: list[str]  # test conditions with an embedding
    test_not_predictable: list[str]
    measured_genes: Labels  # all genes of the pseudobulk
    expr_t: np.ndarray  # train_perts × measured genes, mean expression (C order)
    ctrl_expr: np.ndarray  # measured genes: mean expression of ctrl
    gene_rows: np.ndarray  # position of each embedding gene in ``measured_genes``
    target_rows: dict[str, int]  # position in ``measured_genes`` of each condition's target gene (-1 if unmeasured)
    top_idx: np.ndarray  # indices into ``genes`` of the 1000 highest control-mean genes
    train_mean: np.ndarray  # mean Δ (genes) of ALL training perturbations, ctrl excluded (SPEC 5 and 7)
    train_not_used: list[str] = field(default_factory=list)  # training perturbations without an embedding

    def col(self, conditions: list[str]) -> np.ndarray:
        """Column indices of ``conditions`` in ``y``."""
        return self.conditions.get_indexer(conditions)

    def b(self, conditions: list[str]) -> np.ndarray:
        """Global perturbation embedding columns."""
        return self.embedding.B[:, self.embedding.conditions.get_indexer(conditions)]


def make_problem(
    pb: ad.AnnData | MeanExpression,
    split: dict[str, list[str]],
    emb: Embedding,
    top_n: int = 1000,
    *,
    every_condition: bool = False,
) -> Problem:
    """Align a dataset's pseudobulk, its split and one baseline's embedding.

    Train and test conditions are those with a perturbation embedding, unless ``every_condition``
    and the embedding is the mean-response model, which needs no embedding to predict (its global
    fit predicts every test condition, SPEC 5; its LSFT neighbours still need ``B``).
    """
    if every_condition and emb.model == "mean":
        has_emb = set(split["train"]) | set(split["test"])
    else:
        has_emb = set(emb.conditions)
    train = [c for c in split["train"] if c in has_emb]
    if CTRL in train:
        train = [CTRL] + [c for c in train if c != CTRL]
    train_perts = [c for c in train if c != CTRL]
    test = [c for c in split["test"] if c in has_emb]
    not_pred = [c for c in split["test"] if c not in has_emb]
    conditions = Labels(train + test, name="condition")
    x = np.asarray(pb.X, dtype=np.float64)  # conditions × measured genes
    gene_rows = pb.var_names.get_indexer(emb.genes)
    ctrl = x[pb.obs_names.get_loc(CTRL)]
    rows = x[pb.obs_names.get_indexer(conditions)]  # one copy; genes selected and ctrl subtracted in place
    if not (len(gene_rows) == x.shape[1] and np.array_equal(gene_rows, np.arange(x.shape[1]))):
        rows = rows[:, gene_rows]
    rows -= ctrl[gene_rows]
    y = rows.T
    expr_t = x[pb.obs_names.get_indexer(train_perts)]
    target_rows = {c: (pb.var_names.get_loc(g) if (g := single_gene(c)) in pb.var_names else -1) for c in conditions}
    train_perts_all = [c for c in split["train"] if c != CTRL]
    train_mean = training_mean_delta(pb, split)[gene_rows] if train_perts_all else np.full(len(gene_rows), np.nan)
    return Problem(
        embedding=emb,
        genes=emb.genes,
        conditions=conditions,
        y=y,
        train=train,
        train_perts=train_perts,
        test=test,
        test_not_predictable=not_pred,
        measured_genes=Labels(pb.var_names, name="gene"),
        expr_t=expr_t,
        ctrl_expr=ctrl.copy(),
        gene_rows=gene_rows,
        target_rows=target_rows,
        top_idx=top_expressed(ctrl[gene_rows], top_n),
        train_mean=train_mean,
        train_not_used=[c for c in split["train"] if c != CTRL and c not in has_emb],
    )


def load_problem(
    pseudobulk_path: str, split_path: str, embedding_path: str, top_n: int = 1000, *, every_condition: bool = False
) -> Problem:
    """Read a pseudobulk h5ad, a split JSON and an embedding ``.npz`` and align them (see :func:`make_problem`)."""
    pb = read_mean_expression(pseudobulk_path)
    split = read_json(split_path)
    require_conditions(pb, [c for part in split.values() for c in part], pseudobulk_path)
    return make_problem(pb, split, Embedding.load(embedding_path), top_n, every_condition=every_condition)
