"""Our baselines out, in the form the field reads (``snakemake export_predictions``, :mod:`lsftbench.report.export`).

Known answers: every exported method read back as a model of one's own (in every file form: the exported
cell-eval h5ad, a pseudobulk h5ad, CSV, Parquet) gives back its own predictions and numbers to 1e-12; cell-eval
0.8.2's ``MetricsEvaluator`` on an exported pair gives our pearson_delta, mae and discrimination scores per
perturbation; so does ``cell_eval2`` (its ``v1`` preset) when it is installed. The null methods' predictions
are those the progress bar scores.
"""

from __future__ import annotations

import math

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from lsftbench.data.conditions import CTRL, target_positions
from lsftbench.data.mean_expression import read_mean_expression, top_expressed, training_mean_delta
from lsftbench.embeddings.build import build_embedding
from lsftbench.evaluation.metrics import discrimination_scores, metric_columns
from lsftbench.evaluation.comparison import ComparisonSettings, GeneReference, score_on_genes
from lsftbench.evaluation.progress_bar import NULL_METHODS, NullPredictions, null_predictions
from lsftbench.evaluation.scoring import score_global_fit, score_lsft_shard, score_model
from lsftbench.io import read_npz, write_h5ad, write_json, write_npz
from lsftbench.labels import Labels
from lsftbench.model.external import ExternalModelError, read_predictions
from lsftbench.model.protocol import LsftSettings
from lsftbench.report.export import CONTROL_LABEL, export_predictions, shift_for

METRICS = ("pearson_r", "l2", "mae", "pearson_delta_top1000", "l2_top1000", "centered_pearson_r")
TOP = 50
PCT = 10.0
NULLS = {"dim": 4, "ridge": 0.1, "random_seed": 1}


@pytest.fixture(scope="module")
def exported(tmp_path_factory, small_pb, small_split):
    """Three baselines (one on a gene table of 80 of the 120 genes) fitted and refitted (LSFT, 2 shards), a fourth
    global fit whose changes are tripled (control mean + Δ̂ well below 0 on low genes, so the shift is > 0), and
    the export of all of them and the null methods."""
    root = tmp_path_factory.mktemp("export")
    write_h5ad(small_pb.copy(), root / "pb.h5ad")
    split = {k: [str(c) for c in v] for k, v in small_split.items()}
    write_json(split, root / "split.json")
    table = pd.DataFrame(np.random.default_rng(0).normal(size=(80, 5)), index=list(small_pb.var_names[:80]))
    specs = {
        "lpm_selftrained": ({}, None),
        "lpm_tableGeneEmb": ({"gene": {"type": "table", "path": "t"}, "pert": {"type": "training_pca"}}, table),
        "mean_response": ({"model": "mean", "pert": {"type": "training_pca"}}, None),
    }
    fits, tables, shards, shard_tables = {}, {}, {}, {}
    for name, (spec, gene_table) in specs.items():
        build_embedding(spec, small_pb, split, 4, dataset="small", gene_table=gene_table).save(root / f"{name}.emb.npz")
        fit = score_global_fit("default", root / "pb.h5ad", root / "split.json", root / f"{name}.emb.npz", ridge=0.1,
                               top_genes=TOP, min_predictable_tests=1,
                               keys={"dataset": "small", "seed": 1, "baseline": name})
        fit.write(root / f"{name}.parquet", root / f"{name}.npz", root / f"{name}.shared")
        fits[name], tables[(name, "global fit")] = root / f"{name}.npz", fit.table
        shards[name] = {PCT: []}
        for chunk in range(2):
            shard = score_lsft_shard("default", root / "pb.h5ad", root / "split.json", root / f"{name}.emb.npz",
                                     root / f"{name}.shared", top_pct=PCT, chunk=chunk, n_chunks=2,
                                     settings=LsftSettings(ridge=0.1), top_genes=TOP,
                                     keys={"dataset": "small", "seed": 1, "baseline": name})
            shard.write(root / f"{name}.{chunk}.parquet", root / f"{name}.{chunk}.npz")
            shards[name][PCT].append(root / f"{name}.{chunk}.npz")
            for kind, prefix in (("LSFT", "local_"), ("kNN", "knn_")):
                part = {m: shard.table[prefix + m] for m in METRICS}
                old = shard_tables.get((name, kind))
                shard_tables[(name, kind)] = part if old is None else {m: np.r_[old[m], part[m]] for m in METRICS}
    z = read_npz(fits["lpm_selftrained"])
    write_npz(root / "lpm_tripled.npz", conditions=z["conditions"], genes=z["genes"], predicted=3 * z["predicted"],
              observed=z["observed"])
    fits["lpm_tripled"] = root / "lpm_tripled.npz"
    pb = read_mean_expression(root / "pb.h5ad")
    null_predictions(pb, split, **NULLS).save(root / "progress_methods.npz")  # the rule progress_methods' file
    rows = export_predictions(root / "pb.h5ad", root / "split.json", root / "progress_methods.npz", root / "export",
                              global_fits=fits, lsft_shards=shards, dataset="small", seed=1)
    return {"root": root, "out": root / "export", "rows": rows,
            "manifest": pd.read_csv(root / "export" / "manifest.csv"),
            "fits": fits, "shards": shards, "tables": tables, "shard_tables": shard_tables, "split": split, "pb": pb}


