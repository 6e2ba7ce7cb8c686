"""Ordered, unique names with constant-time look-up: the row and column labels of the fit and LSFT jobs.

:class:`Labels` carries the part of :class:`pandas.Index` those jobs use (``get_indexer``,
``get_loc``, membership, positional selection, ``isin``, ``equals``) and nothing else. It exists
because of what importing pandas costs: 0.22 s of CPU in every job process (``python -X importtime``;
numpy, h5py and pyarrow together take 0.25 s), on jobs that compute for 0.1–0.5 s each on the
default config. The fit and LSFT jobs, 200 of the default DAG's 292, therefore run without pandas
(``docs/benchmarks.md``). Wherever a pandas index is wanted, ``pandas.Index(labels)`` converts one;
functions that accept labels also accept a pandas index (an AnnData's ``obs_names``/``var_names``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, overload

import numpy as np

__all__ = ["Labels"]


class Labels(Sequence[str]):
    """An immutable sequence of names with a name → position map (built on first look-up).

    Parameters
    ----------
    names
        The names, in order; converted to ``str``.
    name
        What the names are (``"gene"``, ``"condition"``), like :attr:`pandas.Index.name`.
    """

    __slots__ = ("_names", "_positions", "name")

    def __init__(self, names: Iterable[Any], name: str | None = None) -> None:
        self._names: tuple[str, ...] = tuple(map(str, names))
        self._positions: dict[str, int] | None = None
        self.name = name

    # -- look-up ----------------------------------------------------------------------------------

    def _map(self) -> dict[str, int]:
        if self._positions is None:
            positions = {n: i for i, n in enumerate(self._names)}
            if len(positions) != len(self._names):
                dupes = [n for n, count in Counter(self._names).items() if count > 1]
                raise ValueError(f"{len(dupes)} duplicate {self.name or 'name'}s, e.g. {', '.join(dupes[:5])}")
            self._positions = positions
        return self._positions

    def get_indexer(self, keys: Iterable[Any]) -> np.ndarray:
        """Position of each key (``-1`` where absent), as ``pandas.Index.get_indexer``."""
        positions = self._map()
        return np.fromiter((positions.get(str(k), -1) for k in keys), dtype=np.intp)

    def get_loc(self, key: str) -> int:
        """Position of ``key``; ``KeyError`` if absent."""
        return self._map()[key]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key in self._map()

    def isin(self, values: Iterable[Any]) -> np.ndarray:
        """Boolean mask: which names are among ``values``."""
        wanted = set(map(str, values))
        return np.fromiter((n in wanted for n in self._names), dtype=bool, count=len(self._names))

    # -- sequence -----------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._names)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    @overload
    def __getitem__(self, item: int) -> str: ...

    @overload
    def __getitem__(self, item: slice | Sequence[int] | np.ndarray) -> Labels: ...

    def __getitem__(self, item: Any) -> str | Labels:
        """A name (integer position) or the names at a slice, positions or boolean mask."""
        if isinstance(item, (int, np.integer)):
            return self._names[item]
        if isinstance(item, slice):
            return Labels(self._names[item], self.name)
        idx = np.asarray(item)
        if idx.dtype == bool:
            if idx.shape != (len(self),):
                raise IndexError(f"boolean mask of length {idx.shape} for {len(self)} names")
            idx = np.flatnonzero(idx)
        return Labels((self._names[i] for i in idx.tolist()), self.name)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (Labels, list, tuple)):
            return self.equals(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable-free but compared by value, like a list

    def __repr__(self) -> str:
        shown = ", ".join(self._names[:5]) + (", …" if len(self) > 5 else "")
        return f"Labels([{shown}], n={len(self)}, name={self.name!r})"

    def equals(self, other: Iterable[Any]) -> bool:
        """Same names in the same order (``other`` may be a pandas index or any sequence)."""
        return self._names == tuple(map(str, other))

    def tolist(self) -> list[str]:
        return list(self._names)

    def to_numpy(self, dtype: Any = str) -> np.ndarray:
        """The names as a NumPy array (unicode by default)."""
        return np.asarray(self._names, dtype=dtype)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        return np.asarray(self._names, dtype=object if dtype is None else dtype)
