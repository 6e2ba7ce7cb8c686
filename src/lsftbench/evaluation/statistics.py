"""Uncertainty and significance of the LSFT tables (SPEC section 7.1).

Pure functions on arrays and per-perturbation frames; every statistic comes from :mod:`scipy.stats`
(``bootstrap``, ``wilcoxon``, ``false_discovery_control``, ``binomtest(...).proportion_ci``). The
functions here only choose the inputs (which perturbations, which seeds) and handle the degenerate
cases those scipy functions do not define.

Units and pooling
-----------------
Within one split seed the unit is a test perturbation. Over several split seeds:

* pooled mean = mean of the per-seed means; spread = SD of the per-seed means across seeds;
* CI = stratified percentile bootstrap: each seed's values are resampled within that seed and the
  statistic is the mean of the per-seed means (``scipy.stats.bootstrap`` with one sample per seed);
* paired test and fraction improved: a perturbation that is a test perturbation in several seeds is one
  unit, its difference averaged over those seeds, so the units of the test are independent.

One seed is the special case of all of this with a single stratum.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats

__all__ = [
    "StatsSettings",
    "Estimate",
    "FamilyStats",
    "bootstrap_ci",
    "paired_bootstrap_ci",
    "stratified_bootstrap_ci",
    "stratified_bootstrap_cis",
    "pooled_mean",
    "pooled_estimate",
    "paired_estimate",
    "signed_rank_p",
    "TIE_TOLERANCE",
    "pooled_signed_rank_p",
    "bh_qvalues",
    "wilson_ci",
    "fraction_improved",
    "FamilySpec",
    "family_statistics",
    "row_statistics",
]

#: Paired differences of metrics (Pearson r, L2, ranks: order 1) this close to zero are ties.
TIE_TOLERANCE = 1e-12
# Resampled indices per vectorised bootstrap batch (batch × n): bounds memory at ~8 MB for any n.
_BATCH_VALUES = 1_000_000


@dataclass(frozen=True)
class StatsSettings:
    """Bootstrap settings (config ``statistics``: ``n_resamples``, ``confidence``, ``seed``).

    ``seed`` seeds a fresh ``numpy.random.default_rng(seed)`` for every interval, so an interval does
    not depend on which other intervals were computed before it.
    """

    n_resamples: int = 9999
    confidence: float = 0.95
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_resamples < 1:
            raise ValueError(f"statistics.n_resamples must be >= 1, got {self.n_resamples}")
        if not 0 < self.confidence < 1:
            raise ValueError(f"statistics.confidence must be in (0, 1), got {self.confidence}")

    @classmethod
    def from_config(cls, section: Mapping[str, object] | None) -> StatsSettings:
        """Settings from the config's ``statistics`` mapping (missing keys keep their defaults)."""
        section = dict(section or {})
        unknown = set(section) - {"n_resamples", "confidence", "seed"}
        if unknown:
            raise ValueError(f"unknown statistics settings: {sorted(unknown)}")
        return cls(**section)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Estimate:
    """A pooled mean with its bootstrap interval and its SD across seeds (NaN for one seed)."""

    mean: float
    low: float
    high: float
    sd: float


NAN_ESTIMATE = Estimate(math.nan, math.nan, math.nan, math.nan)


# ---------------------------------------------------------------------------------------------------
# Intervals


def _strata(samples: Sequence[ArrayLike]) -> list[np.ndarray]:
    """Non-empty 2-D float arrays (values × perturbations); NaN is refused (drop undefined values first)."""
    out = [np.atleast_2d(np.asarray(s, dtype=np.float64)) for s in samples]
    if any(np.isnan(s).any() for s in out):
        raise ValueError("bootstrap input contains NaN: drop undefined values before computing intervals")
    if len({s.shape[0] for s in out}) > 1:
        raise ValueError("every stratum needs the same number of value rows")
    return [s for s in out if s.shape[-1]]


