"""Figures render from hand-made frames that follow the table contracts, label leaks, and rerun byte-identically."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

from lsftbench.report.plots import (
    forest_figure,
    improvement_distribution_figure,
    local_vs_global_figure,
    progress_bar_figure,
    save_figure,
)

SRC = Path(__file__).resolve().parents[1] / "src"
BASELINES = ("lpm_selftrained", "lpm_randomPertEmb", "lpm_scgptGeneEmb")
PCTS = ("1%", "5%", "10%")
VALUES = ("Local Pearson r", "Baseline Pearson r", "kNN Pearson r", "Improvement (r)", "kNN Improvement (r)")


def performance_table(baselines=BASELINES, pcts=PCTS) -> pd.DataFrame:
    """A pooled performance table: improvement +0.05 ± 0.01 for selftrained (CI excludes 0), else ± 0.05."""
    rows = []
    for i, baseline in enumerate(baselines):
        for j, pct in enumerate(pcts):
            glob = 0.3 + 0.1 * i
            imp = 0.05 if baseline == "lpm_selftrained" else 0.01 * (j - 1)
            half = 0.01 if baseline == "lpm_selftrained" else 0.05
            row = {
                "Baseline": baseline,
                "Top %": pct,
                "Baseline Pearson r": glob,
                "Local Pearson r": glob + imp,
                "kNN Pearson r": glob - 0.02,
                "Improvement (r)": imp,
                "kNN Improvement (r)": -0.02,
                "Synthetic Stand-in": "gene" if baseline == "lpm_scgptGeneEmb" else "",
                "Test Perturbations": 40,
            }
            for value in VALUES:
                row[f"{value} CI low"] = row[value] - half
                row[f"{value} CI high"] = row[value] + half
            rows.append(row)
    return pd.DataFrame(rows)


def progress_table() -> pd.DataFrame:
    """Progress-bar rows: global fit, LSFT 1 %/5 % and kNN 1 % per baseline, for Pearson r and L2; every bound's mean.

    On L2 the second baseline's LSFT 1 % is far worse than the WAP (-328 % of the gap) and its global fit a hair
    below it (-0.2 %)."""
    rows = []
    for metric, wap, bap, bap_method, others in (
        ("Pearson r", 0.2, 0.8, "idealized baseline (uses test data)",
         {"no change": np.nan, "random perturbation embedding": 0.1, "sampling-noise ceiling": 0.9}),
        ("L2", 10.0, 4.0, "sampling-noise ceiling",
         {"no change": 12.0, "random perturbation embedding": 11.0, "idealized baseline (uses test data)": 3.0}),
    ):
        for baseline in BASELINES[:2]:
            for method, pct, frac in (("global", "global", 0.25), ("LSFT", "1%", 0.5), ("LSFT", "5%", 0.75), ("kNN", "1%", 0.1)):
                if metric == "L2" and baseline == BASELINES[1] and method in ("global", "LSFT") and pct != "5%":
                    frac = -3.28 if method == "LSFT" else -0.002
                score = wap + frac * (bap - wap)
                rows.append(
                    {
                        "Baseline": baseline,
                        "Top %": pct,
                        "Method": method,
                        "Metric": metric,
                        "Score": score,
                        "WAP": wap,
                        "WAP method": "train mean",
                        "BAP": bap,
                        "BAP method": bap_method,
                        "% of gap closed": 100 * frac,
                        "% of gap closed SD": 4.0,
                        "train mean": wap,
                        bap_method: bap,
                        **others,
                    }
                )
    return pd.DataFrame(rows)


def per_perturbation_frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = [
        {"seed": seed, "baseline": b, "top_pct": pct, "condition": f"g{c}", "improvement_r": rng.normal(0.02, 0.05), "synthetic_stand_in": ""}
        for seed in (1, 2)
        for b in BASELINES
        for pct in (1.0, 5.0)
        for c in range(8)
    ]
    return pd.DataFrame(rows)


def ytick_labels(ax) -> list[str]:
    return [t.get_text() for t in ax.get_yticklabels()]


def test_forest_one_panel_per_dataset_one_row_per_baseline_and_k():
    tables = {"norman": performance_table(), "k562": performance_table(baselines=BASELINES[:2], pcts=("1%", "10%"))}
    fig = forest_figure(tables, n_seeds=2)
    axes = fig.get_axes()
    assert [ax.get_title() for ax in axes] == ["norman", "k562"]
    assert len(ytick_labels(axes[0])) == 9
    assert len(ytick_labels(axes[1])) == 4
    # rows ordered by baseline, then numeric K (10% after 5%), with the synthetic stand-in marked
    assert ytick_labels(axes[0])[:3] == ["lpm_randomPertEmb · top 1%", "lpm_randomPertEmb · top 5%", "lpm_randomPertEmb · top 10%"]
    assert "lpm_scgptGeneEmb (synthetic gene) · top 1%" in ytick_labels(axes[0])
    assert "2 split seeds pooled" in fig._suptitle.get_text()
    assert "LEAKS TEST DATA" not in fig._suptitle.get_text()
    matplotlib.pyplot.close(fig)


def test_forest_fills_points_whose_ci_excludes_zero():
    fig = forest_figure({"norman": performance_table()}, n_seeds=1, show_knn=False)
    ax = fig.get_axes()[0]
    filled, open_ = {}, {}
    for coll in ax.collections:
        if not hasattr(coll, "get_offsets") or len(coll.get_offsets()) == 0 or coll.get_facecolors().shape[0] == 0:
            continue
        faces = coll.get_facecolors()
        target = open_ if np.allclose(faces[0][:3], 1.0) else filled
        for x, y in coll.get_offsets():
            target[round(float(y))] = float(x)
    labels = ytick_labels(ax)
    selftrained = {i for i, label in enumerate(labels) if label.startswith("lpm_selftrained")}
    # lpm_selftrained: Δr = 0.05, CI [0.04, 0.06] → filled; every other row's CI straddles 0 → open
    assert set(filled) == selftrained
    assert set(open_) == set(range(len(labels))) - selftrained
    assert all(x == pytest.approx(0.05) for x in filled.values())
    # a vertical reference line at 0
    assert any(np.allclose(line.get_xdata(), 0.0) for line in ax.get_lines())
    matplotlib.pyplot.close(fig)


def test_forest_knn_points_drawn_beside():
    fig = forest_figure({"norman": performance_table()}, n_seeds=2, show_knn=True)
    ax = fig.get_axes()[0]
    xs = np.concatenate([c.get_offsets()[:, 0] for c in ax.collections if len(c.get_offsets()) and c.get_facecolors().shape[0]])
    assert np.sum(np.isclose(xs, -0.02)) == 9  # the kNN improvement of every row
    matplotlib.pyplot.close(fig)


def test_local_vs_global_bars_and_error_bars():
    table = performance_table()
    fig = local_vs_global_figure(table, "LSFT vs global fit: norman")
    axes = fig.get_axes()
    assert [ax.get_title() for ax in axes] == ["top 1%", "top 5%", "top 10%"]
    ax = axes[0]
    widths = sorted(round(p.get_width(), 6) for p in ax.patches)
    expected = table[table["Top %"] == "1%"][["Baseline Pearson r", "Local Pearson r", "kNN Pearson r"]].to_numpy().ravel()
    assert widths == sorted(np.round(expected, 6))
    # one CI whisker per bar, spanning CI low → CI high
    segments = [seg for coll in ax.collections for seg in getattr(coll, "get_segments", lambda: [])()]
    spans = sorted(round(float(s[1][0] - s[0][0]), 6) for s in segments)
    assert spans == [0.02] * 3 + [0.1] * 6  # selftrained ± 0.01, the others ± 0.05
    assert "lpm_scgptGeneEmb (synthetic gene)" in ytick_labels(ax)
    matplotlib.pyplot.close(fig)


def test_progress_bar_draws_every_metric_on_the_gap_axis():
    """One panel per metric on a common axis, % of gap closed (0 = WAP, 100 = BAP, right = better for L2 too):
    a bar per global fit and LSFT top-K, the kNN score as a diamond, the seed SD as a whisker, bounds that do
    not bind as dotted lines; a bar far below the WAP clipped with an arrow and its number; "0%", never "-0%"."""
    fig = progress_bar_figure(progress_table(), "Progress: norman")
    axes = [ax for ax in fig.get_axes() if ax.get_title()]
    titles = [ax.get_title() for ax in axes]
    assert [t.split("\n")[0] for t in titles] == ["Pearson r (higher is better)", "L2 (lower is better)"]
    assert "BAP 0.8 (idealized baseline (uses test data))" in titles[0] and "WAP 10 (train mean)" in titles[1]
    r_ax, l2_ax = axes
    assert len(ytick_labels(r_ax)) == 6  # global fit + LSFT 1 % + LSFT 5 % for two baselines; kNN on the LSFT rows
    assert not l2_ax.xaxis_inverted() and r_ax.get_xlim() == l2_ax.get_xlim() == (-100.0, 140.0)
    bars = sorted(round(p.get_width(), 6) for p in r_ax.patches if p.get_x() == 0 and p.get_height() == pytest.approx(0.62))
    assert bars == [25.0, 25.0, 50.0, 50.0, 75.0, 75.0]
    knn = [c.get_offsets()[:, 0] for c in r_ax.collections if c.get_offsets().shape[0] == 6]
    assert len(knn) == 1 and sorted(np.asarray(knn[0])[np.isfinite(knn[0])]) == [10.0, 10.0]  # on the LSFT 1 % rows
    l2_texts = [t.get_text() for t in l2_ax.texts]
    assert "-328%" in l2_texts and "0%" in l2_texts and "-0%" not in l2_texts
    assert any(a.arrow_patch is not None for a in l2_ax.texts if hasattr(a, "arrow_patch"))
    assert "noise ceiling" in [t.get_text() for t in r_ax.texts]  # the bound that does not bind on r
    assert "random emb." in [t.get_text() for t in r_ax.texts]  # the other null method
    dotted = [line for line in r_ax.get_lines() if line.get_linestyle() == ":"]
    assert sorted(round(float(line.get_xdata()[0]), 6) for line in dotted) == [-16.666667, 116.666667]
    matplotlib.pyplot.close(fig)


def test_improvement_distribution_renders():
    fig = improvement_distribution_figure(per_perturbation_frame(), "Per-perturbation improvement")
    ax = fig.get_axes()[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["top 1%", "top 5%"]
    matplotlib.pyplot.close(fig)


@pytest.mark.parametrize(
    "make",
    [
        lambda p: forest_figure({"norman": performance_table()}, n_seeds=2, protocol=p),
        lambda p: local_vs_global_figure(performance_table(), "t", protocol=p),
        lambda p: progress_bar_figure(progress_table(), "t", protocol=p),
        lambda p: improvement_distribution_figure(per_perturbation_frame(), "t", protocol=p),
    ],
)
def test_seed_compat_title_says_it_leaks(make):
    leaky = make("seed_compat")
    clean = make("default")
    assert "LEAKS TEST DATA" in leaky._suptitle.get_text()
    assert "LEAKS TEST DATA" not in clean._suptitle.get_text()
    matplotlib.pyplot.close(leaky)
    matplotlib.pyplot.close(clean)


_RENDER = textwrap.dedent(
    """
    import sys
    sys.path[:0] = [{src!r}, {tests!r}]
    from test_plots import performance_table, progress_table
    from lsftbench.report.plots import forest_figure, progress_bar_figure, save_figure
    out = sys.argv[1]
    save_figure(forest_figure({{"norman": performance_table(), "k562": performance_table()}}, n_seeds=2),
                [out + "/forest.png", out + "/forest.svg"])
    save_figure(progress_bar_figure(progress_table(), "p", protocol="seed_compat"), [out + "/progress.png", out + "/progress.svg"])
    """
)


def test_byte_identical_across_processes(tmp_path):
    script = _RENDER.format(src=str(SRC), tests=str(Path(__file__).parent))
    outputs = []
    for run in ("a", "b"):
        out = tmp_path / run
        out.mkdir()
        subprocess.run([sys.executable, "-c", script, str(out)], check=True)
        outputs.append(out)
    names = sorted(p.name for p in outputs[0].iterdir())
    assert names == ["forest.png", "forest.svg", "progress.png", "progress.svg"]
    assert sorted(p.name for p in outputs[1].iterdir()) == names  # no temporary files left behind
    for name in names:
        assert (outputs[0] / name).read_bytes() == (outputs[1] / name).read_bytes(), name
    svg = (outputs[0] / "forest.svg").read_text()
    assert "<dc:date>" not in svg and "Matplotlib v" not in svg
    assert b"Software" not in (outputs[0] / "forest.png").read_bytes()


def test_save_figure_leaves_rcparams_alone(tmp_path):
    before = matplotlib.rcParams["svg.hashsalt"]
    save_figure(local_vs_global_figure(performance_table(), "t"), [tmp_path / "x.svg"])
    assert matplotlib.rcParams["svg.hashsalt"] == before
    assert (tmp_path / "x.svg").read_text().lstrip().startswith("<?xml")
