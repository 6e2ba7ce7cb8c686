"""Bad input never turns into a finished-looking table: every case ends in a clear error.

The first part checks the package functions directly (fast): each bad input raises an error that
names the file or config key and the problem. The second part (``workflow`` marker) runs the real
Snakefile: config problems stop a dry run before any job; bad data stop the first job that reads
them; in every case no table file appears and existing ones are left byte for byte as they were.
``docs/bad_inputs.md`` lists each case with what the user sees.
"""

from __future__ import annotations

import copy
import json
import logging
import re
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import yaml
from workflow_utils import (
    REPO,
    TINY,
    copy_run,
    default_config,
    small_run_config,
    snakemake,
    tiny_config,
    write_config,
    write_random_gene_table,
    write_toy_data,
)

from lsftbench.data.conditions import condition_problem, perturbation_targets
from lsftbench.data.h5ad import LOG_MAX, InputDataError, open_perturb_data
from lsftbench.data.pseudobulk import pseudobulk
from lsftbench.data.split import read_split_json
from lsftbench.data.synthetic.datasets import make_dataset
from lsftbench.embeddings.gene_tables import check_baseline_tables, check_table_coverage, read_gene_table
from lsftbench.io import write_h5ad
from lsftbench.model.lsft import shard_tests as chunk_of
from lsftbench.pipeline.config import ConfigError
from lsftbench.pipeline.preflight import check_names, check_paths, configured_paths, validate_config

SCHEMA = REPO / "config" / "schema.yaml"
GENES = ["A", "B", "C", "D", "E"]
CONDITIONS = ["ctrl"] * 4 + ["A+ctrl"] * 3 + ["ctrl+B"] * 3 + ["A+B"] * 2


def _log_values(n_cells: int, n_genes: int, seed: int = 0) -> np.ndarray:
    """Log-normalised-looking values: log1p of scaled Poisson counts (fractional, below ~8)."""
    rng = np.random.default_rng(seed)
    return np.log1p(rng.poisson(2.0, size=(n_cells, n_genes)) * 1.7).astype(np.float32)


def _write(
    path: Path,
    x: np.ndarray | None = None,
    conditions: list[str] | None = None,
    genes: list[str] | None = None,
    *,
    gene_name: bool = True,
    sparse: bool = True,
) -> Path:
    conditions = CONDITIONS if conditions is None else conditions
    genes = GENES if genes is None else genes
    x = _log_values(len(conditions), len(genes)) if x is None else x
    var = pd.DataFrame({"gene_name": genes} if gene_name else {}, index=[f"ENSG{i:011d}" for i in range(len(genes))])
    if not gene_name:
        var.index = genes
    adata = ad.AnnData(
        X=sp.csr_matrix(x, dtype=np.float32) if sparse else np.asarray(x, dtype=np.float32),
        obs=pd.DataFrame({"condition": pd.Categorical(conditions)}, index=[f"cell{i}" for i in range(len(conditions))]),
        var=var,
    )
    write_h5ad(adata, path)
    return path


def _dense_means(x: np.ndarray, conditions: list[str]) -> pd.DataFrame:
    return pd.DataFrame(np.asarray(x, dtype=np.float64)).groupby(np.asarray(conditions)).mean()


# --------------------------------------------------------------------------------------------
# Condition names (issue item 3)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,reason",
    [
        ("Ctrl", "lower case"),
        ("", "empty name"),
        ("A", "bare name"),
        ("A+B+C", "3 '+'-separated parts"),
        ("ctrl+ctrl", "no perturbed gene"),
        ("CTRL+A", "lower case"),
        ("A+", "empty gene name"),
        (" A+ctrl", "whitespace"),
        ("A+A", "same gene twice"),
    ],
)
def test_bad_condition_names_are_listed_with_cell_counts(tmp_path, name, reason):
    conditions = CONDITIONS[:-2] + [name] * 2  # the two A+B cells get the bad name
    path = _write(tmp_path / "d.h5ad", conditions=conditions)
    for read in (open_perturb_data, lambda p: pseudobulk(p, chunk_size=3)):  # split and pseudobulk paths
        with pytest.raises(InputDataError) as err:
            read(path)
        message = str(err.value)
        assert str(path) in message and f"{name!r} (2 cells)" in message and reason in message
        assert "are not 'ctrl', 'G+ctrl', 'ctrl+G' or 'A+B'" in message


def test_condition_problem_accepts_the_four_forms():
    assert condition_problem("ctrl") is None and condition_problem("ctrl+A") is None and condition_problem("A+B") is None


def test_bad_names_listed_by_cell_count(tmp_path):
    conditions = ["ctrl"] * 3 + ["A"] * 1 + ["Ctrl"] * 4 + ["A+ctrl"] * 2
    path = _write(tmp_path / "d.h5ad", conditions=conditions)
    with pytest.raises(InputDataError, match=r"2 condition name\(s\).*'Ctrl' \(4 cells\).*'A' \(1 cells\)"):
        open_perturb_data(path)


def test_valid_names_all_accepted(tmp_path):
    path = _write(tmp_path / "d.h5ad")
    adata = open_perturb_data(path)
    adata.file.close()
    pb = pseudobulk(path, chunk_size=5)
    assert list(pb.obs_names) == ["ctrl", "A+ctrl", "ctrl+B", "A+B"]
    assert list(pb.obs["gene"]) == ["", "A", "B", ""]
    assert perturbation_targets(pb.obs_names) == ["A", "B"]


# --------------------------------------------------------------------------------------------
# Gene symbols vs perturbation targets (issue item 5)
# --------------------------------------------------------------------------------------------


def test_ensembl_var_names_without_gene_name(tmp_path):
    ids = [f"ENSG{i:011d}" for i in range(1, 6)]
    path = _write(tmp_path / "ens.h5ad", genes=ids, gene_name=False)
    with pytest.raises(InputDataError) as err:
        open_perturb_data(path)
    message = str(err.value)
    assert str(path) in message and "the gene symbols do not match the perturbation targets" in message
    assert "none of the 2 target genes (e.g. 'A', 'B')" in message and "'ENSG00000000001'" in message
    assert "no var['gene_name'] column" in message and "look like Ensembl IDs" in message


def test_lower_case_symbols_get_a_case_hint(tmp_path):
    path = _write(tmp_path / "lower.h5ad", genes=[g.lower() for g in GENES])
    with pytest.raises(InputDataError, match="2 targets match when upper/lower case is ignored"):
        open_perturb_data(path)