def _null_scores(exported):
    """The progress bar's scores of the null methods (the tables score the progress_methods file on every gene)."""
    nulls = NullPredictions.load(exported["root"] / "progress_methods.npz")
    reference = GeneReference(Labels(nulls.genes, name="gene"), nulls.ctrl_mean, nulls.train_mean)
    position = Labels(nulls.test, name="condition")
    frames = []
    for name in NULL_METHODS:
        conditions, delta = nulls.predicted[name]
        values, _ = score_on_genes(delta, nulls.observed[:, position.get_indexer(conditions)], conditions, nulls.genes,
                                   nulls.genes, reference, conditions, ComparisonSettings(top_genes=TOP), None)
        frames.append(pd.DataFrame({"method": name, "condition": conditions, **values}))
    return pd.concat(frames, ignore_index=True)


def _ctrl(exported) -> np.ndarray:
    pb = exported["pb"]
    return np.asarray(pb.X)[pb.obs_names.get_loc(CTRL)]


def _source_delta(exported, row) -> tuple[list[str], list[str], np.ndarray]:
    """What the method predicted, from the workflow's own files (or the null methods' function)."""
    if row.kind == "null method":
        conditions, delta = NullPredictions.load(exported["root"] / "progress_methods.npz").predicted[row.method]
        return list(conditions), list(exported["pb"].var_names), delta
    if row.kind == "global fit":
        z = read_npz(exported["fits"][row.baseline])
        return z["conditions"].astype(str).tolist(), z["genes"].astype(str).tolist(), z["predicted"]
    conditions, genes, parts = [], None, []
    for shard in exported["shards"][row.baseline][PCT]:
        z = read_npz(shard)
        conditions += z["conditions"].astype(str).tolist()
        genes = z["genes"].astype(str).tolist()
        parts.append(np.asarray(z["local" if row.kind == "LSFT" else "knn"], dtype=np.float64))
    return conditions, genes, np.hstack(parts)


def _forms(path, tmp_path) -> dict:
    """The exported file, and the same predictions as a pseudobulk h5ad, a CSV and a Parquet file (shift undone)."""
    adata = ad.read_h5ad(path)
    shift = adata.uns["lsftbench_export"]["shift"]
    frame = pd.DataFrame(adata.X - shift, index=list(adata.obs_names), columns=list(adata.var_names))
    forms = {"cell-eval h5ad": path}
    forms["pseudobulk h5ad"] = tmp_path / "pseudobulk.h5ad"
    write_h5ad(ad.AnnData(X=frame.to_numpy(), obs=pd.DataFrame(index=frame.index),
                          var=pd.DataFrame(index=frame.columns)), forms["pseudobulk h5ad"])
    forms["csv"] = tmp_path / "pred.csv"
    frame.rename_axis("condition").reset_index().to_csv(forms["csv"], index=False, float_format="%.17g")
    forms["parquet"] = tmp_path / "pred.parquet"
    frame.rename_axis("condition").reset_index().to_parquet(forms["parquet"])
    return forms


