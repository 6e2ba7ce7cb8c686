"""A synthetic GO-like gene graph in the layout of GEARS' ``go_essential_all.csv`` (:data:`lsftbench.formats.GO_COLUMNS`).

Read back by the same code as the real file (:mod:`lsftbench.embeddings.go_graph`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ...formats import GO_COLUMNS
from ...io import atomic_path

__all__ = ["write_synthetic_go_graph"]


def write_synthetic_go_graph(
    csv_path: str | os.PathLike[str],
    genes: Sequence[str],
    seed: int = 0,
    mean_degree: float = 10.0,
    signal: pd.DataFrame | None = None,
) -> None:
    """Write a sparse random weighted GO-like graph in GEARS' ``go_essential_all.csv`` layout.

    Genes fall into communities of ~30 (with ``signal``: by the sign and column of their largest
    absolute loading, so communities follow the true structure). Each gene draws
    ``Poisson(mean_degree / 2)`` partners, 80 % from its own community; within-community weights
    are U(0.3, 0.9), others U(0.1, 0.3) (Jaccard-like, > 0.1 as in GEARS). Like the real file,
    every pair is listed in both directions with the same weight and every gene has a self-loop
    of importance 1.0, so the mean number of distinct neighbours is about ``mean_degree``.
    """
    rng = np.random.default_rng(seed)
    names = [str(g) for g in genes]
    n = len(names)
    community = _synthetic_communities(names, rng, signal)
    members = pd.Series(np.arange(n)).groupby(community).apply(np.asarray).to_dict()
    pairs: dict[tuple[int, int], float] = {}
    for i in range(n):
        for _ in range(rng.poisson(mean_degree / 2.0)):
            same = rng.random() < 0.8 and len(members[community[i]]) > 1
            j = int(rng.choice(members[community[i]])) if same else int(rng.integers(n))
            if j == i:
                continue
            inside = community[i] == community[j]
            weight = rng.uniform(0.3, 0.9) if inside else rng.uniform(0.1, 0.3)
            pairs.setdefault((min(i, j), max(i, j)), float(weight))
    rows = [(i, i, 1.0) for i in range(n)]
    rows += [(i, j, w) for (i, j), w in pairs.items()] + [(j, i, w) for (i, j), w in pairs.items()]
    rows.sort()
    columns = ([names[i] for i, _, _ in rows], [names[j] for _, j, _ in rows], [w for _, _, w in rows])
    edges = pd.DataFrame(dict(zip(GO_COLUMNS, columns, strict=True)))
    with atomic_path(csv_path) as tmp:
        edges.to_csv(tmp, index=False)


def _synthetic_communities(
    names: Sequence[str], rng: np.random.Generator, signal: pd.DataFrame | None
) -> np.ndarray:
    """Community label per gene: from ``signal`` loadings when given, else random groups of ~30."""
    n = len(names)
    labels = rng.integers(max(1, n // 30), size=n)
    if signal is None or signal.shape[1] == 0:
        return labels
    loadings = signal.reindex(pd.Index(names)).to_numpy(dtype=np.float64)
    present = np.isfinite(loadings).all(axis=1)
    strongest = np.argmax(np.abs(np.where(present[:, None], loadings, 0.0)), axis=1)
    sign = np.sign(loadings[np.arange(n), strongest]) > 0
    offset = int(labels.max()) + 1
    return np.where(present, offset + 2 * strongest + sign, labels)
