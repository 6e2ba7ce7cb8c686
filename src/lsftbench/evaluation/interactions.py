"""Genetic interactions in double perturbations (SPEC 10, last bullet; Ahlmann-Eltze, Huber & Anders 2025, Fig. 1).

Pure functions on arrays: which doubles and genes (the test doubles with both singles in training, the 1000
genes of highest control mean) is the caller's choice; every array here is genes × doubles (any shape works,
the pairs are the elements).

Non-additivity
--------------
For a double AB and a gene, the observed non-additivity is ``e = Δ_AB − (Δ_A + Δ_B)`` and a method's
predicted one ``ê = Δ̂_AB − (Δ_A + Δ_B)``, both with the *observed* training singles' Δ
(:func:`nonadditivity`). The sum is formed first, so the ``additive`` baseline (``Δ̂_AB = Δ_A + Δ_B``) gets
``ê`` exactly 0.0 and ``no_change`` (``Δ̂_AB = 0``) gets ``ê = −(Δ_A + Δ_B)``: the two floor methods.

Empirical null by central matching (:func:`fit_empirical_null`)
---------------------------------------------------------------
The pooled ``e`` of all (test double, gene) pairs is modelled as a mixture ``f = π0·f0 + (1 − π0)·f1`` with
an empirical null ``f0 = N(δ, σ²)``, estimated from the centre of the distribution, the idea of Efron's central
matching (Efron 2004, JASA 99:96; Efron 2007, JASA 102:93; R package ``locfdr``; written here from the
published description, no code taken from it). Every choice, in order:

1. **Histogram.** Robust centre ``m = median(e)`` and scale ``s = IQR(e) / (2 Φ⁻¹(0.75))``
   (``scipy.stats.iqr(..., scale="normal")``, the SD for normal data). :data:`N_BINS` = 120 equal bins over
   ``[max(min e, m − 8 s), min(max e, m + 8 s)]`` (:data:`RANGE_SCALES` = 8). ``locfdr`` uses 120 breaks over
   the whole range of its z-values; ``e`` is not standardised and has long tails (a few pairs tens of ``s``
   out), which would leave the centre a few bins wide, so the range is capped at ±8 robust SDs: the null
   density there is about 1e-14 of its peak. Values beyond the cap are left out of the histogram but counted
   in ``N``, so the fitted density stays a density of the whole sample.
2. **Central matching.** The counts of the bins whose midpoints lie between the 15 % and 85 % quantiles of
   ``e`` (:data:`CENTRAL_QUANTILE`) are regressed on ``(1, x − m, (x − m)²)`` by Poisson maximum likelihood:
   under ``f = π0 f0`` in the centre the log expected count is exactly that quadratic. From its coefficients
   ``c0 + c1 (x − m) + c2 (x − m)²`` (``c0`` less ``log(N · bin width)``, so it is a log density):
   ``σ = (−2 c2)^(−1/2)``, ``δ = m − c1 / (2 c2)`` and ``π0 = σ √(2π) · exp(c0 − c1² / (4 c2))`` (the area under
   the fitted Gaussian curve), ``π0`` capped at 1. ``c2 ≥ 0`` (no peak in the centre) is an error. locfdr's
   central matching fits the quadratic to its spline estimate of ``log f`` over the central 50 %
   (``pct0 = 1/4``); on planted N(0.02, 0.1²) nulls with 5 % non-null pairs (60,000 pairs, 30 replicates) that
   gave σ 6 % low through the spline's misfit near narrow non-null clusters, and the direct fit over the central
   50 % a 6 % SD of σ; over the central 70 % the direct fit had bias < 1 % and SD 1.4 %. (The centre must
   be mostly null: non-null pairs near ``δ`` bias σ up, as in any central-matching estimate.)
3. **Smoothing of f.** Poisson regression of all bin counts on a natural cubic spline of the bin midpoint
   with :data:`SPLINE_DF` = 15 degrees of freedom plus intercept (14 interior knots equally spaced over the range;
   the form of locfdr's ``glm(y ~ ns(x, df), poisson)``, whose default ``df = 7`` spaces its knots 2.3 σ apart
   over ±8 robust SDs, too coarse for narrow non-null clusters: on the planted data above its thresholds were
   0.01 to 0.02 inside the true ones, with 15 within 0.006). The basis is scipy's cubic B-splines restricted to
   zero second derivative at both boundary knots (the null space of that 2-row constraint,
   ``scipy.linalg.null_space``), the fit ``scipy.optimize.minimize(method="trust-exact")`` on the convex Poisson
   log-likelihood from a least-squares start on ``log(y + 1)``. ``log f̂`` is a spline (a
   :class:`scipy.interpolate.BSpline`), so it is evaluated at any value, not bin-wise; outside the histogram
   range it is held at its end value.
4. **Local fdr.** ``fdr(x) = min(1, π0 φ((x − δ)/σ)/σ / f̂(x))`` (:meth:`EmpiricalNull.local_fdr`).

Everything is deterministic (no random numbers; the optimiser starts from a fixed point).

Relation to ``locfdr`` and the paper. The histogram (120 bins; locfdr: 120 breaks) and the Poisson fit of a
natural spline to its counts follow ``locfdr``; the spline's degrees of freedom and the central range differ, for
the reasons above. In ``locfdr`` central matching is ``nulltype = 2``; ``nulltype = 1`` (its default, and what the
paper's code calls: ``locfdr(error, nulltype = 1)``, then the ``"mlest"`` row of ``fp0``) is a maximum-likelihood
fit of a normal truncated to a central window around the median. The tests compare central matching with such a
fit on planted data (σ within 1.3 %, π0 within 0.01; ``tests/test_interactions.py``). The paper takes as
thresholds the observed values whose locfdr ``fdr`` is closest to 0.05; here they are where the fitted ``fdr``
function crosses the level.

Against SPEC 10. The SPEC asks for an empirical null "fitted by central matching to the bulk of e (Efron's
locfdr, ``nulltype = 1`` idea)". This module does central matching, as the SPEC's main clause says; in ``locfdr``
itself ``nulltype = 1`` names the other estimator (the truncated-normal maximum likelihood above, what the paper's
code uses), so the two words of the SPEC point at two fits. Where they differ: central matching reads δ, σ and π0
from the curvature of the central log density, the MLE from a truncated normal fitted to the values in a central
window; on data whose centre is mostly null they agree (the test above: σ within 1.3 %, π0 within 0.01), and the
thresholds follow from either through the same local fdr. Further differences from ``locfdr``'s defaults, each
argued above: the central 70 % instead of 50 %, a spline of 15 instead of 7 degrees of freedom, a histogram range
capped at ±8 robust SDs, and thresholds where the fitted fdr function crosses the level rather than the observed
values whose fdr is closest to it.

Thresholds and labels (:func:`interaction_thresholds`, :func:`interaction_labels`)
---------------------------------------------------------------------------------
The upper threshold is the lower end of the upper tail region in which ``fdr ≤ level``:
``inf{x ≥ δ : fdr(y) ≤ level for every y in [x, max e]}``, found on a grid of 2049 points over
``[δ, max e]`` and refined by ``scipy.optimize.brentq``; the lower threshold likewise below ``δ``. A tail in
which no value reaches ``fdr ≤ level`` has threshold ±inf (no pair is called). Pairs with ``e > upper`` are
synergy (+1), ``e < lower`` suppression (−1), the rest 0.

Detection (:func:`detection_curve`, :func:`detection_summary`)
-------------------------------------------------------------
Per method and direction, the pairs are ranked by ``ê`` (descending for synergy, ascending for suppression);
the true pairs are those with label +1 (synergy) or −1 (suppression), every other pair is false. Cutoffs lie
only between *distinct* values of ``ê`` (exact floating-point equality): tied pairs enter the ranking together,
so the curve has one point per distinct ``ê`` and does not depend on the order of the input. At cutoff ``k``
(all pairs up to and including the ``k``-th distinct value found)::

    TPR_k = true found / all true pairs,   FDP_k = false found / found.

``TPR at FDP q`` is ``T(q) = max{TPR_k : FDP_k ≤ q}`` (0 if no cutoff has ``FDP ≤ q``), the largest TPR
reached at any cutoff with FDP at most ``q``; :data:`FDP_LEVELS` are 0.1 and 0.2. The **AUC** is the area under
that step function over ``q ∈ [0, 1]``: ``∫₀¹ T(q) dq = Σ_j T_j (q_{j+1} − q_j)`` over the distinct FDP values
``q_j`` of the curve with ``q_{J+1} = 1`` (:func:`tpr_envelope`). A perfect ranking scores 1; a ranking with
all pairs tied (``ê ≡ 0``, the ``additive`` floor) has the single point ``(FDP, TPR) = (1 − p, 1)``, where ``p``
is the prevalence (true pairs / pairs), so its AUC is ``p`` and its TPR at FDP ``q`` is 0 for ``q < 1 − p``; a
random ranking stays near FDP ``1 − p`` too and scores about ``p``. With no true pair TPR and AUC are NaN.

Undefined values (:func:`interaction_table`)
--------------------------------------------
The low-level functions take finite arrays and refuse NaN. :func:`interaction_table` and
:func:`interaction_curves` handle them in one place: a pair whose observed ``e`` is not finite (a single not
in training) is left out of the null fit, the labels and every ranking (``n_undefined_pairs``); a pair a method
cannot predict (non-finite ``ê``, e.g. a double one of whose genes has no embedding) is left out of that
method's ranking. With ``test_set="common"`` (default) every method is ranked over the pairs *all* methods
predict, so the methods are compared on the same pairs; with ``"per_method"`` each over the pairs it predicts.
Either way the table counts the pairs and true pairs left out (``n_left_out``, ``n_true_left_out``), and
TPR is relative to the true pairs among the ranked pairs. The thresholds always come from all pairs with a
finite ``e``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import interpolate, linalg, optimize, stats

__all__ = [
    "Direction",
    "RankedPairs",
    "DIRECTIONS",
    "FDP_LEVELS",
    "FDR_LEVEL",
    "N_BINS",
    "RANGE_SCALES",
    "SPLINE_DF",
    "CENTRAL_QUANTILE",
    "MIN_PAIRS",
    "EmpiricalNull",
    "nonadditivity",
    "fit_empirical_null",
    "interaction_thresholds",
    "interaction_labels",
    "detection_curve",
    "tpr_envelope",
    "detection_summary",
    "interaction_curves",
    "interaction_table",
    "interaction_table_and_curves",
]

Direction = Literal["synergy", "suppression"]
#: Which pairs each method is ranked over (see "Undefined values" above).
RankedPairs = Literal["common", "per_method"]
#: The directions in table order, and the label of their true pairs.
DIRECTIONS: tuple[Direction, ...] = ("synergy", "suppression")
_TARGET: dict[str, int] = {"synergy": 1, "suppression": -1}
#: FDP levels of the ``tpr_at_fdp_<q>`` columns.
FDP_LEVELS: tuple[float, ...] = (0.1, 0.2)
#: Local false-discovery rate that defines the thresholds.
FDR_LEVEL = 0.05
#: Histogram bins of the mixture fit (locfdr: ``bre = 120``).
N_BINS = 120
#: Half-width of the histogram range in robust SDs around the median.
RANGE_SCALES = 8.0
#: Degrees of freedom of the natural spline for log f (locfdr: ``df = 7``), intercept not counted.
SPLINE_DF = 15
#: Central matching uses the bins between this quantile of ``e`` and one minus it (locfdr: ``pct0 = 1/4``).
CENTRAL_QUANTILE = 0.15
#: Fewest finite values a null is fitted to (locfdr assumes "say, more than 200").
MIN_PAIRS = 200
_GRID = 2049


@dataclass(frozen=True, eq=False)
class EmpiricalNull:
    """An empirical null ``N(delta, sigma²)`` with null proportion ``pi0`` and the smoothed mixture density.

    Attributes
    ----------
    delta, sigma, pi0
        The central-matching estimates (``pi0`` capped at 1).
    n
        Number of values fitted (including those outside the histogram range).
    edges, counts
        The histogram (``N_BINS + 1`` edges, ``N_BINS`` counts).
    log_count
        The fitted log expected count per bin as a spline of the value (valid on ``[edges[0], edges[-1]]``).
    """

    delta: float
    sigma: float
    pi0: float
    n: int
    edges: np.ndarray
    counts: np.ndarray
    log_count: interpolate.BSpline

    def log_mixture_density(self, values: ArrayLike) -> np.ndarray:
        """``log f̂`` at ``values``; outside the histogram range the value at the nearest end."""
        x = np.clip(np.asarray(values, dtype=np.float64), self.edges[0], self.edges[-1])
        width = self.edges[1] - self.edges[0]
        return self.log_count(x) - math.log(self.n * width)

    def local_fdr(self, values: ArrayLike) -> np.ndarray:
        """``fdr(x) = min(1, pi0 · φ_{delta, sigma}(x) / f̂(x))`` at ``values`` (NaN stays NaN)."""
        x = np.asarray(values, dtype=np.float64)
        log_null = math.log(self.pi0) + stats.norm.logpdf(x, loc=self.delta, scale=self.sigma)
        return np.minimum(1.0, np.exp(log_null - self.log_mixture_density(x)))


# ---------------------------------------------------------------------------------------------------
# Non-additivity and the empirical null


def nonadditivity(delta_ab: ArrayLike, delta_a: ArrayLike, delta_b: ArrayLike) -> np.ndarray:
    """``Δ_AB − (Δ_A + Δ_B)`` elementwise (genes × doubles).

    ``delta_ab`` is the observed or a method's predicted Δ of the doubles, ``delta_a`` and ``delta_b`` the
    observed training singles' Δ of each double's two genes (same shape). The singles' sum is formed first,
    so ``delta_ab = delta_a + delta_b`` gives exactly 0.0. NaN propagates (a single not in training).
    """
    ab, a, b = (np.asarray(x, dtype=np.float64) for x in (delta_ab, delta_a, delta_b))
    if not ab.shape == a.shape == b.shape:
        raise ValueError(f"Δ_AB, Δ_A and Δ_B need one shape, got {ab.shape}, {a.shape}, {b.shape}")
    return ab - (a + b)


def _finite_values(values: ArrayLike, what: str) -> np.ndarray:
    """``values`` flattened to float64; NaN or ±inf is refused (drop undefined pairs first)."""
    out = np.asarray(values, dtype=np.float64).ravel()
    if not np.isfinite(out).all():
        raise ValueError(f"{what} contains NaN or inf: leave undefined pairs out first (see interaction_table)")
    return out


def _natural_spline(lo: float, hi: float, df: int) -> tuple[np.ndarray, np.ndarray]:
    """Knot vector of a cubic B-spline basis with ``df − 1`` equally spaced interior knots on ``[lo, hi]`` and the
    matrix that maps ``df + 1`` natural-spline coefficients (zero second derivative at ``lo`` and ``hi``; the
    constant included) to B-spline coefficients."""
    interior = np.linspace(lo, hi, df + 1)[1:-1]
    knots = np.concatenate([[lo] * 4, interior, [hi] * 4])
    n_basis = len(knots) - 4
    second = interpolate.BSpline(knots, np.eye(n_basis), 3).derivative(2)(np.array([lo, hi]))
    return knots, linalg.null_space(second)


def _poisson_fit(design: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Coefficients of the Poisson regression ``log E[counts] = design @ beta`` (maximum likelihood)."""

    def objective(beta: np.ndarray) -> tuple[float, np.ndarray]:
        eta = design @ beta
        mu = np.exp(eta)
        return float(np.sum(mu - counts * eta)), design.T @ (mu - counts)

    def hessian(beta: np.ndarray) -> np.ndarray:
        return design.T @ (np.exp(design @ beta)[:, None] * design)

    start = np.linalg.lstsq(design, np.log(counts + 1.0), rcond=None)[0]
    result = optimize.minimize(objective, start, jac=True, hess=hessian, method="trust-exact",
                               options={"gtol": 1e-8 * max(1.0, float(counts.sum()))})
    if not np.all(np.isfinite(result.x)):
        raise ValueError(f"the Poisson fit of the histogram failed: {result.message}")
    return result.x


