"""benchmarks/run_benchmark.py --workflow norman (issue 28, "Speed"): the Norman-sized doubles run's config and report,
on a tiny stand-in of its input (the run itself is measured with that command, not here)."""

from __future__ import annotations

import importlib.util

import yaml
from workflow_utils import REPO

from lsftbench.data.synthetic.doubles import write_doubles_dataset
from lsftbench.data.synthetic.presets import preset_perturbations
from lsftbench.pipeline.config import baselines_for, check_config, has_double_perturbations
from lsftbench.pipeline.preflight import validate_config

TINY = dict(n_genes=60, n_targets=8, n_doubles=10, cells_per_pert=6, n_ctrl=30, interaction_pool=20)


def _benchmark():
    spec = importlib.util.spec_from_file_location("run_benchmark", REPO / "benchmarks" / "run_benchmark.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_norman_variant_runs_the_doubles_config_on_a_local_h5ad_and_reports_the_targets(tmp_path):
    bench = _benchmark()
    sizes = bench.NORMAN_OVERRIDES
    assert preset_perturbations("norman", sizes) == 105 + 131 and sizes["n_genes"] == 5_000
    assert 89_000 < (105 + 131) * sizes["cells_per_pert"] + sizes["n_ctrl"] < 91_000  # ≈ 90k cells
    (tmp_path / "norman").mkdir()
    write_doubles_dataset(tmp_path / "norman" / "data.h5ad", "norman", 1, **TINY)
    config, data = bench._norman_config(tmp_path, reuse_input=True)  # the file is there: described, not generated
    assert data["n_conditions"] == 1 + 8 + 10 and data["reused"]
    doubles = yaml.safe_load((REPO / "config" / "doubles.yaml").read_text())
    assert config["datasets"] == {"norman": {"source": "local", "path": str(tmp_path / "norman" / "data.h5ad")}}
    assert config["split"] == {**doubles["split"], "method": "paper_doubles"}
    assert config["baselines"] == doubles["baselines"] and config["metrics"] == doubles["metrics"]
    validate_config(config, REPO / "config" / "schema.yaml")
    check_config(config)
    assert has_double_perturbations(config, "norman") is True  # so `all` asks for the interaction analysis
    assert set(baselines_for(config, "norman", "default")) == set(doubles["baselines"])

    job = {"jobs": 1, "wall_s": 40.0, "cpu_s": 35.0, "startup_cpu_s": 0.03, "max_wall_s": 40.0, "heavy": ["scipy"]}
    w = {"variant": "norman", "cores": 2, "wall_s": 85.0, "load_before": 0.4, "load_after": 0.5, "test_chunks": 1,
         "command": "snakemake --cores 2 all", "input": data,
         "rules": {"differential_expression": {**job, "max_rss_mb": 1900.0}, "lsft": {**job, "max_rss_mb": 200.0}}}
    text = "\n".join(bench.render_workflow(w))
    assert "| peak memory, largest job (MB) |" in text and "| differential_expression | 1 |" in text
    assert "≤ 90 s wall on 2 cores | 85.0 s (load 0.4) | PASS |" in text
    assert "| 1.86 GB (`differential_expression`) | PASS |" in text
    w["rules"]["differential_expression"]["max_rss_mb"] = 2100.0
    assert "| 2.05 GB (`differential_expression`) | FAIL |" in "\n".join(bench.render_workflow(w))
