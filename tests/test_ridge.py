"""The bilinear ridge model against an independent Kronecker-form computation (SPEC 5)."""

import numpy as np

from lsftbench.model.ridge import predict, solve_y_axb


def vec(m):
    return m.reshape(-1, order="F")


def kronecker_predictions(y, a, b, b_test, lam):
    """vec(K) = (Q ⊗ P)(B ⊗ Aᵀ) vec(Yc), vec(A K B_t) = (B_tᵀ ⊗ A) vec(K)."""
    center = y.mean(axis=1)
    yc = y - center[:, None]
    p = np.linalg.inv(a.T @ a + lam * np.eye(a.shape[1]))
    q = np.linalg.inv(b @ b.T + lam * np.eye(b.shape[0]))
    vec_k = np.kron(q, p) @ (np.kron(b, a.T) @ vec(yc))
    pred = np.kron(b_test.T, a) @ vec_k
    return pred.reshape((a.shape[0], b_test.shape[1]), order="F") + center[:, None]


def test_predictions_equal_kronecker_form():
    rng = np.random.default_rng(7)
    for genes, conds, da, db, lam in [(30, 12, 4, 3, 0.1), (25, 8, 5, 5, 1.0), (40, 20, 2, 6, 0.01)]:
        y = rng.normal(size=(genes, conds))
        a = rng.normal(size=(genes, da))
        b = rng.normal(size=(db, conds))
        b_test = rng.normal(size=(db, 5))
        k, center = solve_y_axb(y, a, b, lam)
        ours = predict(a, k, b_test, center)
        ref = kronecker_predictions(y, a, b, b_test, lam)
        assert np.max(np.abs(ours - ref)) <= 1e-8 * np.max(np.abs(ref))


def test_k_matches_closed_form_and_centre_is_row_mean():
    rng = np.random.default_rng(1)
    y, a, b = rng.normal(size=(20, 9)), rng.normal(size=(20, 3)), rng.normal(size=(4, 9))
    k, center = solve_y_axb(y, a, b, 0.1)
    expected = (
        np.linalg.inv(a.T @ a + 0.1 * np.eye(3)) @ a.T @ (y - y.mean(1, keepdims=True)) @ b.T
        @ np.linalg.inv(b @ b.T + 0.1 * np.eye(4))
    )
    np.testing.assert_allclose(k, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(center, y.mean(axis=1))


def test_explicit_center_is_used():
    rng = np.random.default_rng(2)
    y, a, b = rng.normal(size=(10, 6)), rng.normal(size=(10, 2)), rng.normal(size=(2, 6))
    c = rng.normal(size=10)
    k, center = solve_y_axb(y, a, b, 0.5, center=c)
    np.testing.assert_array_equal(center, c)
    ref_k, _ = solve_y_axb(y - c[:, None] + (y - c[:, None]).mean(1, keepdims=True) * 0, a, b, 0.5, center=np.zeros(10))
    np.testing.assert_allclose(k, ref_k, rtol=1e-12)