def test_some_unmeasured_targets_are_fine(tmp_path):
    conditions = CONDITIONS + ["Z+ctrl"] * 2  # Z is not measured: allowed (reported later as not predictable)
    path = _write(tmp_path / "d.h5ad", conditions=conditions)
    open_perturb_data(path).file.close()


# --------------------------------------------------------------------------------------------
# Raw counts and all-zero X (issue item 4)
# --------------------------------------------------------------------------------------------


def test_integer_counts_are_an_error(tmp_path):
    x = np.random.default_rng(1).poisson(3.0, size=(len(CONDITIONS), len(GENES))).astype(float)
    path = _write(tmp_path / "counts.h5ad", x=x)
    with pytest.raises(InputDataError) as err:
        pseudobulk(path, chunk_size=4)
    message = str(err.value)
    assert str(path) in message and "looks like raw counts" in message and "every stored value is a whole number" in message
    assert "allow_raw_counts" in message


def test_allow_raw_counts_warns_and_averages(tmp_path, caplog):
    x = np.random.default_rng(1).poisson(3.0, size=(len(CONDITIONS), len(GENES))).astype(float)
    x[5, 2] = 120.0  # also far above log range
    path = _write(tmp_path / "counts.h5ad", x=x)
    with caplog.at_level(logging.WARNING, logger="lsftbench.data.h5ad"):
        pb = pseudobulk(path, chunk_size=4, allow_raw_counts=True)
    expected = _dense_means(x, CONDITIONS)
    np.testing.assert_allclose(pb.X, expected.loc[list(pb.obs_names)].to_numpy())
    warning = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "looks like raw counts" in warning and "AS THEY ARE" in warning and "values up to 120 (cell 5)" in warning


def test_values_far_above_log_range_are_an_error(tmp_path):
    x = _log_values(len(CONDITIONS), len(GENES))
    x[7, 1] = 812.5  # fractional, but no log-normalised value is this large
    path = _write(tmp_path / "linear.h5ad", x=x)
    with pytest.raises(InputDataError, match=r"raw counts.*values up to 812\.5 \(cell 7\)") as err:
        pseudobulk(path, chunk_size=4)
    assert str(path) in str(err.value) and LOG_MAX < 812.5


@pytest.mark.parametrize("sparse", [True, False])
def test_all_zero_x_is_an_error_even_when_counts_are_allowed(tmp_path, sparse):
    path = _write(tmp_path / "zero.h5ad", x=np.zeros((len(CONDITIONS), len(GENES))), sparse=sparse)
    for allow in (False, True):
        with pytest.raises(InputDataError, match=r"X is all zeros \(12 cells x 5 genes\)") as err:
            pseudobulk(path, chunk_size=5, allow_raw_counts=allow)
        assert str(path) in str(err.value)


# --------------------------------------------------------------------------------------------
# Damaged files (issue item 6) and truncation
# --------------------------------------------------------------------------------------------


def _overwrite(path: Path, dataset: str, data: bytes, at: int = 0) -> None:
    """Overwrite bytes of an HDF5 dataset's storage in place, as disk or transfer damage would."""
    with h5py.File(path, "r") as f:
        dset = f[dataset]
        offset = dset.id.get_offset()
        if offset is None:  # chunked: anndata writes one chunk
            offset = dset.id.get_chunk_info(0).byte_offset
    with open(path, "r+b") as fh:
        fh.seek(offset + at)
        fh.write(data)


def _bigger(tmp_path: Path) -> tuple[Path, np.ndarray]:
    conditions = ["ctrl"] * 40 + ["A+ctrl"] * 30 + ["B+ctrl"] * 30
    x = _log_values(len(conditions), len(GENES), seed=3)
    return _write(tmp_path / "d.h5ad", x=x, conditions=conditions), x


def test_damaged_values_are_reported_as_a_damaged_file(tmp_path):
    path, _ = _bigger(tmp_path)
    _overwrite(path, "X/data", np.random.default_rng(7).bytes(64), at=40)
    with pytest.raises(InputDataError) as err:
        pseudobulk(path, chunk_size=16)
    message = str(err.value)
    assert str(path) in message and "values no expression matrix has" in message and "corrupted" in message
    assert "negative values" not in message


def test_damaged_indices_are_reported_as_inconsistent(tmp_path):
    path, _ = _bigger(tmp_path)
    _overwrite(path, "X/indices", np.array([7, -3, 90000], dtype=np.int32).tobytes(), at=200)
    with pytest.raises(InputDataError, match=r"X is inconsistent: cell \d+ stores a value in gene column") as err:
        pseudobulk(path, chunk_size=16)
    assert str(path) in str(err.value) and "corrupted" in str(err.value)


def test_damaged_index_pointer_is_reported_as_inconsistent(tmp_path):
    path, _ = _bigger(tmp_path)
    _overwrite(path, "X/indptr", np.array([10**6], dtype=np.int32).tobytes(), at=4 * 20)
    with pytest.raises(InputDataError, match=r"X \(csr_matrix\) is inconsistent: its index pointer decreases at row 20"):
        pseudobulk(path, chunk_size=16)


def test_unreadable_compressed_chunk(tmp_path):
    conditions = ["ctrl"] * 40 + ["A+ctrl"] * 30 + ["B+ctrl"] * 30
    adata = ad.AnnData(
        X=sp.csr_matrix(_log_values(len(conditions), len(GENES), seed=3)),
        obs=pd.DataFrame({"condition": pd.Categorical(conditions)}, index=[f"c{i}" for i in range(len(conditions))]),
        var=pd.DataFrame({"gene_name": GENES}, index=GENES),
    )
    path = tmp_path / "gz.h5ad"
    adata.write_h5ad(path, compression="gzip")
    _overwrite(path, "X/data", np.random.default_rng(1).bytes(64), at=20)  # the deflate stream no longer inflates
    with pytest.raises(InputDataError, match=r"X cannot be read \(OSError: .*\); the file is damaged or truncated") as err:
        pseudobulk(path, chunk_size=16)
    assert str(err.value).startswith(f"{path}: ")


def test_truncated_file(tmp_path):
    path, _ = _bigger(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputDataError, match="the file is truncated") as err:
        pseudobulk(path)
    assert str(path) in str(err.value)


def test_intact_file_still_reads(tmp_path):
    path, x = _bigger(tmp_path)
    conditions = ["ctrl"] * 40 + ["A+ctrl"] * 30 + ["B+ctrl"] * 30
    pb = pseudobulk(path, chunk_size=16)
    np.testing.assert_allclose(pb.X, _dense_means(x, conditions).loc[list(pb.obs_names)].to_numpy(), rtol=1e-6)


