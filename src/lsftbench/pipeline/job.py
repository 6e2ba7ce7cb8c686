"""What every job script needs from the ``snakemake`` object: logging into the rule's log file, the keys of its rows."""

from __future__ import annotations

import logging
import sys
from typing import Any

__all__ = ["setup_logging", "job_keys"]


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


def job_keys(wildcards: Any, *names: str) -> dict[str, Any]:
    """The values that name a job's table rows, from its wildcards: ``dataset``, ``protocol``, ``seed``
    (an int), ``baseline`` or ``model`` by default, those of ``names`` otherwise; absent ones are left out."""
    names = names or ("dataset", "protocol", "seed", "baseline", "model")
    keys: dict[str, Any] = {}
    for name in names:
        if name in wildcards.keys():
            value = wildcards[name]
            keys[name] = int(value) if name == "seed" else str(value)
    return keys