def fit_empirical_null(
    e: ArrayLike, *, bins: int = N_BINS, df: int = SPLINE_DF, central_quantile: float = CENTRAL_QUANTILE,
    range_scales: float = RANGE_SCALES,
) -> EmpiricalNull:
    """Fit the empirical null ``N(δ, σ²)`` and ``π0`` to the pooled non-additivity ``e`` by central matching.

    Parameters
    ----------
    e
        Observed non-additivity of all (test double, gene) pairs, finite (any shape; flattened).
    bins, df, central_quantile, range_scales
        Histogram bins, natural-spline degrees of freedom of ``log f``, the quantile that bounds the central
        part (``[q, 1 − q]``) and the histogram's half-width in robust SDs (see the module docstring).

    Returns
    -------
    EmpiricalNull
        ``delta``, ``sigma``, ``pi0`` and the smoothed mixture density, with :meth:`EmpiricalNull.local_fdr`.

    Raises
    ------
    ValueError
        Non-finite values, fewer than :data:`MIN_PAIRS` values, no spread (IQR 0), fewer than 3 histogram bins
        in the centre, or a centre whose log density is not concave (central matching undefined).
    """
    values = _finite_values(e, "the observed non-additivity")
    if values.size < MIN_PAIRS:
        raise ValueError(f"an empirical null needs at least {MIN_PAIRS} values, got {values.size}")
    centre = float(np.median(values))
    scale = float(stats.iqr(values, scale="normal"))
    if not scale > 0:
        raise ValueError("the non-additivity has no spread (IQR 0): no empirical null can be fitted")
    lo = max(float(values.min()), centre - range_scales * scale)
    hi = min(float(values.max()), centre + range_scales * scale)
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    mids = (edges[:-1] + edges[1:]) / 2
    log_norm = math.log(values.size * (edges[1] - edges[0]))  # log expected count − log density

    q_lo, q_hi = np.quantile(values, [central_quantile, 1 - central_quantile])
    central = (mids > q_lo) & (mids < q_hi)
    if central.sum() < 3:
        raise ValueError(f"only {int(central.sum())} histogram bins lie in the central part: use more bins")
    x = mids[central] - centre
    c0, c1, c2 = _poisson_fit(np.column_stack([np.ones(x.size), x, x * x]), counts[central].astype(np.float64))
    if not c2 < 0:
        raise ValueError("central matching failed: the log density of the central part is not concave")
    sigma = math.sqrt(-1.0 / (2.0 * c2))
    pi0 = min(1.0, sigma * math.sqrt(2.0 * math.pi) * math.exp(c0 - log_norm - c1 * c1 / (4.0 * c2)))

    knots, natural = _natural_spline(lo, hi, df)
    design = interpolate.BSpline.design_matrix(mids, knots, 3).toarray() @ natural
    log_count = interpolate.BSpline(knots, natural @ _poisson_fit(design, counts.astype(np.float64)), 3)
    return EmpiricalNull(delta=centre - c1 / (2.0 * c2), sigma=sigma, pi0=pi0, n=int(values.size), edges=edges,
                         counts=counts, log_count=log_count)


