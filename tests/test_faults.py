"""Faults while writing: permissions, a full disk, a kill -9 at any point (issue items 10-12).

* Outputs get the user's umask like files of any other tool (not ``mkstemp``'s 0600).
* A full disk is one clear "no space left on device" error naming the output; no segmentation
  fault, no temporary file left, an existing output untouched. Tested on a small tmpfs the test
  mounts itself; skipped (with the reason) only where mounting is not permitted.
* ``kill -9`` of the whole Snakemake process group at several points, each followed by the resume
  commands the README gives, ends with tables byte-identical to an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from workflow_utils import (
    REPO,
    SNAKEMAKE,
    TINY,
    copy_run,
    job_counts,
    planned_jobs,
    small_run_config,
    snakemake,
    tiny_config,
    write_config,
    write_small_run_inputs,
    write_toy_data,
)

from lsftbench.data.synthetic.datasets import make_dataset
from lsftbench.embeddings.gene_tables import write_gene_table
from lsftbench.io import (
    DiskFullError,
    atomic_path,
    write_csv,
    write_h5ad,
    write_json,
    write_npz,
    write_parquet,
    write_text,
)

#: What the README (and profiles/default/config.yaml) tell users to run after a kill -9: release the
#: lock once, then rerun the same command; ``rerun-incomplete: true`` in the workflow's default
#: profile (applied to every run) reruns the jobs the kill left incomplete.
RESUME = (("--unlock",), ("--cores", "2"))


def _frame() -> pd.DataFrame:
    return pd.DataFrame({"a": np.arange(5), "b": np.linspace(0, 1, 5)})


def _table() -> pd.DataFrame:
    return pd.DataFrame(np.eye(3), index=pd.Index(["G1", "G2", "G3"], name="gene"), columns=["dim_0", "dim_1", "dim_2"])


WRITERS = {
    "json": lambda p: write_json({"a": [1, 2]}, p),
    "txt": lambda p: write_text("hello\n", p),
    "parquet": lambda p: write_parquet(_frame(), p),
    "columns.parquet": lambda p: write_parquet(dict(_frame()), p),
    "csv": lambda p: write_csv(_frame(), p),
    "h5ad": lambda p: write_h5ad(ad.AnnData(X=np.ones((3, 2))), p),
    "npz": lambda p: write_npz(p, x=np.arange(4)),
    "tsv": lambda p: write_gene_table(_table(), p),
}


@contextlib.contextmanager
def _umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


# --------------------------------------------------------------------------------------------
# Permissions (item 11) and leftovers
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002, 0o077])
def test_outputs_follow_the_umask(tmp_path, mask):
    with _umask(mask):
        for ext, write in WRITERS.items():
            path = tmp_path / f"out.{ext}"
            write(path)
            assert (path.stat().st_mode & 0o777) == (0o666 & ~mask), ext
            control = tmp_path / f"control.{ext}"
            control.write_text("x")  # what any other tool creates
            assert path.stat().st_mode & 0o777 == control.stat().st_mode & 0o777


def test_failed_write_keeps_the_existing_output_and_no_temporary(tmp_path):
    path = tmp_path / "table.csv"
    write_text("old\n", path)
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert path.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["table.csv"]


def test_temporaries_of_a_killed_writer_are_removed_by_the_next_write(tmp_path):
    stale = [tmp_path / ".pseudobulk.h5ad.k3x_9qab.tmp.h5ad", tmp_path / ".pseudobulk.h5ad.0123456789ab.tmp.h5ad"]
    others = [tmp_path / ".other.h5ad.k3x_9qab.tmp.h5ad", tmp_path / ".pseudobulk.h5ad.notes", tmp_path / "keep.txt"]
    for p in stale + others:
        p.write_text("left over")
    write_h5ad(ad.AnnData(X=np.ones((2, 2))), tmp_path / "pseudobulk.h5ad")
    assert not any(p.exists() for p in stale) and all(p.exists() for p in others)
    assert ad.read_h5ad(tmp_path / "pseudobulk.h5ad").shape == (2, 2)


# --------------------------------------------------------------------------------------------
# A full disk (item 10): a tmpfs of a few pages
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0777", "tmpfs", str(where)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"DISK-FULL TEST NOT RUN: cannot mount a {size} tmpfs at {where} ({proc.stderr.strip()}); needs root or CAP_SYS_ADMIN")
    try:
        yield where
    finally:
        if subprocess.run(["umount", str(where)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(where)], capture_output=True)


def _too_big(ext: str) -> object:
    rng = np.random.default_rng(0)
    big = pd.DataFrame(rng.random((20_000, 8)), columns=[f"c{k}" for k in range(8)])
    table = pd.DataFrame(rng.random((3000, 30)), index=pd.Index([f"G{i}" for i in range(3000)], name="gene"))
    return {
        "json": lambda p: write_json({"x": rng.random(40_000).tolist()}, p),
        "txt": lambda p: write_text("x" * 400_000, p),
        "parquet": lambda p: write_parquet(big, p),
        "columns.parquet": lambda p: write_parquet({c: big[c].to_numpy() for c in big}, p),
        "csv": lambda p: write_csv(big, p),
        "h5ad": lambda p: write_h5ad(ad.AnnData(X=rng.random((400, 200))), p),
        "npz": lambda p: write_npz(p, x=rng.random(60_000)),
        "tsv": lambda p: write_gene_table(table, p),
    }[ext]


@pytest.mark.parametrize("ext", list(WRITERS))
def test_disk_full_is_a_clear_error_and_leaves_nothing(tmp_path, ext):
    with _tmpfs(tmp_path / "fs", "256k") as fs:
        path = fs / f"out.{ext}"
        WRITERS[ext](path)  # a small output that fits
        before = path.read_bytes()
        with pytest.raises(DiskFullError) as err:
            _too_big(ext)(path)
        assert f"no space left on device while writing {path}" in str(err.value) and err.value.errno == 28
        assert path.read_bytes() == before
        assert sorted(p.name for p in fs.iterdir()) == [path.name]  # no temporary left


_H5AD_WRITER = """
import sys
import numpy as np, anndata as ad, pandas as pd
from lsftbench.io import write_h5ad
n = int(sys.argv[2])
obs = pd.DataFrame({"condition": [f"c{i % 7}" for i in range(n)]}, index=[f"o{i}" for i in range(n)])
write_h5ad(ad.AnnData(X=np.random.default_rng(0).random((n, 100)), obs=obs), sys.argv[1])
"""


def test_h5ad_on_a_filling_disk_never_crashes(tmp_path):
    """HDF5 used to segfault at exit when the disk filled up while it flushed metadata at close.

    Sizes around the tmpfs capacity hit every failure point (data, metadata at close); each write
    runs in its own process with the error uncaught, as in a Snakemake job.
    """
    script = tmp_path / "writer.py"
    script.write_text(_H5AD_WRITER)
    with _tmpfs(tmp_path / "fs", "256k") as fs:
        outcomes = {}
        for rows in (250, 290, 300, 310, 315, 320, 330, 400):
            target = fs / "x.h5ad"
            proc = subprocess.run([sys.executable, str(script), str(target), str(rows)], capture_output=True, text=True)
            outcomes[rows] = proc.returncode
            assert proc.returncode in (0, 1), f"{rows} rows: exit status {proc.returncode}\n{proc.stderr[-2000:]}"
            if proc.returncode == 1:
                assert f"DiskFullError: [Errno 28] no space left on device while writing {target}" in proc.stderr
                assert list(fs.iterdir()) == []
            else:
                assert ad.read_h5ad(target).shape == (rows, 100)
                target.unlink()
        assert outcomes[250] == 0 and outcomes[400] == 1


# --------------------------------------------------------------------------------------------
# Workflow level
# --------------------------------------------------------------------------------------------


def _tables(workdir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(workdir)): p.read_bytes() for p in sorted(workdir.glob("results*/**/tables/**/*")) if p.is_file()}


def _temporaries(workdir: Path) -> list[str]:
    return [str(p) for p in workdir.glob("results*/**/.*.tmp*")]


@pytest.mark.workflow
def test_disk_full_during_a_job(tmp_path):
    """The pseudobulk output does not fit: the job fails with the clear message, twice in a row."""
    workdir = tmp_path / "run"
    (workdir / "inputs").mkdir(parents=True)
    adata = make_dataset("adamson", seed=2, n_genes=400, n_perts=30, n_unmeasured=1, cells_per_pert=4, n_ctrl=40)
    write_h5ad(adata, workdir / "inputs" / "toy.h5ad")
    config = tiny_config()
    config["datasets"] = {"toy": {"source": "local", "path": "inputs/toy.h5ad"}}
    config["baselines"] = {"lpm_selftrained": config["baselines"]["lpm_selftrained"]}
    config["top_pcts"] = [10]
    config["split"] = {"seeds": [1]}
    write_config(workdir, config)
    with _tmpfs(workdir / "results", "96k"):
        for attempt in (1, 2):
            proc = snakemake(workdir, "--cores", "1", check=False)
            out = proc.stdout + proc.stderr
            assert proc.returncode == 1, out[-3000:]
            assert re.search(r"DiskFullError: \[Errno 28\] no space left on device while writing \S*pseudobulk\.h5ad", out), out[-4000:]
            assert not re.search(r"Segmentation fault|SIGSEGV|signal 11|exit status (-11|139)", out), out[-4000:]
            assert not _temporaries(workdir) and not list((workdir / "results").glob("**/pseudobulk.h5ad"))
            assert _tables(workdir) == {}


def _run_and_kill(workdir: Path, fraction: float) -> tuple[int, int]:
    """Start the run; SIGKILL its whole process group once ``fraction`` of its steps are done.

    Returns (steps done when killed, steps of the run); (-1, -1) if it finished first.
    """
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(workdir), *RESUME[1]]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        for line in proc.stderr:
            m = re.search(r"(\d+) of (\d+) steps", line)
            if m and int(m.group(1)) >= max(1, int(fraction * int(m.group(2)))):
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return int(m.group(1)), int(m.group(2))
        proc.wait()
        return -1, -1
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.workflow
def test_kill_9_at_any_point_then_resume_gives_identical_tables(small_run, tmp_path):
    """The uninterrupted reference is the shared small run; the killed run starts from nothing with its config."""
    expected = _tables(small_run)
    assert expected

    workdir = tmp_path / "killed"
    write_small_run_inputs(workdir)
    write_config(workdir, small_run_config())
    kills = []
    for fraction in (0.0, 0.3, 0.6, 0.95):  # after the first job, a third, ..., just before the end
        done, total = _run_and_kill(workdir, fraction)
        kills.append((fraction, done, total))
        assert done >= 0, f"the run finished before the kill at {fraction}: {kills}"
        proc = snakemake(workdir, *RESUME[0], check=False)
        assert proc.returncode == 0, proc.stderr[-3000:]
    snakemake(workdir, *RESUME[1])
    assert _tables(workdir) == expected, kills
    assert not _temporaries(workdir)
    assert planned_jobs(workdir) == {}


# --------------------------------------------------------------------------------------------
# Issue 22: nothing stale, nothing damaged — inputs replaced under their old mtime, settings
# without .snakemake/, damaged intermediates, a second run at the same time
# --------------------------------------------------------------------------------------------


#: The small run's ridge baselines (workflow_utils.small_run_config): the ones a change of λ reruns (mean_response
#: has no λ).
RIDGE = ("lpm_selftrained", "lpm_textGeneEmb")
#: Its LSFT shards per (baseline, K).
CHUNKS = small_run_config()["lsft"]["test_chunks"]


def _performance(workdir: Path) -> pd.DataFrame:
    return pd.read_csv(workdir / "results" / "tables" / "default" / "toy" / "lsft_performance.csv")


@pytest.mark.workflow
def test_an_input_replaced_under_its_old_mtime_reruns_and_changes_the_tables(small_run, tmp_path):
    """Item 1: ``cp -p`` of another dataset over the input used to rerun nothing; the copy itself (new inode and
    change time, same content) must rerun nothing."""
    workdir = copy_run(small_run, tmp_path / "w")
    assert planned_jobs(workdir) == {}  # copied: same content, nothing to do
    before = _performance(workdir)
    data = workdir / "inputs" / "toy.h5ad"
    stamp = data.stat()
    other = tmp_path / "other.h5ad"
    write_toy_data(other, seed=6)
    data.write_bytes(other.read_bytes())
    os.utime(data, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # what cp -p / rsync -a / tar x do
    assert data.stat().st_mtime_ns == stamp.st_mtime_ns
    jobs = planned_jobs(workdir)
    assert {"pseudobulk", "split", "global_fit", "lsft", "dataset_tables"} <= set(jobs)
    snakemake(workdir, "--cores", "2")
    after = _performance(workdir)
    assert not np.allclose(after["Local Pearson r"], before["Local Pearson r"])
    assert planned_jobs(workdir) == {}


@pytest.mark.workflow
def test_settings_changed_without_snakemake_metadata_rerun_what_they_change(small_run, tmp_path):
    """Item 2 (and issue 23): with .snakemake/ gone, λ reruns the ridge fits and shards only (mean_response has
    no λ) and every table says which λ made it; a dry run with other settings, then the old ones, reruns nothing."""
    workdir = copy_run(small_run, tmp_path / "w")
    import shutil

    shutil.rmtree(workdir / ".snakemake")
    assert planned_jobs(workdir) == {}
    config = small_run_config()
    changed = copy.deepcopy(config)
    changed["ridge_penalty"] = 0.5
    write_config(workdir, changed)
    jobs = planned_jobs(workdir)
    assert jobs["global_fit"] == len(RIDGE) and jobs["lsft"] == len(RIDGE) * CHUNKS  # the ridge baselines, not mean_response
    assert jobs["progress_methods"] == 1 and "embedding" not in jobs and "pseudobulk" not in jobs
    write_config(workdir, config)  # the dry run was only a look: back to the settings of the results
    assert planned_jobs(workdir) == {}
    write_config(workdir, changed)
    snakemake(workdir, "--cores", "2")
    md = (workdir / "results" / "tables" / "default" / "toy" / "lsft_performance.md").read_text()
    assert "Ridge penalty λ 0.5" in md and "Every setting: `tables/default/README.md`" in md
    summary = pd.read_csv(workdir / "results" / "tables" / "default" / "toy" / "summary.csv").set_index("Statistic")
    assert summary.loc["Setting: Ridge penalty λ", "Value"] == "0.5"
    index = (workdir / "results" / "tables" / "default" / "README.md").read_text()
    assert "ridge_penalty: 0.5" in index and "n_resamples: 200" in index and "Made with" not in index.split("```")[1]
    shutil.rmtree(workdir / ".snakemake")
    write_config(workdir, config)  # back to λ 0.1 after a real run with 0.5: the fits must rerun
    assert planned_jobs(workdir)["global_fit"] == len(RIDGE)


@pytest.mark.workflow
def test_damaged_bytes_in_the_shared_gram_matrix_stop_the_shard_with_the_rebuild_command(small_run, tmp_path):
    """Item 3: the shard used to run on the damaged matrix and exit 0 with wrong tables."""
    workdir = copy_run(small_run, tmp_path / "w")
    expected = _performance(workdir)
    shared = Path("results/toy/default/seed1/lsft/lpm_selftrained/shared")
    gram = workdir / shared / "gram_targets.npy"  # the Gram matrix with the targets column
    raw = bytearray(gram.read_bytes())
    raw[200] ^= 0x10  # past the .npy header: a valid-looking file with one wrong value
    gram.write_bytes(bytes(raw))
    shard = next((workdir / "results/toy/default/seed1/lsft/lpm_selftrained/top10").glob("chunk*.parquet"))
    shard.unlink()  # the shard reruns, reading the shared products
    proc = snakemake(workdir, "--cores", "2", check=False)
    assert proc.returncode != 0
    log = (workdir / "results/logs/lsft/toy/default/seed1/lpm_selftrained/top10" / f"{shard.stem}.log").read_text()
    assert (f"{shared}: the file is damaged (the checksum of gram_targets.npy does not match the one in its meta.json)" in log)
    assert f"snakemake --cores all --forcerun {shared}" in log
    assert not shard.exists()
    snakemake(workdir, "--cores", "2", "--forcerun", str(shared))  # the command the message gives
    pd.testing.assert_frame_equal(_performance(workdir), expected)


@pytest.mark.workflow
def test_a_second_run_in_the_same_directory_is_refused(small_run, tmp_path):
    """Item 14: two runs at once raced on Snakemake's lock files; the second one now stops at start-up."""
    workdir = copy_run(small_run, tmp_path / "w")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from lsftbench.pipeline.settings import run_lock; "
                               "run_lock(sys.argv[1]); print('locked', flush=True); time.sleep(60)", str(workdir)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        proc = snakemake(workdir, "-n", check=False)
        assert proc.returncode != 0
        out = proc.stdout + proc.stderr
        assert f"another run of this workflow is active in {workdir.resolve()} (pid {holder.pid}" in out
        assert "run one Snakemake at a time per working directory" in out
    finally:
        holder.kill()
        holder.wait()
    assert planned_jobs(workdir) == {}  # the lock goes with its process


@pytest.mark.workflow
def test_results_dir_that_is_a_file_and_too_many_chunks_at_start_up(small_run, tmp_path):
    """Items 7 and 13: a results_dir that is a file stops the dry run; test_chunks above the dataset's
    perturbations is capped in the DAG (not only in the shards' content), with a warning."""
    workdir = copy_run(small_run, tmp_path / "w")
    config = small_run_config()
    write_config(workdir, {**config, "results_dir": "inputs/toy.h5ad"})
    proc = snakemake(workdir, "-n", check=False)
    assert proc.returncode != 0
    assert "results_dir: 'inputs/toy.h5ad' is an existing file, not a directory" in proc.stdout + proc.stderr
    config["lsft"] = {"test_chunks": 1000}
    write_config(workdir, config)
    proc = snakemake(workdir, "-n", "--cores", "1")
    n_perts = TINY["n_perts"]
    assert f"lsft.test_chunks = 1000 capped at {n_perts} for dataset toy" in proc.stderr
    assert job_counts(proc.stdout + proc.stderr)["lsft"] == len(config["baselines"]) * n_perts  # one K, one seed
