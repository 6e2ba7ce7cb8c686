"""Layouts of the external resources the pipeline reads: what the real files hold and what the
synthetic stand-ins (:mod:`lsftbench.data.synthetic`) write, so both sides name them in one place; and the
range of log-normalised expression, which the readers of cells (datasets, a model's predictions) check.

Readers are in :mod:`lsftbench.embeddings` (``pretrained``, ``go_graph``); the start-up checks
(:mod:`lsftbench.pipeline.preflight`) look for :data:`SCGPT_FILES`.
"""

from __future__ import annotations

__all__ = [
    "SCGPT_FILES",
    "SCGPT_SPECIAL_TOKENS",
    "SCGPT_LAYERNORM_EPS",
    "SCFOUNDATION_SPECIAL_TOKENS",
    "SCFOUNDATION_N_SPECIAL",
    "GO_COLUMNS",
    "LOG_MAX",
]

#: The files of an scGPT checkpoint directory (model state dict, token → id map, model arguments).
SCGPT_FILES = ("best_model.pt", "vocab.json", "args.json")
#: scGPT's special tokens in ``vocab.json`` (no gene carries these names).
SCGPT_SPECIAL_TOKENS = ("<pad>", "<cls>", "<eoc>")
#: Epsilon of scGPT's encoder LayerNorm (``encoder.enc_norm``).
SCGPT_LAYERNORM_EPS = 1e-5
#: The rows after the genes in scFoundation's ``model.pos_emb.weight``.
SCFOUNDATION_SPECIAL_TOKENS = ("log10TotalCount1", "log10TotalCount2", "<pad>")
SCFOUNDATION_N_SPECIAL = len(SCFOUNDATION_SPECIAL_TOKENS)
#: Columns of GEARS' GO graph edge list ``go_essential_all.csv``.
GO_COLUMNS = ("source", "target", "importance")
#: Largest value log-normalised expression reaches in practice: log1p of counts per 10^4 stays below
#: ~10, log1p of CPM below ~14, log2(CPM + 1) below ~20. Larger values mean raw or linear-scale data.
LOG_MAX = 50.0