def _tail_threshold(null: EmpiricalNull, level: float, start: float, end: float) -> float:
    """Where the tail from ``start`` (the null's centre) towards ``end`` (the extreme value) last rises above
    ``level``: every value beyond it has ``fdr ≤ level``. ±inf (the sign of ``end − start``) if ``fdr(end)`` is
    above ``level``; ``start`` if the whole stretch is at or below it."""
    grid = np.linspace(start, end, _GRID)
    above = np.flatnonzero(null.local_fdr(grid) > level)
    if not above.size:
        return start
    i = int(above[-1])
    if i == _GRID - 1:
        return math.copysign(math.inf, end - start)
    return float(optimize.brentq(lambda x: float(null.local_fdr(x)) - level, grid[i], grid[i + 1], xtol=1e-12))


def interaction_thresholds(e: ArrayLike, fdr: float = FDR_LEVEL) -> tuple[float, float, EmpiricalNull]:
    """Lower and upper thresholds of ``e`` at local fdr ``fdr`` under the central-matching null of ``e``.

    ``e`` is the finite pooled observed non-additivity. Returns ``(lower, upper, null)``: pairs with
    ``e > upper`` are synergies, ``e < lower`` suppressions; a tail where no value reaches ``fdr`` gives
    ``-inf`` / ``+inf``.
    """
    if not 0 < fdr < 1:
        raise ValueError(f"fdr must be in (0, 1), got {fdr}")
    values = _finite_values(e, "the observed non-additivity")
    null = fit_empirical_null(values)
    lower = _tail_threshold(null, fdr, null.delta, float(values.min()))
    upper = _tail_threshold(null, fdr, null.delta, float(values.max()))
    return lower, upper, null


