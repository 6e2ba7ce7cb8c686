"""Fetching files verified: a download lands in a temporary file next to its destination and is renamed into place
only after its size and SHA-256 have been checked, so an unverified or truncated file is never visible at the
destination path (used by the dataset catalogue, :mod:`lsftbench.data.download`).

Every transfer goes through :class:`pooch.HTTPDownloader`, with retries of transient failures.

Checksums
---------
Files with a published checksum are verified against it. Files without one are verified *trust on first use*:
the SHA-256 of the first successful download is recorded in a JSON lock file ``{file name: sha256}`` and every
later use of the cached file (or a fresh download) must match it. Pointing ``lock_file`` at a tracked path (e.g.
the workflow's ``config`` directory) pins the data across machines and re-runs. Members extracted from archives
(:func:`extract_recorded`) are recorded too.

A cached file whose hash no longer matches is an error, never silently replaced: a file at the destination was
complete when it was written (writes are atomic), so a mismatch means the file or the lock was changed and a
person should decide. The message says which file to delete to download again.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import tarfile
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pooch
import requests

from ..io import atomic_path, read_json, write_json


__all__ = [
    "DEFAULT_LOCK_NAME",
    "DownloadError",
    "ChecksumError",
    "SizeMismatchError",
    "fetch_file",
    "extract_member",
    "extract_recorded",
]

log = logging.getLogger(__name__)
DEFAULT_LOCK_NAME = "sha256.lock.json"
_CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """A download or an archive failed; the message names the URL or file."""


class ChecksumError(DownloadError):
    """A file's size or SHA-256 differs from the published or recorded value."""


class SizeMismatchError(ChecksumError):
    """A file's size differs from the Content-Length or the registry (a truncated transfer)."""


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


def extract_recorded(
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
