"""The pandas-free pieces of the fit and LSFT jobs: names (``Labels``), table columns and their Parquet file."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lsftbench.io import constant_column as column
from lsftbench.io import write_parquet
from lsftbench.labels import Labels


def test_labels_look_up_like_a_pandas_index():
    names = ["ctrl", "A+ctrl", "B+ctrl", "C+ctrl"]
    labels, index = Labels(names, name="condition"), pd.Index(names)
    keys = ["C+ctrl", "missing", "ctrl", "A+ctrl"]
    np.testing.assert_array_equal(labels.get_indexer(keys), index.get_indexer(keys))
    assert labels.get_loc("B+ctrl") == index.get_loc("B+ctrl") == 2
    with pytest.raises(KeyError):
        labels.get_loc("missing")
    assert "A+ctrl" in labels and "missing" not in labels and 3 not in labels
    np.testing.assert_array_equal(labels.isin(["B+ctrl", "ctrl", "x"]), index.isin(["B+ctrl", "ctrl", "x"]))
    assert labels[1] == "A+ctrl" and labels[-1] == "C+ctrl"
    assert labels[1:3].tolist() == ["A+ctrl", "B+ctrl"] and labels[1:3].name == "condition"
    assert labels[np.array([3, 0])].tolist() == ["C+ctrl", "ctrl"]
    assert labels[labels.isin(["A+ctrl", "C+ctrl"])].tolist() == ["A+ctrl", "C+ctrl"]
    assert labels.equals(index) and labels.equals(names) and not labels.equals(names[::-1])
    assert labels == Labels(names) and labels == names and labels != names[:2]
    assert pd.Index(labels).equals(index) and list(labels) == names and len(labels) == 4
    np.testing.assert_array_equal(np.asarray(labels, dtype=str), np.array(names))


def test_duplicate_labels_are_an_error_on_look_up():
    labels = Labels(["G1", "G2", "G1"], name="gene")
    assert len(labels) == 3  # holding duplicates is allowed, as in pandas ...
    with pytest.raises(ValueError, match="1 duplicate genes, e.g. G1"):
        labels.get_indexer(["G2"])  # ... looking them up is not (pandas: InvalidIndexError)


def test_columns_are_read_back_as_the_frame_pandas_writes(tmp_path):
    """``write_parquet`` of NumPy columns (no pandas in the writer) reads back equal to ``DataFrame.to_parquet``."""
    n = 4
    columns = {
        "dataset": column(n, "replogle_k562_essential", str),  # not truncated to 1 character (np.full would)
        "seed": column(n, 2, np.int64),
        "top_pct": column(n, 0.5, np.float64),
        "condition": np.array(["A+ctrl", "BÉ+ctrl", "", "D+ctrl"]),
        "pearson_r": np.array([0.5, np.nan, -1.0, 1e-300]),
        "refit_embeddings": column(n, True, bool),
        "flags": np.array([True, False, False, True]),
    }
    write_parquet(columns, tmp_path / "columns.parquet")
    pd.DataFrame(columns).to_parquet(tmp_path / "frame.parquet", index=False)
    ours, theirs = pd.read_parquet(tmp_path / "columns.parquet"), pd.read_parquet(tmp_path / "frame.parquet")
    pd.testing.assert_frame_equal(ours, theirs)
    assert ours["dataset"].tolist() == ["replogle_k562_essential"] * n
    empty = {"condition": np.array([], dtype=str), "pearson_r": np.zeros(0), "seed": column(0, 1, np.int64)}
    write_parquet(empty, tmp_path / "empty.parquet")
    read = pd.read_parquet(tmp_path / "empty.parquet")
    assert read.shape == (0, 3) and read.dtypes.tolist() == [object, np.float64, np.int64]


def test_bad_columns_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unequal length"):
        write_parquet({"a": np.zeros(2), "b": np.zeros(3)}, tmp_path / "x.parquet")
    with pytest.raises(ValueError, match="not one-dimensional"):
        write_parquet({"a": np.zeros((2, 2))}, tmp_path / "x.parquet")
    assert not list(tmp_path.iterdir())