class _MeanOfMeans:
    """The bootstrap statistic: the mean over strata of each row's per-stratum mean.

    ``scipy.stats.bootstrap`` resamples each stratum's *perturbation indices* (``0 … n_s − 1``, a
    1-row array) instead of the ``(values, perturbations)`` data itself: the statistic turns a batch
    of resampled indices into counts (``bincount``) and every row's resampled mean into one matrix
    product. The resamples and intervals are those of bootstrapping the data directly (same draws),
    but the cost no longer grows with the number of rows sharing them.
    """

    def __init__(self, strata: Sequence[np.ndarray]) -> None:
        self.strata = strata

    def __call__(self, *indices: np.ndarray, axis: int = -1) -> np.ndarray:
        means = []
        for values, idx in zip(self.strata, indices, strict=True):
            idx = np.asarray(idx, dtype=np.intp)
            n = values.shape[-1]
            if idx.ndim == 1:
                means.append(values[:, idx].mean(axis=-1))
                continue
            batch = idx.shape[0]
            flat = (idx + n * np.arange(batch)[:, None]).ravel()
            counts = np.bincount(flat, minlength=batch * n).reshape(batch, n).astype(np.float64)  # BLAS product
            means.append(values @ counts.T / n)  # (rows, batch)
        return np.mean(means, axis=0)