def interaction_labels(e: ArrayLike, lower: float, upper: float) -> np.ndarray:
    """``int8`` array of ``e``'s shape: +1 synergy (``e > upper``), −1 suppression (``e < lower``), 0 otherwise.

    ``e`` must be finite (a NaN pair is neither; leave it out first).
    """
    values = np.asarray(e, dtype=np.float64)
    _finite_values(values, "the observed non-additivity")
    labels = np.zeros(values.shape, dtype=np.int8)
    labels[values > upper] = 1
    labels[values < lower] = -1
    return labels


# ---------------------------------------------------------------------------------------------------
# Detection curves


def _check_direction(direction: str) -> int:
    if direction not in _TARGET:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    return _TARGET[direction]


def detection_curve(pred_e: ArrayLike, labels: ArrayLike, direction: Direction) -> pd.DataFrame:
    """The TPR–FDP walk down one method's ranking of the pairs, one row per distinct ``ê``.

    Parameters
    ----------
    pred_e
        The method's predicted non-additivity ``ê`` of the ranked pairs, finite (any shape; flattened).
    labels
        The pairs' :func:`interaction_labels` (same shape).
    direction
        ``"synergy"`` (rank by ``ê`` descending; true pairs have label +1) or ``"suppression"`` (ascending; −1).

    Returns
    -------
    DataFrame
        Columns ``cutoff`` (the ``ê`` of the last tie group found: pairs with ``ê ≥ cutoff`` for synergy,
        ``≤`` for suppression), ``n_found``, ``n_true_found``, ``fdp``, ``tpr`` (NaN when there is no true pair),
        in ranking order; ``attrs["n_true"]`` and ``attrs["n_pairs"]`` hold the totals.
    """
    target = _check_direction(direction)
    pred = _finite_values(pred_e, "the predicted non-additivity")
    lab = np.asarray(labels).ravel()
    if lab.shape != pred.shape:
        raise ValueError(f"pred_e and labels need one shape, got {pred.shape} and {lab.shape}")
    is_true = lab == target
    key = -pred if target == 1 else pred  # ascending key = ranking order
    distinct, group, sizes = np.unique(key, return_inverse=True, return_counts=True)
    n_found = np.cumsum(sizes)
    n_true_found = np.cumsum(np.bincount(group, weights=is_true, minlength=distinct.size)).astype(np.int64)
    n_true = int(is_true.sum())
    curve = pd.DataFrame({
        "cutoff": -distinct if target == 1 else distinct,
        "n_found": n_found,
        "n_true_found": n_true_found,
        "fdp": (n_found - n_true_found) / n_found,
        "tpr": n_true_found / n_true if n_true else np.full(distinct.size, np.nan),
    })
    curve.attrs.update(n_true=n_true, n_pairs=int(pred.size))
    return curve


