"""Settings tokens and input fingerprints: what the outputs were made from, kept with the results.

Snakemake reruns a job when its params change only while its metadata (``.snakemake/``) lasts, and when an
input changes only if the input's modification time moves past the outputs'. Neither survives a deleted
``.snakemake/``, a copied results folder, or an input replaced by ``cp -p`` / ``rsync -a`` / ``tar x``
(which keep the old modification time). So the results directory carries its own record, under
``{results}/.settings/``:

* **Settings tokens**, one small JSON file per group of settings (a dataset, a baseline's embedding, its
  fit, its LSFT, the tables, a model's predictions for one split, ...). A token holds exactly the settings
  the outputs of its rules depend on, and the content hash of every configured input file they read. The
  rules take their tokens as inputs. At start-up (:meth:`SettingsTokens.sync`) each token is rewritten
  only when its content changes, so its modification time moves only then, and Snakemake's own
  modification-time rule reruns exactly the jobs whose settings or inputs changed, and what depends on them.
  A token written for the first time gets an old modification time (:data:`FIRST_WRITTEN`): results made
  before the record existed are kept, not rerun.
* **Input fingerprints** (``fingerprints.json``): for each configured input file its size, modification
  time, inode and change time, and its SHA-256 hash. The hash is recomputed only when one of the four
  differs from the record, which is cheap on unchanged files and catches a file replaced under its old
  modification time (the copy has a new inode and change time).

Only the main Snakemake process writes (jobs on a cluster parse the workflow again and must not); it holds
:func:`run_lock` for its lifetime, so a second run in the same working directory is refused with a clear
message instead of racing the first one.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shlex
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from ..formats import SCGPT_FILES
from ..io import write_json, write_text
from .config import PROTOCOLS, ConfigError, benchmarked_datasets, model_options, models_for, split_seeds

__all__ = [
    "FIRST_WRITTEN",
    "TOKEN_DIR",
    "Fingerprints",
    "SettingsTokens",
    "ridge_penalty",
    "run_lock",
    "settings_groups",
    "output_config",
    "table_settings",
    "token_relpath",
    "TABLE_METRIC_KEYS",
    "MEMORY_KNOBS",
    "AUDIT_PROTOCOL",
]

#: Directory of the record, under the results directory.
TOKEN_DIR = ".settings"
#: Modification time given to a token written for the first time (2000-01-01 UTC): older than any output.
FIRST_WRITTEN = 946684800
_HASH_CHUNK = 1 << 22


def ridge_penalty(config: Mapping[str, Any], baseline: str) -> float | None:
    """λ of a baseline's ridge fits; ``None`` for the mean-response and additive models, whose outputs do not depend
    on it."""
    if config["baselines"][baseline].get("model", "ridge") != "ridge":
        return None
    return float(config["ridge_penalty"])


# --------------------------------------------------------------------------------------------------
# Fingerprints of configured input files
# --------------------------------------------------------------------------------------------------


class Fingerprints:
    """Content hashes of input files, recomputed only when a file's (size, mtime, inode, ctime) changes.

    Parameters
    ----------
    record
        The JSON file holding the record (``{results}/.settings/fingerprints.json``); missing is empty.
    """

    def __init__(self, record: str | os.PathLike[str]) -> None:
        self.record = Path(record)
        try:
            self._known: dict[str, dict[str, Any]] = json.loads(self.record.read_text())
        except (OSError, ValueError):
            self._known = {}
        self._changed = False

    def digest(self, path: str | os.PathLike[str]) -> str:
        """``sha256:<hex>`` of the file's bytes, ``missing`` if it does not exist; a directory hashes its files."""
        p = Path(path)
        if p.is_dir():
            parts = [f"{child.name}={self.digest(child)}" for child in sorted(p.iterdir()) if child.is_file()]
            return "dir:" + hashlib.sha256("\n".join(parts).encode()).hexdigest()
        try:
            st = p.stat()
        except OSError:
            return "missing"
        key = str(p.resolve())
        stamp = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino, "ctime_ns": st.st_ctime_ns}
        known = self._known.get(key)
        if known is not None and all(known.get(k) == v for k, v in stamp.items()):
            return known["sha256"]
        digest = "sha256:" + _sha256(p)
        self._known[key] = {**stamp, "sha256": digest}
        self._changed = True
        return digest

    def save(self) -> None:
        """Write the record if a hash was (re)computed."""
        if self._changed:
            write_json(dict(sorted(self._known.items())), self.record)
            self._changed = False


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------------------------------
# Settings groups
# --------------------------------------------------------------------------------------------------