def stratified_bootstrap_cis(
    samples: Sequence[ArrayLike], settings: StatsSettings = StatsSettings()
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile-bootstrap CIs of the mean of per-stratum means, each stratum resampled within itself.

    Several values measured on the same perturbations (e.g. local r, global r and their difference)
    share one call: each stratum is a ``(values, perturbations)`` array, and ``scipy.stats.bootstrap``
    resamples its perturbations (columns) once for all rows. Every row's interval equals a separate
    call on that row alone with the same seed.

    Parameters
    ----------
    samples
        One array per stratum (split seed), 1-D or ``(k, n_s)``. Empty strata are ignored.
    settings
        ``n_resamples``, ``confidence`` and the ``seed`` of ``numpy.random.default_rng``.

    Returns
    -------
    (low, high)
        Arrays of length ``k``. NaN when there is no stratum or a stratum has fewer than 2 values (its
        sampling spread is not estimable); ``(m, m)`` exactly for a row that is constant in every stratum
        (the statistic cannot vary).
    """
    strata = _strata(samples)
    k = np.atleast_2d(np.asarray(samples[0])).shape[0] if len(samples) else 1
    key = (settings, k, tuple((s.shape, hashlib.sha1(s.tobytes()).digest()) for s in strata))
    if key not in _CI_CACHE:
        _CI_CACHE[key] = _stratified_bootstrap_cis(k, strata, settings)
    low, high = _CI_CACHE[key]
    return low.copy(), high.copy()


#: Intervals already computed in this process, by (settings, strata): the common-test-set and
#: per-baseline tables share most rows, and a table's row is resampled once, not once per table.
_CI_CACHE: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}


def _stratified_bootstrap_cis(
    k: int, strata: list[np.ndarray], settings: StatsSettings
) -> tuple[np.ndarray, np.ndarray]:
    if not strata or min(s.shape[-1] for s in strata) < 2:
        return np.full(k, math.nan), np.full(k, math.nan)
    constant = np.all([np.ptp(s, axis=-1) == 0 for s in strata], axis=0)
    low, high = np.empty(k), np.empty(k)
    if not constant.all():
        varying = [s[~constant] for s in strata]
        res = stats.bootstrap(
            tuple(np.arange(s.shape[-1], dtype=np.float64) for s in varying),
            _MeanOfMeans(varying),
            n_resamples=settings.n_resamples,
            batch=max(1, _BATCH_VALUES // sum(s.shape[-1] for s in varying)),
            confidence_level=settings.confidence,
            method="percentile",
            axis=-1,
            rng=np.random.default_rng(settings.seed),
        )
        low[~constant], high[~constant] = res.confidence_interval.low, res.confidence_interval.high
    m = np.mean([s[:, 0] for s in strata], axis=0)
    low[constant], high[constant] = m[constant], m[constant]
    return low, high


def stratified_bootstrap_ci(samples: Sequence[ArrayLike], settings: StatsSettings = StatsSettings()) -> tuple[float, float]:
    """Percentile-bootstrap CI of the mean of per-stratum means for one value (1-D strata).

    See :func:`stratified_bootstrap_cis`: NaN when a stratum has fewer than 2 values, ``(m, m)`` when
    every stratum is constant.
    """
    if any(np.ndim(s) > 1 for s in samples):
        raise ValueError("stratified_bootstrap_ci takes 1-D samples; use stratified_bootstrap_cis for several values")
    low, high = stratified_bootstrap_cis([np.asarray(s, dtype=np.float64).ravel() for s in samples], settings)
    return float(low[0]), float(high[0])


def bootstrap_ci(values: ArrayLike, settings: StatsSettings = StatsSettings()) -> tuple[float, float]:
    """Percentile-bootstrap CI of a mean over test perturbations (``scipy.stats.bootstrap``, seeded).

    NaN for fewer than 2 values; ``(v, v)`` when all values equal ``v``.
    """
    return stratified_bootstrap_ci([values], settings)


def paired_bootstrap_ci(x: ArrayLike, y: ArrayLike, settings: StatsSettings = StatsSettings()) -> tuple[float, float]:
    """CI of the mean paired difference ``mean(x − y)``: the bootstrap of the per-perturbation differences."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"paired samples differ in shape: {x.shape} vs {y.shape}")
    return bootstrap_ci(x - y, settings)


def _strata_1d(samples: Sequence[ArrayLike]) -> list[np.ndarray]:
    """Non-empty 1-D float arrays, NaN refused."""
    return [s[0] for s in _strata([np.asarray(x, dtype=np.float64).ravel() for x in samples])]


def pooled_mean(samples: Sequence[ArrayLike]) -> float:
    """Mean of the per-seed means (seeds without values left out; NaN when none has values)."""
    strata = _strata_1d(samples)
    return float(np.mean([s.mean() for s in strata])) if strata else math.nan


def pooled_estimate(samples: Sequence[ArrayLike], settings: StatsSettings = StatsSettings()) -> Estimate:
    """Mean of per-seed means, its stratified bootstrap CI, and the SD of the per-seed means.

    Seeds without values are left out. The SD uses ``ddof=1`` and is NaN for fewer than 2 seeds.
    """
    strata = _strata_1d(samples)
    if not strata:
        return NAN_ESTIMATE
    means = np.array([s.mean() for s in strata])
    low, high = stratified_bootstrap_ci(strata, settings)
    return Estimate(pooled_mean(strata), low, high, float(means.std(ddof=1)) if len(means) > 1 else math.nan)


def paired_estimate(
    x: Sequence[ArrayLike], y: Sequence[ArrayLike], settings: StatsSettings = StatsSettings()
) -> Estimate:
    """Pooled improvement ``x − y`` from per-seed paired samples.

    The point value is ``pooled mean(x) − pooled mean(y)``, so an improvement column equals the
    difference of the two mean columns exactly. The CI is the stratified bootstrap of the per-seed
    paired differences; the SD is that of the per-seed differences of means.
    """
    if len(x) != len(y):
        raise ValueError("x and y need one sample per seed each")
    pairs = [(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)) for a, b in zip(x, y)]
    if any(a.shape != b.shape for a, b in pairs):
        raise ValueError("paired samples differ in shape")
    pairs = [(a, b) for a, b in pairs if a.size]
    if not pairs:
        return NAN_ESTIMATE
    mean = pooled_mean([a for a, _ in pairs]) - pooled_mean([b for _, b in pairs])
    low, high = stratified_bootstrap_ci([a - b for a, b in pairs], settings)
    per_seed = np.array([a.mean() - b.mean() for a, b in pairs])
    return Estimate(mean, low, high, float(per_seed.std(ddof=1)) if len(pairs) > 1 else math.nan)


# ---------------------------------------------------------------------------------------------------
# Tests


