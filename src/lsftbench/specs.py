"""The vocabulary of a run's configuration that every stage shares: the protocol names, and what a baseline spec's
embedding types mean (SPEC 4).

Ground floor: the stages (:mod:`lsftbench.embeddings.build`, :mod:`lsftbench.model.protocol`) and the Snakemake-facing
config look-ups (:mod:`lsftbench.pipeline.config`) read these facts from here, so no stage imports from the pipeline
helpers and no fact is written twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["PROTOCOLS", "TABLE_TYPES", "uses_training_pca"]

#: The protocols (SPEC 8): the leak-free default and the published code's ``seed_compat``.
PROTOCOLS = ("default", "seed_compat")

#: Gene-embedding types that read a gene table: such a baseline predicts only the genes its table has.
TABLE_TYPES = frozenset({"table", "scgpt", "scfoundation", "go_graph"})


def uses_training_pca(spec: Mapping[str, Any]) -> bool:
    """Whether a baseline's embeddings take the training PCA (SPEC 4): a ``training_pca`` gene side
    (unless the model is ``mean`` or ``additive``, which have no gene side) or perturbation side; both are the
    default."""
    gene = spec.get("gene", {}).get("type", "training_pca") if spec.get("model", "ridge") == "ridge" else None
    return "training_pca" in (gene, spec.get("pert", {}).get("type", "training_pca"))
