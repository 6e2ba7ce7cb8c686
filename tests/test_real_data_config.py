"""The real-data config: full DAG in a dry run without network; download rules end to end on loopback."""

from __future__ import annotations

import functools
import http.server
import threading
import zipfile

import pandas as pd
import pytest
import yaml
from workflow_utils import REPO, TINY, planned_jobs, snakemake, write_config

from lsftbench.data.download import GEARS_FILES
from lsftbench.data.synthetic.datasets import make_dataset
from lsftbench.io import write_h5ad

pytestmark = pytest.mark.workflow


def test_real_config_dry_run_lists_full_dag(tmp_path):
    config = yaml.safe_load((REPO / "config" / "gears.yaml").read_text())
    write_config(tmp_path, config)
    jobs = planned_jobs(tmp_path)
    n_baselines = len(config["baselines"])
    pairs = 3 * n_baselines - 2  # dataset_pca baselines are not run on their own source
    assert jobs["download_gears_dataset"] == 3 and jobs["download_go_resources"] == 1
    seeds = len(config["split"]["seeds"])
    assert jobs["embedding"] == pairs * seeds and jobs["global_fit"] == pairs * seeds
    assert jobs["lsft"] == pairs * seeds * len(config["top_pcts"]) * config["lsft"]["test_chunks"]
    assert jobs["split"] == 3 * seeds and jobs["dataset_tables"] == 3


@pytest.fixture
def dataverse(tmp_path):
    """A loopback HTTP server serving a GEARS-style adamson archive at /<file id>."""
    root = tmp_path / "served"
    root.mkdir()
    h5ad = tmp_path / "perturb_processed.h5ad"
    write_h5ad(make_dataset("adamson", seed=4, **TINY), h5ad)
    entry = GEARS_FILES["adamson"]
    with zipfile.ZipFile(root / str(entry.file_id), "w") as zf:
        zf.write(h5ad, entry.member)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_download_source_runs_end_to_end_against_loopback(tmp_path, dataverse):
    config = yaml.safe_load((REPO / "config" / "gears.yaml").read_text())
    config["datasets"] = {"adamson": {"source": "gears"}}
    config["download"].update(base_url=dataverse, retries=1, timeout=20)
    config["go_filter"] = "off"
    config["lsft"]["test_chunks"] = 2
    config["top_pcts"] = [10]
    config["split"]["seeds"] = [1]
    config["baselines"] = {k: config["baselines"][k] for k in ("lpm_selftrained", "mean_response")}
    workdir = tmp_path / "work"
    write_config(workdir, config)
    snakemake(workdir, "--cores", "2")
    lock = yaml.safe_load((workdir / "resources" / "sha256.lock.json").read_text())
    assert "adamson.zip" in lock and len(lock["adamson.zip"]) == 64
    perf = pd.read_csv(workdir / "results/tables/default/adamson/lsft_performance.csv")
    assert set(perf["Baseline"]) == {"lpm_selftrained", "mean_response"} and set(perf["Top %"]) == {"10%"}
    assert planned_jobs(workdir) == {}
