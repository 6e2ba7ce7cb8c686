"""GEARS condition names: ``ctrl``, ``GENE+ctrl`` (single) and ``GENE1+GENE2`` (double)."""

from __future__ import annotations

CTRL = "ctrl"

__all__ = ["CTRL", "condition_genes", "clean_condition", "is_single", "single_gene"]


def condition_genes(condition: str) -> list[str]:
    """Perturbed genes of a condition (``[]`` for ``ctrl``)."""
    return [part for part in condition.split("+") if part != CTRL]


def clean_condition(condition: str) -> str:
    """The condition name without ``+ctrl``: the gene symbol for a single, ``A+B`` for a double."""
    genes = condition_genes(condition)
    return "+".join(genes) if genes else CTRL


def is_single(condition: str) -> bool:
    """True for a single-gene perturbation such as ``GENE+ctrl``."""
    return condition != CTRL and len(condition_genes(condition)) == 1


def single_gene(condition: str) -> str | None:
    """Target gene of a single perturbation, ``None`` for ``ctrl`` and doubles."""
    genes = condition_genes(condition)
    return genes[0] if len(genes) == 1 else None
