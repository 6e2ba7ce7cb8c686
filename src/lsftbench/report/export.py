"""Every method's predictions written out in the form other tools read (``snakemake export_predictions``).

For one dataset and split seed (default protocol), :func:`export_predictions` writes each method's predicted
mean expression of the test perturbations, and the observed test pseudobulk, as AnnData files that cell-eval
0.8.2's ``MetricsEvaluator`` (and ``cell_eval2.compute_metrics``) read, so that the linear baselines can be
scored with the Virtual Cell Challenge's own code beside a model of one's own:

* methods: each baseline's global fit, its LSFT and kNN at each K (the ``.npz`` files of the ``global_fit`` and
  ``lsft`` jobs), and the progress bar's null methods ``train mean``, ``no change`` and ``random perturbation
  embedding`` (the ``progress_methods`` job's file, :class:`lsftbench.evaluation.progress_bar.NullPredictions`);
* one row per test perturbation the method predicts, plus one ``non-targeting`` row holding the control mean;
  obs names are the GEARS conditions (``G+ctrl``), ``obs["target_gene"]`` the perturbed gene's symbol (``A+B``
  for a double) or ``non-targeting``; var names are gene symbols; ``X`` is float64 (dense);
* values = control mean + Δ̂ (+ a constant shift, below); a gene-table baseline's file has only the genes its
  table has, and is paired with an observed file on the same genes and perturbations (cell-eval needs the
  same genes and perturbations on both sides): ``manifest.csv`` names each method's file and its observed file;
* **the shift**: cell-eval refuses negative expression, and a linear model's control mean + Δ̂ is negative on
  low genes. Rather than clipping (which would change Δ̂), the same constant ``shift`` is added to every value
  of every file of one (dataset, split seed), predictions and observations alike. It cancels from every change
  from the control (pearson_delta, mae, mse, the discrimination scores: a prediction's Δ̂ is its row minus its
  own control row), and it is stated in every file's ``uns["lsftbench_export"]``, in ``manifest.csv`` and in
  the folder's ``README.md``. It is 0 when nothing is negative; this pipeline's reader subtracts it
  (:mod:`lsftbench.model.external`). It does change cell-eval's differential-expression metrics, which need
  cells anyway and are not meaningful on these pseudobulk files.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data.conditions import CTRL, clean_condition
from ..data.mean_expression import read_mean_expression
from ..evaluation.progress_bar import NULL_METHODS, NullPredictions
from ..io import atomic_path, read_json, read_npz, write_text
from ..model.external import EXPORT_KEY
from .leaderboard import method_label

__all__ = ["CONTROL_LABEL", "LABEL_COLUMN", "ExportedMethod", "export_predictions", "lsft_predictions", "shift_for"]

#: The control's label and the label column, as cell-eval, STATE and the Virtual Cell Challenge write them.
CONTROL_LABEL = "non-targeting"
LABEL_COLUMN = "target_gene"
MANIFEST_COLUMNS = ("method", "kind", "baseline", "top_pct", "file", "observed", "n_perturbations", "n_genes", "shift")


@dataclass
class ExportedMethod:
    """One method's predicted changes on one (dataset, split seed)."""

    method: str  # the leaderboard's label
    kind: str  # "global fit", "LSFT", "kNN" or "null method"
    baseline: str  # the baseline (empty for a null method)
    top_pct: float  # K (NaN for a global fit or a null method)
    file: str  # the file name in the export folder
    conditions: list[str]
    genes: list[str]
    delta: np.ndarray  # genes × conditions, float64


def lsft_predictions(shards: Sequence[str | os.PathLike[str]]) -> tuple[list[str], list[str], dict[str, np.ndarray]]:
    """The LSFT and kNN predictions of one (baseline, K) from its shards' ``.npz`` files: conditions, genes and
    ``{"local", "knn"}`` (genes × conditions, float64 of the float32 the shards store)."""
    conditions: list[str] = []
    genes: list[str] | None = None
    parts: dict[str, list[np.ndarray]] = {"local": [], "knn": []}
    for shard in shards:
        z = read_npz(shard)
        if not len(z["conditions"]):
            continue  # a shard past the number of test perturbations
        shard_genes = z["genes"].astype(str).tolist()
        if genes is not None and shard_genes != genes:
            raise ValueError(f"{shard}: its genes differ from those of the other shards of the same baseline and K")
        genes = shard_genes
        conditions += z["conditions"].astype(str).tolist()
        for name in parts:
            parts[name].append(np.asarray(z[name], dtype=np.float64))
    n_genes = len(genes or [])
    return conditions, genes or [], {k: np.hstack(v) if v else np.zeros((n_genes, 0)) for k, v in parts.items()}