# --------------------------------------------------------------------------------------------
# Cases that already worked (kept as regression tests)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case,match",
    [
        ("nan", r"NaN or infinite values \(first in cell 4\)"),
        ("inf", r"NaN or infinite values \(first in cell 2\)"),
        ("negative", r"negative values, so it is not log-normalised data \(first in cell 9\)"),
        ("dup_genes", "2 duplicated gene names"),
        ("no_ctrl", "no control cells"),
        ("no_condition", "no 'condition' column"),
        ("missing", "file does not exist"),
        ("not_hdf5", "not a readable h5ad file"),
    ],
)
def test_existing_checks(tmp_path, case, match):
    x = _log_values(len(CONDITIONS), len(GENES))
    conditions, genes = list(CONDITIONS), list(GENES)
    if case == "nan":
        x[4, 1] = np.nan
    elif case == "inf":
        x[2, 0] = np.inf
    elif case == "negative":
        x[9, 3] = -0.25
    elif case == "dup_genes":
        genes = ["A", "B", "A", "B", "E"]
    elif case == "no_ctrl":
        conditions = ["C+ctrl"] * 4 + conditions[4:]
    path = _write(tmp_path / "d.h5ad", x=x, conditions=conditions, genes=genes)
    if case == "no_condition":
        adata = ad.read_h5ad(path)
        del adata.obs["condition"]
        write_h5ad(adata, path)
    elif case == "missing":
        path.unlink()
    elif case == "not_hdf5":
        path.write_text("condition,A\nctrl,1\n")
    with pytest.raises(InputDataError, match=match) as err:
        pseudobulk(path, chunk_size=5)
    assert str(err.value).startswith(f"{path}: ")


def test_overlapping_user_split(tmp_path):
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"train": ["ctrl", "A+ctrl"], "val": [], "test": ["A+ctrl", "ctrl+B"]}))
    with pytest.raises(InputDataError, match=r"condition\(s\) in both 'train' and 'test': 'A\+ctrl'") as err:
        read_split_json(split, CONDITIONS)
    assert str(split) in str(err.value)


# --------------------------------------------------------------------------------------------
# Gene and perturbation tables that match the dataset poorly (issue item 2)
# --------------------------------------------------------------------------------------------

DATASET_GENES = [f"SYN{i:04d}" for i in range(1, 41)]


def test_lower_case_table_names_layout_counts_and_examples(tmp_path):
    table = pd.DataFrame(np.random.default_rng(0).normal(size=(4, 30)), columns=[g.lower() for g in DATASET_GENES[:30]])
    path = tmp_path / "text_emb.tsv"
    table.to_csv(path, sep="\t", index=False)  # the paper's layout: one column per gene
    gt = read_gene_table(path)
    with pytest.raises(InputDataError) as err:
        check_table_coverage(gt, DATASET_GENES, min_genes=10, key="baselines.lpm_text.gene")
    message = str(err.value)
    assert message.startswith(f"{path}: gene table (declared as baselines.lpm_text.gene), read as genes_as_columns")
    assert "matches 0 of the 40 genes of the dataset, fewer than the required 10 (metrics.min_table_genes)" in message
    assert "the table's 30 names are e.g. 'syn0001', 'syn0002'" in message and "the dataset's are e.g. 'SYN0001'" in message
    assert "30 would match if upper/lower case were ignored" in message


def test_table_read_in_the_wrong_layout(tmp_path):
    # genes as rows, but more dimensions than genes and no 'gene' header: auto reads it as columns
    genes = DATASET_GENES[:6]
    table = pd.DataFrame(np.random.default_rng(1).normal(size=(6, 12)), index=genes)
    path = tmp_path / "rows.tsv"
    table.to_csv(path, sep="\t", header=[f"d{k}" for k in range(12)], index_label="name")
    gt = read_gene_table(path)
    assert gt.attrs["layout"] == "genes_as_columns"
    with pytest.raises(InputDataError, match=r"read as genes_as_columns matches 0 of the 40 .*set layout: genes_as_rows"):
        check_table_coverage(gt, DATASET_GENES, min_genes=1)
    fixed = read_gene_table(path, layout="genes_as_rows")
    assert check_table_coverage(fixed, DATASET_GENES, min_genes=6) == 6


def test_perturbation_table_below_minimum(tmp_path):
    table = pd.DataFrame(np.ones((3, 2)), index=pd.Index(DATASET_GENES[:3], name="gene"))
    path = tmp_path / "pert.parquet"
    table.to_parquet(path)
    gt = read_gene_table(path)
    assert gt.attrs == {"layout": "genes_as_rows", "source": str(path)}
    targets = DATASET_GENES[:20]
    with pytest.raises(InputDataError, match=r"read as genes_as_rows matches 3 of the 20 perturbation targets, fewer than the required 5"):
        check_table_coverage(gt, targets, min_genes=5, what="perturbation targets")
    assert check_table_coverage(gt, targets, min_genes=3, what="perturbation targets") == 3
    assert check_table_coverage(gt, DATASET_GENES[:3], min_genes=10) == 3  # all of a small dataset is enough
    with pytest.raises(InputDataError, match="fewer than the required 1"):  # zero matches are never accepted
        check_table_coverage(gt, ["X1", "X2"], min_genes=0)


def test_baseline_tables_checked_per_side(tmp_path):
    genes = DATASET_GENES
    conditions = ["ctrl"] + [f"{g}+ctrl" for g in genes[:12]] + ["SYN0031+SYN0032"]  # doubles are not table-embedded
    gene_path, pert_path = tmp_path / "gene.tsv", tmp_path / "pert.tsv"
    pd.DataFrame(np.ones((2, 40)), columns=genes).to_csv(gene_path, sep="\t", index=False)
    pd.DataFrame(np.ones((4, 2)), index=pd.Index(genes[:4], name="gene")).to_csv(pert_path, sep="\t")
    tables = {"gene_table": read_gene_table(gene_path), "pert_table": read_gene_table(pert_path)}
    spec = {"gene": {"type": "table", "path": str(gene_path)}, "pert": {"type": "go_graph", "path": "synthetic"}}
    assert check_baseline_tables(spec, tables, genes, conditions, min_genes=4, baseline="b") == {"gene": 40, "pert": 4}
    with pytest.raises(InputDataError) as err:
        check_baseline_tables(spec, tables, genes, conditions, min_genes=5, baseline="b")
    assert str(err.value).startswith(
        f"{pert_path} (extracted from synthetic): gene table (declared as baselines.b.pert), read as genes_as_rows "
        "matches 4 of the 12 single-perturbation targets of the dataset, fewer than the required 5"
    )


