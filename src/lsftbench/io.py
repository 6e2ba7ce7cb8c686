"""Atomic output writing and small file helpers.

Every file the pipeline writes goes through :func:`atomic_path`: the data are written to a hidden
temporary file in the destination directory and renamed into place only once complete, so a killed
job never leaves a file that looks finished. On top of that:

* files get the permissions of the user's umask (``0666 & ~umask``), like files any other tool writes;
* a full disk (``ENOSPC``, or a quota, ``EDQUOT``) is one clear :class:`DiskFullError` naming the
  destination, and the temporary file is removed;
* temporaries a killed job left behind for the same destination are removed by the next write;
* HDF5 files are written through a guarded file object (:func:`atomic_h5py_file`): when the disk
  fills up, HDF5's later attempts to flush (at close, at interpreter exit) are absorbed instead of
  crashing the process with a segmentation fault.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import re
import secrets
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # the fit and LSFT jobs write Parquet without importing pandas
    import pandas as pd

__all__ = [
    "DamagedFileError",
    "DiskFullError",
    "InputDataError",
    "X_CHECKSUM",
    "array_crc32",
    "file_crc32",
    "read_npz",
    "read_parquet",
    "atomic_path",
    "atomic_h5py_file",
    "write_json",
    "read_json",
    "write_text",
    "write_parquet",
    "write_csv",
    "write_h5ad",
    "write_npz",
    "constant_column",
]

_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
_FULL_TEXT = ("no space left on device", "disk quota exceeded")


class DiskFullError(OSError):
    """The file system ran out of space (or quota) while an output was written."""


class InputDataError(ValueError):
    """An input file violates the expected format; the message names the file and the problem.

    Defined here (not in :mod:`lsftbench.data.h5ad`, which re-exports it) so that readers of small inputs
    can raise it without importing SciPy.
    """

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem


class DamagedFileError(ValueError):
    """An intermediate file of the pipeline is damaged (cut short, overwritten, a checksum mismatch, pickled
    content where arrays belong); the message names the file and the command that rebuilds it."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        super().__init__(
            f"{path}: the file is damaged ({problem}). It is an intermediate output of this workflow: rebuild it "
            f"and what was made from it with `snakemake --cores all --forcerun {path}` (add the --configfile / "
            "--profile options of your run)"
        )
        self.path = str(path)
        self.problem = problem

    @classmethod
    def from_error(cls, path: str | os.PathLike[str], err: BaseException, what: str = "") -> DamagedFileError:
        """The error for a reader's exception ``err``: its type and first line (after ``what``, e.g. a member name)."""
        return cls(path, f"{what}{type(err).__name__}: {_first_line(err)}")


def file_crc32(path: str | os.PathLike[str]) -> str:
    """CRC-32 of a file's bytes as 8 hex digits (the checksum zip archives use; cheap: about 2 GB/s)."""
    crc = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            crc = zlib.crc32(chunk, crc)
    return f"{crc:08x}"


#: Root attribute of an h5ad written by :func:`write_h5ad` holding the CRC-32 of a dense ``X``.
X_CHECKSUM = "lsftbench_X_crc32"


def array_crc32(array: np.ndarray) -> str:
    """CRC-32 of an array's bytes in C order, as 8 hex digits."""
    return f"{zlib.crc32(np.ascontiguousarray(array).view(np.uint8).ravel()):08x}"


