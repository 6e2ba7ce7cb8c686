"""The stand-ins of the default run's pretrained and GO-graph baselines (rules ``synthetic_*``).

Their genes are the synthetic gene pool (:func:`lsftbench.data.synthetic.datasets.gene_pool`), 10 %
of it left out of the pretrained vocabularies (real vocabularies miss some genes too), and they carry
the synthetic data's true latent structure (:func:`~lsftbench.data.synthetic.datasets.latent_loadings`)
plus noise. They are written in the real file layouts and read by the same code as real files; every
table and figure built from them is marked as a stand-in.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

from .checkpoints import write_synthetic_scfoundation_checkpoint, write_synthetic_scgpt_checkpoint
from .count_model import gene_pool, latent_loadings
from .go_graph import write_synthetic_go_graph

__all__ = ["STAND_IN_KINDS", "write_stand_in"]

#: What a stand-in stands for → (embedding dimension, seed offset from the config's synthetic seed).
STAND_IN_KINDS = {"scgpt": (64, 0), "scfoundation": (48, 1), "go_graph": (None, 2)}
#: Latent rank of the structure the stand-ins carry.
_SIGNAL_RANK = 8


def write_stand_in(kind: str, outputs: Mapping[str, str | os.PathLike[str]], seed: int) -> list[str]:
    """Write the stand-in of ``kind`` (``scgpt``, ``scfoundation`` or ``go_graph``) to ``outputs``.

    ``outputs`` names the files as the rules do: ``model``, ``vocab``, ``args`` (scGPT), ``model``,
    ``gene_list`` (scFoundation) or ``csv`` (GO graph). Returns the paths written.
    """
    if kind not in STAND_IN_KINDS:
        raise ValueError(f"unknown stand-in {kind!r}; expected one of {sorted(STAND_IN_KINDS)}")
    dim, offset = STAND_IN_KINDS[kind]
    rng = np.random.default_rng(seed)
    pool = gene_pool()
    vocabulary = list(pool[np.sort(rng.choice(len(pool), int(0.9 * len(pool)), replace=False))])
    signal = latent_loadings(_SIGNAL_RANK)
    if kind == "scgpt":
        write_synthetic_scgpt_checkpoint(os.path.dirname(outputs["model"]), vocabulary, dim=dim, seed=seed + offset,
                                         signal=signal)
    elif kind == "scfoundation":
        write_synthetic_scfoundation_checkpoint(outputs["model"], outputs["gene_list"], vocabulary, dim=dim,
                                                seed=seed + offset, signal=signal)
    else:
        write_synthetic_go_graph(outputs["csv"], list(pool), seed=seed + offset, signal=signal)
    return [str(path) for path in outputs.values()]