def test_the_manifest_lists_every_method_with_its_observed_file_and_one_shift(exported):
    manifest = exported["manifest"]
    expected = {f"{b} · {kind}" for b in ("lpm_selftrained", "lpm_tableGeneEmb", "mean_response")
                for kind in ("global fit", "LSFT top 10%", "kNN top 10%")} | {"lpm_tripled · global fit", *NULL_METHODS}
    assert set(manifest["method"]) == expected and len(manifest) == len(expected)
    for row in manifest.itertuples():
        assert (exported["out"] / row.file).exists() and (exported["out"] / row.observed).exists()
    table = manifest[manifest["baseline"] == "lpm_tableGeneEmb"]
    assert set(table["n_genes"]) == {80} and set(table["observed"]) == {"observed.lpm_tableGeneEmb.global.h5ad"}
    assert set(manifest.loc[manifest["baseline"] == "lpm_selftrained", "observed"]) == {"observed.h5ad"}
    # one shift for the whole (dataset, seed): the smallest value of any file, rounded up to 0.01
    shift = manifest["shift"].iloc[0]
    assert (manifest["shift"] == shift).all() and shift > 0
    lowest = min(float(ad.read_h5ad(exported["out"] / f).X.min()) for f in manifest["file"])
    assert 0 <= lowest < 0.01 and shift == shift_for(lowest - shift)
    readme = (exported["out"] / "README.md").read_text()
    assert f"**Shift: {shift:g}.**" in readme


def test_exported_files_are_in_cell_evals_form(exported):
    adata = ad.read_h5ad(exported["out"] / "lpm_selftrained.global.h5ad")
    observed = ad.read_h5ad(exported["out"] / "observed.h5ad")
    assert adata.X.dtype == np.float64 and adata.X.min() >= 0
    assert list(adata.obs["target_gene"])[-1] == CONTROL_LABEL and adata.obs_names[-1] == CTRL
    assert all("+" not in g for g in adata.obs["target_gene"]) and list(adata.var_names) == list(observed.var_names)
    assert adata.uns["lsftbench_export"]["method"] == "lpm_selftrained · global fit"
    shift = adata.uns["lsftbench_export"]["shift"]
    np.testing.assert_allclose(adata.X[-1] - shift, _ctrl(exported), rtol=0, atol=1e-13)  # the control row
    np.testing.assert_allclose(observed.X[-1], adata.X[-1], rtol=0, atol=0)


@pytest.mark.parametrize("form", ["cell-eval h5ad", "pseudobulk h5ad", "csv", "parquet"])
def test_every_exported_method_read_back_as_a_model_reproduces_its_numbers(exported, tmp_path, form):
    """Each method's file (its own genes: a gene-table baseline's 80) read back gives its Δ̂ and its metrics to 1e-12:
    the global fits' own tables, the null methods' progress-bar scores, the LSFT/kNN metrics of their shards' .npz
    (float32, as the tables' ranks read them; the shards' own float64 metrics to float32 precision)."""
    pb, split, ctrl = exported["pb"], exported["split"], _ctrl(exported)
    nulls = _null_scores(exported)
    train_mean = training_mean_delta(pb, split)
    x = np.asarray(pb.X)
    for row in exported["manifest"].itertuples():
        conditions, genes, delta = _source_delta(exported, row)
        cols = pb.var_names.get_indexer(genes)
        path = _forms(exported["out"] / row.file, tmp_path)[form]
        preds = read_predictions(path, quantity="expression", genes=genes, ctrl_mean=ctrl[cols], split=split,
                                 model="exported", dataset="small", seed=1)
        assert preds.conditions == conditions, row.method
        np.testing.assert_allclose(preds.delta, delta, rtol=0, atol=1e-12, err_msg=row.method)
        observed = (x[pb.obs_names.get_indexer(conditions)][:, cols] - ctrl[cols]).T
        ours = metric_columns(preds.delta, observed, top_expressed(ctrl[cols], TOP), train_mean[cols])
        if (row.baseline, row.kind) in exported["tables"]:  # a global fit's own table
            reference = exported["tables"][(row.baseline, row.kind)]
        elif row.kind == "null method":
            reference = nulls[nulls["method"] == row.method].reset_index(drop=True)
        else:
            reference = metric_columns(delta, observed, top_expressed(ctrl[cols], TOP), train_mean[cols])
        for m in METRICS:
            expected = np.asarray(reference[m], dtype=float)
            if np.isnan(expected).all() and not (form == "cell-eval h5ad" and m == "pearson_r"):
                # undefined for the method: Δ̂ (no change) or Δ̂ − m (mean_response, train mean) is constant. Written as
                # expression, control mean + Δ̂ − control mean is Δ̂ up to rounding, whose correlation means nothing;
                # the exported file itself gives 'no change' back exactly (its changes are taken from its own
                # control row), so its r stays undefined
                centre = train_mean[cols][:, None] if m == "centered_pearson_r" else 0.0
                assert np.abs(preds.delta - centre).max() < 1e-12, (row.method, m)
                continue
            np.testing.assert_allclose(ours[m], expected, rtol=1e-12, atol=1e-12, err_msg=f"{row.method}: {m}")
        if row.kind in ("LSFT", "kNN"):
            for m in METRICS[:5]:
                np.testing.assert_allclose(ours[m], exported["shard_tables"][(row.baseline, row.kind)][m], rtol=1e-5,
                                           atol=1e-5, err_msg=f"{row.method}: {m}")


