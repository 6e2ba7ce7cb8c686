"""Which test perturbations a baseline cannot predict, and why (SPEC sections 4 and 7.1)."""

from __future__ import annotations

from collections.abc import Iterable

from ..data.conditions import CTRL, condition_genes, single_gene
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

    ``measured_genes`` are the dataset's gene symbols. A single perturbation has no embedding when its
    target gene is not measured (PCA- and random-based embeddings need the gene's expression) or not in
    the table the embedding comes from; a double ``A+B`` (embedding ``b_A + b_B``, SPEC 10) when one of its
    genes has none.
    """
    measured = set(measured_genes)
    has_embedding = set(embedding.conditions)
    lacking = embedding.info.get("double_genes_without_embedding", {})
    reasons = {}
    for cond in conditions:
        if cond in has_embedding or cond == CTRL:
            continue
        gene = single_gene(cond)
        genes = condition_genes(cond)
        if gene is None and len(genes) == 2:
            missing = lacking.get(cond) or [g for g in genes if g not in measured] or genes
            where = _TABLE_SOURCES.get(embedding.pert_type)
            unmeasured = [g for g in missing if g not in measured]
            if where is None:
                why = "not measured"
            else:
                why = f"not measured and not in {where}" if unmeasured == missing else f"not in {where}"
            genes_text = f"gene {missing[0]} has" if len(missing) == 1 else f"genes {' and '.join(missing)} have"
            reasons[cond] = f"double perturbation: {genes_text} no embedding ({why})"
        elif gene is None:
            reasons[cond] = "not a single-gene perturbation"
        elif embedding.pert_type in _TABLE_SOURCES and gene not in measured:
            reasons[cond] = f"target gene {gene} not measured and not in {_TABLE_SOURCES[embedding.pert_type]}"
        elif embedding.pert_type in _TABLE_SOURCES:
            reasons[cond] = f"target gene {gene} not in {_TABLE_SOURCES[embedding.pert_type]}"
        else:
            reasons[cond] = f"target gene {gene} not measured"
    return reasons