def read_npz(
    path: str | os.PathLike[str], names: Iterable[str] | None = None, missing_ok: bool = False
) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` written by :func:`write_npz` (all, or ``names``), read in full.

    Each member's CRC-32 is checked as it is read (zip archives store one), so damaged bytes are found.
    Only the members asked for are read; with ``missing_ok``, those of ``names`` the file lacks are left out
    of the result instead of being an error.

    Raises
    ------
    DamagedFileError
        The file is not a complete ``.npz`` of arrays: cut short, overwritten, a CRC mismatch, a missing
        member, or pickled objects (which are never loaded).
    FileNotFoundError
        The file does not exist.
    """
    if not Path(path).exists():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as z:
            wanted = z.files if names is None else list(names)
            missing = [n for n in wanted if n not in z.files]
            if missing and not missing_ok:
                raise DamagedFileError(path, f"it lacks the arrays {missing}")
            return {name: z[name] for name in wanted if name in z.files}
    except DamagedFileError:
        raise
    except ValueError as err:
        if "pickle" in str(err).lower():
            raise DamagedFileError(path, "it holds pickled Python objects where arrays belong") from None
        raise DamagedFileError.from_error(path, err) from None
    except (zipfile.BadZipFile, EOFError, OSError, KeyError, zlib.error) as err:
        raise DamagedFileError.from_error(path, err) from None


def read_parquet(path: str | os.PathLike[str], columns: Sequence[str] | None = None) -> pd.DataFrame:
    """A Parquet table as a data frame (``pandas.read_parquet``), its page checksums verified.

    Raises
    ------
    DamagedFileError
        The file is not a readable Parquet file (cut short, overwritten, a page checksum mismatch).
    FileNotFoundError
        The file does not exist.
    """
    import pandas as pd  # noqa: PLC0415
    import pyarrow as pa  # noqa: PLC0415

    if not Path(path).exists():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        return pd.read_parquet(path, engine="pyarrow", columns=columns, page_checksum_verification=True)
    except (pa.ArrowException, OSError, ValueError) as err:
        raise DamagedFileError.from_error(path, err) from None


def _temp_pattern(final: Path) -> re.Pattern[str]:
    return re.compile(rf"^\.{re.escape(final.name)}\.[a-z0-9_]{{8,12}}\.tmp{re.escape(final.suffix)}$")


def _remove_stale_temporaries(final: Path) -> None:
    """Delete temporaries of ``final`` that a killed writer left behind (one writer per output)."""
    pattern = _temp_pattern(final)
    with contextlib.suppress(OSError):
        for entry in os.scandir(final.parent):
            if pattern.match(entry.name):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)


def _create_temporary(final: Path) -> Path:
    """Create an empty hidden temporary next to ``final``, mode ``0666 & ~umask`` (as ``open`` would)."""
    for _ in range(100):
        tmp = final.parent / f".{final.name}.{secrets.token_hex(6)}.tmp{final.suffix}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(f"could not create a temporary file next to {final}")


def is_disk_full(err: BaseException) -> bool:
    """Whether ``err`` (or an exception it was raised from) reports a full disk or quota."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno in _FULL_ERRNOS:
            return True
        text = str(err).lower()
        if any(t in text for t in _FULL_TEXT) or "errno = 28" in text or "errno 28" in text:
            return True
        err = err.__cause__ or err.__context__
    return False


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` if the block succeeds.

    The temporary file keeps the destination's suffix so libraries that dispatch on the extension
    (anndata, pyarrow, matplotlib) behave as they would on the final path. It is created with the
    permissions the umask gives new files. If the block fails, the temporary is removed and an
    existing ``path`` is left untouched; a full disk is re-raised as :class:`DiskFullError`.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(final)
    tmp = _create_temporary(final)
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if isinstance(err, Exception) and not isinstance(err, DiskFullError) and is_disk_full(err):
            raise DiskFullError(
                errno.ENOSPC,
                f"no space left on device while writing {final} (free space in {final.parent.resolve()} and rerun; "
                f"the incomplete temporary file was removed): {type(err).__name__}: {_first_line(err)}",
            ) from err
        raise


def _first_line(err: BaseException) -> str:
    return " ".join(str(err).split())[:300]


class _GuardedFile(io.RawIOBase):
    """A binary file for h5py that stops writing after the first failed write.

    After a failure (e.g. ``ENOSPC``) HDF5 still tries to flush its metadata when the file is closed
    and again when the library shuts down; on a full disk these retries fail too and can crash the
    interpreter. Here they succeed without writing: the file is incomplete anyway and is deleted.
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._fh = open(path, "r+b", buffering=0)  # noqa: SIM115 - closed in close()
        self.error: OSError | None = None

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._fh.readinto(buffer)

    def write(self, data: Any) -> int:
        size = memoryview(data).nbytes
        if self.error is not None:
            return size
        try:
            done = 0
            view = memoryview(data).cast("B")
            while done < size:  # raw writes may be partial
                done += self._fh.write(view[done:])
            return size
        except OSError as err:
            self.error = err
            raise

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._fh.seek(offset, whence)

    def tell(self) -> int:
        return self._fh.tell()

    def truncate(self, size: int | None = None) -> int:
        if self.error is not None:
            return self._fh.tell() if size is None else size
        try:
            return self._fh.truncate(size)
        except OSError as err:
            self.error = err
            raise

    def flush(self) -> None:
        return None

    def close(self) -> None:
        if not self.closed:
            self._fh.close()
        super().close()


@contextlib.contextmanager
def atomic_h5py_file(path: str | os.PathLike[str]) -> Iterator[Any]:
    """Yield a new ``h5py.File`` that becomes ``path`` once the block (and the close) succeed.

    Writes go through :class:`_GuardedFile`, so a full disk ends in one :class:`DiskFullError` and
    never in a segmentation fault; nothing is left at ``path`` or next to it.
    """
    import h5py

    with atomic_path(path) as tmp:
        guard = _GuardedFile(tmp)
        try:
            with h5py.File(guard, "w") as f:
                yield f
        except Exception as err:
            if guard.error is not None and guard.error is not err:
                raise guard.error from err
            raise
        finally:
            guard.close()
        if guard.error is not None:  # a failure HDF5 swallowed (e.g. in a destructor)
            raise guard.error


def write_json(obj: Any, path: str | os.PathLike[str]) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file, naming the file in the error if it is not valid JSON."""
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err


