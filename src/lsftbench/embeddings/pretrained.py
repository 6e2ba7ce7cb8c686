"""Gene embeddings extracted from pretrained checkpoints, without the models' packages (SPEC section 4).

* scGPT: ``encoder.embedding.weight`` rows for the ``vocab.json`` ids, passed through the encoder
  LayerNorm (``encoder.enc_norm.weight/bias``, eps 1e-5) — what ``model.encoder(ids)`` returns;
* scFoundation: ``ckpt["gene"]["state_dict"]["model.pos_emb.weight"]``, rows named by the model's
  gene list plus three special tokens.

Only ``torch`` (CPU) is needed, imported lazily. The synthetic stand-ins of the offline default run
(:mod:`lsftbench.data.synthetic.checkpoints`) have the real file layouts (:mod:`lsftbench.formats`),
so they go through the same extraction code as the real files.
"""

from __future__ import annotations

import csv
import json
import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..formats import SCFOUNDATION_N_SPECIAL, SCGPT_FILES, SCGPT_LAYERNORM_EPS
from ..io import InputDataError
from .gene_tables import _gene_names, make_gene_table

__all__ = ["extract_scgpt", "extract_scfoundation", "extract_gene_table"]


# --------------------------------------------------------------------------------------------
# Torch checkpoints
# --------------------------------------------------------------------------------------------


def _looks_like_torch_file(path: Path) -> bool:
    """A zip archive with a ``data.pkl`` member (``torch.save``), or a pickle stream (the legacy format)."""
    import zipfile

    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                return any(name == "data.pkl" or name.endswith("/data.pkl") for name in archive.namelist())
        except (zipfile.BadZipFile, OSError):
            return False
    with open(path, "rb") as fh:
        return fh.read(1) == b"\x80"  # pickle protocol 2+ opcode PROTO


def _torch_load(path: Path, trust_pickle: bool = False) -> Any:
    """``torch.load`` on CPU with ``weights_only=True`` (optionally, from Python only, a full unpickle).

    A file that is not a PyTorch checkpoint at all (``torch.save`` writes a zip archive holding
    ``data.pkl``; the legacy format is a pickle stream) is said to be one, not sent through the unpickler.
    """
    import torch

    if not path.is_file():
        raise InputDataError(path, "file does not exist")
    if not _looks_like_torch_file(path):
        with open(path, "rb") as fh:
            head = fh.read(8)
        raise InputDataError(
            path, f"not a PyTorch checkpoint (a torch.save file is a zip archive holding data.pkl; this file starts with "
                  f"{head!r}): check the configured checkpoint path")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if not trust_pickle:
            raise InputDataError(
                path,
                "the checkpoint holds Python objects other than tensors and plain containers; checkpoints are read "
                f"with torch.load(weights_only=True), which refuses to run such objects' code ({err})",
            ) from err
    except Exception as err:  # noqa: BLE001 - any reader failure is an input problem
        raise InputDataError(path, f"not a readable PyTorch checkpoint ({type(err).__name__}: {err})") from err
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001
        raise InputDataError(path, f"not a readable torch checkpoint ({type(err).__name__}: {err})") from err


def _tensor(container: Any, key: str, path: Path, ndim: int) -> np.ndarray:
    """``container[key]`` as a float64 array with ``ndim`` dimensions."""
    import torch

    if not isinstance(container, dict) or key not in container:
        raise InputDataError(path, f"checkpoint has no tensor {key!r}")
    value = container[key]
    if not isinstance(value, torch.Tensor):
        raise InputDataError(path, f"{key!r} is a {type(value).__name__}, not a tensor")
    if value.ndim != ndim:
        raise InputDataError(path, f"{key!r} has shape {tuple(value.shape)}, expected {ndim} dimensions")
    return value.detach().to(torch.float64).numpy()


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    """``torch.nn.LayerNorm`` over the last axis (biased variance), in float64."""
    centred = x - x.mean(axis=1, keepdims=True)
    variance = np.mean(centred**2, axis=1, keepdims=True)
    return centred / np.sqrt(variance + eps) * weight + bias