def tpr_envelope(curve: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The step function ``T(q) = max{TPR_k : FDP_k ≤ q}`` of a :func:`detection_curve`.

    Returns the distinct FDP values ``q_j`` (ascending) and ``T(q_j)``; ``T`` is ``T(q_j)`` on
    ``[q_j, q_{j+1})`` and 0 below ``q_0``. Empty arrays for an empty curve.
    """
    order = np.argsort(curve["fdp"].to_numpy(), kind="stable")
    fdp = curve["fdp"].to_numpy()[order]
    best = np.maximum.accumulate(curve["tpr"].to_numpy()[order]) if fdp.size else fdp
    last = np.append(fdp[1:] != fdp[:-1], True)  # the last (highest) TPR of each distinct FDP
    return fdp[last], best[last]


def detection_summary(curve: pd.DataFrame, levels: Sequence[float] = FDP_LEVELS) -> dict[str, float]:
    """``tpr_at_fdp_<q>`` for every level ``q`` and ``auc`` (area under ``T(q)`` on ``[0, 1]``) of a curve.

    All are NaN when the curve has no true pair (or no pair).
    """
    fdp, tpr = tpr_envelope(curve)
    if not curve.attrs.get("n_true", 0) or not fdp.size:
        return {**{f"tpr_at_fdp_{q:g}": math.nan for q in levels}, "auc": math.nan}
    out = {f"tpr_at_fdp_{q:g}": float(np.max(tpr[fdp <= q], initial=0.0)) for q in levels}
    out["auc"] = float(np.sum(tpr * np.diff(np.append(fdp, 1.0))))
    return out


# ---------------------------------------------------------------------------------------------------
# Several methods


@dataclass(frozen=True)
class _Evaluation:
    """One (method, direction): its curve and counts."""

    method: str
    direction: Direction
    curve: pd.DataFrame
    counts: dict[str, int]


def _evaluations(
    methods: Mapping[str, ArrayLike], observed_e: ArrayLike, fdr: float, test_set: RankedPairs,
) -> tuple[float, float, EmpiricalNull, dict[str, int], list[_Evaluation]]:
    """Thresholds, null, pair counts and every (method, direction) evaluation (NaN policy: module docstring)."""
    if test_set not in ("common", "per_method"):
        raise ValueError(f"test_set must be 'common' or 'per_method', got {test_set!r}")
    if not methods:
        raise ValueError("no method to evaluate")
    observed = np.asarray(observed_e, dtype=np.float64)
    preds = {name: np.asarray(pred, dtype=np.float64) for name, pred in methods.items()}
    wrong = {name: p.shape for name, p in preds.items() if p.shape != observed.shape}
    if wrong:
        raise ValueError(f"predictions need the observed shape {observed.shape}: {wrong}")
    defined = np.isfinite(observed)
    lower, upper, null = interaction_thresholds(observed[defined], fdr)
    labels = np.zeros(observed.shape, dtype=np.int8)
    labels[defined] = interaction_labels(observed[defined], lower, upper)
    common = defined & np.logical_and.reduce([np.isfinite(p) for p in preds.values()])
    pairs = {"n_observed_pairs": int(defined.sum()), "n_undefined_pairs": int((~defined).sum())}
    out = []
    for name, pred in preds.items():
        ranked = common if test_set == "common" else defined & np.isfinite(pred)
        left_out = defined & ~ranked
        for direction in DIRECTIONS:
            target = _TARGET[direction]
            counts = {"n_pairs": int(ranked.sum()), "n_left_out": int(left_out.sum()),
                      "n_true": int((labels[ranked] == target).sum()),
                      "n_true_left_out": int((labels[left_out] == target).sum())}
            out.append(_Evaluation(name, direction, detection_curve(pred[ranked], labels[ranked], direction), counts))
    return lower, upper, null, pairs, out


def interaction_curves(
    methods: Mapping[str, ArrayLike], observed_e: ArrayLike, *, fdr: float = FDR_LEVEL,
    test_set: RankedPairs = "common",
) -> pd.DataFrame:
    """Every method's :func:`detection_curve` in both directions, stacked (the figure's input).

    Arguments as :func:`interaction_table`. Columns ``method, direction`` and those of :func:`detection_curve`.
    """
    *_, evaluations = _evaluations(methods, observed_e, fdr, test_set)
    return _stacked_curves(evaluations)


def _stacked_curves(evaluations: Sequence[_Evaluation]) -> pd.DataFrame:
    frames = [ev.curve.assign(method=ev.method, direction=ev.direction) for ev in evaluations]
    columns = ["method", "direction", "cutoff", "n_found", "n_true_found", "fdp", "tpr"]
    return pd.concat(frames, ignore_index=True)[columns]


def interaction_table(
    methods: Mapping[str, ArrayLike], observed_e: ArrayLike, *, fdr: float = FDR_LEVEL,
    levels: Sequence[float] = FDP_LEVELS, test_set: RankedPairs = "common",
) -> pd.DataFrame:
    """One row per (method, direction): TPR at each FDP level, AUC, and the counts and null behind them.

    Parameters
    ----------
    methods
        Method name → predicted non-additivity ``ê`` (:func:`nonadditivity` of its Δ̂_AB), the shape of
        ``observed_e``; non-finite where the method cannot predict the pair. Include ``additive`` (zeros) and
        ``no_change`` (``−(Δ_A + Δ_B)``) for the floor.
    observed_e
        Observed non-additivity ``e`` of the test doubles (genes × doubles), NaN where undefined.
    fdr
        Local fdr of the thresholds.
    levels
        FDP levels of the ``tpr_at_fdp_<q>`` columns.
    test_set
        ``"common"``: every method ranked over the pairs all methods predict; ``"per_method"``: each over
        the pairs it predicts.

    Returns
    -------
    DataFrame
        Columns ``method, direction, n_pairs, n_true, prevalence, tpr_at_fdp_<q>..., auc, n_left_out,
        n_true_left_out, n_observed_pairs, n_undefined_pairs, lower, upper, delta, sigma, pi0, fdr``.
    """
    return _table(*_evaluations(methods, observed_e, fdr, test_set), fdr, levels)


def interaction_table_and_curves(
    methods: Mapping[str, ArrayLike], observed_e: ArrayLike, *, fdr: float = FDR_LEVEL,
    levels: Sequence[float] = FDP_LEVELS, test_set: RankedPairs = "common",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`interaction_table` and :func:`interaction_curves` of the same arguments, the null fitted and every
    method ranked once for both."""
    *fitted, evaluations = _evaluations(methods, observed_e, fdr, test_set)
    return _table(*fitted, evaluations, fdr, levels), _stacked_curves(evaluations)


def _table(
    lower: float, upper: float, null: EmpiricalNull, pairs: dict[str, int], evaluations: Sequence[_Evaluation],
    fdr: float, levels: Sequence[float],
) -> pd.DataFrame:
    rows = []
    for ev in evaluations:
        prevalence = ev.counts["n_true"] / ev.counts["n_pairs"] if ev.counts["n_pairs"] else math.nan
        rows.append({
            "method": ev.method, "direction": ev.direction, "n_pairs": ev.counts["n_pairs"],
            "n_true": ev.counts["n_true"], "prevalence": prevalence, **detection_summary(ev.curve, levels),
            "n_left_out": ev.counts["n_left_out"], "n_true_left_out": ev.counts["n_true_left_out"], **pairs,
            "lower": lower, "upper": upper, "delta": null.delta, "sigma": null.sigma, "pi0": null.pi0, "fdr": fdr,
        })
    return pd.DataFrame(rows)
