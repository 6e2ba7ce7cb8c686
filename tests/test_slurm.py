"""The default DAG through a real one-node Slurm cluster (profiles/slurm) matches a local run.

The module fixture starts slurmctld + slurmd (+ munged) as root in a temporary directory
(tests/slurm_cluster.py). Plain ``pytest`` never installs system packages: without Slurm the test is
skipped with a one-line reason. ``.ci/run`` installs them first (``.ci/install-slurm.sh``), and
``LSFT_INSTALL_SLURM=1 pytest`` lets this fixture apt-get install them; with LSFT_REQUIRE_SLURM=1 a
skip becomes a failure.

Both runs use the default config shrunk to tiny synthetic datasets (workflow_utils.TINY; the two datasets of
TEST_DATASETS, one split seed and top_pcts [10]: every rule still runs, with fewer shards) and, to stay within a few
minutes on two cores (every Slurm job starts Snakemake twice plus the rule's script: ~9 s per job), the baselines in
TEST_BASELINES: a training-PCA ridge baseline and a cross-dataset ``dataset_pca`` one (a job on RPE1 depending on
K562's pseudobulk; skipped on K562, its source). That is about 20 Slurm jobs covering every rule of the synthetic
default DAG except the pretrained-embedding resources (tests/test_workflow.py covers all baselines locally).
LSFT_SLURM_TEST_BASELINES=all (or a comma-separated list) runs more.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import slurm_cluster
from workflow_utils import copy_workflow, job_counts, tiny_config, write_config

pytestmark = pytest.mark.slurm

TEST_BASELINES = ("lpm_selftrained", "lpm_k562PertEmb")
TEST_DATASETS = ("replogle_k562_essential", "replogle_rpe1_essential")
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
RUN_TIMEOUT = 900  # seconds per Snakemake run; the whole module takes ~4-5 min on 2 idle cores


def _skip(reason: str) -> None:
    message = f"Slurm test not run: {reason}"
    if os.environ.get("LSFT_REQUIRE_SLURM") == "1":
        pytest.fail(f"LSFT_REQUIRE_SLURM=1 but {message}")
    pytest.skip(message)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if os.geteuid() != 0:
        _skip("starting slurmctld/slurmd/munged needs root")
    started = time.monotonic()
    missing = slurm_cluster.missing_commands()
    if missing and os.environ.get("LSFT_INSTALL_SLURM") != "1":
        _skip(f"Slurm is not installed (missing {', '.join(missing)}); install it with `bash .ci/install-slurm.sh` "
              "(as root) or run LSFT_INSTALL_SLURM=1 pytest")
    reason = slurm_cluster.ensure_slurm()
    if reason is not None:
        _skip(reason)
    if missing:
        print(f"\n[slurm] apt-get installed {slurm_cluster.PACKAGES} in {time.monotonic() - started:.0f} s", flush=True)
    started = time.monotonic()
    # Start failures are real failures (Slurm is installed and we are root), not skips.
    handle = slurm_cluster.start_cluster(tmp_path_factory.mktemp("slurm"), cpus=2)
    print(f"\n[slurm] one-node cluster up in {time.monotonic() - started:.1f} s ({handle.conf})", flush=True)
    try:
        yield handle
    finally:
        handle.stop()


def _test_config() -> dict:
    config = tiny_config(top_pcts=[10], split={"seeds": [1], "train_gene_set_size": 0.75})
    config["datasets"] = {name: config["datasets"][name] for name in TEST_DATASETS}
    wanted = os.environ.get("LSFT_SLURM_TEST_BASELINES", ",".join(TEST_BASELINES))
    if wanted != "all":
        names = [b.strip() for b in wanted.split(",") if b.strip()]
        config["baselines"] = {name: config["baselines"][name] for name in names}
    return config


def _checkout(dest: Path, config: dict) -> Path:
    """A copy of the repository's workflow files (profiles/ included), with the test config."""
    dest.mkdir(parents=True, exist_ok=True)
    copy_workflow(dest)
    write_config(dest, config)
    return dest


class _Run:
    """A Snakemake run started in ``workdir`` (as a user would from the repository root)."""

    def __init__(self, workdir: Path, env: dict, *args: str):
        self.workdir, self.args, self.started = workdir, args, time.monotonic()
        self.out_path = workdir / "snakemake.out"
        with open(self.out_path, "w") as out:
            self.proc = subprocess.Popen([SNAKEMAKE, *args], cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT)

    def finish(self) -> str:
        """Wait (bounded) for the run; return its output, raise if it failed."""
        try:
            self.proc.wait(timeout=max(1.0, RUN_TIMEOUT - (time.monotonic() - self.started)))
        finally:
            self.stop()
        out = self.out_path.read_text()
        print(f"[slurm] snakemake {' '.join(self.args)}: {time.monotonic() - self.started:.0f} s", flush=True)
        if self.proc.returncode != 0:
            raise AssertionError(f"snakemake {' '.join(self.args)} failed ({self.proc.returncode}) in {self.workdir}:\n{out[-8000:]}")
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # Snakemake cancels its Slurm jobs on SIGTERM
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def _job_blocks(log: str) -> dict[str, dict]:
    """Snakemake job id -> rule, threads and resources, from the job blocks Snakemake prints."""
    jobs = {}
    for m in re.finditer(r"^(?:local)?rule (\w+):\n((?:[ \t]+\S.*\n)+)", log, flags=re.M):
        body = m.group(2)
        jobid = re.search(r"^\s+jobid: (\d+)$", body, flags=re.M)
        if not jobid:
            continue
        threads = re.search(r"^\s+threads: (\d+)$", body, flags=re.M)
        resources = re.search(r"^\s+resources: (.*)$", body, flags=re.M)
        res = dict(kv.split("=", 1) for kv in resources.group(1).split(", ")) if resources else {}
        jobs[jobid.group(1)] = {"rule": m.group(1), "threads": int(threads.group(1)) if threads else 1, "resources": res}
    return jobs


