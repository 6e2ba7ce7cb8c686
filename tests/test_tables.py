"""Aggregation into the note's tables on hand-made rows with known answers (SPEC 7-8)."""

import numpy as np
import pandas as pd
import pytest

from lsftbench.metrics import pearson_columns, perturbation_metrics, rank_metrics, top_expressed
from lsftbench.tables import fraction_improved_table, per_perturbation, performance_table, to_markdown


def _rows():
    lsft = pd.DataFrame(
        {
            "dataset": "d",
            "baseline": ["b1", "b1", "b1", "b1"],
            "top_pct": [1.0, 1.0, 5.0, 5.0],
            "condition": ["X+ctrl", "Y+ctrl", "X+ctrl", "Y+ctrl"],
            "local_pearson_r": [0.5, 0.9, 0.7, 0.1],
            "local_l2": [2.0, 1.0, 1.5, 3.0],
            "local_pearson_delta_top1000": [0.5, 0.9, 0.7, 0.1],
            "local_l2_top1000": [2.0, 1.0, 1.5, 3.0],
            "knn_pearson_r": [0.4, 0.8, 0.6, 0.6],
            "knn_l2": [2.5, 1.0, 1.0, 1.0],
            "knn_pearson_delta_top1000": [0.4, 0.8, 0.6, 0.6],
            "knn_l2_top1000": [2.5, 1.0, 1.0, 1.0],
            "train_size": [1, 1, 3, 3],
            "mean_similarity": [0.9, 0.8, 0.7, 0.6],
            "n_genes": 10,
        }
    )
    glob = pd.DataFrame(
        {
            "baseline": ["b1", "b1"],
            "condition": ["X+ctrl", "Y+ctrl"],
            "pearson_r": [0.6, 0.5],
            "l2": [1.8, 2.0],
            "pearson_delta_top1000": [0.6, 0.5],
            "l2_top1000": [1.8, 2.0],
        }
    )
    return per_perturbation(lsft, glob)


def test_improvements_and_means():
    df = _rows()
    np.testing.assert_allclose(df["improvement_r"], [-0.1, 0.4, 0.1, -0.4])
    np.testing.assert_allclose(df["improvement_l2"], [-0.2, 1.0, 0.3, -1.0])
    perf = performance_table(df)
    assert list(perf.columns[:10]) == [
        "Baseline", "Top %", "Local Pearson r", "Baseline Pearson r", "Improvement (r)", "Local L2",
        "Baseline L2", "Improvement (L2)", "Train Size", "Mean Similarity",
    ]
    row = perf.set_index("Top %").loc["1%"]
    expected = {"Local Pearson r": 0.7, "Baseline Pearson r": 0.55, "Improvement (r)": 0.15,
                "Improvement (L2)": 0.4, "Mean Similarity": 0.85, "Test Perturbations": 2}
    for col, value in expected.items():
        assert row[col] == pytest.approx(value, abs=1e-12), col


def test_fraction_improved_strictly_positive():
    frac = fraction_improved_table(_rows()).set_index("Top %")
    assert frac.loc["1%", "Fraction Improved (Pearson r)"] == 0.5
    assert frac.loc["5%", "Fraction Improved (L2)"] == 0.5
    assert frac.loc["5%", "kNN Fraction Improved (L2)"] == 1.0  # 2.0 - 1.0 > 0 and 1.8 - 1.0 > 0


def test_markdown_formats_fractions_as_percent():
    md = to_markdown(fraction_improved_table(_rows()), title="T")
    assert "| b1 | 1% | 50.00% |" in md and md.startswith("## T")


def test_metrics_known_answers():
    obs = np.array([[1.0, 0.0], [2.0, 1.0], [3.0, 5.0]])
    pred = np.array([[2.0, 0.0], [4.0, 1.0], [6.0, 5.0]])
    np.testing.assert_allclose(pearson_columns(pred, obs), [1.0, 1.0])
    m = perturbation_metrics(pred, obs, np.array([0, 1]))
    np.testing.assert_allclose(m["l2"], [np.sqrt(1 + 4 + 9), 0.0])
    np.testing.assert_allclose(m["l2_top1000"], [np.sqrt(5), 0.0])
    assert list(top_expressed(np.array([0.1, 5.0, 3.0, 5.0]), 2)) == [1, 3]


def test_rank_metric_perfect_and_collapsed():
    obs = np.random.default_rng(0).normal(size=(20, 6))
    perfect = rank_metrics(obs.copy(), obs)
    assert (perfect["rank"] == 0).all()
    collapsed = rank_metrics(np.repeat(obs.mean(1, keepdims=True), 6, axis=1), obs)
    assert (collapsed["rank"] == 1).all()  # every prediction is equally close: ties count


def test_rank_metric_matches_definition():
    rng = np.random.default_rng(3)
    obs, pred = rng.normal(size=(15, 7)), rng.normal(size=(15, 7))
    got = rank_metrics(pred, obs)
    p = obs.shape[1]
    d = lambda a, b: np.linalg.norm(a - b)  # noqa: E731
    for i in range(p):
        own = d(pred[:, i], obs[:, i])
        rank = sum(d(pred[:, j], obs[:, i]) <= own for j in range(p) if j != i) / (p - 1)
        rank_t = sum(d(pred[:, i], obs[:, j]) <= own for j in range(p) if j != i) / (p - 1)
        assert got["rank"][i] == pytest.approx(rank) and got["rank_transposed"][i] == pytest.approx(rank_t)