def test_a_full_gene_export_scores_as_a_model_and_a_gene_table_one_is_refused_naming_the_genes(exported):
    """score_model end to end: the exported global fit of lpm_selftrained is that baseline to 1e-12; the gene-table
    baseline's file (80 of 120 genes) is refused as a model, naming the genes it lacks (its own-gene numbers are
    read back in the test above)."""
    root = exported["root"]
    scored = score_model(exported["out"] / "lpm_selftrained.global.h5ad", root / "pb.h5ad", root / "split.json",
                         quantity="expression", top_genes=TOP,
                         keys={"dataset": "small", "seed": 1, "model": "exported"})
    for m in METRICS:
        np.testing.assert_allclose(scored.table[m], exported["tables"][("lpm_selftrained", "global fit")][m],
                                   rtol=1e-12, atol=1e-12, err_msg=m)
    assert any("subtracted the constant" in n for n in scored.notes)
    with pytest.raises(ExternalModelError) as err:
        score_model(exported["out"] / "lpm_tableGeneEmb.global.h5ad", root / "pb.h5ad", root / "split.json",
                    quantity="expression", top_genes=TOP, keys={"dataset": "small", "seed": 1, "model": "exported"})
    missing = list(exported["pb"].var_names[80:85])
    named = ", ".join(repr(g) for g in missing)
    assert f"40 of the dataset's 120 measured genes are not predicted, e.g. {named}" in str(err.value)


def _ours(exported, file: str, observed: str) -> tuple[list[str], dict]:
    pred, real = ad.read_h5ad(exported["out"] / file), ad.read_h5ad(exported["out"] / observed)
    delta = (pred.X[:-1] - pred.X[-1]).T
    obs = (real.X[:-1] - real.X[-1]).T
    targets = target_positions(list(pred.obs_names[:-1]), Labels(list(pred.var_names)))
    values = {**metric_columns(delta, obs, np.arange(delta.shape[0])),
              **discrimination_scores(delta, obs, exclude=targets, distances=("l1", "l2", "cosine"))}
    return list(pred.obs["target_gene"][:-1]), values


PAIRS = ("lpm_selftrained.global.h5ad", "lpm_tripled.global.h5ad", "lpm_tableGeneEmb.knn_top10.h5ad",
         "null.random_perturbation_embedding.h5ad")
CELL_EVAL = {"pearson_delta": "pearson_r", "mae": "mae", "discrimination_score_l1": "ds_l1",
             "discrimination_score_l2": "ds_l2", "discrimination_score_cosine": "ds_cosine"}