def token_relpath(group: str) -> str:
    """The token file of a settings group, relative to the results directory."""
    return f"{TOKEN_DIR}/{group}.json"


def _files_of_dataset(ds: Mapping[str, Any]) -> dict[str, str]:
    files = {}
    if ds.get("source") == "local" and ds.get("path"):
        files["path"] = str(ds["path"])
    if ds.get("split_file"):
        files["split_file"] = str(ds["split_file"])
    return files


def _files_of_baseline(spec: Mapping[str, Any]) -> dict[str, str]:
    files = {}
    for side in ("gene", "pert"):
        part = spec.get(side) or {}
        kind = part.get("type")
        if kind in ("table", "go_graph") and part.get("path") not in (None, "synthetic", "gears"):
            files[f"{side}.path"] = str(part["path"])
        checkpoint = part.get("checkpoint")
        if kind == "scgpt" and checkpoint not in (None, "synthetic"):
            files.update({f"{side}.checkpoint/{name}": f"{checkpoint}/{name}" for name in SCGPT_FILES})
        if kind == "scfoundation" and checkpoint not in (None, "synthetic"):
            files[f"{side}.checkpoint"] = str(checkpoint)
            if part.get("gene_list"):
                files[f"{side}.gene_list"] = str(part["gene_list"])
    return files


def settings_groups(config: Mapping[str, Any], fingerprints: Fingerprints | None = None) -> dict[str, dict[str, Any]]:
    """Every settings group of the run: name → the settings (and input hashes) its outputs depend on.

    The names, and which rules take which token (``rules/*.smk``, through ``settings_token`` in
    ``rules/common.smk``):

    ``data/<dataset>``
        The dataset's config (and the synthetic seed, and the hashes of its local file and split file):
        data generation, pseudobulk, split, differential expression, noise ceiling, split export.
    ``split``
        The split settings: the split rule.
    ``embedding/<baseline>``
        The baseline's spec, ``pca_dim``, ``metrics.min_table_genes`` and the hashes of its gene tables and
        checkpoints: its embeddings and gene tables.
    ``pca``
        ``pca_dim``: the training PCA.
    ``fit/<baseline>``, ``lsft/<protocol>/<baseline>``
        λ (ridge baselines only) and the metrics settings of the fits and of the LSFT shards; the LSFT
        settings.
    ``de``
        The DE test of the dataset's differential expression.
    ``progress``, ``noise_ceiling``
        The progress bar's methods (their predictions) and its noise ceiling (with the metrics settings it is
        scored under, as the scores it bounds).
    ``models/<model>/<dataset>/seed<seed>``
        A model's path, quantity and read options (``scale``, ``condition_column``, ``control_label``,
        ``cell_level``) and the hash of its predictions file for one split.
    ``aggregation/<protocol>``, ``aggregation/audit``
        What one protocol's tables and figures (or the leakage audit) are computed with (statistics, table
        metrics, leaderboard); one token per protocol, so that switching ``protocol`` reruns nothing.
    ``synthetic``
        The seed of the synthetic stand-in resources.
    ``run_index/<protocol>``
        Every setting but the memory knobs (:data:`MEMORY_KNOBS`): one protocol's run index, which lists them.
    """
    fp = fingerprints or Fingerprints(os.devnull)
    metrics = config["metrics"]
    scored = {k: metrics[k] for k in ("top_genes", "exclude_target_gene")}
    groups: dict[str, dict[str, Any]] = {}
    for name, ds in config["datasets"].items():
        content: dict[str, Any] = {"dataset": {k: v for k, v in ds.items() if k != "benchmark"}}
        if ds.get("source") == "synthetic":
            content["synthetic_seed"] = ds.get("seed", config["synthetic"]["seed"])
        content["files"] = {key: fp.digest(path) for key, path in _files_of_dataset(ds).items()}
        groups[f"data/{name}"] = content
    groups["split"] = {"split": dict(config["split"], seeds=None), "go_filter": config["go_filter"],
                       "min_predictable_tests": metrics["min_predictable_tests"]}
    groups["pca"] = {"pca_dim": config["pca_dim"]}
    for name, spec in config["baselines"].items():
        groups[f"embedding/{name}"] = {
            "spec": spec,
            "pca_dim": config["pca_dim"],
            "min_table_genes": metrics["min_table_genes"],
            "files": {key: fp.digest(path) for key, path in _files_of_baseline(spec).items()},
        }
        groups[f"fit/{name}"] = {
            "ridge_penalty": ridge_penalty(config, name),
            "min_predictable_tests": metrics["min_predictable_tests"],
            **scored,
        }
        for protocol in PROTOCOLS:
            lsft = _lsft_settings(config)
            if protocol == "seed_compat":
                lsft["published_version"] = config["seed_compat"]["published_version"]
            groups[f"lsft/{protocol}/{name}"] = {"ridge_penalty": ridge_penalty(config, name), **lsft, **scored}
    progress = config["progress_bar"]
    groups["progress"] = {
        "pca_dim": config["pca_dim"],
        "ridge_penalty": float(config["ridge_penalty"]),
        "idealized_pert": progress["idealized_pert"],
        "random_pert": [s.get("pert") for s in config["baselines"].values()
                        if (s.get("pert") or {}).get("type") == "random"][:1],
    }
    groups["de"] = {"de_test": metrics["de_test"]}
    groups["noise_ceiling"] = {"replicates": progress["replicates"], "seed": progress["seed"], **scored}
    seeds = split_seeds(dict(config))
    for dataset in benchmarked_datasets(dict(config)):
        for model in models_for(dict(config), dataset, "default"):
            for seed in seeds:
                options = model_options(dict(config), model, dataset, seed)
                groups[f"models/{model}/{dataset}/seed{seed}"] = {
                    **options, "file": fp.digest(options["path"]), **scored,
                }
    for protocol in PROTOCOLS:
        groups[f"aggregation/{protocol}"] = table_settings(config, protocol)
    groups["aggregation/audit"] = table_settings(config, AUDIT_PROTOCOL)
    for protocol in PROTOCOLS:
        groups[f"run_index/{protocol}"] = output_config(config, protocol)
    groups["synthetic"] = {"seed": config["synthetic"]["seed"]}
    return groups


