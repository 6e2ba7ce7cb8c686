"""Per-perturbation metrics: centred Pearson r, rank metrics and the mode-collapse flag (SPEC 7)."""

import numpy as np
import pytest
from scipy.stats import pearsonr

from lsftbench.evaluation.metrics import (
    COMPARISON_COLUMNS,
    comparison_metrics,
    discrimination_scores,
    centered_pearson_columns,
    pearson_columns,
    perturbation_metrics,
    rank_metrics,
    spread_ratio,
)


def _reference_ranks(pred, obs, distance, ties):
    """The definition, one pair at a time."""
    def d(a, b):
        if distance == "l2":
            return np.linalg.norm(a - b)
        return 1 - a @ b / (np.linalg.norm(a) * np.linalg.norm(b))

    p = obs.shape[1]
    weight = 1.0 if ties == "le" else 0.5
    out = np.zeros((p, 2))
    for i in range(p):
        own = d(pred[:, i], obs[:, i])
        others = [j for j in range(p) if j != i]
        for k, dist in enumerate([[d(pred[:, j], obs[:, i]) for j in others], [d(pred[:, i], obs[:, j]) for j in others]]):
            dist = np.array(dist)
            close = np.isclose(dist, own, rtol=1e-9, atol=1e-12)
            out[i, k] = ((dist < own) & ~close).sum() + weight * close.sum()
    return out / (p - 1)


def test_centered_pearson_equals_plain_when_training_mean_is_zero():
    rng = np.random.default_rng(0)
    pred, obs = rng.normal(size=(30, 5)), rng.normal(size=(30, 5))
    np.testing.assert_array_equal(centered_pearson_columns(pred, obs, np.zeros(30)), pearson_columns(pred, obs))


def test_centered_pearson_matches_scipy_on_shifted_profiles():
    rng = np.random.default_rng(1)
    pred, obs, m = rng.normal(size=(40, 4)), rng.normal(size=(40, 4)), rng.normal(size=40)
    expected = [pearsonr(pred[:, i] - m, obs[:, i] - m).statistic for i in range(4)]
    np.testing.assert_allclose(centered_pearson_columns(pred, obs, m), expected, rtol=1e-12)


def test_centered_pearson_of_the_train_mean_prediction_is_undefined():
    rng = np.random.default_rng(2)
    obs, m = rng.normal(size=(20, 3)), rng.normal(size=20)
    assert np.isnan(centered_pearson_columns(np.repeat(m[:, None], 3, axis=1), obs, m)).all()
    with pytest.raises(ValueError, match="genes"):
        centered_pearson_columns(obs, obs, m[:5])


def test_perturbation_metrics_adds_the_centred_column_only_with_a_centre():
    rng = np.random.default_rng(3)
    pred, obs, m = rng.normal(size=(12, 4)), rng.normal(size=(12, 4)), rng.normal(size=12)
    plain = perturbation_metrics(pred, obs, np.arange(5))
    assert "centered_pearson_r" not in plain.columns
    with_m = perturbation_metrics(pred, obs, np.arange(5), m)
    np.testing.assert_allclose(with_m["centered_pearson_r"], centered_pearson_columns(pred, obs, m))
    np.testing.assert_array_equal(with_m["pearson_r"], plain["pearson_r"])


@pytest.mark.parametrize("distance", ["l2", "cosine"])
def test_perfect_predictions_rank_zero(distance):
    obs = np.random.default_rng(4).normal(size=(25, 9))
    got = rank_metrics(obs.copy(), obs, distance=distance)
    assert (got["rank"] == 0).all() and (got["rank_transposed"] == 0).all()
    assert spread_ratio(obs.copy(), obs) == pytest.approx(1.0)


def test_constant_prediction_ranks_and_has_no_spread():
    obs = np.random.default_rng(5).normal(size=(30, 11))
    constant = np.repeat(obs.mean(axis=1, keepdims=True), 11, axis=1)
    le = rank_metrics(constant, obs)
    assert (le["rank"] == 1).all()  # SPEC's ≤: every other (identical) prediction ties
    mid = rank_metrics(constant, obs, ties="mid")
    assert (mid["rank"] == 0.5).all()
    # transposed: the observations' distances to the one profile are ranked, mean exactly 0.5
    assert le["rank_transposed"].mean() == pytest.approx(0.5, abs=1e-12)
    assert spread_ratio(constant, obs) < 1e-7


@pytest.mark.parametrize("distance", ["l2", "cosine"])
@pytest.mark.parametrize("ties", ["le", "mid"])
@pytest.mark.parametrize("block", [None, 1, 4])
def test_rank_metrics_match_the_definition(distance, ties, block):
    rng = np.random.default_rng(6)
    obs, pred = rng.normal(size=(15, 9)), rng.normal(size=(15, 9))
    pred[:, 3] = pred[:, 5]  # identical predictions tie
    got = rank_metrics(pred, obs, distance=distance, ties=ties, block_columns=block)
    np.testing.assert_allclose(got.to_numpy(), _reference_ranks(pred, obs, distance, ties), atol=1e-12)


def test_rank_blocks_do_not_change_large_inputs():
    rng = np.random.default_rng(7)
    obs = rng.normal(size=(50, 1200))
    pred = obs + rng.normal(scale=2.0, size=obs.shape)
    whole = rank_metrics(pred, obs, block_columns=1200)
    blocked = rank_metrics(pred, obs, block_columns=97)
    np.testing.assert_array_equal(whole.to_numpy(), blocked.to_numpy())
    assert 0 < whole["rank"].mean() < 0.5


