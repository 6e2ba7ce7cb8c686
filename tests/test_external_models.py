"""Models of one's own (SPEC 7.3): their predictions read, checked and scored exactly as a baseline's global fit.

Known answers: the pipeline's own lpm_selftrained global predictions, written as a model file, give that
baseline's per-perturbation metrics back (both quantities, every file form); a model predicting the training
mean is mean_response; cell-level predictions score as their per-condition means. Every bad file is an error
naming the model, the file, the dataset, the split seed and the problem.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from lsftbench.data.mean_expression import read_mean_expression
from lsftbench.embeddings.build import build_embedding
from lsftbench.evaluation.scoring import score_global_fit, score_model
from lsftbench.io import write_h5ad, write_json
from lsftbench.model.external import ExternalModelError, read_predictions

METRICS = ("pearson_r", "l2", "mae", "pearson_delta_top1000", "l2_top1000", "centered_pearson_r")


@pytest.fixture(scope="module")
def files(tmp_path_factory, small_pb, small_split):
    """The small dataset's pseudobulk, a split and the global fits of lpm_selftrained and mean_response."""
    root = tmp_path_factory.mktemp("models")
    write_h5ad(small_pb.copy(), root / "pb.h5ad")
    write_json(small_split, root / "split.json")
    fits = {}
    for name, spec in (("lpm_selftrained", {}), ("mean_response", {"model": "mean", "pert": {"type": "training_pca"}})):
        build_embedding(spec, small_pb, small_split, 4, dataset="small").save(root / f"{name}.npz")
        fits[name] = score_global_fit("default", root / "pb.h5ad", root / "split.json", root / f"{name}.npz", ridge=0.1,
                                      top_genes=50, min_predictable_tests=1,
                                      keys={"dataset": "small", "seed": 1, "baseline": name})
    pb = read_mean_expression(root / "pb.h5ad")
    ctrl = np.asarray(pb.X)[pb.obs_names.get_loc("ctrl")]
    return {"root": root, "fits": fits, "genes": list(pb.var_names), "ctrl": ctrl, "split": small_split}


def _score(files, path, quantity):
    return score_model(path, files["root"] / "pb.h5ad", files["root"] / "split.json", quantity=quantity, top_genes=50,
                       keys={"dataset": "small", "seed": 1, "model": "mine"})


def _frame(files, fit, quantity, shuffle=True):
    """A fit's predictions as conditions × genes (rows shuffled, bare names for half of them, one extra gene)."""
    values = fit.predicted.T + (files["ctrl"] if quantity == "expression" else 0.0)
    frame = pd.DataFrame(values, index=list(fit.problem.test), columns=files["genes"])
    if shuffle:
        frame = frame.sample(frac=1.0, random_state=0)
        frame.index = [c.split("+")[0] if i % 2 else c for i, c in enumerate(frame.index)]  # G+ctrl and bare G
    frame["NOT_MEASURED"] = 1.0
    return frame


def _write(frame: pd.DataFrame, path, form: str):
    if form == "h5ad":
        write_h5ad(ad.AnnData(X=frame.to_numpy(), obs=pd.DataFrame(index=frame.index.astype(str)),
                              var=pd.DataFrame(index=frame.columns.astype(str))), path)
    elif form == "cells":  # three cells per condition around its mean: averaged per condition
        rng = np.random.default_rng(0)
        noise = rng.normal(0, 0.1, (3, *frame.shape))
        noise -= noise.mean(axis=0)
        x = np.concatenate([frame.to_numpy() + n for n in noise])
        obs = pd.DataFrame({"condition": np.tile(frame.index.astype(str), 3)}, index=[f"c{i}" for i in range(len(x))])
        write_h5ad(ad.AnnData(X=x, obs=obs, var=pd.DataFrame(index=frame.columns.astype(str))), path)
    elif form == "parquet":
        frame.rename_axis("condition").reset_index().to_parquet(path)
    else:
        frame.rename_axis("condition").reset_index().to_csv(path, sep="\t" if form == "tsv" else ",", index=False)
    return path


@pytest.mark.parametrize("quantity", ["expression", "delta"])
@pytest.mark.parametrize("form,suffix", [("h5ad", "h5ad"), ("cells", "h5ad"), ("csv", "csv"), ("tsv", "tsv"),
                                         ("parquet", "parquet")])
def test_own_global_predictions_as_a_model_reproduce_the_baseline(files, tmp_path, quantity, form, suffix):
    fit = files["fits"]["lpm_selftrained"]
    path = _write(_frame(files, fit, quantity), tmp_path / f"pred.{suffix}", form)
    scored = _score(files, path, quantity)
    assert scored.conditions == list(fit.problem.test) and not scored.missing
    for m in METRICS:
        np.testing.assert_allclose(scored.table[m], fit.table[m], rtol=1e-12, atol=1e-12, err_msg=m)
    assert any("ignored 1 genes the dataset does not measure" in n for n in scored.notes)