#: Settings that change only how much memory a job uses, never a number: a change reruns nothing, so the run
#: index (which would otherwise be rewritten) does not list them.
MEMORY_KNOBS = (("pseudobulk", "chunk_size"), ("progress_bar", "max_mb"))

#: The ``protocol`` named by the leakage audit's provenance (it compares both protocols' tables).
AUDIT_PROTOCOL = "seed_compat vs default"


def output_config(config: Mapping[str, Any], protocol: str | None = None) -> dict[str, Any]:
    """Every setting of the run (the validated config with its defaults) but the :data:`MEMORY_KNOBS`, as plain
    JSON values, with ``protocol`` set to the run index's own protocol when given: the run index lists them."""
    out = json.loads(json.dumps(dict(config), default=str))
    if protocol is not None:
        out["protocol"] = protocol
    for section, key in MEMORY_KNOBS:
        if isinstance(out.get(section), dict):
            out[section].pop(key, None)
    return out


def _lsft_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The LSFT settings every protocol's shards and tables depend on."""
    return {"center": config["lsft"]["center"], "refit_embeddings": config["lsft"]["refit_embeddings"]}


#: The metrics settings the tables depend on (a change of any other reruns no table).
TABLE_METRIC_KEYS = ("top_genes", "rank_distance", "mode_collapse_spread", "exclude_target_gene", "de_fdr")


def table_settings(config: Mapping[str, Any], protocol: str | None = None) -> dict[str, Any]:
    """What the tables and figures of one protocol depend on beyond their inputs; also their provenance block.

    ``protocol`` is the tables' own protocol (default: the config's); :data:`AUDIT_PROTOCOL` for the audit.
    """
    method = config["split"].get("method", "gears_simulation")
    return {
        "protocol": protocol or config["protocol"],
        "split_seeds": split_seeds(dict(config)),
        # the split's method where it is not GEARS's simulation split (the default protocol's, SPEC 2)
        **({"split_method": method} if method != "gears_simulation" and (protocol or config["protocol"]) == "default"
           else {}),
        "top_pcts": list(config["top_pcts"]),
        "ridge_penalty": float(config["ridge_penalty"]),
        "pca_dim": config["pca_dim"],
        "lsft": _lsft_settings(config),
        "statistics": dict(config["statistics"]),
        "metrics": {k: config["metrics"][k] for k in TABLE_METRIC_KEYS},
        "leaderboard": dict(config["leaderboard"]),
    }


# --------------------------------------------------------------------------------------------------
# Writing the tokens
# --------------------------------------------------------------------------------------------------


