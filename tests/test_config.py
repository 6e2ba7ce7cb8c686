"""Config validation at start-up: schema errors and cross-key checks give clear messages."""

import pytest
from snakemake.utils import validate
from workflow_utils import REPO, default_config, snakemake, write_config

from lsftbench.pipeline.config import ConfigError, baselines_for, check_config, pct_label, skipped_baselines

SCHEMA = str(REPO / "config" / "schema.yaml")


def test_default_config_is_valid_and_gets_defaults():
    config = default_config()
    del config["pca_dim"]
    validate(config, SCHEMA)
    assert config["pca_dim"] == 10 and config["lsft"]["center"] == "local"
    check_config(config)


@pytest.mark.parametrize(
    "change",
    [
        {"ridge_penalty": -1},
        {"top_pcts": [0]},
        {"lsft": {"center": "median"}},
        {"pca_dim": 0},
        {"unknown_key": 1},
    ],
)
def test_schema_rejects_bad_values(change):
    config = {**default_config(), **change}
    with pytest.raises(Exception):
        validate(config, SCHEMA)


def test_cross_key_problems_are_named():
    config = default_config()
    config["baselines"]["lpm_k562PertEmb"]["pert"]["dataset"] = "nope"
    config["datasets"]["adamson"] = {"source": "local"}
    with pytest.raises(ConfigError) as err:
        check_config(config)
    assert "baselines.lpm_k562PertEmb.pert" in str(err.value) and "datasets.adamson" in str(err.value)


def test_same_source_dataset_pca_is_skipped_with_reason():
    config = default_config()
    assert "lpm_k562PertEmb" not in baselines_for(config, "replogle_k562_essential")
    assert "lpm_k562PertEmb" in baselines_for(config, "adamson")
    assert "no non-leaking embedding" in skipped_baselines(config, "replogle_k562_essential")["lpm_k562PertEmb"]


def test_pct_labels():
    assert [pct_label(p) for p in (1, 5.0, 10, 0.5)] == ["1", "5", "10", "0.5"]


def test_snakemake_reports_bad_value_at_startup(tmp_path):
    config = default_config()
    config["lsft"]["center"] = "median"
    write_config(tmp_path, config)
    proc = snakemake(tmp_path, "-n", "--cores", "1", check=False)
    assert proc.returncode != 0
    assert "median" in proc.stdout + proc.stderr and "center" in proc.stdout + proc.stderr


def test_old_single_split_seed_gets_a_hint():
    config = default_config()
    config["split"] = {"seed": 1}
    validate(config, SCHEMA)
    with pytest.raises(ConfigError, match=r"split.seed: replaced by split.seeds, a list"):
        check_config(config)


@pytest.mark.parametrize(
    "key,value",
    [("scale", "counts"), ("condition_column", "target_gene"), ("control_label", "NT"), ("cell_level", False),
     ("quantity", "delta")],
)
def test_a_model_read_option_changes_only_that_models_tokens(key, value):
    """The settings token of a model holds how its file is read: changing one option reruns only that model's
    evaluate_model jobs (and the tables, which read their outputs), never another model's nor any other job."""
    from lsftbench.pipeline.preflight import validate_config
    from lsftbench.pipeline.settings import settings_groups

    config = default_config()
    config["models"] = {"mine": {"path": "p/{dataset}_{seed}.h5ad", "quantity": "expression"},
                        "other": {"path": "q/{dataset}_{seed}.csv", "quantity": "expression"}}
    validate_config(config, SCHEMA)
    assert config["models"]["mine"]["scale"] == "log" and config["models"]["mine"]["cell_level"] == "auto"
    before = settings_groups(config)
    config["models"]["mine"][key] = value
    if key == "quantity":
        config["models"]["mine"]["scale"] = "log"
    validate_config(config, SCHEMA)
    check_config(config)
    after = settings_groups(config)
    changed = {g for g in after if after[g] != before.get(g)}
    datasets = [d for d, ds in config["datasets"].items() if ds.get("benchmark", True)]
    expected = {f"models/mine/{d}/seed{s}" for d in datasets for s in config["split"]["seeds"]}
    # the run index lists every setting: it is rewritten too
    assert changed - {"run_index/default", "run_index/seed_compat"} == expected
    assert all(after[g][key] == value for g in expected)


def test_scale_counts_needs_expression():
    config = default_config()
    config["models"] = {"mine": {"path": "p/{dataset}_{seed}.h5ad", "quantity": "delta", "scale": "counts"}}
    with pytest.raises(ConfigError) as err:
        check_config(config)
    assert "models.mine: scale: counts is for predicted counts per cell, which are expression: set quantity: " \
           "expression" in str(err.value)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        # the DE step only (issue 29); the tables follow from its output, de.h5
        ("de_test", "welch", {"de"}),
        # every method's metrics, the noise ceiling and the tables; not the progress methods' predictions (issue 26)
        ("exclude_target_gene", True, None),
    ],
)
def test_a_metrics_option_changes_only_the_tokens_of_what_it_changes(key, value, expected):
    from lsftbench.pipeline.preflight import validate_config
    from lsftbench.pipeline.settings import settings_groups

    config = default_config()
    validate_config(config, SCHEMA)
    before = settings_groups(config)
    config["metrics"][key] = value
    after = settings_groups(config)
    changed = {g for g in after if after[g] != before.get(g)} - {"run_index/default", "run_index/seed_compat"}
    if expected is None:
        expected = {"noise_ceiling", "aggregation/default", "aggregation/seed_compat", "aggregation/audit"}
        expected |= {g for g in after if g.startswith(("fit/", "lsft/", "models/"))}
    assert changed == expected
    assert "progress" not in changed and not any(g.startswith(("embedding/", "data/")) for g in changed)