def _per_perturbation_mean(seeds: ArrayLike, conditions: ArrayLike, values: ArrayLike) -> np.ndarray:
    """Each perturbation's value averaged over the seeds in which it is a test perturbation
    (perturbations in sorted order)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    codes, uniques = pd.factorize(np.asarray(conditions).ravel(), sort=True)
    seed_codes = pd.factorize(np.asarray(seeds).ravel())[0]
    if len(np.unique(seed_codes.astype(np.int64) * max(len(uniques), 1) + codes)) < len(codes):
        raise ValueError("a (seed, condition) pair appears more than once")
    if np.isnan(v).any():
        raise ValueError("values contain NaN; drop undefined values first")
    counts = np.bincount(codes, minlength=len(uniques))
    return np.bincount(codes, weights=v, minlength=len(uniques)) / counts


def signed_rank_p(differences: ArrayLike) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired differences (``scipy.stats.wilcoxon``).

    Zero differences are dropped (scipy's default ``zero_method="wilcox"``); a difference within
    :data:`TIE_TOLERANCE` of zero is floating-point rounding (e.g. the same prediction computed in a
    different chunk of test perturbations) and counts as zero. When every difference is zero there is
    no evidence of a difference and the p-value is defined as 1.0 (scipy returns NaN with a warning
    there). NaN for an empty input; NaN differences are refused.
    """
    d = np.asarray(differences, dtype=np.float64).ravel()
    if np.isnan(d).any():
        raise ValueError("signed_rank_p: differences contain NaN; drop undefined values first")
    d = np.where(np.abs(d) <= TIE_TOLERANCE, 0.0, d)
    if d.size == 0:
        return math.nan
    if not np.any(d != 0):
        return 1.0
    nonzero = np.abs(d[d != 0])
    if d.size <= _EXACT_PERMUTATION_MAX and (nonzero.size < d.size or np.unique(nonzero).size < nonzero.size):
        # Zeros or ties in at most 13 values: scipy's ``method="auto"`` runs an exact permutation test over all
        # 2^n sign flips with a statistic it evaluates once per flip (~1 s per test). The same test, with the same
        # statistic vectorised over the flips: the same null distribution, so the same p-value to the last bit.
        return float(stats.permutation_test((d,), _signed_rank_sum, permutation_type="samples", vectorized=True,
                                            n_resamples=_PERMUTATION_RESAMPLES, alternative="two-sided").pvalue)
    return float(stats.wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)


#: Up to this many differences with zeros or ties, ``scipy.stats.wilcoxon(method="auto")`` runs an exact permutation
#: test (2^13 sign flips are fewer than ``PermutationMethod``'s default 9,999 resamples); above it, the normal
#: approximation.
_EXACT_PERMUTATION_MAX = 13
_PERMUTATION_RESAMPLES = 9999


