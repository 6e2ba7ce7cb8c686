"""The expected log-normalised expression of the synthetic count model, per condition and gene (no sampling).

A cell of condition ``c`` has library size ``L = L₀·u``, ``u = exp(σ z)`` with ``z ~ N(0, 1)``; gene ``g`` has
count ``K ~ Poisson(Λ)``, ``Λ = L m_cg G / r`` with ``G ~ Gamma(r, 1)`` (negative binomial with mean ``L m_cg``,
``m_cg = base_g exp(shift_cg)``), and the value the files hold is ``log1p(10⁴ K / T)``, ``T`` the cell's total
count. ``T`` is replaced by its mean ``L s_c`` (``s_c = Σ_g m_cg``; its noise, a few per cent, moves the
expectation by about 10⁻³), so with ``a_c = 10⁴ / (L₀ s_c)`` and ``μ_cg = L₀ m_cg``:

    E[x_cg] = F(a_c, μ_cg) = E_z E_G E_K log1p(a_c K / u),   K ~ Poisson(μ_cg u G / r).

``F`` is integrated over ``z`` by Gauss–Hermite and over ``G`` by generalised Gauss–Laguerre quadrature; the
Poisson expectation is an exact sum for ``Λ <`` :data:`EXACT_BELOW` and its moment expansion to sixth order
above (error below 10⁻⁴). ``F`` is tabulated on a grid of ``(log a, log μ)`` and interpolated by a bicubic
spline, so the cost does not grow with the number of conditions × genes.
"""

from __future__ import annotations

import numpy as np
from scipy.interpolate import RectBivariateSpline
from scipy.special import gammaln, roots_genlaguerre

__all__ = ["EXACT_BELOW", "expected_log_normalised", "expected_log1p"]

#: Poisson rates below this are summed exactly (to 3 × this count), above it expanded in moments.
EXACT_BELOW = 40.0
_LIBRARY_NODES = 10
_GAMMA_NODES = 16
_GRID_PER_DECADE = 30
_ROWS_PER_BLOCK = 16_384


def expected_log_normalised(
    base: np.ndarray, log_shift: np.ndarray, library_size: float, dispersion: float, library_sd: float,
    target_sum: float,
) -> np.ndarray:
    """Expected mean log-normalised expression of each condition (rows of ``log_shift``) and gene.

    Parameters
    ----------
    base
        Each gene's share of a control cell's counts (sums to 1).
    log_shift
        Conditions × genes: the true log-mean shifts (zeros for the control).
    library_size, library_sd
        Median library size ``L₀`` and the standard deviation ``σ`` of its log.
    dispersion
        Gamma shape ``r`` of the Poisson rate.
    target_sum
        Counts per cell after ``normalize_total``.

    Returns
    -------
    numpy.ndarray
        Conditions × genes, what the mean of infinitely many cells of each condition would be.
    """
    means = base[None, :] * np.exp(np.asarray(log_shift, dtype=np.float64))
    scale = target_sum / (library_size * means.sum(axis=1))
    mu = library_size * means
    log_a = np.log(np.geomspace(scale.min() / 1.02, scale.max() * 1.02, 6))
    decades = np.log10(mu.max() * 2) - np.log10(mu.min() / 2)
    log_mu = np.log(np.geomspace(mu.min() / 2, mu.max() * 2, max(8, int(np.ceil(decades * _GRID_PER_DECADE)) + 1)))
    table = expected_log1p(np.exp(log_a)[:, None], np.exp(log_mu)[None, :], dispersion, library_sd)
    spline = RectBivariateSpline(log_a, log_mu, table)
    return spline.ev(np.broadcast_to(np.log(scale)[:, None], mu.shape), np.log(mu))


def expected_log1p(scale: np.ndarray, mu: np.ndarray, dispersion: float, library_sd: float) -> np.ndarray:
    """``F(a, μ) = E_z E_G E_K log1p(a K / u)`` (module docstring) for broadcastable arrays ``scale`` (a), ``mu``."""
    z, wz = np.polynomial.hermite_e.hermegauss(_LIBRARY_NODES)
    g, wg = roots_genlaguerre(_GAMMA_NODES, dispersion - 1.0)
    u = np.exp(library_sd * z)
    weights = (wz / wz.sum())[:, None] * (wg / wg.sum())[None, :]
    a, m = np.broadcast_arrays(np.asarray(scale, dtype=np.float64), np.asarray(mu, dtype=np.float64))
    c = a[..., None, None] / u[:, None]
    lam = m[..., None, None] * u[:, None] * g[None, :] / dispersion
    c, lam = np.broadcast_arrays(c, lam)
    values = poisson_log1p(c.ravel(), lam.ravel()).reshape(c.shape)
    return (values * weights).sum(axis=(-2, -1))


def poisson_log1p(c: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """``E log1p(c K)`` for ``K ~ Poisson(lam)``, elementwise (1-d arrays)."""
    out = np.empty_like(lam)
    small = np.flatnonzero(lam < EXACT_BELOW)
    k = np.arange(int(3 * EXACT_BELOW) + 1, dtype=np.float64)
    log_k_factorial = gammaln(k + 1.0)
    for start in range(0, small.size, _ROWS_PER_BLOCK):
        rows = small[start : start + _ROWS_PER_BLOCK]
        rate = lam[rows, None]
        pmf = np.exp(k * np.log(rate) - rate - log_k_factorial)
        out[rows] = (pmf * np.log1p(c[rows, None] * k)).sum(axis=1)
    big = np.flatnonzero(lam >= EXACT_BELOW)
    cb, lb = c[big], lam[big]
    y = 1.0 + cb * lb
    r = cb / y  # the n-th derivative of log1p(c k) at lam is (-1)^(n+1) (n-1)! r^n
    out[big] = (
        np.log(y)
        - r**2 * lb / 2
        + r**3 * lb / 3
        - r**4 * (3 * lb**2 + lb) / 4
        + r**5 * (10 * lb**2 + lb) / 5
        - r**6 * (15 * lb**3 + 25 * lb**2 + lb) / 6
    )
    return out
