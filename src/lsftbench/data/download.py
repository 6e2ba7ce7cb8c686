"""The GEARS data sets and GO resources (SPEC sections 1-2): where each comes from, how it is checked, and the
workflow's download rules.

:data:`GEARS_FILES` is the catalogue (Dataverse file ids, published checksums and sizes where there are any);
:func:`fetch_gears_dataset` and :func:`fetch_go_resources` fetch an entry through the verified fetcher of
:mod:`lsftbench.data.fetch` (the Dataverse archives have no published checksum: they are verified trust on first
use, their SHA-256 recorded in a lock file) and validate an extracted ``perturb_processed.h5ad`` as a dataset;
:func:`go_filter_conditions` is the GO filter of the split.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal


from .fetch import DEFAULT_LOCK_NAME, extract_recorded, fetch_file
from .conditions import CTRL, condition_genes
from .h5ad import InputDataError, open_perturb_data


__all__ = [
    "download_rule_outputs",
    "DATAVERSE_BASE",
    "H5AD_NAME",
    "GEARS_FILES",
    "GEARS_DATASETS",
    "GO_RESOURCES",
    "GearsFile",
    "go_perturbable_genes",
    "dataverse_url",
    "fetch_gears_dataset",
    "fetch_go_resources",
    "local_override",
    "go_filter_conditions",
]

log = logging.getLogger(__name__)

DATAVERSE_BASE = "https://dataverse.harvard.edu/api/access/datafile/"
H5AD_NAME = "perturb_processed.h5ad"


@dataclass(frozen=True)
class GearsFile:
    """One file of the GEARS Dataverse deposit.

    Attributes
    ----------
    file_id : int
        Dataverse data-file id (the last part of the access URL).
    filename : str
        Local file name of the download.
    size : int or None
        Size in bytes, when published.
    sha256 : str or None
        Published SHA-256, or ``None`` (then verified through the lock file).
    kind : {"dataset", "resource"}
        A perturbation data set archive or a GO resource.
    member : str or None
        Path of the file to extract from the archive, ``None`` for a plain file.
    """

    file_id: int
    filename: str
    size: int | None
    sha256: str | None
    kind: Literal["dataset", "resource"]
    member: str | None


def _dataset(file_id: int, name: str) -> GearsFile:
    return GearsFile(file_id, f"{name}.zip", None, None, "dataset", f"{name}/{H5AD_NAME}")


GEARS_FILES: dict[str, GearsFile] = {
    "adamson": _dataset(6154417, "adamson"),
    "replogle_k562_essential": _dataset(7458695, "replogle_k562_essential"),
    "replogle_rpe1_essential": _dataset(7458694, "replogle_rpe1_essential"),
    "norman": _dataset(6154020, "norman"),  # singles and doubles (SPEC 10)
    "gene2go_all": GearsFile(
        6153417,
        "gene2go_all.pkl",
        9_462_558,
        "f145c5e84a53048d87942a417d870a4f2d8db50200b96e492b358c13aba8c771",
        "resource",
        None,
    ),
    "essential_all_data_pert_genes": GearsFile(
        6934320,
        "essential_all_data_pert_genes.pkl",
        558_811,
        "46c3dfe354d8ad5c0da22c69f3d0ca451987b1a61ed9d984279b22b9565ff8d7",
        "resource",
        None,
    ),
    "go_essential_all": GearsFile(
        6934319,
        "go_essential_all.tar.gz",
        60_654_049,
        "98a14a60e8b76f76fd172570d023a6036775f151604ec01340b3fec7d36693da",
        "resource",
        "go_essential_all/go_essential_all.csv",
    ),
}
GEARS_DATASETS: tuple[str, ...] = tuple(k for k, v in GEARS_FILES.items() if v.kind == "dataset")
GO_RESOURCES: tuple[str, ...] = tuple(k for k, v in GEARS_FILES.items() if v.kind == "resource")


# --------------------------------------------------------------------------------------------- URLs


def dataverse_url(file_id: int | str, base: str = DATAVERSE_BASE) -> str:
    """Access URL of a Dataverse data file.

    Parameters
    ----------
    file_id : int or str
        Dataverse data-file id.
    base : str
        Base of the access API (a local mirror or test server may replace it).

    Returns
    -------
    str
        ``base`` joined with ``file_id``.
    """
    return f"{base.rstrip('/')}/{file_id}"


def _validate_h5ad(path: Path) -> None:
    adata = open_perturb_data(path)
    adata.file.close()


def _member_validator(archive: Path, member: str) -> Callable[[Path], None]:
    """Validate an extracted h5ad, naming the archive member (not the temporary file) on failure."""

    def validate(tmp: Path) -> None:
        try:
            _validate_h5ad(tmp)
        except InputDataError as err:
            raise InputDataError(f"{archive}:{member}", err.problem) from err

    return validate


# ----------------------------------------------------------------------------------- GEARS entries


def _entry(name: str, kind: str) -> GearsFile:
    entry = GEARS_FILES.get(name)
    if entry is None or entry.kind != kind:
        known = ", ".join(k for k, v in GEARS_FILES.items() if v.kind == kind)
        raise KeyError(f"unknown GEARS {kind} '{name}' (known: {known})")
    return entry


def fetch_gears_dataset(
    name: str,
    dest_dir: str | os.PathLike[str],
    base_url: str = DATAVERSE_BASE,
    lock_file: str | os.PathLike[str] | None = None,
    **fetch_kwargs: Any,
) -> Path:
    """Download a GEARS data set archive and extract its ``perturb_processed.h5ad``.

    Parameters
    ----------
    name : str
        One of :data:`GEARS_DATASETS`.
    dest_dir : path
        The archive goes to ``dest_dir/<name>.zip``, the data to ``dest_dir/<name>/perturb_processed.h5ad``.
    base_url : str
        Dataverse access API base.
    lock_file : path, optional
        Checksum lock file; default ``dest_dir/sha256.lock.json``.
    **fetch_kwargs
        ``retries``, ``backoff``, ``timeout``, ``progress`` of :func:`fetch_file`.

    Returns
    -------
    Path
        The extracted h5ad, validated with :func:`lsftbench.data.h5ad.open_perturb_data`.
    """
    entry = _entry(name, "dataset")
    dest_dir = Path(dest_dir)
    lock = Path(lock_file) if lock_file is not None else dest_dir / DEFAULT_LOCK_NAME
    h5ad = dest_dir / name / H5AD_NAME
    if h5ad.exists():
        return extract_recorded(dest_dir / entry.filename, str(entry.member), h5ad, lock)
    archive = fetch_file(
        dataverse_url(entry.file_id, base_url), dest_dir / entry.filename, entry.sha256, lock, size=entry.size, **fetch_kwargs
    )
    member = str(entry.member)
    return extract_recorded(archive, member, h5ad, lock, _member_validator(archive, member))


def fetch_go_resources(
    dest_dir: str | os.PathLike[str],
    base_url: str = DATAVERSE_BASE,
    lock_file: str | os.PathLike[str] | None = None,
    **fetch_kwargs: Any,
) -> dict[str, Path]:
    """Download the GO resources of GEARS (published checksums) and extract the GO graph CSV.

    Parameters
    ----------
    dest_dir : path
        Target directory; the CSV goes to ``dest_dir/go_essential_all/go_essential_all.csv``.
    base_url : str
        Dataverse access API base.
    lock_file : path, optional
        Checksum lock file (records the extracted CSV); default ``dest_dir/sha256.lock.json``.
    **fetch_kwargs
        ``retries``, ``backoff``, ``timeout``, ``progress`` of :func:`fetch_file`.

    Returns
    -------
    dict of str to Path
        ``{"gene2go_all": pkl, "essential_all_data_pert_genes": pkl, "go_essential_all": csv}``.
    """
    dest_dir = Path(dest_dir)
    lock = Path(lock_file) if lock_file is not None else dest_dir / DEFAULT_LOCK_NAME
    paths: dict[str, Path] = {}
    for key in GO_RESOURCES:
        entry = GEARS_FILES[key]
        if entry.member is not None and (dest_dir / entry.member).exists():
            paths[key] = extract_recorded(dest_dir / entry.filename, entry.member, dest_dir / entry.member, lock)
            continue
        url = dataverse_url(entry.file_id, base_url)
        path = fetch_file(url, dest_dir / entry.filename, entry.sha256, lock, size=entry.size, **fetch_kwargs)
        if entry.member is not None:
            path = extract_recorded(path, entry.member, dest_dir / entry.member, lock)
        paths[key] = path
    return paths


# ------------------------------------------------------------------------------------ local inputs


def local_override(path: str | os.PathLike[str]) -> Path:
    """Validate a user-configured local file and return it unchanged.

    Parameters
    ----------
    path : path
        A local replacement for a download. ``.h5ad`` files are opened with
        :func:`lsftbench.data.h5ad.open_perturb_data` (metadata checks).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    InputDataError
        The file is missing, not a regular file, unreadable, or (h5ad) not valid GEARS data.
    """
    path = Path(path)
    if not path.exists():
        raise InputDataError(path, "configured local file does not exist")
    if not path.is_file():
        raise InputDataError(path, "configured local path is not a regular file")
    try:
        with open(path, "rb") as fh:
            fh.read(1)
    except OSError as err:
        raise InputDataError(path, f"configured local file is not readable ({err.strerror})") from err
    if path.suffix == ".h5ad":
        _validate_h5ad(path)
    return path


# ------------------------------------------------------------------------------------- GO filter


def _load_pickle(path: str | os.PathLike[str], expected: type | tuple[type, ...]) -> Any:
    try:
        with open(path, "rb") as fh:
            obj = pickle.load(fh)  # noqa: S301 - checksum-verified GEARS resources or user-configured files
    except (OSError, pickle.UnpicklingError, EOFError) as err:
        raise InputDataError(path, f"cannot read pickle ({type(err).__name__}: {err})") from err
    if not isinstance(obj, expected):
        raise InputDataError(path, f"expected a pickled {_type_names(expected)}, found {type(obj).__name__}")
    return obj


def _type_names(types: type | tuple[type, ...]) -> str:
    return " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))


def go_perturbable_genes(gene2go_pkl: str | os.PathLike[str], essential_pkl: str | os.PathLike[str]) -> set[str]:
    """Genes of the GEARS perturbation graph: keys of ``gene2go`` that are in the essential list."""
    gene2go = _load_pickle(gene2go_pkl, dict)
    essential = _load_pickle(essential_pkl, (list, tuple, set, frozenset))
    return {str(g) for g in essential if g in gene2go}


def go_filter_conditions(
    conditions: Sequence[str],
    gene2go_pkl: str | os.PathLike[str],
    essential_pkl: str | os.PathLike[str],
) -> tuple[list[str], list[str]]:
    """Drop conditions whose genes are not all in the GO perturbation graph (SPEC section 2, step 1).

    As ``PertData.load`` of GEARS 0.1.2 with the default graph: the graph's genes are the keys of
    ``gene2go_all.pkl`` that appear in ``essential_all_data_pert_genes.pkl``; a condition is kept
    iff each of its non-``ctrl`` parts is such a gene. ``ctrl`` is always kept.

    Parameters
    ----------
    conditions : sequence of str
        Condition names (per cell or unique; duplicates are collapsed).
    gene2go_pkl, essential_pkl : path
        The two GEARS pickles.

    Returns
    -------
    kept, dropped : list of str
        Unique conditions, each in order of first appearance.
    """
    genes = go_perturbable_genes(gene2go_pkl, essential_pkl)
    kept: list[str] = []
    dropped: list[str] = []
    for cond in dict.fromkeys(conditions):
        in_graph = cond == CTRL or all(g in genes for g in condition_genes(cond))
        (kept if in_graph else dropped).append(cond)
    return kept, dropped


def download_rule_outputs(
    rule: str, outputs: Any, *, gears_name: str | None = None, **options: Any
) -> dict[str, str]:
    """Fetch what a download rule promises and put it at its output paths; returns name → path.

    ``download_gears_dataset``: the archive of ``gears_name`` with its ``perturb_processed.h5ad`` at
    ``outputs[0]``; ``download_go_resources``: ``gene2go``, ``essential`` and ``go_csv`` in the folder
    of ``outputs.gene2go``. ``options`` go to :func:`fetch_gears_dataset` / :func:`fetch_go_resources`.
    """
    if rule == "download_gears_dataset":
        final = Path(outputs[0])
        path = fetch_gears_dataset(gears_name, final.parents[1], **options)
        if path != final:
            path.replace(final)
        return {gears_name: str(final)}
    if rule == "download_go_resources":
        return {k: str(v) for k, v in fetch_go_resources(Path(outputs.gene2go).parent, **options).items()}
    raise ValueError(f"not a download rule: {rule!r}")