def _read_json(path: Path) -> Any:
    """A checkpoint's JSON side file; a missing or malformed file is an error naming it."""
    if not path.is_file():
        raise InputDataError(path, "file does not exist")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputDataError(path, f"not valid JSON ({err})") from err


def _read_scgpt_vocab(path: Path) -> dict[str, int]:
    """``vocab.json`` as token → non-negative, unique integer id."""
    vocab = _read_json(path)
    if not isinstance(vocab, dict) or not vocab:
        raise InputDataError(path, "expected a non-empty JSON object mapping token -> id")
    bad = [t for t, i in vocab.items() if isinstance(i, bool) or not isinstance(i, int) or i < 0]
    if bad:
        raise InputDataError(path, f"{len(bad)} tokens without a non-negative integer id (e.g. {bad[0]!r})")
    ids = pd.Index(list(vocab.values()))
    if ids.has_duplicates:
        raise InputDataError(path, f"{int(ids.duplicated().sum())} ids are used by more than one token")
    return vocab


def extract_scgpt(checkpoint_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """Gene table of scGPT's data-independent gene embeddings (``model.encoder(ids)``).

    Parameters
    ----------
    checkpoint_dir
        Directory with ``best_model.pt`` (state dict), ``vocab.json`` (token → id) and
        ``args.json``.

    Returns
    -------
    pandas.DataFrame
        One row per vocabulary token that is not a special token (tokens starting with ``<``,
        e.g. ``<pad>``, ``<cls>``, ``<eoc>``), in id order: ``encoder.embedding.weight[id]``
        passed through LayerNorm with ``encoder.enc_norm.weight``/``bias`` and eps ``1e-5``,
        computed in float64 (torch computes it in float32: differences ~1e-7 relative).

    Raises
    ------
    InputDataError
        Missing files or keys, ids outside the embedding, LayerNorm or ``args.json["embsize"]``
        not matching the embedding width.
    """
    directory = Path(checkpoint_dir)
    model_file, vocab_file, args_file = (directory / n for n in SCGPT_FILES)
    vocab = _read_scgpt_vocab(vocab_file)
    args = _read_json(args_file)
    state = _torch_load(model_file)
    embedding = _tensor(state, "encoder.embedding.weight", model_file, ndim=2)
    weight = _tensor(state, "encoder.enc_norm.weight", model_file, ndim=1)
    bias = _tensor(state, "encoder.enc_norm.bias", model_file, ndim=1)
    width = embedding.shape[1]
    if weight.shape != (width,) or bias.shape != (width,):
        raise InputDataError(
            model_file, f"enc_norm weight/bias shapes {weight.shape}/{bias.shape} do not match embedding width {width}"
        )
    if isinstance(args, dict) and "embsize" in args and args["embsize"] != width:
        raise InputDataError(args_file, f"embsize {args['embsize']} but encoder.embedding.weight is {embedding.shape}")
    genes = sorted((i, t) for t, i in vocab.items() if not t.startswith("<"))
    if not genes:
        raise InputDataError(vocab_file, "no gene tokens (all tokens are special tokens starting with '<')")
    ids = np.array([i for i, _ in genes], dtype=np.int64)
    if ids.max() >= embedding.shape[0]:
        raise InputDataError(
            model_file,
            f"vocab.json ({vocab_file}) has ids up to {int(ids.max())} but encoder.embedding.weight has "
            f"only {embedding.shape[0]} rows",
        )
    values = _layer_norm(embedding[ids], weight, bias, SCGPT_LAYERNORM_EPS)
    return make_gene_table([t for _, t in genes], values, model_file)


def _read_gene_list(path: Path) -> list[str]:
    """Genes of a model gene list: a ``gene_name`` column (TSV/CSV with header) or one per line."""
    if not path.is_file():
        raise InputDataError(path, "file does not exist")
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise InputDataError(path, f"not a readable text file ({err})") from err
    lines = [line for line in lines if line.strip()]
    if not lines:
        raise InputDataError(path, "zero genes: the gene list is empty")
    sep = "\t" if "\t" in lines[0] else ","
    header = [field.strip() for field in next(csv.reader([lines[0]], delimiter=sep))]
    if "gene_name" in header:
        column = header.index("gene_name")
        rows = list(csv.reader(lines[1:], delimiter=sep))
        short = [k for k, row in enumerate(rows) if len(row) <= column]
        if short:
            raise InputDataError(path, f"line {short[0] + 2} has no gene_name field")
        genes = [row[column].strip() for row in rows]
    else:
        genes = [line.split("\t")[0].strip() for line in lines]
    return _gene_names(genes, path)


def extract_scfoundation(
    ckpt_path: str | os.PathLike[str],
    gene_list_path: str | os.PathLike[str],
    trust_pickle: bool = False,
) -> pd.DataFrame:
    """Gene table of scFoundation's gene (positional) embeddings.

    Parameters
    ----------
    ckpt_path
        ``models.ckpt``; the table is ``ckpt["gene"]["state_dict"]["model.pos_emb.weight"]``.
    gene_list_path
        The model's gene list (``OS_scRNA_gene_index.19264.tsv``): a TSV/CSV with a
        ``gene_name`` column, or plain text with one gene per line (first tab field).
    trust_pickle
        The checkpoint is loaded with ``weights_only=True``; if it holds other Python objects
        this fails with a clear error unless ``trust_pickle`` allows a full unpickle (only for
        files you trust).

    Returns
    -------
    pandas.DataFrame
        One row per listed gene, in list order. The embedding has ``len(genes) + 3`` rows: the
        three special tokens appended at its end (``log10TotalCount1``, ``log10TotalCount2``,
        ``<pad>``) are dropped.

    Raises
    ------
    InputDataError
        Missing files or keys, or an embedding whose row count is not ``len(genes) + 3``.
    """
    ckpt_path, gene_list_path = Path(ckpt_path), Path(gene_list_path)
    genes = _read_gene_list(gene_list_path)
    ckpt = _torch_load(ckpt_path, trust_pickle=trust_pickle)
    gene_part = ckpt.get("gene") if isinstance(ckpt, dict) else None
    state = gene_part.get("state_dict") if isinstance(gene_part, dict) else None
    if not isinstance(state, dict):
        raise InputDataError(ckpt_path, "checkpoint has no ckpt['gene']['state_dict'] dictionary")
    embedding = _tensor(state, "model.pos_emb.weight", ckpt_path, ndim=2)
    expected = len(genes) + SCFOUNDATION_N_SPECIAL
    if embedding.shape[0] != expected:
        raise InputDataError(
            ckpt_path,
            f"model.pos_emb.weight has {embedding.shape[0]} rows but the gene list {gene_list_path} has "
            f"{len(genes)} genes (+{SCFOUNDATION_N_SPECIAL} special tokens = {expected})",
        )
    return make_gene_table(genes, embedding[: len(genes)], ckpt_path)


def extract_gene_table(kind: str, inputs: Mapping[str, str | os.PathLike[str]]) -> pd.DataFrame:
    """The gene table of a pretrained embedding of type ``kind`` (``scgpt`` or ``scfoundation``).

    ``inputs`` are the checkpoint files as the rule ``pretrained_gene_table`` names them: the
    :data:`lsftbench.formats.SCGPT_FILES` of an scGPT checkpoint directory, or ``checkpoint`` and
    ``gene_list`` of scFoundation.
    """
    if kind == "scgpt":
        return extract_scgpt(Path(inputs[SCGPT_FILES[0]]).parent)
    if kind == "scfoundation":
        return extract_scfoundation(inputs["checkpoint"], inputs["gene_list"])
    raise ValueError(f"not a pretrained embedding type: {kind!r} (expected scgpt or scfoundation)")