def test_training_mean_model_is_mean_response(files, tmp_path):
    fit = files["fits"]["mean_response"]
    frame = _frame(files, fit, "delta", shuffle=False)
    scored = _score(files, _write(frame, tmp_path / "mean.csv", "csv"), "delta")
    for m in METRICS:
        if m == "centered_pearson_r":  # Δ̂ − m is constant: undefined for both
            assert np.isnan(scored.table[m]).all() and np.isnan(fit.table[m]).all()
            continue
        np.testing.assert_allclose(scored.table[m], fit.table[m], rtol=1e-12, atol=1e-13, err_msg=m)


def test_cell_level_predictions_score_as_their_means(files, tmp_path):
    frame = _frame(files, files["fits"]["lpm_selftrained"], "expression")
    cells = _score(files, _write(frame, tmp_path / "cells.h5ad", "cells"), "expression")
    means = _score(files, _write(frame, tmp_path / "means.h5ad", "h5ad"), "expression")
    for m in METRICS:
        np.testing.assert_allclose(cells.table[m], means.table[m], rtol=1e-12, atol=1e-13)
    assert any("cell-level" in n for n in cells.notes)


def test_a_partial_model_predicts_what_it_has_and_training_rows_are_ignored(files, tmp_path):
    fit = files["fits"]["lpm_selftrained"]
    frame = _frame(files, fit, "expression", shuffle=False)
    dropped = list(fit.problem.test[:3])
    frame = frame.drop(index=dropped)
    frame.loc[files["split"]["train"][1]] = frame.iloc[0]  # a training condition: ignored
    scored = _score(files, _write(frame, tmp_path / "partial.csv", "csv"), "expression")
    assert scored.missing == dropped and scored.conditions == list(fit.problem.test[3:])
    assert any("ignored predictions for 1 training or validation conditions" in n for n in scored.notes)


def _read(files, path, quantity="expression"):
    return read_predictions(path, quantity=quantity, genes=files["genes"], ctrl_mean=files["ctrl"], split=files["split"],
                            model="mine", dataset="small", seed=2)


@pytest.mark.parametrize(
    "case,match",
    [
        ("missing", "the file does not exist"),
        ("unreadable", "not a readable h5ad file"),
        ("nan", "NaN or infinite values in 1 conditions"),
        ("duplicate_condition", "duplicate conditions"),
        ("duplicate_gene", "duplicate genes"),
        ("missing_gene", "1 of the dataset's 120 measured genes are not predicted"),
        ("expression_is_delta", "these look like changes from the control mean; set quantity: delta"),
        ("delta_is_expression", "set quantity: expression"),
        ("no_test", "no test perturbation of the split is predicted"),
        ("tab_csv", "looks tab-separated although its name ends in .csv"),
        ("unknown_type", "unknown file type '.xlsx'"),
    ],
)
def test_bad_files_are_clear_errors(files, tmp_path, case, match):
    fit = files["fits"]["lpm_selftrained"]
    frame = _frame(files, fit, "expression", shuffle=False)
    quantity, path = "expression", tmp_path / "pred.csv"
    if case == "missing":
        path = tmp_path / "absent.h5ad"
    elif case == "unreadable":
        path = tmp_path / "broken.h5ad"
        path.write_bytes(b"not hdf5 at all")
    elif case == "nan":
        frame.iloc[2, 5] = np.nan
    elif case == "duplicate_condition":
        frame = pd.concat([frame, frame.iloc[[0]]])
        path = _write(frame, tmp_path / "dup.tsv", "tsv")
    elif case == "duplicate_gene":
        frame = frame.rename(columns={frame.columns[1]: frame.columns[0]})
    elif case == "missing_gene":
        frame = frame.drop(columns=[files["genes"][7]])
    elif case == "expression_is_delta":
        frame = _frame(files, fit, "delta", shuffle=False)
    elif case == "delta_is_expression":
        quantity = "delta"
    elif case == "no_test":
        frame.index = [f"X{i}+ctrl" for i in range(len(frame))]
    elif case == "tab_csv":
        frame.rename_axis("condition").reset_index().to_csv(path, sep="\t", index=False)
    elif case == "unknown_type":
        path = tmp_path / "pred.xlsx"
        path.write_text("x")
    if case not in ("missing", "unreadable", "duplicate_condition", "tab_csv", "unknown_type"):
        frame.rename_axis("condition").reset_index().to_csv(path, index=False)
    with pytest.raises(ExternalModelError) as err:
        _read(files, path, quantity)
    message = str(err.value)
    assert match in message
    assert message.startswith(f"model 'mine', {path} (dataset small, split seed 2): ")