def _methods(
    nulls: NullPredictions,
    global_fits: Mapping[str, str | os.PathLike[str]],
    lsft_shards: Mapping[str, Mapping[float, Sequence[str | os.PathLike[str]]]],
) -> list[ExportedMethod]:
    methods = []
    for baseline, path in global_fits.items():
        z = read_npz(path, ["conditions", "genes", "predicted"])
        methods.append(ExportedMethod(method_label(baseline, "global fit"), "global fit", baseline, math.nan,
                                      f"{baseline}.global.h5ad", z["conditions"].astype(str).tolist(),
                                      z["genes"].astype(str).tolist(), np.asarray(z["predicted"], dtype=np.float64)))
        for pct, shards in lsft_shards.get(baseline, {}).items():
            conditions, genes, predicted = lsft_predictions(shards)
            for kind, key in (("LSFT", "local"), ("kNN", "knn")):
                methods.append(ExportedMethod(method_label(baseline, kind, float(pct)), kind, baseline, float(pct),
                                              f"{baseline}.{kind.lower()}_top{float(pct):g}.h5ad", conditions, genes,
                                              predicted[key]))
    for name in NULL_METHODS:  # not the idealized baseline, which uses the test data
        conditions, delta = nulls.predicted[name]
        methods.append(ExportedMethod(name, "null method", "", math.nan, f"null.{name.replace(' ', '_')}.h5ad",
                                      list(conditions), list(nulls.genes), np.asarray(delta, dtype=np.float64)))
    return methods


def shift_for(lowest: float) -> float:
    """The constant that makes every value non-negative: 0 if ``lowest`` ≥ 0, else −``lowest`` rounded up to 0.01."""
    return 0.0 if lowest >= 0 else math.ceil(-lowest * 100) / 100


def _anndata(values: np.ndarray, conditions: Sequence[str], genes: Sequence[str], uns: dict[str, Any]) -> Any:
    """Rows = conditions then the control row; obs names the conditions, ``obs["target_gene"]`` the labels."""
    import anndata as ad
    import pandas as pd

    obs = pd.DataFrame({LABEL_COLUMN: [clean_condition(c) for c in conditions] + [CONTROL_LABEL]},
                       index=pd.Index([*conditions, CTRL], dtype=object))
    return ad.AnnData(X=np.ascontiguousarray(values, dtype=np.float64), obs=obs,
                      var=pd.DataFrame(index=pd.Index(list(genes), dtype=object)), uns={EXPORT_KEY: uns})


def _write_h5ad(adata: Any, path: Path) -> None:
    """anndata's own writer (no empty ``raw`` group, which backed readers such as cell_eval2's trip on), atomically."""
    with atomic_path(path) as tmp:
        adata.write_h5ad(tmp)


