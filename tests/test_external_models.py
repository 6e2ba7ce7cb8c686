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
from lsftbench.model.external import QUANTITIES, ExternalModelError, read_predictions

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
        ("duplicate_gene", "duplicate genes: 'SYN"),
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
    _one_line(err.value, path, match)


#: Words a refusal's fix starts with: every message ends with what to do.
FIXES = ("set ", "write", "keep", "rename", "copy", "name ", "predict", "fix", "drop", "replace", "remove", "label")


def _one_line(error: Exception, path, match: str, seed: int = 2) -> str:
    """One line: model, file, dataset, seed, the problem and its fix; never another error's message inside."""
    message = str(error)
    assert match in message, message
    assert message.startswith(f"model 'mine', {path} (dataset small, split seed {seed}): "), message
    assert "\n" not in message and message.count("model 'mine'") == 1 and "ExternalModelError" not in message, message
    assert any(word in message.split("): ", 1)[1] for word in FIXES), f"no fix in {message!r}"
    return message


# ---------------------------------------------------------------------------------------------------
# Files as the field writes them (SPEC 7.3): cell-eval / STATE / Virtual Cell Challenge cells, counts, labels


def _cell_eval_cells(cells: ad.AnnData, conditions, x=None) -> ad.AnnData:
    """The cells of ``conditions`` and the control cells in cell-eval's form: barcodes as obs names,
    ``obs["target_gene"]`` the perturbed gene's symbol or ``non-targeting``, symbols as var names."""
    condition = cells.obs["condition"].astype(str).to_numpy()
    keep = np.flatnonzero(np.isin(condition, [*conditions, "ctrl"]))
    labels = ["non-targeting" if c == "ctrl" else c.split("+")[0] for c in condition[keep]]
    values = (cells.X if x is None else x)[keep]
    return ad.AnnData(X=values, obs=pd.DataFrame({"target_gene": labels}, index=[f"bc{i:06d}" for i in range(len(keep))]),
                      var=pd.DataFrame(index=cells.var["gene_name"].astype(str).to_numpy()))


@pytest.fixture(scope="module")
def cells(small_h5ad):
    return ad.read_h5ad(small_h5ad)


