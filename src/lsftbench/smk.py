"""Glue for ``workflow/scripts``: logging into the rule's log file and reading the ``snakemake`` object."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["setup_logging", "test_chunk", "column", "key_columns"]


def setup_logging(snakemake: Any) -> logging.Logger:
    """Send logging (and uncaught exceptions) of a script job to its ``log:`` file."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if snakemake.log:
        handlers.append(logging.FileHandler(snakemake.log[0], mode="w"))
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", handlers=handlers, force=True
    )
    logger = logging.getLogger(f"lsftbench.{snakemake.rule}")

    def excepthook(kind: type[BaseException], value: BaseException, tb: Any) -> None:
        logger.error("%s: %s", kind.__name__, value, exc_info=(kind, value, tb))

    sys.excepthook = excepthook
    logger.info("rule %s, wildcards %s", snakemake.rule, dict(snakemake.wildcards))
    return logger


def test_chunk(tests: Sequence[str], chunk: int, n_chunks: int) -> tuple[list[str], int]:
    """The test perturbations of LSFT shard ``chunk`` of ``n_chunks``, and the number of chunks in use.

    More chunks than test perturbations are capped to one perturbation per chunk: the shards past
    the cap are empty (they exist so that the DAG, fixed before the split is known, stays complete).
    """
    if not 0 <= chunk < n_chunks:
        raise ValueError(f"LSFT shard chunk{chunk}-of-{n_chunks} does not exist: chunks are numbered 0 to {n_chunks - 1}")
    used = max(1, min(n_chunks, len(tests)))
    if chunk >= used:
        return [], used
    size, extra = divmod(len(tests), used)  # numpy.array_split's layout: the first `extra` chunks get one more
    start = chunk * size + min(chunk, extra)
    return list(tests[start : start + size + (chunk < extra)]), used


def column(n_rows: int, value: Any, dtype: Any = None) -> np.ndarray:
    """A table column holding ``value`` in each of ``n_rows`` rows (for :func:`lsftbench.io.write_parquet`)."""
    return np.repeat(np.asarray(value, dtype=dtype), n_rows)  # np.full(..., dtype=str) would truncate to 1 character


def key_columns(wildcards: Any, n_rows: int) -> dict[str, np.ndarray]:
    """The columns that name a fit or LSFT job's rows: its dataset, protocol, split seed and baseline."""
    return {
        "dataset": column(n_rows, wildcards.dataset, str),
        "protocol": column(n_rows, wildcards.protocol, str),
        "seed": column(n_rows, int(wildcards.seed), np.int64),
        "baseline": column(n_rows, wildcards.baseline, str),
    }