class SettingsTokens:
    """The token files of one results directory.

    Parameters
    ----------
    results
        The results directory.
    config
        The validated config.
    """

    def __init__(self, results: str | os.PathLike[str], config: Mapping[str, Any]) -> None:
        self.results = Path(results)
        self.config = config
        self._groups: list[str] | None = None  # the group names :meth:`sync` wrote

    def path(self, group: str) -> str:
        """The token file of ``group`` (a path for a rule's input)."""
        return f"{self.results}/{token_relpath(group)}"

    @property
    def _history_path(self) -> Path:
        return self.results / TOKEN_DIR / "history.json"

    def _history(self) -> dict[str, dict[str, Any]]:
        try:
            return json.loads(self._history_path.read_text())
        except (OSError, ValueError):
            return {}

    def sync(self) -> list[str]:
        """Write every token whose content changed; returns the groups rewritten (not those written first).

        The modification time a rewritten token gets:

        * first written: :data:`FIRST_WRITTEN` (results made before the record existed are kept);
        * back to the content the last real run started with (a dry run with other settings, then the
          settings restored): that content's earlier time, so nothing reruns;
        * anything else: now, so the jobs that depend on it rerun.

        Raises
        ------
        ConfigError
            If ``results`` exists but is not a directory, or cannot be written.
        """
        if self.results.exists() and not self.results.is_dir():
            raise ConfigError(f"results_dir: {str(self.results)!r} is an existing file, not a directory; "
                              "set results_dir to a directory (it is created if missing)")
        fingerprints = Fingerprints(self.results / TOKEN_DIR / "fingerprints.json")
        history = self._history()
        changed = []
        try:
            groups = settings_groups(self.config, fingerprints)
            self._groups = list(groups)
            for group, content in groups.items():
                path = self.results / token_relpath(group)
                text = json.dumps(content, indent=1, sort_keys=True, default=str) + "\n"
                try:
                    old = path.read_text()
                except OSError:
                    old = None
                if old == text:
                    continue
                digest = hashlib.sha256(text.encode()).hexdigest()
                if group not in history and old is not None:  # a token older than the record: its results were made with it
                    previous = hashlib.sha256(old.encode()).hexdigest()
                    history[group] = {"used": previous, "mtime": {previous: path.stat().st_mtime}}
                record = history.setdefault(group, {"used": None, "mtime": {}})
                path.parent.mkdir(parents=True, exist_ok=True)
                write_text(text, path)
                if old is None and not record["mtime"]:
                    stamp = FIRST_WRITTEN
                elif digest == record["used"] and digest in record["mtime"]:
                    stamp = record["mtime"][digest]
                else:
                    stamp = path.stat().st_mtime
                    changed.append(group)
                os.utime(path, (stamp, stamp))
                record["mtime"] = {k: v for k, v in record["mtime"].items() if k in (record["used"], digest)}
                record["mtime"][digest] = stamp
            fingerprints.save()
            write_json(history, self._history_path)
        except PermissionError as err:
            raise ConfigError(f"results_dir: cannot write the settings record under {self.results}: {err}") from err
        return changed

    def mark_used(self) -> None:
        """Record that a real run starts with the current tokens (Snakemake's ``onstart``, never in dry runs)."""
        history = self._history()
        groups = self._groups
        if groups is None:  # not synced in this process
            groups = list(settings_groups(self.config, Fingerprints(self.results / TOKEN_DIR / "fingerprints.json")))
        for group in groups:
            path = self.results / token_relpath(group)
            try:
                text = path.read_text()
            except OSError:
                continue
            digest = hashlib.sha256(text.encode()).hexdigest()
            record = history.setdefault(group, {"used": None, "mtime": {}})
            record["used"] = digest
            record["mtime"][digest] = path.stat().st_mtime
        write_json(history, self._history_path)


# --------------------------------------------------------------------------------------------------
# One run at a time
# --------------------------------------------------------------------------------------------------

_HELD: list[IO[str]] = []


def run_lock(workdir: str | os.PathLike[str] = ".") -> None:
    """Take the working directory's run lock for the lifetime of this process, or raise.

    Raises
    ------
    ConfigError
        Another Snakemake run (or dry run) of this workflow is active in ``workdir``, with its process id,
        start time and command line.
    """
    folder = Path(workdir) / ".snakemake"
    folder.mkdir(parents=True, exist_ok=True)
    handle = open(folder / "lsftbench-run.lock", "a+")  # noqa: SIM115 (held open until the process exits)
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown process"
        handle.close()
        raise ConfigError(
            f"another run of this workflow is active in {Path(workdir).resolve()} ({holder}); run one Snakemake "
            "at a time per working directory (wait for it, or copy the workflow to another directory for a second "
            "config)"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}: {shlex.join(sys.argv)}\n")
    handle.flush()
    _HELD.append(handle)