def test_observed_cells_in_cell_eval_form_score_perfectly(files, cells, tmp_path):
    """The observed cells of the test perturbations, as cell-eval writes cells: r = 1 and L2 = 0 for each."""
    path = tmp_path / "observed_cells.h5ad"
    write_h5ad(_cell_eval_cells(cells, files["split"]["test"]), path)
    scored = _score(files, path, "expression")
    measured = [c for c in files["split"]["test"]]
    assert scored.conditions == measured and not scored.missing
    np.testing.assert_allclose(scored.table["pearson_r"], 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(scored.table["l2"], 0.0, rtol=0, atol=1e-12)
    assert "labels read from obs['target_gene'] (obs columns: 'target_gene')" in scored.notes
    assert any(n.endswith("control rows ('non-targeting'): the model's own control, not evaluated") for n in scored.notes)
    assert any(n.startswith("cell-level file:") for n in scored.notes)


def test_cells_in_any_order_and_sparse_average_the_same(files, cells, tmp_path):
    """Cells interleaved (not grouped by label) and a sparse X average exactly as grouped dense cells do."""
    import scipy.sparse as sp

    grouped = _cell_eval_cells(cells, files["split"]["test"])
    grouped = grouped[np.argsort(grouped.obs["target_gene"].to_numpy(), kind="stable")].copy()
    grouped.X = np.asarray(grouped.X.toarray() if sp.issparse(grouped.X) else grouped.X)
    shuffled = grouped[np.random.default_rng(1).permutation(grouped.n_obs)].copy()
    shuffled.X = sp.csr_matrix(shuffled.X)
    tables = []
    for name, adata in (("grouped", grouped), ("shuffled", shuffled)):
        write_h5ad(adata, tmp_path / f"{name}.h5ad")
        tables.append(_score(files, tmp_path / f"{name}.h5ad", "expression").table)
    for m in METRICS:
        np.testing.assert_allclose(tables[0][m], tables[1][m], rtol=1e-12, atol=1e-13, err_msg=m)


@pytest.fixture(scope="module")
def counts_data(tmp_path_factory):
    """A dataset made as the synthetic ones are (negative-binomial counts, normalize_total to 10^4, log1p) but
    stored in float64, with its raw counts kept: the counts of a test perturbation are what a Virtual Cell
    Challenge submission holds."""
    from lsftbench.data.cell_totals import write_cell_totals
    from lsftbench.data.pseudobulk import pseudobulk

    rng = np.random.default_rng(7)
    genes = [f"SYN{i:04d}" for i in range(1, 61)]
    perts = [f"{g}+ctrl" for g in genes[:24]]
    conditions = ["ctrl"] * 90 + [p for p in perts for _ in range(int(rng.integers(6, 12)))]
    shift = {p: rng.normal(0, 0.4, len(genes)) for p in perts}
    base = rng.gamma(0.7, 1.0, len(genes)) + 0.05
    log_mean = np.log(6000 * base / base.sum())
    counts = np.vstack([rng.poisson(rng.gamma(8, np.exp(log_mean + (0 if c == "ctrl" else shift[c])) / 8))
                        for c in conditions]).astype(np.float64)
    x = np.log1p(counts / counts.sum(axis=1, keepdims=True) * 1e4)
    obs = pd.DataFrame({"condition": pd.Categorical(conditions)}, index=[f"cell{i:05d}" for i in range(len(x))])
    var = pd.DataFrame({"gene_name": genes}, index=[f"ENSSYN{i:07d}" for i in range(len(genes))])
    root = tmp_path_factory.mktemp("counts")
    data = ad.AnnData(X=x, obs=obs, var=var)
    write_h5ad(data, root / "data.h5ad")
    write_h5ad(pseudobulk(root / "data.h5ad"), root / "pb.h5ad")
    order = list(rng.permutation(perts))
    split = {"train": ["ctrl", *order[:16]], "val": order[16:18], "test": order[18:]}
    write_json(split, root / "split.json")
    summary = write_cell_totals(root / "data.h5ad", root / "cell_totals.json")
    cells = data.copy()
    cells.var_names = genes
    return {"root": root, "split": split, "cells": cells, "counts": counts, "summary": summary}


def _score_counts(d, path, **options):
    return score_model(path, d["root"] / "pb.h5ad", d["root"] / "split.json", quantity="expression", top_genes=50,
                       keys={"dataset": "small", "seed": 1, "model": "mine"}, **options)


def test_counts_per_cell_give_the_numbers_of_the_normalised_cells(counts_data, tmp_path):
    """The same cells as raw counts (scale: counts) and log-normalised: the same numbers to 1e-9, r = 1, L2 = 0."""
    import scipy.sparse as sp

    d = counts_data
    assert d["summary"]["median_total"] == pytest.approx(1e4, rel=1e-12)  # what normalize_total(target_sum=1e4) made
    test = d["split"]["test"]
    log_cells = _cell_eval_cells(d["cells"], test)
    count_cells = _cell_eval_cells(d["cells"], test, x=sp.csr_matrix(d["counts"].astype(np.float32)))
    write_h5ad(log_cells, tmp_path / "log.h5ad")
    write_h5ad(count_cells, tmp_path / "counts.h5ad")
    logged = _score_counts(d, tmp_path / "log.h5ad")
    counted = _score_counts(d, tmp_path / "counts.h5ad", scale="counts", cell_totals=d["root"] / "cell_totals.json")
    assert counted.conditions == logged.conditions == test
    for m in METRICS:
        np.testing.assert_allclose(counted.table[m], logged.table[m], rtol=1e-9, atol=1e-9, err_msg=m)
    np.testing.assert_allclose(counted.table["pearson_r"], 1.0, rtol=0, atol=1e-9)
    np.testing.assert_allclose(counted.table["l2"], 0.0, rtol=0, atol=1e-9)
    assert any(n.startswith("scale counts: each cell scaled to 10000") for n in counted.notes)
    # dense integer counts read the same
    dense = _cell_eval_cells(d["cells"], test, x=d["counts"].astype(np.int32))
    write_h5ad(dense, tmp_path / "dense.h5ad")
    again = _score_counts(d, tmp_path / "dense.h5ad", scale="counts", cell_totals=d["root"] / "cell_totals.json")
    np.testing.assert_allclose(again.table["l2"], counted.table["l2"], rtol=0, atol=1e-12)


def test_counts_declared_log_and_log_declared_counts_are_refused(counts_data, tmp_path):
    import scipy.sparse as sp

    d = counts_data
    test = d["split"]["test"]
    write_h5ad(_cell_eval_cells(d["cells"], test, x=sp.csr_matrix(d["counts"])), tmp_path / "counts.h5ad")
    with pytest.raises(ExternalModelError) as err:
        _score_counts(d, tmp_path / "counts.h5ad")
    _one_line(err.value, tmp_path / "counts.h5ad", "far above log-normalised expression: these look like counts; set "
              "scale: counts", seed=1)
    write_h5ad(_cell_eval_cells(d["cells"], test), tmp_path / "log.h5ad")
    with pytest.raises(ExternalModelError) as err:
        _score_counts(d, tmp_path / "log.h5ad", scale="counts", cell_totals=d["root"] / "cell_totals.json")
    _one_line(err.value, tmp_path / "log.h5ad", "these look log-normalised; set scale: log", seed=1)


def _observed_frame(files, conditions) -> pd.DataFrame:
    pb = read_mean_expression(files["root"] / "pb.h5ad")
    x = np.asarray(pb.X)
    return pd.DataFrame(x[pb.obs_names.get_indexer(conditions)], index=list(conditions), columns=files["genes"])


@pytest.mark.parametrize("share", [0.0, 0.01, 0.05])
def test_quantity_is_told_by_how_rows_follow_the_control_mean(files, tmp_path, share):
    """Expression declared as delta and delta declared as expression, each with 0-5 % negative values: refused
    naming the right quantity (a rule on negative values alone would let them through)."""
    fit = files["fits"]["lpm_selftrained"]
    delta = pd.DataFrame(fit.predicted.T, index=list(fit.problem.test), columns=files["genes"])
    expression = delta + files["ctrl"]
    # move each so that `share` of its values are negative
    expression = expression - np.quantile(expression.to_numpy(), share) if share else expression.clip(lower=0)
    delta = delta - np.quantile(delta.to_numpy(), share)
    for frame, declared, other in ((expression, "delta", "expression"), (delta, "expression", "delta")):
        assert (frame.to_numpy() < 0).mean() == pytest.approx(share, abs=0.002)
        path = tmp_path / f"{other}.csv"
        frame.rename_axis("condition").reset_index().to_csv(path, index=False)
        with pytest.raises(ExternalModelError) as err:
            _read(files, path, declared)
        _one_line(err.value, path, f"these look like {'mean expression' if other == 'expression' else 'changes from the control mean'}; set quantity: {other}")


def test_a_linear_models_expression_with_negative_values_is_accepted_and_noted(files, tmp_path):
    """x̄_ctrl + Δ̂ of a ridge fit, negative on low genes (here a stronger response: 1-3 % negative): scored as it is."""
    fit = files["fits"]["lpm_selftrained"]
    values = files["ctrl"][None, :] + 3 * fit.predicted.T
    share = (values < 0).mean()
    assert 0.005 < share < 0.05
    frame = pd.DataFrame(values, index=list(fit.problem.test), columns=files["genes"])
    frame.rename_axis("condition").reset_index().to_csv(tmp_path / "linear.csv", index=False)
    preds = _read(files, tmp_path / "linear.csv")
    np.testing.assert_allclose(preds.delta, 3 * fit.predicted, rtol=0, atol=1e-12)
    assert f"{100 * share:.2f} % of the predicted expression values are negative (as a linear model's control mean + " \
           "change is on low genes); scored as they are" in preds.notes


def test_a_double_matches_whatever_the_order_of_its_genes(files, tmp_path):
    """``B+A`` for the dataset's ``A+B``: identical numbers; ``A+B`` and ``B+A`` both in one file: an error."""
    pb = read_mean_expression(files["root"] / "pb.h5ad")
    test = files["split"]["test"]
    double = "SYN0998+SYN0999"  # two test perturbations renamed into a double of the dataset
    names = [double if c == test[0] else c for c in pb.obs_names]
    x = np.asarray(pb.X)
    write_h5ad(ad.AnnData(X=x, obs=pd.DataFrame(index=names), var=pd.DataFrame(index=files["genes"])),
               tmp_path / "pb.h5ad")
    split = {**files["split"], "test": [double, *test[1:]]}
    write_json(split, tmp_path / "split.json")
    frame = _observed_frame(files, test) + 0.01 * np.random.default_rng(0).normal(size=(len(test), len(files["genes"])))
    tables = {}
    for label in ("SYN0998+SYN0999", "SYN0999+SYN0998"):
        frame.index = [label, *test[1:]]
        frame.rename_axis("condition").reset_index().to_csv(tmp_path / f"{label}.csv", index=False)
        scored = score_model(tmp_path / f"{label}.csv", tmp_path / "pb.h5ad", tmp_path / "split.json",
                             quantity="expression", top_genes=50, keys={"dataset": "small", "seed": 1, "model": "mine"})
        assert scored.conditions == split["test"]
        tables[label] = scored.table
    for m in METRICS:
        np.testing.assert_array_equal(tables["SYN0998+SYN0999"][m], tables["SYN0999+SYN0998"][m])
    both = pd.concat([frame, frame.iloc[[0]].rename(index={frame.index[0]: double})])
    both.rename_axis("condition").reset_index().to_csv(tmp_path / "both.csv", index=False)
    with pytest.raises(ExternalModelError) as err:
        read_predictions(tmp_path / "both.csv", quantity="expression", genes=files["genes"], ctrl_mean=files["ctrl"],
                         split=split, model="mine", dataset="small", seed=2)
    _one_line(err.value, tmp_path / "both.csv", "the labels 'SYN0999+SYN0998' and 'SYN0998+SYN0999' of column "
              "'condition' both name the condition 'SYN0998+SYN0999'")


def test_g_and_g_ctrl_in_one_file_is_an_error_naming_both(files, tmp_path):
    test = [str(c) for c in files["split"]["test"]]
    frame = _observed_frame(files, test)
    gene = test[1].split("+")[0]
    frame = pd.concat([frame, frame.iloc[[1]].rename(index={test[1]: gene}) + 0.5])
    path = _write(frame, tmp_path / "g_and_g_ctrl.h5ad", "h5ad")
    with pytest.raises(ExternalModelError) as err:
        _read(files, path)
    _one_line(err.value, path, f"the labels {test[1]!r} and {gene!r} of obs names both name the condition {test[1]!r}")


@pytest.mark.filterwarnings("ignore:Observation names are not unique")
def test_a_repeated_label_in_a_pseudobulk_file_is_an_error_with_cell_level_false(files, tmp_path):
    test = [str(c) for c in files["split"]["test"]]
    frame = _observed_frame(files, test)
    frame = pd.concat([frame, frame.iloc[[2]] + 0.3])
    path = _write(frame, tmp_path / "pseudobulk.h5ad", "h5ad")
    averaged = _read(files, path)  # auto: a repeated label in an h5ad makes it cell-level
    assert any(n.startswith("cell-level file:") for n in averaged.notes)
    with pytest.raises(ExternalModelError) as err:
        read_predictions(path, quantity="expression", genes=files["genes"], ctrl_mean=files["ctrl"],
                         split=files["split"], model="mine", dataset="small", seed=2, cell_level=False)
    _one_line(err.value, path, f"cell_level: false, but 1 labels of obs names are on several rows, e.g. {test[2]!r} on "
              "2 rows: write one row per condition, or set cell_level: true")


def test_x_all_zero_with_the_predictions_in_a_layer_is_an_error_naming_the_layers(files, tmp_path):
    frame = _observed_frame(files, files["split"]["test"])
    adata = ad.AnnData(X=np.zeros(frame.shape), obs=pd.DataFrame(index=frame.index),
                       var=pd.DataFrame(index=frame.columns), layers={"logcounts": frame.to_numpy()})
    path = tmp_path / "in_a_layer.h5ad"
    write_h5ad(adata, path)
    for quantity in QUANTITIES:
        with pytest.raises(ExternalModelError) as err:
            _read(files, path, quantity)
        _one_line(err.value, path, "X is all zeros in the predicted rows while the file has layers 'logcounts': copy "
                  "the layer with the predictions to X")


def test_labels_from_a_column_the_model_names_or_the_first_known_one(files, tmp_path):
    """condition_column picks the column; a missing one is an error listing the columns; unnamed, the reader tries
    condition, target_gene, perturbation, target, gene in order; labels it cannot match name condition_column."""
    test = files["split"]["test"]
    frame = _observed_frame(files, test)
    obs = pd.DataFrame({"gene": ["x"] * len(test), "perturbation": [c.split("+")[0] for c in test],
                        "my_label": test}, index=[f"bc{i}" for i in range(len(test))])
    path = tmp_path / "labels.h5ad"
    write_h5ad(ad.AnnData(X=frame.to_numpy(), obs=obs, var=pd.DataFrame(index=frame.columns)), path)
    found = _read(files, path)
    assert found.conditions == test and found.notes[0].startswith("labels read from obs['perturbation']")
    named = read_predictions(path, quantity="expression", genes=files["genes"], ctrl_mean=files["ctrl"],
                             split=files["split"], model="mine", dataset="small", seed=2, condition_column="my_label")
    np.testing.assert_array_equal(named.delta, found.delta)
    for column, match in (("absent", "condition_column is 'absent', but obs has no such column (its columns: 'gene', "
                                     "'perturbation', 'my_label')"),
                          ("gene", "no test perturbation of the split is predicted: the labels in obs['gene'] are 'x'")):
        with pytest.raises(ExternalModelError) as err:
            read_predictions(path, quantity="expression", genes=files["genes"], ctrl_mean=files["ctrl"],
                             split=files["split"], model="mine", dataset="small", seed=2, condition_column=column)
        _one_line(err.value, path, match)


def test_barcodes_as_labels_are_refused_naming_the_columns_to_choose_from(files, cells, tmp_path):
    adata = _cell_eval_cells(cells, files["split"]["test"])
    adata.obs = adata.obs.rename(columns={"target_gene": "guide_target"})
    path = tmp_path / "barcodes.h5ad"
    write_h5ad(adata, path)
    with pytest.raises(ExternalModelError) as err:
        _read(files, path)
    _one_line(err.value, path, "no test perturbation of the split is predicted: the labels in obs names are "
              "'bc000000', 'bc000001'")
    assert "name their column with condition_column (obs columns: 'guide_target')" in str(err.value)
    scored = read_predictions(path, quantity="expression", genes=files["genes"], ctrl_mean=files["ctrl"],
                              split=files["split"], model="mine", dataset="small", seed=2,
                              condition_column="guide_target")
    assert scored.conditions == list(files["split"]["test"])