def _signed_rank_sum(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """The Wilcoxon statistic ``R+`` of each row (``zero_method="wilcox"``): the average ranks of ``|x|`` among
    the non-zero values, summed over the positive ones. Ranks are multiples of 1/2, so every sum is exact."""
    x = np.moveaxis(np.asarray(x, dtype=np.float64), axis, -1)
    magnitudes = np.where(x != 0, np.abs(x), np.nan)
    ranks = stats.rankdata(magnitudes, axis=-1, nan_policy="omit")
    return np.sum(np.where(x > 0, ranks, 0.0), axis=-1)


def pooled_signed_rank_p(seeds: ArrayLike, conditions: ArrayLike, differences: ArrayLike) -> float:
    """Wilcoxon p over perturbations, each difference averaged over the seeds it is a test perturbation in.

    ``seeds`` is accepted to check that each (seed, condition) pair appears once.
    """
    return signed_rank_p(_per_perturbation_mean(seeds, conditions, differences))


def bh_qvalues(p: ArrayLike) -> np.ndarray:
    """Benjamini–Hochberg q-values (``scipy.stats.false_discovery_control``, method ``bh``).

    NaN p-values stay NaN; the others are adjusted among themselves (the family is the defined tests).
    """
    p = np.asarray(p, dtype=np.float64)
    q = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        q[ok] = stats.false_discovery_control(p[ok], method="bh")
    return q


@functools.lru_cache(maxsize=4096)  # a pure function of integers; the tables ask for the same (k, n) often
def wilson_ci(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for ``k`` successes of ``n`` (``binomtest(k, n).proportion_ci``); NaN for n = 0."""
    if n == 0:
        return math.nan, math.nan
    ci = stats.binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def fraction_improved(
    seeds: ArrayLike, conditions: ArrayLike, improvement: ArrayLike, confidence: float = 0.95
) -> tuple[float, float, float, int, int]:
    """Share of perturbations with improvement > 0, with its Wilson interval.

    A perturbation that is a test perturbation in several seeds counts once, with its improvement
    averaged over those seeds. Returns ``(fraction, low, high, k, n)``; ties (0) count as not improved.
    """
    d = _per_perturbation_mean(seeds, conditions, improvement)
    n, k = len(d), int((d > 0).sum())
    low, high = wilson_ci(k, n, confidence)
    return (k / n if n else math.nan), low, high, k, n


# ---------------------------------------------------------------------------------------------------
# One metric family of one table row


@dataclass(frozen=True)
class FamilyStats:
    """Everything a table row reports for one metric family (e.g. Pearson r: local, kNN, global).

    All values are over the same perturbations: those where every method's metric is defined.
    ``means`` maps a method (``local``, ``global``, ``knn``) to its pooled estimate; ``improvement``
    maps ``local``/``knn`` to the estimate of its gain over ``global`` (positive = better);
    ``p`` maps ``global``/``knn`` to the Wilcoxon p of LSFT against that method; ``fraction`` maps
    ``local``/``knn`` to ``(fraction, low, high, k, n)`` of :func:`fraction_improved`.
    """

    n_used: int
    n_undefined: int
    means: dict[str, Estimate] = field(default_factory=dict)
    improvement: dict[str, Estimate] = field(default_factory=dict)
    p: dict[str, float] = field(default_factory=dict)
    fraction: dict[str, tuple[float, float, float, int, int]] = field(default_factory=dict)


def _sd(values: Sequence[float]) -> float:
    """SD across seeds (``ddof=1``); NaN for fewer than 2 seeds."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else math.nan


@dataclass(frozen=True)
class FamilySpec:
    """One metric family of a table row: method → metric column (``local`` and ``global`` required,
    ``knn`` optional), the direction of a gain, and whether to run paired tests and fractions."""

    columns: Mapping[str, str]
    higher_is_better: bool
    tests: bool = True

    def __post_init__(self) -> None:
        if "local" not in self.columns or "global" not in self.columns:
            raise ValueError("a metric family needs 'local' and 'global' columns")

    @property
    def gains(self) -> list[str]:
        return [m for m in ("local", "knn") if m in self.columns]


def _family_strata(values: Mapping[str, np.ndarray], seed_rows: list[np.ndarray], spec: FamilySpec) -> list[np.ndarray]:
    """Per seed a (values, perturbations) array: each method's metric, then each gain over global."""
    sign = 1.0 if spec.higher_is_better else -1.0
    base = values[spec.columns["global"]]
    return [
        np.vstack([values[c][idx] for c in spec.columns.values()]
                  + [sign * (values[spec.columns[m]][idx] - base[idx]) for m in spec.gains])
        for idx in seed_rows
    ]


def row_statistics(
    rows: pd.DataFrame,
    specs: Sequence[FamilySpec],
    settings: StatsSettings = StatsSettings(),
    intervals: bool = True,
    p_values: bool = True,
    fractions: bool = True,
) -> list[FamilyStats]:
    """:func:`family_statistics` of several metric families of one table row.

    Families defined on the same perturbations (the usual case: every metric is defined wherever
    a prediction exists) share one bootstrap: their value rows are stacked and resampled together,
    so a row costs one resampling of its perturbations instead of one per family. Each interval is
    that of a separate call with the same seed (the same resampled perturbations). ``p_values`` and
    ``fractions`` restrict the tests of families with ``tests`` to what a table shows.
    """
    values = {c: rows[c].to_numpy(np.float64) for spec in specs for c in spec.columns.values()}
    seeds, conditions = rows["seed"].to_numpy(), rows["condition"].to_numpy()
    masks = [np.logical_and.reduce([~np.isnan(values[c]) for c in spec.columns.values()]) for spec in specs]
    groups: dict[bytes, list[int]] = {}
    for i, mask in enumerate(masks):
        groups.setdefault(mask.tobytes(), []).append(i)
    cis: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    seed_rows_of: dict[int, list[np.ndarray]] = {}
    for members in groups.values():
        used = np.flatnonzero(masks[members[0]])
        seed_rows = [used[seeds[used] == seed] for seed in np.unique(seeds[used])]  # per seed, in row order
        parts = [_family_strata(values, seed_rows, specs[i]) for i in members]
        sizes = [len(specs[i].columns) + len(specs[i].gains) for i in members]
        if intervals and seed_rows:
            low, high = stratified_bootstrap_cis([np.vstack(per_seed) for per_seed in zip(*parts)], settings)
        else:
            low = high = np.full(sum(sizes), math.nan)
        for i, a, b in zip(members, np.cumsum([0, *sizes[:-1]]), np.cumsum(sizes)):
            cis[i], seed_rows_of[i] = (low[a:b], high[a:b]), seed_rows
    out = []
    for i, spec in enumerate(specs):
        used = masks[i]
        tests = (p_values and spec.tests, fractions and spec.tests)
        out.append(_family_stats(values, seeds, conditions, used, seed_rows_of[i], spec, *cis[i], tests, settings))
    return out


def family_statistics(
    rows: pd.DataFrame,
    columns: Mapping[str, str],
    higher_is_better: bool,
    settings: StatsSettings = StatsSettings(),
    tests: bool = True,
    intervals: bool = True,
) -> FamilyStats:
    """Pooled means, CIs, paired tests and fractions improved of one metric family on one table row.

    Parameters
    ----------
    rows
        Per-perturbation rows of one (baseline, K) over the seeds to pool (one seed for a per-seed
        table), already restricted to the test set; columns ``seed``, ``condition`` and ``columns``.
    columns
        Method → metric column, with ``local`` and ``global`` required and ``knn`` optional.
    higher_is_better
        True for correlations (gain = method − global), False for distances and ranks
        (gain = global − method).
    settings
        Bootstrap settings.
    tests
        Also compute Wilcoxon p-values and fractions improved.
    intervals
        Compute bootstrap intervals (False: the estimates carry NaN intervals; for tables that only
        need fractions and counts).
    """
    return row_statistics(rows, [FamilySpec(dict(columns), higher_is_better, tests)], settings, intervals)[0]


def _family_stats(
    values: Mapping[str, np.ndarray],
    seeds: np.ndarray,
    conditions: np.ndarray,
    used: np.ndarray,
    seed_rows: list[np.ndarray],
    spec: FamilySpec,
    low: np.ndarray,
    high: np.ndarray,
    tests: tuple[bool, bool],
    settings: StatsSettings,
) -> FamilyStats:
    """One family's estimates from its defined rows (mask ``used``; ``seed_rows`` per seed) and intervals."""
    columns, higher_is_better = spec.columns, spec.higher_is_better
    sign = 1.0 if higher_is_better else -1.0
    seed_means = {m: [values[c][idx].mean() for idx in seed_rows] for m, c in columns.items()}
    means = {
        m: Estimate(float(np.mean(seed_means[m])) if seed_rows else math.nan, float(low[i]), float(high[i]), _sd(seed_means[m]))
        for i, (m, c) in enumerate(columns.items())
    }
    improvement, p, fraction = {}, {}, {}
    with_p, with_fraction = tests
    for i, method in enumerate(spec.gains, start=len(columns)):
        # The point value is the difference of the two reported means, bit for bit.
        m, g = means[method].mean, means["global"].mean
        per_seed = [sign * (a - b) for a, b in zip(seed_means[method], seed_means["global"])]
        improvement[method] = Estimate(m - g if higher_is_better else g - m, float(low[i]), float(high[i]), _sd(per_seed))
        if with_fraction:
            d = sign * (values[columns[method]][used] - values[columns["global"]][used])
            fraction[method] = fraction_improved(seeds[used], conditions[used], d, settings.confidence)
    if with_p:
        for other in (m for m in ("global", "knn") if m in columns):
            d = values[columns["local"]][used] - values[columns[other]][used]
            p[other] = pooled_signed_rank_p(seeds[used], conditions[used], d)
    return FamilyStats(int(used.sum()), int((~used).sum()), means, improvement, p, fraction)