def export_predictions(
    pseudobulk: str | os.PathLike[str],
    split: str | os.PathLike[str],
    nulls: str | os.PathLike[str] | NullPredictions,
    out: str | os.PathLike[str],
    *,
    global_fits: Mapping[str, str | os.PathLike[str]],
    lsft_shards: Mapping[str, Mapping[float, Sequence[str | os.PathLike[str]]]],
    dataset: str,
    seed: int,
) -> list[dict[str, Any]]:
    """Write every method's predictions and the observed test pseudobulk of one (dataset, split seed) into ``out``.

    Parameters
    ----------
    pseudobulk, split
        The dataset's pseudobulk h5ad and the split JSON (default protocol).
    nulls
        The null methods' predictions of the split (the ``progress_methods`` job's ``.npz``, the ones the progress
        bar scores).
    out
        The folder to write (created): ``<method>.h5ad`` per method, ``observed.h5ad`` (and
        ``observed.<method>.h5ad`` for a method with other genes or perturbations), ``manifest.csv``, ``README.md``.
    global_fits
        Baseline → its global fit's ``.npz``.
    lsft_shards
        Baseline → K (% of training perturbations) → its shards' ``.npz`` files.
    dataset, seed
        Written into every file's ``uns``.

    Returns
    -------
    list of dict
        The manifest's rows (:data:`MANIFEST_COLUMNS`).
    """
    import pandas as pd

    pb = read_mean_expression(pseudobulk)
    parts = read_json(split)
    x = pb.X
    ctrl_all = x[pb.obs_names.get_loc(CTRL)]
    if not isinstance(nulls, NullPredictions):
        nulls = NullPredictions.load(nulls)
    methods = _methods(nulls, global_fits, lsft_shards)
    full = ([c for c in parts["test"] if c in pb.obs_names and c != CTRL], list(pb.var_names))
    tables = []
    lowest = float(x.min()) if x.size else 0.0
    for m in methods:
        cols = pb.var_names.get_indexer(m.genes)
        if (cols < 0).any():
            unknown = list(np.asarray(m.genes)[cols < 0][:5])
            raise ValueError(f"{m.method}: genes the pseudobulk does not measure: {unknown}")
        ctrl = ctrl_all[cols]
        values = np.vstack([(m.delta + ctrl[:, None]).T, ctrl[None, :]])
        tables.append(values)
        if values.size:
            lowest = min(lowest, float(values.min()))
    shift = shift_for(lowest)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    observed_files: dict[tuple[tuple[str, ...], tuple[str, ...]], str] = {}
    rows = []
    base = {"dataset": dataset, "seed": int(seed), "shift": shift, "quantity": "expression",
            "control_label": CONTROL_LABEL, "label_column": LABEL_COLUMN,
            "note": "values = control mean + predicted change + shift; subtract shift for log-normalised expression"}
    for m, values in zip(methods, tables):
        key = (tuple(m.conditions), tuple(m.genes))
        if key not in observed_files:
            name = "observed.h5ad" if key == (tuple(full[0]), tuple(full[1])) else f"observed.{m.file}"
            observed_files[key] = name
            cols = pb.var_names.get_indexer(m.genes)
            obs_rows = x[np.ix_(pb.obs_names.get_indexer([*m.conditions, CTRL]), cols)]
            _write_h5ad(_anndata(obs_rows + shift, m.conditions, m.genes,
                                {**base, "method": "observed", "kind": "observed"}), out / name)
        uns = {**base, "method": m.method, "kind": m.kind, "observed": observed_files[key]}
        _write_h5ad(_anndata(values + shift, m.conditions, m.genes, uns), out / m.file)
        rows.append({"method": m.method, "kind": m.kind, "baseline": m.baseline, "top_pct": m.top_pct, "file": m.file,
                     "observed": observed_files[key], "n_perturbations": len(m.conditions), "n_genes": len(m.genes),
                     "shift": shift})
    if (tuple(full[0]), tuple(full[1])) not in observed_files:  # every method has fewer: the full set still goes out
        obs_rows = x[pb.obs_names.get_indexer([*full[0], CTRL])]
        _write_h5ad(_anndata(obs_rows + shift, *full, {**base, "method": "observed", "kind": "observed"}),
                   out / "observed.h5ad")
    manifest = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))
    write_text(manifest.to_csv(index=False), out / "manifest.csv")
    write_text(_readme(dataset, seed, shift, manifest), out / "README.md")
    return rows


def _readme(dataset: str, seed: int, shift: float, manifest: Any) -> str:
    first = manifest.iloc[0]
    return f"""# Predictions of every method: {dataset}, split seed {seed}

Written by `snakemake export_predictions` (lsftbench). One AnnData per method (`manifest.csv`): one row per
test perturbation it predicts and one `non-targeting` row (the control mean); `obs["target_gene"]` holds the
perturbed gene's symbol, var names are gene symbols, `X` is float64 mean expression.

**Shift: {shift:g}.** Every value of every file here (predictions and observations alike) is the
log-normalised mean expression plus {shift:g}, so that none is negative (cell-eval refuses negative
expression; a linear model's control mean + predicted change is negative on low genes). The shift cancels
from every change from the control (pearson_delta, mae, mse, the discrimination scores); subtract it to get
the expression back. It is also in each file's `uns["{EXPORT_KEY}"]["shift"]`.

Score a method with cell-eval 0.8.2 against the observed file the manifest pairs it with (these are
pseudobulk rows: skip cell-eval's differential expression, which needs cells):

```python
from cell_eval import MetricsEvaluator

evaluator = MetricsEvaluator(adata_pred="{first['file']}", adata_real="{first['observed']}",
                             control_pert="non-targeting", pert_col="target_gene", skip_de=True, outdir="cell-eval")
per_perturbation, aggregate = evaluator.compute(profile="anndata")
```
"""
