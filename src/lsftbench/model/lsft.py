"""Local similarity-filtered training (SPEC section 6; double perturbations as SPEC 10: a double's embedding,
global or refit, is the sum of its genes' rows, ``b_A + b_B``).

For each test condition ``t`` and a top-K %, the ``n = max(1, ceil(n_train · K / 100))`` training
perturbations whose embedding columns are most cosine-similar to ``B[:, t]`` are kept; the model is
refit on them only (``training_pca`` embeddings recomputed from the local expression with
``min(d, n)`` dimensions, fixed embeddings subset) and predicts ``t``. The plain kNN prediction (mean
Δ of the kept neighbours) is returned alongside.

:func:`lsft` hoists the shared work out of the per-perturbation loop; :func:`lsft_reference` is the
straightforward loop over the same math, kept for parity tests and the benchmark.

The fast path:

* similarities for all tests at once; the top ``n`` per test by a partial sort (same order and
  tie-breaking as a stable full sort);
* column centring of the training expression ``X`` does not depend on the subset, so ``G = XᵀX``
  (and the other matrices of :class:`_Shared`) are formed once per problem — or once per
  (dataset, split seed, baseline) by :func:`save_shared` and memory-mapped by every K shard;
* each local PCA refit is a top-``d`` eigenproblem of an ``n × n`` principal submatrix of ``G``
  instead of an SVD of a genes × ``n`` matrix (:func:`_local_basis`). With the eigenpairs
  ``G_s V = V Θ``, the gene-side ridge fit needs no further ``n × n`` product
  (``AᵀA = Θ``, ``Aᵀ(Y_s − c1ᵀ) = ΘVᵀ(I − 11ᵀ/n)`` for the local centre);
* the genes-sized work (kNN means and the refit predictions ``X_s u``) is one pass per test over
  the neighbours' rows of Δ, in column blocks that stay in cache.

Predictions equal the loop's up to rounding (checked in the tests); each test's numbers are
computed by the same operations whichever other tests share its chunk, so shards of any size give
bit-identical results. The module needs only NumPy: SciPy's subset eigensolver is imported on
first use, for neighbour sets larger than :data:`_NUMPY_EIGH_MAX_N`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ..embeddings.pca import GRAM_TOL, pca_scores
from ..io import DamagedFileError, atomic_path, file_crc32
from .global_fit import training_center
from .problem import Problem
from .ridge import predict, solve_y_axb

__all__ = [
    "LsftResult",
    "n_neighbours",
    "cosine_similarity",
    "top_neighbours",
    "lsft",
    "lsft_reference",
    "save_shared",
    "load_shared",
    "CENTERS",
    "shard_tests",
]

CENTERS = ("local", "global")


@dataclass
class LsftResult:
    """Predictions of one (baseline, K%) for a list of test conditions (genes × tests)."""

    conditions: list[str]
    local: np.ndarray
    knn: np.ndarray
    n_neighbours: int
    mean_similarity: np.ndarray
    neighbours: list[list[str]]


def n_neighbours(n_train: int, top_pct: float) -> int:
    """``max(1, ceil(n_train · K / 100))`` in exact arithmetic."""
    return max(1, math.ceil(Fraction(n_train) * Fraction(str(top_pct)) / 100))


def shard_tests(tests: Sequence[str], chunk: int, n_chunks: int) -> tuple[list[str], int]:
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


def cosine_similarity(queries: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Cosine similarity between the columns of ``queries`` (d × m) and ``candidates`` (d × n)."""

    def unit(m: np.ndarray) -> np.ndarray:
        norms = np.linalg.norm(m, axis=0)
        return m / np.where(norms > 0, norms, 1.0)

    return unit(queries).T @ unit(candidates)


def top_neighbours(sims: np.ndarray, n: int) -> np.ndarray:
    """Column indices of the ``n`` largest entries of each row, most similar first.

    Equal to ``np.argsort(-sims, axis=1, kind="stable")[:, :n]`` (ties in column order) but by a
    partial sort: the ``n``-th largest value of each row is found by ``np.partition``, the entries
    above it and the first ones equal to it are kept, and only those ``n`` are sorted.
    """
    m, n_cols = sims.shape
    if n >= n_cols or m == 0 or not np.isfinite(sims).all():
        return np.argsort(-sims, axis=1, kind="stable")[:, :n]
    neg = -sims
    kth = np.partition(neg, n - 1, axis=1)[:, n - 1 : n]
    below = neg < kth
    equal = neg == kth
    missing = n - below.sum(axis=1, keepdims=True)
    keep = below | (equal & (np.cumsum(equal, axis=1) <= missing))
    cols = np.nonzero(keep)[1].reshape(m, n)  # row-major: each row's kept columns in column order
    within = np.argsort(np.take_along_axis(neg, cols, axis=1), axis=1, kind="stable")
    return np.take_along_axis(cols, within, axis=1)