# --------------------------------------------------------------------------------------------
# Start-up checks (issue items 1, 7, 8)
# --------------------------------------------------------------------------------------------


def _config_file(tmp_path: Path, config: dict) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_unknown_keys_are_named_with_location_not_a_schema_dump(tmp_path):
    config = default_config()
    config["lsft"]["centre"] = "local"
    config["pca_dimension"] = 10
    config["datasets"]["adamson"]["sorce"] = "synthetic"
    path = _config_file(tmp_path, config)
    with pytest.raises(ConfigError) as err:
        validate_config(config, SCHEMA, [path])
    message = str(err.value)
    lines = message.splitlines()
    assert len(lines) == 4, message
    text = yaml.safe_load(path.read_text())
    assert "centre" in text["lsft"]
    line_of = {key: i + 1 for i, raw in enumerate(path.read_text().splitlines()) for key in ("centre", "pca_dimension", "sorce") if raw.strip().startswith(f"{key}:")}
    assert f"unknown key 'lsft.centre' ({path}:{line_of['centre']}); allowed under 'lsft': center, refit_embeddings, test_chunks" in message
    assert f"unknown key 'pca_dimension' ({path}:{line_of['pca_dimension']}); allowed at the top level:" in message
    assert f"unknown key 'datasets.adamson.sorce' ({path}:{line_of['sorce']})" in message
    assert "additionalProperties" not in message and "On instance" not in message


@pytest.mark.parametrize(
    "change,expected",
    [
        (lambda c: c.update(pca_dim="ten"), "'pca_dim' ({file}:{line}): 'ten' is not of type 'integer'"),
        (lambda c: c.update(ridge_penalty=-1), "'ridge_penalty' ({file}:{line}): -1 is less than or equal to the minimum of 0"),
        (lambda c: c["lsft"].update(center="median"), "'lsft.center' ({file}:{line}): 'median' is not one of ['local', 'global']"),
        (lambda c: c.update(top_pcts=[5, "x"]), "'top_pcts[1]' ({file}:{line}): 'x' is not of type 'number'"),
        (lambda c: c["datasets"]["adamson"].pop("source"), "'datasets.adamson' ({file}:{line}) lacks the required key 'source'"),
    ],
)
def test_bad_config_types_name_the_key(tmp_path, change, expected):
    config = default_config()
    change(config)
    path = _config_file(tmp_path, config)
    key = expected.split("'")[1].replace("[1]", "")
    last = key.split(".")[-1]
    lines = path.read_text().splitlines()
    line = next(i + 1 for i, raw in enumerate(lines) if raw.strip().startswith(f"{last}:"))
    if "[1]" in expected:
        line = next(i + 1 for i, raw in enumerate(lines) if raw.strip() == "- x")
    with pytest.raises(ConfigError) as err:
        validate_config(config, SCHEMA, [path])
    assert expected.format(file=path, line=line) in str(err.value)
    assert len(str(err.value).splitlines()) == 2


def test_validation_fills_defaults_like_snakemake():
    from snakemake.utils import validate

    ours, theirs = default_config(), default_config()
    for config in (ours, theirs):
        del config["pca_dim"], config["lsft"]
        config["datasets"]["adamson"].pop("benchmark", None)
    validate_config(ours, SCHEMA)
    validate(theirs, str(SCHEMA))
    assert ours == theirs
    assert ours["pca_dim"] == 10 and ours["lsft"]["center"] == "local" and ours["datasets"]["adamson"]["benchmark"] is True


@pytest.mark.parametrize("section", ["datasets", "baselines"])
@pytest.mark.parametrize("name", ["my.data", "a b", "x/y", "naïve"])
def test_names_outside_the_wildcard_pattern(section, name):
    config = default_config()
    first = next(iter(config[section]))
    config[section][name] = config[section].pop(first)
    with pytest.raises(ConfigError) as err:
        check_names(config)
    assert f"{section}: the name {name!r} is not allowed" in str(err.value) and "[A-Za-z0-9_-]+" in str(err.value)


def test_reserved_dataset_names():
    config = default_config()
    config["datasets"]["tables"] = config["datasets"].pop("adamson")
    with pytest.raises(ConfigError, match="the name 'tables' is reserved"):
        check_names(config)
    check_names(default_config())


def _paths_config(tmp_path: Path) -> dict:
    config = default_config()
    config["datasets"]["mine"] = {"source": "local", "path": "data/mine.h5ad", "split_file": str(tmp_path / "split.json")}
    config["baselines"]["lpm_text"] = {"gene": {"type": "table", "path": "emb/text.tsv"}, "pert": {"type": "training_pca"}}
    config["baselines"]["lpm_go"] = {"gene": {"type": "training_pca"}, "pert": {"type": "go_graph", "path": "go.csv"}}
    config["baselines"]["lpm_scgpt"] = {"gene": {"type": "scgpt", "checkpoint": "ckpt/scgpt"}, "pert": {"type": "training_pca"}}
    config["baselines"]["lpm_scf"] = {
        "gene": {"type": "scfoundation", "checkpoint": "ckpt/models.ckpt", "gene_list": "ckpt/genes.tsv"},
        "pert": {"type": "training_pca"},
    }
    return config