def test_cosine_rank_of_a_zero_vector_is_nan_and_left_out():
    rng = np.random.default_rng(8)
    obs, pred = rng.normal(size=(10, 5)), rng.normal(size=(10, 5))
    pred[:, 2] = 0.0
    got = rank_metrics(pred, obs, distance="cosine")
    assert np.isnan(got["rank"][2]) and np.isnan(got["rank_transposed"][2])
    sub = rank_metrics(pred[:, [0, 1, 3, 4]], obs[:, [0, 1, 3, 4]], distance="cosine")
    # the others' ranks compare with the 3 comparable predictions only, as without column 2
    np.testing.assert_allclose(got["rank"].to_numpy()[[0, 1, 3, 4]], sub["rank"])


def test_rank_single_perturbation_and_bad_arguments():
    assert rank_metrics(np.ones((3, 1)), np.ones((3, 1)))["rank"].isna().all()
    with pytest.raises(ValueError, match="distance"):
        rank_metrics(np.ones((3, 2)), np.ones((3, 2)), distance="manhattan")
    with pytest.raises(ValueError, match="shape"):
        rank_metrics(np.ones((3, 2)), np.ones((3, 3)))


def test_spread_ratio_tells_collapsed_predictions_from_weak_ones():
    """SPEC 7: the same prediction for every perturbation has spread 0 and is flagged; predictions that vary
    but carry little signal have a rank near 0.5 and are not flagged; a perfect prediction has spread 1."""
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(200, 30))
    constant = np.repeat(obs.mean(axis=1, keepdims=True), 30, axis=1)
    noise = rng.normal(size=obs.shape)  # varies like the data, no signal
    assert spread_ratio(constant, obs) == pytest.approx(0.0, abs=1e-7)
    assert spread_ratio(obs, obs) == pytest.approx(1.0)
    assert spread_ratio(2 * obs, obs) == pytest.approx(2.0)
    assert spread_ratio(noise, obs) == pytest.approx(1.0, abs=0.1)
    assert abs(rank_metrics(noise, obs)["rank"].mean() - 0.5) < 0.1  # the old rank-margin flag would fire here
    pairs = [np.linalg.norm(obs[:, i] - obs[:, j]) for i in range(30) for j in range(i + 1, 30)]
    half = 0.5 * obs + 0.5 * obs.mean(axis=1, keepdims=True)
    assert spread_ratio(half, obs) == pytest.approx(0.5 * np.mean(pairs) / np.mean(pairs))
    assert np.isnan(spread_ratio(obs[:, :1], obs[:, :1]))


def test_mode_collapse_column_flags_constant_predictions_in_the_table():
    """``add_spread``: per row the spread of each method (pooled: the mean of the per-seed spreads) and the
    methods below metrics.mode_collapse_spread named in ``Mode Collapse``."""
    import pandas as pd

    from lsftbench.report.aggregate import add_spread

    spread = pd.DataFrame(
        [(1, "mean_response", np.nan, "global", 0.0), (2, "mean_response", np.nan, "global", 0.0),
         (1, "mean_response", 1.0, "local", 0.5), (2, "mean_response", 1.0, "local", 0.7),
         (1, "mean_response", 1.0, "knn", 0.5), (2, "mean_response", 1.0, "knn", 0.7),
         (1, "lpm", np.nan, "global", 0.8), (2, "lpm", np.nan, "global", 0.6),
         (1, "lpm", 1.0, "local", 0.05), (2, "lpm", 1.0, "local", 0.09),
         (1, "lpm", 1.0, "knn", 0.3), (2, "lpm", 1.0, "knn", 0.5)],
        columns=["seed", "baseline", "top_pct", "method", "spread"],
    )
    table = pd.DataFrame({"Baseline": ["lpm", "mean_response"], "Top %": ["1%", "1%"]})
    pooled = add_spread(table, spread, None, threshold=0.1).set_index("Baseline")
    assert pooled.loc["lpm", "Local Spread"] == pytest.approx(0.07) and pooled.loc["lpm", "Baseline Spread"] == 0.7
    assert pooled.loc["lpm", "Mode Collapse"] == "Local (spread 0.07)"
    assert pooled.loc["mean_response", "Mode Collapse"] == "Baseline (spread 0.00)"
    seed2 = add_spread(table, spread, 2, threshold=0.1).set_index("Baseline")
    assert seed2.loc["lpm", "Mode Collapse"] == "Local (spread 0.09)" and seed2.loc["lpm", "kNN Spread"] == 0.5


@pytest.mark.parametrize("exclude_target_gene", [False, True])
@pytest.mark.parametrize("rank_distance", ["l2", "cosine"])
def test_comparison_metrics_equal_the_separate_functions(rank_distance, exclude_target_gene):
    """The shared product changes no number: every column equals its own function's, bit for bit."""
    rng = np.random.default_rng(7)
    pred, obs = rng.normal(size=(300, 40)), rng.normal(size=(300, 40))
    pred[:, 5] = pred[:, 6]  # a tie
    targets = rng.integers(-1, 300, size=(40, 2))
    values, spread = comparison_metrics(pred, obs, targets, rank_distance=rank_distance,
                                        exclude_target_gene=exclude_target_gene)
    ranks = rank_metrics(pred, obs, distance=rank_distance, exclude=targets if exclude_target_gene else None)
    expected = {"rank": ranks["rank"].to_numpy(), "rank_transposed": ranks["rank_transposed"].to_numpy(),
                **discrimination_scores(pred, obs, exclude=targets)}
    assert list(values) == list(COMPARISON_COLUMNS) == list(expected)
    for name, column in values.items():
        np.testing.assert_array_equal(column, expected[name], err_msg=name)
    assert spread == spread_ratio(pred, obs)
