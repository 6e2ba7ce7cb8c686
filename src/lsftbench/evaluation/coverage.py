"""Which test perturbations a baseline cannot predict, and why (SPEC sections 4 and 7.1)."""

from __future__ import annotations

from collections.abc import Iterable

from ..data.conditions import CTRL, single_gene
from ..embeddings.build import Embedding

__all__ = ["unpredictable_reasons"]

_TABLE_SOURCES = {
    "table": "the gene table",
    "scgpt": "the scGPT vocabulary",
    "scfoundation": "the scFoundation gene list",
    "go_graph": "the GO graph",
    "dataset_pca": "the source dataset's conditions",
}


def unpredictable_reasons(conditions: Iterable[str], measured_genes: Iterable[str], embedding: Embedding) -> dict[str, str]:
    """For each condition without a perturbation embedding, the reason in words.

    ``measured_genes`` are the dataset's gene symbols. A double perturbation has no single target; a
    single one has no embedding when its target gene is not measured (PCA- and random-based
    embeddings need the gene's expression) or not in the table the embedding comes from.
    """
    measured = set(measured_genes)
    has_embedding = set(embedding.conditions)
    reasons = {}
    for cond in conditions:
        if cond in has_embedding or cond == CTRL:
            continue
        gene = single_gene(cond)
        if gene is None:
            reasons[cond] = "not a single-gene perturbation"
        elif embedding.pert_type in _TABLE_SOURCES and gene not in measured:
            reasons[cond] = f"target gene {gene} not measured and not in {_TABLE_SOURCES[embedding.pert_type]}"
        elif embedding.pert_type in _TABLE_SOURCES:
            reasons[cond] = f"target gene {gene} not in {_TABLE_SOURCES[embedding.pert_type]}"
        else:
            reasons[cond] = f"target gene {gene} not measured"
    return reasons
