"""The matrices one baseline is fitted on: Δ, expression and embeddings aligned on one dataset.

Names are :class:`lsftbench.labels.Labels` and matrices NumPy arrays: the fit and LSFT jobs that use
this module import neither pandas nor anndata (an AnnData pseudobulk is accepted all the same).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..data.conditions import CTRL, condition_genes, is_double, single_gene
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

__all__ = ["Problem", "make_problem", "load_problem", "additive_singles"]


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
    # position in ``measured_genes`` of each double's two genes (-1 if unmeasured), for the LSFT refits (SPEC 10)
    double_rows: dict[str, tuple[int, int]] = field(default_factory=dict)
    # the additive model (SPEC 10): Δ_A + Δ_B of the training singles, genes × test (None for other models)
    additive: np.ndarray | None = None
    # why a test perturbation is not predictable, where the alignment decides it (the additive model's singles)
    reasons: dict[str, str] = field(default_factory=dict)

    def col(self, conditions: list[str]) -> np.ndarray:
        """Column indices of ``conditions`` in ``y``."""
        return self.conditions.get_indexer(conditions)

    def b(self, conditions: list[str]) -> np.ndarray:
        """Global perturbation embedding columns."""
        return self.embedding.B[:, self.embedding.conditions.get_indexer(conditions)]

    def additive_for(self, conditions: list[str]) -> np.ndarray:
        """The additive model's predictions (genes × ``conditions``, test conditions it predicts)."""
        if self.additive is None:
            raise ValueError("only the additive model has additive predictions")
        return self.additive[:, Labels(self.test, name="condition").get_indexer(conditions)]


def additive_singles(split: dict[str, list[str]]) -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
    """The training singles of each test double (SPEC 10, the additive model) and, for the other test conditions,
    why the additive model cannot predict them.

    Returns ``({double: (single of its first gene, single of its second gene)}, {condition: reason})``: a double is
    predictable when both its genes' single perturbations are training conditions.
    """
    singles: dict[str, str] = {}
    for cond in split["train"]:
        gene = single_gene(cond)
        if gene is not None:
            singles.setdefault(gene, cond)
    parts, reasons = {}, {}
    for cond in split["test"]:
        if not is_double(cond):
            reasons[cond] = "the additive baseline predicts double perturbations only"
            continue
        lacking = [g for g in condition_genes(cond) if g not in singles]
        if len(lacking) == 1:
            reasons[cond] = (f"the single perturbation of {lacking[0]} is not a training condition "
                             "(the additive baseline needs both)")
        elif lacking:
            reasons[cond] = (f"the single perturbations of {' and '.join(lacking)} are not training conditions "
                             "(the additive baseline needs both)")
        else:
            first, second = condition_genes(cond)
            parts[cond] = (singles[first], singles[second])
    return parts, reasons


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
    and the embedding is the mean-response or additive model, which need no embedding to predict (the global
    fit of mean_response predicts every test condition, SPEC 5; its LSFT neighbours still need ``B``). The additive
    model predicts the test doubles whose genes' singles are training conditions (SPEC 10), its global fit all of
    them, its LSFT those with an embedding.
    """
    if every_condition and emb.model in ("mean", "additive"):
        has_emb = set(split["train"]) | set(split["test"])
    else:
        has_emb = set(emb.conditions)
    reasons: dict[str, str] = {}
    if emb.model == "additive":
        parts, reasons = additive_singles(split)
        has_emb -= set(reasons)
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
    double_rows = {c: tuple(int(pb.var_names.get_loc(g)) if g in pb.var_names else -1 for g in condition_genes(c))
                   for c in conditions if is_double(c)}
    additive = None
    if emb.model == "additive":  # Δ_A + Δ_B, each Δ computed as y's columns are
        firsts, seconds = (pb.obs_names.get_indexer([parts[c][k] for c in test]) for k in (0, 1))
        additive = ((x[firsts][:, gene_rows] - ctrl[gene_rows]) + (x[seconds][:, gene_rows] - ctrl[gene_rows])).T
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
        double_rows=double_rows,
        additive=additive,
        reasons={c: reasons[c] for c in not_pred if c in reasons},
    )


def load_problem(
    pseudobulk_path: str, split_path: str, embedding_path: str, top_n: int = 1000, *, every_condition: bool = False
) -> Problem:
    """Read a pseudobulk h5ad, a split JSON and an embedding ``.npz`` and align them (see :func:`make_problem`)."""
    pb = read_mean_expression(pseudobulk_path)
    split = read_json(split_path)
    require_conditions(pb, [c for part in ("train", "val", "test") for c in split.get(part, [])], pseudobulk_path)
    return make_problem(pb, split, Embedding.load(embedding_path), top_n, every_condition=every_condition)
