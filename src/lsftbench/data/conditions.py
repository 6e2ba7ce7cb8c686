"""GEARS condition names: ``ctrl``, ``GENE+ctrl`` / ``ctrl+GENE`` (single) and ``GENE1+GENE2`` (double)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import numpy as np

CTRL = "ctrl"

__all__ = [
    "CTRL",
    "condition_genes",
    "clean_condition",
    "condition_key",
    "canonical_spellings",
    "is_double",
    "is_single",
    "single_gene",
    "condition_problem",
    "invalid_conditions",
    "perturbation_targets",
    "target_positions",
    "count_perturbations",
]


def condition_genes(condition: str) -> list[str]:
    """Perturbed genes of a condition (``[]`` for ``ctrl``)."""
    return [part for part in condition.split("+") if part != CTRL]


def clean_condition(condition: str) -> str:
    """The condition name without ``+ctrl``: the gene symbol for a single, ``A+B`` for a double."""
    genes = condition_genes(condition)
    return "+".join(genes) if genes else CTRL


def condition_key(condition: str) -> str:
    """One name per condition whatever its spelling (SPEC 10): ``ctrl``; the gene for a single (``G+ctrl``,
    ``ctrl+G`` and ``G`` alike); the two genes sorted and joined by ``+`` for a double (``B+A`` = ``A+B``)."""
    genes = condition_genes(condition)
    return "+".join(sorted(genes)) if genes else CTRL


def canonical_spellings(names: Iterable[object]) -> dict[str, str]:
    """The renames that make each condition one name (SPEC 10): every spelling of ``names`` whose
    :func:`condition_key` an earlier spelling already had (``B+A`` after ``A+B``, ``ctrl+G`` after ``G+ctrl``),
    mapped to that first spelling.

    Parameters
    ----------
    names
        Distinct condition names in the order they are first met (e.g. in the cells of a file); anything
        that is not a string (a missing value) is passed over.

    Returns
    -------
    dict
        ``{later spelling: first spelling}``; empty when every condition is spelled one way, so data without
        such duplicates are read exactly as written.
    """
    first: dict[str, str] = {}
    renames: dict[str, str] = {}
    for name in names:
        if not isinstance(name, str):
            continue
        kept = first.setdefault(condition_key(name), name)
        if kept != name:
            renames[name] = kept
    return renames


def is_double(condition: str) -> bool:
    """True for a double perturbation ``A+B`` (two genes, neither ``ctrl``)."""
    return len(condition_genes(condition)) == 2


def is_single(condition: str) -> bool:
    """True for a single-gene perturbation such as ``GENE+ctrl``."""
    return condition != CTRL and len(condition_genes(condition)) == 1


def single_gene(condition: str) -> str | None:
    """Target gene of a single perturbation, ``None`` for ``ctrl`` and doubles."""
    genes = condition_genes(condition)
    return genes[0] if len(genes) == 1 else None


def condition_problem(condition: object) -> str | None:
    """Why ``condition`` is not ``ctrl``, ``G+ctrl``, ``ctrl+G`` or ``A+B``; ``None`` when it is one of them.

    Gene parts must be non-empty, free of whitespace and distinct; a part spelled like the control
    in another case (``Ctrl``, ``CTRL``) is rejected rather than taken for a gene symbol.
    """
    if not isinstance(condition, str):
        return f"not a string ({type(condition).__name__})"
    if condition == CTRL:
        return None
    if not condition:
        return "empty name"
    parts = condition.split("+")
    if any(part.lower() == CTRL and part != CTRL for part in parts):
        return f"the control is spelled {CTRL!r} (lower case)"
    if len(parts) == 1:
        return f"a bare name: a single perturbation is written 'GENE+{CTRL}'"
    if len(parts) > 2:
        return f"{len(parts)} '+'-separated parts; at most two genes ('A+B') are allowed"
    if any(not part for part in parts):
        return "an empty gene name around '+'"
    if any(part != "".join(part.split()) for part in parts):
        return "whitespace in a gene name"
    if parts[0] == parts[1]:
        return f"{'no perturbed gene' if parts[0] == CTRL else 'the same gene twice'}"
    return None


def invalid_conditions(conditions: Iterable[object]) -> dict[object, str]:
    """Each distinct invalid condition name with the reason (see :func:`condition_problem`)."""
    problems = {}
    for condition in dict.fromkeys(conditions):
        reason = condition_problem(condition)
        if reason is not None:
            problems[condition] = reason
    return problems


def perturbation_targets(conditions: Iterable[str]) -> list[str]:
    """The distinct perturbed genes of ``conditions`` (singles and doubles), in order of first appearance."""
    return list(dict.fromkeys(gene for condition in conditions for gene in condition_genes(condition)))


def target_positions(conditions: Iterable[str], genes: Any) -> np.ndarray:
    """Row of each condition's target gene(s) among ``genes``: an int array ``len(conditions) × 2``
    (a single perturbation fills one slot; ``-1`` pads and marks a target that is not among ``genes``).

    ``genes`` is anything with ``get_indexer`` (:class:`lsftbench.labels.Labels`, a pandas index). The
    metrics leave these rows out of a perturbation's own numbers with ``metrics.exclude_target_gene``.
    """
    conditions = list(conditions)
    out = np.full((len(conditions), 2), -1, dtype=np.int64)
    for i, condition in enumerate(conditions):
        parts = condition_genes(condition)[:2]
        if parts:
            out[i, : len(parts)] = genes.get_indexer(parts)
    return out


def count_perturbations(path: str | os.PathLike[str]) -> int | None:
    """The number of perturbation conditions (``ctrl`` not counted, ``A+B`` and ``B+A`` once) of a GEARS h5ad,
    read from the categories of ``obs["condition"]`` without loading the file; ``None`` when it cannot be told
    cheaply (no such file, a non-categorical column, an unreadable file)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            column = f["obs"]["condition"]
            if not isinstance(column, h5py.Group) or "categories" not in column:
                return None
            names = [c.decode() if isinstance(c, bytes) else str(c) for c in column["categories"][...]]
    except (OSError, KeyError, TypeError, ValueError):
        return None
    return len({condition_key(name) for name in names if name != CTRL})
