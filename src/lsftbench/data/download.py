"""Downloading and verifying the GEARS data sets and GO resources (SPEC sections 1-2).

Every transfer goes through :class:`pooch.HTTPDownloader` into a temporary file next to the
destination; the file is renamed into place only after its size and SHA-256 have been checked, so an
unverified or truncated file is never visible at the destination path.

Checksums
---------
Files with a published checksum (the pickles and the GO tarball) are verified against it. The
Dataverse archives have none, so they are verified *trust on first use*: the SHA-256 of the first
successful download is recorded in a JSON lock file ``{file name: sha256}`` and every later use of
the cached file (or a fresh download) must match it. Pointing ``lock_file`` at a tracked path (e.g.
the workflow's ``config`` directory) pins the data across machines and re-runs. Extracted members
(``<name>/perturb_processed.h5ad``) are recorded too.

A cached file whose hash no longer matches is an error, never silently replaced: a file at the
destination was complete when it was written (writes are atomic), so a mismatch means the file or the
lock was changed and a person should decide. The message says which file to delete to download again.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import pickle
import shutil
import tarfile
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

import pooch
import requests

from ..io import atomic_path, read_json, write_json
from .conditions import CTRL, condition_genes
from .h5ad import InputDataError, open_perturb_data

__all__ = [
    "download_rule_outputs",
    "DATAVERSE_BASE",
    "GEARS_FILES",
    "GEARS_DATASETS",
    "GO_RESOURCES",
    "GearsFile",
    "DownloadError",
    "ChecksumError",
    "SizeMismatchError",
    "extract_member",
    "go_perturbable_genes",
    "dataverse_url",
    "fetch_file",
    "fetch_gears_dataset",
    "fetch_go_resources",
    "local_override",
    "go_filter_conditions",
]

log = logging.getLogger(__name__)

DATAVERSE_BASE = "https://dataverse.harvard.edu/api/access/datafile/"
H5AD_NAME = "perturb_processed.h5ad"
DEFAULT_LOCK_NAME = "sha256.lock.json"
_CHUNK = 1 << 20


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


class DownloadError(RuntimeError):
    """A download or an archive failed; the message names the URL or file."""


class ChecksumError(DownloadError):
    """A file's size or SHA-256 differs from the published or recorded value."""


class SizeMismatchError(ChecksumError):
    """A file's size differs from the Content-Length or the registry (a truncated transfer)."""


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


# -------------------------------------------------------------------------------------- lock file