def test_every_configured_path_must_exist(tmp_path):
    config = _paths_config(tmp_path)
    keys = [key for key, _, _ in configured_paths(config)]
    assert keys == [
        "datasets.mine.path",
        "datasets.mine.split_file",
        "baselines.lpm_text.gene.path",
        "baselines.lpm_go.pert.path",
        "baselines.lpm_scgpt.gene.checkpoint",
        "baselines.lpm_scf.gene.checkpoint",
        "baselines.lpm_scf.gene.gene_list",
    ]  # synthetic/gears keywords of the default baselines are not paths
    with pytest.raises(ConfigError) as err:
        check_paths(config, tmp_path)
    message = str(err.value)
    assert len(message.splitlines()) == 1 + len(keys)
    assert f"datasets.mine.path: 'data/mine.h5ad' (= {tmp_path / 'data/mine.h5ad'}) does not exist" in message
    assert f"datasets.mine.split_file: '{tmp_path / 'split.json'}' does not exist" in message
    for key in keys:
        assert f"  - {key}: " in message

    for rel in ("data/mine.h5ad", "emb/text.tsv", "go.csv", "ckpt/models.ckpt", "ckpt/genes.tsv", "split.json"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    (tmp_path / "ckpt/scgpt").mkdir()
    (tmp_path / "ckpt/scgpt/vocab.json").write_text("{}")
    with pytest.raises(ConfigError) as err:
        check_paths(config, tmp_path)
    assert str(err.value).splitlines()[1:] == [
        "  - baselines.lpm_scgpt.gene.checkpoint: 'ckpt/scgpt' "
        f"(= {tmp_path / 'ckpt/scgpt'}) lacks best_model.pt, args.json "
        "(an scGPT checkpoint directory holds best_model.pt, vocab.json, args.json)"
    ]
    for name in ("best_model.pt", "args.json"):
        (tmp_path / "ckpt/scgpt" / name).write_text("x")
    check_paths(config, tmp_path)
    (tmp_path / "go.csv").unlink()
    (tmp_path / "go.csv").mkdir()
    with pytest.raises(ConfigError, match=r"baselines.lpm_go.pert.path: 'go.csv' .* is a directory, expected a file"):
        check_paths(config, tmp_path)


# --------------------------------------------------------------------------------------------
# Workflow level: the real Snakefile
# --------------------------------------------------------------------------------------------


def _tables(workdir: Path) -> dict[str, bytes]:
    """Every file under any ``tables`` directory of the results, with its bytes."""
    return {
        str(p.relative_to(workdir)): p.read_bytes()
        for p in sorted(workdir.glob("results*/**/tables/**/*"))
        if p.is_file()
    }


def _temporaries(workdir: Path) -> list[str]:
    return [str(p) for p in workdir.glob("results*/**/.*.tmp*")]


def _small_config(**datasets: dict) -> dict:
    """Tiny config with the given datasets and three cheap baselines, one K."""
    config = tiny_config()
    config["datasets"] = datasets
    config["baselines"] = {
        "lpm_selftrained": copy.deepcopy(config["baselines"]["lpm_selftrained"]),
        "mean_response": copy.deepcopy(config["baselines"]["mean_response"]),
    }
    config["top_pcts"] = [10]
    config["split"] = {"seeds": [1]}
    return config


@pytest.mark.workflow
def test_config_problems_stop_the_dry_run_with_one_line_each(tmp_path):
    """Items 7 and 8 (and bad types): the start-up checks run before the DAG, in a dry run."""
    config = _small_config(adamson={"source": "synthetic", "overrides": dict(TINY)})
    bad = copy.deepcopy(config)
    bad["lsft"]["centre"] = "local"
    bad["pca_dim"] = "ten"
    write_config(tmp_path, bad)
    proc = snakemake(tmp_path, "-n", "--cores", "1", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1
    assert "unknown key 'lsft.centre' (config/config.yaml:" in out and "'pca_dim' (config/config.yaml:" in out
    assert "is not of type 'integer'" in out and "Failed validating" not in out and "On instance" not in out
    assert len(out.splitlines()) < 25, out

    bad = copy.deepcopy(config)
    bad["datasets"]["my.data"] = bad["datasets"].pop("adamson")
    bad["baselines"]["lpm.v2"] = bad["baselines"].pop("mean_response")
    write_config(tmp_path, bad)
    proc = snakemake(tmp_path, "-n", "--cores", "1", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "MissingInputException" not in out
    assert "datasets: the name 'my.data' is not allowed" in out and "baselines: the name 'lpm.v2' is not allowed" in out
    assert "[A-Za-z0-9_-]+" in out
    assert not (tmp_path / "results").exists()


@pytest.fixture(scope="module")
def finished(small_run, tmp_path_factory):
    """A copy of the shared small finished run: a local dataset with a user gene table (tests/conftest.py)."""
    workdir = copy_run(small_run, tmp_path_factory.mktemp("finished") / "run")
    config = small_run_config()
    tables = _tables(workdir)
    assert tables, "the finished run wrote no tables"
    return workdir, config, tables


@pytest.mark.workflow
def test_deleted_input_after_a_successful_run_stops_at_start_up(finished):
    """Item 1: a configured path that no longer exists is an error before any job; old tables stay."""
    workdir, config, tables = finished
    for rel, key in (("inputs/text_emb.tsv", "baselines.lpm_textGeneEmb.gene.path"), ("inputs/toy.h5ad", "datasets.toy.path")):
        moved = workdir / (rel + ".away")
        (workdir / rel).rename(moved)
        try:
            for args in (("-n", "--cores", "1"), ("--cores", "2")):
                proc = snakemake(workdir, *args, check=False)
                out = proc.stdout + proc.stderr
                assert proc.returncode == 1, out
                assert f"{key}: '{rel}' (= {workdir / rel}) does not exist" in out
                assert "Nothing to be done" not in out
        finally:
            moved.rename(workdir / rel)
        assert _tables(workdir) == tables


@pytest.mark.workflow
@pytest.mark.parametrize("case", ["raw_counts", "bad_names"])
def test_bad_replacement_data_leaves_existing_tables_untouched(finished, case):
    """Items 3 and 4 on a finished run: the rerun stops in its first job; tables are byte-identical."""
    workdir, config, tables = finished
    data = workdir / "inputs" / "toy.h5ad"
    backup = data.read_bytes()
    adata = ad.read_h5ad(data)
    if case == "raw_counts":
        adata.X = sp.csr_matrix(np.expm1(adata.X.toarray()).round())
        expected = "looks like raw counts"
    else:
        adata.obs["condition"] = adata.obs["condition"].astype(str).replace({"ctrl": "Ctrl"})
        adata.obs.loc[adata.obs_names[:3], "condition"] = "ctrl"
        expected = "'Ctrl' ("
    try:
        write_h5ad(adata, data)
        proc = snakemake(workdir, "--cores", "2", check=False)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 1 and expected in out and "inputs/toy.h5ad" in out, out[-3000:]
        assert _tables(workdir) == tables and not _temporaries(workdir)
    finally:
        data.write_bytes(backup)


@pytest.mark.workflow
def test_allow_raw_counts_runs_with_a_loud_warning(tmp_path):
    """Item 4's switch: datasets.<name>.allow_raw_counts: true averages counts as they are, warning in the log."""
    adata = write_toy_data(tmp_path / "inputs" / "counts.h5ad")
    adata.X = sp.csr_matrix(np.expm1(adata.X.toarray()).round())
    write_h5ad(adata, tmp_path / "inputs" / "counts.h5ad")
    config = _small_config(counts={"source": "local", "path": "inputs/counts.h5ad", "allow_raw_counts": True})
    config["baselines"] = {"mean_response": config["baselines"]["mean_response"]}
    write_config(tmp_path, config)
    proc = snakemake(tmp_path, "--cores", "2", check=False)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    log_text = (tmp_path / "results/logs/pseudobulk/counts.log").read_text()
    assert "X looks like raw counts" in log_text and "allow_raw_counts is set, so these values are averaged AS THEY ARE" in log_text
    assert "WARNING" in log_text and "inputs/counts.h5ad" in log_text
    assert (tmp_path / "results/tables/default/counts/lsft_performance.csv").is_file()


BAD_DATA = {
    # dataset name -> (how the file is made from good data, what the error says)
    "condnames": ("conditions 'Ctrl', 'A+B+C' and a bare gene", "condition name(s) in obs['condition'] are not"),
    "ensembl": ("Ensembl var names and no var['gene_name']", "the gene symbols do not match the perturbation targets"),
    "rawcounts": ("integer counts instead of log-normalised values", "X looks like raw counts"),
    "allzero": ("X all zeros", "X is all zeros"),
    "damaged": ("random bytes inside X/data", "values no expression matrix has"),
    "truncated": ("the second half of the file cut off", "the file is truncated"),
    "nan": ("a NaN in X", "X has NaN or infinite values"),
    "negative": ("a negative value in X", "X has negative values"),
    "dupgenes": ("two genes with the same symbol", "duplicated gene names"),
    "noctrl": ("no ctrl cells", "no control cells"),
    "overlap": ("a user split listing a condition in train and test", "in both 'train' and 'test'"),
}


def _make_bad(name: str, good: ad.AnnData, path: Path) -> dict:
    """Write the bad variant ``name`` of ``good`` to ``path``; return its dataset config."""
    adata = good.copy()
    spec = {"source": "local", "path": str(path.relative_to(path.parents[1]))}
    x = adata.X.toarray()
    if name == "condnames":
        cond = adata.obs["condition"].astype(str).to_numpy()
        singles = [c for c in pd.unique(cond) if c != "ctrl"]
        cond[cond == singles[0]] = "Ctrl"
        cond[cond == singles[1]] = "A+B+C"
        cond[cond == singles[2]] = singles[2].split("+")[0]
        adata.obs["condition"] = pd.Categorical(cond)
    elif name == "ensembl":
        adata.var_names = [f"ENSG{i:011d}" for i in range(adata.n_vars)]
        del adata.var["gene_name"]
    elif name == "rawcounts":
        adata.X = sp.csr_matrix(np.expm1(x).round())
    elif name == "allzero":
        adata.X = sp.csr_matrix(x.shape, dtype=np.float32)
    elif name == "nan":
        x[5, 3] = np.nan
        adata.X = sp.csr_matrix(x)
    elif name == "negative":
        x[7, 2] = -1.5
        adata.X = sp.csr_matrix(x)
    elif name == "dupgenes":
        names = adata.var["gene_name"].astype(str).to_numpy()
        names[1] = names[0]
        adata.var["gene_name"] = names
    elif name == "noctrl":
        adata = adata[adata.obs["condition"].astype(str) != "ctrl"].copy()
    write_h5ad(adata, path)
    if name == "damaged":
        _overwrite(path, "X/data", np.random.default_rng(11).bytes(400), at=200)
    elif name == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif name == "overlap":
        conds = [c for c in pd.unique(adata.obs["condition"].astype(str)) if c != "ctrl"]
        split = {"train": ["ctrl", *conds[:20]], "val": [], "test": conds[19:]}
        split_path = path.with_suffix(".split.json")
        split_path.write_text(json.dumps(split))
        spec["split_file"] = str(split_path.relative_to(path.parents[1]))
    return spec


@pytest.fixture(scope="module")
def bad_data_run(tmp_path_factory):
    """One --keep-going run over every bad dataset, plus a good one whose user table matches nothing."""
    workdir = tmp_path_factory.mktemp("bad_data")
    good = write_toy_data(workdir / "inputs" / "good.h5ad")
    datasets = {"good": {"source": "local", "path": "inputs/good.h5ad"}}
    for name in BAD_DATA:
        datasets[name] = _make_bad(name, good, workdir / "inputs" / f"{name}.h5ad")
    genes = [g.lower() for g in good.var["gene_name"]]  # lower-case symbols: match nothing
    write_random_gene_table(workdir / "inputs" / "lower_emb.tsv", genes)
    config = _small_config(**datasets)
    config["baselines"]["lpm_lowerGeneEmb"] = {"gene": {"type": "table", "path": "inputs/lower_emb.tsv"}, "pert": {"type": "training_pca"}}
    write_config(workdir, config)
    proc = snakemake(workdir, "--cores", "2", "--keep-going", check=False)
    logs = {p: p.read_text(errors="replace") for p in workdir.glob("results*/logs/**/*.log")}
    return workdir, proc, logs


def _log_of(logs: dict[Path, str], dataset: str, text: str) -> list[Path]:
    return [p for p, content in logs.items() if f"/{dataset}" in str(p) and text in content]


@pytest.mark.workflow
@pytest.mark.parametrize("name", list(BAD_DATA))
def test_bad_data_stops_the_first_job(bad_data_run, name):
    workdir, proc, logs = bad_data_run
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1
    expected = BAD_DATA[name][1]
    assert _log_of(logs, name, expected), f"no log of {name} says {expected!r}"
    file = "overlap.split.json" if name == "overlap" else f"{name}.h5ad"
    assert any(expected in line and f"inputs/{file}" in line for line in out.splitlines()), out[-5000:]
    if name != "overlap":  # bad data never reaches a model job
        assert not list(workdir.glob(f"results*/{name}/**/embeddings/*")), name
    assert not [p for p in _tables(workdir) if f"/{name}/" in p]


@pytest.mark.workflow
def test_table_matching_nothing_stops_its_embedding(bad_data_run):
    """Item 2: the lower-case table baseline fails in its embedding job, naming layout and counts."""
    workdir, proc, logs = bad_data_run
    hits = _log_of(logs, "good", "gene table (declared as baselines.lpm_lowerGeneEmb.gene), read as genes_as_columns matches 0 of the")
    assert hits, "no embedding log names the table problem"
    assert "would match if upper/lower case were ignored" in logs[hits[0]] and "inputs/lower_emb.tsv" in logs[hits[0]]
    assert _tables(workdir) == {} and not _temporaries(workdir)


# --------------------------------------------------------------------------------------------
# More LSFT chunks than test perturbations (issue item 9)
# --------------------------------------------------------------------------------------------


def test_test_chunks_are_capped_at_the_number_of_tests():
    tests = ["A+ctrl", "B+ctrl", "C+ctrl"]
    shards = [chunk_of(tests, i, 5) for i in range(5)]
    assert shards == [(["A+ctrl"], 3), (["B+ctrl"], 3), (["C+ctrl"], 3), ([], 3), ([], 3)]
    assert [chunk_of(tests, i, 2) for i in range(2)] == [(["A+ctrl", "B+ctrl"], 2), (["C+ctrl"], 2)]
    assert chunk_of([], 0, 4) == ([], 1)
    with pytest.raises(ValueError, match=r"chunk1-of-1 does not exist: chunks are numbered 0 to 0"):
        chunk_of(tests, 1, 1)  # a shard requested by hand past the last one is an error, not an empty table


@pytest.mark.workflow
def test_too_many_test_chunks_are_capped_with_a_log_line_and_change_no_table(small_run, tmp_path):
    """Item 9: test_chunks above the number of test perturbations: capped with a warning, same results (from a copy
    of the shared small run, two shards per baseline)."""
    workdir = copy_run(small_run, tmp_path / "run")
    config = small_run_config()
    per_perturbation = workdir / "results/tables/default/toy/per_perturbation.parquet"
    expected = pd.read_parquet(per_perturbation)
    split = json.loads((workdir / "results/toy/default/seed1/split.json").read_text())
    n_tests = len(split["test"])
    n_chunks = n_tests + 3
    config["lsft"]["test_chunks"] = n_chunks
    write_config(workdir, config)
    snakemake(workdir, "--cores", "2")
    logs = sorted(workdir.glob(f"results/logs/lsft/toy/default/seed1/mean_response/top10/chunk*-of-{n_chunks}.log"))
    assert len(logs) == n_chunks
    warning = re.compile(rf"lsft.test_chunks = {n_chunks} but only (\d+) test perturbations are predictable: capped to \1 chunks")
    used = set()
    for log_file in logs:
        match = warning.search(log_file.read_text())
        assert match, log_file.read_text()
        used.add(int(match.group(1)))
    (n_used,) = used
    assert 0 < n_used <= n_tests  # unmeasured targets are not predictable
    empty = [p for p in logs if re.search(r"chunk \d+ is empty", p.read_text())]
    assert len(empty) == n_chunks - n_used
    # Every test perturbation once, the same values up to rounding (the shards solve one test at a
    # time instead of all at once, which changes the last bits).
    mean_rows = expected[expected["baseline"] == "mean_response"]
    assert len(mean_rows) == n_used and not expected.duplicated(["baseline", "condition"]).any()
    pd.testing.assert_frame_equal(pd.read_parquet(per_perturbation), expected, check_exact=False, rtol=1e-9, atol=1e-12)
    assert not _temporaries(workdir)


# --------------------------------------------------------------------------------------------
# Issue 22: inputs that used to be silently wrong, crash, or mislead
# --------------------------------------------------------------------------------------------


def test_a_mis_cased_target_is_an_error_not_a_silent_drop(tmp_path):
    """Item 4: ``a+ctrl`` where the gene is ``A`` would leave training as "target not measured"."""
    conditions = ["ctrl"] * 4 + ["a+ctrl"] * 3 + ["ctrl+B"] * 3 + ["C+ctrl"] * 2
    path = _write(tmp_path / "cased.h5ad", conditions=conditions)
    with pytest.raises(InputDataError, match=r"cased.h5ad: 1 perturbation target\(s\) match a gene symbol in "
                                             r"var\['gene_name'\] only when upper/lower case is ignored: 'a' \(gene 'A'\)"):
        open_perturb_data(path)


def test_dense_float16_x_is_read_as_float32_by_every_reader(tmp_path):
    """Item 6: the pseudobulk and the noise ceiling read float16 X the same way (as float32), no SciPy error."""
    from lsftbench.evaluation.noise_ceiling import noise_ceiling_from_files

    adata = make_dataset("adamson", seed=3, **TINY)
    x16 = adata.X.toarray().astype(np.float16)
    half = tmp_path / "half.h5ad"
    single = tmp_path / "single.h5ad"
    for path, x in ((half, x16), (single, x16.astype(np.float32))):
        write_h5ad(ad.AnnData(X=x, obs=adata.obs, var=adata.var), path)
    pb_half, pb_single = pseudobulk(half), pseudobulk(single)
    np.testing.assert_array_equal(np.asarray(pb_half.X), np.asarray(pb_single.X))
    write_h5ad(pb_single, tmp_path / "pb.h5ad")
    perts = [c for c in pb_single.obs_names if c != "ctrl"]
    split = {"train": ["ctrl", *perts[6:]], "val": [], "test": perts[:6]}
    (tmp_path / "split.json").write_text(json.dumps(split))
    ceilings = [noise_ceiling_from_files(p, tmp_path / "pb.h5ad", {1: tmp_path / "split.json"}, replicates=2, seed=0)
                for p in (half, single)]
    pd.testing.assert_frame_equal(*ceilings)


def test_x_in_a_layer_only_is_named_with_the_layers(tmp_path):
    """Item 9: X is None (valid AnnData) with the data in a layer: say so, not "corrupted"."""
    adata = make_dataset("adamson", seed=3, **TINY)
    bare = ad.AnnData(obs=adata.obs, var=adata.var, layers={"logcounts": adata.X, "counts": adata.X})
    path = tmp_path / "layers.h5ad"
    bare.write_h5ad(path)
    with pytest.raises(InputDataError, match=r"layers.h5ad: X is empty \(the AnnData has no X matrix\): its data are "
                                             r"in layers 'counts', 'logcounts'; copy the one of log-normalised"):
        pseudobulk(path)


def test_a_file_that_is_not_a_torch_checkpoint_is_said_to_be_one(tmp_path):
    """Item 10: not "pass trust_pickle=True" (no such config key, and unsafe), but what the file is not."""
    from lsftbench.embeddings.pretrained import extract_scfoundation

    ckpt = tmp_path / "models.ckpt"
    ckpt.write_text("this is a text file\n")
    genes = tmp_path / "genes.tsv"
    genes.write_text("gene_name\nA\n")
    with pytest.raises(InputDataError, match=r"models.ckpt: not a PyTorch checkpoint \(a torch.save file is a zip "
                                             r"archive holding data.pkl; this file starts with b'this is ") as err:
        extract_scfoundation(ckpt, genes)
    assert "trust_pickle" not in str(err.value) and "weights_only=False" not in str(err.value)


def test_an_exponent_without_a_dot_gets_the_yaml_hint(tmp_path):
    """Item 11: YAML 1.1 reads ``1e-1`` as text."""
    config = default_config()
    config["ridge_penalty"] = "1e-1"
    with pytest.raises(ConfigError, match=r"'ridge_penalty': '1e-1' is not of type 'number' \(YAML reads '1e-1' as "
                                          r"text, not a number: write 0.1 or 1.0e-1, with a dot in the mantissa\)"):
        validate_config(config, SCHEMA)


def test_a_value_set_with_config_on_the_command_line_is_blamed_on_it():
    """Issue 23: ``--config pca_dim=ten`` named config/config.yaml's line instead of the command line."""
    config = default_config()
    config["pca_dim"] = "ten"
    with pytest.raises(ConfigError) as err:
        validate_config(config, SCHEMA, [REPO / "config" / "config.yaml"], command_line={"pca_dim": "ten"})
    assert "'pca_dim' (set with --config on the command line): 'ten' is not of type 'integer'" in str(err.value)
    with pytest.raises(ConfigError, match=r"'pca_dim' \(.*config.yaml:\d+\): 'ten'"):
        validate_config(config, SCHEMA, [REPO / "config" / "config.yaml"])


def test_a_tab_separated_file_named_csv_is_said_to_be(tmp_path):
    """Item 12."""
    path = tmp_path / "emb.csv"
    pd.DataFrame({"gene": GENES, "d0": np.arange(5.0), "d1": np.arange(5.0)}).to_csv(path, sep="\t", index=False)
    with pytest.raises(InputDataError, match=r"emb.csv: the file name says comma-separated but its header line is "
                                             r"tab-separated \(3 fields\): rename it to .tsv"):
        read_gene_table(path)


@pytest.mark.parametrize("n_perts", [3, 8])
def test_a_dataset_too_small_for_a_simulation_split_is_said_so_at_the_split(tmp_path, n_perts):
    """Item 8: 3 or 8 perturbations used to fail in a fit, naming an .npz."""
    from lsftbench.data.split import check_split_size
    from lsftbench.model.protocol import get_protocol

    path = tmp_path / "small.h5ad"
    write_h5ad(make_dataset("adamson", seed=3, **{**TINY, "n_perts": n_perts, "n_unmeasured": 0}), path)
    result = get_protocol("default").split(path, seed=1)
    n_test = len(result.split["test"])
    assert n_test < 3
    with pytest.raises(ValueError, match=rf"small.h5ad \(split seed 1\): the dataset is too small for a simulation "
                                         rf"split: its {n_perts} perturbations gave {n_test} test and \d+ training "
                                         r"perturbations; the benchmark needs at least 3 test perturbations "
                                         r"\(metrics.min_predictable_tests\) and 2 training perturbations, so about 14"):
        check_split_size(result.split, 3, where=f"{path} (split seed 1)")


def test_results_dir_that_is_a_file_stops_at_start_up(tmp_path):
    """Item 7 (the Snakefile runs this check before the DAG, see test_faults for the run)."""
    from lsftbench.pipeline.settings import SettingsTokens

    (tmp_path / "results").write_text("not a directory\n")
    with pytest.raises(ConfigError, match=r"results_dir: '.*results' is an existing file, not a directory"):
        SettingsTokens(tmp_path / "results", validated_default()).sync()


def validated_default() -> dict:
    config = default_config()
    validate_config(config, SCHEMA)
    return config


@pytest.mark.parametrize("damage", ["cut", "overwritten", "crc", "pickled"])
def test_a_damaged_npz_names_the_file_and_the_rebuild_command(tmp_path, damage):
    """Item 5: never numpy's hint to allow_pickle, never a bare BadZipFile."""
    from lsftbench.io import DamagedFileError, read_npz, write_npz

    path = tmp_path / "emb.npz"
    write_npz(path, A=np.arange(2000.0), names=np.asarray(["a", "b"]))
    raw = bytearray(path.read_bytes())
    if damage == "cut":
        path.write_bytes(bytes(raw[: len(raw) // 2]))
    elif damage == "overwritten":
        path.write_bytes(b"\0" * len(raw))
    elif damage == "crc":
        raw[400] ^= 0xFF  # inside A's data: the zip member's CRC-32 no longer matches
        path.write_bytes(bytes(raw))
    else:
        with open(path, "wb") as fh:
            np.savez(fh, A=np.asarray([{"x": 1}], dtype=object))
    with pytest.raises(DamagedFileError) as err:
        read_npz(path)
    message = str(err.value)
    assert message.startswith(f"{path}: the file is damaged (")
    assert f"snakemake --cores all --forcerun {path}" in message
    assert "allow_pickle" not in message and "allow_pickle=True" not in message


@pytest.mark.parametrize("damage", ["cut", "page"])
def test_a_damaged_parquet_names_the_file_and_the_rebuild_command(tmp_path, damage):
    from lsftbench.io import DamagedFileError, read_parquet, write_parquet

    path = tmp_path / "metrics.parquet"
    write_parquet({"x": np.arange(5000.0)}, path)
    raw = bytearray(path.read_bytes())
    if damage == "cut":
        path.write_bytes(bytes(raw[: len(raw) // 2]))
    else:
        raw[2000] ^= 0xFF  # a data page: its checksum no longer matches
        path.write_bytes(bytes(raw))
    with pytest.raises(DamagedFileError, match=rf"metrics.parquet: the file is damaged .* --forcerun {re.escape(str(path))}"):
        read_parquet(path)


def test_a_damaged_pseudobulk_is_found_by_its_checksum(tmp_path):
    from lsftbench.data.mean_expression import read_mean_expression
    from lsftbench.io import DamagedFileError

    pb = pseudobulk(_write(tmp_path / "d.h5ad"))
    path = tmp_path / "pb.h5ad"
    write_h5ad(pb, path)
    read_mean_expression(path)
    with h5py.File(path, "r+") as f:
        f["X"][0, 0] += 1.0  # the bytes change, the file stays a valid HDF5 file
    with pytest.raises(DamagedFileError, match=r"pb.h5ad: the file is damaged \(the checksum of X does not match"):
        read_mean_expression(path)