#: Up to this many neighbours NumPy's full symmetric eigensolver (LAPACK ``syevd``) is as fast as
#: SciPy's subset solver (``syevr``); above it the subset solver wins (2.5× at n = 539) and SciPy is
#: imported. Both are exact dense solvers.
_NUMPY_EIGH_MAX_N = 96

#: Bytes of one gathered block of neighbour rows in :func:`_neighbour_sums` (kept in L2 cache).
_GATHER_BYTES = 1 << 19


def _top_eigh(gram_s: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k + 1`` largest eigenvalues (ascending) and their eigenvectors of a symmetric matrix."""
    n = gram_s.shape[0]
    if n <= _NUMPY_EIGH_MAX_N:
        vals, vecs = np.linalg.eigh(gram_s)
        return vals[n - k - 1 :], vecs[:, n - k - 1 :]
    import scipy.linalg  # noqa: PLC0415 - only large neighbour sets need it; importing costs ~0.2 s

    return scipy.linalg.eigh(gram_s, subset_by_index=[n - k - 1, n - 1], driver="evr", check_finite=False)


def _local_basis(gram_s: np.ndarray, cache: _Shared, sel: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Top right singular vectors ``V`` (n × k) of the local centred expression ``X_s`` and ``Θ = S²``.

    ``X_s`` = columns ``sel`` of the centred training expression (``cache``'s ``xt`` holds its transpose) and
    ``gram_s = X_sᵀX_s``, so ``gram_s V = V diag(Θ)``; the local PCA scores are ``X_s V``. The ridge
    predictions depend on the scores only through the subspace they span (``A(AᵀA + λI)⁻¹Aᵀ`` and
    ``Bᵀ(BBᵀ + λI)⁻¹b`` are invariant under ``A → AR``, ``B → RᵀB`` with ``R`` orthogonal), so the
    top-k eigenvectors of the n × n Gram matrix give the predictions of the SVD of the genes × n
    matrix at a fraction of the cost. ``None`` means all components are kept (``n ≤ dim``): then
    ``X_s`` itself spans the same space. Forming the Gram matrix squares the condition number, so if
    the eigengap is too small for its eigenvectors to be accurate to ``GRAM_TOL`` (first-order
    bound ``ε·λ₁ / (λ_k − λ_{k+1})``) the SVD of ``X_s`` is used instead.
    """
    n = len(sel)
    k = min(dim, len(cache.problem.measured_genes), n)
    if k == n:
        return None
    vals, vecs = _top_eigh(gram_s, k)
    gap = vals[1] - vals[0]
    if gap > 0 and np.finfo(float).eps * max(vals[-1], 0.0) / gap <= GRAM_TOL:
        return vecs[:, :0:-1], vals[:0:-1]
    u, s, _ = np.linalg.svd(cache.get("xt")[sel], full_matrices=False)  # xt[sel] = X_sᵀ: its U is X_s's V
    return u[:, :k], s[:k] ** 2


# --------------------------------------------------------------------------------------------------
# subset-independent matrices
# --------------------------------------------------------------------------------------------------

#: Arrays of :class:`_Shared` (all float64): name → what it holds. ``N`` training perturbations.
SHARED_ARRAYS = {
    "y_t": "Δ of the embedding's genes, N × genes (rows: training perturbations)",
    "xt": "centred training expression Xᵀ, N × measured genes",
    "xgt": "X_gᵀ: xt at the embedding's genes, N × genes",
    "mu": "column means of the raw training expression (subtracted to centre X), N",
    "gram": "G = XᵀX, N × N",
    "gram_targets": "G and X at the training targets side by side, N × N × 2: [i, j] = (G[i, j], X[target_i, j])",
    "gram_g": "G_g = X_gᵀX_g, N × N",
    "cross": "C = X_gᵀY, N × N",
    "xt_ctrl": "Xᵀb (b: control mean expression), N",
}


class _Shared:
    """Subset-independent matrices of one problem, computed once and reused by every :func:`lsft` call.

    ``X`` is the training expression (measured genes × training perturbations) with each column
    centred over genes; ``Y`` the training Δ of the embedding's genes; ``X_g`` the rows of ``X`` at
    the embedding's genes. Local PCA, local gene-side ridge fits and predictions are all expressed
    through principal submatrices of ``G = XᵀX``, ``G_g = X_gᵀX_g`` and ``C = X_gᵀY``. Arrays come
    from :meth:`get` (computed on first use) or from a directory written by :func:`save_shared`
    (memory-mapped, read-only).
    """

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self._cache: dict[str, np.ndarray] = {}
        self._flags: dict[str, bool] = {}

    def get(self, name: str) -> np.ndarray:
        if name not in self._cache:
            self._cache[name] = getattr(self, f"_make_{name}")()
        return self._cache[name]

    @property
    def identity_rows(self) -> bool:
        """The embedding's genes are the measured genes, in the same order (``X_g = X``)."""
        if "identity_rows" not in self._flags:
            rows = self.problem.gene_rows
            self._flags["identity_rows"] = len(rows) == len(self.problem.measured_genes) and bool(
                np.all(rows == np.arange(len(rows)))
            )
        return self._flags["identity_rows"]

    @property
    def y_is_expr_minus_ctrl(self) -> bool:
        """``Y = X_raw − b1ᵀ`` exactly on the embedding's genes (as :func:`make_problem` builds it)."""
        if "y_is_expr_minus_ctrl" not in self._flags:
            self._flags["y_is_expr_minus_ctrl"] = self._check_y_is_expr_minus_ctrl()
        return self._flags["y_is_expr_minus_ctrl"]

    @y_is_expr_minus_ctrl.setter
    def y_is_expr_minus_ctrl(self, value: bool) -> None:
        self._flags["y_is_expr_minus_ctrl"] = bool(value)

    def target_row(self, condition: str, sel: np.ndarray) -> np.ndarray:
        """``X[target, sel]`` for a single's target; for a double the sum of its two genes' rows (SPEC 10)."""
        if condition in self.problem.double_rows:
            first, second = self.problem.double_rows[condition]
            return self.x_row(first, sel) + self.x_row(second, sel)
        return self.x_row(self.problem.target_rows[condition], sel)

    def x_row(self, gene_row: int, sel: np.ndarray) -> np.ndarray:
        """``X[gene_row, sel]`` (centred expression of one gene over the training perturbations ``sel``).

        Computed from the raw expression and ``μ`` exactly as :meth:`_make_xt` computes ``xt``
        (``fl(raw − μ)``), so it equals ``xt[sel, gene_row]`` bit for bit without building ``xt``.
        """
        return self.problem.expr_t[sel, gene_row] - self.get("mu")[sel]

    def _check_y_is_expr_minus_ctrl(self) -> bool:
        if not self.identity_rows:
            return False
        raw, ctrl = self.problem.expr_t, self.problem.ctrl_expr
        y_t = self._y_t_view()
        for a in range(0, len(raw), 256):  # blockwise: no N × genes temporary
            if not np.array_equal(y_t[a : a + 256], raw[a : a + 256] - ctrl):
                return False
        return True

    def _y_t_view(self) -> np.ndarray:
        """Δ rows of the training perturbations: a view of ``y``'s rows if they are consecutive
        (as :func:`make_problem` lays them out), else gathered."""
        if "y_t" in self._cache:
            return self._cache["y_t"]
        cols = self.problem.col(self.problem.train_perts)
        rows = self.problem.y.T
        if len(cols) and np.array_equal(cols, np.arange(cols[0], cols[0] + len(cols))):
            return rows[cols[0] : cols[0] + len(cols)]
        return rows[cols]

    def _make_y_t(self) -> np.ndarray:  # N × genes, C-contiguous (a view when make_problem built y)
        return np.ascontiguousarray(self._y_t_view())

    def _make_mu(self) -> np.ndarray:
        return self.problem.expr_t.mean(axis=1)

    def _make_xt(self) -> np.ndarray:  # Xᵀ: N × measured genes, C-contiguous
        return self.problem.expr_t - self.get("mu")[:, None]  # column centring does not depend on the subset

    def _make_xgt(self) -> np.ndarray:  # X_gᵀ: N × embedding genes
        return self.get("xt") if self.identity_rows else np.ascontiguousarray(self.get("xt")[:, self.problem.gene_rows])

    def _make_gram(self) -> np.ndarray:
        if "gram_targets" in self._cache:
            return self._cache["gram_targets"][..., 0]
        xt = self.get("xt")
        return xt @ xt.T

    def _make_gram_targets(self) -> np.ndarray:
        """``G`` and ``X[target_i, j]`` interleaved: both are gathered at the same (i, j) of a neighbour
        set, so one gather (one cache miss per pair) serves the local PCA and the local ``B``."""
        gram = self._cache.pop("gram", None)
        if gram is None:
            gram = self._make_gram()
        out = np.empty(gram.shape + (2,))
        out[..., 0] = gram
        del gram
        targets = np.array([self.problem.target_rows[c] for c in self.problem.train_perts])
        xt = self.get("xt")
        for a in range(0, len(targets), 256):  # blocked transpose of X[targets] into the strided half
            out[a : a + 256, :, 1] = xt[:, targets[a : a + 256]].T
        for i, c in enumerate(self.problem.train_perts):  # a double's "target row" is the sum of its genes' (SPEC 10)
            if c in self.problem.double_rows:
                first, second = self.problem.double_rows[c]
                out[i, :, 1] = xt[:, first] + xt[:, second]
        self._cache["gram"] = out[..., 0]  # a view: G is not stored twice
        return out

    def _make_gram_g(self) -> np.ndarray:
        if self.identity_rows:
            return self.get("gram")
        xgt = self.get("xgt")
        return xgt @ xgt.T

    def _make_cross(self) -> np.ndarray:  # C = X_gᵀY: N × N
        return self.get("xgt") @ self.get("y_t").T

    def _make_xt_ctrl(self) -> np.ndarray:  # Xᵀb (b: control mean)
        return self.get("xt") @ self.problem.ctrl_expr

    def cross_sub(self, sel: np.ndarray) -> np.ndarray:
        """``C_s = X_g,sᵀY_s``.

        If ``Y = X_raw − b1ᵀ`` on the measured genes (``X = X_raw − 1μᵀ``, so ``Xᵀ1 = 0``), then
        ``C = XᵀX − (Xᵀb)1ᵀ``: a submatrix of the Gram matrix, no second N × N product needed.
        """
        if self.y_is_expr_minus_ctrl:
            return _sub(self.get("gram"), sel) - self.get("xt_ctrl")[sel][:, None]
        return _sub(self.get("cross"), sel)

    def needed(self, refit_gene: bool, refit_pert: bool) -> list[str]:
        """Names of the arrays :func:`lsft` uses for this problem (both centres)."""
        names = ["y_t"]
        if refit_gene or refit_pert:
            names += ["mu", "xt", "gram_targets" if refit_pert else "gram"]
        if refit_gene:
            if self.y_is_expr_minus_ctrl:
                names += ["xt_ctrl"]
            else:
                names += ["xgt", "gram_g", "cross"]
        return names


def _sub(m: np.ndarray, sel: np.ndarray) -> np.ndarray:
    """Principal submatrix ``m[sel][:, sel]`` of a square ``m`` (n × n; n × n × 2 for ``gram_targets``)."""
    flat = sel[:, None] * m.shape[1] + sel
    if m.ndim == 3:  # pairs gathered as one 16-byte element each (np.take's fast path)
        pairs = m.reshape(-1, 2).view(np.complex128).ravel()
        return pairs.take(flat).view(np.float64).reshape(len(sel), len(sel), 2)
    if m.flags.c_contiguous:
        return m.ravel().take(flat)
    return m[np.ix_(sel, sel)]


def _shared(problem: Problem) -> _Shared:
    shared = problem.__dict__.get("_lsft_shared")
    if shared is None or shared.problem is not problem:
        shared = problem.__dict__["_lsft_shared"] = _Shared(problem)
    return shared


def _refit_sides(problem: Problem, refit_embeddings: bool) -> tuple[bool, bool]:
    emb = problem.embedding
    if emb.model != "ridge":
        return False, False
    return refit_embeddings and emb.gene_type == "training_pca", refit_embeddings and emb.pert_type == "training_pca"


def _fingerprint(problem: Problem) -> str:
    """Hash of what the shared matrices are computed from: names, shapes and the exact values
    (through column sums of the training expression and of Δ; one pass over each)."""
    h = hashlib.sha256()
    for part in (problem.train_perts, list(problem.genes), list(problem.measured_genes)):
        h.update("\x1f".join(map(str, part)).encode())
        h.update(b"\x1e")
    h.update(np.ascontiguousarray(problem.gene_rows, dtype=np.int64).tobytes())
    h.update(np.asarray([problem.target_rows.get(c, -1) for c in problem.train_perts], dtype=np.int64).tobytes())
    doubles = [problem.double_rows[c] for c in problem.train_perts if c in problem.double_rows]
    if doubles:
        h.update(np.asarray(doubles, dtype=np.int64).tobytes())
    h.update(problem.expr_t.sum(axis=1).tobytes())
    h.update(problem.ctrl_expr.tobytes())
    h.update(problem.y[:, problem.col(problem.train_perts)].sum(axis=0).tobytes())
    return h.hexdigest()


#: The arrays :func:`save_shared` writes: the N × N products (and ``Xᵀb``), whose cost grows with N² ·
#: genes. ``y_t``, ``xt``, ``xgt`` and ``mu`` are copies or one pass over the pseudobulk, which every
#: job reads anyway: rebuilding them is cheaper than writing and reading them.
SAVED_ARRAYS = ("gram", "gram_targets", "gram_g", "cross", "xt_ctrl")


def save_shared(
    problem: Problem, path: str | os.PathLike[str], *, refit_embeddings: bool = True, share: bool = True
) -> list[str]:
    """Compute the subset-independent LSFT products of ``problem`` and write them to directory ``path``.

    One ``<name>.npy`` per array of :data:`SAVED_ARRAYS` that :func:`lsft` needs for this baseline and
    ``refit_embeddings``, for either centre, and ``meta.json`` (written last) with the flags and a
    fingerprint of the inputs. Every K shard of the same (dataset, split seed, baseline) then
    memory-maps them (``lsft(..., shared=path)``) instead of recomputing them; the predictions are
    bit-identical. Baselines that refit nothing (and ``share=False``) write only ``meta.json``, with
    no arrays. Returns the names written.
    """
    shared = _shared(problem)
    names = [n for n in shared.needed(*_refit_sides(problem, refit_embeddings)) if n in SAVED_ARRAYS] if share else []
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    (out / "meta.json").unlink(missing_ok=True)
    checksums = {}
    for name in names:
        with atomic_path(out / f"{name}.npy") as tmp:
            np.save(tmp, shared.get(name), allow_pickle=False)
            checksums[name] = file_crc32(tmp)
    meta: dict[str, Any] = {"format": 1, "arrays": names, "refit_embeddings": bool(refit_embeddings)}
    if names:
        meta.update(
            y_is_expr_minus_ctrl=shared.y_is_expr_minus_ctrl,
            identity_rows=shared.identity_rows,
            fingerprint=_fingerprint(problem),
            crc32=checksums,
        )
    with atomic_path(out / "meta.json") as tmp:
        tmp.write_text(json.dumps(meta, indent=1) + "\n")
    return names


def load_shared(problem: Problem, path: str | os.PathLike[str]) -> list[str]:
    """Attach the matrices written by :func:`save_shared` to ``problem`` (read-only memory maps).

    Raises
    ------
    ValueError
        If the directory is incomplete or was written for other inputs (fingerprint mismatch).
    """
    folder = Path(path)
    meta_path = folder / "meta.json"
    if not meta_path.exists():
        raise ValueError(f"{folder}: no meta.json; not a complete directory written by save_shared()")
    try:
        meta = json.loads(meta_path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise DamagedFileError(folder, f"meta.json is not valid JSON ({err})") from None
    if meta.get("format") != 1:
        raise ValueError(f"{folder}: unknown shared-matrix format {meta.get('format')!r}")
    if not meta["arrays"]:
        return []
    if meta["fingerprint"] != _fingerprint(problem):
        raise ValueError(
            f"{folder}: the shared LSFT matrices were computed from other inputs (pseudobulk, split or embedding "
            "differ); recompute them"
        )
    shared = _shared(problem)
    for name in meta["arrays"]:
        path = folder / f"{name}.npy"
        if "crc32" in meta and (not path.is_file() or file_crc32(path) != meta["crc32"][name]):
            raise DamagedFileError(folder, f"{name}.npy is missing" if not path.is_file() else
                                   f"the checksum of {name}.npy does not match the one in its meta.json")
        try:
            shared._cache[name] = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as err:
            raise DamagedFileError.from_error(folder, err, f"{name}.npy: ") from None
    if "gram_targets" in shared._cache:
        shared._cache["gram"] = shared._cache["gram_targets"][..., 0]
    shared._flags.update(y_is_expr_minus_ctrl=meta["y_is_expr_minus_ctrl"], identity_rows=meta["identity_rows"])
    return list(meta["arrays"])


# --------------------------------------------------------------------------------------------------
# LSFT
# --------------------------------------------------------------------------------------------------


def _check(problem: Problem, center: str, tests: list[str] | None) -> list[str]:
    if center not in CENTERS:
        raise ValueError(f"center must be one of {CENTERS}, got {center!r}")
    if not problem.train_perts:
        raise ValueError("LSFT needs at least one training perturbation with an embedding")
    tests = problem.test if tests is None else list(tests)
    unknown = sorted(set(tests) - set(problem.test))
    if unknown:
        raise ValueError(f"not predictable test conditions requested: {unknown[:5]}")
    return tests


def _neighbour_sums(
    order: np.ndarray, weights: np.ndarray, mat: np.ndarray, extra: np.ndarray | None = None
) -> np.ndarray:
    """``out[r, i] = Σ_j weights[i, r, j] · mat[order[i, j]] (+ Σ_m weights[i, r, n + m] · extra[m])``.

    ``order`` is tests × n, ``weights`` tests × r × (n [+ rows of ``extra``]); the result is r × tests ×
    columns of ``mat``, so that ``out[r].T`` is a Fortran-ordered genes × tests matrix. ``extra`` holds
    rows shared by every test (e.g. the control expression and ones, for affine terms), combined in
    the same product. Column blocks of ``mat`` are copied once; per test its neighbours' rows of the
    block are gathered into a small buffer and combined by one matrix product. A test's numbers
    depend only on its own neighbours and weights, never on the other tests of the call.
    """
    n_tests, n = order.shape
    n_extra = 0 if extra is None else extra.shape[0]
    out = np.empty((weights.shape[1], n_tests, mat.shape[1]))
    if n_tests == 0:
        return out
    step = max(64, _GATHER_BYTES // (8 * max(n + n_extra, 1)))
    buf = np.empty((n + n_extra, min(step, mat.shape[1])))
    for a in range(0, mat.shape[1], step):
        block = np.ascontiguousarray(mat[:, a : a + step])
        gathered = buf[:, : block.shape[1]]
        if n_extra:
            gathered[n:] = extra[:, a : a + step]
        for i in range(n_tests):
            np.take(block, order[i], axis=0, out=gathered[:n], mode="clip")  # indices are valid; "raise" buffers
            out[:, i, a : a + block.shape[1]] = weights[i] @ gathered
    return out


def lsft(
    problem: Problem,
    top_pct: float,
    ridge: float,
    center: str = "local",
    refit_embeddings: bool = True,
    tests: list[str] | None = None,
    shared: str | os.PathLike[str] | None = None,
) -> LsftResult:
    """LSFT predictions for ``tests`` (default: all predictable test conditions).

    Subset-independent matrices are computed once per ``problem`` and cached on it (the problem's
    arrays must not be modified in place afterwards), or memory-mapped from ``shared``, a directory
    written by :func:`save_shared` for the same inputs. Per test perturbation only ``n × n`` and
    ``d``-sized work remains, plus one pass over its neighbours' Δ rows for the kNN mean and the
    refit prediction.
    """
    tests = _check(problem, center, tests)
    if shared is not None:
        load_shared(problem, shared)
    emb = problem.embedding
    cache = _shared(problem)
    n_train = len(problem.train_perts)
    b_train = problem.b(problem.train_perts)
    n = n_neighbours(n_train, top_pct)
    b_tests = problem.b(tests)
    sims = cosine_similarity(b_tests, b_train)
    order = top_neighbours(sims, n)
    n_tests = len(tests)
    if emb.model in ("mean", "additive"):
        knn = _neighbour_sums(order, np.full((n_tests, 1, n), 1.0 / n), cache.get("y_t"))[0].T
        # mean_response refit on the neighbours is their mean; the additive model has nothing to refit (SPEC 10)
        local = knn.copy(order="F") if emb.model == "mean" else np.asfortranarray(problem.additive_for(tests))
    else:
        knn, local = _ridge_lsft(problem, cache, tests, order, b_train, b_tests, ridge, center, refit_embeddings)
    return LsftResult(
        conditions=tests,
        local=local,
        knn=knn,
        n_neighbours=n,
        mean_similarity=np.take_along_axis(sims, order, axis=1).mean(axis=1),
        neighbours=[[problem.train_perts[j] for j in row] for row in order],
    )


def _ridge_lsft(
    problem: Problem,
    cache: _Shared,
    tests: list[str],
    order: np.ndarray,
    b_train: np.ndarray,
    b_tests: np.ndarray,
    ridge: float,
    center: str,
    refit_embeddings: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """kNN and local ridge predictions (genes × tests) of the ridge baselines."""
    emb = problem.embedding
    n_tests, n = order.shape
    refit_gene, refit_pert = _refit_sides(problem, refit_embeddings)
    center_global = training_center(problem) if center == "global" else None
    dim_a, dim_b = emb.A.shape[1], emb.B.shape[0]
    # Both refit with different dimensions: A and B take nested sets of ordered components,
    # which the rotation-invariant shortcut does not provide.
    ordered = refit_gene and refit_pert and dim_a != dim_b
    # The refit prediction X_g,s u is a combination of Δ rows when Y = X_raw − b1ᵀ on the measured genes:
    # X[:, j] = Y[:, j] + b − μ_j 1, so kNN and local predictions come from one pass over the Δ rows.
    fused = refit_gene and cache.identity_rows and cache.y_is_expr_minus_ctrl
    if refit_gene or refit_pert:
        gram = cache.get("gram_targets") if refit_pert else cache.get("gram")
        dim = dim_a if refit_gene else dim_b
    if refit_gene:
        gram_g = cache.get("gram_g")
        if center == "global":
            cross_center = cache.get("xgt") @ center_global  # X_gᵀ c
            if fused:
                ctrl_center = cross_center + cache.get("xt_ctrl")
    else:
        a = emb.A
        proj = np.linalg.solve(a.T @ a + ridge * np.eye(a.shape[1]), a.T)  # (AᵀA + λI)⁻¹Aᵀ, reused
        proj_y = proj @ cache.get("y_t").T
        proj_center_global = proj @ center_global if center == "global" else None
        z_fixed = np.empty((a.shape[1], n_tests))
    u_gene = np.zeros((n_tests, n))  # refit gene side: prediction = X_g[:, sel] u + c
    for i, t in enumerate(tests):
        sel = order[i]
        basis = eig = None
        if refit_gene or refit_pert:
            gram_s = _sub(gram, sel)
            if refit_pert:
                gram_s, target_s = gram_s[..., 0], gram_s[..., 1]
            if ordered:
                u, _, _ = np.linalg.svd(cache.get("xt")[sel], full_matrices=False)  # xt[sel] = X_sᵀ
                v_a, v_b = u[:, : min(dim_a, u.shape[1])], u[:, : min(dim_b, u.shape[1])]
            else:
                basis = _local_basis(gram_s, cache, sel, dim)
                v_a = v_b = None if basis is None else basis[0]
        if refit_gene:
            if basis is not None and fused:
                # A = X_s V, AᵀA = Θ, Aᵀ(Y_s − c1ᵀ) = ΘVᵀ − (Vᵀ(Xᵀb + c)_s)1ᵀ, local c: ΘVᵀ(I − 11ᵀ/n)
                v_a, eig = basis
                vt = v_a.T
                if center == "local":
                    aty = eig[:, None] * (vt - vt.mean(axis=1, keepdims=True))
                else:
                    aty = eig[:, None] * vt - (vt @ ctrl_center[sel])[:, None]
                left = aty / (eig + ridge)[:, None]
            else:
                # AᵀA = VᵀG_g,sV and Aᵀ(Y_s − c1ᵀ) = Vᵀ(C_s − (X_g,sᵀc)1ᵀ), with A = X_g,s V
                c_s = cache.cross_sub(sel)
                xc = c_s.mean(axis=1) if center == "local" else cross_center[sel]
                aty = c_s - xc[:, None]
                ata = gram_s if cache.identity_rows else _sub(gram_g, sel)
                if v_a is not None:
                    ata, aty = v_a.T @ ata @ v_a, v_a.T @ aty
                left = np.linalg.solve(ata + ridge * np.eye(ata.shape[0]), aty)
        else:
            pc = proj_y[:, sel].mean(axis=1) if center == "local" else proj_center_global
            left = proj_y[:, sel] - pc[:, None]
        if refit_pert:
            # B = (X[targets_s, s] V)ᵀ, b_t = X[target_t, s] V
            b_sel = target_s
            b_t = cache.target_row(t, sel)
            if v_b is not None:
                b_sel, b_t = b_sel @ v_b, b_t @ v_b
            b_sel = b_sel.T
        else:
            b_sel = b_train[:, sel]
            b_t = b_tests[:, i]
        # K b_t = left Bᵀ (BBᵀ + λI)⁻¹ b_t: one d_B × d_B solve per perturbation
        w = np.linalg.solve(b_sel @ b_sel.T + ridge * np.eye(b_sel.shape[0]), b_t)
        z = left @ (b_sel.T @ w)
        if refit_gene:
            u_gene[i] = z if v_a is None else v_a @ z
        else:
            z_fixed[:, i] = z
    return _combine(problem, cache, order, u_gene if refit_gene else None, None if refit_gene else z_fixed,
                    fused, center, center_global)


def _combine(
    problem: Problem,
    cache: _Shared,
    order: np.ndarray,
    u_gene: np.ndarray | None,
    z_fixed: np.ndarray | None,
    fused: bool,
    center: str,
    center_global: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """The genes-sized products: kNN means and local predictions (genes × tests each, Fortran order)."""
    n_tests, n = order.shape
    y_t = cache.get("y_t")
    if u_gene is not None and fused:
        # X_s u = Σ_j u_j Y_j + (Σ_j u_j) b − (Σ_j u_j μ_j) 1 (b: control mean, μ_j: mean of raw column j),
        # so local = Σ_j (u_j [+ 1/n]) Y_j + (Σ u) b − (Σ u μ) 1 [+ c]: one product with the kNN mean.
        extra = [problem.ctrl_expr, np.ones(len(problem.ctrl_expr))]
        affine = [u_gene.sum(axis=1), -(u_gene * np.take(cache.get("mu"), order)).sum(axis=1)]
        local_w = u_gene + 1.0 / n if center == "local" else u_gene
        if center == "global":
            extra.append(center_global)
            affine.append(np.ones(n_tests))
        weights = np.zeros((n_tests, 2, n + len(extra)))
        weights[:, 0, :n] = 1.0 / n
        weights[:, 1, :n] = local_w
        weights[:, 1, n:] = np.column_stack(affine)
        sums = _neighbour_sums(order, weights, y_t, np.vstack(extra))
        return sums[0].T, sums[1].T
    knn = _neighbour_sums(order, np.full((n_tests, 1, n), 1.0 / n), y_t)[0].T
    if u_gene is not None:
        refit = _neighbour_sums(order, u_gene[:, None, :], cache.get("xgt"))[0].T
    else:
        a = problem.embedding.A
        refit = np.empty((a.shape[0], n_tests), order="F")
        for i in range(n_tests):  # one product per test: its numbers do not depend on the other tests
            refit[:, i] = a @ z_fixed[:, i]
    local = refit + (knn if center == "local" else center_global[:, None])
    return knn, local


def _score_row(problem: Problem, scores: np.ndarray, condition: str) -> np.ndarray:
    """A condition's row of local PCA scores: its target gene's, or the sum of a double's two genes' (SPEC 10)."""
    if condition in problem.double_rows:
        first, second = problem.double_rows[condition]
        return scores[first] + scores[second]
    return scores[problem.target_rows[condition]]


def lsft_reference(
    problem: Problem,
    top_pct: float,
    ridge: float,
    center: str = "local",
    refit_embeddings: bool = True,
    tests: list[str] | None = None,
) -> LsftResult:
    """The same math as :func:`lsft` as a plain loop: everything recomputed per test perturbation."""
    tests = _check(problem, center, tests)
    emb = problem.embedding
    dim_a, dim_b = emb.A.shape[1], emb.B.shape[0]
    n = n_neighbours(len(problem.train_perts), top_pct)
    local, knn, mean_sim, neighbours = [], [], [], []
    for t in tests:
        b_t = problem.b([t])[:, 0]
        sims = []
        for c in problem.train_perts:
            b_c = problem.b([c])[:, 0]
            denom = np.linalg.norm(b_t) * np.linalg.norm(b_c)
            sims.append(float(b_t @ b_c / denom) if denom > 0 else 0.0)
        kept = sorted(range(len(sims)), key=lambda j: -sims[j])[:n]  # stable: training order on ties
        names = [problem.train_perts[j] for j in kept]
        y_sel = problem.y[:, problem.col(names)]
        knn.append(y_sel.mean(axis=1))
        mean_sim.append(float(np.mean([sims[j] for j in kept])))
        neighbours.append(names)
        cen = y_sel.mean(axis=1) if center == "local" else problem.y[:, problem.col(problem.train)].mean(axis=1)
        if emb.model == "mean":
            local.append(knn[-1])
            continue
        if emb.model == "additive":
            local.append(problem.additive_for([t])[:, 0])
            continue
        a, b_sel = emb.A, problem.b(names)
        if refit_embeddings and "training_pca" in (emb.gene_type, emb.pert_type):
            rows = [problem.train_perts.index(c) for c in names]
            scores = pca_scores(problem.expr_t[rows].T, max(dim_a, dim_b))
            if emb.gene_type == "training_pca":
                a = scores[problem.gene_rows][:, : min(dim_a, scores.shape[1])]
            if emb.pert_type == "training_pca":
                scores_b = scores[:, : min(dim_b, scores.shape[1])]
                b_sel = np.column_stack([_score_row(problem, scores_b, c) for c in names])
                b_t = _score_row(problem, scores_b, t)
        k, cen = solve_y_axb(y_sel, a, b_sel, ridge, center=cen)
        local.append(predict(a, k, b_t[:, None], cen)[:, 0])
    return LsftResult(
        conditions=tests,
        local=np.column_stack(local) if local else np.zeros((problem.y.shape[0], 0)),
        knn=np.column_stack(knn) if knn else np.zeros((problem.y.shape[0], 0)),
        n_neighbours=n,
        mean_similarity=np.array(mean_sim),
        neighbours=neighbours,
    )