@contextlib.contextmanager
def _locked(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the lock file's directory so concurrent jobs do not lose entries.

    Locking the directory (not a side file) leaves nothing behind; the lock file itself cannot be
    locked because it is replaced atomically on every write.
    """
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_file.parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _read_lock(lock_file: Path) -> dict[str, str]:
    if not lock_file.exists():
        return {}
    data = read_json(lock_file)
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise DownloadError(f"{lock_file}: lock file must be a JSON object {{file name: sha256}}")
    return data


def _recorded_hash(lock_file: Path, key: str) -> str | None:
    with _locked(lock_file):
        return _read_lock(lock_file).get(key)


def _record_hash(lock_file: Path, key: str, digest: str) -> None:
    with _locked(lock_file):
        entries = _read_lock(lock_file)
        old = entries.get(key)
        if old is not None and old != digest:
            raise ChecksumError(f"{lock_file}: '{key}' is recorded as sha256 {old}, refusing to overwrite with {digest}")
        entries[key] = digest
        write_json(dict(sorted(entries.items())), lock_file)


# ------------------------------------------------------------------------------------ verification


def _sha256(path: Path) -> str:
    return pooch.file_hash(str(path), alg="sha256")


def _check_size(path: Path, expected: int | None, source: str, what: str) -> None:
    if expected is None:
        return
    actual = path.stat().st_size
    if actual != expected:
        raise SizeMismatchError(f"{source}: truncated or wrong transfer, got {actual} bytes but {what} says {expected}")


def _check_hash(path: Path, expected: str | None, source: str, what: str) -> str:
    digest = _sha256(path)
    if expected is not None and digest != expected.lower():
        raise ChecksumError(f"{source}: sha256 {digest} does not match {what} {expected}")
    return digest


def _verify_cached(dest: Path, sha256: str | None, size: int | None, lock_file: Path, key: str) -> None:
    """Verify a file already at ``dest``; record its hash if nothing is known about it yet."""
    hint = f"delete {dest} to download it again"
    try:
        _check_size(dest, size, str(dest), "the registry")
        if sha256 is not None:
            _check_hash(dest, sha256, str(dest), "the published checksum")
            return
        recorded = _recorded_hash(lock_file, key)
        digest = _check_hash(dest, recorded, str(dest), f"the value recorded in {lock_file}")
    except ChecksumError as err:
        raise ChecksumError(f"cached file changed: {err} ({hint}, or fix the lock entry)") from err
    if recorded is None:
        log.warning("%s: no recorded checksum, recording sha256 %s in %s", dest, digest, lock_file)
        _record_hash(lock_file, key, digest)


# ---------------------------------------------------------------------------------------- transfer


class _SizeProbe:
    """Progress sink for :class:`pooch.HTTPDownloader` that records the announced Content-Length.

    ``HTTPDownloader`` sets ``total`` from the response's Content-Length before streaming; an
    optional tqdm bar is driven alongside.
    """

    def __init__(self, show: bool, desc: str) -> None:
        self.total = 0
        self._bar: Any = None
        if show:
            from tqdm.auto import tqdm  # noqa: PLC0415 - optional, only for the progress bar

            self._bar = tqdm(unit="B", unit_scale=True, desc=desc, leave=True)

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name == "total" and getattr(self, "_bar", None) is not None:
            self._bar.total = value

    def update(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def reset(self) -> None:
        if self._bar is not None:
            self._bar.reset()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _retryable(err: Exception) -> bool:
    """Transport failures, 5xx/408/429 answers and short transfers are retried; other errors are not."""
    if isinstance(err, requests.HTTPError) and err.response is not None:
        status = err.response.status_code
        return status >= 500 or status in (408, 429)
    if isinstance(err, ChecksumError):
        return isinstance(err, SizeMismatchError)
    return isinstance(err, requests.RequestException)


def _download_once(
    url: str, tmp: Path, size: int | None, sha256: str | None, timeout: float, progress: str | None
) -> str:
    """One transfer into ``tmp``; returns the verified SHA-256. ``progress``: bar label or ``None``."""
    probe = _SizeProbe(progress is not None, progress or "")
    # identity encoding: the bytes written must be the bytes Content-Length counts.
    downloader = pooch.HTTPDownloader(
        progressbar=probe, timeout=timeout, chunk_size=_CHUNK, headers={"Accept-Encoding": "identity"}
    )
    try:
        downloader(url, str(tmp), None)
    finally:
        probe.close()
    _check_size(tmp, probe.total or None, url, "Content-Length")
    _check_size(tmp, size, url, "the registry")
    return _check_hash(tmp, sha256, url, "the expected checksum")


def _with_retries(action: Callable[[], str], url: str, retries: int, backoff: float) -> str:
    for attempt in range(retries + 1):
        try:
            return action()
        except (requests.RequestException, ChecksumError) as err:
            if attempt == retries or not _retryable(err):
                cls = ChecksumError if isinstance(err, ChecksumError) else DownloadError
                raise cls(f"download of {url} failed after {attempt + 1} attempt(s): {err}") from err
            wait = backoff * 2**attempt
            log.warning("download of %s failed (%s); retrying in %.2g s", url, err, wait)
            time.sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


def fetch_file(
    url: str,
    dest: str | os.PathLike[str],
    sha256: str | None,
    lock_file: str | os.PathLike[str],
    *,
    size: int | None = None,
    retries: int = 3,
    backoff: float = 1.0,
    timeout: float = 60.0,
    progress: bool = False,
) -> Path:
    """Download ``url`` to ``dest`` atomically, verifying size and SHA-256.

    Parameters
    ----------
    url : str
        Source URL.
    dest : path
        Final path. Only a fully verified file is ever renamed onto it.
    sha256 : str or None
        Published SHA-256. ``None``: the hash recorded in ``lock_file`` under ``dest.name`` is used,
        or, on the first download, the new file's hash is recorded there.
    lock_file : path
        JSON file ``{file name: sha256}`` (created if missing).
    size : int, optional
        Expected size in bytes (besides the server's Content-Length, which is always checked).
    retries : int
        Extra attempts after a transport error, a 5xx answer or a short transfer.
    backoff : float
        Wait before the first retry in seconds, doubled for each further retry.
    timeout : float
        Connect and per-read socket timeout in seconds.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    Path
        ``dest``.

    Raises
    ------
    DownloadError
        The transfer failed (the message names the URL and the last error).
    ChecksumError
        A cached file at ``dest`` no longer matches its published or recorded checksum.
    """
    dest, lock_file = Path(dest), Path(lock_file)
    key = dest.name
    if dest.exists():
        _verify_cached(dest, sha256, size, lock_file, key)
        return dest
    expected = sha256 if sha256 is not None else _recorded_hash(lock_file, key)
    with atomic_path(dest) as tmp:

        def attempt() -> str:
            return _download_once(url, tmp, size, expected, timeout, dest.name if progress else None)

        digest = _with_retries(attempt, url, retries, backoff)
        if expected is None:
            _record_hash(lock_file, key, digest)
    log.info("downloaded %s to %s (sha256 %s)", url, dest, digest)
    return dest


# -------------------------------------------------------------------------------------- extraction


def _archive_members(archive: Path) -> list[str]:
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            return [i.filename for i in zf.infolist() if not i.is_dir()]
    with tarfile.open(archive) as tf:
        return [m.name for m in tf.getmembers() if m.isfile()]


def _resolve_member(archive: Path, member: str, names: list[str]) -> str:
    """``member`` if present, else the single file with the same base name (outside ``__MACOSX``)."""
    if member in names:
        return member
    base = member.rsplit("/", 1)[-1]
    same = [n for n in names if n.rsplit("/", 1)[-1] == base and not n.startswith("__MACOSX/")]
    if len(same) == 1:
        return same[0]
    shown = ", ".join(names[:20]) + (f", ... ({len(names)} files)" if len(names) > 20 else "")
    raise DownloadError(f"{archive}: archive has no '{member}'; it holds: {shown or '(nothing)'}")


@contextlib.contextmanager
def _open_member(archive: Path, member: str) -> Iterator[IO[bytes]]:
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf, zf.open(member) as fh:
            yield fh
        return
    with tarfile.open(archive) as tf:
        fh = tf.extractfile(member)
        if fh is None:  # pragma: no cover - members were filtered to regular files
            raise DownloadError(f"{archive}: '{member}' is not a regular file")
        with fh:
            yield fh


def extract_member(
    archive: str | os.PathLike[str],
    member: str,
    dest: str | os.PathLike[str],
    validate: Callable[[Path], None] | None = None,
) -> Path:
    """Extract one file from a zip or tar archive to ``dest`` atomically.

    Parameters
    ----------
    archive : path
        A zip or (compressed) tar archive.
    member : str
        Path inside the archive; if absent, a unique file with the same base name is used.
    dest : path
        Final path; written only once the member is complete and ``validate`` passed.
    validate : callable, optional
        Called with the temporary extracted file; raises to reject it.

    Returns
    -------
    Path
        ``dest``.

    Raises
    ------
    DownloadError
        The archive is unreadable or lacks the member (the message lists what it holds).
    """
    archive, dest = Path(archive), Path(dest)
    try:
        names = _archive_members(archive)
        name = _resolve_member(archive, member, names)
        with atomic_path(dest) as tmp:
            with _open_member(archive, name) as src, open(tmp, "wb") as out:
                shutil.copyfileobj(src, out, _CHUNK)
            if validate is not None:
                validate(tmp)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as err:
        raise DownloadError(f"{archive}: cannot extract '{member}' ({type(err).__name__}: {err})") from err
    return dest


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


def _extract_recorded(
    archive: Path, member: str, dest: Path, lock_file: Path, validate: Callable[[Path], None] | None = None
) -> Path:
    """Extract ``member`` unless ``dest`` exists; record / verify its hash under ``<dir>/<name>`` keys."""
    key = f"{dest.parent.name}/{dest.name}"
    if dest.exists():
        _verify_cached(dest, None, None, lock_file, key)
        return dest
    extract_member(archive, member, dest, validate)
    _record_hash(lock_file, key, _sha256(dest))
    return dest


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
        return _extract_recorded(dest_dir / entry.filename, str(entry.member), h5ad, lock)
    archive = fetch_file(
        dataverse_url(entry.file_id, base_url), dest_dir / entry.filename, entry.sha256, lock, size=entry.size, **fetch_kwargs
    )
    member = str(entry.member)
    return _extract_recorded(archive, member, h5ad, lock, _member_validator(archive, member))


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
            paths[key] = _extract_recorded(dest_dir / entry.filename, entry.member, dest_dir / entry.member, lock)
            continue
        url = dataverse_url(entry.file_id, base_url)
        path = fetch_file(url, dest_dir / entry.filename, entry.sha256, lock, size=entry.size, **fetch_kwargs)
        if entry.member is not None:
            path = _extract_recorded(path, entry.member, dest_dir / entry.member, lock)
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
