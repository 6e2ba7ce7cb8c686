"""Synthetic scGPT and scFoundation checkpoints with the real file layouts (:mod:`lsftbench.formats`).

Key names, shapes and special tokens are those of the real checkpoints, so the offline default run
extracts its gene tables with the same code (:mod:`lsftbench.embeddings.pretrained`) as a run on
real weights. With ``signal`` (genes × r latent loadings of the synthetic data,
:func:`lsftbench.data.synthetic.datasets.latent_loadings`) the gene rows carry the data's true
structure plus noise, so the pretrained baselines have something to find.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ...formats import SCFOUNDATION_N_SPECIAL, SCGPT_FILES, SCGPT_SPECIAL_TOKENS
from ...io import atomic_path

__all__ = ["write_synthetic_scgpt_checkpoint", "write_synthetic_scfoundation_checkpoint"]


def _synthetic_embedding(
    genes: Sequence[str], dim: int, rng: np.random.Generator, signal: pd.DataFrame | None
) -> np.ndarray:
    """``len(genes) × dim`` matrix: standardised ``signal`` rows times a random projection + N(0, 1).

    Genes absent from ``signal`` get noise only. The signal part has unit variance per
    dimension on average, so roughly half of each coordinate's variance is true structure.
    """
    noise = rng.standard_normal((len(genes), dim))
    if signal is None or signal.shape[1] == 0:
        return noise
    loadings = signal.reindex(pd.Index([str(g) for g in genes])).to_numpy(dtype=np.float64)
    present = np.isfinite(loadings).all(axis=1)
    if not present.any():
        return noise
    known = loadings[present]
    spread = known.std(axis=0)
    spread[spread == 0] = 1.0
    standardised = np.zeros_like(loadings)
    standardised[present] = (known - known.mean(axis=0)) / spread
    projection = rng.standard_normal((signal.shape[1], dim)) / np.sqrt(signal.shape[1])
    return standardised @ projection + noise


def write_synthetic_scgpt_checkpoint(
    out_dir: str | os.PathLike[str],
    genes: Sequence[str],
    dim: int = 32,
    seed: int = 0,
    signal: pd.DataFrame | None = None,
) -> Path:
    """Write a small scGPT checkpoint directory with the real file layout.

    ``vocab.json`` maps ``<pad>``, ``<cls>``, ``<eoc>`` and every gene to shuffled ids;
    ``best_model.pt`` is a state dict with ``encoder.embedding.weight`` (``len(vocab) × dim``),
    ``encoder.enc_norm.weight``/``bias`` and a few other realistic keys; ``args.json`` has
    ``embsize = dim`` and ``"synthetic": true``. With ``signal`` (genes × r latent loadings)
    the gene rows carry that structure plus N(0, 1) noise (see :func:`_synthetic_embedding`).

    Returns
    -------
    pathlib.Path
        ``out_dir``.
    """
    import torch

    rng = np.random.default_rng(seed)
    tokens = [*SCGPT_SPECIAL_TOKENS, *map(str, genes)]
    ids = rng.permutation(len(tokens))
    vocab = {token: int(i) for token, i in zip(tokens, ids, strict=True)}
    embedding = rng.standard_normal((len(tokens), dim))
    embedding[ids[len(SCGPT_SPECIAL_TOKENS) :]] = _synthetic_embedding(genes, dim, rng, signal)
    state = {
        "encoder.embedding.weight": embedding,
        "encoder.enc_norm.weight": 1.0 + 0.1 * rng.standard_normal(dim),
        "encoder.enc_norm.bias": 0.1 * rng.standard_normal(dim),
        "value_encoder.linear1.weight": rng.standard_normal((dim, 1)),
        "value_encoder.linear1.bias": rng.standard_normal(dim),
        "transformer_encoder.layers.0.self_attn.out_proj.weight": rng.standard_normal((dim, dim)) / np.sqrt(dim),
    }
    state_dict = {key: torch.tensor(value, dtype=torch.float32) for key, value in state.items()}
    args = {"embsize": dim, "nheads": 4, "d_hid": dim, "nlayers": 1, "n_layers_cls": 3, "dropout": 0.2,
            "pad_token": "<pad>", "seed": seed, "synthetic": True}
    out = Path(out_dir)
    model_file, vocab_file, args_file = (out / name for name in SCGPT_FILES)
    with atomic_path(model_file) as tmp:
        torch.save(state_dict, tmp)
    with atomic_path(vocab_file) as tmp:
        tmp.write_text(json.dumps(vocab, indent=1) + "\n")
    with atomic_path(args_file) as tmp:
        tmp.write_text(json.dumps(args, indent=2) + "\n")
    return out


def write_synthetic_scfoundation_checkpoint(
    ckpt_path: str | os.PathLike[str],
    gene_list_path: str | os.PathLike[str],
    genes: Sequence[str],
    dim: int = 32,
    seed: int = 0,
    signal: pd.DataFrame | None = None,
) -> None:
    """Write a small scFoundation ``models.ckpt`` and its gene list (``index``/``gene_name`` TSV).

    The checkpoint is ``{"gene": {"state_dict": {"model.pos_emb.weight": (len(genes) + 3) × dim,
    …}, "config": {…, "synthetic": True}}, "cell": {…}}``; the last three embedding rows are the
    special tokens. ``signal`` works as in :func:`write_synthetic_scgpt_checkpoint`.
    """
    import torch

    rng = np.random.default_rng(seed)
    gene_rows = _synthetic_embedding(genes, dim, rng, signal)
    pos_emb = np.vstack([gene_rows, rng.standard_normal((SCFOUNDATION_N_SPECIAL, dim))])

    def tensor(value: np.ndarray) -> torch.Tensor:
        return torch.tensor(value, dtype=torch.float32)

    config = {"encoder": {"hidden_dim": dim, "depth": 1, "heads": 4}, "seq_len": len(genes) + 3, "synthetic": True}
    gene_state = {
        "model.pos_emb.weight": tensor(pos_emb),
        "model.token_emb.weight": tensor(rng.standard_normal((1, dim))),
        "model.to_final.weight": tensor(rng.standard_normal((1, dim))),
    }
    ckpt = {
        "gene": {"state_dict": gene_state, "config": config},
        "cell": {"state_dict": {"model.pos_emb.weight": tensor(pos_emb.copy())}, "config": config},
    }
    with atomic_path(ckpt_path) as tmp:
        torch.save(ckpt, tmp)
    listing = pd.DataFrame({"index": np.arange(len(genes)), "gene_name": [str(g) for g in genes]})
    with atomic_path(gene_list_path) as tmp:
        listing.to_csv(tmp, sep="\t", index=False)