def _seconds(duration: str) -> int:
    """A Slurm duration ([days-][hh:]mm:ss) in seconds."""
    days, _, hms = duration.rpartition("-")
    secs = 0
    for part in hms.split(":"):
        secs = secs * 60 + int(part)
    return int(days or 0) * 86400 + secs


@pytest.fixture(scope="module")
def runs(cluster, tmp_path_factory):
    """The same DAG run once locally and once through Slurm with profiles/slurm."""
    config = _test_config()
    base = tmp_path_factory.mktemp("slurm_runs")
    local, remote = _checkout(base / "local", config), _checkout(base / "slurm", config)
    venv_bin = str(Path(sys.executable).parent)
    env = {**cluster.env, "PATH": f"{venv_bin}{os.pathsep}{cluster.env['PATH']}"}
    planned = job_counts(_Run(remote, env, "-n", "--cores", "1").finish())
    slurm_env = {**env, "LSFT_SLURM_PARTITION": cluster.partition, "LSFT_SLURM_STATUS_COMMAND": "squeue"}
    # The two runs are independent: run them side by side (the Slurm run mostly waits on polling).
    slurm_run = _Run(
        remote,
        slurm_env,
        "--profile",
        "profiles/slurm",
        # Test-only speed-ups; everything else comes from the profile.
        "--slurm-init-seconds-before-status-checks",
        "1",
        "--slurm-keep-successful-logs",
    )
    try:
        local_log = _Run(local, env, "--cores", "2").finish()
        slurm_log = slurm_run.finish()
    finally:
        slurm_run.stop()
    return {"local": local, "slurm": remote, "planned": planned, "local_log": local_log, "slurm_log": slurm_log}


def test_jobs_went_through_sbatch_with_rule_resources(runs, cluster):
    log, workdir, planned = runs["slurm_log"], runs["slurm"], runs["planned"]
    blocks = _job_blocks(log)
    submitted = {}  # snakemake job id -> last SLURM job id (a retry resubmits)
    for m in re.finditer(r"Job (\d+) has been submitted with SLURM jobid (\d+) \(log: (.+?)\)\.", log):
        submitted[m.group(1)] = (m.group(2), Path(m.group(3)))
    expected = {rule: n for rule, n in planned.items() if rule != "all"}  # `all` has nothing to run
    by_rule: dict[str, int] = {}
    for jobid in submitted:
        by_rule[blocks[jobid]["rule"]] = by_rule.get(blocks[jobid]["rule"], 0) + 1
    assert by_rule == expected, f"jobs submitted per rule {by_rule} != planned {expected}"

    slurm_jobs = cluster.jobs()  # finished jobs stay visible for MinJobAge=7200 s
    for jobid, (slurm_id, slurm_log) in submitted.items():
        rule, threads, res = blocks[jobid]["rule"], blocks[jobid]["threads"], blocks[jobid]["resources"]
        assert slurm_log.is_file() and f"rule_{rule}" in slurm_log.parts, slurm_log
        assert slurm_id in slurm_jobs, f"SLURM job {slurm_id} ({rule}) unknown to slurmctld"
        info = slurm_jobs[slurm_id]
        assert info["JobState"] == "COMPLETED", (rule, info["JobState"], slurm_log.read_text()[-3000:])
        assert info["Partition"] == cluster.partition
        assert Path(info["WorkDir"]).resolve() == workdir.resolve()
        assert info["Comment"].startswith(f"rule_{rule}")
        # threads -> --cpus-per-task, mem_mb -> --mem, runtime (min) -> --time
        assert int(info["NumCPUs"]) == threads, (rule, info["NumCPUs"], threads)
        assert info["MinMemoryNode"] == f"{res['mem_mb']}M", (rule, info["MinMemoryNode"], res)
        assert _seconds(info["TimeLimit"]) == 60 * int(res["runtime"]), (rule, info["TimeLimit"], res)
    run_s = [_seconds(slurm_jobs[slurm_id]["RunTime"]) for slurm_id, _ in submitted.values()]
    print(f"\n[slurm] {len(run_s)} Slurm jobs, mean run time {sum(run_s) / len(run_s):.1f} s", flush=True)


def test_slurm_tables_equal_local_tables(runs):
    local_tables = sorted(p.relative_to(runs["local"]) for p in (runs["local"] / "results" / "tables").rglob("*.csv"))
    slurm_tables = sorted(p.relative_to(runs["slurm"]) for p in (runs["slurm"] / "results" / "tables").rglob("*.csv"))
    assert local_tables and local_tables == slurm_tables
    assert Path("results/tables/default/combined.csv") in local_tables
    for rel in local_tables:
        a, b = pd.read_csv(runs["local"] / rel), pd.read_csv(runs["slurm"] / rel)
        assert len(a) > 0 or rel.name == "model_comparisons.csv", rel  # no models of one's own: its header only
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12, atol=1e-12, obj=str(rel))