def write_text(text: str, path: str | os.PathLike[str]) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_parquet(df: pd.DataFrame | Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Write a data frame, or columns of equal length (name → 1-D array), as Parquet (pyarrow), atomically.

    Columns (NumPy numbers, booleans or strings) go to Arrow without pandas (:func:`_arrow_column`);
    ``pandas.read_parquet`` reads the file into the frame ``pandas.DataFrame(columns)`` would be, with
    NaN for NaN.
    """
    if not isinstance(df, Mapping):
        with atomic_path(path) as tmp:
            df.to_parquet(tmp, engine="pyarrow", index=False, write_page_checksum=True)
        return
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    arrays = [_arrow_column(name, values) for name, values in df.items()]
    if len({len(a) for a in arrays}) > 1:
        raise ValueError(f"columns of unequal length: { {n: len(a) for n, a in zip(df, arrays)} }")
    with atomic_path(path) as tmp:
        pq.write_table(pa.Table.from_arrays(arrays, names=list(df)), tmp, write_page_checksum=True)


def _arrow_column(name: str, values: Any) -> Any:
    """One NumPy column as an Arrow array, assembled from its buffers.

    ``pyarrow.array`` would do the same but imports pandas on its first call (to recognise pandas
    inputs), which costs the fit and LSFT jobs 0.22 s of CPU each; ``Array.from_buffers`` does not.
    """
    import pyarrow as pa  # noqa: PLC0415

    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError(f"column {name!r} is not one-dimensional (shape {values.shape})")
    n = len(values)
    if values.dtype.kind in "USO":
        encoded = [str(v).encode() for v in values.tolist()]
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum([len(e) for e in encoded], out=offsets[1:])
        data = pa.py_buffer(b"".join(encoded))
        if offsets[-1] < 2**31:  # Arrow's string type directly: a cast would import pyarrow.compute (0.1 s a job)
            return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets.astype(np.int32)), data])
        return pa.Array.from_buffers(pa.large_string(), n, [None, pa.py_buffer(offsets), data]).cast(pa.string())
    if values.dtype.kind == "b":
        return pa.Array.from_buffers(pa.bool_(), n, [None, pa.py_buffer(np.packbits(values, bitorder="little"))])
    if values.dtype.kind in "iuf":
        data = np.ascontiguousarray(values)
        return pa.Array.from_buffers(pa.from_numpy_dtype(data.dtype), n, [None, pa.py_buffer(data)])
    raise TypeError(f"column {name!r}: cannot write dtype {values.dtype} to Parquet")


def write_csv(df: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write a data frame as CSV without the index, atomically."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)


def write_h5ad(adata: Any, path: str | os.PathLike[str]) -> None:
    """Write an AnnData object atomically, in anndata's h5ad layout.

    Equivalent to ``adata.write_h5ad(path)`` (string columns become categoricals, as there), but the
    HDF5 file is written through :func:`atomic_h5py_file`, so a full disk is a clean error.
    """
    from anndata.io import write_elem

    if adata.isbacked:
        raise ValueError("write_h5ad needs an in-memory AnnData, not a backed one")
    adata.strings_to_categoricals()
    if adata.raw is not None:
        adata.strings_to_categoricals(adata.raw.var)
    with atomic_h5py_file(path) as f:
        f.attrs["encoding-type"] = "anndata"
        f.attrs["encoding-version"] = "0.1.0"
        write_elem(f, "/", adata)
        if isinstance(adata.X, np.ndarray):  # a dense X (the pseudobulks) carries its checksum, checked on read
            f.attrs[X_CHECKSUM] = array_crc32(adata.X)


def write_npz(path: str | os.PathLike[str], **arrays: Any) -> None:
    """Write arrays into an uncompressed ``.npz`` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


def constant_column(n_rows: int, value: Any, dtype: Any = None) -> np.ndarray:
    """A table column holding ``value`` in each of ``n_rows`` rows (for :func:`write_parquet`)."""
    return np.repeat(np.asarray(value, dtype=dtype), n_rows)  # np.full(..., dtype=str) would truncate to 1 character


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")