@pytest.mark.filterwarnings("ignore:the string cache has been replaced")
@pytest.mark.parametrize("file", PAIRS)
def test_cell_eval_scores_an_exported_pair_as_we_do(exported, tmp_path, file):
    """cell-eval 0.8.2's MetricsEvaluator (as README and the folder's README.md call it) on a method's file and its
    observed file: pearson_delta, mae and the discrimination scores equal ours per perturbation."""
    from cell_eval import MetricsEvaluator

    observed = exported["manifest"].set_index("file").loc[file, "observed"]
    evaluator = MetricsEvaluator(adata_pred=str(exported["out"] / file), adata_real=str(exported["out"] / observed),
                                 control_pert=CONTROL_LABEL, pert_col="target_gene", skip_de=True, allow_discrete=True,
                                 outdir=str(tmp_path / "cell-eval"))
    results, _ = evaluator.compute(profile="anndata", write_csv=False, break_on_error=True,
                                   skip_metrics=["pearson_edistance", "clustering_agreement"])
    frame = results.to_pandas().set_index("perturbation")
    labels, ours = _ours(exported, file, observed)
    frame = frame.loc[labels]
    for theirs, name in CELL_EVAL.items():
        np.testing.assert_allclose(frame[theirs].to_numpy(dtype=float), ours[name], rtol=1e-6, atol=1e-6,
                                   err_msg=f"{file}: {theirs}")


@pytest.mark.filterwarnings("ignore:preset 'v1' is deprecated")
@pytest.mark.parametrize("file", PAIRS[:2])
def test_cell_eval2_reads_the_export_too(exported, file):
    """cell_eval2 (PyPI ``cell-eval2`` 0.20.0, a reimplementation of cell-eval) with its ``v1`` preset gives the same
    numbers; lognorm input, and a scale limit above the shifted values (``max_counts_per_cell`` must exceed every
    row's total of expm1 of its values; its default, 10^6, refuses them). Its ``v2`` discrimination score is
    defined otherwise (n − 1 in
    the denominator, mid-ranks for ties, every perturbation's target gene left out of every distance)."""
    cell_eval2 = pytest.importorskip("cell_eval2")
    from dataclasses import replace

    observed = exported["manifest"].set_index("file").loc[file, "observed"]
    config = replace(cell_eval2.EvalConfig.from_preset("v1"), metrics=list(CELL_EVAL), pert_col="target_gene",
                     control=CONTROL_LABEL, input_type="lognorm", max_counts_per_cell=1e30)
    frame = cell_eval2.compute_metrics(str(exported["out"] / file), str(exported["out"] / observed), config=config)
    frame = frame.to_pandas().pivot(index="perturbation", columns="metric", values="value")
    labels, ours = _ours(exported, file, observed)
    frame = frame.loc[labels]
    for theirs, name in CELL_EVAL.items():
        np.testing.assert_allclose(frame[theirs].to_numpy(dtype=float), ours[name], rtol=1e-6, atol=1e-6,
                                   err_msg=f"{file}: {theirs}")


def test_null_predictions_are_what_the_progress_bar_scores(exported):
    pb, split = exported["pb"], exported["split"]
    nulls = null_predictions(pb, split, **NULLS)
    assert list(nulls.predicted)[:3] == list(NULL_METHODS)
    scores = _null_scores(exported)
    ctrl = _ctrl(exported)
    x = np.asarray(pb.X)
    m = training_mean_delta(pb, split)
    manifest = exported["manifest"].set_index("method")
    for name in NULL_METHODS:
        conditions, delta = nulls.predicted[name]
        observed = (x[pb.obs_names.get_indexer(conditions)] - ctrl).T
        ours = metric_columns(delta, observed, top_expressed(ctrl, TOP), m)
        reference = scores[scores["method"] == name]
        assert list(reference["condition"]) == conditions
        for metric in ("pearson_r", "l2", "centered_pearson_r"):
            np.testing.assert_array_equal(ours[metric], reference[metric].to_numpy(), err_msg=f"{name}: {metric}")
        exported_file = ad.read_h5ad(exported["out"] / manifest.loc[name, "file"])  # the file holds these Δ̂
        shift = exported_file.uns["lsftbench_export"]["shift"]
        np.testing.assert_allclose(exported_file.X[:-1] - shift - ctrl, delta.T, rtol=0, atol=1e-12)
    assert "idealized baseline (uses test data)" not in set(exported["manifest"]["method"])
    assert not nulls.predicted["no change"][1].any()
    assert math.isclose(float(nulls.predicted["train mean"][1][0, 0]), float(m[0]))
